//! Plain counters of the plug-in runtime, rendered as Prometheus text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::cache::Origin;
use super::faults::FaultKind;
use super::instance::Role;
use super::settings::Slot;
use super::shadow::ShadowCounters;

/// Counters of one slot.
#[derive(Default)]
pub(crate) struct SlotCounters {
    /// Calls made into plug-in code (including ones that faulted).
    pub calls: AtomicU64,
    /// Faults by kind, indexed like `FaultKind::ALL`.
    pub faults: [AtomicU64; 5],
    /// Calls answered by the built-in default (fault, quarantine or no instance).
    pub fallbacks: AtomicU64,
    /// Times a version of this slot was quarantined.
    pub quarantines: AtomicU64,
    /// Sessions that reached their fault limit and keep the built-in behaviour.
    pub sessions_benched: AtomicU64,
    /// Per-session instances created.
    pub instantiations: AtomicU64,
    /// Instances not created because the pool was full.
    pub pool_exhausted: AtomicU64,
    /// Reloads that swapped in a new version, and reloads rejected.
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Versions loaded (at start or by a reload), by origin, indexed like `Origin::ALL`.
    pub loads: [AtomicU64; 2],
}

impl SlotCounters {
    pub fn fault(&self, kind: FaultKind) {
        let index = FaultKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.faults[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A version of the slot was loaded, from the precompiled cache or compiled now.
    pub fn loaded(&self, origin: Origin) {
        let index = Origin::ALL.iter().position(|o| *o == origin).unwrap_or(0);
        self.loads[index].fetch_add(1, Ordering::Relaxed);
    }
}

/// Picks one counter of a slot.
type CounterOf = fn(&SlotCounters) -> &AtomicU64;

/// Counters of all slots.
#[derive(Default)]
pub(crate) struct Metrics {
    slots: [SlotCounters; 3],
    /// The same counters for shadow versions, kept apart from the slots' own.
    shadow_slots: [SlotCounters; 3],
    /// Shadow comparisons by decision pair (see `shadow.rs`).
    pub shadow: ShadowCounters,
    /// Canary versions rolled back by themselves, by slot.
    pub canary_rollbacks: [AtomicU64; 3],
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

    /// Prometheus text exposition; `quarantined(slot)` tells whether the slot's current
    /// version is quarantined.
    pub fn render(&self, quarantined: impl Fn(Slot) -> bool) -> String {
        let mut out = String::new();
        let simple: [(&str, &str, CounterOf); 7] = [
            (
                "voice_plugin_calls_total",
                "Calls into plug-in code.",
                |c| &c.calls,
            ),
            (
                "voice_plugin_fallbacks_total",
                "Calls answered by the built-in default.",
                |c| &c.fallbacks,
            ),
            (
                "voice_plugin_quarantines_total",
                "Plug-in versions quarantined.",
                |c| &c.quarantines,
            ),
            (
                "voice_plugin_sessions_benched_total",
                "Sessions that faulted repeatedly and keep the built-in behaviour.",
                |c| &c.sessions_benched,
            ),
            (
                "voice_plugin_instantiations_total",
                "Per-session plug-in instances created.",
                |c| &c.instantiations,
            ),
            (
                "voice_plugin_pool_exhausted_total",
                "Instances not created because the pool was full.",
                |c| &c.pool_exhausted,
            ),
            (
                "voice_plugin_reloads_failed_total",
                "Reloads rejected; the old version stayed.",
                |c| &c.reloads_failed,
            ),
        ];
        for (name, help, counter) in simple {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for slot in Slot::ALL {
                let value = counter(self.slot(slot)).load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{slot=\"{slot}\"}} {value}");
            }
        }
        let name = "voice_plugin_reloads_total";
        let _ = writeln!(
            out,
            "# HELP {name} Reloads that swapped in a new version.\n# TYPE {name} counter"
        );
        for slot in Slot::ALL {
            let value = self.slot(slot).reloads_ok.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{slot=\"{slot}\"}} {value}");
        }
        let name = "voice_plugin_loads_total";
        let _ = writeln!(
            out,
            "# HELP {name} Plug-in versions loaded, from the precompiled cache or compiled.\n# TYPE {name} counter"
        );
        for slot in Slot::ALL {
            for (i, origin) in Origin::ALL.iter().enumerate() {
                let value = self.slot(slot).loads[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{slot=\"{slot}\",origin=\"{}\"}} {value}",
                    origin.as_str()
                );
            }
        }
        let name = "voice_plugin_faults_total";
        let _ = writeln!(
            out,
            "# HELP {name} Plug-in faults by kind.\n# TYPE {name} counter"
        );
        for slot in Slot::ALL {
            for (i, kind) in FaultKind::ALL.iter().enumerate() {
                let value = self.slot(slot).faults[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{slot=\"{slot}\",kind=\"{}\"}} {value}",
                    kind.as_str()
                );
            }
        }
        let shadow_counters: [(&str, &str, CounterOf); 3] = [
            (
                "voice_plugin_shadow_calls_total",
                "Calls into shadow versions.",
                |c| &c.calls,
            ),
            (
                "voice_plugin_shadow_fallbacks_total",
                "Shadow calls the shadow version could not answer.",
                |c| &c.fallbacks,
            ),
            (
                "voice_plugin_shadow_instantiations_total",
                "Shadow instances created.",
                |c| &c.instantiations,
            ),
        ];
        for (name, help, counter) in shadow_counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for slot in Slot::ALL {
                let value = counter(&self.shadow_slots[slot as usize]).load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{slot=\"{slot}\"}} {value}");
            }
        }
        let name = "voice_plugin_shadow_faults_total";
        let _ = writeln!(
            out,
            "# HELP {name} Faults of shadow versions.\n# TYPE {name} counter"
        );
        for slot in Slot::ALL {
            let value: u64 = self.shadow_slots[slot as usize]
                .faults
                .iter()
                .map(|f| f.load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(out, "{name}{{slot=\"{slot}\"}} {value}");
        }
        self.shadow.render(&mut out);
        let name = "voice_plugin_canary_rollbacks_total";
        let _ = writeln!(
            out,
            "# HELP {name} Canary versions rolled back by themselves.\n# TYPE {name} counter"
        );
        for slot in Slot::ALL {
            let value = self.canary_rollbacks[slot as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{slot=\"{slot}\"}} {value}");
        }
        let gauges = [
            (
                "voice_plugin_quarantined",
                "1 when the slot's plug-in is quarantined.",
            ),
            (
                "voice_plugin_degraded",
                "1 when the built-in behaviour serves the slot in place of its plug-in.",
            ),
        ];
        for (name, help) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for slot in Slot::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{slot=\"{slot}\"}} {}",
                    u8::from(quarantined(slot))
                );
            }
        }
        out
    }
}
