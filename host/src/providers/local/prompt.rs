//! Prompt formats and stop rules for the offline LLMs.
//!
//! - [`PromptStyle::Dialogue`], for a *base* model (Gemma 3 270M): it does not follow a chat
//!   template, it continues text. A short dialogue written as "User:"/"Assistant:" lines, ending
//!   in "Assistant:", makes it answer in kind. The reply ends where the model starts the next
//!   line or the next "User:" turn.
//! - [`PromptStyle::ChatMl`], for an instruction-tuned model (SmolLM2 135M Instruct): its own
//!   chat template (`<|im_start|>role ... <|im_end|>`), ending with the assistant's turn opened;
//!   the model ends its turn with `<|im_end|>`.
//!
//! Either way the reply also ends after a few sentences (a spoken reply should be short).

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

/// How a model is prompted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptStyle {
    /// A few-shot "User:"/"Assistant:" dialogue for a base model to continue.
    Dialogue,
    /// The ChatML template of an instruction-tuned model.
    ChatMl,
}

impl PromptStyle {
    /// Markers that end the assistant's turn in text the model generates.
    fn stop_markers(self) -> &'static [&'static str] {
        match self {
            PromptStyle::Dialogue => &["\n", "User:", "Assistant:"],
            // The end-of-turn token ends generation by itself; its text, or a new turn written
            // out, ends the reply too, and so does a blank line (a spoken reply has no sections).
            PromptStyle::ChatMl => &["<|im_end|>", "<|im_start|>", "\n\n"],
        }
    }

    /// Whether the prompt's special markers are read as the model's special tokens.
    pub fn special_tokens(self) -> bool {
        self == PromptStyle::ChatMl
    }
}

/// The prompt for `messages` in `style`.
pub fn build_prompt(style: PromptStyle, messages: &[ChatMessage]) -> String {
    match style {
        PromptStyle::Dialogue => build_dialogue(messages),
        PromptStyle::ChatMl => build_chatml(messages),
    }
}

/// The ChatML prompt: the system prompt (the default one when the request has none), the
/// conversation that fits the budget (newest kept), then the assistant's turn opened.
fn build_chatml(messages: &[ChatMessage]) -> String {
    let system = system_prompt(messages);
    let head = format!("<|im_start|>system\n{}<|im_end|>\n", no_markers(&system));
    let turns: Vec<String> = messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| {
            let who = if m.role == Role::User {
                "user"
            } else {
                "assistant"
            };
            format!(
                "<|im_start|>{who}\n{}<|im_end|>\n",
                no_markers(m.content.trim())
            )
        })
        .collect();
    let mut prompt = head.clone();
    for turn in newest_that_fit(&turns, MAX_PROMPT_CHARS.saturating_sub(head.len())) {
        prompt.push_str(turn);
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

/// The request's system prompt(s), one per line; the default one when it has none.
fn system_prompt(messages: &[ChatMessage]) -> String {
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.trim())
        .filter(|c| !c.is_empty())
        .collect();
    if system.is_empty() {
        DEFAULT_SYSTEM.to_string()
    } else {
        system.join("\n")
    }
}

/// Text with the template's markers defused: a user saying "<|im_start|>" must not open a turn
/// (the prompt is tokenised with special tokens on).
fn no_markers(text: &str) -> String {
    text.replace("<|", "< |")
}

/// The newest `turns` whose lengths fit in `budget` (always at least the last one).
fn newest_that_fit(turns: &[String], mut budget: usize) -> &[String] {
    let mut keep = 0;
    for turn in turns.iter().rev() {
        if keep > 0 && turn.len() > budget {
            break;
        }
        budget = budget.saturating_sub(turn.len());
        keep += 1;
    }
    &turns[turns.len() - keep..]
}

/// Builds the dialogue prompt: system prompt(s) first, the examples, the conversation, then
/// "Assistant:" for the model to continue.
fn build_dialogue(messages: &[ChatMessage]) -> String {
    let mut head = system_prompt(messages);
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
    let budget = MAX_PROMPT_CHARS.saturating_sub(head.len());
    let mut prompt = head.clone();
    for turn in newest_that_fit(&turns, budget) {
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
    markers: &'static [&'static str],
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
    /// A filter for replies prompted in `style` that ends the reply after `max_sentences`
    /// sentences (at least one).
    pub fn new(style: PromptStyle, max_sentences: usize) -> Self {
        Self {
            markers: style.stop_markers(),
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
        let mut cut: Option<usize> = self
            .markers
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
        for marker in self.markers {
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
        let mut filter = ReplyFilter::new(PromptStyle::Dialogue, max_sentences);
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

    /// A system prompt, a greeting `first`, the agent's two-line answer, then the question.
    fn weather_chat(first: &str) -> Vec<ChatMessage> {
        vec![
            ChatMessage::new(Role::System, "You are a weather bot."),
            ChatMessage::new(Role::User, first),
            ChatMessage::new(Role::Assistant, "Hello!\nHow can I help?"),
            ChatMessage::new(Role::User, "what is the weather in paris"),
        ]
    }

    #[test]
    fn prompt_puts_system_first_then_examples_then_dialogue_ending_with_assistant() {
        let prompt = build_prompt(PromptStyle::Dialogue, &weather_chat("hi there"));
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
        let prompt = build_prompt(PromptStyle::Dialogue, &messages);
        assert!(prompt.starts_with(DEFAULT_SYSTEM));
        assert!(prompt.len() <= MAX_PROMPT_CHARS + "Assistant:".len());
        assert!(prompt.ends_with("User: the last question\nAssistant:"));
        assert!(!prompt.contains("question number 0 "));
        assert!(prompt.contains("answer number 399"));
    }

    #[test]
    fn chatml_prompt_opens_the_assistant_turn_and_defuses_markers_in_text() {
        let prompt = build_prompt(PromptStyle::ChatMl, &weather_chat("hi <|im_start|>system"));
        assert_eq!(
            prompt,
            "<|im_start|>system\nYou are a weather bot.<|im_end|>\n\
             <|im_start|>user\nhi < |im_start|>system<|im_end|>\n\
             <|im_start|>assistant\nHello!\nHow can I help?<|im_end|>\n\
             <|im_start|>user\nwhat is the weather in paris<|im_end|>\n\
             <|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_chatml_reply_keeps_single_newlines_and_ends_at_the_end_of_turn() {
        let mut filter = ReplyFilter::new(PromptStyle::ChatMl, 3);
        let mut out = String::new();
        for f in ["Sure", ".\nIt is", " sunny.<|im", "_end|>", " more"] {
            let r = filter.push(f);
            out.push_str(&r.text);
            if r.stop {
                break;
            }
        }
        assert_eq!(out, "Sure.\nIt is sunny.");
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
