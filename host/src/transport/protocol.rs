//! Client protocol v1: the JSON messages of `/agent` (see docs/protocol.md, a public contract).

use crate::audio::AudioFormat;
use serde::{Deserialize, Serialize};

/// Largest binary audio frame a client may send.
pub const MAX_AUDIO_FRAME_BYTES: usize = 64 * 1024;
/// Largest text frame a client may send (a typed turn or control message).
pub const MAX_TEXT_FRAME_BYTES: usize = 16 * 1024;

/// Messages a client sends as text frames.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Start {
        audio: AudioFormat,
        #[serde(default)]
        output: Option<AudioFormat>,
        #[serde(default)]
        session_id: Option<String>,
        #[serde(default)]
        agent: Option<String>,
        /// Resume a session whose connection dropped (`ready` gave its id and token).
        #[serde(default)]
        resume: Option<ResumeRequest>,
    },
    Text {
        text: String,
    },
    Playback {
        played_ms: u64,
        /// The reply the report is about; reports for another reply are ignored.
        #[serde(default)]
        turn: Option<u32>,
    },
    Stop {},
}

/// `"resume":{"session_id":...,"token":...}` of a `start`.
#[derive(Clone, PartialEq, Deserialize)]
pub struct ResumeRequest {
    pub session_id: String,
    pub token: String,
}

impl std::fmt::Debug for ResumeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeRequest")
            .field("session_id", &self.session_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why a client text frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: &'static str,
    pub message: String,
}

impl ClientMessage {
    /// Parse a client text frame, classifying failures into stable error codes.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
            code: "bad_json",
            message: format!("invalid JSON: {e}"),
        })?;
        let Some(kind) = value
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_string)
        else {
            return Err(ParseError {
                code: "bad_message",
                message: "a message needs a string \"type\"".into(),
            });
        };
        if !matches!(kind.as_str(), "start" | "text" | "playback" | "stop") {
            return Err(ParseError {
                code: "unknown_type",
                message: format!("unknown message type {kind:?}"),
            });
        }
        serde_json::from_value(value).map_err(|e| {
            let code = if kind == "start" {
                "bad_audio_format"
            } else {
                "bad_message"
            };
            ParseError {
                code,
                message: format!("invalid {kind} message: {e}"),
            }
        })
    }
}

/// Per-turn timings in ms, relative to the end of the user's speech where it applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnMetrics {
    pub turn: u32,
    /// Session clock (ms) when the user's speech ended (VAD), if the turn was spoken.
    pub speech_end_ms: Option<u64>,
    /// From speech end (or typed turn) to the final transcript.
    pub transcript_final_ms: Option<u64>,
    /// Time spent in the intent and prompt plug-ins.
    pub plugins_ms: Option<f64>,
    /// From the end of the user's turn to the first LLM token.
    pub llm_first_token_ms: Option<u64>,
    /// From the end of the user's turn to the first sentence handed to TTS.
    pub first_sentence_ms: Option<u64>,
    /// From the end of the user's turn to the first TTS audio.
    pub tts_first_audio_ms: Option<u64>,
    /// From the end of the user's turn to the first audio byte sent to the client.
    pub first_audio_sent_ms: Option<u64>,
    /// Time the host itself spent processing (not waiting on providers), in ms.
    pub host_processing_ms: f64,
}

/// Messages the server sends as text frames.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Ready {
        session_id: String,
        output: AudioFormat,
        protocol: u32,
        /// Presented in a later `start` to resume this session after a dropped connection;
        /// a new one with every `ready` (absent when resume is off).
        #[serde(skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
        /// Whether this session goes on from a dropped one (its memory kept).
        resumed: bool,
    },
    Vad {
        event: VadEventKind,
        at_ms: u64,
    },
    Transcript {
        turn: u32,
        text: String,
        #[serde(rename = "final")]
        is_final: bool,
    },
    AgentText {
        turn: u32,
        delta: String,
    },
    AgentDone {
        turn: u32,
        text: String,
        interrupted: bool,
    },
    Interrupt {
        turn: u32,
    },
    /// Stop playing the reply now, keeping what is buffered: the user may be taking the turn.
    Pause {
        turn: u32,
    },
    /// Play the paused reply on from where it stopped.
    Resume {
        turn: u32,
    },
    TurnMetrics(TurnMetrics),
    Error {
        code: String,
        message: String,
        fatal: bool,
    },
    Shutdown {},
}

/// VAD event names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VadEventKind {
    SpeechStart,
    SpeechEnd,
}

impl ServerMessage {
    pub fn error(code: &str, message: impl Into<String>, fatal: bool) -> Self {
        ServerMessage::Error {
            code: code.to_string(),
            message: message.into(),
            fatal,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain records cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// WebSocket close codes used by the server.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Encoding;

    #[test]
    fn parses_start_with_defaults() {
        let m = ClientMessage::parse(
            r#"{"type":"start","audio":{"encoding":"mulaw","sample_rate":8000}}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMessage::Start {
                audio: AudioFormat {
                    encoding: Encoding::Mulaw,
                    sample_rate: 8000
                },
                output: None,
                session_id: None,
                agent: None,
                resume: None,
            }
        );
    }

    #[test]
    fn parses_a_resume_and_keeps_its_token_out_of_debug_output() {
        let m = ClientMessage::parse(
            r#"{"type":"start","audio":{"encoding":"pcm16","sample_rate":16000},"resume":{"session_id":"s1","token":"secret-token"}}"#,
        )
        .unwrap();
        let ClientMessage::Start {
            resume: Some(r), ..
        } = &m
        else {
            panic!("a resume: {m:?}");
        };
        assert_eq!(
            (r.session_id.as_str(), r.token.as_str()),
            ("s1", "secret-token")
        );
        assert!(!format!("{m:?}").contains("secret-token"));
        let bad = ClientMessage::parse(
            r#"{"type":"start","audio":{"encoding":"pcm16","sample_rate":16000},"resume":{"session_id":"s1"}}"#,
        );
        assert!(bad.is_err(), "a resume needs its token");
    }

    #[test]
    fn classifies_errors() {
        assert_eq!(ClientMessage::parse("{nope").unwrap_err().code, "bad_json");
        assert_eq!(
            ClientMessage::parse(r#"{"type":"dance"}"#)
                .unwrap_err()
                .code,
            "unknown_type"
        );
        assert_eq!(
            ClientMessage::parse(
                r#"{"type":"start","audio":{"encoding":"opus","sample_rate":8000}}"#
            )
            .unwrap_err()
            .code,
            "bad_audio_format"
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"text"}"#).unwrap_err().code,
            "bad_message"
        );
        assert_eq!(
            ClientMessage::parse(r#"[1,2]"#).unwrap_err().code,
            "bad_message"
        );
    }

    #[test]
    fn serialises_server_messages() {
        let t = ServerMessage::Transcript {
            turn: 2,
            text: "hi".into(),
            is_final: true,
        };
        assert_eq!(
            t.to_json(),
            r#"{"type":"transcript","turn":2,"text":"hi","final":true}"#
        );
        let m = ServerMessage::TurnMetrics(TurnMetrics {
            turn: 1,
            ..Default::default()
        });
        assert!(m
            .to_json()
            .starts_with(r#"{"type":"turn_metrics","turn":1"#));
        assert_eq!(
            ServerMessage::Shutdown {}.to_json(),
            r#"{"type":"shutdown"}"#
        );
    }
}
