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

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, self.message)
    }
}

impl std::error::Error for ProviderError {}
