//! Where a client puts its session token. Browsers cannot set headers on a WebSocket, so besides
//! `?token=<JWT>` a client may offer the subprotocol list `["voice-host.v1", "token.<JWT>"]`;
//! the server selects (echoes) only `voice-host.v1`, never the token.

use axum::http::{HeaderMap, Uri};

/// The subprotocol the server selects.
pub const PROTOCOL: &str = "voice-host.v1";

/// The prefix of the subprotocol entry carrying the token.
pub const TOKEN_PREFIX: &str = "token.";

/// The token a request presents: the `token` query parameter, else a `token.` subprotocol entry.
pub fn presented_token(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let from_query = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    from_query
        .or_else(|| {
            headers
                .get_all("sec-websocket-protocol")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .find_map(|p| p.trim().strip_prefix(TOKEN_PREFIX).map(str::to_string))
        })
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_query_then_the_subprotocol_list() {
        let uri: Uri = "/agent?x=1&token=a.b.c".parse().unwrap();
        assert_eq!(
            presented_token(&uri, &HeaderMap::new()).as_deref(),
            Some("a.b.c")
        );
        let mut h = HeaderMap::new();
        h.insert(
            "sec-websocket-protocol",
            "voice-host.v1, token.d.e.f".parse().unwrap(),
        );
        let bare: Uri = "/agent".parse().unwrap();
        assert_eq!(presented_token(&bare, &h).as_deref(), Some("d.e.f"));
        assert_eq!(presented_token(&bare, &HeaderMap::new()), None);
        let empty: Uri = "/agent?token=".parse().unwrap();
        assert_eq!(presented_token(&empty, &HeaderMap::new()), None);
    }
}
