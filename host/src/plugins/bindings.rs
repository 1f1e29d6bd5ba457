//! Host-side bindings of the `voice:policy` WIT package and the state every plug-in store holds.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::deadline::{Budget, CallClock};
use super::wasi::WasiSandbox;

/// The intent-analyzer world; also defines the shared `types` and `log` interfaces.
pub(crate) mod intent {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "intent-analyzer",
    });
}

/// The prompt-shaper world.
pub(crate) mod prompt {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "prompt-shaper",
        with: {
            "voice:policy/types": super::intent::voice::policy::types,
            "voice:policy/log": super::intent::voice::policy::log,
        },
    });
}

/// The barge-in-policy world.
pub(crate) mod barge_in {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "barge-in-policy",
        with: {
            "voice:policy/types": super::intent::voice::policy::types,
            "voice:policy/log": super::intent::voice::policy::log,
        },
    });
}

/// The end-of-turn-policy world.
pub(crate) mod turn {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "end-of-turn-policy",
        with: {
            "voice:policy/types": super::intent::voice::policy::types,
            "voice:policy/log": super::intent::voice::policy::log,
        },
    });
}

pub(crate) use intent::voice::policy::{log, types};

/// Longest log message kept from a plug-in; longer ones are cut.
const MAX_LOG_BYTES: usize = 1024;
/// Log lines kept per call; a plug-in cannot flood the host log.
const MAX_LOG_LINES_PER_CALL: u32 = 32;

/// Data of one plug-in store: its limits and the label used in logs.
pub(crate) struct HostState {
    /// `name@version` of the plug-in, for log lines.
    pub label: Arc<str>,
    memory_limit: usize,
    table_limit: usize,
    /// Set when a memory growth was refused, to classify the trap that usually follows.
    pub memory_refused: bool,
    /// Largest linear memory this store has been granted, in bytes.
    pub peak_memory: usize,
    /// Log lines written during the current call.
    pub log_lines: u32,
    /// WASI stand-ins, for components that import WASI; built on first use.
    pub wasi: Option<Box<WasiSandbox>>,
    /// Deadline clock of the call in progress (see `deadline.rs`).
    pub clock: CallClock,
    /// What `turn-signals.words-probability` answers: set for an end-of-turn `decide`, `None`
    /// during any other call.
    pub words_probability: Option<f32>,
}

impl HostState {
    pub fn new(label: Arc<str>, memory_limit: usize, table_limit: usize) -> Self {
        Self {
            label,
            memory_limit,
            table_limit,
            memory_refused: false,
            peak_memory: 0,
            log_lines: 0,
            wasi: None,
            clock: CallClock::new(Budget::from_cpu(std::time::Duration::ZERO)),
            words_probability: None,
        }
    }

    /// Resets per-call bookkeeping before a call.
    pub fn begin_call(&mut self) {
        self.memory_refused = false;
        self.log_lines = 0;
        self.words_probability = None;
        if let Some(wasi) = &self.wasi {
            wasi.begin_call();
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_limit && maximum.is_none_or(|max| desired <= max);
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        } else {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_limit && maximum.is_none_or(|max| desired <= max))
    }
}

impl types::Host for HostState {}

impl turn::voice::policy::turn_signals::Host for HostState {
    fn words_probability(&mut self) -> Option<f32> {
        self.words_probability
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        // A guest's line must not forge host log lines or drive the terminal.
        let message = crate::logsafe::escape_control(&message);
        let plugin = &*self.label;
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }
}
