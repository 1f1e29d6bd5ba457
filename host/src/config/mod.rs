//! Host configuration: environment over an optional TOML file, validated at start. Invalid values
//! stop the process before it binds the port, with one line naming the variable and the problem.

mod describe;
mod plaintext;
mod reader;
pub mod redact;
pub mod resume;
pub mod security;
pub mod source;
pub mod telemetry;
pub mod vars;

use reader::{validate_origin, Reader};
use source::{err, ConfigError, RawSettings};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Which implementation serves a provider role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderChoice {
    Cloud,
    Local,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// An agent profile: what the agent says and how.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentProfile {
    pub system_prompt: String,
    pub greeting: Option<String>,
    pub model: Option<String>,
    pub voice: Option<String>,
}

/// A plug-in slot's configuration: `None` path = built-in behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotConfig {
    pub path: Option<PathBuf>,
    pub config: Vec<(String, String)>,
    /// Shadow version (`<SLOT>_PLUGIN_SHADOW`).
    pub shadow: Option<PathBuf>,
    /// Canary version (`<SLOT>_PLUGIN_CANARY`) and its share of new sessions
    /// (`<SLOT>_PLUGIN_CANARY_PERCENT`).
    pub canary: Option<PathBuf>,
    pub canary_percent: u8,
}

/// The validated configuration. Its `Debug` shows the settings with keys redacted (see
/// `redact.rs`).
#[derive(Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub allowed_origins: Vec<String>,
    pub max_sessions: usize,
    pub drain_timeout_ms: u64,
    pub log_format: LogFormat,
    pub admin_token: Option<String>,

    pub stt: ProviderChoice,
    pub llm: ProviderChoice,
    pub tts: ProviderChoice,
    pub deepgram_url: String,
    pub deepgram_api_key: Option<String>,
    pub deepgram_model: String,
    pub stt_language: String,
    pub openai_base_url: String,
    pub openai_api_key: Option<String>,
    pub llm_model: String,
    pub llm_temperature: f32,
    pub llm_max_tokens: u32,
    pub elevenlabs_url: String,
    pub elevenlabs_api_key: Option<String>,
    pub voice_id: String,
    pub elevenlabs_model_id: String,
    /// How ElevenLabs carries the speech (`ELEVENLABS_TRANSPORT`).
    pub elevenlabs_transport: crate::providers::cloud::elevenlabs::TtsTransport,
    pub models_dir: Option<PathBuf>,
    /// Which offline LLM answers (`LOCAL_LLM_MODEL`).
    pub local_llm_model: crate::providers::local::LlmModel,

    pub stt_silence_timeout_ms: u64,
    pub stt_finalize_wait_ms: u64,
    pub llm_stall_timeout_ms: u64,
    pub tts_stall_timeout_ms: u64,
    pub tts_min_duration_ms: u64,
    pub tts_barge_threshold_words: u32,
    pub tts_protected_phrases: bool,
    pub protected_patterns: Vec<String>,
    pub pause_timeout_ms: u64,
    pub audio_lead_ms: u64,
    /// Which voice activity detector runs (`VAD_ENGINE`).
    pub vad_engine: VadEngineChoice,
    pub vad_aggressiveness: u8,
    pub vad_start_frames: u32,
    pub vad_hangover_ms: u32,
    pub memory_turns: usize,
    pub memory_chars: usize,

    pub agent: AgentProfile,
    pub agents: BTreeMap<String, AgentProfile>,

    pub intent_plugin: SlotConfig,
    pub prompt_plugin: SlotConfig,
    pub barge_in_plugin: SlotConfig,
    /// End-of-turn policy slot (`TURN_PLUGIN`, default none: the silence rules).
    pub turn_plugin: SlotConfig,
    /// Silence within speech after which the end-of-turn policy is asked (`TURN_PAUSE_MS`).
    pub turn_pause_ms: u32,
    /// End-of-turn model for the turn plug-in (`TURN_MODEL`).
    pub turn_model: TurnModelChoice,
    /// Text end-of-turn model for the turn plug-in (`TURN_WORDS_MODEL`).
    pub turn_words_model: TurnWordsChoice,
    /// Threads the end-of-turn model (Smart Turn) runs on, each with its own copy
    /// (`TURN_MODEL_THREADS`).
    pub turn_model_threads: usize,
    /// Threads the text end-of-turn model reads on, each with its own cache
    /// (`TURN_WORDS_THREADS`).
    pub turn_words_threads: usize,
    /// Start the reply on a final transcript before the turn is committed
    /// (`PREEMPTIVE_GENERATION`, default on).
    pub preemptive_generation: bool,
    pub plugin_memory_mb: u64,
    pub plugin_deadline_ms: u64,
    pub plugin_session_fault_limit: u32,
    pub plugin_quarantine_sessions: u32,
    pub plugin_fault_window_ms: u64,
    pub plugin_quarantine_backoff_ms: u64,
    pub plugin_watch: bool,
    /// Sessions a slot's shadow version shadows at once (`PLUGIN_SHADOW_MAX_SESSIONS`).
    pub plugin_shadow_max_sessions: u32,
    /// Canary rollback: fault-rate points over the live version, and calls before judging.
    pub plugin_canary_margin_pct: f64,
    pub plugin_canary_min_calls: u64,
    /// Directory recording every plug-in call (`PLUGIN_RECORD`); `None`: no recording.
    pub plugin_record: Option<PathBuf>,
    pub plugin_record_text: bool,
    pub plugin_record_max_mb: u64,
    pub plugin_record_files: u32,
    /// Seconds between checks of an `oci://` tag serving a slot (`PLUGIN_POLL_S`).
    pub plugin_poll_s: u64,
    /// Registries reached over plain HTTP (`PLUGIN_OCI_INSECURE`, `host:port` list).
    pub plugin_oci_insecure: Vec<String>,
    /// Registry credentials (`PLUGIN_OCI_USERNAME`, `PLUGIN_OCI_PASSWORD`).
    pub plugin_oci_username: Option<String>,
    pub plugin_oci_password: Option<String>,

    /// Admission and per-client limits (see `docs/security.md`).
    pub security: security::SecurityConfig,
    /// Session resume (`RESUME_TTL_S`, `REDIS_URL`).
    pub resume: resume::ResumeConfig,
    /// OpenTelemetry traces (`OTEL_*`).
    pub telemetry: telemetry::TelemetryConfig,
}

/// The system prompt when none is configured.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful voice assistant. Answer in one to three \
short spoken sentences, without lists, markdown or emoji. When you read back a number or a code the \
user must note, wrap that sentence in <protect> and </protect>.";

/// Most rotated recording files (`PLUGIN_RECORD_FILES`).
pub const MAX_RECORD_FILES: u32 = 100;

/// Most audio (ms) that may be sent ahead of real time (`AUDIO_LEAD_MS`).
pub const MAX_AUDIO_LEAD_MS: u64 = 1000;

/// Sentences protected from barge-in unless configured otherwise.
pub const DEFAULT_PROTECTED_PATTERNS: &[&str] = &[
    r"(?i)\b(confirmation|reference|booking|order) (number|code)\b",
    r"(?i)\bthis call (may|will) be recorded\b",
    r"(?i)\bterms and conditions\b",
];

/// Which voice activity detector sessions run (`VAD_ENGINE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VadEngineChoice {
    /// webrtc-vad: no model, about 2 us of CPU per 20 ms frame.
    #[default]
    WebRtc,
    /// Silero VAD v5; the host refuses to start when it or ONNX Runtime is not installed.
    Silero,
}

impl VadEngineChoice {
    /// The value as written in `VAD_ENGINE`.
    pub fn name(self) -> &'static str {
        match self {
            VadEngineChoice::WebRtc => "webrtc",
            VadEngineChoice::Silero => "silero",
        }
    }
}

/// Which end-of-turn model gives the turn plug-in its probability (`TURN_MODEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnModelChoice {
    /// Smart Turn when a turn plug-in is configured and the model is installed; else none.
    Auto,
    /// Smart Turn; the host refuses to start when it is not installed.
    SmartTurn,
    /// No model: plug-ins see no probability.
    None,
}

/// Which text end-of-turn model gives the turn plug-in its words probability
/// (`TURN_WORDS_MODEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnWordsChoice {
    /// SmolLM2 when a turn plug-in is configured, the model is installed and the LLM is a cloud
    /// one (the offline LLM shares the CPU with it); else none.
    Auto,
    /// SmolLM2; the host refuses to start when it is not installed.
    SmolLm2,
    /// No text model: plug-ins see no words probability.
    None,
}

impl TurnWordsChoice {
    /// The value as written in `TURN_WORDS_MODEL`.
    pub fn name(self) -> &'static str {
        match self {
            TurnWordsChoice::Auto => "auto",
            TurnWordsChoice::SmolLm2 => "smollm2",
            TurnWordsChoice::None => "none",
        }
    }
}

impl TurnModelChoice {
    /// The value as written in `TURN_MODEL`.
    pub fn name(self) -> &'static str {
        match self {
            TurnModelChoice::Auto => "auto",
            TurnModelChoice::SmartTurn => "smart-turn",
            TurnModelChoice::None => "none",
        }
    }
}

/// Whether the host loads an end-of-turn model at start ([`Config::turn_model_wanted`],
/// [`Config::words_model_wanted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelWanted {
    /// Not loaded; why, for the log (`None`: nothing worth saying, e.g. no turn plug-in).
    No(Option<&'static str>),
    /// Loaded when installed; the host starts without it otherwise.
    IfInstalled,
    /// Loaded, or the host refuses to start.
    Required,
}

impl Config {
    /// Whether Smart Turn is loaded: only when a turn plug-in will ask (`asked`) under `auto`.
    pub fn turn_model_wanted(&self, asked: bool) -> ModelWanted {
        match self.turn_model {
            TurnModelChoice::None => ModelWanted::No(None),
            TurnModelChoice::Auto if !asked => ModelWanted::No(None),
            TurnModelChoice::Auto => ModelWanted::IfInstalled,
            TurnModelChoice::SmartTurn => ModelWanted::Required,
        }
    }

    /// Whether the text end-of-turn model is loaded: as [`Self::turn_model_wanted`], and under
    /// `auto` not beside the offline LLM, whose first token its reads delay by ~400 ms on 2
    /// cores (docs/benchmarks.md).
    pub fn words_model_wanted(&self, asked: bool) -> ModelWanted {
        match self.turn_words_model {
            TurnWordsChoice::None => ModelWanted::No(None),
            TurnWordsChoice::Auto if !asked => ModelWanted::No(None),
            TurnWordsChoice::Auto if self.llm == ProviderChoice::Local => ModelWanted::No(Some(
                "no text end-of-turn model with the offline LLM (TURN_WORDS_MODEL=smollm2 runs it)",
            )),
            TurnWordsChoice::Auto => ModelWanted::IfInstalled,
            TurnWordsChoice::SmolLm2 => ModelWanted::Required,
        }
    }

    /// Where the offline models are (`MODELS_DIR`, or the default directory).
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(crate::providers::local::LocalModels::default_dir)
    }

    /// Load from the process environment over an optional file.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut raw = match file {
            Some(p) => RawSettings::from_file(p)?,
            None => RawSettings::default(),
        };
        raw.overlay_env(std::env::vars(), &vars::names());
        Self::from_raw(&raw)
    }

    /// The VAD settings of a session's gate: pauses inside speech are reported (at
    /// `TURN_PAUSE_MS`) only when an end-of-turn policy judges them (`turn_policy`); without
    /// one the gate reports none, so the session runs on the silence rules alone.
    pub fn vad_config(&self, turn_policy: bool) -> crate::audio::VadConfig {
        crate::audio::VadConfig {
            aggressiveness: self.vad_aggressiveness,
            start_frames: self.vad_start_frames,
            hangover_ms: self.vad_hangover_ms,
            pause_ms: if turn_policy { self.turn_pause_ms } else { 0 },
            onsets: true,
        }
    }

    /// Validate raw settings.
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let r = Reader { raw };
        let bind: IpAddr = r
            .str_or("BIND", "0.0.0.0")
            .parse()
            .map_err(|_| err("BIND", "expected an IP address"))?;
        let port: u16 = r.num("PORT", 4010)?;
        let allowed_origins = r
            .opt("ALLOWED_ORIGINS")
            .map(|s| {
                s.split(',')
                    .filter(|o| !o.trim().is_empty())
                    .map(validate_origin)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|p| err("ALLOWED_ORIGINS", p))?
            .unwrap_or_default();
        let max_sessions: usize = r.num("MAX_SESSIONS", 1000)?;
        if max_sessions == 0 {
            return Err(err("MAX_SESSIONS", "must be at least 1"));
        }
        let log_format = match r.str_or("LOG_FORMAT", "text").to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(err(
                    "LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ))
            }
        };

        let deepgram_api_key = r.key("DEEPGRAM_API_KEY", |k| {
            if k.starts_with("sk-") || k.starts_with("sk_") {
                Err(
                    "looks like an OpenAI or ElevenLabs key (Deepgram keys have no sk prefix)"
                        .into(),
                )
            } else {
                Ok(())
            }
        })?;
        let openai_base_url = r.url(
            "OPENAI_BASE_URL",
            "https://api.openai.com/v1",
            &["http", "https"],
        )?;
        let official_openai = openai_base_url.contains("api.openai.com");
        let openai_api_key = r.key("OPENAI_API_KEY", |k| {
            if official_openai && !k.starts_with("sk-") {
                Err("OpenAI keys start with \"sk-\"".into())
            } else {
                Ok(())
            }
        })?;
        let elevenlabs_api_key = r.key("ELEVENLABS_API_KEY", |k| {
            if k.starts_with("sk-") {
                Err("looks like an OpenAI key (ElevenLabs keys start with \"sk_\")".into())
            } else {
                Ok(())
            }
        })?;
        let openai_configured = openai_api_key.is_some() || r.opt("OPENAI_BASE_URL").is_some();

        let transport = r
            .str_or("ELEVENLABS_TRANSPORT", "websocket")
            .to_ascii_lowercase();
        let elevenlabs_transport = match transport.as_str() {
            "websocket" | "ws" | "multi-stream-input" => {
                crate::providers::cloud::elevenlabs::TtsTransport::MultiContext
            }
            "stream-input" => crate::providers::cloud::elevenlabs::TtsTransport::WebSocket,
            "http" => crate::providers::cloud::elevenlabs::TtsTransport::Http,
            other => {
                return Err(err(
                    "ELEVENLABS_TRANSPORT",
                    format!("expected websocket, stream-input or http, got {other:?}"),
                ))
            }
        };

        let protected_patterns: Vec<String> = match (
            raw.lists.get("PROTECTED_PATTERNS"),
            r.opt("PROTECTED_PATTERNS"),
        ) {
            (Some(list), _) => list.clone(),
            (None, Some(s)) => s
                .split(";;")
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            (None, None) => DEFAULT_PROTECTED_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        for p in &protected_patterns {
            regex::Regex::new(p)
                .map_err(|e| err("PROTECTED_PATTERNS", format!("invalid regex {p:?}: {e}")))?;
        }

        let vad_aggressiveness: u8 = r.num("VAD_AGGRESSIVENESS", 2)?;
        if vad_aggressiveness > 3 {
            return Err(err("VAD_AGGRESSIVENESS", "must be 0, 1, 2 or 3"));
        }

        let profile =
            |table: Option<&BTreeMap<String, String>>, base: &AgentProfile| AgentProfile {
                system_prompt: table
                    .and_then(|t| t.get("system_prompt").cloned())
                    .unwrap_or_else(|| base.system_prompt.clone()),
                greeting: table
                    .and_then(|t| t.get("greeting").cloned())
                    .or_else(|| base.greeting.clone())
                    .filter(|g| !g.is_empty()),
                model: table
                    .and_then(|t| t.get("model").cloned())
                    .or_else(|| base.model.clone()),
                voice: table
                    .and_then(|t| t.get("voice").cloned())
                    .or_else(|| base.voice.clone()),
            };
        let env_agent = AgentProfile {
            system_prompt: r.str_or("SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
            greeting: r.opt("GREETING"),
            model: None,
            voice: None,
        };
        let mut agent = profile(raw.agents.get(""), &env_agent);
        // The environment overrides the file.
        if let Some(p) = r.opt("SYSTEM_PROMPT") {
            agent.system_prompt = p;
        }
        if let Some(g) = r.opt("GREETING") {
            agent.greeting = Some(g);
        }
        let agents = raw
            .agents
            .iter()
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, t)| (name.clone(), profile(Some(t), &agent)))
            .collect();

        let plugin_dir = r.str_or("PLUGIN_DIR", "plugins/dist");
        let config = Config {
            bind,
            port,
            allowed_origins,
            max_sessions,
            drain_timeout_ms: r.num("DRAIN_TIMEOUT_MS", 10_000)?,
            log_format,
            admin_token: r.key("ADMIN_TOKEN", |k| {
                if k.chars().count() < security::MIN_SECRET_CHARS {
                    Err(format!(
                        "must be at least {} characters",
                        security::MIN_SECRET_CHARS
                    ))
                } else {
                    Ok(())
                }
            })?,
            stt: r.provider("STT_PROVIDER", "deepgram", deepgram_api_key.is_some())?,
            llm: r.provider("LLM_PROVIDER", "openai", openai_configured)?,
            tts: r.provider("TTS_PROVIDER", "elevenlabs", elevenlabs_api_key.is_some())?,
            deepgram_url: r.url("DEEPGRAM_URL", "wss://api.deepgram.com", &["ws", "wss"])?,
            deepgram_api_key,
            deepgram_model: r.str_or("DEEPGRAM_MODEL", "nova-3"),
            stt_language: r.str_or("STT_LANGUAGE", "en"),
            openai_base_url,
            openai_api_key,
            llm_model: r.str_or("LLM_MODEL", "gpt-4o-mini"),
            llm_temperature: r.float("LLM_TEMPERATURE", 0.7, (0.0, 2.0))?,
            llm_max_tokens: match r.num("LLM_MAX_TOKENS", 300)? {
                // Sent as `max_tokens`, which the API refuses below 1.
                0 => return Err(err("LLM_MAX_TOKENS", "must be at least 1")),
                n => n,
            },
            elevenlabs_url: r.url(
                "ELEVENLABS_URL",
                "https://api.elevenlabs.io",
                &["http", "https"],
            )?,
            elevenlabs_api_key,
            voice_id: r.str_or("VOICE_ID", "21m00Tcm4TlvDq8ikWAM"),
            elevenlabs_model_id: r.str_or("ELEVENLABS_MODEL_ID", "eleven_flash_v2_5"),
            elevenlabs_transport,
            models_dir: r.opt("MODELS_DIR").map(PathBuf::from),
            local_llm_model: match r.opt("LOCAL_LLM_MODEL") {
                None => crate::providers::local::LlmModel::default(),
                Some(name) => crate::providers::local::LlmModel::parse(&name).ok_or_else(|| {
                    err("LOCAL_LLM_MODEL", "expected smollm2-135m or gemma3-270m")
                })?,
            },
            stt_silence_timeout_ms: r.num("STT_SILENCE_TIMEOUT_MS", 2500)?,
            stt_finalize_wait_ms: r.num("STT_FINALIZE_WAIT_MS", 300)?,
            llm_stall_timeout_ms: r.num("LLM_STALL_TIMEOUT_MS", 10_000)?,
            tts_stall_timeout_ms: r.num("TTS_STALL_TIMEOUT_MS", 10_000)?,
            tts_min_duration_ms: r.num("TTS_MIN_DURATION_MS", 3000)?,
            tts_barge_threshold_words: r.num("TTS_BARGE_THRESHOLD_WORDS", 5)?,
            tts_protected_phrases: r.boolean("TTS_PROTECTED_PHRASES", true)?,
            protected_patterns,
            pause_timeout_ms: r.num("BARGE_IN_PAUSE_TIMEOUT_MS", 2000)?,
            audio_lead_ms: match r.num("AUDIO_LEAD_MS", 200)? {
                // Audio sent ahead is audio a barge-in cannot take back from a client that does
                // not flush, and the send queue holds at most a second of it.
                n if n > MAX_AUDIO_LEAD_MS => {
                    return Err(err(
                        "AUDIO_LEAD_MS",
                        format!("must be at most {MAX_AUDIO_LEAD_MS}"),
                    ))
                }
                n => n,
            },
            vad_engine: match r.opt("VAD_ENGINE").as_deref() {
                None | Some("webrtc") => VadEngineChoice::WebRtc,
                Some("silero") => VadEngineChoice::Silero,
                Some(other) => {
                    return Err(err(
                        "VAD_ENGINE",
                        format!("unknown engine {other:?} (webrtc or silero)"),
                    ))
                }
            },
            vad_aggressiveness,
            vad_start_frames: r.num("VAD_START_FRAMES", 3)?,
            vad_hangover_ms: r.num("VAD_HANGOVER_MS", 600)?,
            memory_turns: r.num("MEMORY_TURNS", 20)?,
            memory_chars: r.num("MEMORY_CHARS", 8000)?,
            agent,
            agents,
            intent_plugin: r.slot(
                "INTENT_PLUGIN",
                "intent",
                &plugin_dir,
                Some("intent_keywords.wasm"),
            )?,
            prompt_plugin: r.slot(
                "PROMPT_PLUGIN",
                "prompt",
                &plugin_dir,
                Some("prompt_persona.wasm"),
            )?,
            barge_in_plugin: r.slot(
                "BARGE_IN_PLUGIN",
                "barge_in",
                &plugin_dir,
                Some("barge_in_smart.wasm"),
            )?,
            // No default: without a plug-in, turns end by the silence rules as they always did.
            turn_plugin: r.slot("TURN_PLUGIN", "turn", &plugin_dir, None)?,
            turn_model: match r.opt("TURN_MODEL").as_deref() {
                None | Some("auto") => TurnModelChoice::Auto,
                Some("smart-turn") => TurnModelChoice::SmartTurn,
                Some("none") => TurnModelChoice::None,
                Some(other) => {
                    return Err(err(
                        "TURN_MODEL",
                        format!("unknown model {other:?} (auto, smart-turn or none)"),
                    ))
                }
            },
            turn_words_model: match r.opt("TURN_WORDS_MODEL").as_deref() {
                None | Some("auto") => TurnWordsChoice::Auto,
                Some("smollm2") => TurnWordsChoice::SmolLm2,
                Some("none") => TurnWordsChoice::None,
                Some(other) => {
                    return Err(err(
                        "TURN_WORDS_MODEL",
                        format!("unknown model {other:?} (auto, smollm2 or none)"),
                    ))
                }
            },
            turn_model_threads: match r.num("TURN_MODEL_THREADS", 1)? {
                n if (1..=crate::turn::MAX_THREADS).contains(&n) => n,
                _ => {
                    return Err(err(
                        "TURN_MODEL_THREADS",
                        format!("must be 1..={}", crate::turn::MAX_THREADS),
                    ))
                }
            },
            turn_words_threads: match r.num("TURN_WORDS_THREADS", 1)? {
                n if (1..=crate::turn::words::MAX_THREADS).contains(&n) => n,
                _ => {
                    return Err(err(
                        "TURN_WORDS_THREADS",
                        format!("must be 1..={}", crate::turn::words::MAX_THREADS),
                    ))
                }
            },
            preemptive_generation: r.boolean("PREEMPTIVE_GENERATION", true)?,
            turn_pause_ms: match r.num("TURN_PAUSE_MS", 200)? {
                n if (60..=2000).contains(&n) => n,
                _ => return Err(err("TURN_PAUSE_MS", "must be 60..=2000")),
            },
            plugin_memory_mb: r.num("PLUGIN_MEMORY_MB", 16)?,
            plugin_deadline_ms: r.num("PLUGIN_DEADLINE_MS", 5)?,
            plugin_session_fault_limit: r.num("PLUGIN_SESSION_FAULT_LIMIT", 5)?,
            plugin_quarantine_sessions: r.num("PLUGIN_QUARANTINE_SESSIONS", 3)?,
            plugin_fault_window_ms: r.num("PLUGIN_FAULT_WINDOW_MS", 60_000)?,
            plugin_quarantine_backoff_ms: r.num("PLUGIN_QUARANTINE_BACKOFF_MS", 30_000)?,
            plugin_watch: r.boolean("PLUGIN_WATCH", true)?,
            plugin_shadow_max_sessions: r.num("PLUGIN_SHADOW_MAX_SESSIONS", 64)?,
            plugin_canary_margin_pct: match r.num("PLUGIN_CANARY_MARGIN_PCT", 5.0f64)? {
                n if (0.0..=100.0).contains(&n) => n,
                _ => return Err(err("PLUGIN_CANARY_MARGIN_PCT", "must be 0..=100")),
            },
            plugin_canary_min_calls: r.num("PLUGIN_CANARY_MIN_CALLS", 20)?,
            plugin_record: r.opt("PLUGIN_RECORD").map(PathBuf::from),
            plugin_record_text: r.boolean("PLUGIN_RECORD_TEXT", true)?,
            plugin_poll_s: match r.num("PLUGIN_POLL_S", 30)? {
                0 => return Err(err("PLUGIN_POLL_S", "must be at least 1")),
                n => n,
            },
            plugin_oci_insecure: r
                .opt("PLUGIN_OCI_INSECURE")
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            plugin_oci_username: r.opt("PLUGIN_OCI_USERNAME"),
            plugin_oci_password: match (r.opt("PLUGIN_OCI_USERNAME"), r.opt("PLUGIN_OCI_PASSWORD"))
            {
                (None, Some(_)) => {
                    return Err(err(
                        "PLUGIN_OCI_PASSWORD",
                        "set PLUGIN_OCI_USERNAME with it",
                    ))
                }
                (Some(_), None) => {
                    return Err(err(
                        "PLUGIN_OCI_USERNAME",
                        "set PLUGIN_OCI_PASSWORD with it",
                    ))
                }
                (_, password) => password,
            },
            plugin_record_max_mb: match r.num("PLUGIN_RECORD_MAX_MB", 64)? {
                0 => return Err(err("PLUGIN_RECORD_MAX_MB", "must be at least 1")),
                n => n,
            },
            plugin_record_files: match r.num("PLUGIN_RECORD_FILES", 3)? {
                n if n > MAX_RECORD_FILES => {
                    return Err(err(
                        "PLUGIN_RECORD_FILES",
                        format!("must be at most {MAX_RECORD_FILES}"),
                    ))
                }
                n => n,
            },
            security: security::SecurityConfig::read(&r)?,
            resume: resume::ResumeConfig::read(&r)?,
            telemetry: telemetry::TelemetryConfig::read(&r)?,
        };
        plaintext::check(&config)?;
        Ok(config)
    }

    /// The agent profile a session asked for (`None`: the default one).
    pub fn agent_profile(&self, name: Option<&str>) -> Option<&AgentProfile> {
        match name {
            None | Some("") => Some(&self.agent),
            Some(n) => self.agents.get(n),
        }
    }

    /// The secrets in this configuration, for scrubbing text.
    pub fn secrets(&self) -> Vec<&str> {
        [
            &self.deepgram_api_key,
            &self.openai_api_key,
            &self.elevenlabs_api_key,
            &self.admin_token,
            &self.plugin_oci_password,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(self.security.secrets())
        .chain(self.resume.secrets())
        .collect()
    }
}

#[cfg(test)]
mod tests;
