//! The `/metrics` body: the OpenMetrics text of several registries (the process's, the plug-in
//! runtime's, the call recorder's), one after the other, and one `# EOF` at the very end.
//!
//! OpenMetrics ends an exposition with `# EOF` and allows it once, so each registry is encoded
//! without it ([`encode`]) and whoever assembles the response closes it ([`finish`]).

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::registry::Registry;

/// Content type of the `/metrics` response.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Appends the OpenMetrics text of `registry` to `out`, without `# EOF`.
pub fn encode(out: &mut String, registry: &Registry) {
    // Writing into a `String` fails only when a metric refuses to encode (the crate's native-only
    // histograms, which are not used here); the families before it are kept.
    if let Err(e) = encode_registry(out, registry) {
        tracing::warn!(error = %e, "a metric could not be encoded");
    }
}

/// Ends the exposition in `out` with its one `# EOF`.
pub fn finish(out: &mut String) {
    // Infallible on a `String`.
    let _ = encode_eof(out);
}

/// Reading an exposition back in tests.
#[cfg(test)]
pub(crate) mod parse {
    use std::collections::BTreeSet;

    /// Every metric name of the dashboards, as the samples show them.
    pub const DASHBOARD_NAMES: [&str; 42] = [
        "voice_llm_preemptive_used_total",
        "voice_llm_preemptive_wasted_total",
        "voice_playback_reports_total",
        "voice_plugin_calls_total",
        "voice_plugin_canary_rollbacks_total",
        "voice_plugin_degraded",
        "voice_plugin_fallbacks_total",
        "voice_plugin_faults_total",
        "voice_plugin_instantiations_total",
        "voice_plugin_loads_total",
        "voice_plugin_pool_exhausted_total",
        "voice_plugin_quarantined",
        "voice_plugin_quarantines_total",
        "voice_plugin_record_dropped_total",
        "voice_plugin_records_total",
        "voice_plugin_reloads_failed_total",
        "voice_plugin_reloads_total",
        "voice_plugin_sessions_benched_total",
        "voice_plugin_shadow_calls_total",
        "voice_plugin_shadow_dropped_total",
        "voice_plugin_shadow_fallbacks_total",
        "voice_plugin_shadow_faults_total",
        "voice_plugin_shadow_instantiations_total",
        "voice_plugin_shadow_sessions",
        "voice_plugin_shadow_sessions_skipped_total",
        "voice_plugin_shadow_total",
        "voice_resumes_refused_total",
        "voice_session_panics_total",
        "voice_sessions_active",
        "voice_sessions_rejected_total",
        "voice_sessions_resumed_total",
        "voice_sessions_total",
        "voice_slow_clients_total",
        "voice_stt_audio_dropped_total",
        "voice_turn_continued_total",
        "voice_turn_ends_total",
        "voice_turn_first_audio_ms",
        "voice_turn_host_ms",
        "voice_turn_llm_first_token_ms",
        "voice_turn_model_answers_total",
        "voice_turn_words_reads_ahead_refused_total",
        "voice_turns_total",
    ];

    /// Checks `text` line by line as an OpenMetrics exposition (each family's `# HELP` then
    /// `# TYPE`, then its samples; one `# EOF`, last) and returns the name each family's
    /// samples carry (`x_total` for counter `x`, `x` for a gauge or a histogram), in order.
    /// Panics naming the first line that does not fit.
    pub fn exposed_names(text: &str) -> Vec<String> {
        let body = text
            .strip_suffix("# EOF\n")
            .unwrap_or_else(|| panic!("no `# EOF` at the end:\n{text}"));
        let mut names = Vec::new();
        let mut seen = BTreeSet::new();
        let mut help: Option<&str> = None;
        let mut family: Option<(&str, &str)> = None;
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, text) = rest.split_once(' ').expect(line);
                assert!(text.ends_with('.') && !text.ends_with(".."), "{line}");
                assert!(seen.insert(name.to_string()), "family twice: {line}");
                help = Some(name);
                family = None;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect(line);
                assert_eq!(help.take(), Some(name), "TYPE without its HELP: {line}");
                let exposed = match kind {
                    "counter" => format!("{name}_total"),
                    "gauge" | "histogram" => name.to_string(),
                    _ => panic!("unexpected type: {line}"),
                };
                names.push(exposed);
                family = Some((name, kind));
            } else {
                assert!(!line.starts_with('#'), "unexpected comment: {line}");
                let (name, kind) =
                    family.unwrap_or_else(|| panic!("sample outside a family: {line}"));
                sample(line, name, kind);
            }
        }
        names
    }

    /// Checks one sample line of family `name` of type `kind`.
    fn sample(line: &str, name: &str, kind: &str) {
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok(), "value: {line}");
        let (metric, labels) = match series.split_once('{') {
            Some((metric, labels)) => (metric, labels.strip_suffix('}').expect(line)),
            None => (series, ""),
        };
        let allowed: Vec<String> = match kind {
            "counter" => vec![format!("{name}_total")],
            "gauge" => vec![name.to_string()],
            _ => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{name}{s}"))
                .collect(),
        };
        assert!(allowed.iter().any(|a| a == metric), "name: {line}");
        for label in labels.split(',').filter(|l| !l.is_empty()) {
            let (key, value) = label.split_once('=').expect(line);
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "label: {line}"
            );
            assert!(
                value.len() >= 2 && value.starts_with('"') && value.ends_with('"'),
                "label value: {line}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse::{exposed_names, DASHBOARD_NAMES};
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn a_fresh_process_registry_exposes_its_families_under_their_dashboard_names() {
        let mut text = String::new();
        Metrics::default().encode(&mut text);
        finish(&mut text);
        let names = exposed_names(&text);
        assert_eq!(
            names,
            [
                "voice_sessions_active",
                "voice_sessions_total",
                "voice_sessions_rejected_total",
                "voice_session_panics_total",
                "voice_turns_total",
                "voice_stt_audio_dropped_total",
                "voice_slow_clients_total",
                "voice_playback_reports_total",
                "voice_sessions_resumed_total",
                "voice_resumes_refused_total",
                "voice_turn_ends_total",
                "voice_turn_continued_total",
                "voice_llm_preemptive_used_total",
                "voice_llm_preemptive_wasted_total",
                "voice_turn_model_answers_total",
                "voice_turn_words_reads_ahead_refused_total",
                "voice_turn_host_ms",
                "voice_turn_first_audio_ms",
                "voice_turn_llm_first_token_ms",
            ],
            "{text}"
        );
        assert!(names.iter().all(|n| DASHBOARD_NAMES.contains(&n.as_str())));
        assert!(text.contains("# TYPE voice_sessions counter\nvoice_sessions_total 0\n"));
        assert!(text.contains("voice_sessions_active 0\n"));
        assert!(text.contains("voice_turn_host_ms_bucket{le=\"0.5\"} 0\n"));
    }

    #[test]
    fn end_of_turn_model_questions_are_counted_by_model_and_outcome() {
        use crate::turn::{ModelKind, ModelOutcome, TurnModelError};
        let metrics = Metrics::default();
        let late = Err(TurnModelError::Late(std::time::Duration::from_millis(500)));
        metrics.count_turn_model(ModelKind::Words, ModelOutcome::of(&late));
        metrics.count_turn_model(ModelKind::Words, ModelOutcome::of(&Ok(0.4)));
        metrics.count_turn_model(
            ModelKind::Audio,
            ModelOutcome::of(&Err(TurnModelError::Busy)),
        );
        let mut text = String::new();
        metrics.encode(&mut text);
        for (model, outcome, n) in [
            ("words", "late", 1),
            ("words", "answered", 1),
            ("audio", "busy", 1),
            ("audio", "answered", 0),
            ("words", "failed", 0),
        ] {
            let line = format!(
                "voice_turn_model_answers_total{{model=\"{model}\",outcome=\"{outcome}\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
    }

    #[test]
    fn joined_registries_end_with_one_eof() {
        let process = Metrics::default();
        process.sessions_total.inc();
        let mut other = Registry::default();
        let gauge = crate::metrics::registered(
            &mut other,
            "other_things",
            "Things of another component",
            prometheus_client::metrics::gauge::Gauge::<i64>::default(),
        );
        gauge.set(3);
        let mut text = String::new();
        process.encode(&mut text);
        encode(&mut text, &other);
        finish(&mut text);
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("other_things 3\n# EOF\n"), "{text}");
        assert!(text.contains("voice_sessions_total 1\n"), "{text}");
        exposed_names(&text);
    }
}
