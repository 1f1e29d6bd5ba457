//! voice-host: a real-time voice agent host whose behaviour (intent analysis, prompt shaping and
//! barge-in policy) is pluggable as sandboxed WebAssembly components.

pub mod admission;
pub mod audio;
pub mod behaviour;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod logsafe;
pub mod metrics;
mod onnx_runtime;
pub mod plugins;
pub mod providers;
pub mod resume;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod transport;
pub mod turn;
pub mod ws_buffers;
