//! The process's wasmtime engine: pooling allocator sized to the session limit, epoch
//! interruption, and the ticker thread that advances the epoch while calls run.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::epoch_ticker::{EpochTicker, Ticking};
use super::error::PluginError;
use super::settings::PluginSettings;

/// How often the epoch advances. Deadlines are whole ticks, so this is their resolution.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Instances per slot the pool holds beyond `max_sessions`: room for the self-check of a new
/// version and for sessions that briefly hold an old and a new instance during a swap.
const POOL_HEADROOM: u32 = 16;
/// Core instances, memories and tables one plug-in component may have (a wit-bindgen component
/// has its main module plus small adapter shims; components of interpreted languages link a
/// dozen or more modules).
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 8;
/// Guard region after each linear memory; bounds checks are explicit with small reservations.
const MEMORY_GUARD_BYTES: u64 = 64 * 1024;
/// Wasm stack a call may use.
const MAX_WASM_STACK: usize = 512 * 1024;

/// Engine plus the pool capacity it was sized for.
pub(crate) struct EngineHandle {
    pub engine: Engine,
    /// Component instances the pool holds; the instance semaphore has this many permits.
    pub pool_instances: u32,
    ticker: EpochTicker,
}

impl EngineHandle {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(settings: &PluginSettings) -> Result<Self, PluginError> {
        let slots = 3u32;
        let pool_instances = settings
            .max_sessions
            .max(1)
            .saturating_add(POOL_HEADROOM)
            .saturating_mul(slots);
        let memory_limit = settings.memory_limit_bytes.max(64 * 1024);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(pool_instances)
            .total_core_instances(pool_instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .total_memories(pool_instances.saturating_mul(MEMORIES_PER_COMPONENT))
            .total_tables(pool_instances.saturating_mul(TABLES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_memory_size(usize::try_from(memory_limit).unwrap_or(usize::MAX))
            .table_elements(settings.table_limit.max(1) as usize);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            // Reserve only what a memory may grow to: the pool's address space stays
            // slots x sessions x limit instead of gigabytes per instance.
            .memory_reservation(memory_limit)
            .memory_guard_size(MEMORY_GUARD_BYTES)
            .memory_reservation_for_growth(0)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(|e| PluginError::Runtime(super::error::one_line(&e)))?;
        let ticker = EpochTicker::start(&engine, EPOCH_TICK)
            .map_err(|e| PluginError::Runtime(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            engine,
            pool_instances,
            ticker,
        })
    }

    /// Keeps the epoch (and so call deadlines) advancing while the guard is held.
    pub fn ticking(&self) -> Ticking {
        self.ticker.ticking()
    }
}
