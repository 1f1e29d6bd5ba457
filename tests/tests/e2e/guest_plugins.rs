//! What the tests of plug-ins written in other languages (`plugins_js_server`,
//! `plugins_python_server`) share: a host whose intent slot runs the guest plug-in beside the
//! Rust prompt shaper (`prompt-persona`), a typed conversation, and the checks of what the
//! guest's answers made the shaper do.

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::metrics;
use voice_tests::plugins;

const LONG: Duration = Duration::from_secs(60);

/// A host with `intent` in the intent slot and the Rust prompt shaper, whose LLM answers
/// `reply` to a weather question, and a client on it.
pub async fn start(intent: &Path, reply: &str) -> (CloudStack, AgentClient) {
    let prompt = plugins::component("prompt-persona");
    let s = CloudStack::start(
        DeepgramScript::new(["hello"]),
        OpenAiScript::default().reply("weather", reply),
        ElevenLabsScript::default(),
        &[
            ("INTENT_PLUGIN", intent.to_str().unwrap()),
            ("PROMPT_PLUGIN", prompt.to_str().unwrap()),
            // A loaded test machine must not turn a healthy call into a deadline fault.
            ("PLUGIN_DEADLINE_MS", "500"),
        ],
    )
    .await;
    let c = AgentClient::start(
        s.host.addr,
        json!({"encoding": "pcm16", "sample_rate": 16000}),
        None,
    )
    .await;
    (s, c)
}

/// Types `question`, waits for the reply and returns the system prompt of the one LLM request
/// so far (where the shaper put the guest's intent and slots).
pub async fn ask(s: &CloudStack, c: &mut AgentClient, question: &str, reply: &str) -> String {
    c.send_json(json!({"type": "text", "text": question})).await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["text"], reply);
    let requests = s.openai.requests();
    assert_eq!(requests.len(), 1);
    requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Types `text`, which the guest must read as `kind` (`repeat`, `goodbye`), and returns the
/// reply the shaper made of it, checking no LLM request was made for it.
pub async fn answered_directly(
    s: &CloudStack,
    c: &mut AgentClient,
    text: &str,
    kind: &str,
) -> String {
    c.send_json(json!({"type": "text", "text": text})).await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(s.openai.requests().len(), 1, "no LLM request for a {kind}");
    done["text"].as_str().unwrap_or_default().to_string()
}

/// No error reached the client, and the guest answered every call itself (no fallback to the
/// built-in behaviour); closes the client.
pub async fn served_without_fallbacks(s: &CloudStack, c: AgentClient) {
    assert!(c.of_type("error").is_empty(), "{:?}", c.of_type("error"));
    let series = "voice_plugin_fallbacks_total{slot=\"intent\"}";
    assert_eq!(metrics::metric(s.host.addr, series).await, 0, "{series}");
    c.close().await;
}
