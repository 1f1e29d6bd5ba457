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
