//! Shared server state: configuration, session capacity, drain signals.

use crate::config::Config;
use crate::plugins::PluginRegistry;
use crate::session::SessionDeps;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// State shared by all requests.
pub struct AppState {
    pub config: Arc<Config>,
    pub deps: Arc<SessionDeps>,
    /// Reasons a provider is unavailable (reported by `/readyz`).
    pub provider_problems: Vec<String>,
    pub registry: Option<Arc<PluginRegistry>>,
    capacity: Arc<Semaphore>,
    draining: AtomicBool,
    /// Becomes true when the server starts draining: sessions finish their turn and close.
    drain_tx: watch::Sender<bool>,
    /// Becomes true when the drain timeout passed: sessions close now.
    force_tx: watch::Sender<bool>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        deps: Arc<SessionDeps>,
        provider_problems: Vec<String>,
        registry: Option<Arc<PluginRegistry>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            capacity: Arc::new(Semaphore::new(config.max_sessions)),
            config,
            deps,
            provider_problems,
            registry,
            draining: AtomicBool::new(false),
            drain_tx: watch::channel(false).0,
            force_tx: watch::channel(false).0,
        })
    }

    /// A session slot, or `None` at capacity.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.capacity.clone().try_acquire_owned().ok()
    }

    pub fn active_sessions(&self) -> usize {
        self.config.max_sessions - self.capacity.available_permits()
    }

    pub fn at_capacity(&self) -> bool {
        self.capacity.available_permits() == 0
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn drain_signal(&self) -> watch::Receiver<bool> {
        self.drain_tx.subscribe()
    }

    pub fn force_signal(&self) -> watch::Receiver<bool> {
        self.force_tx.subscribe()
    }

    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let _ = self.drain_tx.send(true);
    }

    pub fn force_close(&self) {
        let _ = self.force_tx.send(true);
    }

    /// Resolves when no session holds a slot.
    pub async fn all_sessions_ended(&self) {
        let all = self.config.max_sessions.min(u32::MAX as usize) as u32;
        if let Ok(permits) = self.capacity.acquire_many(all).await {
            drop(permits);
        }
    }

    /// Why the server is not ready, if it is not.
    pub fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.is_draining() {
            reasons.push("draining".to_string());
        }
        if self.at_capacity() {
            reasons.push(format!(
                "at capacity ({} sessions)",
                self.config.max_sessions
            ));
        }
        reasons.extend(self.provider_problems.iter().cloned());
        reasons
    }

    /// Slots whose plug-in is quarantined. Not a readiness problem: the built-in behaviour
    /// serves them, and failing readiness would let one client's faults pull every replica.
    pub fn degraded_plugins(&self) -> Vec<String> {
        self.registry
            .as_ref()
            .map(|r| r.quarantined())
            .unwrap_or_default()
    }
}
