//! Client messages of the multi-context socket (`multi-stream-input`): every message names its
//! context in snake_case `context_id`; the server answers in camelCase (`contextId`, `isFinal`,
//! parsed by [`super::messages::ServerMessage`]).

use super::VoiceSettings;
use serde_json::json;

/// Opens a context: its first message, a single space with the voice settings (which may be
/// given only here).
pub(super) fn open(context: &str, voice: &VoiceSettings) -> String {
    json!({"text": " ", "context_id": context, "voice_settings": voice}).to_string()
}

/// A sentence for the context (already ending with a space).
pub(super) fn text(context: &str, text: &str) -> String {
    json!({"text": text, "context_id": context}).to_string()
}

/// The end of the reply: generate what is buffered, then close the context, so the server
/// sends the rest of its audio and then `isFinal` for it (after a flush alone it never says
/// that a context is finished).
pub(super) fn end(context: &str) -> [String; 2] {
    [
        json!({"context_id": context, "flush": true}).to_string(),
        close(context),
    ]
}

/// Closes a context (barge-in or cancel): the server stops it; audio already under way may
/// still arrive and is dropped.
pub(super) fn close(context: &str) -> String {
    json!({"context_id": context, "close_context": true}).to_string()
}

/// Closes every context and the socket, at the end of the session.
pub(super) fn close_socket() -> String {
    json!({"close_socket": true}).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::messages::ServerMessage;
    use super::*;
    use serde_json::Value;

    fn value(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn client_messages_name_the_context_in_snake_case() {
        let o = value(&open("t7-0", &VoiceSettings::default()));
        assert_eq!(o["text"], " ");
        assert_eq!(o["context_id"], "t7-0");
        assert_eq!(o["voice_settings"]["stability"], 0.5);
        assert!(o.get("contextId").is_none());
        let t = value(&text("t7-0", "Hello there. "));
        assert_eq!(t, json!({"text": "Hello there. ", "context_id": "t7-0"}));
        let [flush, closing] = end("t7-0");
        assert_eq!(value(&flush), json!({"context_id": "t7-0", "flush": true}));
        assert_eq!(
            value(&closing),
            json!({"context_id": "t7-0", "close_context": true})
        );
        assert_eq!(value(&close_socket()), json!({"close_socket": true}));
    }

    #[test]
    fn server_messages_name_their_context_in_either_spelling() {
        let audio: ServerMessage = serde_json::from_str(
            r#"{"audio":"AAA=","isFinal":null,"contextId":"t7-0",
                "alignment":{"chars":["H"],"charStartTimesMs":[0],"charDurationsMs":[60]}}"#,
        )
        .unwrap();
        assert_eq!(audio.context_id.as_deref(), Some("t7-0"));
        assert_eq!(audio.is_final, None);
        let fin: ServerMessage =
            serde_json::from_str(r#"{"isFinal":true,"contextId":"t7-0"}"#).unwrap();
        assert_eq!(
            (fin.is_final, fin.context_id.as_deref()),
            (Some(true), Some("t7-0"))
        );
        let documented: ServerMessage =
            serde_json::from_str(r#"{"is_final":true,"context_id":"t8-1"}"#).unwrap();
        assert_eq!(
            (documented.is_final, documented.context_id.as_deref()),
            (Some(true), Some("t8-1"))
        );
        let error: ServerMessage = serde_json::from_str(
            r#"{"message":"Have not received a new text input","error":"input_timeout_exceeded","code":1008}"#,
        )
        .unwrap();
        assert_eq!(error.context_id, None);
        assert_eq!(error.error.as_deref(), Some("input_timeout_exceeded"));
    }
}
