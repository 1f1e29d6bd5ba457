//! Shadow versions: a candidate answers every call the session's behaviour answered, on a thread
//! of its own, and its answers are compared with the live ones and counted.
//!
//! The session hands each (input, live decision) to its [`ShadowTap`] and goes on: the hand-off
//! never blocks (a shadow that falls behind has observations dropped and counted), so a shadow
//! can neither delay nor change what callers hear. Each shadowed session has one thread owning
//! the candidate's instance; it ends when the session drops the tap. At most
//! `PLUGIN_SHADOW_MAX_SESSIONS` sessions are shadowed at once; further sessions are counted as
//! skipped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use crate::behaviour::{
    BargeInDecision, BargeInEvent, Intent, IntentInput, Observer, PromptInput, PromptOutput,
};

use super::behaviours::{PluginBargeIn, PluginIntent, PluginPrompt};
use super::instance::Fallback;
use super::loaded::LoadedPlugin;
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

/// Shadow figures of every slot, for `/metrics`.
#[derive(Default)]
pub(crate) struct ShadowCounters {
    pairs: [Mutex<BTreeMap<(String, String), u64>>; 3],
    dropped: [AtomicU64; 3],
    skipped: [AtomicU64; 3],
    active: [AtomicU64; 3],
}

impl ShadowCounters {
    fn count(&self, slot: Slot, live: String, candidate: String) {
        let mut pairs = self.pairs[slot as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = (live, candidate);
        let key = if pairs.contains_key(&key) || pairs.len() < MAX_PAIRS {
            key
        } else {
            ("other".to_string(), "other".to_string())
        };
        *pairs.entry(key).or_default() += 1;
    }

    /// Prometheus text of the shadow comparisons.
    pub fn render(&self, out: &mut String) {
        let name = "voice_plugin_shadow_total";
        let _ = writeln!(
            out,
            "# HELP {name} Calls answered by a shadow version, by the live and the shadow decision.\n# TYPE {name} counter"
        );
        for slot in Slot::ALL {
            let pairs = self.pairs[slot as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for ((live, candidate), n) in pairs.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{slot=\"{slot}\",live=\"{live}\",candidate=\"{candidate}\"}} {n}"
                );
            }
        }
        let counters: [(&str, &str, &str, &[AtomicU64; 3]); 3] = [
            (
                "voice_plugin_shadow_dropped_total",
                "counter",
                "Live decisions not compared because the shadow was behind.",
                &self.dropped,
            ),
            (
                "voice_plugin_shadow_sessions_skipped_total",
                "counter",
                "Times a session was not shadowed (checked again at its next turn) because PLUGIN_SHADOW_MAX_SESSIONS were.",
                &self.skipped,
            ),
            (
                "voice_plugin_shadow_sessions",
                "gauge",
                "Sessions shadowed now.",
                &self.active,
            ),
        ];
        for (name, kind, help, values) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for slot in Slot::ALL {
                let value = values[slot as usize].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{slot=\"{slot}\"}} {value}");
            }
        }
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
                self.rt.metrics.shadow.dropped[slot as usize].fetch_add(1, Ordering::Relaxed);
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
    let active = &counters.active[slot as usize];
    let admitted = active
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < rt.limits.shadow_max_sessions).then_some(n + 1)
        })
        .is_ok();
    if !admitted {
        counters.skipped[slot as usize].fetch_add(1, Ordering::Relaxed);
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
            worker_rt.metrics.shadow.active[slot as usize].fetch_sub(1, Ordering::AcqRel);
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
        let counters = ShadowCounters::default();
        for i in 0..MAX_PAIRS + 5 {
            counters.count(Slot::Intent, "none".into(), format!("i{i}"));
        }
        counters.count(Slot::Intent, "none".into(), "i0".into());
        let mut text = String::new();
        counters.render(&mut text);
        assert!(text.contains(
            "voice_plugin_shadow_total{slot=\"intent\",live=\"none\",candidate=\"i0\"} 2"
        ));
        assert!(text.contains(
            "voice_plugin_shadow_total{slot=\"intent\",live=\"other\",candidate=\"other\"} 5"
        ));
    }
}
