//! Process metrics in Prometheus text format (`GET /metrics`): sessions, turns and per-turn
//! latency histograms. Plain atomics: no lock on the audio path.

use crate::transport::protocol::TurnMetrics;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A monotonically increasing counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge that goes up and down.
#[derive(Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Histogram bucket bounds in ms.
const BUCKETS_MS: [f64; 12] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// A fixed-bucket histogram of milliseconds.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    /// Sum in microseconds (integer, so it can be atomic).
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, ms: f64) {
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            if ms <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((ms * 1000.0).max(0.0) as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// All host metrics.
#[derive(Default)]
pub struct Metrics {
    pub sessions_active: Gauge,
    pub sessions_total: Counter,
    pub sessions_rejected: Counter,
    pub session_panics: Counter,
    pub turns_total: Counter,
    pub stt_audio_dropped: Counter,
    /// Sessions closed because their client stopped reading.
    pub slow_clients: Counter,
    /// `playback` reports received: clients telling the host how much of a reply was heard.
    pub playback_reports: Counter,
    /// Sessions resumed after a dropped connection.
    pub resumes: Counter,
    /// Resumes refused (expired, wrong token, store unavailable): a new session started.
    pub resumes_refused: Counter,
    pub host_ms: Histogram,
    pub first_audio_ms: Histogram,
    pub llm_first_token_ms: Histogram,
}

impl Metrics {
    pub fn observe_turn(&self, m: &TurnMetrics) {
        self.turns_total.inc();
        self.host_ms.observe(m.host_processing_ms);
        if let Some(v) = m.first_audio_sent_ms {
            self.first_audio_ms.observe(v as f64);
        }
        if let Some(v) = m.llm_first_token_ms {
            self.llm_first_token_ms.observe(v as f64);
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        counter(
            "voice_sessions_active",
            "gauge",
            "Sessions open now",
            self.sessions_active.get(),
        );
        counter(
            "voice_sessions_total",
            "counter",
            "Sessions started",
            self.sessions_total.get(),
        );
        counter(
            "voice_sessions_rejected_total",
            "counter",
            "Upgrades refused (capacity, origin, draining)",
            self.sessions_rejected.get(),
        );
        counter(
            "voice_session_panics_total",
            "counter",
            "Sessions ended by an internal fault",
            self.session_panics.get(),
        );
        counter(
            "voice_turns_total",
            "counter",
            "Agent replies completed or interrupted",
            self.turns_total.get(),
        );
        counter(
            "voice_stt_audio_dropped_total",
            "counter",
            "Audio batches dropped because speech-to-text could not keep up",
            self.stt_audio_dropped.get(),
        );
        counter(
            "voice_slow_clients_total",
            "counter",
            "Sessions closed (1008) because the client stopped reading its socket",
            self.slow_clients.get(),
        );
        counter(
            "voice_playback_reports_total",
            "counter",
            "Playback reports received from clients (how much of a reply was heard)",
            self.playback_reports.get(),
        );
        counter(
            "voice_sessions_resumed_total",
            "counter",
            "Sessions resumed after a dropped connection",
            self.resumes.get(),
        );
        counter(
            "voice_resumes_refused_total",
            "counter",
            "Resumes refused (expired, wrong token, store unavailable): a new session started",
            self.resumes_refused.get(),
        );

        self.host_ms.render(
            "voice_turn_host_ms",
            "Host processing per turn (ms)",
            &mut s,
        );
        self.first_audio_ms.render(
            "voice_turn_first_audio_ms",
            "Speech end to first agent audio sent (ms)",
            &mut s,
        );
        self.llm_first_token_ms.render(
            "voice_turn_llm_first_token_ms",
            "Speech end to first LLM token (ms)",
            &mut s,
        );
        s
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(0.2);
        h.observe(30.0);
        let mut s = String::new();
        h.render("x", "test", &mut s);
        assert!(s.contains("x_bucket{le=\"0.5\"} 1"));
        assert!(s.contains("x_bucket{le=\"50\"} 2"));
        assert!(s.contains("x_count 2"));
    }
}
