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
}
