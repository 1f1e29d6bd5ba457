//! The TwiML a Twilio phone number's voice webhook needs to connect the call to this host's
//! `/twilio` stream (served by the server's `POST /twilio/voice` after admission).

use crate::admission::twilio::STREAM_TOKEN_PARAMETER;
use serde::Deserialize;

/// Query of the voice webhook: `?agent=NAME` picks an agent profile for the call.
#[derive(Debug, Default, Deserialize)]
pub struct VoiceQuery {
    #[serde(default)]
    pub agent: Option<String>,
}

/// An agent profile name safe to put in an XML attribute.
pub fn valid_agent(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// The TwiML document connecting a call to `wss://{host}/twilio`. Media Streams only connect
/// over TLS, so the URL is always `wss://`. `host` and `agent` must have been validated; a
/// stream token (base64url and dots) needs no escaping.
pub fn document(host: &str, agent: Option<&str>, stream_token: Option<&str>) -> String {
    let parameter =
        |name: &str, value: &str| format!("\n      <Parameter name=\"{name}\" value=\"{value}\"/>");
    let agent = agent.map(|a| parameter("agent", a)).unwrap_or_default();
    let token = stream_token
        .map(|t| parameter(STREAM_TOKEN_PARAMETER, t))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Response>\n  <Connect>\n    <Stream url=\"wss://{host}/twilio\">{agent}{token}\n    </Stream>\n  </Connect>\n</Response>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_connects_a_bidirectional_stream() {
        let xml = document("voice.example.com", Some("sales"), Some("a.b.c"));
        assert!(xml.contains("<Connect>"), "{xml}");
        assert!(
            xml.contains("<Stream url=\"wss://voice.example.com/twilio\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<Parameter name=\"agent\" value=\"sales\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<Parameter name=\"token\" value=\"a.b.c\"/>"),
            "{xml}"
        );
        assert!(!document("h:8443", None, None).contains("Parameter"));
    }

    #[test]
    fn agent_names_are_checked() {
        assert!(!valid_agent("a\"b"));
        assert!(valid_agent("support-2"));
    }
}
