//! The session's output as Twilio events: agent audio becomes `media` (with a `mark` every
//! [`MARK_INTERVAL_MS`](super::marks::MARK_INTERVAL_MS)), `interrupt` becomes `clear`, and the
//! JSON events a phone cannot show are dropped.

use super::marks::PlaybackMarks;
use super::messages;
use base64::Engine;
use std::sync::{Arc, Mutex};

/// Turns session output into Twilio events for one stream.
pub struct Translator {
    stream_sid: String,
    marks: Arc<Mutex<PlaybackMarks>>,
}

impl Translator {
    /// A translator for `stream_sid` sharing `marks` with the reader that sees their echoes.
    pub fn new(stream_sid: String, marks: Arc<Mutex<PlaybackMarks>>) -> Self {
        Self { stream_sid, marks }
    }

    fn with_marks<T>(&self, f: impl FnOnce(&mut PlaybackMarks) -> T) -> T {
        // A poisoned lock only means another task panicked mid-update of plain counters.
        let mut guard = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Agent audio (mu-law, one byte a sample): the text frames to send, in order.
    pub fn audio(&mut self, bytes: &[u8]) -> Vec<String> {
        let payload = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut frames = vec![messages::media(&self.stream_sid, &payload)];
        if let Some(name) = self.with_marks(|m| m.on_audio(bytes.len())) {
            frames.push(messages::mark(&self.stream_sid, &name));
        }
        frames
    }

    /// A protocol v1 JSON event from the session: the text frames to send, in order.
    pub fn json(&mut self, text: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        match value.get("type").and_then(|t| t.as_str()) {
            Some("agent_text") => {
                if let Some(turn) = value["turn"].as_u64().and_then(|t| u32::try_from(t).ok()) {
                    self.with_marks(|m| m.start_reply(turn));
                }
                Vec::new()
            }
            Some("interrupt") => {
                self.with_marks(PlaybackMarks::end_reply);
                vec![messages::clear(&self.stream_sid)]
            }
            // A phone cannot pause: what Twilio buffered is cleared (up to the audio lead is
            // skipped), and the host holds the rest until `resume`.
            Some("pause") => {
                self.with_marks(PlaybackMarks::forget_pending);
                vec![messages::clear(&self.stream_sid)]
            }
            Some("agent_done") => {
                self.with_marks(PlaybackMarks::end_reply);
                Vec::new()
            }
            Some("error") => {
                tracing::warn!(
                    code = value["code"].as_str().unwrap_or(""),
                    message = value["message"].as_str().unwrap_or(""),
                    "call error"
                );
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn events(frames: Vec<String>) -> Vec<Value> {
        frames
            .iter()
            .map(|f| serde_json::from_str(f).unwrap())
            .collect()
    }

    #[test]
    fn audio_goes_out_as_media_with_periodic_marks() {
        let marks = Arc::new(Mutex::new(PlaybackMarks::new(8000)));
        let mut t = Translator::new("MZ9".into(), marks.clone());
        let chunk = vec![0x7fu8; 160];
        let mut sent = Vec::new();
        for _ in 0..5 {
            sent.extend(events(t.audio(&chunk)));
        }
        assert_eq!(sent.len(), 6, "five media and one mark: {sent:?}");
        assert_eq!(sent[0]["event"], "media");
        assert_eq!(sent[0]["streamSid"], "MZ9");
        let payload = sent[0]["media"]["payload"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap();
        assert_eq!(decoded, chunk);
        assert_eq!(sent[5]["event"], "mark");
        let name = sent[5]["mark"]["name"].as_str().unwrap();
        assert_eq!(marks.lock().unwrap().on_echo(name), Some((None, 100)));
    }

    #[test]
    fn interrupt_clears_and_forgets_the_replys_marks() {
        let marks = Arc::new(Mutex::new(PlaybackMarks::new(8000)));
        let mut t = Translator::new("MZ9".into(), marks.clone());
        let sent = events(t.audio(&[0u8; 800]));
        let name = sent[1]["mark"]["name"].as_str().unwrap().to_string();
        let cleared = events(t.json(r#"{"type":"interrupt","turn":1}"#));
        assert_eq!(
            cleared,
            vec![serde_json::json!({"event":"clear","streamSid":"MZ9"})]
        );
        assert_eq!(marks.lock().unwrap().on_echo(&name), None);
    }

    #[test]
    fn pause_clears_the_phones_buffer_and_marks_name_the_reply() {
        let marks = Arc::new(Mutex::new(PlaybackMarks::new(8000)));
        let mut t = Translator::new("MZ9".into(), marks.clone());
        assert!(t
            .json(r#"{"type":"agent_text","turn":2,"delta":"Hi"}"#)
            .is_empty());
        let sent = events(t.audio(&[0u8; 800]));
        let name = sent[1]["mark"]["name"].as_str().unwrap().to_string();
        assert_eq!(marks.lock().unwrap().on_echo(&name), Some((Some(2), 100)));
        let cleared = events(t.json(r#"{"type":"pause","turn":2}"#));
        assert_eq!(
            cleared,
            vec![serde_json::json!({"event":"clear","streamSid":"MZ9"})]
        );
        assert_eq!(marks.lock().unwrap().on_echo(&name), None);
    }

    #[test]
    fn other_events_are_not_sent_to_the_phone() {
        let marks = Arc::new(Mutex::new(PlaybackMarks::new(8000)));
        let mut t = Translator::new("MZ9".into(), marks);
        for e in [
            r#"{"type":"transcript","turn":1,"text":"hi","final":true}"#,
            r#"{"type":"agent_text","turn":1,"delta":"Hello"}"#,
            r#"{"type":"error","code":"provider_error","message":"x","fatal":false}"#,
            "not json",
        ] {
            assert!(t.json(e).is_empty(), "{e}");
        }
    }
}
