//! Redaction of secrets for logs, errors and `voice-host config`.

/// A form of `secret` safe to show: a known prefix and the last four characters (`sk-...abcd`).
pub fn redact(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "***".to_string();
    }
    let prefix: String = ["sk-proj-", "sk-", "sk_"]
        .iter()
        .find(|p| secret.starts_with(*p))
        .map(|p| p.to_string())
        .unwrap_or_default();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}...{tail}")
}

/// Replace every occurrence of each secret in `text` by its redacted form.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, &redact(s));
    }
    out
}

/// The same view as `voice-host config`: every setting, keys redacted. A derived `Debug` would
/// print keys wherever a `Config` is logged or shown in a panic message.
impl std::fmt::Debug for super::Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let described = self.describe();
        let mut map = f.debug_map();
        for line in described.lines() {
            match line.split_once('=') {
                Some((name, value)) => map.entry(&name, &value),
                None => map.entry(&"", &line),
            };
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_prefix_and_tail_only() {
        assert_eq!(redact("sk-proj-abcdefghijklmnop1234"), "sk-proj-...1234");
        assert_eq!(
            redact("0123456789abcdef0123456789abcdef01234567"),
            "...4567"
        );
        assert_eq!(redact("short"), "***");
    }

    #[test]
    fn scrubs_secrets_out_of_messages() {
        let key = "sk-abcdefghijklmnopqrstuvwxyz";
        let msg = format!("401 for key {key}");
        let s = scrub(&msg, &[key]);
        assert!(!s.contains(key));
        assert!(s.contains("sk-...wxyz"));
    }

    #[test]
    fn config_debug_redacts_every_key() {
        let keys = [
            ("OPENAI_API_KEY", "sk-proj-abcdefghijklmnopqrstuvwx1234"),
            ("DEEPGRAM_API_KEY", "dg0123456789abcdef0123456789abcdef5678"),
            (
                "ELEVENLABS_API_KEY",
                "sk_0123456789abcdef0123456789abcdef9abc",
            ),
            ("ADMIN_TOKEN", "admin-token-0123456789abcdef0123456789"),
            (
                "PLUGIN_OCI_PASSWORD",
                "ghp_registry0123456789abcdef01234567",
            ),
        ];
        let mut raw = super::super::source::RawSettings::default();
        raw.overlay_env(
            keys.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("PLUGIN_OCI_USERNAME".to_string(), "ci".to_string())]),
            &super::super::vars::names(),
        );
        let config = super::super::Config::from_raw(&raw).expect("valid");
        let shown = format!("{config:?} {config:#?}");
        for (name, key) in keys {
            assert!(!shown.contains(key), "{name} leaked: {shown}");
            assert!(shown.contains(&redact(key)), "{name} shown redacted");
        }
        assert!(shown.contains("LLM_MAX_TOKENS"), "other settings are shown");
    }
}
