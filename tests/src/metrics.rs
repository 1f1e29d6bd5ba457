//! Reading the host's `/metrics` in tests.

use std::net::SocketAddr;

/// The value of `series` (a metric name with its labels, e.g.
/// `voice_plugin_degraded{slot="intent"}`) on the host at `addr`; panics when it is missing.
pub async fn metric(addr: SocketAddr, series: &str) -> u64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Waits until the host at `addr` counts `n` active sessions in `/metrics`; panics after
/// `limit`, naming the count it saw.
pub async fn sessions_become(addr: SocketAddr, n: u64, limit: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let active = metric(addr, "voice_sessions_active").await;
        if active == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{active} sessions active, expected {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
