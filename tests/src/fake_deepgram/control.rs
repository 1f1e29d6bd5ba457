//! Client text frames: the three control messages the service knows. Anything else (not
//! JSON, no `type`, an unknown `type`, a `Finalize` channel that is not a number) is refused.

use serde_json::Value;

/// A control message the service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    KeepAlive,
    Finalize,
    CloseStream,
}

impl Control {
    /// The message's `type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::KeepAlive => "KeepAlive",
            Self::Finalize => "Finalize",
            Self::CloseStream => "CloseStream",
        }
    }
}

/// Reads one text frame; `Err` says why it is refused.
pub fn parse(text: &str) -> Result<Control, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| "Could not parse the text message as JSON.".to_string())?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| "The text message has no string `type`.".to_string())?;
    let control = match kind {
        "KeepAlive" => Control::KeepAlive,
        "Finalize" => Control::Finalize,
        "CloseStream" => Control::CloseStream,
        other => {
            return Err(format!(
                "Unknown message type {other:?}: expected KeepAlive, Finalize or CloseStream."
            ))
        }
    };
    if control == Control::Finalize {
        if let Some(channel) = value.get("channel").filter(|c| !c.is_null()) {
            if channel.as_u64().is_none() {
                return Err(format!("Invalid Finalize channel {channel}."));
            }
        }
    }
    Ok(control)
}
