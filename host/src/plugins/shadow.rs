//! Shadow versions: a candidate answers every call the session's behaviour answered, on a thread
//! of its own, and its answers are compared with the live ones and counted.
//!
//! The session hands each (input, live decision) to its [`ShadowTap`] and goes on: the hand-off
//! never blocks (a shadow that falls behind has observations dropped and counted), so a shadow
//! can neither delay nor change what callers hear. Each shadowed session has one thread owning
//! the candidate's instance; it ends when the session drops the tap. At most
//! `PLUGIN_SHADOW_MAX_SESSIONS` sessions are shadowed at once; further sessions are counted as
//! skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::behaviour::{
    BargeInDecision, BargeInEvent, Intent, IntentInput, Observer, PromptInput, PromptOutput,
    TurnDecision, TurnEvent,
};
use crate::metrics::registered;

use super::behaviours::{PluginBargeIn, PluginIntent, PluginPrompt, PluginTurn};
use super::instance::Fallback;
use super::loaded::LoadedPlugin;
use super::metrics::{per_slot, slot_family};
use super::runtime::Runtime;
use super::settings::Slot;
use super::worlds::World;

/// Observations queued per shadowed session before further ones are dropped.
const QUEUE: usize = 16;
/// Distinct (live, candidate) label pairs counted per slot; further pairs count as `other`.
const MAX_PAIRS: usize = 64;
/// Disagreements logged in full per shadow version; after these, one in a hundred.
const LOGGED_DISAGREEMENTS: u64 = 10;

/// A session behaviour that can answer as a shadow.
pub(crate) trait Candidate: Send + 'static {
    type World: World;
    type Input: Clone + Send + 'static;
    type Decision: Clone + PartialEq + Send + 'static;
    /// The candidate's own decision, and whether the built-in behaviour answered instead.
    fn decide(&mut self, input: &Self::Input) -> (Self::Decision, Option<Fallback>);
    /// A short label of a decision for the metrics (no free text).
    fn label(decision: &Self::Decision) -> String;
    /// The version answering.
    fn plugin(&self) -> &Arc<LoadedPlugin<Self::World>>;
}

impl Candidate for PluginIntent {
    type World = super::bindings::intent::IntentAnalyzer;
    type Input = IntentInput;
    type Decision = Option<Intent>;
    fn decide(&mut self, input: &IntentInput) -> (Option<Intent>, Option<Fallback>) {
        self.analyze_traced(input)
    }
    fn label(decision: &Option<Intent>) -> String {
        decision
            .as_ref()
            .map_or("none".to_string(), |i| metric_label(&i.name))
    }
    fn plugin(&self) -> &Arc<LoadedPlugin<Self::World>> {
        self.slot.plugin()
    }
}

impl Candidate for PluginPrompt {
    type World = super::bindings::prompt::PromptShaper;
    type Input = PromptInput;
    type Decision = PromptOutput;
    fn decide(&mut self, input: &PromptInput) -> (PromptOutput, Option<Fallback>) {
        self.shape_traced(input)
    }
    fn label(decision: &PromptOutput) -> String {
        match decision {
            PromptOutput::Llm { .. } => "llm",
            PromptOutput::Direct { .. } => "direct",
        }
        .to_string()
    }
    fn plugin(&self) -> &Arc<LoadedPlugin<Self::World>> {
        self.slot.plugin()
    }
}

impl Candidate for PluginBargeIn {
    type World = super::bindings::barge_in::BargeInPolicy;
    type Input = BargeInEvent;
    type Decision = BargeInDecision;
    fn decide(&mut self, event: &BargeInEvent) -> (BargeInDecision, Option<Fallback>) {
        self.decide_traced(event)
    }
    fn label(decision: &BargeInDecision) -> String {
        match decision {
            BargeInDecision::Ignore => "ignore",
            BargeInDecision::Interrupt => "interrupt",
            BargeInDecision::Pause => "pause",
            BargeInDecision::Wait => "wait",
        }
        .to_string()
    }
    fn plugin(&self) -> &Arc<LoadedPlugin<Self::World>> {
        self.slot.plugin()
    }
}

impl Candidate for PluginTurn {
    type World = super::bindings::turn::EndOfTurnPolicy;
    type Input = TurnEvent;
    type Decision = TurnDecision;
    fn decide(&mut self, event: &TurnEvent) -> (TurnDecision, Option<Fallback>) {
        self.decide_traced(event)
    }
    fn label(decision: &TurnDecision) -> String {
        match decision {
            TurnDecision::EndTurn => "end_turn",
            TurnDecision::Wait(0) => "rules",
            TurnDecision::Wait(_) => "wait",
        }
        .to_string()
    }
    fn plugin(&self) -> &Arc<LoadedPlugin<Self::World>> {
        self.slot.plugin()
    }
}

/// A plug-in-chosen name made safe for a metric label: lowercase letters, digits and `_`, at
/// most 32 characters.
fn metric_label(name: &str) -> String {
    let label: String = name
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if label.is_empty() {
        "_".to_string()
    } else {
        label
    }
}

/// The labels of `voice_plugin_shadow_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairLabels {
    slot: &'static str,
    live: String,
    candidate: String,
}

/// Shadow figures of every slot, for `/metrics`.
pub(crate) struct ShadowCounters {
    /// Comparisons by (live, candidate) decision label: known only when compared, so children
    /// are created at run time, by the shadow threads (never a session).
    pairs: Family<PairLabels, Counter>,
    /// Per slot, the pairs counted so far with their handles; the lock keeps the cap exact.
    seen: [Mutex<HashMap<(String, String), Counter>>; 4],
    /// Live decisions not compared because the shadow was behind, by slot.
    pub dropped: [Counter; 4],
    /// Sessions not shadowed because the slot shadowed as many as allowed, by slot.
    pub skipped: [Counter; 4],
    /// Sessions shadowed now, by slot; also the admission count of `spawn`.
    pub active: [Gauge<u64, AtomicU64>; 4],
}

impl ShadowCounters {
    /// The shadow figures, registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let pairs = registered(
            registry,
            "voice_plugin_shadow",
            "Calls answered by a shadow version, by the live and the shadow decision",
            Family::default(),
        );
        let dropped = per_slot(&slot_family(
            registry,
            "voice_plugin_shadow_dropped",
            "Live decisions not compared because the shadow was behind",
        ));
        let skipped = per_slot(&slot_family(
            registry,
            "voice_plugin_shadow_sessions_skipped",
            "Times a session was not shadowed (checked again at its next turn) because PLUGIN_SHADOW_MAX_SESSIONS were",
        ));
        let active = per_slot(&slot_family(
            registry,
            "voice_plugin_shadow_sessions",
            "Sessions shadowed now",
        ));
        Self {
            pairs,
            seen: Default::default(),
            dropped,
            skipped,
            active,
        }
    }

    /// Counts one comparison; past `MAX_PAIRS` distinct pairs in the slot, new pairs count as
    /// (`other`, `other`).
    pub fn count(&self, slot: Slot, live: String, candidate: String) {
        let mut seen = self.seen[slot as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = (live, candidate);
        let key = if seen.contains_key(&key) || seen.len() < MAX_PAIRS {
            key
        } else {
            ("other".to_string(), "other".to_string())
        };
        seen.entry(key)
            .or_insert_with_key(|(live, candidate)| {
                self.pairs.get_or_create_owned(&PairLabels {
                    slot: slot.as_str(),
                    live: live.clone(),
                    candidate: candidate.clone(),
                })
            })
            .inc();
    }
}

/// What the session holds to show its decisions to a shadow version.
pub(crate) struct ShadowTap<C: Candidate> {
    tx: SyncSender<(C::Input, C::Decision)>,
    rt: Arc<Runtime>,
    plugin: Arc<LoadedPlugin<C::World>>,
}

impl<C: Candidate> Observer<C::Input, C::Decision> for ShadowTap<C> {
    fn observe(&self, input: &C::Input, decision: &C::Decision) {
        match self.tx.try_send((input.clone(), decision.clone())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let slot = <C::World as World>::SLOT;
                self.rt.metrics.shadow.dropped[slot as usize].inc();
                self.plugin.usage.dropped();
            }
        }
    }

    fn generation(&self) -> u64 {
        self.plugin.generation
    }
}

/// Starts shadowing a session with `candidate` (an instance of the shadow version); `None` when
/// the slot already shadows as many sessions as allowed or no thread could be started.
pub(crate) fn spawn<C: Candidate>(rt: &Arc<Runtime>, candidate: C) -> Option<ShadowTap<C>> {
    let slot = <C::World as World>::SLOT;
    let counters = &rt.metrics.shadow;
    let active = counters.active[slot as usize].inner();
    let admitted = active
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < rt.limits.shadow_max_sessions).then_some(n + 1)
        })
        .is_ok();
    if !admitted {
        counters.skipped[slot as usize].inc();
        return None;
    }
    let (tx, rx) = sync_channel::<(C::Input, C::Decision)>(QUEUE);
    let plugin = candidate.plugin().clone();
    let worker_rt = rt.clone();
    let started = std::thread::Builder::new()
        .name(format!("shadow-{slot}"))
        .spawn(move || {
            let mut candidate = candidate;
            for (input, live) in rx {
                compare(&worker_rt, &mut candidate, &input, &live);
            }
            drop(candidate);
            worker_rt.metrics.shadow.active[slot as usize]
                .inner()
                .fetch_sub(1, Ordering::AcqRel);
        });
    match started {
        Ok(_) => Some(ShadowTap {
            tx,
            rt: rt.clone(),
            plugin,
        }),
        Err(e) => {
            active.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(slot = %slot, error = %e, "shadow thread not started; session not shadowed");
            None
        }
    }
}

/// Runs the candidate on one observed input and counts the pair.
fn compare<C: Candidate>(rt: &Runtime, candidate: &mut C, input: &C::Input, live: &C::Decision) {
    let slot = <C::World as World>::SLOT;
    let (mine, fallback) = candidate.decide(input);
    let live_label = C::label(live);
    let mine_label = match fallback {
        None => C::label(&mine),
        Some(Fallback::Fault(_)) => "fault".to_string(),
        Some(_) => "fallback".to_string(),
    };
    let agreed = mine == *live;
    let plugin = candidate.plugin();
    if fallback.is_none() {
        plugin.usage.compared(agreed);
    }
    if !agreed && fallback.is_none() {
        let n = plugin.usage.snapshot().disagreed;
        if n <= LOGGED_DISAGREEMENTS || n.is_multiple_of(100) {
            tracing::info!(
                slot = %slot,
                shadow = &*plugin.label,
                live = %live_label,
                candidate = %mine_label,
                disagreements = n,
                "shadow version disagrees with the live decision"
            );
        }
    }
    rt.metrics.shadow.count(slot, live_label, mine_label);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_chosen_names_become_bounded_labels() {
        assert_eq!(metric_label("Book_Table"), "book_table");
        assert_eq!(metric_label("a\"b}\nc"), "a_b__c");
        assert_eq!(metric_label(""), "_");
        assert_eq!(metric_label(&"x".repeat(100)).len(), 32);
    }

    #[test]
    fn pairs_beyond_the_cap_count_as_other() {
        let mut registry = Registry::default();
        let counters = ShadowCounters::new(&mut registry);
        for i in 0..MAX_PAIRS + 5 {
            counters.count(Slot::Intent, "none".into(), format!("i{i}"));
        }
        counters.count(Slot::Intent, "none".into(), "i0".into());
        let mut text = String::new();
        crate::metrics::exposition::encode(&mut text, &registry);
        assert!(text.contains(
            "voice_plugin_shadow_total{slot=\"intent\",live=\"none\",candidate=\"i0\"} 2\n"
        ));
        assert!(text.contains(
            "voice_plugin_shadow_total{slot=\"intent\",live=\"other\",candidate=\"other\"} 5\n"
        ));
        let series = text
            .lines()
            .filter(|l| l.starts_with("voice_plugin_shadow_total{"))
            .count();
        assert_eq!(series, MAX_PAIRS + 1, "{text}");
    }
}
