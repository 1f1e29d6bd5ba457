//! Counters of the plug-in runtime, in the runtime's own prometheus-client registry (one per
//! runtime: tests start many runtimes in one process).
//!
//! Every labelled series of these families is known when the runtime starts (each slot, each
//! fault kind, each load origin), so each `Family` child is created here, once, and its handle
//! kept in [`SlotCounters`]. A handle is a clone of the child, sharing its atomic: a call
//! counting is one atomic addition, whereas `Family::get_or_create` takes the family's lock,
//! which is why no session path calls it. Resolving every child up front also makes every
//! series show from the start, at 0. The one family whose labels are known only at run time,
//! the shadow comparisons, is in `shadow.rs`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::{exposition, registered};

use super::cache::Origin;
use super::faults::FaultKind;
use super::instance::Role;
use super::settings::Slot;
use super::shadow::ShadowCounters;

/// The `slot` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SlotLabel {
    pub slot: &'static str,
}

impl SlotLabel {
    pub fn of(slot: Slot) -> Self {
        Self {
            slot: slot.as_str(),
        }
    }
}

/// The `slot` and `kind` labels of `voice_plugin_faults_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlotKind {
    slot: &'static str,
    kind: &'static str,
}

/// The `slot` and `origin` labels of `voice_plugin_loads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlotOrigin {
    slot: &'static str,
    origin: &'static str,
}

/// A family labelled by slot, registered in `registry`.
pub(crate) fn slot_family<M>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> Family<SlotLabel, M>
where
    M: Default,
    Family<SlotLabel, M>: prometheus_client::registry::Metric + Clone,
{
    registered(registry, name, help, Family::default())
}

/// The children of `family` for every slot, in `Slot::ALL` order.
pub(crate) fn per_slot<M: Clone + Default>(family: &Family<SlotLabel, M>) -> [M; 4] {
    Slot::ALL.map(|slot| family.get_or_create_owned(&SlotLabel::of(slot)))
}

/// Counters of one slot: handles on the slot's children of the runtime's families.
pub(crate) struct SlotCounters {
    /// Calls made into plug-in code (including ones that faulted).
    pub calls: Counter,
    /// Faults by kind, indexed like `FaultKind::ALL`.
    pub faults: [Counter; 5],
    /// Calls answered by the built-in default (fault, quarantine or no instance).
    pub fallbacks: Counter,
    /// Times a version of this slot was quarantined.
    pub quarantines: Counter,
    /// Sessions that reached their fault limit and keep the built-in behaviour.
    pub sessions_benched: Counter,
    /// Per-session instances created.
    pub instantiations: Counter,
    /// Instances not created because the pool was full.
    pub pool_exhausted: Counter,
    /// Reloads that swapped in a new version, and reloads rejected.
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    /// Versions loaded (at start or by a reload), by origin, indexed like `Origin::ALL`.
    pub loads: [Counter; 2],
}

impl SlotCounters {
    pub fn fault(&self, kind: FaultKind) {
        let index = FaultKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.faults[index].inc();
    }

    /// Adds one to `counter` (one atomic addition).
    pub fn inc(counter: &Counter) {
        counter.inc();
    }

    /// A version of the slot was loaded, from the precompiled cache or compiled now.
    pub fn loaded(&self, origin: Origin) {
        let index = Origin::ALL.iter().position(|o| *o == origin).unwrap_or(0);
        self.loads[index].inc();
    }
}

/// Counters of all slots, and the registry exposing them.
pub(crate) struct Metrics {
    slots: [SlotCounters; 4],
    /// The same counters for shadow versions, kept apart from the slots' own.
    shadow_slots: [SlotCounters; 4],
    /// Shadow comparisons by decision pair (see `shadow.rs`).
    pub shadow: ShadowCounters,
    /// Canary versions rolled back by themselves, by slot.
    pub canary_rollbacks: [Counter; 4],
    /// Set from the slots' state just before each encoding.
    quarantined: [Gauge; 4],
    degraded: [Gauge; 4],
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let calls = slot_family(r, "voice_plugin_calls", "Calls into plug-in code");
        let fallbacks = slot_family(
            r,
            "voice_plugin_fallbacks",
            "Calls answered by the built-in default",
        );
        let quarantines = slot_family(
            r,
            "voice_plugin_quarantines",
            "Plug-in versions quarantined",
        );
        let benched = slot_family(
            r,
            "voice_plugin_sessions_benched",
            "Sessions that faulted repeatedly and keep the built-in behaviour",
        );
        let instantiations = slot_family(
            r,
            "voice_plugin_instantiations",
            "Per-session plug-in instances created",
        );
        let pool_exhausted = slot_family(
            r,
            "voice_plugin_pool_exhausted",
            "Instances not created because the pool was full",
        );
        let reloads_failed = slot_family(
            r,
            "voice_plugin_reloads_failed",
            "Reloads rejected; the old version stayed",
        );
        let reloads = slot_family(
            r,
            "voice_plugin_reloads",
            "Reloads that swapped in a new version",
        );
        let loads: Family<SlotOrigin, Counter> = registered(
            r,
            "voice_plugin_loads",
            "Plug-in versions loaded, from the precompiled cache or compiled",
            Family::default(),
        );
        let faults: Family<SlotKind, Counter> = registered(
            r,
            "voice_plugin_faults",
            "Plug-in faults by kind",
            Family::default(),
        );
        let shadow_calls =
            slot_family(r, "voice_plugin_shadow_calls", "Calls into shadow versions");
        let shadow_fallbacks = slot_family(
            r,
            "voice_plugin_shadow_fallbacks",
            "Shadow calls the shadow version could not answer",
        );
        let shadow_instantiations = slot_family(
            r,
            "voice_plugin_shadow_instantiations",
            "Shadow instances created",
        );
        let shadow_faults =
            slot_family(r, "voice_plugin_shadow_faults", "Faults of shadow versions");
        let shadow = ShadowCounters::new(r);
        let canary_rollbacks = per_slot(&slot_family(
            r,
            "voice_plugin_canary_rollbacks",
            "Canary versions rolled back by themselves",
        ));
        let quarantined = per_slot(&slot_family(
            r,
            "voice_plugin_quarantined",
            "1 when the slot's plug-in is quarantined",
        ));
        let degraded = per_slot(&slot_family(
            r,
            "voice_plugin_degraded",
            "1 when the built-in behaviour serves the slot in place of its plug-in",
        ));

        let slots = Slot::ALL.map(|slot| {
            let label = SlotLabel::of(slot);
            SlotCounters {
                calls: calls.get_or_create_owned(&label),
                faults: FaultKind::ALL.map(|kind| {
                    faults.get_or_create_owned(&SlotKind {
                        slot: slot.as_str(),
                        kind: kind.as_str(),
                    })
                }),
                fallbacks: fallbacks.get_or_create_owned(&label),
                quarantines: quarantines.get_or_create_owned(&label),
                sessions_benched: benched.get_or_create_owned(&label),
                instantiations: instantiations.get_or_create_owned(&label),
                pool_exhausted: pool_exhausted.get_or_create_owned(&label),
                reloads_ok: reloads.get_or_create_owned(&label),
                reloads_failed: reloads_failed.get_or_create_owned(&label),
                loads: Origin::ALL.map(|origin| {
                    loads.get_or_create_owned(&SlotOrigin {
                        slot: slot.as_str(),
                        origin: origin.as_str(),
                    })
                }),
            }
        });
        // Shadow versions expose calls, fallbacks, instantiations and faults (all kinds in one
        // series: every kind's handle is the same child); the rest is counted unexposed.
        let shadow_slots = Slot::ALL.map(|slot| {
            let label = SlotLabel::of(slot);
            let faults: Counter = shadow_faults.get_or_create_owned(&label);
            SlotCounters {
                calls: shadow_calls.get_or_create_owned(&label),
                faults: FaultKind::ALL.map(|_| faults.clone()),
                fallbacks: shadow_fallbacks.get_or_create_owned(&label),
                quarantines: Counter::default(),
                sessions_benched: Counter::default(),
                instantiations: shadow_instantiations.get_or_create_owned(&label),
                pool_exhausted: Counter::default(),
                reloads_ok: Counter::default(),
                reloads_failed: Counter::default(),
                loads: Default::default(),
            }
        });
        Self {
            slots,
            shadow_slots,
            shadow,
            canary_rollbacks,
            quarantined,
            degraded,
            registry,
        }
    }
}

impl Metrics {
    pub fn slot(&self, slot: Slot) -> &SlotCounters {
        &self.slots[slot as usize]
    }

    /// The counters an instance of `role` moves.
    pub fn counters(&self, slot: Slot, role: Role) -> &SlotCounters {
        match role {
            Role::Serving => &self.slots[slot as usize],
            Role::Shadow => &self.shadow_slots[slot as usize],
        }
    }

    /// Appends the OpenMetrics text of the runtime's counters to `out` (without `# EOF`);
    /// `quarantined(slot)` tells whether the slot's current version is quarantined, which sets
    /// the quarantined and degraded gauges first.
    pub fn encode(&self, out: &mut String, quarantined: impl Fn(Slot) -> bool) {
        for slot in Slot::ALL {
            let value = i64::from(quarantined(slot));
            self.quarantined[slot as usize].set(value);
            self.degraded[slot as usize].set(value);
        }
        exposition::encode(out, &self.registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::parse::{exposed_names, DASHBOARD_NAMES};
    use crate::plugins::record::Recorder;
    use crate::plugins::settings::RecordSettings;

    fn text(metrics: &Metrics, quarantined: impl Fn(Slot) -> bool) -> String {
        let mut out = String::new();
        metrics.encode(&mut out, quarantined);
        out
    }

    #[test]
    fn a_child_counted_through_its_handle_shows_in_the_text() {
        let metrics = Metrics::default();
        metrics.slot(Slot::Intent).calls.inc();
        SlotCounters::inc(&metrics.slot(Slot::Intent).calls);
        metrics.slot(Slot::BargeIn).fault(FaultKind::Deadline);
        metrics.slot(Slot::Prompt).loaded(Origin::Compiled);
        metrics
            .counters(Slot::Prompt, Role::Shadow)
            .fault(FaultKind::Trap);
        metrics
            .counters(Slot::Prompt, Role::Shadow)
            .fault(FaultKind::Memory);
        metrics.canary_rollbacks[Slot::Prompt as usize].inc();
        let text = text(&metrics, |_| false);
        for line in [
            "voice_plugin_calls_total{slot=\"intent\"} 2",
            "voice_plugin_calls_total{slot=\"prompt\"} 0",
            "voice_plugin_faults_total{slot=\"barge_in\",kind=\"deadline\"} 1",
            "voice_plugin_faults_total{slot=\"barge_in\",kind=\"trap\"} 0",
            "voice_plugin_loads_total{slot=\"prompt\",origin=\"compiled\"} 1",
            "voice_plugin_loads_total{slot=\"prompt\",origin=\"cache\"} 0",
            "voice_plugin_shadow_faults_total{slot=\"prompt\"} 2",
            "voice_plugin_canary_rollbacks_total{slot=\"prompt\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
        // A shadow's faults stay out of the slot's own figures.
        assert!(!text.contains("kind=\"trap\"} 1"), "{text}");
    }

    #[test]
    fn quarantined_and_degraded_follow_the_slots_at_each_encoding() {
        let metrics = Metrics::default();
        let text1 = text(&metrics, |slot| slot == Slot::Intent);
        assert!(
            text1.contains("voice_plugin_quarantined{slot=\"intent\"} 1\n"),
            "{text1}"
        );
        assert!(
            text1.contains("voice_plugin_degraded{slot=\"intent\"} 1\n"),
            "{text1}"
        );
        assert!(
            text1.contains("voice_plugin_degraded{slot=\"prompt\"} 0\n"),
            "{text1}"
        );
        let text2 = text(&metrics, |_| false);
        assert!(
            text2.contains("voice_plugin_degraded{slot=\"intent\"} 0\n"),
            "{text2}"
        );
    }

    #[test]
    fn the_whole_exposition_keeps_every_dashboard_name() {
        let dir = std::env::temp_dir().join(format!("voice-host-metrics-{}", std::process::id()));
        let recorder = Recorder::start(&RecordSettings {
            dir: dir.clone(),
            text: false,
            max_file_bytes: 1 << 20,
            rotated_files: 1,
        })
        .unwrap();
        let plugins = Metrics::default();
        let mut body = String::new();
        crate::metrics::Metrics::default().encode(&mut body);
        plugins.encode(&mut body, |_| false);
        recorder.encode(&mut body);
        // A family with no series yet is left out: the shadow comparisons show from the first.
        let mut before = body.clone();
        exposition::finish(&mut before);
        let names = exposed_names(&before);
        assert!(!names.iter().any(|n| n == "voice_plugin_shadow_total"));

        plugins
            .shadow
            .count(Slot::Intent, "none".into(), "none".into());
        body.clear();
        crate::metrics::Metrics::default().encode(&mut body);
        plugins.encode(&mut body, |_| false);
        recorder.encode(&mut body);
        exposition::finish(&mut body);
        let mut names = exposed_names(&body);
        names.sort();
        assert_eq!(names, DASHBOARD_NAMES, "{body}");
        drop(recorder);
        let _ = std::fs::remove_dir_all(dir);
    }
}
