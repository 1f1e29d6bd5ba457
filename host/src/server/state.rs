//! Shared server state: configuration, admission (which holds the session capacity), drain
//! signals.

use crate::admission::Admission;
use crate::config::Config;
use crate::plugins::PluginRegistry;
use crate::session::SessionDeps;
use crate::transport::SessionEnv;
use std::sync::Arc;
use tokio::sync::watch;

/// State shared by all requests.
pub struct AppState {
    pub config: Arc<Config>,
    pub deps: Arc<SessionDeps>,
    /// Reasons a provider is unavailable (reported by `/readyz`).
    pub provider_problems: Vec<String>,
    pub registry: Option<Arc<PluginRegistry>>,
    /// Who gets in; the session slots.
    pub admission: Arc<Admission>,
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
            admission: Arc::new(Admission::new(&config)),
            config,
            deps,
            provider_problems,
            registry,
            drain_tx: watch::channel(false).0,
            force_tx: watch::channel(false).0,
        })
    }

    /// What an admitted session's transport gets from the server.
    pub fn session_env(&self) -> SessionEnv {
        SessionEnv {
            deps: self.deps.clone(),
            drain: self.drain_signal(),
            force: self.force_signal(),
        }
    }

    pub fn active_sessions(&self) -> usize {
        self.admission.active_sessions()
    }

    pub fn at_capacity(&self) -> bool {
        self.admission.at_capacity()
    }

    pub fn is_draining(&self) -> bool {
        self.admission.is_closed()
    }

    pub fn drain_signal(&self) -> watch::Receiver<bool> {
        self.drain_tx.subscribe()
    }

    pub fn force_signal(&self) -> watch::Receiver<bool> {
        self.force_tx.subscribe()
    }

    pub fn begin_drain(&self) {
        self.admission.close();
        let _ = self.drain_tx.send(true);
    }

    pub fn force_close(&self) {
        let _ = self.force_tx.send(true);
    }

    /// Resolves when no session holds a slot.
    pub async fn all_sessions_ended(&self) {
        self.admission.all_sessions_ended().await;
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

    /// Slots whose plug-in is quarantined, or whose `oci://` source names a version that does
    /// not serve. Not a readiness problem: the built-in behaviour or the running version serves
    /// them, and failing readiness would let one client's faults (or one registry outage) pull
    /// every replica.
    pub fn degraded_plugins(&self) -> Vec<String> {
        self.registry
            .as_ref()
            .map(|r| {
                let mut lines = r.quarantined();
                lines.extend(r.source_problems());
                lines
            })
            .unwrap_or_default()
    }
}
