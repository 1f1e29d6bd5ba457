//! A Python plug-in (componentize-py) serving a running host next to a Rust one: the Python
//! intent analyzer's result reaches the Rust prompt shaper, which puts it into the LLM request
//! or answers a goodbye directly without the LLM.

use serde_json::json;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::plugins;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_intent_analyzer_drives_the_rust_prompt_shaper() {
    let intent = plugins::component("intent-regex-py");
    let prompt = plugins::component("prompt-persona");
    let s = CloudStack::start(
        DeepgramScript::new(["hello"]),
        OpenAiScript::default().reply("weather", "It is sunny in New York."),
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

    c.send_json(json!({"type": "text", "text": "What's the weather in New York?"}))
        .await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["text"], "It is sunny in New York.");
    let requests = s.openai.requests();
    assert_eq!(requests.len(), 1);
    let system = requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        system.contains("\"weather\"") && system.contains("new york"),
        "the Python plug-in's intent and slot reach the prompt: {system}"
    );

    // The Python plug-in's `goodbye` makes the Rust shaper answer without the LLM.
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
