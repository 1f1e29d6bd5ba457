//! Test support for voice-host: local servers that speak each provider's real wire protocol
//! (Deepgram, OpenAI, ElevenLabs) and protocol clients used by the end-to-end tests.
//!
//! Every fake binds 127.0.0.1 (port 0 unless told otherwise), records what it received for
//! conformance assertions, takes faults on demand, and shuts down when its handle is dropped.

pub mod agent_client;
pub mod binary;
pub mod fake_deepgram;
pub mod fake_elevenlabs;
pub mod fake_openai;
pub mod faults;
pub mod host;
pub mod host_process;
pub mod metrics;
pub mod microphone;
pub mod oci_registry;
pub mod otlp_receiver;
pub mod plot;
pub mod plugins;
pub mod prerequisite;
pub mod procfs;
pub mod redis;
pub mod request_log;
pub mod server;
pub mod speech;

pub use faults::{Fault, Faults};

use std::time::Duration;

/// Polls `condition` every 10 ms until it holds; panics naming `what` after `limit`. A liveness
/// bound for asynchronous effects (a server noticing a disconnect), not a performance check.
pub async fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
