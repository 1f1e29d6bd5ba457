//! Client messages of the `stream-input` socket, checked as the service checks them: every
//! message is a JSON object with a string `text`; the first initialises the stream and its
//! text is a single space; `voice_settings` and `generation_config` belong to that first
//! message only (later ones may repeat them unchanged); chunk thresholds are 50..=500.

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
}
