//! Classified provider errors. Messages never contain secrets: build them with
//! `crate::config::redact` where a key could appear.

use std::fmt;

/// How a provider failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The key was refused (401/403). Not retried. Client code `provider_auth`.
    Auth,
    /// The request was refused as invalid (400/422). Not retried. Client code `provider_rejected`.
    Rejected,
    /// Rate limited, overloaded, 5xx, connect error or a dropped stream. Retryable.
    Unavailable,
    /// The provider answered something we could not parse.
    Protocol,
    /// A local model or resource is missing (e.g. offline model not installed).
    NotInstalled,
}

/// A provider failure with its classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub provider: &'static str,
    pub message: String,
}

impl ProviderError {
    pub fn new(
        kind: ProviderErrorKind,
        provider: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            provider,
            message: message.into(),
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::Unavailable)
    }

    /// The stable client protocol error code for this failure.
    pub fn client_code(&self) -> &'static str {
        match self.kind {
            ProviderErrorKind::Auth => "provider_auth",
            ProviderErrorKind::Rejected => "provider_rejected",
            ProviderErrorKind::Unavailable => "provider_unavailable",
            ProviderErrorKind::Protocol => "provider_error",
            ProviderErrorKind::NotInstalled => "provider_not_installed",
        }
    }
}

/// Shown to clients (the session puts it in `error` messages): URLs are left out, since a
/// provider's base URL may name an internal host or carry query parameters. `message` keeps
/// them for logs.
impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, without_urls(&self.message))
    }
}

/// `text` with every `scheme://...` URL replaced by `<url>`.
pub fn without_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        // The scheme: letters, digits, `+`, `-`, `.` before `://`, starting with a letter.
        let head = &rest[..sep];
        let scheme_len = head
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .count();
        let scheme_start = sep - scheme_len;
        let scheme = &head[scheme_start..];
        if !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&rest[..sep + 3]);
            rest = &rest[sep + 3..];
            continue;
        }
        out.push_str(&head[..scheme_start]);
        out.push_str("<url>");
        let after = &rest[sep + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl std::error::Error for ProviderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_carries_no_urls() {
        let e = ProviderError::new(
            ProviderErrorKind::Unavailable,
            "openai",
            "error sending request for url (https://llm.internal.example:8443/v1/chat/completions?key=1): \
             connection refused; see http://status.example.com",
        );
        let shown = e.to_string();
        assert!(!shown.contains("://"), "{shown}");
        assert!(!shown.contains("internal"), "{shown}");
        assert_eq!(
            shown,
            "openai: error sending request for url (<url>): connection refused; see <url>"
        );
        assert!(e.message.contains("https://llm.internal"), "logs keep it");
        assert_eq!(without_urls("no url here"), "no url here");
        assert_eq!(without_urls("odd ://x"), "odd ://x");
        assert_eq!(without_urls("wss://a.b/c"), "<url>");
    }
}
