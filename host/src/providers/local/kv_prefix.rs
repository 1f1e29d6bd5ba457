//! What a llama.cpp context's KV cache holds, so the next generation evaluates only what is new.
//!
//! A conversation's prompts grow by appending: the next turn's prompt is the system prompt, the
//! history (which now ends with the last reply) and the new words. Evaluating the whole prompt
//! again (the "prefill") is most of the time to the first token once the history is a few turns
//! long. llama.cpp keeps every evaluated token's keys and values in the context's cache; keeping
//! the cached positions the new prompt shares with the old and evaluating only the rest is what
//! llama.cpp's own server does (`cache_prompt`). Sessions share the inference threads, so
//! another session's prompt in between leaves the common part (the system prompt) to reuse.

/// The tokens a context's KV cache holds, position by position (sequence 0 only).
#[derive(Debug)]
pub struct HeldTokens<T> {
    tokens: Vec<T>,
}

impl<T> Default for HeldTokens<T> {
    fn default() -> Self {
        Self { tokens: Vec::new() }
    }
}

impl<T: PartialEq + Copy> HeldTokens<T> {
    /// How many leading tokens of `prompt` the cache already holds and may keep: the common
    /// prefix, less one when it covers the whole prompt, because the prompt's last token must be
    /// evaluated again for its logits (they pick the reply's first token).
    pub fn reusable(&self, prompt: &[T]) -> usize {
        let common = self
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(held, new)| held == new)
            .count();
        common.min(prompt.len().saturating_sub(1))
    }

    /// The cache now holds only the first `n` positions.
    pub fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
    }

    /// Tokens evaluated into the next positions.
    pub fn extend(&mut self, tokens: &[T]) {
        self.tokens.extend_from_slice(tokens);
    }

    /// The cache was emptied (or can no longer be trusted).
    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    /// Whether the cache holds exactly `prompt`, last token included.
    pub fn holds(&self, prompt: &[T]) -> bool {
        self.tokens == prompt
    }

    /// Positions held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::HeldTokens;

    fn held(tokens: &[u32]) -> HeldTokens<u32> {
        let mut h = HeldTokens::default();
        h.extend(tokens);
        h
    }

    #[test]
    fn a_prompt_that_extends_the_held_tokens_keeps_them_all() {
        // Last turn's prompt and reply, then the new user turn.
        assert_eq!(held(&[1, 2, 3, 4]).reusable(&[1, 2, 3, 4, 5, 6]), 4);
    }

    #[test]
    fn only_the_common_prefix_is_kept() {
        // Another session's prompt in between: the system prompt is what the two share.
        assert_eq!(held(&[1, 2, 9, 9, 9]).reusable(&[1, 2, 3, 4]), 2);
        assert_eq!(held(&[7, 2, 3]).reusable(&[1, 2, 3]), 0);
        assert_eq!(HeldTokens::<u32>::default().reusable(&[1, 2, 3]), 0);
    }

    #[test]
    fn the_last_prompt_token_is_always_evaluated_again() {
        // The same prompt twice (a retry): its last token is evaluated for its logits.
        assert_eq!(held(&[1, 2, 3]).reusable(&[1, 2, 3]), 2);
        // A prompt that is a prefix of what is held (a shorter retry after a longer reply).
        assert_eq!(held(&[1, 2, 3, 4, 5]).reusable(&[1, 2, 3]), 2);
        assert_eq!(held(&[1]).reusable(&[1]), 0);
        assert_eq!(held(&[1, 2]).reusable(&[]), 0);
    }

    #[test]
    fn truncating_and_clearing_change_what_is_reusable() {
        let mut h = held(&[1, 2, 3, 4]);
        h.truncate(2);
        assert_eq!((h.len(), h.reusable(&[1, 2, 3, 4, 5])), (2, 2));
        h.clear();
        assert_eq!((h.len(), h.reusable(&[1, 2, 3])), (0, 0));
    }
}
