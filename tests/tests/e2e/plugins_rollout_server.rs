//! Shadow and canary versions on a running host, driven through the admin endpoint: a shadow
//! intent analyzer is counted in `/metrics` and never reaches what the caller hears; a canary is
//! started, serves sessions, is promoted; and every malformed request gets a clear error.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::plugins::{self, admin_with, slot_entry};

const ADMIN: &str = "rollout-test-admin-token-0123456789abcdef";
const LIMIT: Duration = Duration::from_secs(30);
const WEATHER: &str = "what is the weather in paris";

/// A typed session taking `turns`; returns the agent's reply text of each.
async fn typed_session(addr: SocketAddr, id: &str, turns: &[&str]) -> Vec<String> {
    let mut c = AgentClient::connect(addr, None).await.expect("upgrade");
    c.send_json(json!({"type": "start", "session_id": id,
                       "audio": {"encoding": "pcm16", "sample_rate": 16000}}))
        .await;
    c.expect_type("ready", LIMIT).await;
    let mut replies = Vec::new();
    for (i, text) in turns.iter().enumerate() {
        c.send_json(json!({"type": "text", "text": text})).await;
        let turn = i as u64 + 1;
        let done = c
            .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == turn)
            .await
            .unwrap_or_else(|| panic!("{id}: turn {turn} unanswered: {:#?}", c.messages));
        replies.push(done["text"].as_str().unwrap_or_default().to_string());
    }
    assert!(c.of_type("error").is_empty(), "{:#?}", c.of_type("error"));
    c.close().await;
    replies
}

/// `/metrics` text of the host at `addr`.
async fn metrics_text(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok()))
        .unwrap_or(0)
}

async fn listing(addr: SocketAddr) -> Value {
    let (status, body) = admin_with(addr, ADMIN, "GET", "/admin/plugins", None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The system messages of the LLM requests the fake received so far.
fn system_prompts(s: &CloudStack) -> Vec<String> {
    s.openai
        .requests()
        .iter()
        .map(|r| {
            r.body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_intent_analyzer_is_counted_and_never_reaches_the_caller() {
    let keywords = plugins::component("intent-keywords");
    let prompt = plugins::component("prompt-persona");
    let s = CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default().reply("", "Sunny all day."),
        ElevenLabsScript::default(),
        &[
            ("INTENT_PLUGIN", "none"),
            ("PROMPT_PLUGIN", prompt.to_str().unwrap()),
            ("ADMIN_TOKEN", ADMIN),
        ],
    )
    .await;
    let addr = s.host.addr;
    let before = typed_session(addr, "before", &[WEATHER]).await;

    let (status, body) = admin_with(
        addr,
        ADMIN,
        "PUT",
        "/admin/plugins/intent/shadow",
        Some(json!({ "path": keywords })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entry = slot_entry(&body, "intent");
    assert_eq!(entry["plugin"], Value::Null, "the built-in serves the slot");
    assert_eq!(entry["shadow"]["plugin"], "intent_keywords", "{entry}");

    let after = typed_session(addr, "after", &[WEATHER, "goodbye"]).await;
    // The shadow found the weather intent, the live slot none: the pair is counted...
    let series = "voice_plugin_shadow_total{slot=\"intent\",live=\"none\",candidate=\"weather\"}";
    let deadline = tokio::time::Instant::now() + LIMIT;
    while sample(&metrics_text(addr).await, series) < 1 {
        assert!(tokio::time::Instant::now() < deadline, "no {series}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = metrics_text(addr).await;
    assert_eq!(
        sample(
            &text,
            "voice_plugin_shadow_total{slot=\"intent\",live=\"none\",candidate=\"goodbye\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        sample(&text, "voice_plugin_shadow_calls_total{slot=\"intent\"}"),
        2
    );
    // ...and never reached the caller: the prompt plug-in saw no intent (its system message
    // names the intent when there is one), the model answered, and "goodbye" was not turned
    // into the persona's direct goodbye.
    let prompts = system_prompts(&s);
    assert_eq!(prompts.len(), 3, "{prompts:#?}");
    assert!(
        prompts.iter().all(|p| !p.contains("intent appears to be")),
        "{prompts:#?}"
    );
    assert_eq!(
        prompts[0], prompts[1],
        "same request with and without the shadow"
    );
    assert_eq!(before, ["Sunny all day."]);
    assert_eq!(after, ["Sunny all day.", "Sunny all day."]);
    let shadow = slot_entry(&listing(addr).await, "intent")["shadow"].clone();
    assert_eq!(shadow["usage"]["disagreed"], 2, "{shadow}");
    assert_eq!(shadow["usage"]["sessions"], 1, "{shadow}");

    // Stopped, it is gone from the listing and compares nothing more.
    let (status, body) =
        admin_with(addr, ADMIN, "DELETE", "/admin/plugins/intent/shadow", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(slot_entry(&body, "intent")["shadow"], Value::Null);
    typed_session(addr, "stopped", &[WEATHER]).await;
    let text = metrics_text(addr).await;
    assert_eq!(
        sample(&text, "voice_plugin_shadow_calls_total{slot=\"intent\"}"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_is_started_served_and_promoted_through_the_admin_endpoint() {
    let keywords = plugins::component("intent-keywords");
    let seed = plugins::component("barge-in-seed");
    let s = CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default().reply("", "Okay."),
        ElevenLabsScript::default(),
        &[("INTENT_PLUGIN", "none"), ("ADMIN_TOKEN", ADMIN)],
    )
    .await;
    let addr = s.host.addr;

    let (status, body) = admin_with(
        addr,
        ADMIN,
        "PUT",
        "/admin/plugins/intent/canary",
        Some(json!({ "path": keywords, "percent": 100, "margin_pct": 2.5 })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let canary = &slot_entry(&body, "intent")["canary"];
    assert_eq!(canary["plugin"], "intent_keywords", "{canary}");
    assert_eq!(canary["percent"], 100);
    assert_eq!(canary["policy"]["margin"], 0.025);
    assert_eq!(canary["policy"]["min_calls"], 20, "the host's default");

    typed_session(addr, "on-canary", &[WEATHER, "hello there"]).await;
    let canary = slot_entry(&listing(addr).await, "intent")["canary"].clone();
    assert_eq!(canary["usage"]["sessions"], 1, "{canary}");
    assert_eq!(canary["usage"]["calls"], 2, "{canary}");
    assert_eq!(canary["usage"]["faults"], 0, "{canary}");

    let (status, body) = admin_with(
        addr,
        ADMIN,
        "POST",
        "/admin/plugins/intent/canary/promote",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entry = slot_entry(&body, "intent");
    assert_eq!(entry["plugin"], "intent_keywords", "{entry}");
    assert_eq!(entry["canary"], Value::Null);
    assert_eq!(entry["last_canary"]["outcome"], "promoted", "{entry}");

    // Nothing left to promote or abort: 404 with the reason.
    for action in ["promote", "abort"] {
        let (status, body) = admin_with(
            addr,
            ADMIN,
            "POST",
            &format!("/admin/plugins/intent/canary/{action}"),
            None,
        )
        .await;
        assert_eq!(status, 404, "{action}: {body}");
        assert_eq!(
            body["error"], "plug-in intent: no canary version is running",
            "{body}"
        );
    }

    // Malformed requests change nothing and say why.
    let bad: [(&str, &str, Option<Value>, u16, &str); 6] = [
        (
            "PUT",
            "/admin/plugins/nope/shadow",
            Some(json!({"path": "x"})),
            404,
            "no slot \"nope\"",
        ),
        (
            "PUT",
            "/admin/plugins/intent/canary",
            Some(json!({"path": keywords, "percent": 101})),
            400,
            "percent",
        ),
        (
            "PUT",
            "/admin/plugins/intent/canary",
            Some(json!({"percent": 5})),
            400,
            "path",
        ),
        (
            "PUT",
            "/admin/plugins/intent/shadow",
            Some(json!({"path": keywords, "extra": 1})),
            400,
            "extra",
        ),
        (
            "PUT",
            "/admin/plugins/intent/shadow",
            Some(json!({"path": "/nonexistent.wasm"})),
            422,
            "cannot read /nonexistent.wasm",
        ),
        (
            "PUT",
            "/admin/plugins/intent/shadow",
            Some(json!({"path": seed})),
            422,
            "not a valid intent-analyzer component",
        ),
    ];
    for (method, path, body, want, says) in bad {
        let (status, answer) = admin_with(addr, ADMIN, method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path}: {answer}");
    }
    let entry = slot_entry(&listing(addr).await, "intent").clone();
    assert_eq!(entry["shadow"], Value::Null, "{entry}");
    assert_eq!(entry["canary"], Value::Null, "{entry}");
    let (status, _) = admin_with(
        addr,
        "wrong-token",
        "PUT",
        "/admin/plugins/intent/shadow",
        Some(json!({"path": keywords})),
    )
    .await;
    assert_eq!(status, 401);
}
