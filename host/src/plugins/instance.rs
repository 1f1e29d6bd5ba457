//! A session's instance of one slot's plug-in: its own store (so memory is bounded per session
//! and freed when the session ends), limits on every call, and fault handling.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

use super::bindings::HostState;
use super::deadline;
use super::error::one_line;
use super::faults::FaultKind;
use super::loaded::LoadedPlugin;
use super::metrics::SlotCounters;
use super::record::{Call, CallRecord};
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

/// Why the built-in behaviour answered a call in place of the plug-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// The version is quarantined.
    Quarantined,
    /// This session reached its fault limit with this version.
    Benched,
    /// No instance could be created because the instance pool is full.
    PoolFull,
    /// The call, or the instantiation before it, faulted.
    Fault(FaultKind),
    /// The plug-in answered something the host cannot use (e.g. an LLM request without
    /// messages).
    Unusable,
}

/// What an instance's answers are for: the session's decisions, or a shadow's comparison
/// (counted apart, so a shadow never moves the slot's figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Serving,
    Shadow,
}

/// Source of the numbers that tell sessions apart in fault windows: assigned by the host, so a
/// client cannot make its faults look like another session's by reusing an id.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// One slot of one session.
pub(crate) struct SlotInstance<W: World> {
    rt: Arc<Runtime>,
    plugin: Arc<LoadedPlugin<W>>,
    role: Role,
    live: Option<Live<W>>,
    /// The session's id, for recordings.
    session_id: Arc<str>,
    /// This session's number in the version's fault window; recordings call it `instance`.
    session: u64,
    /// Faults of this session with this version.
    faults: u32,
    /// Whether a full pool was already reported for this slot (one warning, not one per call).
    pool_warned: bool,
}

impl<W: World> SlotInstance<W> {
    /// Instantiates `plugin` for a session. If that fails the slot answers with the built-in
    /// default and tries again on its next call.
    pub fn new(rt: Arc<Runtime>, plugin: Arc<LoadedPlugin<W>>, session_id: Arc<str>) -> Self {
        Self::with_role(rt, plugin, session_id, Role::Serving)
    }

    /// [`SlotInstance::new`] for a shadow version.
    pub fn shadow(rt: Arc<Runtime>, plugin: Arc<LoadedPlugin<W>>, session_id: Arc<str>) -> Self {
        Self::with_role(rt, plugin, session_id, Role::Shadow)
    }

    fn with_role(
        rt: Arc<Runtime>,
        plugin: Arc<LoadedPlugin<W>>,
        session_id: Arc<str>,
        role: Role,
    ) -> Self {
        plugin.usage.session();
        let mut slot = Self {
            rt,
            plugin,
            role,
            live: None,
            session_id,
            session: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            faults: 0,
            pool_warned: false,
        };
        if !slot.plugin.faults.is_quarantined() {
            slot.live = slot.fresh_instance().ok();
        }
        slot
    }

    /// Drops the live instance: the next call gets a fresh one, as after a fault (replay
    /// mirrors a recorded fault this way).
    pub fn restart(&mut self) {
        self.live = None;
    }

    /// The version this slot runs.
    pub fn plugin(&self) -> &Arc<LoadedPlugin<W>> {
        &self.plugin
    }

    fn counters(&self) -> &SlotCounters {
        self.rt.metrics.counters(W::SLOT, self.role)
    }

    /// The call was answered by the built-in behaviour.
    fn fell_back(&self) {
        SlotCounters::inc(&self.counters().fallbacks);
        self.plugin.usage.fallback();
    }

    /// Whether this session has faulted often enough to keep the built-in behaviour for the
    /// rest of its life with this version.
    fn benched(&self) -> bool {
        self.faults >= self.rt.limits.session_fault_limit
    }

    /// A new instance, or why there is none.
    fn fresh_instance(&mut self) -> Result<Live<W>, Fallback> {
        match instantiate(&self.rt, &self.plugin) {
            Ok(live) => {
                SlotCounters::inc(&self.counters().instantiations);
                self.pool_warned = false;
                Ok(live)
            }
            Err(InstantiateError::PoolExhausted) => {
                SlotCounters::inc(&self.counters().pool_exhausted);
                if !std::mem::replace(&mut self.pool_warned, true) {
                    tracing::warn!(
                        slot = %W::SLOT,
                        plugin = &*self.plugin.label,
                        "plug-in instance pool is full; using the built-in behaviour"
                    );
                }
                Err(Fallback::PoolFull)
            }
            Err(InstantiateError::Fault(kind, reason)) => {
                self.plugin.usage.attempt();
                self.fault(kind, &reason);
                Err(Fallback::Fault(kind))
            }
        }
    }

    /// Runs `call` on the live instance under the call deadline. `Err` tells why the caller
    /// must use the built-in default: the plug-in is quarantined, this session reached its
    /// fault limit, there is no instance, or the call faulted (in which case the fault is logged
    /// and counted and the instance is dropped, to be replaced on the next call).
    pub fn call<R>(
        &mut self,
        call: impl FnOnce(&W, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Fallback> {
        let (live, rt) = match self.start_call() {
            Ok(ready) => ready,
            Err(why) => {
                self.fell_back();
                return Err(why);
            }
        };
        live.store.data_mut().begin_call();
        let outcome = {
            let _ticking = deadline::arm(&mut live.store, rt.limits.call_budget, &rt.engine);
            call(&live.bindings, &mut live.store)
        };
        match outcome {
            Ok(value) => Ok(value),
            Err(err) => {
                let kind = FaultKind::of_call(&err, live.store.data());
                // A trapped store is poisoned: drop it (freeing its pool slot) and start over.
                self.live = None;
                self.fault(kind, &one_line(&err));
                self.fell_back();
                Err(Fallback::Fault(kind))
            }
        }
    }

    /// The instance a call may run on (created when there is none), with the runtime's limits,
    /// the call counted; or why the built-in behaviour must answer instead.
    fn start_call(&mut self) -> Result<(&mut Live<W>, &Runtime), Fallback> {
        if self.benched() {
            return Err(Fallback::Benched);
        }
        if self.plugin.faults.is_quarantined() {
            return Err(Fallback::Quarantined);
        }
        let live = match self.live {
            Some(ref mut live) => live,
            None => {
                let fresh = self.fresh_instance()?;
                self.live.insert(fresh)
            }
        };
        SlotCounters::inc(&self.rt.metrics.counters(W::SLOT, self.role).calls);
        self.plugin.usage.attempt();
        Ok((live, &self.rt))
    }

    /// Reports a result the host cannot use (e.g. an empty message list): a fallback, not a
    /// fault, since the instance itself is healthy.
    pub fn unusable_result(&self, what: &str) -> Fallback {
        self.fell_back();
        tracing::warn!(
            slot = %W::SLOT,
            plugin = &*self.plugin.label,
            "plug-in returned {what}; using the built-in behaviour for this call"
        );
        Fallback::Unusable
    }

    /// Hands a call of this session to the recorder, when recording is on; `call` builds the
    /// record's input and decision only then. Never blocks (see `record/writer.rs`).
    pub fn record(
        &self,
        turn: u32,
        took: Duration,
        fallback: Option<Fallback>,
        call: impl FnOnce() -> Call,
    ) {
        let Some(recorder) = &self.rt.recorder else {
            return;
        };
        recorder.send(CallRecord {
            at_ms: super::record::now_ms(),
            plugin: self.plugin.info.name.clone(),
            version: self.plugin.info.short_hash().to_string(),
            session: self.session_id.clone(),
            instance: self.session,
            turn,
            call: call(),
            fallback,
            duration: took,
        });
    }

    fn fault(&mut self, kind: FaultKind, reason: &str) {
        self.faults = self.faults.saturating_add(1);
        self.plugin.usage.fault();
        let counters = self.rt.metrics.counters(W::SLOT, self.role);
        counters.fault(kind);
        tracing::warn!(
            slot = %W::SLOT,
            plugin = &*self.plugin.label,
            shadow = self.role == Role::Shadow,
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
