//! Prompt format and stop rules for the offline LLM (Gemma 3 270M *base* model).
//!
//! A base model does not follow a chat template; it continues text. A short dialogue written as
//! "User:"/"Assistant:" lines, ending in "Assistant:", makes it answer in kind. The reply ends
//! where the model starts the next line or the next "User:" turn, or after a few sentences
//! (a spoken reply should be short).

use crate::behaviour::{ChatMessage, Role};

/// Two example exchanges that show the base model the expected length and tone.
const FEW_SHOT: [(&str, &str); 2] = [
    ("Hello, who am I talking to?", "Hi! I'm your voice assistant. How can I help you today?"),
    (
        "Can you tell me something about the moon?",
        "Sure. The moon is about 384,000 kilometres from Earth and takes about 27 days to orbit it.",
    ),
];

/// The system prompt used when the request carries none.
const DEFAULT_SYSTEM: &str =
    "The following is a conversation with a friendly, helpful voice assistant. Its answers are short and clear.";

/// The prompt budget in characters; the oldest history is dropped first to stay under it
/// (about 1,500 tokens, well inside the context window).
pub const MAX_PROMPT_CHARS: usize = 6_000;

/// Default number of sentences in a reply.
pub const DEFAULT_MAX_SENTENCES: usize = 3;

/// Markers that end the assistant's turn.
const STOP_MARKERS: [&str; 3] = ["\n", "User:", "Assistant:"];

/// Builds the dialogue prompt: system prompt(s) first, the examples, the conversation, then
/// "Assistant:" for the model to continue.
pub fn build_prompt(messages: &[ChatMessage]) -> String {
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.trim())
        .filter(|c| !c.is_empty())
        .collect();
    let mut head = if system.is_empty() {
        DEFAULT_SYSTEM.to_string()
    } else {
        system.join("\n")
    };
    head.push_str("\n\n");
    for (user, assistant) in FEW_SHOT {
        head.push_str(&format!("User: {user}\nAssistant: {assistant}\n"));
    }

    let turns: Vec<String> = messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| {
            let who = if m.role == Role::User {
                "User"
            } else {
                "Assistant"
            };
            format!("{who}: {}\n", one_line(&m.content))
        })
        .collect();
    // Keep the newest turns that fit in the budget (always at least the last one).
    let mut budget = MAX_PROMPT_CHARS.saturating_sub(head.len());
    let mut keep = 0;
    for turn in turns.iter().rev() {
        if keep > 0 && turn.len() > budget {
            break;
        }
        budget = budget.saturating_sub(turn.len());
        keep += 1;
    }
    let mut prompt = head;
    for turn in &turns[turns.len() - keep..] {
        prompt.push_str(turn);
    }
    prompt.push_str("Assistant:");
    prompt
}

/// Collapses whitespace (newlines would break the dialogue format).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Filters the model's streamed text: trims the leading space, holds back text that may be the
/// start of a stop marker, and stops at a marker or after `max_sentences` sentences.
#[derive(Debug)]
pub struct ReplyFilter {
    pending: String,
    emitted_any: bool,
    sentences: usize,
    max_sentences: usize,
    stopped: bool,
}

/// What one push produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Text safe to stream now.
    pub text: String,
    /// The reply is complete: stop generating.
    pub stop: bool,
}

impl ReplyFilter {
    /// A filter that ends the reply after `max_sentences` sentences (at least one).
    pub fn new(max_sentences: usize) -> Self {
        Self {
            pending: String::new(),
            emitted_any: false,
            sentences: 0,
            max_sentences: max_sentences.max(1),
            stopped: false,
        }
    }

    /// Whether the reply already ended.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds a fragment of generated text.
    pub fn push(&mut self, fragment: &str) -> Filtered {
        if self.stopped {
            return Filtered {
                text: String::new(),
                stop: true,
            };
        }
        self.pending.push_str(fragment);
        if !self.emitted_any {
            let trimmed = self.pending.trim_start_matches([' ', '\t']);
            if trimmed.len() != self.pending.len() {
                self.pending = trimmed.to_string();
            }
            // A reply that opens with a newline is empty so far; skip leading blank lines.
            let trimmed = self.pending.trim_start();
            if trimmed.len() != self.pending.len() {
                self.pending = trimmed.to_string();
            }
        }

        // Cut at the first stop marker.
        let mut cut: Option<usize> = STOP_MARKERS
            .iter()
            .filter_map(|m| self.pending.find(m))
            .min();
        // Cut after the sentence that reaches the limit (terminator followed by whitespace).
        if let Some(end) = self.sentence_limit_end(cut.unwrap_or(self.pending.len())) {
            cut = Some(cut.map_or(end, |c| c.min(end)));
        }
        if let Some(cut) = cut {
            let text = self.pending[..cut].trim_end().to_string();
            self.pending.clear();
            self.stopped = true;
            self.emitted_any |= !text.is_empty();
            return Filtered { text, stop: true };
        }

        // Hold back a suffix that could still become a marker (e.g. "Us"), or a trailing
        // terminator whose next character decides whether it ends a sentence.
        let hold = self.held_suffix_len();
        let emit_len = self.pending.len() - hold;
        let text: String = self.pending[..emit_len].to_string();
        self.count_sentences(&text);
        self.pending.drain(..emit_len);
        self.emitted_any |= !text.is_empty();
        Filtered { text, stop: false }
    }

    /// Ends the reply (the model stopped on its own): whatever is held back is released.
    pub fn finish(&mut self) -> String {
        self.stopped = true;
        let text = self.pending.trim_end().to_string();
        self.pending.clear();
        text
    }

    /// Byte index just past the sentence terminator that completes the allowed sentences, if it
    /// lies before `limit` and is followed by whitespace.
    fn sentence_limit_end(&self, limit: usize) -> Option<usize> {
        let mut count = self.sentences;
        let bytes = self.pending.as_bytes();
        for (i, &b) in bytes.iter().enumerate().take(limit) {
            if is_terminator(b) && bytes.get(i + 1).is_some_and(|n| n.is_ascii_whitespace()) {
                count += 1;
                if count >= self.max_sentences {
                    return Some(i + 1);
                }
            }
        }
        None
    }

    fn count_sentences(&mut self, emitted: &str) {
        let bytes = emitted.as_bytes();
        for i in 0..bytes.len() {
            if is_terminator(bytes[i]) && bytes.get(i + 1).is_some_and(|n| n.is_ascii_whitespace())
            {
                self.sentences += 1;
            }
        }
    }

    fn held_suffix_len(&self) -> usize {
        let p = &self.pending;
        let mut hold = 0;
        for marker in STOP_MARKERS {
            for len in (1..marker.len()).rev() {
                if p.ends_with(&marker[..len]) {
                    hold = hold.max(len);
                    break;
                }
            }
        }
        if p.as_bytes().last().is_some_and(|&b| is_terminator(b)) {
            // Keep the run of terminators ("...", "?!") together with what follows.
            let run = p.bytes().rev().take_while(|&b| is_terminator(b)).count();
            hold = hold.max(run);
        }
        hold
    }
}

fn is_terminator(b: u8) -> bool {
    matches!(b, b'.' | b'!' | b'?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fragments: &[&str], max_sentences: usize) -> (String, bool) {
        let mut filter = ReplyFilter::new(max_sentences);
        let mut out = String::new();
        for f in fragments {
            let r = filter.push(f);
            out.push_str(&r.text);
            if r.stop {
                return (out, true);
            }
        }
        out.push_str(&filter.finish());
        (out, false)
    }

    #[test]
    fn prompt_puts_system_first_then_examples_then_dialogue_ending_with_assistant() {
        let messages = vec![
            ChatMessage::new(Role::System, "You are a weather bot."),
            ChatMessage::new(Role::User, "hi there"),
            ChatMessage::new(Role::Assistant, "Hello!\nHow can I help?"),
            ChatMessage::new(Role::User, "what is the weather in paris"),
        ];
        let prompt = build_prompt(&messages);
        assert!(
            prompt.starts_with("You are a weather bot.\n\nUser: "),
            "{prompt}"
        );
        assert!(prompt.ends_with(
            "User: hi there\nAssistant: Hello! How can I help?\nUser: what is the weather in paris\nAssistant:"
        ));
        assert_eq!(
            prompt.matches("\nAssistant:").count(),
            4,
            "two examples, one history turn, the cue"
        );
    }

    #[test]
    fn prompt_without_system_message_uses_default_and_drops_oldest_history_first() {
        let mut messages = Vec::new();
        for i in 0..400 {
            messages.push(ChatMessage::new(
                Role::User,
                format!("question number {i} about things"),
            ));
            messages.push(ChatMessage::new(
                Role::Assistant,
                format!("answer number {i}"),
            ));
        }
        messages.push(ChatMessage::new(Role::User, "the last question"));
        let prompt = build_prompt(&messages);
        assert!(prompt.starts_with(DEFAULT_SYSTEM));
        assert!(prompt.len() <= MAX_PROMPT_CHARS + "Assistant:".len());
        assert!(prompt.ends_with("User: the last question\nAssistant:"));
        assert!(!prompt.contains("question number 0 "));
        assert!(prompt.contains("answer number 399"));
    }

    #[test]
    fn stops_at_the_next_user_turn_even_when_split_across_tokens() {
        let (text, stopped) = run(
            &[" It is", " sunny", " in Paris", ".\nUs", "er:", " thanks"],
            3,
        );
        assert_eq!(text, "It is sunny in Paris.");
        assert!(stopped);
    }

    #[test]
    fn stops_after_the_sentence_limit() {
        let (text, stopped) = run(&[" One.", " Two!", " Three?", " Four."], 2);
        assert_eq!(text, "One. Two!");
        assert!(stopped);
    }

    #[test]
    fn decimals_and_held_prefixes_are_not_cut() {
        let (text, stopped) = run(&[" It costs 3", ".5 euros", " for Us", "ers."], 3);
        assert_eq!(text, "It costs 3.5 euros for Users.");
        assert!(!stopped);
    }

    #[test]
    fn leading_newlines_are_skipped_not_treated_as_the_end() {
        let (text, stopped) = run(&["\n", " Hello", " there.\n"], 3);
        assert_eq!(text, "Hello there.");
        assert!(stopped);
    }
}
