//! Faults a fake injects on demand. Each new request or connection takes the next queued fault
//! (none when the queue is empty), so "429 then success" is two pushes away.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One injected failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Wait this long before answering (before the response headers or the handshake reply).
    Delay(Duration),
    /// Refuse with this HTTP status (a refused handshake for WebSocket fakes), with an optional
    /// `retry-after`.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// Start normally, then cut the connection without a close handshake after `after` units:
    /// SSE chunks (OpenAI), audio bytes received (Deepgram), audio messages sent (ElevenLabs).
    DropMidStream { after: usize },
    /// Send one message that is not valid JSON early in the stream, then carry on.
    Malformed,
    /// A mid-stream error after `after` units: OpenAI streams an `{"error":…}` event after
    /// `after` chunks, then ends; ElevenLabs sends a `quota_exceeded` error after `after` audio
    /// messages (on a multi-context socket, for the context being spoken) and closes with 1008.
    StreamError { after: usize },
    /// Start normally, then fall silent after `after` units (SSE chunks for OpenAI, audio
    /// messages for ElevenLabs) and keep the connection open until the client leaves: a stream
    /// that never finishes.
    Stall { after: usize },
    /// OpenAI only: refuse with this status and `retry-after` as an HTTP date `after` from now
    /// (whole seconds, as the header allows; no `retry-after-ms`).
    RetryAt { code: u16, after: Duration },
    /// OpenAI only: answer with `calls` tool calls at once, their argument fragments interleaved.
    ToolStorm { calls: usize },
    /// Deepgram only: cut the connection without a close handshake once an utterance has been
    /// heard for `after_ms` of audio.
    DropMidUtterance { after_ms: u32 },
}

/// A shared queue of faults.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<VecDeque<Fault>>>);

impl Faults {
    /// Queues a fault for a later request or connection.
    pub fn push(&self, fault: Fault) {
        self.lock().push_back(fault);
    }

    /// Takes the fault for the request or connection starting now.
    pub fn next(&self) -> Option<Fault> {
        self.lock().pop_front()
    }

    /// Forgets queued faults.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
