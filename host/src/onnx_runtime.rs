//! The process's one ONNX Runtime: `libonnxruntime` (from the `onnxruntime` wheel that `voice-host
//! models install` places in the models directory) loaded at run time through `ort`, shared by
//! every model that runs on it (the end-of-turn model, Silero VAD).
//!
//! Loading at run time keeps the build free of downloads and the binary free of a 35 MB library
//! that a host without these models never uses.

use crate::providers::local::missing_message;
use crate::providers::local::models::{onnxruntime, ONNXRUNTIME_LIBRARY};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// ONNX Runtime is loaded once per process and its environment lives as long as the process:
/// `ort` allows one environment per process and one library, so a second load reuses both.
static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The environment of the runtime loaded from `library` (loading it the first time); the error
/// is the reason the library failed to load or start.
pub(crate) fn environment(library: &Path) -> Result<Environment, String> {
    let mut runtime = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((loaded, environment)) = runtime.as_ref() {
        if loaded != library {
            tracing::warn!(
                loaded = %loaded.display(),
                requested = %library.display(),
                "ONNX Runtime is already loaded in this process: using that library"
            );
        }
        return Ok(environment.clone());
    }
    let environment = ort::init_from(library)
        .map_err(|e| e.to_string())?
        .with_name("voice-host")
        .build()
        .map_err(|e| e.to_string())?;
    *runtime = Some((library.to_path_buf(), environment.clone()));
    Ok(environment)
}

/// The paths of a model (`model_file`, relative to `models_dir`) and of the runtime that runs
/// it, or the one-line reason one of them is missing: `what` names the model, `runs` what the
/// runtime is needed for.
pub(crate) fn installed(
    models_dir: &Path,
    model_file: &str,
    what: &str,
    runs: &str,
) -> Result<(PathBuf, PathBuf), String> {
    let model = models_dir.join(model_file);
    let runtime = models_dir.join(ONNXRUNTIME_LIBRARY);
    if !model.is_file() {
        return Err(missing_message(what, &model, models_dir));
    }
    if !runtime.is_file() {
        return Err(if onnxruntime::LIBRARY.is_some() {
            missing_message(
                &format!("ONNX Runtime library ({runs})"),
                &runtime,
                models_dir,
            )
        } else {
            format!(
                "no ONNX Runtime library is pinned for this platform (Linux x86_64 and aarch64 \
                 are): place libonnxruntime 1.32 at {}",
                runtime.display()
            )
        });
    }
    Ok((model, runtime))
}

/// A session of `model` as pipecat runs its models: sequential execution with one intra-op and
/// one inter-op thread (inference runs on the calling thread) and graph optimisation at
/// `Level3`, which is what makes the quantised graphs answer exactly as pipecat's
/// `ORT_ENABLE_ALL` does.
pub(crate) fn session(environment: &Environment, model: &Path) -> Result<Session, String> {
    Session::builder(environment)
        .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
        .and_then(|b| Ok(b.with_intra_threads(1)?))
        .and_then(|b| Ok(b.with_inter_threads(1)?))
        .and_then(|b| Ok(b.with_parallel_execution(false)?))
        .and_then(|mut b| b.commit_from_file(model))
        .map_err(|e| e.to_string())
}
