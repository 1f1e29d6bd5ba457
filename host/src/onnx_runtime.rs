//! The process's one ONNX Runtime: `libonnxruntime` (from the `onnxruntime` wheel that `voice-host
//! models install` places in the models directory) loaded at run time through `ort`, shared by
//! every model that runs on it (the end-of-turn model, Silero VAD).
//!
//! Loading at run time keeps the build free of downloads and the binary free of a 35 MB library
//! that a host without these models never uses.

use ort::environment::Environment;
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
