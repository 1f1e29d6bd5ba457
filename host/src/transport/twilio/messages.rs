//! Twilio Media Streams messages: the events Twilio sends (`connected`, `start`, `media`, `mark`,
//! `dtmf`, `stop`) and the ones a bidirectional stream sends back (`media`, `mark`, `clear`).

use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

/// The audio format Twilio declares in `start` (always mu-law 8 kHz mono for phone calls).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u32,
}

/// The `start` event's details.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamStart {
    pub stream_sid: String,
    #[serde(default)]
    pub call_sid: Option<String>,
    /// The `<Parameter name value>` pairs of the TwiML `<Stream>`.
    #[serde(default)]
    pub custom_parameters: HashMap<String, String>,
    #[serde(default)]
    pub media_format: Option<MediaFormat>,
}

/// One chunk of caller audio.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Media {
    #[serde(default)]
    pub track: Option<String>,
    /// Base64 of raw mu-law bytes.
    pub payload: String,
}

/// A mark Twilio echoes once the audio queued before it has played (or was cleared).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Mark {
    pub name: String,
}

/// An event from Twilio. Unknown events are reported as [`ParseOutcome::Ignored`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum TwilioEvent {
    Connected {},
    Start { start: StreamStart },
    Media { media: Media },
    Mark { mark: Mark },
    Dtmf {},
    Stop {},
}

/// What a text frame from Twilio turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseOutcome {
    Event(TwilioEvent),
    /// Valid JSON naming an event this endpoint does not use.
    Ignored(String),
    /// Not a Twilio message at all.
    Invalid(String),
}

/// Parse one text frame from Twilio.
pub fn parse(text: &str) -> ParseOutcome {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return ParseOutcome::Invalid(format!("not JSON: {e}")),
    };
    let Some(kind) = value
        .get("event")
        .and_then(|e| e.as_str())
        .map(str::to_owned)
    else {
        return ParseOutcome::Invalid("no string \"event\" field".into());
    };
    if !matches!(
        kind.as_str(),
        "connected" | "start" | "media" | "mark" | "dtmf" | "stop"
    ) {
        return ParseOutcome::Ignored(kind);
    }
    match serde_json::from_value(value) {
        Ok(e) => ParseOutcome::Event(e),
        Err(e) => ParseOutcome::Invalid(format!("malformed {kind} event: {e}")),
    }
}

/// Agent audio for the caller: base64 mu-law, played in order after earlier media.
pub fn media(stream_sid: &str, payload_base64: &str) -> String {
    json!({"event": "media", "streamSid": stream_sid, "media": {"payload": payload_base64}})
        .to_string()
}

/// A mark queued behind the media sent so far.
pub fn mark(stream_sid: &str, name: &str) -> String {
    json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).to_string()
}

/// Drop all audio Twilio still has buffered for the caller (barge-in).
pub fn clear(stream_sid: &str) -> String {
    json!({"event": "clear", "streamSid": stream_sid}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_start_event_with_parameters() {
        let text = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1",
            "start":{"streamSid":"MZ1","accountSid":"AC1","callSid":"CA1","tracks":["inbound"],
            "customParameters":{"agent":"sales"},
            "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
        let ParseOutcome::Event(TwilioEvent::Start { start }) = parse(text) else {
            panic!("start not parsed: {:?}", parse(text));
        };
        assert_eq!(start.stream_sid, "MZ1");
        assert_eq!(start.call_sid.as_deref(), Some("CA1"));
        assert_eq!(start.custom_parameters["agent"], "sales");
        assert_eq!(
            start.media_format,
            Some(MediaFormat {
                encoding: "audio/x-mulaw".into(),
                sample_rate: 8000,
                channels: 1
            })
        );
    }

    #[test]
    fn classifies_other_frames() {
        assert_eq!(
            parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#),
            ParseOutcome::Event(TwilioEvent::Connected {})
        );
        assert_eq!(
            parse(
                r#"{"event":"mark","sequenceNumber":"5","streamSid":"MZ1","mark":{"name":"r0-100"}}"#
            ),
            ParseOutcome::Event(TwilioEvent::Mark {
                mark: Mark {
                    name: "r0-100".into()
                }
            })
        );
        assert_eq!(
            parse(r#"{"event":"hangup"}"#),
            ParseOutcome::Ignored("hangup".into())
        );
        assert!(matches!(parse("{oops"), ParseOutcome::Invalid(_)));
        assert!(matches!(
            parse(r#"{"event":"media"}"#),
            ParseOutcome::Invalid(_)
        ));
    }

    #[test]
    fn builds_outbound_events() {
        let m: serde_json::Value = serde_json::from_str(&media("MZ1", "AAA=")).unwrap();
        assert_eq!(
            m,
            json!({"event":"media","streamSid":"MZ1","media":{"payload":"AAA="}})
        );
        let c: serde_json::Value = serde_json::from_str(&clear("MZ1")).unwrap();
        assert_eq!(c, json!({"event":"clear","streamSid":"MZ1"}));
        let k: serde_json::Value = serde_json::from_str(&mark("MZ1", "r1-200")).unwrap();
        assert_eq!(k["mark"]["name"], "r1-200");
    }
}
