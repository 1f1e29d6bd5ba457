//! The effective configuration, printed at start and by `voice-host config`, secrets redacted.

use super::{redact, Config, ProviderChoice, SlotConfig};
use std::path::PathBuf;

impl Config {
    /// The effective configuration as `NAME=value` lines, secrets redacted.
    pub fn describe(&self) -> String {
        let show_key = |k: &Option<String>| {
            k.as_deref()
                .map(redact::redact)
                .unwrap_or_else(|| "(unset)".into())
        };
        let choice = |c: ProviderChoice, cloud: &str| match c {
            ProviderChoice::Cloud => cloud.to_string(),
            ProviderChoice::Local => "local".to_string(),
        };
        let path_or_empty = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or(String::new(), |p| p.display().to_string())
        };
        let slot = |s: &SlotConfig| {
            s.path
                .as_ref()
                .map_or("none".to_string(), |p| p.display().to_string())
        };
        let lines: Vec<(&str, String)> = vec![
            ("BIND", self.bind.to_string()),
            ("PORT", self.port.to_string()),
            ("ALLOWED_ORIGINS", self.allowed_origins.join(",")),
            ("MAX_SESSIONS", self.max_sessions.to_string()),
            ("DRAIN_TIMEOUT_MS", self.drain_timeout_ms.to_string()),
            (
                "LOG_FORMAT",
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            ("ADMIN_TOKEN", show_key(&self.admin_token)),
            ("STT_PROVIDER", choice(self.stt, "deepgram")),
            ("LLM_PROVIDER", choice(self.llm, "openai")),
            ("TTS_PROVIDER", choice(self.tts, "elevenlabs")),
            ("DEEPGRAM_URL", self.deepgram_url.clone()),
            ("DEEPGRAM_API_KEY", show_key(&self.deepgram_api_key)),
            ("DEEPGRAM_MODEL", self.deepgram_model.clone()),
            ("STT_LANGUAGE", self.stt_language.clone()),
            ("OPENAI_BASE_URL", self.openai_base_url.clone()),
            ("OPENAI_API_KEY", show_key(&self.openai_api_key)),
            ("LLM_MODEL", self.llm_model.clone()),
            ("LLM_TEMPERATURE", self.llm_temperature.to_string()),
            ("LLM_MAX_TOKENS", self.llm_max_tokens.to_string()),
            ("ELEVENLABS_URL", self.elevenlabs_url.clone()),
            ("ELEVENLABS_API_KEY", show_key(&self.elevenlabs_api_key)),
            ("VOICE_ID", self.voice_id.clone()),
            ("ELEVENLABS_MODEL_ID", self.elevenlabs_model_id.clone()),
            (
                "ELEVENLABS_TRANSPORT",
                match self.elevenlabs_transport {
                    crate::providers::cloud::elevenlabs::TtsTransport::MultiContext => "websocket",
                    crate::providers::cloud::elevenlabs::TtsTransport::WebSocket => "stream-input",
                    crate::providers::cloud::elevenlabs::TtsTransport::Http => "http",
                }
                .into(),
            ),
            (
                "MODELS_DIR",
                self.models_dir
                    .as_ref()
                    .map_or("(default)".into(), |p| p.display().to_string()),
            ),
            ("LOCAL_LLM_MODEL", self.local_llm_model.name().to_string()),
            (
                "STT_SILENCE_TIMEOUT_MS",
                self.stt_silence_timeout_ms.to_string(),
            ),
            (
                "STT_FINALIZE_WAIT_MS",
                self.stt_finalize_wait_ms.to_string(),
            ),
            (
                "LLM_STALL_TIMEOUT_MS",
                self.llm_stall_timeout_ms.to_string(),
            ),
            (
                "TTS_STALL_TIMEOUT_MS",
                self.tts_stall_timeout_ms.to_string(),
            ),
            ("TTS_MIN_DURATION_MS", self.tts_min_duration_ms.to_string()),
            (
                "TTS_BARGE_THRESHOLD_WORDS",
                self.tts_barge_threshold_words.to_string(),
            ),
            (
                "TTS_PROTECTED_PHRASES",
                self.tts_protected_phrases.to_string(),
            ),
            ("PROTECTED_PATTERNS", self.protected_patterns.join(";;")),
            (
                "BARGE_IN_PAUSE_TIMEOUT_MS",
                self.pause_timeout_ms.to_string(),
            ),
            ("AUDIO_LEAD_MS", self.audio_lead_ms.to_string()),
            ("VAD_ENGINE", self.vad_engine.name().to_string()),
            ("VAD_AGGRESSIVENESS", self.vad_aggressiveness.to_string()),
            ("VAD_START_FRAMES", self.vad_start_frames.to_string()),
            ("VAD_HANGOVER_MS", self.vad_hangover_ms.to_string()),
            ("MEMORY_TURNS", self.memory_turns.to_string()),
            ("MEMORY_CHARS", self.memory_chars.to_string()),
            ("SYSTEM_PROMPT", self.agent.system_prompt.clone()),
            ("GREETING", self.agent.greeting.clone().unwrap_or_default()),
            ("INTENT_PLUGIN", slot(&self.intent_plugin)),
            ("PROMPT_PLUGIN", slot(&self.prompt_plugin)),
            ("BARGE_IN_PLUGIN", slot(&self.barge_in_plugin)),
            ("TURN_PLUGIN", slot(&self.turn_plugin)),
            ("TURN_PAUSE_MS", self.turn_pause_ms.to_string()),
            ("TURN_MODEL", self.turn_model.name().to_string()),
            ("TURN_WORDS_MODEL", self.turn_words_model.name().to_string()),
            ("TURN_MODEL_THREADS", self.turn_model_threads.to_string()),
            ("TURN_WORDS_THREADS", self.turn_words_threads.to_string()),
            (
                "PREEMPTIVE_GENERATION",
                self.preemptive_generation.to_string(),
            ),
            (
                "INTENT_PLUGIN_SHADOW",
                path_or_empty(&self.intent_plugin.shadow),
            ),
            (
                "INTENT_PLUGIN_CANARY",
                path_or_empty(&self.intent_plugin.canary),
            ),
            (
                "INTENT_PLUGIN_CANARY_PERCENT",
                self.intent_plugin.canary_percent.to_string(),
            ),
            (
                "PROMPT_PLUGIN_SHADOW",
                path_or_empty(&self.prompt_plugin.shadow),
            ),
            (
                "PROMPT_PLUGIN_CANARY",
                path_or_empty(&self.prompt_plugin.canary),
            ),
            (
                "PROMPT_PLUGIN_CANARY_PERCENT",
                self.prompt_plugin.canary_percent.to_string(),
            ),
            (
                "BARGE_IN_PLUGIN_SHADOW",
                path_or_empty(&self.barge_in_plugin.shadow),
            ),
            (
                "BARGE_IN_PLUGIN_CANARY",
                path_or_empty(&self.barge_in_plugin.canary),
            ),
            (
                "BARGE_IN_PLUGIN_CANARY_PERCENT",
                self.barge_in_plugin.canary_percent.to_string(),
            ),
            (
                "TURN_PLUGIN_SHADOW",
                path_or_empty(&self.turn_plugin.shadow),
            ),
            (
                "TURN_PLUGIN_CANARY",
                path_or_empty(&self.turn_plugin.canary),
            ),
            (
                "TURN_PLUGIN_CANARY_PERCENT",
                self.turn_plugin.canary_percent.to_string(),
            ),
            ("PLUGIN_MEMORY_MB", self.plugin_memory_mb.to_string()),
            ("PLUGIN_DEADLINE_MS", self.plugin_deadline_ms.to_string()),
            (
                "PLUGIN_SESSION_FAULT_LIMIT",
                self.plugin_session_fault_limit.to_string(),
            ),
            (
                "PLUGIN_QUARANTINE_SESSIONS",
                self.plugin_quarantine_sessions.to_string(),
            ),
            (
                "PLUGIN_FAULT_WINDOW_MS",
                self.plugin_fault_window_ms.to_string(),
            ),
            (
                "PLUGIN_QUARANTINE_BACKOFF_MS",
                self.plugin_quarantine_backoff_ms.to_string(),
            ),
            ("PLUGIN_WATCH", self.plugin_watch.to_string()),
            (
                "PLUGIN_SHADOW_MAX_SESSIONS",
                self.plugin_shadow_max_sessions.to_string(),
            ),
            (
                "PLUGIN_CANARY_MARGIN_PCT",
                self.plugin_canary_margin_pct.to_string(),
            ),
            (
                "PLUGIN_CANARY_MIN_CALLS",
                self.plugin_canary_min_calls.to_string(),
            ),
            (
                "PLUGIN_RECORD",
                self.plugin_record
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
            ),
            ("PLUGIN_RECORD_TEXT", self.plugin_record_text.to_string()),
            (
                "PLUGIN_RECORD_MAX_MB",
                self.plugin_record_max_mb.to_string(),
            ),
            ("PLUGIN_RECORD_FILES", self.plugin_record_files.to_string()),
            ("PLUGIN_POLL_S", self.plugin_poll_s.to_string()),
            ("PLUGIN_OCI_INSECURE", self.plugin_oci_insecure.join(",")),
            (
                "PLUGIN_OCI_USERNAME",
                self.plugin_oci_username.clone().unwrap_or_default(),
            ),
            ("PLUGIN_OCI_PASSWORD", show_key(&self.plugin_oci_password)),
        ];
        let lines = lines
            .into_iter()
            .chain(self.security.describe())
            .chain(self.resume.describe())
            .chain(self.telemetry.describe());
        let mut s: String = lines.map(|(k, v)| format!("{k}={v}\n")).collect();
        for name in self.agents.keys() {
            s.push_str(&format!("agent profile: {name}\n"));
        }
        s
    }
}
