//! Twilio's side of admission: the `X-Twilio-Signature` of the voice webhook, the URL Twilio
//! signed, and the short-lived stream token the TwiML hands to the Media Stream (bound to the
//! call's CallSid and checked at the stream's `start`).

use super::client_ip::TrustedProxies;
use super::secret::secret_eq;
use super::token::{self, Claims, TokenError};
use axum::http::{header, HeaderMap, Uri};
use base64::Engine;
use hmac::{Hmac, Mac};
use std::net::IpAddr;

/// How long a stream token stays valid: Twilio opens the stream right after the webhook.
pub const STREAM_TOKEN_TTL_S: u64 = 120;

/// The `<Parameter>` name carrying the stream token.
pub const STREAM_TOKEN_PARAMETER: &str = "token";

/// Verifies Twilio's requests and mints and checks stream tokens.
pub struct TwilioAuth {
    auth_token: String,
    /// HS256 key of stream tokens, derived from the auth token so no extra secret is needed.
    stream_key: [u8; 32],
}

/// Why a stream was refused at `start` (logged; Twilio only sees the close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRefusal {
    Missing,
    Token(TokenError),
    WrongCall,
    WrongAgent,
}

impl std::fmt::Display for StreamRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no stream token in customParameters"),
            Self::Token(e) => write!(f, "stream token refused ({})", e.code()),
            Self::WrongCall => f.write_str("stream token was minted for another call"),
            Self::WrongAgent => f.write_str("stream names another agent than its token"),
        }
    }
}

impl TwilioAuth {
    pub fn new(auth_token: &str) -> Self {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(auth_token.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"voice-host twilio stream token v1");
        Self {
            auth_token: auth_token.to_string(),
            stream_key: mac.finalize().into_bytes().into(),
        }
    }

    /// Twilio's signature: base64 of HMAC-SHA1 over the full URL followed by each POST
    /// parameter's name and value, sorted by name.
    pub fn expected_signature(&self, url: &str, params: &[(String, String)]) -> String {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(self.auth_token.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(url.as_bytes());
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// True when `signature` is Twilio's for this request.
    pub fn signature_valid(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        let expected = self.expected_signature(url, params);
        secret_eq(signature.trim().as_bytes(), expected.as_bytes())
    }

    /// A token for the stream of call `call_sid`, limited to `agent`.
    pub fn mint_stream_token(&self, call_sid: &str, agent: Option<&str>) -> String {
        let now = token::now_s();
        token::mint_hs256(
            &self.stream_key,
            &Claims {
                sub: format!("twilio:{call_sid}"),
                exp: now + STREAM_TOKEN_TTL_S,
                nbf: None,
                iat: Some(now),
                agent: agent.map(str::to_string),
                max_session_s: None,
                call_sid: Some(call_sid.to_string()),
            },
        )
    }

    /// Check the stream token of a `start` naming `call_sid` and `agent`.
    pub fn check_stream(
        &self,
        token: Option<&str>,
        call_sid: Option<&str>,
        agent: Option<&str>,
    ) -> Result<Claims, StreamRefusal> {
        let token = token.ok_or(StreamRefusal::Missing)?;
        let claims = token::verify_hs256(&self.stream_key, token).map_err(StreamRefusal::Token)?;
        if claims.call_sid.is_none() || claims.call_sid.as_deref() != call_sid {
            return Err(StreamRefusal::WrongCall);
        }
        if claims.agent.as_deref().filter(|a| !a.is_empty()) != agent.filter(|a| !a.is_empty()) {
            return Err(StreamRefusal::WrongAgent);
        }
        Ok(claims)
    }
}

/// The public URL of a request as the caller saw it: `PUBLIC_URL` when set; otherwise the
/// scheme and host from `X-Forwarded-Proto`/`X-Forwarded-Host` when the peer is a trusted proxy,
/// else `http` and the `Host` header (the host itself speaks plain HTTP).
pub fn public_base(
    public_url: Option<&url::Url>,
    proxies: &TrustedProxies,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Option<String> {
    if let Some(u) = public_url {
        return Some(u.as_str().trim_end_matches('/').to_string());
    }
    let scheme = proxies
        .forwarded(peer, headers, "x-forwarded-proto")
        .filter(|s| matches!(*s, "http" | "https"))
        .unwrap_or("http");
    let host = proxies
        .forwarded(peer, headers, "x-forwarded-host")
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .filter(|h| valid_host(h))?;
    Some(format!("{scheme}://{host}"))
}

/// The full URL Twilio signed: the public base, the path and the query.
pub fn signed_url(base: &str, uri: &Uri) -> String {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{base}{path_and_query}")
}

/// A host name (with optional port) safe to put in a URL and an XML attribute.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Twilio's published example (its security docs and helper libraries): this URL, these
    // parameters and auth token 12345 give the signature below.
    #[test]
    fn matches_twilios_documented_example() {
        let auth = TwilioAuth::new("12345");
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            auth.expected_signature(url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(auth.signature_valid(url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!auth.signature_valid(url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8A"));
        assert!(!auth.signature_valid(
            "https://mycompany.com/other",
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn stream_tokens_are_bound_to_their_call_and_agent() {
        let auth = TwilioAuth::new("twilio-auth-token");
        let t = auth.mint_stream_token("CA1", Some("sales"));
        assert!(auth
            .check_stream(Some(&t), Some("CA1"), Some("sales"))
            .is_ok());
        assert_eq!(
            auth.check_stream(Some(&t), Some("CA2"), Some("sales")),
            Err(StreamRefusal::WrongCall)
        );
        assert_eq!(
            auth.check_stream(Some(&t), Some("CA1"), None),
            Err(StreamRefusal::WrongAgent)
        );
        assert_eq!(
            auth.check_stream(None, Some("CA1"), None),
            Err(StreamRefusal::Missing)
        );
        let other = TwilioAuth::new("another-auth-token").mint_stream_token("CA1", Some("sales"));
        assert_eq!(
            auth.check_stream(Some(&other), Some("CA1"), Some("sales")),
            Err(StreamRefusal::Token(TokenError::BadSignature))
        );
    }

    #[test]
    fn the_public_base_believes_forwarded_headers_only_from_proxies() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "10.0.0.5:4010".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-forwarded-host", "voice.example.com".parse().unwrap());
        let peer_proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let peer_other: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(
            public_base(None, &proxies, peer_proxy, &h).as_deref(),
            Some("https://voice.example.com")
        );
        assert_eq!(
            public_base(None, &proxies, peer_other, &h).as_deref(),
            Some("http://10.0.0.5:4010")
        );
        let fixed = url::Url::parse("https://voice.example.org").unwrap();
        assert_eq!(
            public_base(Some(&fixed), &proxies, peer_other, &h).as_deref(),
            Some("https://voice.example.org")
        );
        h.insert(header::HOST, "evil\"/><Hangup/>".parse().unwrap());
        assert_eq!(public_base(None, &proxies, peer_other, &h), None);
        let uri: Uri = "/twilio/voice?agent=sales".parse().unwrap();
        assert_eq!(
            signed_url("https://voice.example.org", &uri),
            "https://voice.example.org/twilio/voice?agent=sales"
        );
    }
}
