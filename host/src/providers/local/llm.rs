//! Offline LLM provider (`local`): SmolLM2 135M Instruct or Gemma 3 270M (GGUF, `LOCAL_LLM_MODEL`)
//! through llama.cpp on dedicated threads. The reply streams token by token through
//! [`ReplyFilter`] (the prompt style's stop markers and a sentence limit); dropping the receiver
//! stops generation before the next token.

use super::models::LlmModel;
use super::prompt::{build_prompt, PromptStyle, ReplyFilter, DEFAULT_MAX_SENTENCES};
use crate::providers::{LlmEvent, LlmProvider, LlmRequest, ProviderError, ProviderErrorKind};
use std::sync::Arc;
use tokio::sync::mpsc;

const NAME: &str = "local";
const EVENT_QUEUE: usize = 128;
/// Tokens generated when the request sets no limit (three short sentences fit well within it).
pub const DEFAULT_MAX_TOKENS: u32 = 96;
/// Sampling temperature when the request sets none: low, since a small base model drifts.
pub const DEFAULT_TEMPERATURE: f32 = 0.3;

/// Of contexts with `counts` threads (most first, never empty), the index of the one with the
/// fewest threads that still has `threads`; the widest when none has that many.
fn context_for(counts: &[usize], threads: usize) -> usize {
    counts.iter().rposition(|n| *n >= threads).unwrap_or(0)
}

/// A generation request as the inference threads see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub prompt: String,
    /// How `prompt` is written (it decides the tokenisation and where the reply ends).
    pub style: PromptStyle,
    pub max_tokens: u32,
    pub temperature: f32,
    pub max_sentences: usize,
}

impl Generation {
    /// The generation for an LLM request: the prompt in `style` plus the request's settings.
    pub fn from_request(request: &LlmRequest, style: PromptStyle) -> Self {
        Self {
            prompt: build_prompt(style, &request.messages),
            style,
            max_tokens: request
                .settings
                .max_tokens
                .unwrap_or(DEFAULT_MAX_TOKENS)
                .max(1),
            temperature: request
                .settings
                .temperature
                .filter(|t| t.is_finite())
                .unwrap_or(DEFAULT_TEMPERATURE)
                .clamp(0.0, 2.0),
            max_sentences: DEFAULT_MAX_SENTENCES,
        }
    }
}

/// Runs generations off the async runtime, streaming into `events`.
pub(crate) trait Generator: Send + Sync + 'static {
    /// Queues a generation; `Err` when saturated.
    fn submit(&self, generation: Generation, events: mpsc::Sender<LlmEvent>) -> Result<(), ()>;
}

/// The offline LLM provider. All sessions share one loaded model.
pub struct LocalLlm {
    generator: Arc<dyn Generator>,
    style: PromptStyle,
}

/// How a model is prompted.
pub fn style_of(model: LlmModel) -> PromptStyle {
    match model {
        LlmModel::SmolLm2 => PromptStyle::ChatMl,
        LlmModel::Gemma3 => PromptStyle::Dialogue,
    }
}

impl LocalLlm {
    /// Loads the configured LLM's GGUF from `models` once per process (later calls share the
    /// first load).
    pub fn load(models: &super::LocalModels) -> Result<Arc<Self>, ProviderError> {
        #[cfg(feature = "local-llm")]
        {
            engine::shared(models).map(|generator| {
                Arc::new(Self {
                    generator: generator as Arc<dyn Generator>,
                    style: style_of(models.llm),
                })
            })
        }
        #[cfg(not(feature = "local-llm"))]
        {
            let _ = models;
            Err(super::feature_off("LLM", "local-llm"))
        }
    }
}

impl LlmProvider for LocalLlm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn stream(&self, request: LlmRequest) -> mpsc::Receiver<LlmEvent> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let generation = Generation::from_request(&request, self.style);
        if self.generator.submit(generation, tx.clone()).is_err() {
            let _ = tx.try_send(LlmEvent::Error(ProviderError::new(
                ProviderErrorKind::Unavailable,
                NAME,
                "offline LLM is saturated (too many concurrent requests)",
            )));
        }
        rx
    }
}

/// Turns raw token bytes into text fragments: llama.cpp pieces may split a UTF-8 character.
#[derive(Debug, Default)]
pub(crate) struct Utf8Joiner {
    pending: Vec<u8>,
}

impl Utf8Joiner {
    /// Adds bytes; returns the longest complete UTF-8 prefix.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let s = s.to_string();
                self.pending.clear();
                s
            }
            Err(e) if e.error_len().is_none() => {
                // Incomplete character at the end: keep it for the next piece.
                let valid = e.valid_up_to();
                let s = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                s
            }
            Err(_) => {
                let s = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                s
            }
        }
    }
}

/// Streams one generation: `next_piece` yields token bytes (None at end of generation);
/// returns the finish reason and completion tokens, or `None` when the receiver went away.
pub(crate) fn drive(
    generation: &Generation,
    events: &mpsc::Sender<LlmEvent>,
    mut next_piece: impl FnMut() -> Result<Option<Vec<u8>>, String>,
) -> Result<Option<(&'static str, u32)>, String> {
    let mut filter = ReplyFilter::new(generation.style, generation.max_sentences);
    let mut joiner = Utf8Joiner::default();
    let mut produced = 0u32;
    let send = |text: String| -> bool {
        text.is_empty() || events.blocking_send(LlmEvent::Token(text)).is_ok()
    };
    loop {
        if events.is_closed() {
            return Ok(None);
        }
        if produced >= generation.max_tokens {
            if !send(filter.finish()) {
                return Ok(None);
            }
            return Ok(Some(("length", produced)));
        }
        let Some(piece) = next_piece()? else {
            if !send(filter.finish()) {
                return Ok(None);
            }
            return Ok(Some(("stop", produced)));
        };
        produced += 1;
        let out = filter.push(&joiner.push(&piece));
        if !send(out.text) {
            return Ok(None);
        }
        if out.stop {
            return Ok(Some(("stop", produced)));
        }
    }
}

/// The process's llama.cpp backend (initialised once), shared with the text end-of-turn model.
#[cfg(feature = "local-llm")]
pub(crate) use engine::backend as llama_backend;

#[cfg(feature = "local-llm")]
mod engine {
    //! llama.cpp backend, model and per-thread contexts, loaded once per process.
    use super::super::kv_prefix::HeldTokens;
    use super::{context_for, drive, Generation, Generator};
    use crate::providers::local::cpu_load;
    use crate::providers::local::worker::WorkerPool;
    use crate::providers::local::{not_installed, LocalModels};
    use crate::providers::{LlmEvent, ProviderError, ProviderErrorKind, Usage};
    use llama_cpp_2::context::params::LlamaContextParams;
    use llama_cpp_2::context::LlamaContext;
    use llama_cpp_2::llama_backend::LlamaBackend;
    use llama_cpp_2::llama_batch::LlamaBatch;
    use llama_cpp_2::model::params::LlamaModelParams;
    use llama_cpp_2::model::LlamaModel;
    use llama_cpp_2::sampling::LlamaSampler;
    use llama_cpp_2::token::LlamaToken;
    use std::num::NonZeroU32;
    use std::sync::{Arc, Mutex, OnceLock};
    use tokio::sync::mpsc;

    /// Context window per inference thread (the prompt is kept under ~1,500 tokens).
    const N_CTX: u32 = 2048;
    const N_BATCH: u32 = 512;
    /// Generations queued beyond the running one before new requests are refused.
    const QUEUE: usize = 32;

    pub(crate) struct LlamaPool {
        pool: WorkerPool<LlmThread>,
    }

    /// An inference thread's state: its contexts over the shared model, one using every core
    /// and one for a loaded machine ([`cpu_load`]); a generation runs in one of them.
    pub(crate) struct LlmThread {
        pub(super) model: &'static LlamaModel,
        /// Contexts by thread count, most threads first (one when both counts are equal).
        pub(super) contexts: Vec<CachedContext>,
    }

    /// A context and what its KV cache holds, so the next prompt reuses the part it shares.
    pub(crate) struct CachedContext {
        threads: usize,
        ctx: LlamaContext<'static>,
        held: HeldTokens<LlamaToken>,
    }

    impl CachedContext {
        /// Empties the cache: the next generation evaluates its whole prompt.
        pub(super) fn forget(&mut self) {
            self.ctx.clear_kv_cache();
            self.held.clear();
        }

        /// Keeps the cached positions `prompt` starts with (all but its last token at most) and
        /// drops the rest; returns how many were kept.
        fn reuse(&mut self, prompt: &[LlamaToken]) -> usize {
            let keep = self.held.reusable(prompt);
            let removed = keep > 0
                && self
                    .ctx
                    .clear_kv_cache_seq(Some(0), u32::try_from(keep).ok(), None)
                    .unwrap_or(false);
            if removed {
                self.held.truncate(keep);
                keep
            } else {
                self.forget();
                0
            }
        }
    }

    impl LlmThread {
        /// Makes a context for each thread count in `counts`.
        pub(super) fn new(
            backend: &LlamaBackend,
            model: &'static LlamaModel,
            counts: &[usize],
        ) -> Result<Self, String> {
            let mut counts = counts.to_vec();
            counts.sort_unstable_by(|a, b| b.cmp(a));
            counts.dedup();
            let contexts = counts
                .into_iter()
                .map(|n| {
                    let threads = i32::try_from(n).unwrap_or(1);
                    // A sliding-window model (Gemma 3) keeps the whole window's cache, so that
                    // the positions a new prompt shares with the last one stay usable.
                    let params = LlamaContextParams::default()
                        .with_n_ctx(NonZeroU32::new(N_CTX))
                        .with_n_batch(N_BATCH)
                        .with_n_threads(threads)
                        .with_n_threads_batch(threads)
                        .with_swa_full(true);
                    model
                        .new_context(backend, params)
                        .map(|ctx| CachedContext {
                            threads: n,
                            ctx,
                            held: HeldTokens::default(),
                        })
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<_, _>>()?;
            Ok(Self { model, contexts })
        }

        /// The context for `threads` threads (see [`context_for`]).
        fn context(&mut self, threads: usize) -> &mut CachedContext {
            let counts: Vec<usize> = self.contexts.iter().map(|c| c.threads).collect();
            &mut self.contexts[context_for(&counts, threads)]
        }
    }

    /// The backend may be initialised once per process.
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    static SHARED: Mutex<Option<Arc<LlamaPool>>> = Mutex::new(None);

    pub(crate) fn backend() -> Result<&'static LlamaBackend, ProviderError> {
        BACKEND
            .get_or_init(|| {
                llama_cpp_2::send_logs_to_tracing(
                    llama_cpp_2::LogOptions::default().with_logs_enabled(false),
                );
                LlamaBackend::init().map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| {
                ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    "local",
                    format!("llama.cpp: {e}"),
                )
            })
    }

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// The process-wide generation pool, loading the model on first use.
    pub(crate) fn shared(models: &LocalModels) -> Result<Arc<LlamaPool>, ProviderError> {
        let mut guard = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = guard.as_ref() {
            return Ok(Arc::clone(pool));
        }
        let path = models.llm_path();
        if !path.is_file() {
            return Err(not_installed(
                &format!("LLM model ({})", models.llm.label()),
                &path,
                &models.dir,
            ));
        }
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default())
            .map_err(|e| {
                ProviderError::new(
                    ProviderErrorKind::NotInstalled,
                    "local",
                    format!(
                        "cannot load {}: {e}; reinstall with `voice-host models install`",
                        path.display()
                    ),
                )
            })?;
        // Loaded once and kept for the life of the process; contexts borrow it on their threads.
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        let pool = WorkerPool::spawn("llm", 1, QUEUE, move || {
            LlmThread::new(backend, model, &[cores(), cpu_load::narrow(cores())])
        })
        .map_err(|e| ProviderError::new(ProviderErrorKind::Unavailable, "local", e.to_string()))?;
        let pool = Arc::new(LlamaPool { pool });
        *guard = Some(Arc::clone(&pool));
        Ok(pool)
    }

    impl Generator for LlamaPool {
        fn submit(&self, generation: Generation, events: mpsc::Sender<LlmEvent>) -> Result<(), ()> {
            self.pool
                .try_submit(Box::new(move |thread: &mut LlmThread| {
                    if events.is_closed() {
                        return;
                    }
                    if let Err(reason) = generate(thread, &generation, &events) {
                        let err = ProviderError::new(ProviderErrorKind::Protocol, "local", reason);
                        let _ = events.blocking_send(LlmEvent::Error(err));
                    }
                }))
                .map_err(|_| ())
        }
    }

    /// Generates one reply, streaming it to `events`. Returns how many prompt tokens were taken
    /// from the context's cache instead of evaluated.
    pub(super) fn generate(
        thread: &mut LlmThread,
        generation: &Generation,
        events: &mpsc::Sender<LlmEvent>,
    ) -> Result<usize, String> {
        let model = thread.model;
        let others = cpu_load::others_runnable_now().unwrap_or(0);
        let slot = thread.context(cpu_load::threads_for(cores(), others));
        let outcome = generate_in(model, slot, generation, events);
        if outcome.is_err() {
            // A failed evaluation leaves the cache in an unknown state.
            slot.forget();
        }
        outcome
    }

    fn generate_in(
        model: &'static LlamaModel,
        slot: &mut CachedContext,
        generation: &Generation,
        events: &mpsc::Sender<LlmEvent>,
    ) -> Result<usize, String> {
        let vocab = model.vocab();
        let prompt = vocab.tokenize(
            generation.prompt.as_bytes(),
            true,
            generation.style.special_tokens(),
        );
        if prompt.is_empty() {
            return Err("empty prompt".into());
        }
        let budget = (N_CTX as usize).saturating_sub(generation.max_tokens as usize + 1);
        let prompt = &prompt[prompt.len().saturating_sub(budget)..];
        let reused = slot.reuse(prompt);
        let ctx = &mut slot.ctx;
        let held = &mut slot.held;

        let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
        let mut pos = reused as i32;
        for chunk in prompt[reused..].chunks(N_BATCH as usize) {
            if events.is_closed() {
                return Ok(reused);
            }
            batch.clear();
            for (i, &token) in chunk.iter().enumerate() {
                let last = pos as usize + i + 1 == prompt.len();
                batch
                    .add(token, pos + i as i32, &[0], last)
                    .map_err(|e| e.to_string())?;
            }
            ctx.decode(&mut batch).map_err(|e| e.to_string())?;
            held.extend(chunk);
            pos += chunk.len() as i32;
        }

        let mut sampler = if generation.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::penalties(model.n_vocab(), 64, 1.15, 0.0, 0.0),
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(0.9, 1),
                LlamaSampler::temp(generation.temperature),
                LlamaSampler::dist(rand::random()),
            ])
        };
        let mut logits_at = batch.n_tokens() - 1;
        // The sampled token waiting in `batch` to be evaluated before the next is sampled.
        let mut unevaluated: Option<LlamaToken> = None;
        let outcome = drive(generation, events, || {
            if let Some(token) = unevaluated.take() {
                ctx.decode(&mut batch).map_err(|e| e.to_string())?;
                held.extend(&[token]);
                logits_at = 0;
            }
            let token = sampler.sample(ctx, logits_at);
            if vocab.is_eog(token) {
                return Ok(None);
            }
            let piece = vocab.token_to_piece(token, false, None);
            batch.clear();
            batch
                .add(token, pos, &[0], true)
                .map_err(|e| e.to_string())?;
            unevaluated = Some(token);
            pos += 1;
            Ok(Some(piece))
        })?;
        if let Some((reason, completion)) = outcome {
            let usage = Usage {
                prompt_tokens: prompt.len() as u32,
                completion_tokens: completion,
            };
            let _ = events.blocking_send(LlmEvent::Done {
                finish_reason: Some(reason.to_string()),
                usage: Some(usage),
            });
        }
        Ok(reused)
    }
}

/// How fast generation is with one and with two llama.cpp threads, on an idle machine and with
/// busy threads standing in for the rest of a loaded host. A measurement, printed for
/// `docs/benchmarks.md`; it asserts only that generation works in each setting.
#[cfg(all(test, feature = "local-llm"))]
mod thread_count {
    use super::engine::{backend, generate, LlmThread};
    use super::*;
    use llama_cpp_2::model::params::LlamaModelParams;
    use llama_cpp_2::model::LlamaModel;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// Spins `n` threads until dropped: another core's worth of work each.
    struct Busy(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

    impl Busy {
        fn start(n: usize) -> Self {
            let stop = Arc::new(AtomicBool::new(false));
            let threads = (0..n)
                .map(|_| {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        let mut x = 1u64;
                        while !stop.load(Ordering::Relaxed) {
                            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) | 1);
                        }
                    })
                })
                .collect();
            Self(stop, threads)
        }
    }

    impl Drop for Busy {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
            for t in self.1.drain(..) {
                let _ = t.join();
            }
        }
    }

    /// Time to the first token and tokens per second after it, for one greedy generation.
    fn run(thread: &mut LlmThread, tokens: u32, style: PromptStyle) -> (Duration, f64) {
        let generation = Generation {
            style,
            prompt: build_prompt(
                style,
                &[
                    crate::behaviour::ChatMessage::new(
                        crate::behaviour::Role::System,
                        "You are a helpful voice assistant.",
                    ),
                    crate::behaviour::ChatMessage::new(
                        crate::behaviour::Role::User,
                        "Tell me a long story about a cat who lives in Paris and loves music.",
                    ),
                ],
            ),
            max_tokens: tokens,
            temperature: 0.0,
            max_sentences: 100,
        };
        let (tx, mut rx) = mpsc::channel(4096);
        let start = Instant::now();
        let drain = std::thread::spawn(move || {
            let (mut first, mut last, mut n) = (None, start, 0u32);
            while let Some(e) = rx.blocking_recv() {
                if let LlmEvent::Token(_) = e {
                    first.get_or_insert_with(|| start.elapsed());
                    last = Instant::now();
                    n += 1;
                }
            }
            (first, last, n)
        });
        // A measurement of a cold prompt: nothing reused from the previous run.
        thread.contexts[0].forget();
        generate(thread, &generation, &tx).expect("generation");
        drop(tx);
        let (first, last, n) = drain.join().unwrap();
        let first = first.expect("a token");
        let rate = f64::from(n.saturating_sub(1)) / (last - start - first).as_secs_f64();
        (first, rate)
    }

    #[test]
    #[ignore = "measurement, about a minute: --ignored llm_threads --nocapture"]
    fn llm_threads_one_and_two_idle_and_loaded() {
        let Some(models) = crate::providers::local::test_models() else {
            return;
        };
        let backend = backend().expect("backend");
        let model: &'static LlamaModel = Box::leak(Box::new(
            LlamaModel::load_from_file(backend, models.llm_path(), &LlamaModelParams::default())
                .expect("model"),
        ));
        // One context per thread count, so `generate` has no choice to make.
        let mut contexts: Vec<(usize, LlmThread)> = [1, 2]
            .into_iter()
            .map(|n| (n, LlmThread::new(backend, model, &[n]).expect("context")))
            .collect();
        println!("llm_threads: busy threads | llama.cpp threads | first token ms | tokens/s (median of 3)");
        for busy in [0, 1, 2] {
            let _load = Busy::start(busy);
            for (n, thread) in &mut contexts {
                let mut runs: Vec<(Duration, f64)> = (0..3)
                    .map(|_| run(thread, 48, style_of(models.llm)))
                    .collect();
                runs.sort_by(|a, b| a.1.total_cmp(&b.1));
                let (first, rate) = runs[1];
                println!(
                    "llm_threads: {busy} | {n} | {:.0} | {rate:.1}",
                    first.as_secs_f64() * 1000.0
                );
                assert!(rate > 0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{ChatMessage, GenerationSettings, Role};

    #[test]
    fn request_settings_are_respected_and_defaults_applied() {
        let mut request = LlmRequest {
            messages: vec![ChatMessage::new(Role::User, "hi")],
            ..Default::default()
        };
        let g = Generation::from_request(&request, PromptStyle::Dialogue);
        assert_eq!(
            (g.max_tokens, g.temperature),
            (DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE)
        );
        assert!(g.prompt.ends_with("User: hi\nAssistant:"));
        request.settings = GenerationSettings {
            temperature: Some(9.0),
            max_tokens: Some(0),
        };
        let g = Generation::from_request(&request, PromptStyle::Dialogue);
        assert_eq!((g.max_tokens, g.temperature), (1, 2.0));
    }

    #[test]
    fn utf8_split_across_pieces_is_joined() {
        let mut j = Utf8Joiner::default();
        let e_acute = "é".as_bytes();
        assert_eq!(j.push(b"caf"), "caf");
        assert_eq!(j.push(&e_acute[..1]), "");
        assert_eq!(j.push(&e_acute[1..]), "é");
    }

    fn run_drive(pieces: &[&str], max_tokens: u32) -> (Vec<LlmEvent>, Option<(&'static str, u32)>) {
        let generation = Generation {
            prompt: String::new(),
            style: PromptStyle::Dialogue,
            max_tokens,
            temperature: 0.0,
            max_sentences: 3,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let mut iter = pieces.iter().map(|p| p.as_bytes().to_vec());
        let outcome = drive(&generation, &tx, || Ok(iter.next())).unwrap();
        drop(tx);
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        (events, outcome)
    }

    fn text_of(events: &[LlmEvent]) -> String {
        events
            .iter()
            .map(|e| match e {
                LlmEvent::Token(t) => t.as_str(),
                _ => "",
            })
            .collect()
    }

    #[test]
    fn generation_streams_tokens_and_stops_at_the_next_user_turn() {
        let (events, outcome) = run_drive(&[" It", " is", " sunny", ".", "\n", "User", ":"], 50);
        assert_eq!(text_of(&events), "It is sunny.");
        assert!(events.len() >= 2, "streamed in pieces: {events:?}");
        assert_eq!(outcome, Some(("stop", 5)));
    }

    #[test]
    fn generation_stops_at_max_tokens_with_length_reason() {
        let (events, outcome) = run_drive(&[" a", " b", " c", " d"], 2);
        assert_eq!(text_of(&events), "a b");
        assert_eq!(outcome, Some(("length", 2)));
    }

    #[test]
    fn a_generation_runs_in_the_context_with_the_threads_it_asks_for() {
        assert_eq!(context_for(&[2, 1], 2), 0);
        assert_eq!(context_for(&[2, 1], 1), 1);
        assert_eq!(context_for(&[8, 4], 3), 1);
        assert_eq!(context_for(&[8, 4], 16), 0);
        assert_eq!(context_for(&[1], 1), 0);
    }

    #[test]
    fn dropped_receiver_stops_generation_at_once() {
        let generation = Generation {
            prompt: String::new(),
            style: PromptStyle::Dialogue,
            max_tokens: 1000,
            temperature: 0.0,
            max_sentences: 3,
        };
        let (tx, rx) = mpsc::channel(64);
        drop(rx);
        let mut calls = 0;
        let outcome = drive(&generation, &tx, || {
            calls += 1;
            Ok(Some(b" word".to_vec()))
        })
        .unwrap();
        assert_eq!(outcome, None);
        assert_eq!(calls, 0, "no token is generated for a cancelled request");
    }

    #[cfg(feature = "local-llm")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_default_model_answers_briefly_in_one_streamed_turn() {
        let Some(models) = crate::providers::local::test_models() else {
            return;
        };
        let llm = LocalLlm::load(&models).expect("load");
        let again = LocalLlm::load(&models).expect("second load shares the first");
        assert!(
            Arc::ptr_eq(&llm.generator, &again.generator),
            "one model per process"
        );
        // The system prompt sessions get by default, greedy decoding for a repeatable answer.
        let request = LlmRequest {
            messages: vec![
                ChatMessage::new(Role::System, crate::config::DEFAULT_SYSTEM_PROMPT),
                ChatMessage::new(Role::User, "What is the capital of France?"),
            ],
            settings: GenerationSettings {
                temperature: Some(0.0),
                max_tokens: Some(48),
            },
            ..Default::default()
        };
        let mut rx = llm.stream(request);
        let mut tokens = Vec::new();
        let done = loop {
            match rx.recv().await.expect("stream ends with done") {
                LlmEvent::Token(t) => tokens.push(t),
                LlmEvent::Working => {}
                LlmEvent::Done {
                    finish_reason,
                    usage,
                } => break (finish_reason, usage),
                LlmEvent::Error(e) => panic!("{e}"),
            }
        };
        let text: String = tokens.concat();
        assert!(tokens.len() >= 2, "streamed: {tokens:?}");
        assert!(
            !text.contains("<|im") && !text.contains("\n\n") && !text.contains("user\n"),
            "one turn, no template text: {text:?}"
        );
        assert!(text.to_lowercase().contains("paris"), "{text:?}");
        let usage = done.1.expect("usage");
        assert!(
            usage.prompt_tokens > 20
                && usage.completion_tokens as usize >= tokens.len().min(48) / 2
        );
    }
}

/// SmolLM2 against Gemma on everyday questions: replies side by side, first-token latency and
/// generation rate (`--ignored compare_models --nocapture`).
#[cfg(all(test, feature = "local-llm"))]
#[path = "llm_compare.rs"]
mod compare;

#[cfg(all(test, feature = "local-llm"))]
#[path = "llm_cache_tests.rs"]
mod cache_tests;
