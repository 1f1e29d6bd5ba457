//! The end-of-turn model: how likely it is that the user has finished speaking, from the sound
//! of their last seconds of speech.
//!
//! Silence alone makes a poor end-of-turn signal: it waits as long after "what's the weather in
//! Paris?" as after "I'd like to book a table for... um". Smart Turn v3.2 (pipecat's open model,
//! an 8 MB int8 Whisper-encoder classifier, BSD-2-Clause) hears intonation and phrasing and
//! answers a probability that the turn is complete, in tens of milliseconds of CPU.
//!
//! - [`features`]: the model's input, computed exactly as pipecat computes it;
//! - [`smart_turn`]: the model on ONNX Runtime (and why that runtime);
//! - [`worker`]: the threads that run it (`TURN_MODEL_THREADS`), batching sessions that pause
//!   together;
//! - [`words`]: the text end-of-turn model, which reads the words instead (SmolLM2 on
//!   llama.cpp, `words_reader`), for what the voice cannot tell.
//!
//! `voice-host models install` puts the model and the runtime library in the models directory.
//! Ask at a pause in speech (after a couple of hundred milliseconds of silence), never per
//! frame, with the audio of the turn so far: pipecat passes the speech from half a second before
//! it started up to the pause; only the last 8 s count. Pure silence scores as complete (0.99):
//! ask only after speech. Synthetic speech (espeak-ng) misleads the model, so a policy should
//! weigh its answer with what the words say.

pub mod features;
mod smart_turn;
pub mod words;
#[cfg(feature = "local-llm")]
mod words_reader;
#[cfg(feature = "local-llm")]
mod words_sequences;
mod worker;

pub use words::{ReadAhead, WordsModel, WordsSession};

#[cfg(test)]
mod reference;

use crate::providers::local::models::{ONNXRUNTIME_LIBRARY, SMART_TURN_FILE};
use std::path::{Path, PathBuf};

/// Why the model gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TurnModelError {
    /// The model or the runtime library is not in the models directory (the message says which,
    /// and the command that installs it).
    #[error("{0}")]
    NotInstalled(String),
    /// The ONNX Runtime library failed to load or start.
    #[error("cannot start ONNX Runtime from {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    /// The model file failed to load.
    #[error("cannot load the end-of-turn model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    /// A run of the model failed.
    #[error("end-of-turn inference failed: {0}")]
    Inference(String),
    /// Too many requests are waiting: decide without the model.
    #[error("end-of-turn model busy: its queue is full")]
    Busy,
    /// Empty audio: there is nothing to judge.
    #[error("no audio to judge the end of the turn from")]
    NoAudio,
    /// The inference thread is gone.
    #[error("the end-of-turn model has stopped")]
    Stopped,
    /// No answer within the time the question may wait: decide without the model.
    #[error("no answer from the end-of-turn model within {0:?}")]
    Late(std::time::Duration),
}

/// What came of one question to an end-of-turn model (the `outcome` label of
/// `voice_turn_model_answers_total`): a policy asked without an answer decides on the other
/// signals, so misses are silent unless counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelOutcome {
    Answered = 0,
    /// Its queue was full.
    Busy = 1,
    /// It answered too late for the question.
    Late = 2,
    /// The run failed or the model's thread is gone.
    Failed = 3,
}

impl ModelOutcome {
    pub const ALL: [ModelOutcome; 4] = [Self::Answered, Self::Busy, Self::Late, Self::Failed];

    pub fn of(answer: &Result<f32, TurnModelError>) -> Self {
        match answer {
            Ok(_) => Self::Answered,
            Err(TurnModelError::Busy) => Self::Busy,
            Err(TurnModelError::Late(_)) => Self::Late,
            Err(_) => Self::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::Late => "late",
            Self::Failed => "failed",
        }
    }
}

/// Which end-of-turn model a question went to (the `model` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Smart Turn, on the turn's audio.
    Audio = 0,
    /// The text model, on the turn's words.
    Words = 1,
}

impl ModelKind {
    pub const ALL: [ModelKind; 2] = [Self::Audio, Self::Words];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Words => "words",
        }
    }
}

/// Most threads `TURN_MODEL_THREADS` may ask for.
pub const MAX_THREADS: usize = 16;

/// Smart Turn v3.2, loaded once and shared: a cheap handle to its inference threads. The threads
/// end when the last handle is dropped.
#[derive(Clone)]
pub struct TurnModel {
    worker: worker::Worker,
}

impl std::fmt::Debug for TurnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnModel(Smart Turn v3.2)")
    }
}

impl TurnModel {
    /// Loads model + runtime from the models dir; a clear one-line error when missing.
    pub fn load(models_dir: &Path) -> Result<TurnModel, TurnModelError> {
        Self::load_on(models_dir, 1)
    }

    /// As [`Self::load`], on `threads` threads (1..=[`MAX_THREADS`]), each with its own copy of
    /// the model (2-3 MB, up to ~65 MB with what its runs keep): each thread is about one core's
    /// worth of answers, so the model answers about `threads` times as many sessions pausing at
    /// once.
    pub fn load_on(models_dir: &Path, threads: usize) -> Result<TurnModel, TurnModelError> {
        let (model, runtime) = crate::onnx_runtime::installed(
            models_dir,
            SMART_TURN_FILE.relative_path,
            "end-of-turn model (Smart Turn v3.2)",
            "runs the end-of-turn model",
        )
        .map_err(TurnModelError::NotInstalled)?;
        let started = std::time::Instant::now();
        let threads = threads.clamp(1, MAX_THREADS);
        let models = (0..threads)
            .map(|_| smart_turn::SmartTurn::load(&model, &runtime))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            threads,
            "end-of-turn model loaded (Smart Turn v3.2)"
        );
        let worker =
            worker::Worker::spawn("turn-model", models, worker::QUEUE_LEN, worker::MAX_BATCH)
                .map_err(|e| TurnModelError::Inference(format!("cannot start its thread: {e}")))?;
        Ok(TurnModel { worker })
    }

    /// Probability (0..=1) that the user's turn is complete, from the last <= 8 s of 16 kHz mono audio.
    pub async fn predict(&self, audio_16k: Vec<f32>) -> Result<f32, TurnModelError> {
        if audio_16k.is_empty() {
            return Err(TurnModelError::NoAudio);
        }
        self.worker.predict(audio_16k).await
    }
}

/// Building blocks for benchmarks (`host/benches/turn.rs`); not a stable API.
#[doc(hidden)]
pub mod bench {
    pub use super::features::FeatureExtractor;

    /// The model without its thread: features and batched runs on the caller's thread.
    pub struct SmartTurn(pub(crate) super::smart_turn::SmartTurn);

    impl SmartTurn {
        pub fn load(models_dir: &std::path::Path) -> Result<Self, super::TurnModelError> {
            super::smart_turn::SmartTurn::load(
                &models_dir.join(super::SMART_TURN_FILE.relative_path),
                &models_dir.join(super::ONNXRUNTIME_LIBRARY),
            )
            .map(Self)
        }

        /// One run of the model on `batch` feature arrays laid end to end.
        pub fn run(
            &mut self,
            features: Vec<f32>,
            batch: usize,
        ) -> Result<Vec<f32>, super::TurnModelError> {
            self.0.run(features, batch)
        }
    }
}

/// The installed model for tests that need it: `None` (with a loud notice) when it is missing,
/// except under `CI=true`, where a missing model fails the test.
#[cfg(test)]
fn test_models_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MODELS_DIR").map_or_else(
        crate::providers::local::LocalModels::default_dir,
        PathBuf::from,
    );
    let missing: Vec<String> = [
        dir.join(SMART_TURN_FILE.relative_path),
        dir.join(ONNXRUNTIME_LIBRARY),
    ]
    .iter()
    .filter(|p| !p.is_file())
    .map(|p| crate::providers::local::missing_message("end-of-turn model file", p, &dir))
    .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("end-of-turn model missing in CI: {}", missing.join("; "));
    }
    eprintln!(
        "SKIPPED (end-of-turn model missing): {}",
        missing.join("; ")
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reference::Reference;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vh-turn-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_missing_model_or_runtime_is_named_with_the_install_command() {
        let dir = scratch("missing");
        let err = TurnModel::load(&dir).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TurnModelError::NotInstalled(_)), "{err:?}");
        assert!(text.contains("smart-turn-v3.2-cpu.onnx"), "{text}");
        assert!(text.contains("voice-host models install"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");

        // The model without the runtime: the runtime is named.
        let model = dir.join(SMART_TURN_FILE.relative_path);
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"not a model").unwrap();
        let text = TurnModel::load(&dir).unwrap_err().to_string();
        assert!(text.contains("libonnxruntime.so.1.32.0"), "{text}");
        assert!(text.contains("voice-host models install"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_broken_model_file_is_an_error_not_a_panic() {
        let Some(models) = test_models_dir() else {
            return;
        };
        let dir = scratch("broken");
        let model = dir.join(SMART_TURN_FILE.relative_path);
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"not a model").unwrap();
        let runtime = dir.join(ONNXRUNTIME_LIBRARY);
        std::fs::create_dir_all(runtime.parent().unwrap()).unwrap();
        std::fs::copy(models.join(ONNXRUNTIME_LIBRARY), &runtime).unwrap();
        let err = TurnModel::load(&dir).unwrap_err();
        assert!(matches!(err, TurnModelError::Model { .. }), "{err:?}");
        assert!(
            err.to_string().contains("smart-turn-v3.2-cpu.onnx"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn empty_audio_is_refused() {
        let Some(models) = test_models_dir() else {
            return;
        };
        let model = TurnModel::load(&models).unwrap();
        assert_eq!(
            model.predict(Vec::new()).await,
            Err(TurnModelError::NoAudio)
        );
    }

    /// pipecat's probabilities for the fixture recordings (scripts/smart-turn-reference.py).
    #[tokio::test]
    async fn probabilities_match_pipecat_on_the_reference_recordings() {
        let Some(models) = test_models_dir() else {
            return;
        };
        let model = TurnModel::load(&models).unwrap();
        let Reference { cases } = reference::load();
        for case in &cases {
            let p = model.predict(case.audio()).await.unwrap();
            // Bit-identical on the machine that made the reference; the margin covers ONNX
            // Runtime's kernels that differ by CPU.
            let off = (f64::from(p) - case.probability).abs();
            assert!(
                off < 1e-5,
                "{}: {p} against pipecat's {} (off by {off:e})",
                case.name,
                case.probability
            );
        }
    }

    /// One run of a batch answers what a run of each clip alone answers.
    #[test]
    fn a_batch_answers_what_single_runs_answer() {
        let Some(models) = test_models_dir() else {
            return;
        };
        let mut model = bench::SmartTurn::load(&models).unwrap().0;
        let Reference { cases } = reference::load();
        let clips: Vec<Vec<f32>> = cases.iter().map(|c| c.audio()).collect();
        let single: Vec<f32> = clips
            .iter()
            .map(|c| model.predict(&[c.as_slice()]).unwrap()[0])
            .collect();
        let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
        let batched = model.predict(&refs).unwrap();
        // Reversed, so that no clip keeps its place.
        let reversed: Vec<&[f32]> = refs.iter().rev().copied().collect();
        let mut batched_reversed = model.predict(&reversed).unwrap();
        batched_reversed.reverse();
        for (i, case) in cases.iter().enumerate() {
            for (how, p) in [("batched", batched[i]), ("reversed", batched_reversed[i])] {
                assert!(
                    (p - single[i]).abs() < 1e-6,
                    "{}: {how} {p}, alone {}",
                    case.name,
                    single[i]
                );
            }
        }
    }

    /// On several threads each clip still gets the answer it gets alone, whichever copy of the
    /// model runs it and whatever it is batched with.
    #[tokio::test]
    async fn two_threads_answer_what_one_answers() {
        let Some(models) = test_models_dir() else {
            return;
        };
        let (one, two) = (
            TurnModel::load(&models).unwrap(),
            TurnModel::load_on(&models, 2).unwrap(),
        );
        let Reference { cases } = reference::load();
        let clips: Vec<Vec<f32>> = cases.iter().map(|c| c.audio()).collect();
        let mut alone = Vec::new();
        for clip in &clips {
            alone.push(one.predict(clip.clone()).await.unwrap());
        }
        let together = futures_util::future::join_all(
            clips.iter().chain(&clips).map(|c| two.predict(c.clone())),
        )
        .await;
        for (i, p) in together.into_iter().enumerate() {
            let (p, expected) = (p.unwrap(), alone[i % clips.len()]);
            assert!(
                (p - expected).abs() < 1e-6,
                "{}: {p} vs {expected}",
                cases[i % clips.len()].name
            );
        }
    }

    /// Sessions asking at once share runs and each gets its own answer; a burst larger than the
    /// queue is refused at once for the excess.
    #[tokio::test]
    async fn concurrent_requests_are_batched_and_a_burst_past_the_queue_is_refused() {
        let Some(models) = test_models_dir() else {
            return;
        };
        let model = TurnModel::load(&models).unwrap();
        let Reference { cases } = reference::load();
        let clips: Vec<Vec<f32>> = cases.iter().map(|c| c.audio()).collect();
        let mut alone = Vec::new();
        for clip in &clips {
            alone.push(model.predict(clip.clone()).await.unwrap());
        }

        let together =
            futures_util::future::join_all(clips.iter().map(|c| model.predict(c.clone()))).await;
        for (i, p) in together.into_iter().enumerate() {
            let p = p.unwrap();
            assert!(
                (p - alone[i]).abs() < 1e-6,
                "{}: {p} vs {}",
                cases[i].name,
                alone[i]
            );
        }

        // All sent within microseconds, while one run takes tens of milliseconds: at most the
        // first batch and a full queue are taken.
        let burst = 3 * (worker::QUEUE_LEN + worker::MAX_BATCH);
        let answers = futures_util::future::join_all(
            (0..burst).map(|i| model.predict(clips[i % clips.len()].clone())),
        )
        .await;
        let busy = answers
            .iter()
            .filter(|a| **a == Err(TurnModelError::Busy))
            .count();
        assert!(
            busy >= burst - (1 + worker::MAX_BATCH + worker::QUEUE_LEN),
            "{busy} of {burst} refused"
        );
        for (i, a) in answers.iter().enumerate() {
            if let Ok(p) = a {
                assert!((p - alone[i % clips.len()]).abs() < 1e-6);
            }
        }
        // The burst over, the model answers again.
        assert!(model.predict(clips[0].clone()).await.is_ok());
    }
}
