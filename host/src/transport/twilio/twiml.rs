//! `POST /twilio/voice`: the TwiML a Twilio phone number's voice webhook needs to connect the
//! call to this host's `/twilio` stream.

use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Query of the voice webhook: `?agent=NAME` picks an agent profile for the call.
#[derive(Debug, Default, Deserialize)]
pub struct VoiceQuery {
    #[serde(default)]
    pub agent: Option<String>,
}

/// A host name (with optional port) safe to put in a URL and an XML attribute.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// An agent profile name safe to put in an XML attribute.
fn valid_agent(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// The public host Twilio reached: a proxy's `X-Forwarded-Host` when present, else `Host`.
fn public_host(headers: &HeaderMap) -> Option<&str> {
    let forwarded = headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    forwarded
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .filter(|h| valid_host(h))
}

/// The TwiML document connecting a call to `wss://{host}/twilio`.
pub fn document(host: &str, agent: Option<&str>) -> String {
    let parameter = agent
        .map(|a| format!("\n      <Parameter name=\"agent\" value=\"{a}\"/>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Response>\n  <Connect>\n    <Stream url=\"wss://{host}/twilio\">{parameter}\n    </Stream>\n  </Connect>\n</Response>\n"
    )
}

/// Answer Twilio's voice webhook with `<Connect><Stream>` to this host. Media Streams only
/// connect over TLS, so the stream URL is always `wss://`.
pub async fn voice(headers: HeaderMap, Query(query): Query<VoiceQuery>) -> Response {
    let Some(host) = public_host(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "a valid Host header is needed to build the stream URL",
        )
            .into_response();
    };
    let agent = query.agent.as_deref().filter(|a| !a.is_empty());
    if agent.is_some_and(|a| !valid_agent(a)) {
        return (
            StatusCode::BAD_REQUEST,
            "agent must be 1-64 letters, digits, '_' or '-'",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        document(host, agent),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_connects_a_bidirectional_stream() {
        let xml = document("voice.example.com", Some("sales"));
        assert!(xml.contains("<Connect>"), "{xml}");
        assert!(
            xml.contains("<Stream url=\"wss://voice.example.com/twilio\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<Parameter name=\"agent\" value=\"sales\"/>"),
            "{xml}"
        );
        assert!(!document("h:8443", None).contains("Parameter"));
    }

    #[test]
    fn prefers_the_forwarded_host_and_rejects_markup() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "10.0.0.5:4010".parse().unwrap());
        assert_eq!(public_host(&h), Some("10.0.0.5:4010"));
        h.insert(
            "x-forwarded-host",
            "voice.example.com, proxy.internal".parse().unwrap(),
        );
        assert_eq!(public_host(&h), Some("voice.example.com"));
        h.insert("x-forwarded-host", "evil\"/><Hangup/>".parse().unwrap());
        assert_eq!(public_host(&h), None);
        assert!(!valid_agent("a\"b"));
        assert!(valid_agent("support-2"));
    }
}
