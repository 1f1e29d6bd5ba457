//! Free text in a recording: kept as it was, or (`PLUGIN_RECORD_TEXT=false`) reduced to its
//! word count and length, so a recording can be kept where transcripts may not.

use serde::{Deserialize, Serialize};

/// A piece of free text (a transcript, a message, a reply) as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Text {
    /// The text itself.
    Plain(String),
    /// Only the shape of the text: whitespace-separated words and characters.
    Masked { words: u32, chars: u32 },
}

impl Text {
    /// `text` as recorded: itself when `keep` is set, else its word count and length.
    pub fn of(text: String, keep: bool) -> Self {
        if keep {
            return Text::Plain(text);
        }
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Text::Masked {
            words: count(text.split_whitespace().count()),
            chars: count(text.chars().count()),
        }
    }

    /// The text for replaying the call: itself, or for masked text placeholder words of the
    /// same count and length (so word counts and lengths a plug-in looks at are the same).
    pub fn restore(self) -> String {
        match self {
            Text::Plain(text) => text,
            Text::Masked { words, chars } => placeholder(words as usize, chars as usize),
        }
    }
}

/// `words` words of `x`, separated by single spaces and padded to `chars` characters when the
/// original was longer (a masked text's longest possible shape is its own).
fn placeholder(words: usize, chars: usize) -> String {
    if words == 0 {
        return " ".repeat(chars.min(4096));
    }
    let mut text = vec!["x"; words].join(" ");
    let short = chars.min(64 * 1024).saturating_sub(text.len());
    text.push_str(&"x".repeat(short));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_text_keeps_only_its_word_count_and_length() {
        let text = "my card number is 4111 1111".to_string();
        let masked = Text::of(text.clone(), false);
        assert_eq!(
            masked,
            Text::Masked {
                words: 6,
                chars: 27
            }
        );
        let json = serde_json::to_string(&masked).unwrap();
        assert_eq!(json, r#"{"words":6,"chars":27}"#);
        assert!(!json.contains("4111") && !json.contains("card"), "{json}");
        assert_eq!(Text::of(text.clone(), true), Text::Plain(text));
    }

    #[test]
    fn both_forms_read_back() {
        let plain: Text = serde_json::from_str(r#""stop please""#).unwrap();
        assert_eq!(plain.restore(), "stop please");
        let masked: Text = serde_json::from_str(r#"{"words":2,"chars":11}"#).unwrap();
        assert_eq!(
            masked,
            Text::Masked {
                words: 2,
                chars: 11
            }
        );
        let restored = masked.restore();
        assert_eq!(restored.split_whitespace().count(), 2);
        assert_eq!(restored.chars().count(), 11);
        assert_eq!(Text::of(String::new(), false).restore(), "");
    }
}
