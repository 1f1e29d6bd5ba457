//! Plug-in faults stay local on a running host: one session's twenty faulting turns leave the
//! other sessions on the plug-in and `/readyz` at 200; faults from three sessions quarantine the
//! version, which shows in the body of `/readyz` and in `/metrics` while readiness stays up.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::metrics::metric;
use voice_tests::plugins;

const LONG: Duration = Duration::from_secs(60);

async fn readyz(addr: SocketAddr) -> (u16, Value) {
    let resp = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn session(addr: SocketAddr) -> AgentClient {
    AgentClient::start_pcm16(addr).await
}

/// One typed turn, answered.
async fn turn(c: &mut AgentClient, text: &str) {
    c.send_json(json!({"type": "text", "text": text})).await;
    c.expect_type("agent_done", LONG).await;
}

/// Whether the newest LLM request carries the probe plug-in's intent (so the plug-in, not the
/// built-in "no intent", analysed that turn).
fn last_turn_had_plugin_intent(s: &CloudStack) -> bool {
    let requests = s.openai.requests();
    let system = requests.last().expect("a request").body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    system.contains("\"probe\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_faulting_session_leaves_others_on_the_plugin_and_readyz_up() {
    let intent = plugins::component("test-probe-py");
    let prompt = plugins::component("prompt-persona");
    let s = CloudStack::start(
        DeepgramScript::new(["hello"]),
        // A one-word reply: each of the 25 turns waits for its playback to end.
        OpenAiScript::default().reply("", "Okay."),
        ElevenLabsScript::default(),
        &[
            ("INTENT_PLUGIN", intent.to_str().unwrap()),
            ("PROMPT_PLUGIN", prompt.to_str().unwrap()),
            ("PLUGIN_QUARANTINE_BACKOFF_MS", "600000"),
            // A CPython call costs milliseconds of CPU: the faults here are traps, never the
            // deadline, which a Python plug-in's healthy call can pass at the 5 ms default.
            ("PLUGIN_DEADLINE_MS", "500"),
            // Every fault of this (slow, real-time) test stays inside the window.
            ("PLUGIN_FAULT_WINDOW_MS", "3600000"),
            // One-word replies make twenty typed turns in well under a minute.
            ("TEXT_TURNS_PER_MIN", "0"),
        ],
    )
    .await;
    let addr = s.host.addr;
    let mut bystander = session(addr).await;
    let mut hostile = session(addr).await;

    // `sleep` makes the probe wait, which traps in the sandbox: a fault every turn.
    for i in 0..20 {
        turn(&mut hostile, "sleep").await;
        if i % 5 == 4 {
            turn(&mut bystander, "hello there").await;
            assert!(
                last_turn_had_plugin_intent(&s),
                "the bystander's turn was analysed by the plug-in"
            );
        }
    }
    let (status, body) = readyz(addr).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["degraded"], json!([]), "{body}");
    assert_eq!(
        metric(addr, "voice_plugin_degraded{slot=\"intent\"}").await,
        0
    );
    assert_eq!(
        metric(addr, "voice_plugin_sessions_benched_total{slot=\"intent\"}").await,
        1,
        "the faulting session keeps the built-in behaviour after its fault limit"
    );
    let mut newcomer = session(addr).await;
    turn(&mut newcomer, "good morning").await;
    assert!(last_turn_had_plugin_intent(&s));

    // Faults from two more sessions: three distinct sessions quarantine the version.
    for _ in 0..2 {
        let mut c = session(addr).await;
        turn(&mut c, "sleep").await;
        c.close().await;
    }
    let (status, body) = readyz(addr).await;
    assert_eq!(
        status, 200,
        "the built-in behaviour serves: still ready; {body}"
    );
    let degraded = body["degraded"].as_array().expect("degraded list");
    assert_eq!(degraded.len(), 1, "{body}");
    assert!(
        degraded[0].as_str().unwrap_or_default().contains("intent"),
        "{body}"
    );
    assert_eq!(
        metric(addr, "voice_plugin_degraded{slot=\"intent\"}").await,
        1
    );
    turn(&mut newcomer, "good evening").await;
    assert!(
        !last_turn_had_plugin_intent(&s),
        "quarantined: the built-in behaviour answered"
    );
    for c in [bystander, hostile, newcomer] {
        c.close().await;
    }
}
