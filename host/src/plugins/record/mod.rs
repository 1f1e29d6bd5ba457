//! Recording of plug-in calls (`PLUGIN_RECORD=DIR`): every call of a configured plug-in as one
//! JSON line, so that another version can be tried on real traffic (`voice-host plugins
//! replay`) before it serves anyone.
//!
//! Only calls to configured WebAssembly plug-ins are recorded, including the ones the built-in
//! behaviour answered in the plug-in's place (a fault, quarantine, a benched session), with the
//! reason; a slot served by the built-in behaviour makes no plug-in calls and records nothing.
//!
//! Recording must never slow a session: a call hands its [`CallRecord`] (the session's own
//! records, no audio) to a bounded queue without waiting, and one writer thread masks,
//! serialises and writes it. When the queue is full the record is dropped and counted
//! (`voice_plugin_record_dropped_total`). The file is rotated at a size limit, keeping a few
//! older files.

mod line;
mod mask;
mod rotate;
mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::behaviour::{
    BargeInDecision, BargeInEvent, Intent, IntentInput, PromptInput, PromptOutput, TurnDecision,
    TurnEvent,
};

use super::instance::Fallback;

pub(crate) use line::{
    BargeInEventForm, IntentForm, IntentInputForm, Line, Outcome, PromptInputForm,
    PromptOutputForm, TurnEventForm,
};
pub(crate) use mask::Text;
pub use rotate::FILE_NAME;
pub(crate) use writer::Recorder;

/// One call of a configured plug-in, as the session made it.
#[derive(Debug, Clone)]
pub(crate) struct CallRecord {
    /// When the call was made, in ms since the Unix epoch.
    pub at_ms: u64,
    /// The plug-in's name and version (first 12 hex digits of its SHA-256).
    pub plugin: String,
    pub version: String,
    /// The session's id.
    pub session: Arc<str>,
    /// The host's number of the session's instance of this version.
    pub instance: u64,
    /// The user turn the call belongs to.
    pub turn: u32,
    /// What the plug-in was asked and what the session got.
    pub call: Call,
    /// Why the built-in behaviour answered instead, when it did.
    pub fallback: Option<Fallback>,
    /// Time of the call, fallback included.
    pub duration: Duration,
}

/// A call's input and decision, by slot.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    Intent {
        input: IntentInput,
        decision: Option<Intent>,
    },
    Prompt {
        input: PromptInput,
        decision: PromptOutput,
    },
    BargeIn {
        input: BargeInEvent,
        decision: BargeInDecision,
    },
    Turn {
        input: TurnEvent,
        decision: TurnDecision,
    },
}

/// Now, in ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
