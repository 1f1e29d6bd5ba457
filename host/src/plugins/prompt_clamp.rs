//! Bounds on what a prompt plug-in may ask of the LLM, applied where its output enters the host
//! so the session can trust it: `max_tokens` from 1 to the host's `LLM_MAX_TOKENS`,
//! `temperature` within the API's 0..=2 (a value outside would have the request refused), at
//! most [`MAX_MESSAGES`] messages and [`MAX_CHARS`] characters. When there is too much, the
//! newest message and the system messages are kept first, then the rest of the history newest
//! first.

use crate::behaviour::{ChatMessage, PromptOutput, Role};

/// The sampling temperature range chat-completions APIs accept.
const TEMPERATURE: (f32, f32) = (0.0, 2.0);

/// Messages one LLM request from a plug-in may hold.
pub const MAX_MESSAGES: usize = 64;
/// Characters (all messages together, or a direct reply) one plug-in answer may hold.
pub const MAX_CHARS: usize = 32_000;
/// Characters of any one message: half the total, so the newest message always fits beside
/// the system prompt.
const MAX_MESSAGE_CHARS: usize = MAX_CHARS / 2;

/// `out` within the bounds; `max_tokens` is the host's `LLM_MAX_TOKENS`.
pub(crate) fn clamp(out: PromptOutput, max_tokens: u32) -> PromptOutput {
    match out {
        PromptOutput::Direct { text } => PromptOutput::Direct {
            text: cut(text, MAX_CHARS),
        },
        PromptOutput::Llm {
            messages,
            mut settings,
        } => {
            // The API refuses a limit of 0 as it refuses one above its own.
            settings.max_tokens = settings.max_tokens.map(|t| t.clamp(1, max_tokens.max(1)));
            settings.temperature = settings
                .temperature
                .filter(|t| t.is_finite())
                .map(|t| t.clamp(TEMPERATURE.0, TEMPERATURE.1));
            PromptOutput::Llm {
                messages: clamp_messages(messages),
                settings,
            }
        }
    }
}

fn clamp_messages(messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let mut messages: Vec<ChatMessage> = messages
        .into_iter()
        .map(|m| ChatMessage {
            content: cut(m.content, MAX_MESSAGE_CHARS),
            ..m
        })
        .collect();
    let total: usize = messages.iter().map(|m| m.content.chars().count()).sum();
    if messages.len() <= MAX_MESSAGES && total <= MAX_CHARS {
        return messages;
    }
    let Some(newest) = messages.len().checked_sub(1) else {
        return messages;
    };
    let mut keep = vec![false; messages.len()];
    let mut kept = 0usize;
    let mut chars = 0usize;
    let mut take = |i: usize, messages: &mut [ChatMessage], partial: bool| -> bool {
        let len = messages[i].content.chars().count();
        if kept >= MAX_MESSAGES || chars >= MAX_CHARS {
            return false;
        }
        if chars + len > MAX_CHARS {
            if !partial {
                return false;
            }
            let room = MAX_CHARS - chars;
            messages[i].content = cut(std::mem::take(&mut messages[i].content), room);
        }
        chars += messages[i].content.chars().count();
        kept += 1;
        keep[i] = true;
        true
    };
    take(newest, &mut messages, true);
    // System messages in order; the first that does not fit is cut to what is left.
    for i in 0..newest {
        if messages[i].role == Role::System && !take(i, &mut messages, true) {
            break;
        }
    }
    // Then the history, newest first, as long as it stays contiguous.
    for i in (0..newest).rev() {
        if messages[i].role != Role::System && !take(i, &mut messages, false) {
            break;
        }
    }
    messages
        .into_iter()
        .zip(keep)
        .filter_map(|(m, k)| k.then_some(m))
        .collect()
}

/// `text` cut to at most `max` characters.
fn cut(mut text: String, max: usize) -> String {
    if let Some((byte, _)) = text.char_indices().nth(max) {
        text.truncate(byte);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::GenerationSettings;

    fn llm(messages: Vec<ChatMessage>, max_tokens: Option<u32>) -> PromptOutput {
        PromptOutput::Llm {
            messages,
            settings: GenerationSettings {
                temperature: None,
                max_tokens,
            },
        }
    }

    fn parts(out: PromptOutput) -> (Vec<ChatMessage>, Option<u32>) {
        match out {
            PromptOutput::Llm { messages, settings } => (messages, settings.max_tokens),
            other => panic!("{other:?}"),
        }
    }

    fn chars(messages: &[ChatMessage]) -> usize {
        messages.iter().map(|m| m.content.chars().count()).sum()
    }

    #[test]
    fn max_tokens_is_capped_by_the_host_limit() {
        let msg = vec![ChatMessage::new(Role::User, "hi")];
        assert_eq!(
            parts(clamp(llm(msg.clone(), Some(1_000_000)), 300)).1,
            Some(300)
        );
        assert_eq!(parts(clamp(llm(msg.clone(), Some(20)), 300)).1, Some(20));
        assert_eq!(parts(clamp(llm(msg, None), 300)).1, None);
    }

    #[test]
    fn generation_settings_stay_within_what_the_api_accepts() {
        let msg = vec![ChatMessage::new(Role::User, "hi")];
        assert_eq!(parts(clamp(llm(msg.clone(), Some(0)), 300)).1, Some(1));
        let settings = |t: f32| match clamp(
            PromptOutput::Llm {
                messages: msg.clone(),
                settings: GenerationSettings {
                    temperature: Some(t),
                    max_tokens: None,
                },
            },
            300,
        ) {
            PromptOutput::Llm { settings, .. } => settings.temperature,
            other => panic!("{other:?}"),
        };
        assert_eq!(settings(7.5), Some(2.0));
        assert_eq!(settings(-1.0), Some(0.0));
        assert_eq!(settings(0.4), Some(0.4));
        assert_eq!(settings(f32::NAN), None);
    }

    #[test]
    fn small_requests_pass_unchanged() {
        let msgs = vec![
            ChatMessage::new(Role::System, "be brief"),
            ChatMessage::new(Role::User, "hi"),
        ];
        assert_eq!(parts(clamp(llm(msgs.clone(), None), 300)).0, msgs);
    }

    #[test]
    fn too_many_messages_keep_system_and_newest() {
        let mut msgs = vec![ChatMessage::new(Role::System, "persona")];
        for i in 0..1000 {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            msgs.push(ChatMessage::new(role, format!("turn {i}")));
        }
        let (out, _) = parts(clamp(llm(msgs, None), 300));
        assert_eq!(out.len(), MAX_MESSAGES);
        assert_eq!(out[0], ChatMessage::new(Role::System, "persona"));
        assert_eq!(out.last().unwrap().content, "turn 999");
        assert_eq!(out[1].content, "turn 937", "the newest history, contiguous");
    }

    #[test]
    fn too_many_characters_are_cut() {
        let huge = "x".repeat(1_000_000);
        let msgs = vec![
            ChatMessage::new(Role::System, huge.clone()),
            ChatMessage::new(Role::User, "old"),
            ChatMessage::new(Role::User, huge.clone()),
        ];
        let (out, _) = parts(clamp(llm(msgs, None), 300));
        assert!(chars(&out) <= MAX_CHARS, "{}", chars(&out));
        assert_eq!(out.len(), 2, "system and newest kept, the rest dropped");
        assert_eq!(out[0].role, Role::System);
        assert_eq!(out[1].role, Role::User);

        let direct = clamp(PromptOutput::Direct { text: huge }, 300);
        assert!(
            matches!(direct, PromptOutput::Direct { text } if text.chars().count() == MAX_CHARS)
        );
    }

    #[test]
    fn cut_respects_character_boundaries() {
        assert_eq!(cut("héllo".into(), 2), "hé");
        assert_eq!(cut("hi".into(), 10), "hi");
    }
}
