//! Process metrics for `GET /metrics`: sessions, turns and per-turn latency histograms.
//!
//! The exposition is written by `prometheus-client`, the Prometheus project's Rust client: it
//! owns the OpenMetrics text format (escaping, `_total` suffixes, histogram lines, `# EOF`), so
//! this code only says what is counted. Its counters and gauges are an `Arc` around one atomic:
//! a clone is a handle on the same value, so a component registers one clone in its own
//! [`Registry`] and keeps the other to count with, and a session counting is one relaxed atomic
//! addition, never a lock. The turn histograms are this module's own [`Histogram`] (on atomics;
//! the crate's takes a mutex per observation), encoded by the crate all the same.
//!
//! Two things of the crate to keep in mind when adding a metric:
//! - a counter is registered without `_total` (`voice_sessions`): the encoder appends it, and a
//!   name already ending in `_total` would come out as `_total_total` in a release build;
//! - the encoder ends every HELP text with a full stop, so help texts are written without one.
//!
//! Every component keeps its own registry (this one, the plug-in runtime's, the call
//! recorder's): tests build many plug-in runtimes in one process, and a registry shared by all
//! would list each of their metrics again. `/metrics` joins the registries' text and ends it
//! with one `# EOF` (see [`exposition`]).

pub mod exposition;
mod histogram;

pub use histogram::{Histogram, BUCKETS_MS};

use crate::session::events::{Preemption, TurnEnd};
use crate::transport::protocol::TurnMetrics;
use crate::turn::{ModelKind, ModelOutcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use std::sync::OnceLock;

/// Registers a clone of `metric` as `name` in `registry` and returns the metric: the caller
/// counts with it, the registry reads the same value at scrape time.
pub(crate) fn registered<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// The `by` label of `voice_turn_ends_total` and `voice_turn_continued_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByLabel {
    by: &'static str,
}

/// A counter per `by` label (what ended a user turn), in `TurnEnd::ALL` order. Every series is
/// resolved here, so counting is one atomic addition and all show at 0.
fn by_turn_end(registry: &mut Registry, name: &str, help: &str) -> [Counter; 5] {
    let family: Family<ByLabel, Counter> = registered(registry, name, help, Family::default());
    TurnEnd::ALL.map(|by| family.get_or_create_owned(&ByLabel { by: by.as_str() }))
}

/// The labels of `voice_turn_model_answers_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: &'static str,
    outcome: &'static str,
}

/// A counter per end-of-turn model and outcome, indexed `[ModelKind][ModelOutcome]`,
/// all resolved here so that every series shows at 0.
fn by_model_outcome(registry: &mut Registry) -> [[Counter; 4]; 2] {
    let family: Family<ModelLabels, Counter> = registered(
        registry,
        "voice_turn_model_answers",
        "Questions to the end-of-turn models, by model (audio: Smart Turn; words: the text model) and outcome (answered; busy: its queue was full; late: no answer in time; failed); a policy asked without an answer decides on the other signals",
        Family::default(),
    );
    ModelKind::ALL.map(|model| {
        ModelOutcome::ALL.map(|outcome| {
            family.get_or_create_owned(&ModelLabels {
                model: model.as_str(),
                outcome: outcome.as_str(),
            })
        })
    })
}

/// All host metrics, and the registry they are exposed from.
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
    /// User turns ended, by what ended them (`TurnEnd::ALL` order).
    pub turn_ends: [Counter; 5],
    /// User turns the user went on speaking after, within 2 s of their end of speech and before
    /// any of the reply was heard, by what had ended them (`TurnEnd::ALL` order): ends called
    /// too early.
    pub turn_continued: [Counter; 5],
    /// Replies generated before their turn was committed that the turn took over.
    pub preemptive_used: Counter,
    /// Replies generated before their turn was committed and dropped unheard.
    pub preemptive_wasted: Counter,
    /// Questions to the end-of-turn models, by model and outcome.
    turn_model_answers: [[Counter; 4]; 2],
    /// Reads ahead the text end-of-turn model's thread refused: its first sign of overload.
    pub words_reads_ahead_refused: Counter,
    pub host_ms: Histogram,
    pub first_audio_ms: Histogram,
    pub llm_first_token_ms: Histogram,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let gauge = Gauge::default;
        let counter = Counter::default;
        let histogram = Histogram::default;
        let sessions_active = registered(r, "voice_sessions_active", "Sessions open now", gauge());
        let sessions_total = registered(r, "voice_sessions", "Sessions started", counter());
        let sessions_rejected = registered(
            r,
            "voice_sessions_rejected",
            "Upgrades refused (capacity, origin, draining)",
            counter(),
        );
        let session_panics = registered(
            r,
            "voice_session_panics",
            "Sessions ended by an internal fault",
            counter(),
        );
        let turns_total = registered(
            r,
            "voice_turns",
            "Agent replies completed or interrupted",
            counter(),
        );
        let stt_audio_dropped = registered(
            r,
            "voice_stt_audio_dropped",
            "Audio batches dropped because speech-to-text could not keep up",
            counter(),
        );
        let slow_clients = registered(
            r,
            "voice_slow_clients",
            "Sessions closed (1008) because the client stopped reading its socket",
            counter(),
        );
        let playback_reports = registered(
            r,
            "voice_playback_reports",
            "Playback reports received from clients (how much of a reply was heard)",
            counter(),
        );
        let resumes = registered(
            r,
            "voice_sessions_resumed",
            "Sessions resumed after a dropped connection",
            counter(),
        );
        let resumes_refused = registered(
            r,
            "voice_resumes_refused",
            "Resumes refused (expired, wrong token, store unavailable): a new session started",
            counter(),
        );
        let turn_ends = by_turn_end(
            r,
            "voice_turn_ends",
            "User turns ended, by what ended them (silence rules, silence timeout, end-of-turn policy, typed, held words)",
        );
        let turn_continued = by_turn_end(
            r,
            "voice_turn_continued",
            "User turns the user went on speaking after, within 2 s of their end of speech and before any of the reply was heard (the reply was dropped, their words joined the next turn), by what had ended them",
        );
        let preemptive_used = registered(
            r,
            "voice_llm_preemptive_used",
            "LLM requests started before the user's turn was committed and used for its reply",
            counter(),
        );
        let preemptive_wasted = registered(
            r,
            "voice_llm_preemptive_wasted",
            "LLM requests started before the user's turn was committed and dropped unheard",
            counter(),
        );
        let turn_model_answers = by_model_outcome(r);
        let words_reads_ahead_refused = registered(
            r,
            "voice_turn_words_reads_ahead_refused",
            "Reads of the user's words ahead of a pause that the text end-of-turn model's thread refused (too many waiting): the question at the pause reads those words itself, later",
            counter(),
        );
        let host_ms = registered(
            r,
            "voice_turn_host_ms",
            "Host processing per turn (ms)",
            histogram(),
        );
        let first_audio_ms = registered(
            r,
            "voice_turn_first_audio_ms",
            "Speech end to first agent audio sent (ms)",
            histogram(),
        );
        let llm_first_token_ms = registered(
            r,
            "voice_turn_llm_first_token_ms",
            "Speech end to first LLM token (ms)",
            histogram(),
        );
        Self {
            sessions_active,
            sessions_total,
            sessions_rejected,
            session_panics,
            turns_total,
            stt_audio_dropped,
            slow_clients,
            playback_reports,
            resumes,
            resumes_refused,
            turn_ends,
            turn_continued,
            preemptive_used,
            preemptive_wasted,
            turn_model_answers,
            words_reads_ahead_refused,
            host_ms,
            first_audio_ms,
            llm_first_token_ms,
            registry,
        }
    }
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

    /// Counts a user turn ended by `by`.
    pub fn count_turn_end(&self, by: TurnEnd) {
        self.turn_ends[by as usize].inc();
    }

    /// Counts a user turn ended by `by` that the user went on speaking after, before its reply
    /// was heard.
    pub fn count_turn_continued(&self, by: TurnEnd) {
        self.turn_continued[by as usize].inc();
    }

    /// Counts what became of a reply started before its turn was committed.
    pub fn count_preemption(&self, outcome: Preemption) {
        match outcome {
            Preemption::Used => self.preemptive_used.inc(),
            Preemption::Wasted => self.preemptive_wasted.inc(),
        };
    }

    /// Counts a question to an end-of-turn model and what came of it.
    pub fn count_turn_model(&self, model: ModelKind, outcome: ModelOutcome) {
        self.turn_model_answers[model as usize][outcome as usize].inc();
    }

    /// Appends the OpenMetrics text of the process metrics to `out`, without the closing
    /// `# EOF` (see [`exposition`]).
    pub fn encode(&self, out: &mut String) {
        exposition::encode(out, &self.registry);
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}
