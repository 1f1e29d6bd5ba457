//! The conversation as the LLM reads it: runs of messages of one role joined.

use super::{ChatMessage, Role};

/// `messages` as the LLM reads them: each run of consecutive user (or assistant) messages joined
/// into one, with a space, as the session's memory joins them. A user who went on after their
/// reply was dropped unheard has their utterance's two halves in a row (the earlier half in the
/// history, the later one as the new turn); joined, the model reads one request, and the chat
/// templates of open models served behind OpenAI-compatible APIs that require user and assistant
/// turns to alternate accept it. System messages are kept apart: several are legitimate.
pub fn joined_runs(messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let mut joined: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    for m in messages {
        match joined.last_mut() {
            Some(last) if last.role == m.role && m.role != Role::System => {
                join_onto(&mut last.content, &m.content)
            }
            _ => joined.push(m),
        }
    }
    joined
}

/// Appends `more` to a message's `content`, one space between them (none beside an empty one):
/// how two messages of one role become one, here and in the session's memory.
pub fn join_onto(content: &mut String, more: &str) {
    let more = more.trim();
    if !more.is_empty() && !content.trim().is_empty() {
        content.push(' ');
    }
    content.push_str(more);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: Role, text: &str) -> ChatMessage {
        ChatMessage::new(role, text)
    }

    #[test]
    fn an_utterance_that_went_on_reads_as_one_user_message() {
        let messages = vec![
            m(Role::System, "You are helpful."),
            m(Role::Assistant, "Hello! How can I help?"),
            m(Role::User, "what's the weather"),
            m(Role::User, " in paris tomorrow "),
        ];
        assert_eq!(
            joined_runs(messages),
            vec![
                m(Role::System, "You are helpful."),
                m(Role::Assistant, "Hello! How can I help?"),
                m(Role::User, "what's the weather in paris tomorrow"),
            ]
        );
    }

    #[test]
    fn system_messages_stay_apart_and_alternating_turns_are_unchanged() {
        let messages = vec![
            m(Role::System, "Persona."),
            m(Role::System, "Answer in one sentence."),
            m(Role::User, "hi"),
            m(Role::Assistant, "Hi."),
            m(Role::Assistant, "What do you need?"),
            m(Role::User, ""),
            m(Role::User, "a taxi"),
        ];
        assert_eq!(
            joined_runs(messages),
            vec![
                m(Role::System, "Persona."),
                m(Role::System, "Answer in one sentence."),
                m(Role::User, "hi"),
                m(Role::Assistant, "Hi. What do you need?"),
                m(Role::User, "a taxi"),
            ]
        );
    }
}
