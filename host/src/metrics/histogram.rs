//! A fixed-bucket histogram of milliseconds that records on atomics and is encoded by
//! prometheus-client.
//!
//! prometheus-client's own `Histogram` takes a mutex on every `observe`. The turn histograms are
//! observed from every session at every turn, so this one keeps an observation to two relaxed
//! atomic additions (its bucket and the sum) and implements the crate's [`EncodeMetric`]: the
//! crate writes the `_bucket`/`_sum`/`_count` lines exactly as for its own histograms, and a
//! scrape reads the atomics without stopping anyone.

use std::fmt;
use std::iter::once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Bucket upper bounds in ms; the `+Inf` bucket follows them.
pub const BUCKETS_MS: [f64; 12] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

#[derive(Debug, Default)]
struct Cells {
    /// Observations per bucket, not cumulative: `[i]` counts those above `BUCKETS_MS[i - 1]` and
    /// at most `BUCKETS_MS[i]`; the last one those above every bound. The encoder accumulates.
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    /// Sum in microseconds (an integer, so it can be atomic).
    sum_us: AtomicU64,
}

/// A histogram of milliseconds with the [`BUCKETS_MS`] bounds. Clones share their values (the
/// registry holds one, the code observing another).
#[derive(Clone, Debug, Default)]
pub struct Histogram(Arc<Cells>);

impl Histogram {
    /// Counts one observation of `ms`; never waits.
    pub fn observe(&self, ms: f64) {
        let bucket = BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BUCKETS_MS.len());
        self.0.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_us
            .fetch_add((ms * 1000.0).max(0.0) as u64, Ordering::Relaxed);
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        let buckets: Vec<(f64, u64)> = BUCKETS_MS
            .into_iter()
            .chain(once(f64::INFINITY))
            .zip(self.0.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // The count is the buckets' total, so `_count` always equals the `+Inf` bucket.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_us.load(Ordering::Relaxed) as f64 / 1000.0;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode_registry;
    use prometheus_client::registry::Registry;

    fn text(h: &Histogram) -> String {
        let mut registry = Registry::default();
        registry.register("x", "test", h.clone());
        let mut out = String::new();
        encode_registry(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(0.2);
        h.observe(30.0);
        h.observe(9000.0);
        let s = text(&h);
        assert!(s.contains("# TYPE x histogram\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"0.5\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"25.0\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"50.0\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"5000.0\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_count 3\n"), "{s}");
        assert!(s.contains("x_sum 9030.2\n"), "{s}");
    }

    #[test]
    fn every_bound_is_exposed_once() {
        let s = text(&Histogram::default());
        let buckets = s.lines().filter(|l| l.starts_with("x_bucket")).count();
        assert_eq!(buckets, BUCKETS_MS.len() + 1, "{s}");
    }
}
