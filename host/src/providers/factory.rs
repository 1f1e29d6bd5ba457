//! Builds the process's providers from the configuration. A provider that cannot be loaded (an
//! offline model not installed) is replaced by one that reports the reason on every use, and the
//! reason is listed by `/readyz`, so the server still starts and says what to do.

use super::cloud::deepgram::{DeepgramSettings, DeepgramStt};
use super::cloud::elevenlabs::{ElevenLabsSettings, ElevenLabsTts};
use super::cloud::openai::{OpenAiLlm, OpenAiSettings};
use super::local::{LocalLlm, LocalModels, LocalStt, LocalTts};
use super::{
    LlmEvent, LlmProvider, LlmRequest, ProviderError, SttEvent, SttParams, SttProvider, SttStream,
    TtsEvent, TtsParams, TtsProvider, TtsStream,
};
use crate::config::{Config, ProviderChoice};
use crate::session::Providers;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The providers and the reasons any of them is unavailable.
pub struct Built {
    pub providers: Providers,
    pub problems: Vec<String>,
}

/// A provider that could not be loaded: every stream fails at once with the load error.
pub struct Unavailable(pub ProviderError);

impl SttProvider for Unavailable {
    fn name(&self) -> &'static str {
        self.0.provider
    }
    fn open(&self, _params: SttParams) -> SttStream {
        let (input, _) = mpsc::channel(1);
        let (tx, events) = mpsc::channel(1);
        let _ = tx.try_send(SttEvent::Error(self.0.clone()));
        SttStream { input, events }
    }
}

impl LlmProvider for Unavailable {
    fn name(&self) -> &'static str {
        self.0.provider
    }
    fn stream(&self, _request: LlmRequest) -> mpsc::Receiver<LlmEvent> {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(LlmEvent::Error(self.0.clone()));
        rx
    }
}

impl TtsProvider for Unavailable {
    fn name(&self) -> &'static str {
        self.0.provider
    }
    fn open(&self, _params: TtsParams) -> TtsStream {
        let (input, _) = mpsc::channel(1);
        let (tx, events) = mpsc::channel(1);
        let _ = tx.try_send(TtsEvent::Error(self.0.clone()));
        TtsStream { input, events }
    }
}

/// The one HTTP client of the process (connection reuse across sessions).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

/// Build the configured providers.
pub fn build(cfg: &Config) -> Built {
    let http = http_client();
    let models = LocalModels::new(
        cfg.models_dir
            .clone()
            .unwrap_or_else(LocalModels::default_dir),
    )
    .with_llm(cfg.local_llm_model);
    let mut problems = Vec::new();
    let mut note = |role: &str, e: &ProviderError| {
        problems.push(format!("{role}: {}", e.message));
    };

    let stt: Arc<dyn SttProvider> = match cfg.stt {
        ProviderChoice::Cloud => Arc::new(DeepgramStt::new(DeepgramSettings {
            url: cfg.deepgram_url.clone(),
            api_key: cfg.deepgram_api_key.clone(),
            model: cfg.deepgram_model.clone(),
            language: cfg.stt_language.clone(),
            ..Default::default()
        })),
        ProviderChoice::Local => match LocalStt::load(&models) {
            Ok(p) => p,
            Err(e) => {
                note("stt", &e);
                Arc::new(Unavailable(e))
            }
        },
    };
    let llm: Arc<dyn LlmProvider> = match cfg.llm {
        ProviderChoice::Cloud => Arc::new(OpenAiLlm::new(
            OpenAiSettings {
                base_url: cfg.openai_base_url.clone(),
                api_key: cfg.openai_api_key.clone(),
                model: cfg.llm_model.clone(),
                temperature: Some(cfg.llm_temperature),
                max_tokens: Some(cfg.llm_max_tokens),
                ..Default::default()
            },
            http.clone(),
        )),
        ProviderChoice::Local => match LocalLlm::load(&models) {
            Ok(p) => p,
            Err(e) => {
                note("llm", &e);
                Arc::new(Unavailable(e))
            }
        },
    };
    let tts: Arc<dyn TtsProvider> = match cfg.tts {
        ProviderChoice::Cloud => Arc::new(ElevenLabsTts::new(
            ElevenLabsSettings {
                url: cfg.elevenlabs_url.clone(),
                api_key: cfg.elevenlabs_api_key.clone(),
                voice_id: cfg.voice_id.clone(),
                model_id: cfg.elevenlabs_model_id.clone(),
                transport: cfg.elevenlabs_transport,
                ..Default::default()
            },
            http,
        )),
        ProviderChoice::Local => match LocalTts::load() {
            Ok(p) => p,
            Err(e) => {
                note("tts", &e);
                Arc::new(Unavailable(e))
            }
        },
    };
    Built {
        providers: Providers { stt, llm, tts },
        problems,
    }
}
