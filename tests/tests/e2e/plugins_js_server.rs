//! A JavaScript plug-in (componentize-js) serving a running host next to a Rust one: the
//! JavaScript intent analyzer's result reaches the Rust prompt shaper, which puts it into the LLM
//! request, repeats the last reply or says goodbye without the LLM.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::plugins;

const LONG: Duration = Duration::from_secs(60);

/// The component of the JavaScript plug-in `plugins/js/<name>/`, built by
/// `scripts/build-plugins.sh` (componentize-js; a no-op when it is up to date).
fn js_component(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let out = Command::new("bash")
        .current_dir(&root)
        .args(["scripts/build-plugins.sh", name])
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "building {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = root
        .join("target/js-plugins")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_intent_analyzer_drives_the_rust_prompt_shaper() {
    let intent = js_component("intent-keywords-js");
    let prompt = plugins::component("prompt-persona");
    let s = CloudStack::start(
        DeepgramScript::new(["hello"]),
        OpenAiScript::default().reply("weather", "It is sunny in Paris."),
        ElevenLabsScript::default(),
        &[
            ("INTENT_PLUGIN", intent.to_str().unwrap()),
            ("PROMPT_PLUGIN", prompt.to_str().unwrap()),
            // A loaded test machine must not turn a healthy call into a deadline fault.
            ("PLUGIN_DEADLINE_MS", "500"),
        ],
    )
    .await;
    let mut c = AgentClient::start(
        s.host.addr,
        json!({"encoding": "pcm16", "sample_rate": 16000}),
        None,
    )
    .await;

    c.send_json(json!({"type": "text", "text": "What's the weather in Paris tomorrow?"}))
        .await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["text"], "It is sunny in Paris.");
    let requests = s.openai.requests();
    assert_eq!(requests.len(), 1);
    let system = requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        system.contains("\"weather\"") && system.contains("city = paris"),
        "the JavaScript plug-in's intent and slot reach the prompt: {system}"
    );

    // Its `repeat` makes the Rust shaper say the last reply again, without the LLM.
    c.send_json(json!({"type": "text", "text": "Sorry, can you say that again?"}))
        .await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["text"], "It is sunny in Paris.");
    assert_eq!(s.openai.requests().len(), 1, "no LLM request for a repeat");

    // Its `goodbye` makes the Rust shaper answer without the LLM.
    c.send_json(json!({"type": "text", "text": "ok bye"})).await;
    let done = c.expect_type("agent_done", LONG).await;
    assert!(
        done["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Goodbye"),
        "{done}"
    );
    assert_eq!(s.openai.requests().len(), 1, "no LLM request for a goodbye");
    assert!(c.of_type("error").is_empty(), "{:?}", c.of_type("error"));

    let metrics = reqwest::get(format!("http://{}/metrics", s.host.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fallbacks = metrics
        .lines()
        .find(|l| l.starts_with("voice_plugin_fallbacks_total{slot=\"intent\"}"))
        .expect("intent fallback series");
    assert!(fallbacks.ends_with(" 0"), "{fallbacks}");
    c.close().await;
}
