//! Deepgram live streaming speech-to-text (`/v1/listen` WebSocket, Nova models).
//!
//! One WebSocket per session: audio goes up as linear16 binary frames, `KeepAlive` flows while no
//! audio does, `Finalize` marks the local end of speech and `CloseStream` ends the session. A
//! stream that drops mid-session is reopened with backoff and the audio not yet covered by a
//! final result is sent again, so no speech is lost; the session hears of a failure only when
//! reconnecting keeps failing.

mod messages;
mod resend;
mod stream;

use super::ws::ws_base;
use crate::providers::{SttEvent, SttParams, SttProvider, SttStream, STT_SAMPLE_RATE};
use std::fmt;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Short provider name used in logs and errors.
pub const NAME: &str = "deepgram";

/// Frames the session may queue before its sends wait (about 5 s of 20 ms frames).
const INPUT_CAPACITY: usize = 256;
const EVENT_CAPACITY: usize = 64;

/// Reads one server text frame as the stream does, against a connection whose audio starts at
/// session sample `connection_base` with `kept` samples still held for resending: the session
/// event it yields, if any, and the samples still kept afterwards. `None` for a frame the stream
/// skips as unparseable. An entry point for replaying hostile frames (see `crate::fuzzing`).
pub(crate) fn read_server_text(
    text: &str,
    connection_base: u64,
    kept: usize,
) -> Option<(Option<SttEvent>, u64)> {
    let message = serde_json::from_str::<messages::ServerMessage>(text).ok()?;
    let mut buffer = resend::ResendBuffer::starting_at(connection_base, kept.max(1));
    buffer.push(&vec![0; kept]);
    let event = match message {
        messages::ServerMessage::Results(results) => {
            stream::release_covered(&mut buffer, connection_base, &results);
            results.to_event(stream::offset_ms(connection_base))
        }
        _ => None,
    };
    Some((event, buffer.end() - buffer.start()))
}

/// Deepgram connection settings.
#[derive(Clone)]
pub struct DeepgramSettings {
    /// Base URL; `https`/`http` are mapped to `wss`/`ws`.
    pub url: String,
    /// Sent as `Authorization: Token <key>`; `None` sends no Authorization header.
    pub api_key: Option<String>,
    pub model: String,
    /// Default language when the session does not ask for one.
    pub language: String,
    /// Silence (ms) after which Deepgram marks a result `speech_final`.
    pub endpointing_ms: u32,
    /// Gap (ms) after the last final word before Deepgram sends `UtteranceEnd`.
    pub utterance_end_ms: u32,
    pub smart_format: bool,
    /// A `KeepAlive` is sent when no audio was sent for this long.
    pub keepalive_interval_ms: u64,
    /// Consecutive failed reconnects before the session is told the stream is lost.
    pub reconnect_attempts: u32,
    /// First reconnect delay; doubles per failed attempt up to `reconnect_max_delay_ms`.
    pub reconnect_base_delay_ms: u64,
    pub reconnect_max_delay_ms: u64,
    /// Most audio (ms) kept for resending after a drop; older audio is let go.
    pub resend_buffer_ms: u32,
}

impl Default for DeepgramSettings {
    fn default() -> Self {
        Self {
            url: "wss://api.deepgram.com".into(),
            api_key: None,
            model: "nova-3".into(),
            language: "en".into(),
            endpointing_ms: 300,
            utterance_end_ms: 1000,
            smart_format: true,
            keepalive_interval_ms: 4000,
            reconnect_attempts: 5,
            reconnect_base_delay_ms: 250,
            reconnect_max_delay_ms: 4000,
            resend_buffer_ms: 30_000,
        }
    }
}

impl fmt::Debug for DeepgramSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeepgramSettings")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("language", &self.language)
            .field("endpointing_ms", &self.endpointing_ms)
            .field("utterance_end_ms", &self.utterance_end_ms)
            .field("smart_format", &self.smart_format)
            .field("keepalive_interval_ms", &self.keepalive_interval_ms)
            .field("reconnect_attempts", &self.reconnect_attempts)
            .finish_non_exhaustive()
    }
}

impl DeepgramSettings {
    /// The listen URL with every query parameter the stream needs.
    pub fn listen_url(&self, language: &str) -> String {
        let base = format!("{}/v1/listen", ws_base(&self.url));
        let query = [
            ("model", self.model.clone()),
            ("encoding", "linear16".to_string()),
            ("sample_rate", STT_SAMPLE_RATE.to_string()),
            ("channels", "1".to_string()),
            ("interim_results", "true".to_string()),
            ("endpointing", self.endpointing_ms.to_string()),
            ("utterance_end_ms", self.utterance_end_ms.to_string()),
            ("vad_events", "true".to_string()),
            ("smart_format", self.smart_format.to_string()),
            ("language", language.to_string()),
        ];
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        format!("{base}?{}", encoded.join("&"))
    }
}

/// Percent-encodes a query value (unreserved characters pass through).
fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Deepgram speech-to-text provider; cheap to share, one stream per session.
#[derive(Debug, Clone)]
pub struct DeepgramStt {
    settings: Arc<DeepgramSettings>,
}

impl DeepgramStt {
    /// A provider using `settings` for every session's stream.
    pub fn new(settings: DeepgramSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

impl SttProvider for DeepgramStt {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Opens the session's stream; must be called inside a Tokio runtime. The connection is
    /// made in the background: audio sent meanwhile is buffered and delivered once it is up.
    fn open(&self, params: SttParams) -> SttStream {
        let (input_tx, input_rx) = mpsc::channel(INPUT_CAPACITY);
        let (event_tx, event_rx) = mpsc::channel(EVENT_CAPACITY);
        let language = params
            .language
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| self.settings.language.clone());
        let listener = stream::Listener::new(
            self.settings.clone(),
            self.settings.listen_url(&language),
            params.session_id,
            event_tx,
        );
        tokio::spawn(listener.run(input_rx));
        SttStream {
            input: input_tx,
            events: event_rx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_url_carries_every_parameter() {
        let s = DeepgramSettings {
            url: "https://dg.example".into(),
            ..Default::default()
        };
        assert_eq!(
            s.listen_url("pt-BR"),
            "wss://dg.example/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&channels=1\
             &interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true\
             &smart_format=true&language=pt-BR"
        );
        assert_eq!(encode_component("a b&c"), "a%20b%26c");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let s = DeepgramSettings {
            api_key: Some("0123456789abcdef0123456789abcdef01234567".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
    }
}
