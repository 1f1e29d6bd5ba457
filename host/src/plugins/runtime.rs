//! What every loaded plug-in and instance shares: the engine, the compiled-component cache, the
//! limits, the instance pool's semaphore, the metrics and the call recorder.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::cache::ComponentCache;
use super::deadline::Budget;
use super::engine::EngineHandle;
use super::error::PluginError;
use super::faults::QuarantinePolicy;
use super::metrics::Metrics;
use super::record::Recorder;
use super::settings::PluginSettings;

/// Lower bound of the instantiation/`init` deadline, in ms.
const INIT_DEADLINE_MIN_MS: u64 = 100;
/// The longest quarantine, as a multiple of the first.
const BACKOFF_MAX_FACTOR: u32 = 32;

/// Limits applied to every instance and call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub memory_bytes: usize,
    pub table_elements: usize,
    /// Time budget of one call.
    pub call_budget: Budget,
    /// Budget of instantiation plus `init` and of the self-check: off the per-call path, so
    /// more generous.
    pub init_budget: Budget,
    /// Faults after which a session keeps the built-in behaviour for the slot.
    pub session_fault_limit: u32,
    /// Sessions a slot's shadow version may shadow at once.
    pub shadow_max_sessions: u64,
    pub quarantine: QuarantinePolicy,
    /// Largest `max_tokens` a prompt plug-in may ask for.
    pub prompt_max_tokens: u32,
}

/// Shared runtime state.
pub(crate) struct Runtime {
    pub engine: EngineHandle,
    pub cache: ComponentCache,
    pub limits: Limits,
    /// One permit per pool slot: a full pool refuses new instances instead of failing them.
    permits: Arc<Semaphore>,
    pub metrics: Metrics,
    /// Where calls are recorded (`PLUGIN_RECORD`); `None` when recording is off.
    pub recorder: Option<Recorder>,
}

impl Runtime {
    pub fn new(settings: &PluginSettings) -> Result<Arc<Self>, PluginError> {
        let engine = EngineHandle::new(settings)?;
        let permits = Arc::new(Semaphore::new(engine.pool_instances as usize));
        let recorder = settings
            .record
            .as_ref()
            .map(Recorder::start)
            .transpose()
            .map_err(|e| PluginError::Runtime(format!("PLUGIN_RECORD: {e}")))?;
        Ok(Arc::new(Self {
            cache: ComponentCache::open(settings.cache_dir.clone()),
            limits: Limits {
                memory_bytes: usize::try_from(settings.memory_limit_bytes).unwrap_or(usize::MAX),
                table_elements: settings.table_limit as usize,
                call_budget: Budget::from_cpu(Duration::from_millis(
                    settings.call_deadline_ms.max(1),
                )),
                init_budget: Budget::from_cpu(Duration::from_millis(
                    settings
                        .call_deadline_ms
                        .saturating_mul(10)
                        .max(INIT_DEADLINE_MIN_MS),
                )),
                session_fault_limit: settings.session_fault_limit.max(1),
                shadow_max_sessions: u64::from(settings.shadow_max_sessions),
                quarantine: QuarantinePolicy {
                    sessions: settings.quarantine_sessions,
                    window: Duration::from_millis(settings.fault_window_ms),
                    backoff: Duration::from_millis(settings.quarantine_backoff_ms),
                    backoff_max: Duration::from_millis(settings.quarantine_backoff_ms)
                        * BACKOFF_MAX_FACTOR,
                },
                prompt_max_tokens: settings.prompt_max_tokens,
            },
            engine,
            permits,
            metrics: Metrics::default(),
            recorder,
        }))
    }

    /// A pool slot, or `None` when the pool is full (never waits).
    pub fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}
