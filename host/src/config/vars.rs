//! Every setting the host reads, with its default and meaning. This table drives `--help`,
//! `voice-host config` and the README's configuration table.

/// One configuration variable.
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    pub secret: bool,
}

const fn v(name: &'static str, default: &'static str, help: &'static str) -> Var {
    Var {
        name,
        default,
        help,
        secret: false,
    }
}

const fn secret(name: &'static str, help: &'static str) -> Var {
    Var {
        name,
        default: "",
        help,
        secret: true,
    }
}

pub const VARS: &[Var] = &[
    v("BIND", "0.0.0.0", "address to listen on"),
    v("PORT", "4010", "TCP port to listen on"),
    v(
        "ALLOWED_ORIGINS",
        "",
        "comma-separated origins allowed to open /agent (empty: any)",
    ),
    v(
        "MAX_SESSIONS",
        "1000",
        "concurrent sessions; past it /agent answers 503 with Retry-After",
    ),
    v(
        "DRAIN_TIMEOUT_MS",
        "10000",
        "on SIGTERM/SIGINT, how long turns in flight may finish",
    ),
    v("LOG_FORMAT", "text", "text or json"),
    secret(
        "ADMIN_TOKEN",
        "bearer token for /admin endpoints, at least 32 characters (unset: admin endpoints disabled)",
    ),
    v(
        "ADMIN_BIND",
        "",
        "serve the /admin endpoints on this ADDRESS:PORT only (empty: on the main port)",
    ),
    secret(
        "AUTH_SECRET",
        "HS256 key (at least 32 characters) of session tokens; set: /agent and /twilio need a token",
    ),
    v(
        "AUTH_PUBLIC_KEY",
        "",
        "RS256/ES256 public key (PEM text or file) of session tokens minted elsewhere",
    ),
    secret(
        "TWILIO_AUTH_TOKEN",
        "Twilio auth token; set: /twilio/voice checks X-Twilio-Signature and streams need its token",
    ),
    v(
        "PUBLIC_URL",
        "",
        "public base URL (https://host) Twilio signs; empty: from Host (X-Forwarded-* from TRUSTED_PROXIES)",
    ),
    v(
        "RESUME_TTL_S",
        "120",
        "how long a dropped session can be resumed with its resume token (0: off)",
    ),
    secret(
        "REDIS_URL",
        "redis://[:PASSWORD@]HOST[:PORT] holding resume records, shared by replicas (unset: process memory)",
    ),
    v(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        "OTLP collector base URL: traces of every session and turn go there (unset: tracing off)",
    ),
    v(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "",
        "OTLP traces URL, used as is (overrides OTEL_EXPORTER_OTLP_ENDPOINT for traces)",
    ),
    v(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "http/protobuf",
        "http/protobuf, http/json or grpc",
    ),
    v(
        "OTEL_SERVICE_NAME",
        "voice-host",
        "service.name of the exported spans",
    ),
    v(
        "OTEL_RECORD_TEXT",
        "false",
        "put transcripts and reply text in spans (false: their lengths only)",
    ),
    v(
        "TRUSTED_PROXIES",
        "",
        "comma-separated CIDRs whose X-Forwarded-For/-Proto/-Host are believed",
    ),
    v(
        "MAX_SESSIONS_PER_IP",
        "10",
        "concurrent sessions per client IP; past it 429 (0: no limit)",
    ),
    v(
        "CONNECT_RATE_PER_MIN",
        "60",
        "new connections per client IP per minute; past it 429 (0: no limit)",
    ),
    v(
        "CONNECT_BURST",
        "20",
        "connections one IP may open at once before the rate applies",
    ),
    v(
        "START_TIMEOUT_MS",
        "5000",
        "time a client has to send start after connecting",
    ),
    v(
        "IDLE_TIMEOUT_MS",
        "60000",
        "close a session after this long without audio or text (0: never)",
    ),
    v(
        "MAX_SESSION_MS",
        "3600000",
        "longest session; a token's max_session_s can lower it (0: no limit)",
    ),
    v(
        "TEXT_TURNS_PER_MIN",
        "20",
        "typed turns per session per minute, burst 5 (0: no limit)",
    ),
    v(
        "STT_PROVIDER",
        "deepgram if DEEPGRAM_API_KEY is set, else local",
        "deepgram or local",
    ),
    v(
        "LLM_PROVIDER",
        "openai if OPENAI_API_KEY or OPENAI_BASE_URL is set, else local",
        "openai or local",
    ),
    v(
        "TTS_PROVIDER",
        "elevenlabs if ELEVENLABS_API_KEY is set, else local",
        "elevenlabs or local",
    ),
    v(
        "DEEPGRAM_URL",
        "wss://api.deepgram.com",
        "Deepgram streaming endpoint base",
    ),
    secret("DEEPGRAM_API_KEY", "Deepgram API key"),
    v("DEEPGRAM_MODEL", "nova-3", "Deepgram model"),
    v("STT_LANGUAGE", "en", "speech-to-text language"),
    v(
        "OPENAI_BASE_URL",
        "https://api.openai.com/v1",
        "OpenAI-compatible API base URL",
    ),
    secret(
        "OPENAI_API_KEY",
        "OpenAI API key (optional for compatible endpoints)",
    ),
    v("LLM_MODEL", "gpt-4o-mini", "chat model"),
    v("LLM_TEMPERATURE", "0.7", "sampling temperature (0-2)"),
    v("LLM_MAX_TOKENS", "300", "maximum tokens per reply"),
    v(
        "ELEVENLABS_URL",
        "https://api.elevenlabs.io",
        "ElevenLabs API base (WebSocket URL swaps the scheme)",
    ),
    secret("ELEVENLABS_API_KEY", "ElevenLabs API key"),
    v("VOICE_ID", "21m00Tcm4TlvDq8ikWAM", "ElevenLabs voice id"),
    v(
        "ELEVENLABS_MODEL_ID",
        "eleven_flash_v2_5",
        "ElevenLabs model",
    ),
    v(
        "ELEVENLABS_TRANSPORT",
        "websocket",
        "websocket (one multi-context socket per session), stream-input (a socket per reply) or http (per-sentence POST)",
    ),
    v(
        "MODELS_DIR",
        "~/.cache/voice-host/models",
        "where the offline models are installed",
    ),
    v(
        "LOCAL_LLM_MODEL",
        "smollm2-135m",
        "offline LLM: smollm2-135m (instruction-tuned) or gemma3-270m (base model, few-shot)",
    ),
    v(
        "STT_SILENCE_TIMEOUT_MS",
        "2500",
        "end the user's turn after this much silence following interim text",
    ),
    v(
        "STT_FINALIZE_WAIT_MS",
        "300",
        "after the end of speech, how long the turn waits for the recogniser's final words",
    ),
    v(
        "LLM_STALL_TIMEOUT_MS",
        "10000",
        "end a reply whose LLM stream sends nothing for this long (error provider_unavailable)",
    ),
    v(
        "TTS_STALL_TIMEOUT_MS",
        "10000",
        "end a reply whose speech synthesis owes audio and sends nothing for this long",
    ),
    v(
        "TTS_MIN_DURATION_MS",
        "3000",
        "never interrupt the agent before it has spoken this long",
    ),
    v(
        "TTS_BARGE_THRESHOLD_WORDS",
        "5",
        "user words that interrupt the agent",
    ),
    v(
        "TTS_PROTECTED_PHRASES",
        "true",
        "never cut protected sentences by barge-in",
    ),
    v(
        "PROTECTED_PATTERNS",
        "(built-in list)",
        "regexes (separated by ';;') marking protected sentences",
    ),
    v(
        "BARGE_IN_PAUSE_TIMEOUT_MS",
        "2000",
        "a paused reply resumes after this long without real words",
    ),
    v(
        "AUDIO_LEAD_MS",
        "200",
        "how far ahead of real time agent audio is sent",
    ),
    v(
        "VAD_ENGINE",
        "webrtc",
        "voice activity detector: webrtc (webrtc-vad) or silero (Silero VAD, needs `voice-host models install`)",
    ),
    v("VAD_AGGRESSIVENESS", "2", "webrtc-vad mode 0-3"),
    v(
        "VAD_START_FRAMES",
        "3",
        "consecutive voiced 20 ms frames that start speech",
    ),
    v("VAD_HANGOVER_MS", "600", "silence that ends speech"),
    v("MEMORY_TURNS", "20", "conversation turns kept per session"),
    v(
        "MEMORY_CHARS",
        "8000",
        "conversation characters kept per session",
    ),
    v("SYSTEM_PROMPT", "(built-in)", "the agent's system prompt"),
    v(
        "GREETING",
        "",
        "what the agent says when a session starts (empty: nothing)",
    ),
    v(
        "PLUGIN_DIR",
        "plugins/dist",
        "where the reference plug-ins are found",
    ),
    v(
        "INTENT_PLUGIN",
        "PLUGIN_DIR/intent_keywords.wasm",
        "intent-analyzer component (a file or oci://REGISTRY/REPO:TAG|@sha256:...), or none",
    ),
    v(
        "PROMPT_PLUGIN",
        "PLUGIN_DIR/prompt_persona.wasm",
        "prompt-shaper component, or none",
    ),
    v(
        "BARGE_IN_PLUGIN",
        "PLUGIN_DIR/barge_in_smart.wasm",
        "barge-in-policy component, or none",
    ),
    v(
        "TURN_PLUGIN",
        "none",
        "end-of-turn-policy component, or none (turns end by the silence rules)",
    ),
    v(
        "TURN_MODEL",
        "auto",
        "end-of-turn model for the turn plug-in: auto (Smart Turn when installed), smart-turn, none",
    ),
    v(
        "TURN_WORDS_MODEL",
        "auto",
        "text end-of-turn model for the turn plug-in: auto (SmolLM2 when installed, with a cloud LLM), smollm2, none",
    ),
    v(
        "TURN_MODEL_THREADS",
        "1",
        "threads the end-of-turn model (Smart Turn) runs on, 1..=16 (each serves about 135 conversing sessions)",
    ),
    v(
        "TURN_WORDS_THREADS",
        "1",
        "threads the text end-of-turn model reads on, 1..=16 (each serves about 30 conversing sessions and holds a 95 MB cache)",
    ),
    v(
        "TURN_PAUSE_MS",
        "200",
        "silence within speech after which the end-of-turn plug-in is asked, 60..=2000",
    ),
    v(
        "PREEMPTIVE_GENERATION",
        "true",
        "start the reply on a final transcript before the turn is committed; dropped unheard if the user goes on",
    ),
    v(
        "INTENT_PLUGIN_SHADOW",
        "",
        "intent shadow version: answers beside the live one, compared in /metrics, never heard",
    ),
    v(
        "INTENT_PLUGIN_CANARY",
        "",
        "intent canary version: serves a share of new sessions, rolled back by itself on faults",
    ),
    v(
        "INTENT_PLUGIN_CANARY_PERCENT",
        "10",
        "share of new sessions the intent canary serves",
    ),
    v(
        "PROMPT_PLUGIN_SHADOW",
        "",
        "prompt shadow version: answers beside the live one, compared in /metrics, never heard",
    ),
    v(
        "PROMPT_PLUGIN_CANARY",
        "",
        "prompt canary version: serves a share of new sessions, rolled back by itself on faults",
    ),
    v(
        "PROMPT_PLUGIN_CANARY_PERCENT",
        "10",
        "share of new sessions the prompt canary serves",
    ),
    v(
        "BARGE_IN_PLUGIN_SHADOW",
        "",
        "barge-in shadow version: answers beside the live one, compared in /metrics, never heard",
    ),
    v(
        "BARGE_IN_PLUGIN_CANARY",
        "",
        "barge-in canary version: serves a share of new sessions, rolled back by itself on faults",
    ),
    v(
        "BARGE_IN_PLUGIN_CANARY_PERCENT",
        "10",
        "share of new sessions the barge-in canary serves",
    ),
    v(
        "TURN_PLUGIN_SHADOW",
        "",
        "end-of-turn shadow version: answers beside the live one, compared in /metrics, never heard",
    ),
    v(
        "TURN_PLUGIN_CANARY",
        "",
        "end-of-turn canary version: serves a share of new sessions, rolled back by itself on faults",
    ),
    v(
        "TURN_PLUGIN_CANARY_PERCENT",
        "10",
        "share of new sessions the end-of-turn canary serves",
    ),
    v(
        "PLUGIN_MEMORY_MB",
        "16",
        "linear memory cap per plug-in instance",
    ),
    v(
        "PLUGIN_DEADLINE_MS",
        "5",
        "CPU time limit of one plug-in call (wall-clock backstop: 10x, at least 100 ms)",
    ),
    v(
        "PLUGIN_SESSION_FAULT_LIMIT",
        "5",
        "faults after which a session keeps the built-in behaviour for that slot",
    ),
    v(
        "PLUGIN_QUARANTINE_SESSIONS",
        "3",
        "distinct faulting sessions that quarantine a plug-in version",
    ),
    v(
        "PLUGIN_FAULT_WINDOW_MS",
        "60000",
        "window over which faulting sessions are counted",
    ),
    v(
        "PLUGIN_QUARANTINE_BACKOFF_MS",
        "30000",
        "first quarantine's length; then retried, doubling up to 32x",
    ),
    v(
        "PLUGIN_WATCH",
        "true",
        "reload plug-in files when they change",
    ),
    v(
        "PLUGIN_SHADOW_MAX_SESSIONS",
        "64",
        "sessions a slot's shadow version shadows at once",
    ),
    v(
        "PLUGIN_CANARY_MARGIN_PCT",
        "5",
        "fault-rate points by which a canary may exceed the live version before it is rolled back",
    ),
    v(
        "PLUGIN_CANARY_MIN_CALLS",
        "20",
        "calls a canary answers before its fault rate is judged",
    ),
    v(
        "PLUGIN_POLL_S",
        "30",
        "seconds between checks of an oci:// tag serving a slot (a moved tag rolls out)",
    ),
    v(
        "PLUGIN_OCI_INSECURE",
        "",
        "registries (host:port, comma-separated) reached over plain HTTP instead of HTTPS",
    ),
    v(
        "PLUGIN_OCI_USERNAME",
        "",
        "user name for the plug-in registry (empty: anonymous)",
    ),
    secret(
        "PLUGIN_OCI_PASSWORD",
        "password or token for the plug-in registry",
    ),
    v(
        "PLUGIN_RECORD",
        "",
        "directory where every plug-in call is recorded as a JSON line (empty: no recording)",
    ),
    v(
        "PLUGIN_RECORD_TEXT",
        "true",
        "keep transcripts and other text in recordings (false: word counts and lengths only)",
    ),
    v(
        "PLUGIN_RECORD_MAX_MB",
        "64",
        "size at which the recording file is rotated",
    ),
    v(
        "PLUGIN_RECORD_FILES",
        "3",
        "rotated recording files kept (0: the file starts over when full)",
    ),
];

/// Names of all variables.
pub fn names() -> Vec<&'static str> {
    VARS.iter().map(|v| v.name).collect()
}

/// The `--help` section listing every variable.
pub fn help_text() -> String {
    let mut s =
        String::from("Environment (also settable in --config FILE under the lowercase name):\n");
    for v in VARS {
        let default = if v.default.is_empty() {
            String::new()
        } else {
            format!(" [default: {}]", v.default)
        };
        s.push_str(&format!("  {:<28} {}{}\n", v.name, v.help, default));
    }
    s
}
