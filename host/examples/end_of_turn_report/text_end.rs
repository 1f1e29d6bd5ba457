//! What a text end-of-turn model would add (`--text-hold T`): the chance, read by the offline
//! LLM (SmolLM2 135M Instruct, as installed for the local provider, not tuned for this), that
//! the user's sentence ends where the words stop: the probability that the next token after the
//! user's words is a full stop, a question or exclamation mark or the end of the message, with
//! the words lower-cased and without punctuation (a recogniser's punctuation is not to be
//! trusted) and the agent's last sentence before them, as LiveKit's turn detector reads a
//! transcript.
//!
//! The host does not run this: the report applies it over the plug-in's answer to measure what
//! it would move. With `--text-hold T`, when the policy (with Smart Turn) ends the turn and the
//! words' probability is under T, the turn is held instead until 1 s of silence (turn-smart's
//! `doubt_ms`), as the policy holds on the audio model's doubt; the model's time is added to the
//! answer's.

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Instant;
use voice_host::providers::local::bench::HeldTokens;

/// The silence a text hold lasts to (turn-smart's `doubt_ms`).
pub const HOLD_TO_MS: u32 = 1000;

/// The offline LLM read as a text end-of-turn model.
pub struct TextEnd {
    state: RefCell<State>,
    /// Tokens that end a sentence or the message.
    enders: Vec<LlamaToken>,
    /// Below this probability an end of turn is held.
    pub threshold: f64,
}

struct State {
    model: &'static LlamaModel,
    ctx: LlamaContext<'static>,
    /// The tokens whose keys and values the context holds: a new prompt evaluates only what
    /// follows the part it shares with them (the system prompt, the agent's sentence, the words
    /// asked about at the previous pause), as a host would keep a session's context.
    held: HeldTokens<LlamaToken>,
    /// Answers by (agent sentence, words): a question is asked again at each pause and timer.
    known: HashMap<(String, String), (f64, f64)>,
}

impl TextEnd {
    /// Loads the GGUF at `path` (the local provider's SmolLM2); one thread.
    pub fn load(path: &Path, threshold: f64) -> Result<Self, String> {
        llama_cpp_2::send_logs_to_tracing(
            llama_cpp_2::LogOptions::default().with_logs_enabled(false),
        );
        let backend: &'static LlamaBackend =
            Box::leak(Box::new(LlamaBackend::init().map_err(|e| e.to_string())?));
        let model: &'static LlamaModel = Box::leak(Box::new(
            LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
                .map_err(|e| format!("{}: {e} (voice-host models install)", path.display()))?,
        ));
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(1024))
            .with_n_threads(1)
            .with_n_threads_batch(1);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| e.to_string())?;
        let vocab = model.vocab();
        let mut enders = Vec::new();
        for (text, special) in [
            ("<|im_end|>", true),
            (".", false),
            ("?", false),
            ("!", false),
        ] {
            match vocab.tokenize(text.as_bytes(), false, special).as_slice() {
                [one] => enders.push(*one),
                _ => return Err(format!("{}: {text:?} is not one token", path.display())),
            }
        }
        Ok(Self {
            state: RefCell::new(State {
                model,
                ctx,
                held: HeldTokens::default(),
                known: HashMap::new(),
            }),
            enders,
            threshold,
        })
    }

    /// The probability that the user's sentence ends after `words`, and the ms it took (0 when
    /// known already).
    pub fn probability(&self, agent: &str, words: &str) -> (f64, f64) {
        let words = normalised(words);
        let key = (agent.to_string(), words.clone());
        let mut state = self.state.borrow_mut();
        if let Some(&(p, _)) = state.known.get(&key) {
            return (p, 0.0);
        }
        let started = Instant::now();
        let mut prompt =
            String::from("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
        if !agent.is_empty() {
            prompt += &format!("<|im_start|>assistant\n{agent}<|im_end|>\n");
        }
        prompt += &format!("<|im_start|>user\n{words}");
        let tokens = state.model.vocab().tokenize(prompt.as_bytes(), false, true);
        // Keep the shared part, but evaluate at least the last token (its logits are the answer).
        let State { ctx, held, .. } = &mut *state;
        let mut from = held.reusable(&tokens);
        if ctx
            .clear_kv_cache_seq(Some(0), u32::try_from(from).ok(), None)
            .unwrap_or(false)
        {
            held.truncate(from);
        } else {
            ctx.clear_kv_cache();
            held.clear();
            from = 0;
        }
        let mut batch = LlamaBatch::new(tokens.len() - from, 1);
        for (i, &t) in tokens.iter().enumerate().skip(from) {
            batch
                .add(t, i as i32, &[0], i + 1 == tokens.len())
                .expect("the batch holds the prompt");
        }
        ctx.decode(&mut batch).expect("the offline LLM runs");
        held.extend(&tokens[from..]);
        let logits = ctx.get_logits_ith(batch.n_tokens() - 1);
        let max = logits.iter().copied().fold(f32::MIN, f32::max) as f64;
        let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
        let p = self
            .enders
            .iter()
            .map(|t| (logits[t.0 as usize] as f64 - max).exp() / total)
            .sum::<f64>();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        state.known.insert(key, (p, ms));
        (p, ms)
    }
}

/// Lower case, letters, digits, apostrophes and single spaces.
pub fn normalised(words: &str) -> String {
    let kept: String = words
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalised;

    #[test]
    fn the_words_are_read_without_the_recogniser_s_punctuation() {
        assert_eq!(
            normalised("  Book me a flight to London, please."),
            "book me a flight to london please"
        );
        assert_eq!(normalised("I'd like... um"), "i'd like um");
        assert_eq!(
            normalised("\"How do I get to Dublin?\""),
            "how do i get to dublin"
        );
    }
}
