//! Client messages of the `stream-input` socket, checked as the service checks them: every
//! message is a JSON object with a string `text`; the first initialises the stream and its
//! text is a single space; `voice_settings` and `generation_config` belong to that first
//! message only (later ones may repeat them unchanged); chunk thresholds are 50..=500.
//! On the `multi-stream-input` socket the same holds per context ([`check_multi`]).

use serde_json::Value;

/// The service's answer to a message it cannot read.
pub const UNPARSEABLE: &str =
    "Could not parse input message, make sure it is a json and follows the schema outlined in protocol.";

/// A refusal: the error code and message sent before the 1008 close.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal {
        code: "invalid_input_message",
        message: message.into(),
    }
}

/// Checks one client message; `init` is the stream's first message once it was accepted.
pub fn check(message: &Value, init: Option<&Value>) -> Result<(), Refusal> {
    let Some(fields) = message.as_object() else {
        return Err(refuse(UNPARSEABLE));
    };
    let Some(text) = fields.get("text").and_then(Value::as_str) else {
        return Err(refuse(UNPARSEABLE));
    };
    for flag in ["flush", "try_trigger_generation"] {
        if fields
            .get(flag)
            .is_some_and(|v| !v.is_boolean() && !v.is_null())
        {
            return Err(refuse(UNPARSEABLE));
        }
    }
    let Some(init) = init else {
        if text != " " {
            return Err(refuse(format!(
                "The first message initialises the stream and its text must be a single space (\" \"), got {text:?}."
            )));
        }
        return schedule(message);
    };
    for once in ["voice_settings", "generation_config"] {
        if let Some(v) = fields.get(once).filter(|v| !v.is_null()) {
            if init.get(once) != Some(v) {
                return Err(refuse(format!(
                    "`{once}` can only be set in the first message of the stream."
                )));
            }
        }
    }
    Ok(())
}

/// What a multi-context client message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum MultiMessage {
    /// `{"close_socket":true}`.
    CloseSocket,
    /// A message for one context: its text (maybe empty), flush and close flags.
    Context {
        id: String,
        text: String,
        flush: bool,
        close: bool,
    },
}

/// Checks one `multi-stream-input` message; `init` is the first message of its context once
/// that context was opened. Every message but `close_socket` names its context in `context_id`
/// (the schema also takes `contextId`); a context's first message opens it with a single space
/// (so a keep-alive or text for a context never opened is refused); `text` is optional with
/// `flush` or `close_context`; `voice_settings` and `generation_config` belong to the opening
/// message.
pub fn check_multi(message: &Value, init: Option<&Value>) -> Result<MultiMessage, Refusal> {
    let Some(fields) = message.as_object() else {
        return Err(refuse(UNPARSEABLE));
    };
    for flag in [
        "flush",
        "close_context",
        "close_socket",
        "try_trigger_generation",
    ] {
        if fields
            .get(flag)
            .is_some_and(|v| !v.is_boolean() && !v.is_null())
        {
            return Err(refuse(UNPARSEABLE));
        }
    }
    let flag = |name: &str| fields.get(name).and_then(Value::as_bool) == Some(true);
    if flag("close_socket") {
        return Ok(MultiMessage::CloseSocket);
    }
    let Some(id) = fields
        .get("context_id")
        .or_else(|| fields.get("contextId"))
        .and_then(Value::as_str)
    else {
        return Err(refuse(
            "Every message must name its context in `context_id`.",
        ));
    };
    let (flush, close) = (flag("flush"), flag("close_context"));
    let text = match fields.get("text") {
        Some(Value::String(t)) => t.clone(),
        None if flush || close => String::new(),
        _ => return Err(refuse(UNPARSEABLE)),
    };
    match init {
        None if close => {}
        None => {
            if text != " " {
                return Err(refuse(format!(
                    "The first message of context {id:?} initialises it and its text must be a single space (\" \"), got {text:?}."
                )));
            }
            schedule(message)?;
        }
        Some(init) => {
            for once in ["voice_settings", "generation_config"] {
                if let Some(v) = fields.get(once).filter(|v| !v.is_null()) {
                    if init.get(once) != Some(v) {
                        return Err(refuse(format!(
                            "`{once}` can only be set in the first message of a context."
                        )));
                    }
                }
            }
        }
    }
    Ok(MultiMessage::Context {
        id: id.to_string(),
        text,
        flush,
        close,
    })
}

/// `generation_config.chunk_length_schedule`: each threshold within 50..=500 characters.
fn schedule(message: &Value) -> Result<(), Refusal> {
    let Some(items) = message
        .get("generation_config")
        .and_then(|g| g.get("chunk_length_schedule"))
    else {
        return Ok(());
    };
    let fits = items.as_array().is_some_and(|a| {
        a.iter()
            .all(|v| v.as_f64().is_some_and(|n| (50.0..=500.0).contains(&n)))
    });
    if fits {
        Ok(())
    } else {
        Err(refuse(
            "`chunk_length_schedule` values must be between 50 and 500 characters.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_message_is_a_space_and_every_message_has_text() {
        let init = json!({"text": " ", "voice_settings": {"stability": 0.5}});
        assert_eq!(check(&init, None), Ok(()));
        assert!(check(&json!({"text": "Hello "}), None).is_err());
        assert!(check(&json!({"flush": true}), Some(&init)).is_err());
        assert_eq!(
            check(&json!({"text": "Hi ", "flush": true}), Some(&init)),
            Ok(())
        );
        assert_eq!(check(&init, Some(&init)), Ok(()), "repeated unchanged");
        let changed = json!({"text": "x ", "voice_settings": {"stability": 0.9}});
        assert!(check(&changed, Some(&init)).is_err());
        let schedule = json!({"text": " ", "generation_config": {"chunk_length_schedule": [10]}});
        assert!(check(&schedule, None).is_err());
    }

    #[test]
    fn multi_context_messages_name_their_context_and_open_it_with_a_space() {
        let open = json!({"text": " ", "context_id": "a", "voice_settings": {"stability": 0.5}});
        assert!(check_multi(&open, None).is_ok());
        let keep_alive = json!({"text": "", "context_id": "a"});
        assert!(check_multi(&keep_alive, None).is_err(), "never opened");
        assert_eq!(
            check_multi(&keep_alive, Some(&open)),
            Ok(MultiMessage::Context {
                id: "a".into(),
                text: String::new(),
                flush: false,
                close: false
            })
        );
        let flush = json!({"contextId": "a", "flush": true});
        assert!(matches!(
            check_multi(&flush, Some(&open)),
            Ok(MultiMessage::Context { flush: true, .. })
        ));
        assert!(check_multi(&json!({"text": "Hi "}), Some(&open)).is_err());
        let changed =
            json!({"text": "x ", "context_id": "a", "voice_settings": {"stability": 0.9}});
        assert!(check_multi(&changed, Some(&open)).is_err());
        assert_eq!(
            check_multi(&json!({"close_socket": true}), None),
            Ok(MultiMessage::CloseSocket)
        );
    }
}
