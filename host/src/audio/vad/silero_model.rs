//! The Silero VAD v5 model (`silero_vad.onnx`, MIT, from the `pipecat-ai` wheel) on the process's
//! ONNX Runtime, loaded once and shared by every session's stream.
//!
//! Where inference runs: inline, on the task that feeds the session's audio. One window is
//! about 0.07 ms of CPU per 32 ms of audio (2.2 ms per session-second, `cargo bench -p voice-host
//! --bench vad`), less than a hop to another thread and back would add in latency, and short
//! enough not to hold up the other tasks of an async worker. The model itself has no state (the recurrent state is an
//! input and an output, kept per stream), so one ONNX Runtime session can serve every stream;
//! `ort`'s `Session::run` takes `&mut self`, so the sessions sit behind locks, one per CPU so
//! that streams on different workers do not wait on each other. An ONNX Runtime session of the
//! model is about 10 MiB resident (`cargo run --release -p voice-host --example vad_memory`): one
//! per stream would cost 10 GiB at 1000 sessions, where the shared ones cost a stream only its
//! state (1 KiB) and windows (4.5 KiB).

use super::silero::WINDOW;
use crate::providers::local::models::SILERO_VAD_FILE;
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The recurrent state's length: f32 `[2, 1, 128]`.
pub(crate) const STATE_LEN: usize = 2 * 128;
/// The sample rate the model is told (it also knows 8 kHz; the pipeline is 16 kHz).
const SAMPLE_RATE: i64 = 16_000;
const INPUTS: [&str; 3] = ["input", "state", "sr"];
const OUTPUT: &str = "output";
const STATE_OUT: &str = "stateN";

/// Why the Silero model could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SileroError {
    /// The model or the runtime library is not in the models directory (the message says which,
    /// and the command that installs it).
    #[error("{0}")]
    NotInstalled(String),
    /// The ONNX Runtime library failed to load or start.
    #[error("cannot start ONNX Runtime from {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    /// The model file failed to load, or is not Silero VAD v5.
    #[error("cannot load the Silero VAD model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
}

/// Silero VAD v5, loaded once per process: a cheap handle shared by every session's gate.
#[derive(Clone)]
pub struct SileroVad {
    pool: Arc<Pool>,
}

struct Pool {
    sessions: Vec<Mutex<Session>>,
    /// Where the next caller starts looking for a free session.
    next: AtomicUsize,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SileroVad({} sessions)", self.pool.sessions.len())
    }
}

impl SileroVad {
    /// Loads the runtime (once per process) and the model from `models_dir`, with one session per
    /// CPU; a clear one-line error when either is missing.
    pub fn load(models_dir: &Path) -> Result<SileroVad, SileroError> {
        let sessions = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::load_sessions(models_dir, sessions)
    }

    /// Like [`SileroVad::load`] with `sessions` (at least 1) ONNX Runtime sessions.
    pub fn load_sessions(models_dir: &Path, sessions: usize) -> Result<SileroVad, SileroError> {
        let (model, runtime) = crate::onnx_runtime::installed(
            models_dir,
            SILERO_VAD_FILE.relative_path,
            "VAD model (Silero VAD v5)",
            "runs Silero VAD",
        )
        .map_err(SileroError::NotInstalled)?;
        let environment =
            crate::onnx_runtime::environment(&runtime).map_err(|reason| SileroError::Runtime {
                path: runtime.clone(),
                reason,
            })?;
        let failed = |reason: String| SileroError::Model {
            path: model.clone(),
            reason,
        };
        let mut pool = Vec::new();
        for _ in 0..sessions.max(1) {
            // One thread, sequential: inference runs on the calling thread, as pipecat runs it.
            let session = crate::onnx_runtime::session(&environment, &model).map_err(failed)?;
            let names = |outlets: &[ort::value::Outlet]| -> Vec<String> {
                outlets.iter().map(|o| o.name().to_string()).collect()
            };
            if names(session.inputs()) != INPUTS || names(session.outputs()) != [OUTPUT, STATE_OUT]
            {
                return Err(failed(format!(
                    "not a Silero VAD v5 model: inputs {:?}, outputs {:?}",
                    names(session.inputs()),
                    names(session.outputs())
                )));
            }
            pool.push(Mutex::new(session));
        }
        Ok(SileroVad {
            pool: Arc::new(Pool {
                sessions: pool,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs the model on one window (64 samples of context + 512 new, 16 kHz, -1..1), replacing
    /// `state` with the next one; answers the probability that the new samples are speech.
    pub(crate) fn infer(
        &self,
        window: &[f32; WINDOW],
        state: &mut [f32; STATE_LEN],
    ) -> Result<f32, String> {
        let sessions = &self.pool.sessions;
        let first = self.pool.next.fetch_add(1, Ordering::Relaxed) % sessions.len();
        // A free session if there is one, else wait for the one this call was dealt.
        let mut session = (0..sessions.len())
            .find_map(|i| sessions[(first + i) % sessions.len()].try_lock().ok())
            .unwrap_or_else(|| sessions[first].lock().unwrap_or_else(|e| e.into_inner()));
        let fail = |e: ort::Error| e.to_string();
        let input = TensorRef::from_array_view(([1usize, WINDOW], &window[..])).map_err(fail)?;
        let state_in = TensorRef::from_array_view(([2usize, 1, 128], &state[..])).map_err(fail)?;
        let rate =
            TensorRef::from_array_view(((), std::slice::from_ref(&SAMPLE_RATE))).map_err(fail)?;
        let outputs = session
            .run(ort::inputs![INPUTS[0] => input, INPUTS[1] => state_in, INPUTS[2] => rate])
            .map_err(fail)?;
        let (_, next) = outputs[STATE_OUT]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        if next.len() != STATE_LEN {
            return Err(format!("{STATE_OUT} has {} values", next.len()));
        }
        let (_, p) = outputs[OUTPUT].try_extract_tensor::<f32>().map_err(fail)?;
        let p = *p.first().ok_or_else(|| format!("{OUTPUT} is empty"))?;
        if !p.is_finite() {
            return Err(format!("the model answered {p}"));
        }
        state.copy_from_slice(next);
        Ok(p.clamp(0.0, 1.0))
    }
}

/// The installed model for tests: `None` (skipped) when it is not installed, a failure when
/// `CI=true` (where `scripts/test.sh` installs it first).
#[cfg(test)]
pub(crate) fn test_model() -> Option<SileroVad> {
    let dir = std::env::var_os("MODELS_DIR").map_or_else(
        crate::providers::local::LocalModels::default_dir,
        Into::into,
    );
    match SileroVad::load_sessions(&dir, 1) {
        Ok(model) => Some(model),
        Err(SileroError::NotInstalled(why)) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED (Silero VAD not installed): {why}");
            None
        }
        Err(e) => panic!("Silero VAD: {e}"),
    }
}
