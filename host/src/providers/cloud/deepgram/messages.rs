//! Deepgram's server messages and their mapping onto [`SttEvent`]s.

use crate::providers::{SttEvent, Word};
use serde::Deserialize;

/// A text frame from the server, told apart by `type`. Unknown types are tolerated.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(super) enum ServerMessage {
    Results(Results),
    SpeechStarted {},
    UtteranceEnd {},
    Metadata {
        #[serde(default)]
        request_id: Option<String>,
    },
    /// Only older servers send this; current ones report errors as close frames.
    Error {
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// A transcription result for a window of the stream.
#[derive(Debug, Deserialize)]
pub(super) struct Results {
    #[serde(default)]
    pub is_final: Option<bool>,
    #[serde(default)]
    pub speech_final: Option<bool>,
    #[serde(default)]
    pub from_finalize: Option<bool>,
    /// Window start, seconds from the start of this connection's audio.
    #[serde(default)]
    pub start: f64,
    #[serde(default)]
    pub duration: f64,
    pub channel: Channel,
}

#[derive(Debug, Deserialize)]
pub(super) struct Channel {
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Alternative {
    #[serde(default)]
    pub transcript: String,
    #[serde(default)]
    pub words: Vec<WireWord>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub punctuated_word: Option<String>,
}

impl Results {
    /// End of the window in seconds from the start of this connection's audio.
    pub(super) fn end_secs(&self) -> f64 {
        (self.start + self.duration).max(0.0)
    }

    pub(super) fn is_final(&self) -> bool {
        self.is_final.unwrap_or(false)
    }

    /// The session event for this result, with word times shifted by `offset_ms` (where this
    /// connection's audio starts in the session). Empty interims and empty finals that end
    /// nothing are silence and produce no event.
    pub(super) fn to_event(&self, offset_ms: f64) -> Option<SttEvent> {
        let best = self.channel.alternatives.first();
        let text = best
            .map(|a| a.transcript.trim().to_string())
            .unwrap_or_default();
        let words: Vec<Word> = best
            .map(|a| a.words.iter().map(|w| w.to_word(offset_ms)).collect())
            .unwrap_or_default();
        let speech_final = self.speech_final.unwrap_or(false);
        if self.is_final() {
            let from_finalize = self.from_finalize.unwrap_or(false);
            let ends_something = speech_final || from_finalize;
            (!text.is_empty() || ends_something).then_some(SttEvent::Final {
                text,
                words,
                speech_final,
                from_finalize,
            })
        } else {
            (!text.is_empty()).then_some(SttEvent::Interim { text, words })
        }
    }
}

impl WireWord {
    fn to_word(&self, offset_ms: f64) -> Word {
        let ms = |secs: f64| {
            (offset_ms + secs * 1000.0)
                .round()
                .clamp(0.0, u32::MAX as f64) as u32
        };
        Word {
            word: self
                .punctuated_word
                .clone()
                .unwrap_or_else(|| self.word.clone()),
            start_ms: ms(self.start),
            end_ms: ms(self.end),
            confidence: self.confidence as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ServerMessage {
        serde_json::from_str(json).expect("parses")
    }

    const FINAL: &str = r#"{"type":"Results","channel_index":[0,1],"start":3.5,"duration":1.74,
        "is_final":true,"speech_final":true,"from_finalize":false,
        "channel":{"alternatives":[{"transcript":"I'd like two","confidence":0.98,"words":[
          {"word":"i'd","start":3.58,"end":3.74,"confidence":0.97,"punctuated_word":"I'd"},
          {"word":"like","start":3.74,"end":3.9,"confidence":0.99},
          {"word":"two","start":4.46,"end":4.82,"confidence":0.99,"punctuated_word":"two"}]}]},
        "metadata":{"request_id":"r","model_uuid":"m","model_info":{"name":"n","version":"v","arch":"a"}}}"#;

    #[test]
    fn final_result_maps_words_with_the_connection_offset() {
        let ServerMessage::Results(r) = parse(FINAL) else {
            panic!("not results")
        };
        assert!((r.end_secs() - 5.24).abs() < 1e-9);
        let Some(SttEvent::Final {
            text,
            words,
            speech_final,
            from_finalize: false,
        }) = r.to_event(1000.0)
        else {
            panic!("not a final")
        };
        assert_eq!(text, "I'd like two");
        assert!(speech_final);
        assert_eq!(words[0].word, "I'd");
        assert_eq!(words[1].word, "like");
        assert_eq!((words[0].start_ms, words[0].end_ms), (4580, 4740));
    }

    #[test]
    fn interim_and_silence_results() {
        let interim = r#"{"type":"Results","is_final":false,"speech_final":false,"start":0,"duration":1,
            "channel":{"alternatives":[{"transcript":"hel","words":[]}]},"metadata":{}}"#;
        let ServerMessage::Results(r) = parse(interim) else {
            panic!()
        };
        assert_eq!(
            r.to_event(0.0),
            Some(SttEvent::Interim {
                text: "hel".into(),
                words: vec![]
            })
        );
        let silence = r#"{"type":"Results","is_final":true,"speech_final":false,"start":0,"duration":1,
            "channel":{"alternatives":[{"transcript":"","words":[]}]}}"#;
        let ServerMessage::Results(r) = parse(silence) else {
            panic!()
        };
        assert_eq!(r.to_event(0.0), None);
        let finalize = r#"{"type":"Results","is_final":true,"speech_final":false,"from_finalize":true,
            "channel":{"alternatives":[]}}"#;
        let ServerMessage::Results(r) = parse(finalize) else {
            panic!()
        };
        assert!(matches!(
            r.to_event(0.0),
            Some(SttEvent::Final {
                speech_final: false,
                from_finalize: true,
                ..
            })
        ));
    }

    #[test]
    fn other_message_types_are_recognised_or_tolerated() {
        assert!(matches!(
            parse(r#"{"type":"SpeechStarted","channel":[0],"timestamp":3.52}"#),
            ServerMessage::SpeechStarted {}
        ));
        assert!(matches!(
            parse(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":4.82}"#),
            ServerMessage::UtteranceEnd {}
        ));
        assert!(matches!(
            parse(
                r#"{"type":"Metadata","transaction_key":"deprecated","request_id":"x","sha256":"00","created":"t","duration":1.0,"channels":1,"models":["a"]}"#
            ),
            ServerMessage::Metadata { .. }
        ));
        assert!(matches!(
            parse(r#"{"type":"SomethingNew","x":1}"#),
            ServerMessage::Other
        ));
        assert!(serde_json::from_str::<ServerMessage>("{\"type\":\"Results\",").is_err());
    }
}
