//! Embedded offline providers: local speech-to-text (Whisper tiny.en via candle), LLM
//! (Gemma 3 270M via llama.cpp) and text-to-speech (espeak-ng), so the host talks with no keys
//! and no network.
//!
//! Models load once per process and are shared by all sessions; inference runs on dedicated
//! threads fed by bounded queues ([`worker`]), never on the async runtime. Each heavy native
//! dependency sits behind a cargo feature (`local-stt`, `local-llm`, `local-tts`; `local` for
//! all three). With a feature off, or a model or library missing, `load` answers
//! [`ProviderErrorKind::NotInstalled`] with the command that fixes it.

// Feature-independent parts stay compiled (and unit-tested) in every build; what only a
// disabled engine would use is allowed to be unused there.
mod annotations;
#[cfg_attr(not(feature = "local-llm"), allow(dead_code))]
mod cpu_load;
#[cfg_attr(not(feature = "local-stt"), allow(dead_code))]
mod ct2;
#[cfg(feature = "local-tts")]
mod espeak;
mod install;
// Shared with the text end-of-turn model (`crate::turn::words`).
#[cfg_attr(not(feature = "local-llm"), allow(dead_code))]
pub(crate) mod kv_prefix;
#[cfg_attr(not(feature = "local-llm"), allow(dead_code))]
mod llm;
// The filterbank is shared with the end-of-turn model's features (`crate::turn`).
#[cfg_attr(not(feature = "local-stt"), allow(dead_code))]
pub(crate) mod mel;
pub(crate) mod models;
mod prompt;
mod segment;
mod stt;
#[cfg_attr(not(feature = "local-tts"), allow(dead_code))]
mod tts;
#[cfg_attr(not(feature = "local-stt"), allow(dead_code))]
mod vocab;
#[cfg(feature = "local-stt")]
mod whisper;
#[cfg_attr(
    not(any(feature = "local-stt", feature = "local-llm", feature = "local-tts")),
    allow(dead_code)
)]
pub(crate) mod worker;

pub use install::install_models;
#[cfg(feature = "local-llm")]
pub(crate) use llm::llama_backend;
pub use llm::LocalLlm;
pub(crate) use models::missing_message;
pub use models::{LlmModel, LocalModels, INSTALL_COMMAND};
pub use stt::LocalStt;
pub use tts::LocalTts;

/// Building blocks exposed for benchmarks (`host/benches/local.rs`); not a stable API.
#[doc(hidden)]
pub mod bench {
    #[cfg(feature = "local-tts")]
    pub use super::espeak::Espeak;
    pub use super::kv_prefix::HeldTokens;
    pub use super::prompt::{build_prompt, ReplyFilter};
    #[cfg(feature = "local-stt")]
    pub use super::whisper::{EncoderWindow, WhisperModel};
}

use crate::providers::{ProviderError, ProviderErrorKind};
use std::path::Path;

/// A model file is missing: NotInstalled with the install command.
#[cfg_attr(
    not(any(feature = "local-stt", feature = "local-llm")),
    allow(dead_code)
)]
pub(crate) fn not_installed(what: &str, path: &Path, dir: &Path) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::NotInstalled,
        "local",
        models::missing_message(what, path, dir),
    )
}

/// The provider's cargo feature is off in this build.
#[allow(dead_code)] // used only by builds with some `local-*` feature off
pub(crate) fn feature_off(what: &str, feature: &str) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::NotInstalled,
        "local",
        format!(
            "offline {what} is not built in: rebuild with `cargo build --release --features {feature}` \
             after running scripts/install-deps.sh"
        ),
    )
}

/// The installed models for tests that need them: `None` (with a loud notice) when missing,
/// except under `CI=true`, where missing models fail the test.
#[cfg(test)]
pub(crate) fn test_models() -> Option<LocalModels> {
    let dir = std::env::var_os("MODELS_DIR").map_or_else(LocalModels::default_dir, Into::into);
    let models = LocalModels::new(dir);
    let missing = models.check();
    if missing.is_empty() {
        return Some(models);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("offline models missing in CI: {}", missing.join("; "));
    }
    eprintln!("SKIPPED (offline models missing): {}", missing.join("; "));
    None
}

/// `text` spoken by espeak-ng at 16 kHz (test speech).
#[cfg(all(test, feature = "local-tts"))]
pub(crate) fn test_speech(text: &str) -> Vec<i16> {
    let espeak = espeak::Espeak::get().expect("espeak-ng (run scripts/install-deps.sh)");
    let mut native = Vec::new();
    espeak
        .synthesize(text, None, Some(150), &mut |s: &[i16]| {
            native.extend_from_slice(s);
            true
        })
        .expect("synthesis");
    let mut resampler =
        crate::audio::Resampler::new(espeak.sample_rate(), 16_000).expect("resampler");
    let mut out = Vec::new();
    resampler.process(&native, &mut out);
    resampler.flush(&mut out);
    out
}
