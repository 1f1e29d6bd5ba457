//! Starting voice-host in-process for tests: configuration from name/value pairs (as the
//! environment would give them), served on 127.0.0.1 port 0.

use crate::fake_deepgram::{DeepgramScript, FakeDeepgram};
use crate::fake_elevenlabs::{ElevenLabsScript, FakeElevenLabs};
use crate::fake_openai::{FakeOpenAi, OpenAiScript};
use voice_host::config::source::RawSettings;
use voice_host::config::{vars, Config};
use voice_host::server::{self, ServerHandle};

/// Fake keys in each provider's documented shape.
pub const DEEPGRAM_KEY: &str = "0123456789abcdef0123456789abcdef01234567";
pub const OPENAI_KEY: &str = "sk-proj-testkey0123456789abcdefghijklmnop";
pub const ELEVENLABS_KEY: &str = "sk_0123456789abcdef0123456789abcdef0123456789abcdef";

/// A validated configuration from `NAME=value` pairs; plug-ins default to the built-in ones
/// unless the pairs name them.
pub fn config<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Config {
    config_with_toml("", pairs)
}

/// [`config`] on top of a TOML configuration file's text (agent profiles, plug-in tables).
pub fn config_with_toml<K: AsRef<str>, V: AsRef<str>>(toml: &str, pairs: &[(K, V)]) -> Config {
    let mut all: Vec<(String, String)> = vec![
        ("INTENT_PLUGIN".into(), "none".into()),
        ("PROMPT_PLUGIN".into(), "none".into()),
        ("BARGE_IN_PLUGIN".into(), "none".into()),
        ("PLUGIN_WATCH".into(), "false".into()),
    ];
    all.extend(
        pairs
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())),
    );
    let mut raw = RawSettings::from_toml(toml).expect("valid test TOML");
    raw.overlay_env(all, &vars::names());
    Config::from_raw(&raw).expect("valid test configuration")
}

/// Serve `cfg` on 127.0.0.1:0.
pub async fn start(cfg: Config) -> ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    start_on(cfg, listener).await
}

/// Serve `cfg` on a listener the test prepared (e.g. with small socket buffers, which accepted
/// connections inherit).
pub async fn start_on(cfg: Config, listener: tokio::net::TcpListener) -> ServerHandle {
    let prepared = tokio::task::spawn_blocking(move || server::prepare(cfg))
        .await
        .expect("prepare task")
        .expect("server prepares");
    ServerHandle::spawn(prepared, listener).expect("server starts")
}

/// The three fake providers and a host wired to them.
pub struct CloudStack {
    pub deepgram: FakeDeepgram,
    pub openai: FakeOpenAi,
    pub elevenlabs: FakeElevenLabs,
    pub host: ServerHandle,
}

impl CloudStack {
    /// Start the fakes with their default scripts and a host using them.
    pub async fn with_defaults() -> Self {
        Self::start(
            DeepgramScript::default(),
            OpenAiScript::default(),
            ElevenLabsScript::default(),
            &[],
        )
        .await
    }

    /// Start fakes (with these scripts) and a host using them, plus extra settings.
    pub async fn start(
        deepgram: DeepgramScript,
        openai: OpenAiScript,
        elevenlabs: ElevenLabsScript,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::start_with_toml(deepgram, openai, elevenlabs, "", extra).await
    }

    /// [`CloudStack::start`] with a TOML configuration (e.g. agent profiles) under the settings.
    pub async fn start_with_toml(
        deepgram: DeepgramScript,
        openai: OpenAiScript,
        elevenlabs: ElevenLabsScript,
        toml: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        Self::start_on(listener, deepgram, openai, elevenlabs, toml, extra).await
    }

    /// [`CloudStack::start_with_toml`] with the host serving on `listener`.
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        deepgram: DeepgramScript,
        openai: OpenAiScript,
        elevenlabs: ElevenLabsScript,
        toml: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let deepgram = FakeDeepgram::start(deepgram.with_key(DEEPGRAM_KEY))
            .await
            .expect("fake deepgram");
        let openai = FakeOpenAi::start(openai.with_key(OPENAI_KEY))
            .await
            .expect("fake openai");
        let elevenlabs = FakeElevenLabs::start(elevenlabs.with_key(ELEVENLABS_KEY))
            .await
            .expect("fake elevenlabs");
        let host = start_on(
            config_with_toml(
                toml,
                &provider_pairs(&deepgram, &openai, &elevenlabs, extra),
            ),
            listener,
        )
        .await;
        Self {
            deepgram,
            openai,
            elevenlabs,
            host,
        }
    }

    /// Another host (a second replica) on the same fake providers, with its own settings.
    pub async fn another_host(&self, extra: &[(&str, &str)]) -> ServerHandle {
        start(config(&provider_pairs(
            &self.deepgram,
            &self.openai,
            &self.elevenlabs,
            extra,
        )))
        .await
    }
}

/// Settings pointing a host at the fakes, then `extra`.
fn provider_pairs(
    deepgram: &FakeDeepgram,
    openai: &FakeOpenAi,
    elevenlabs: &FakeElevenLabs,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = vec![
        ("DEEPGRAM_URL".into(), deepgram.url()),
        ("DEEPGRAM_API_KEY".into(), DEEPGRAM_KEY.into()),
        ("OPENAI_BASE_URL".into(), openai.base_url()),
        ("OPENAI_API_KEY".into(), OPENAI_KEY.into()),
        ("ELEVENLABS_URL".into(), elevenlabs.url()),
        ("ELEVENLABS_API_KEY".into(), ELEVENLABS_KEY.into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs
}
