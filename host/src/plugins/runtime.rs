//! What every loaded plug-in and instance shares: the engine, the compiled-component cache, the
//! limits, the instance pool's semaphore and the metrics.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::cache::ComponentCache;
use super::engine::EngineHandle;
use super::error::PluginError;
use super::metrics::Metrics;
use super::settings::PluginSettings;

/// Lower bound of the instantiation/`init` deadline, in ms.
const INIT_DEADLINE_MIN_MS: u64 = 100;

/// Limits applied to every instance and call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub memory_bytes: usize,
    pub table_elements: usize,
    pub deadline_ticks: u64,
    /// Deadline of instantiation plus `init` and of the self-check: off the per-call path, so
    /// more generous, and a busy machine does not make a healthy plug-in fail to load.
    pub init_deadline_ticks: u64,
    pub fault_limit: u32,
    pub fault_window: Duration,
}

/// Shared runtime state.
pub(crate) struct Runtime {
    pub engine: EngineHandle,
    pub cache: ComponentCache,
    pub limits: Limits,
    /// One permit per pool slot: a full pool refuses new instances instead of failing them.
    permits: Arc<Semaphore>,
    pub metrics: Metrics,
}

impl Runtime {
    pub fn new(settings: &PluginSettings) -> Result<Arc<Self>, PluginError> {
        let engine = EngineHandle::new(settings)?;
        let permits = Arc::new(Semaphore::new(engine.pool_instances as usize));
        Ok(Arc::new(Self {
            cache: ComponentCache::new(settings.cache_dir.clone()),
            limits: Limits {
                memory_bytes: usize::try_from(settings.memory_limit_bytes).unwrap_or(usize::MAX),
                table_elements: settings.table_limit as usize,
                deadline_ticks: EngineHandle::deadline_ticks(settings.call_deadline_ms),
                init_deadline_ticks: EngineHandle::deadline_ticks(
                    settings
                        .call_deadline_ms
                        .saturating_mul(10)
                        .max(INIT_DEADLINE_MIN_MS),
                ),
                fault_limit: settings.fault_limit,
                fault_window: Duration::from_millis(settings.fault_window_ms),
            },
            engine,
            permits,
            metrics: Metrics::default(),
        }))
    }

    /// A pool slot, or `None` when the pool is full (never waits).
    pub fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}
