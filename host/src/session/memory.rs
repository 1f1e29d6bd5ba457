//! Conversation memory of one session, bounded in turns and characters. The system prompt is not
//! stored here (it is added when a prompt is shaped).

use crate::behaviour::{join_onto, ChatMessage, Role};
use std::collections::VecDeque;

/// Bounded conversation history.
#[derive(Debug, Clone)]
pub struct Memory {
    messages: VecDeque<ChatMessage>,
    chars: usize,
    max_messages: usize,
    max_chars: usize,
    /// Counts changes, so a writer can tell whether there is anything new to save.
    revision: u64,
}

impl Memory {
    /// `max_turns` user+assistant exchanges and `max_chars` characters at most.
    pub fn new(max_turns: usize, max_chars: usize) -> Self {
        Self {
            messages: VecDeque::new(),
            chars: 0,
            max_messages: max_turns.max(1) * 2,
            max_chars: max_chars.max(1),
            revision: 0,
        }
    }

    /// A memory holding `messages` (a resumed session's), within the same bounds.
    pub fn restored(max_turns: usize, max_chars: usize, messages: &[ChatMessage]) -> Self {
        let mut m = Self::new(max_turns, max_chars);
        for msg in messages {
            m.push(msg.role, &msg.content);
        }
        m
    }

    /// Changes so far (every push counts).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Append a message, evicting the oldest ones past the bounds.
    pub fn push(&mut self, role: Role, content: &str) {
        let content = content.trim();
        if content.is_empty() {
            return;
        }
        self.revision += 1;
        // Consecutive messages of the same role merge (e.g. a typed turn after an ignored one).
        if let Some(last) = self.messages.back_mut() {
            if last.role == role {
                let before = last.content.len();
                join_onto(&mut last.content, content);
                self.chars += last.content.len() - before;
                self.evict();
                return;
            }
        }
        self.chars += content.len();
        self.messages.push_back(ChatMessage::new(role, content));
        self.evict();
    }

    fn evict(&mut self) {
        while self.messages.len() > self.max_messages
            || (self.chars > self.max_chars && self.messages.len() > 1)
        {
            if let Some(m) = self.messages.pop_front() {
                self.chars -= m.content.len();
            }
        }
    }

    /// The history, oldest first.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.messages.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn last(&self) -> Option<&ChatMessage> {
        self.messages.back()
    }

    /// The newest message said by `role`.
    pub fn last_of(&self, role: Role) -> Option<&ChatMessage> {
        self.messages.iter().rev().find(|m| m.role == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_turns() {
        let mut m = Memory::new(2, 10_000);
        for i in 0..5 {
            m.push(Role::User, &format!("q{i}"));
            m.push(Role::Assistant, &format!("a{i}"));
        }
        let msgs = m.messages();
        assert_eq!(msgs.len(), 4);
        assert_eq!(msgs[0].content, "q3");
        assert_eq!(msgs[3].content, "a4");
    }

    #[test]
    fn bounds_characters_but_keeps_the_newest() {
        let mut m = Memory::new(100, 25);
        m.push(Role::User, "0123456789");
        m.push(Role::Assistant, "0123456789");
        m.push(Role::User, "0123456789");
        assert_eq!(m.len(), 2);
        m.push(Role::Assistant, &"x".repeat(100));
        assert_eq!(m.len(), 1);
        assert_eq!(m.last().unwrap().role, Role::Assistant);
    }

    #[test]
    fn merges_same_role_and_skips_empty() {
        let mut m = Memory::new(10, 1000);
        m.push(Role::User, "hello");
        m.push(Role::User, "again");
        m.push(Role::Assistant, "  ");
        assert_eq!(
            m.messages(),
            vec![ChatMessage::new(Role::User, "hello again")]
        );
    }
}
