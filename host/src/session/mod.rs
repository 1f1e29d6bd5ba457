//! Sessions: the pure turn orchestrator and the task that drives it.

pub mod aggregator;
pub mod driver;
pub mod events;
mod host_share;
pub mod memory;
pub mod orchestrator;
pub mod outbound;
pub mod playout;
pub(crate) mod plugin_worker;
mod preemption;
pub mod turn_audio;
mod turn_policy;

#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod generated_cases;

use crate::audio::AudioFormat;
use crate::behaviour::BehaviourSource;
use crate::config::{AgentProfile, Config};
use crate::providers::{LlmProvider, SttProvider, TtsProvider};
use crate::resume::{ResumeStore, ResumeToken, Snapshot};
use crate::transport::protocol::ClientMessage;
use orchestrator::OrchestratorConfig;
pub use outbound::{Outbound, OutboundRx, OutboundTx};
use std::sync::Arc;

/// The providers every session uses (shared by the process).
#[derive(Clone)]
pub struct Providers {
    pub stt: Arc<dyn SttProvider>,
    pub llm: Arc<dyn LlmProvider>,
    pub tts: Arc<dyn TtsProvider>,
}

/// What a session needs from the process.
pub struct SessionDeps {
    pub config: Arc<Config>,
    pub providers: Providers,
    pub behaviours: Arc<dyn BehaviourSource>,
    /// The orchestrator settings shared by all sessions (output format and greeting are per session).
    pub orchestrator: OrchestratorConfig,
    /// Where resumable sessions keep their snapshot.
    pub resume: Arc<ResumeStore>,
    /// Where sessions send their traces (`None`: tracing is off).
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// The end-of-turn model whose probability the turn plug-in sees (`None`: no model runs).
    pub turn_model: Option<crate::turn::TurnModel>,
    /// The text end-of-turn model whose words probability the turn plug-in sees.
    pub words_model: Option<crate::turn::WordsModel>,
    /// The voice activity detector every session's gate runs.
    pub vad_engine: crate::audio::VadEngine,
}

/// What the client asked for in its `start` message.
#[derive(Debug, Clone)]
pub struct StartParams {
    pub session_id: String,
    pub input: AudioFormat,
    pub output: AudioFormat,
    pub agent: AgentProfile,
    /// Set when the session can be resumed after a dropped connection (`/agent` sessions).
    pub resume: Option<SessionResume>,
}

/// A resumable session's token, and what it resumed from.
#[derive(Debug, Clone)]
pub struct SessionResume {
    /// The token `ready` hands out; its hash owns the session's record.
    pub token: ResumeToken,
    /// The snapshot claimed from a dropped connection (`None`: a new conversation).
    pub restored: Option<Snapshot>,
    /// The agent profile's name (`None`: the default profile), kept in the snapshot.
    pub agent: Option<String>,
}

/// From the transport to the session.
#[derive(Debug)]
pub enum Inbound {
    Audio(bytes::Bytes),
    Message(ClientMessage),
    /// A client frame was malformed; the session reports it and goes on.
    Error {
        code: String,
        message: String,
    },
}
