//! A session's instance of one slot's plug-in: its own store (so memory is bounded per session
//! and freed when the session ends), limits on every call, and fault handling.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

use super::bindings::HostState;
use super::deadline;
use super::error::one_line;
use super::faults::FaultKind;
use super::loaded::LoadedPlugin;
use super::metrics::SlotCounters;
use super::runtime::Runtime;
use super::worlds::World;

/// A live instance: its store, typed exports and the pool slot it occupies.
pub(crate) struct Live<W: World> {
    pub store: Store<HostState>,
    pub bindings: W,
    _permit: OwnedSemaphorePermit,
}

/// Why no instance could be created.
#[derive(Debug)]
pub(crate) enum InstantiateError {
    /// Every pool slot is taken; not the plug-in's fault.
    PoolExhausted,
    /// Instantiation or `init` failed.
    Fault(FaultKind, String),
}

/// Creates an instance in a fresh store and runs `init` with the version's configuration.
pub(crate) fn instantiate<W: World>(
    rt: &Runtime,
    plugin: &LoadedPlugin<W>,
) -> Result<Live<W>, InstantiateError> {
    let permit = rt.try_permit().ok_or(InstantiateError::PoolExhausted)?;
    let state = HostState::new(
        plugin.label.clone(),
        rt.limits.memory_bytes,
        rt.limits.table_elements,
    );
    let mut store = Store::new(&rt.engine.engine, state);
    store.limiter(|s| s);
    deadline::install(&mut store);
    let _ticking = deadline::arm(&mut store, rt.limits.init_budget, &rt.engine);
    let bindings = W::instantiate(&plugin.pre, &mut store)
        .map_err(|e| InstantiateError::Fault(FaultKind::Instantiate, one_line(&e)))?;
    match bindings.init(&mut store, &plugin.config) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            return Err(InstantiateError::Fault(
                FaultKind::Init,
                format!("init refused the configuration: {}", bounded(&reason)),
            ))
        }
        Err(e) => {
            let kind = match FaultKind::of_call(&e, store.data()) {
                FaultKind::Trap => FaultKind::Init,
                other => other,
            };
            return Err(InstantiateError::Fault(kind, one_line(&e)));
        }
    }
    Ok(Live {
        store,
        bindings,
        _permit: permit,
    })
}

/// A guest-supplied reason, cut to one bounded line.
fn bounded(reason: &str) -> String {
    let line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(200).collect()
}

/// Source of the numbers that tell sessions apart in fault windows: assigned by the host, so a
/// client cannot make its faults look like another session's by reusing an id.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// One slot of one session.
pub(crate) struct SlotInstance<W: World> {
    rt: Arc<Runtime>,
    plugin: Arc<LoadedPlugin<W>>,
    live: Option<Live<W>>,
    /// This session's number in the version's fault window.
    session: u64,
    /// Faults of this session with this version.
    faults: u32,
    /// Whether a full pool was already reported for this slot (one warning, not one per call).
    pool_warned: bool,
}

impl<W: World> SlotInstance<W> {
    /// Instantiates `plugin` for a session. If that fails the slot answers with the built-in
    /// default and tries again on its next call.
    pub fn new(rt: Arc<Runtime>, plugin: Arc<LoadedPlugin<W>>) -> Self {
        let mut slot = Self {
            rt,
            plugin,
            live: None,
            session: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            faults: 0,
            pool_warned: false,
        };
        if !slot.plugin.faults.is_quarantined() {
            slot.ensure_live();
        }
        slot
    }

    /// The version this slot runs.
    pub fn plugin(&self) -> &Arc<LoadedPlugin<W>> {
        &self.plugin
    }

    fn counters(&self) -> &SlotCounters {
        self.rt.metrics.slot(W::SLOT)
    }

    /// Whether this session has faulted often enough to keep the built-in behaviour for the
    /// rest of its life with this version.
    fn benched(&self) -> bool {
        self.faults >= self.rt.limits.session_fault_limit
    }

    fn ensure_live(&mut self) -> bool {
        if self.live.is_some() {
            return true;
        }
        match instantiate(&self.rt, &self.plugin) {
            Ok(live) => {
                SlotCounters::inc(&self.counters().instantiations);
                self.live = Some(live);
                self.pool_warned = false;
                true
            }
            Err(InstantiateError::PoolExhausted) => {
                SlotCounters::inc(&self.counters().pool_exhausted);
                if std::mem::replace(&mut self.pool_warned, true) {
                    return false;
                }
                tracing::warn!(
                    slot = %W::SLOT,
                    plugin = &*self.plugin.label,
                    "plug-in instance pool is full; using the built-in behaviour"
                );
                false
            }
            Err(InstantiateError::Fault(kind, reason)) => {
                self.fault(kind, &reason);
                false
            }
        }
    }

    /// Runs `call` on the live instance under the call deadline. `None` means the caller must
    /// use the built-in default: the plug-in is quarantined, this session reached its fault
    /// limit, there is no instance, or the call faulted (in which case the fault is logged and
    /// counted and the instance is dropped, to be replaced on the next call).
    pub fn call<R>(
        &mut self,
        call: impl FnOnce(&W, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Option<R> {
        if self.benched() || self.plugin.faults.is_quarantined() || !self.ensure_live() {
            SlotCounters::inc(&self.counters().fallbacks);
            return None;
        }
        SlotCounters::inc(&self.counters().calls);
        let budget = self.rt.limits.call_budget;
        let live = self.live.as_mut()?;
        live.store.data_mut().begin_call();
        let _ticking = deadline::arm(&mut live.store, budget, &self.rt.engine);
        match call(&live.bindings, &mut live.store) {
            Ok(value) => Some(value),
            Err(err) => {
                let kind = FaultKind::of_call(&err, live.store.data());
                // A trapped store is poisoned: drop it (freeing its pool slot) and start over.
                self.live = None;
                self.fault(kind, &one_line(&err));
                SlotCounters::inc(&self.counters().fallbacks);
                None
            }
        }
    }

    /// Reports a result the host cannot use (e.g. an empty message list): a fallback, not a
    /// fault, since the instance itself is healthy.
    pub fn unusable_result(&self, what: &str) {
        SlotCounters::inc(&self.counters().fallbacks);
        tracing::warn!(
            slot = %W::SLOT,
            plugin = &*self.plugin.label,
            "plug-in returned {what}; using the built-in behaviour for this call"
        );
    }

    fn fault(&mut self, kind: FaultKind, reason: &str) {
        self.faults = self.faults.saturating_add(1);
        let counters = self.rt.metrics.slot(W::SLOT);
        counters.fault(kind);
        tracing::warn!(
            slot = %W::SLOT,
            plugin = &*self.plugin.label,
            kind = kind.as_str(),
            error = reason,
            "plug-in fault; using the built-in behaviour for this call"
        );
        if self.faults == self.rt.limits.session_fault_limit {
            SlotCounters::inc(&counters.sessions_benched);
            self.live = None;
            tracing::warn!(
                slot = %W::SLOT,
                plugin = &*self.plugin.label,
                faults = self.faults,
                "plug-in faulted repeatedly in this session; the built-in behaviour serves this \
                 session's slot until the session ends or a new version is loaded"
            );
        }
        if let Some(backoff) = self.plugin.faults.record(self.session) {
            SlotCounters::inc(&counters.quarantines);
            tracing::error!(
                slot = %W::SLOT,
                plugin = &*self.plugin.label,
                faults = self.plugin.faults.total(),
                retry_in_ms = backoff.as_millis() as u64,
                "plug-in faulted in several sessions and is quarantined; the built-in behaviour \
                 serves this slot until the version is retried"
            );
        }
    }
}
