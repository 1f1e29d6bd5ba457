//! Reading a process's figures from `/proc` (Linux), for the load and soak tools.

/// `field` (e.g. `VmRSS:`, `Threads:`) of `/proc/PID/status`, in its unit (kB for sizes).
pub fn status(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
