//! Reading a process's figures from `/proc` (Linux), for the load and soak tools.

/// `field` (e.g. `VmRSS:`, `Threads:`) of `/proc/PID/status`, in its unit (kB for sizes).
pub fn status(pid: u32, field: &str) -> Option<f64> {
    field_of(&format!("/proc/{pid}/status"), field)
}

/// `field` (e.g. `Pss:`) of `/proc/PID/smaps_rollup`, in kB. The proportional set size shares
/// each page among the mappings that hold it: wasmtime maps a plug-in's memory image
/// copy-on-write into every instance, and RSS counts those shared pages once per instance.
pub fn smaps_rollup(pid: u32, field: &str) -> Option<f64> {
    field_of(&format!("/proc/{pid}/smaps_rollup"), field)
}

fn field_of(path: &str, field: &str) -> Option<f64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
