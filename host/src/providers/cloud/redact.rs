//! Keeps API keys out of error messages and logs: anything that could echo a key (a provider's
//! error body, a transport error) is scrubbed before it is stored in a `ProviderError`.

/// Replaces every occurrence of `secret` in `text` with its redacted form
/// (see [`crate::config::redact::redact`]).
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(key) => crate::config::redact::scrub(text, &[key]),
        None => text.to_string(),
    }
}

/// Shortens a provider's error body so a huge HTML error page does not flood the log.
pub(crate) fn clip(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_occurrence_of_the_key() {
        let key = "sk-proj-abcdefghijklmnop1234";
        let text = format!("bad key {key}; again {key}");
        let out = scrub(&text, Some(key));
        assert!(!out.contains(key));
        assert!(out.contains("1234"));
        assert_eq!(scrub("plain", None), "plain");
    }

    #[test]
    fn clip_marks_shortened_text() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
