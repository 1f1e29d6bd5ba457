//! API keys never travel in the clear: a provider base URL used with a key must be `https` or
//! `wss`, unless it points at this machine (a local test server or proxy).

use super::source::{err, ConfigError};
use super::{Config, ProviderChoice};
use url::{Host, Url};

/// Refuses a configuration that would send a key over plaintext `http`/`ws` to another host.
pub(super) fn check(cfg: &Config) -> Result<(), ConfigError> {
    let roles = [
        (
            "DEEPGRAM_URL",
            cfg.stt,
            &cfg.deepgram_url,
            &cfg.deepgram_api_key,
        ),
        (
            "OPENAI_BASE_URL",
            cfg.llm,
            &cfg.openai_base_url,
            &cfg.openai_api_key,
        ),
        (
            "ELEVENLABS_URL",
            cfg.tts,
            &cfg.elevenlabs_url,
            &cfg.elevenlabs_api_key,
        ),
    ];
    for (name, choice, url, key) in roles {
        if choice == ProviderChoice::Cloud && key.is_some() && !key_safe_over(url) {
            return Err(err(
                name,
                "would send the API key in plaintext to a non-loopback host; use https:// or \
                 wss:// (plain http:// and ws:// only for localhost or 127.0.0.1)",
            ));
        }
    }
    Ok(())
}

/// Whether a key may be sent to `url`.
fn key_safe_over(url: &str) -> bool {
    let Ok(u) = Url::parse(url) else {
        return false;
    };
    match u.scheme() {
        "https" | "wss" => true,
        "http" | "ws" => match u.host() {
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(a)) => a.is_loopback(),
            Some(Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tls_or_loopback_carries_a_key() {
        assert!(key_safe_over("https://api.openai.com/v1"));
        assert!(key_safe_over("wss://api.deepgram.com"));
        assert!(key_safe_over("http://127.0.0.1:8080"));
        assert!(key_safe_over("ws://localhost:9000"));
        assert!(key_safe_over("http://[::1]:8080"));
        assert!(!key_safe_over("http://api.openai.com/v1"));
        assert!(!key_safe_over("ws://10.0.0.5:9000"));
        assert!(!key_safe_over("http://localhost.example.com"));
    }

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut raw = super::super::source::RawSettings::default();
        raw.overlay_env(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &super::super::vars::names(),
        );
        Config::from_raw(&raw)
    }

    #[test]
    fn plaintext_key_to_a_remote_host_is_a_config_error() {
        let e = config(&[
            ("OPENAI_BASE_URL", "http://llm.example.com/v1"),
            ("OPENAI_API_KEY", "key-0123456789abcdef"),
        ])
        .expect_err("refused");
        assert_eq!(e.variable, "OPENAI_BASE_URL");
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        let e = config(&[
            ("DEEPGRAM_URL", "ws://stt.example.com"),
            ("DEEPGRAM_API_KEY", "dg0123456789abcdef"),
        ])
        .expect_err("refused");
        assert_eq!(e.variable, "DEEPGRAM_URL");
        // Loopback, or no key: allowed.
        config(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("OPENAI_API_KEY", "key-0123456789abcdef"),
        ])
        .expect("loopback is fine");
        config(&[("OPENAI_BASE_URL", "http://llm.example.com/v1")]).expect("no key, no secret");
    }
}
