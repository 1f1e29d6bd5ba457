//! Words of a transcript: joining, comparing and telling real words from backchannels.

use crate::behaviour::defaults::is_backchannel;

/// Lowercase words without punctuation, for comparing transcripts.
pub(super) fn normalise(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `late` (a final) repeats words of `done` (a turn already taken from interim text):
/// its words appear in `done` as a run of whole words ("no" is not in "i don't know").
pub(super) fn is_late_final_of(done: &str, late: &str) -> bool {
    let late = normalise(late);
    if late.is_empty() {
        return false;
    }
    let done: Vec<&str> = done.split(' ').collect();
    let late: Vec<&str> = late.split(' ').collect();
    done.windows(late.len()).any(|w| w == late.as_slice())
}

/// Words that take the turn: not empty and not only a backchannel ("uh-huh", "yeah").
pub(super) fn is_real_words(text: &str) -> bool {
    !text.trim().is_empty() && !is_backchannel(text)
}

pub(super) fn push_words(buf: &mut String, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if !buf.is_empty() {
        buf.push(' ');
    }
    buf.push_str(text);
}

pub(super) fn join_words(a: &str, b: &str) -> String {
    let mut s = a.trim().to_string();
    push_words(&mut s, b);
    s
}

#[cfg(test)]
mod tests {
    use super::is_late_final_of;

    #[test]
    fn a_late_final_is_compared_by_whole_words() {
        assert!(is_late_final_of("i don't know", "don't know"));
        assert!(!is_late_final_of("i don't know", "no"));
        assert!(!is_late_final_of("i don't know", ""));
    }
}
