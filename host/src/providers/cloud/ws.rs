//! WebSocket client plumbing shared by Deepgram and ElevenLabs: the handshake with custom headers
//! and the classification of handshake failures.

use super::redact::{clip, scrub};
use crate::providers::{ProviderError, ProviderErrorKind};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open client WebSocket.
pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a handshake may take before it counts as a connect failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps an HTTP base URL onto its WebSocket scheme (`https` -> `wss`, `http` -> `ws`); other
/// schemes are kept as they are.
pub(crate) fn ws_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_string()
    }
}

/// Opens a WebSocket to `url` with the given extra headers. `secret` is scrubbed from any error.
pub(crate) async fn connect(
    provider: &'static str,
    url: &str,
    headers: &[(&'static str, String)],
    secret: Option<&str>,
) -> Result<WsStream, ProviderError> {
    let mut request = url.into_client_request().map_err(|e| {
        ProviderError::new(
            ProviderErrorKind::Rejected,
            provider,
            scrub(&format!("invalid URL: {e}"), secret),
        )
    })?;
    for (name, value) in headers {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ProviderError::new(
                ProviderErrorKind::Rejected,
                provider,
                format!("the value for header {name} contains characters not allowed in a header"),
            )
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert(*name, value);
    }
    // Audio goes out in 20 ms frames: Nagle's algorithm would hold each back for the last ACK.
    let connecting = tokio_tungstenite::connect_async_with_config(
        request,
        Some(crate::ws_buffers::client_config()),
        true,
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Err(ProviderError::new(
            ProviderErrorKind::Unavailable,
            provider,
            "connection timed out",
        )),
        Ok(Ok((stream, _response))) => Ok(stream),
        Ok(Err(e)) => Err(classify(provider, e, secret)),
    }
}

/// Classifies a handshake failure: 401/403 -> auth, 400/404/422 -> rejected, everything else
/// (429, 5xx, network) -> unavailable and worth retrying.
fn classify(provider: &'static str, err: WsError, secret: Option<&str>) -> ProviderError {
    match err {
        WsError::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| clip(&String::from_utf8_lossy(b), 300))
                .unwrap_or_default();
            let kind = match status {
                401 | 403 => ProviderErrorKind::Auth,
                400 | 404 | 405 | 422 => ProviderErrorKind::Rejected,
                _ => ProviderErrorKind::Unavailable,
            };
            ProviderError::new(
                kind,
                provider,
                scrub(
                    &format!("handshake refused with HTTP {status}: {body}"),
                    secret,
                ),
            )
        }
        WsError::Url(e) => ProviderError::new(
            ProviderErrorKind::Rejected,
            provider,
            scrub(&format!("invalid URL: {e}"), secret),
        ),
        other => ProviderError::new(
            ProviderErrorKind::Unavailable,
            provider,
            scrub(&format!("connection failed: {other}"), secret),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_schemes_map_to_websocket_schemes() {
        assert_eq!(
            ws_base("https://api.elevenlabs.io/"),
            "wss://api.elevenlabs.io"
        );
        assert_eq!(ws_base("http://127.0.0.1:9"), "ws://127.0.0.1:9");
        assert_eq!(ws_base("wss://api.deepgram.com"), "wss://api.deepgram.com");
    }
}
