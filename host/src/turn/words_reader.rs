//! The text end-of-turn model on llama.cpp: SmolLM2 135M Instruct (the offline LLM's model)
//! read, not run: one forward pass over the prompt gives the next token's distribution, and the
//! answer is the mass on the tokens that end a sentence or the message.
//!
//! One context serves every session: each session speaking owns one of its sequences ([`SLOTS`],
//! given out by [`Sequences`]), and the cache of that sequence keeps the session's prompt, so a
//! question evaluates only the tokens after the part it shares with the session's last one (the
//! words said since, usually one or two tokens). A session that loses its sequence, or shares
//! the overflow while more are speaking than there are sequences, has its next prompt evaluated
//! whole. Each sequence has its own cells (not a unified cache), so a read attends only to its
//! own prompt however many sessions are cached.

use super::words::prompt;
use super::words_sequences::Sequences;
use super::TurnModelError;
use crate::providers::local::kv_prefix::HeldTokens;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::Path;

/// Sessions whose prompts stay cached at once: more than one thread serves speaking at once
/// (about ten, at ~350 ms of CPU per turn), so that overload does not also make every read
/// cold. Each costs 256 cells (llama.cpp's minimum per sequence) of 23 KB: 94 MB in all.
pub(crate) const SLOTS: usize = 16;
/// Most prompt tokens one session's sequence holds ([`prompt`] keeps well under it).
const SLOT_TOKENS: usize = 192;

/// What one sequence of the context holds.
#[derive(Default)]
struct Slot {
    held: HeldTokens<LlamaToken>,
    /// The probability of the prompt `held` holds, once computed.
    answer: Option<f32>,
}

/// The model and its context, on the thread that owns them.
pub(crate) struct WordsReader {
    model: &'static LlamaModel,
    ctx: LlamaContext<'static>,
    slots: Vec<Slot>,
    owners: Sequences,
    /// The tokens that end a sentence or the message: `<|im_end|>`, `.`, `?`, `!`.
    enders: Vec<LlamaToken>,
}

/// The process's llama.cpp backend; an error names the model at `path` that needed it.
fn backend(
    path: &Path,
) -> Result<&'static llama_cpp_2::llama_backend::LlamaBackend, TurnModelError> {
    crate::providers::local::llama_backend().map_err(|e| TurnModelError::Runtime {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl WordsReader {
    /// Loads the GGUF at `path`, once per process: every thread's context shares its weights.
    pub(crate) fn load_model(path: &Path) -> Result<&'static LlamaModel, TurnModelError> {
        let backend = backend(path)?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| TurnModelError::Model {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        // Kept for the life of the process, like the offline LLM's model.
        Ok(Box::leak(Box::new(model)))
    }

    /// A one-thread context of [`SLOTS`] sequences on `model` (loaded from `path`).
    pub(crate) fn new(model: &'static LlamaModel, path: &Path) -> Result<Self, TurnModelError> {
        let failed = |reason: String| TurnModelError::Model {
            path: path.to_path_buf(),
            reason,
        };
        let backend = backend(path)?;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new((SLOTS * SLOT_TOKENS) as u32))
            .with_n_seq_max(SLOTS as u32)
            .with_kv_unified(false)
            .with_n_threads(1)
            .with_n_threads_batch(1);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| failed(e.to_string()))?;
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
                _ => return Err(failed(format!("{text:?} is not one token: not SmolLM2"))),
            }
        }
        Ok(Self {
            model,
            ctx,
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            owners: Sequences::new(SLOTS),
            enders,
        })
    }

    /// The probability that the user's sentence ends after `words`, said after the agent's
    /// `agent` sentence, for `session` (whose sequence keeps the prompt for its next question).
    pub(crate) fn probability(
        &mut self,
        session: u64,
        agent: &str,
        words: &str,
    ) -> Result<f32, TurnModelError> {
        let tokens = self
            .model
            .vocab()
            .tokenize(prompt(agent, words).as_bytes(), false, true);
        if tokens.is_empty() || tokens.len() > SLOT_TOKENS {
            return Err(TurnModelError::Inference(format!(
                "a prompt of {} tokens",
                tokens.len()
            )));
        }
        let seat = self.owners.seat(session);
        if seat.taken_over {
            self.release(seat.seq);
        }
        let outcome = self.evaluate(seat.seq, &tokens);
        if outcome.is_err() {
            // A failed evaluation leaves the sequence's cache in an unknown state.
            self.release(seat.seq);
        }
        outcome
    }

    /// The session ended: its sequence is free.
    pub(crate) fn forget(&mut self, session: u64) {
        if let Some(seq) = self.owners.forget(session) {
            self.release(seq);
        }
    }

    fn release(&mut self, seq: usize) {
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.slots[seq] = Slot::default();
    }

    fn evaluate(&mut self, seq: usize, tokens: &[LlamaToken]) -> Result<f32, TurnModelError> {
        let slot = &mut self.slots[seq];
        if let (true, Some(p)) = (slot.held.holds(tokens), slot.answer) {
            return Ok(p);
        }
        // Keep the positions this prompt shares with the sequence's last one; evaluate the
        // rest, at least the last token (its logits are the answer).
        let keep = slot.held.reusable(tokens);
        let kept = self
            .ctx
            .clear_kv_cache_seq(Some(seq as u32), u32::try_from(keep).ok(), None)
            .unwrap_or(false);
        let from = if kept {
            slot.held.truncate(keep);
            keep
        } else {
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            slot.held.clear();
            0
        };
        slot.answer = None;
        let mut batch = LlamaBatch::new(tokens.len() - from, 1);
        for (i, &t) in tokens.iter().enumerate().skip(from) {
            batch
                .add(t, i as i32, &[seq as i32], i + 1 == tokens.len())
                .map_err(|e| TurnModelError::Inference(e.to_string()))?;
        }
        self.ctx
            .decode(&mut batch)
            .map_err(|e| TurnModelError::Inference(e.to_string()))?;
        slot.held.extend(&tokens[from..]);
        let logits = self.ctx.get_logits_ith(batch.n_tokens() - 1);
        let max = logits.iter().copied().fold(f32::MIN, f32::max) as f64;
        let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
        let p = self
            .enders
            .iter()
            .map(|t| (logits[t.0 as usize] as f64 - max).exp() / total)
            .sum::<f64>() as f32;
        slot.answer = Some(p);
        Ok(p)
    }
}
