//! An offline provider whose model is not installed: the server still starts, and a session
//! that needs the provider gets a non-fatal `provider_not_installed` error naming the fix, while
//! the other providers keep serving it.

use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;

const LIMIT: Duration = Duration::from_secs(30);
const REPLY: &str = "It is sunny in Paris today.";

/// An empty models directory, removed when dropped.
struct EmptyDir(PathBuf);

impl EmptyDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "voice-host-empty-models-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for EmptyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn stack(local: &str, models: &EmptyDir) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default().reply("weather", REPLY),
        ElevenLabsScript::default(),
        &[(local, "local"), ("MODELS_DIR", models.0.to_str().unwrap())],
    )
    .await
}

async fn start(s: &CloudStack) -> AgentClient {
    AgentClient::start(
        s.host.addr,
        json!({"encoding": "pcm16", "sample_rate": 16000}),
        None,
    )
    .await
}

fn assert_not_installed(e: &serde_json::Value) {
    assert_eq!(e["code"], "provider_not_installed", "{e}");
    assert_eq!(e["fatal"], false, "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("models install"), "names the fix: {e}");
}

#[tokio::test]
async fn a_missing_offline_llm_is_reported_on_every_turn_and_the_session_goes_on() {
    let models = EmptyDir::new("llm");
    let s = stack("LLM_PROVIDER", &models).await;
    let mut c = start(&s).await;
    for turn in 1..=2u64 {
        c.send_json(json!({"type": "text", "text": "what is the weather"}))
            .await;
        let e = c.expect_type("error", LIMIT).await;
        assert_not_installed(&e);
        let done = c
            .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == turn)
            .await
            .unwrap_or_else(|| panic!("turn {turn} never ended: {:?}", c.messages));
        assert_eq!(done["interrupted"], true, "{done}");
        assert_eq!(done["text"], "");
    }
    assert!(c.closed.is_none(), "{:?}", c.closed);
    assert!(s.openai.requests().is_empty(), "the cloud LLM was not used");
}

#[tokio::test]
async fn a_missing_offline_recogniser_is_reported_and_typed_turns_still_work() {
    let models = EmptyDir::new("stt");
    let s = stack("STT_PROVIDER", &models).await;
    let mut c = start(&s).await;
    let e = c.expect_type("error", LIMIT).await;
    assert_not_installed(&e);
    c.send_json(json!({"type": "text", "text": "what is the weather"}))
        .await;
    let done = c.expect_type("agent_done", LIMIT).await;
    assert_eq!(done["text"], REPLY);
    assert!(
        s.deepgram.connections().is_empty(),
        "the cloud STT was not used"
    );
}

/// `voice-host models check` looks for the LLM the server would run (`LOCAL_LLM_MODEL`), exits 1
/// naming what is missing, and refuses an unknown model with one line (exit 2).
#[test]
fn models_check_names_the_configured_llm() {
    let dir = EmptyDir::new("check");
    let check = |model: Option<&str>| {
        let mut cmd = std::process::Command::new(voice_tests::binary::voice_host());
        cmd.args(["models", "check", "--dir"]).arg(&dir.0);
        cmd.env_remove("LOCAL_LLM_MODEL");
        if let Some(m) = model {
            cmd.env("LOCAL_LLM_MODEL", m);
        }
        let out = cmd.output().expect("voice-host runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = check(None);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{text}");
    assert!(text.contains("models install"), "{text}");
    let (code, text) = check(Some("gemma3-270m"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("gemma-3-270m-q4_k_m.gguf"), "{text}");
    let (code, text) = check(Some("gpt-5"));
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(text.contains("LOCAL_LLM_MODEL"), "{text}");
}
