//! The `/agent` server through a real WebSocket client: health, readiness, admission, every
//! protocol error code, oversize frames, isolation between sessions and graceful shutdown.

use serde_json::json;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::{self, CloudStack};

const LONG: Duration = Duration::from_secs(20);

fn pcm16k() -> serde_json::Value {
    json!({"encoding": "pcm16", "sample_rate": 16000})
}

async fn stack(extra: &[(&str, &str)]) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default().reply("weather", "It is sunny in Paris today. Enjoy it."),
        ElevenLabsScript::default(),
        extra,
    )
    .await
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("http request");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn health_and_readiness() {
    let s = stack(&[]).await;
    let (status, body) = get(s.host.addr, "/healthz").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = get(s.host.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["providers"]["llm"], "openai");
    let metrics = reqwest::get(format!("http://{}/metrics", s.host.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("voice_sessions_active"), "{metrics}");
}

#[tokio::test]
async fn readiness_lists_reasons_when_a_provider_is_missing() {
    let empty = std::env::temp_dir().join(format!("voice-host-no-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let h = host::start(host::config(&[
        ("STT_PROVIDER", "local"),
        ("MODELS_DIR", empty.to_str().unwrap()),
    ]))
    .await;
    let (status, body) = get(h.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let reasons = body["reasons"].as_array().expect("reasons list");
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("stt:")),
        "{body}"
    );
    // The process is still healthy and says so.
    assert_eq!(get(h.addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn origin_is_checked_before_the_upgrade() {
    let s = stack(&[(
        "ALLOWED_ORIGINS",
        "https://app.example,http://localhost:3000",
    )])
    .await;
    let refused = AgentClient::connect(s.host.addr, Some("https://evil.example"))
        .await
        .err()
        .expect("foreign origin refused");
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("origin_not_allowed"),
        "{}",
        refused.body
    );
    assert!(
        AgentClient::connect(s.host.addr, Some("https://app.example"))
            .await
            .is_ok()
    );
    assert!(
        AgentClient::connect(s.host.addr, Some("http://localhost:3000"))
            .await
            .is_ok()
    );
    // Native clients send no Origin.
    assert!(AgentClient::connect(s.host.addr, None).await.is_ok());
}

#[tokio::test]
async fn capacity_is_enforced_with_retry_after() {
    let s = stack(&[("MAX_SESSIONS", "1")]).await;
    let first = AgentClient::start(s.host.addr, pcm16k(), None).await;
    let refused = AgentClient::connect(s.host.addr, None)
        .await
        .err()
        .expect("second session refused");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert_eq!(body_code(&refused.body), "at_capacity", "{}", refused.body);
    let (status, body) = get(s.host.addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body["reasons"][0].as_str().unwrap().contains("capacity"),
        "{body}"
    );
    // The slot frees when the session ends.
    first.close().await;
    let mut admitted = false;
    for _ in 0..100 {
        if AgentClient::connect(s.host.addr, None).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "slot was not released");
}

/// The `code` of a refused upgrade's JSON body.
fn body_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON error body");
    v["code"].as_str().unwrap_or_default().to_string()
}

async fn expect_error(c: &mut AgentClient, code: &str) -> serde_json::Value {
    let e = c.expect_type("error", LONG).await;
    assert_eq!(e["code"], code, "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    e
}

#[tokio::test]
async fn errors_before_start_keep_the_connection() {
    let s = stack(&[]).await;
    let mut c = AgentClient::connect(s.host.addr, None).await.unwrap();
    c.send_text_frame("{not json").await;
    expect_error(&mut c, "bad_json").await;
    c.send_json(json!({"type": "dance"})).await;
    expect_error(&mut c, "unknown_type").await;
    c.send_audio(&[0u8; 320]).await;
    expect_error(&mut c, "not_started").await;
    c.send_json(json!({"type": "text", "text": "hi"})).await;
    expect_error(&mut c, "not_started").await;
    c.send_json(json!({"type": "start", "audio": {"encoding": "opus", "sample_rate": 48000}}))
        .await;
    expect_error(&mut c, "bad_audio_format").await;
    c.send_json(json!({"type": "start", "audio": {"encoding": "pcm16", "sample_rate": 4000}}))
        .await;
    let e = expect_error(&mut c, "bad_audio_format").await;
    assert_eq!(e["fatal"], false);
    c.send_json(json!({"type": "start", "audio": pcm16k(), "agent": "nobody"}))
        .await;
    expect_error(&mut c, "unknown_agent").await;
    c.send_json(json!({"type": "start", "audio": pcm16k(), "session_id": ""}))
        .await;
    expect_error(&mut c, "bad_session_id").await;
    c.send_json(json!({"type": "start", "audio": pcm16k(), "session_id": "call-42"}))
        .await;
    let ready = c.expect_type("ready", LONG).await;
    assert_eq!(ready["session_id"], "call-42");
    assert_eq!(ready["output"], pcm16k());
}

#[tokio::test]
async fn errors_after_start_do_not_end_the_session() {
    let s = stack(&[]).await;
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    c.send_json(json!({"type": "start", "audio": pcm16k()}))
        .await;
    expect_error(&mut c, "already_started").await;
    c.send_text_frame("[1,2,3]").await;
    expect_error(&mut c, "bad_message").await;
    c.send_json(json!({"type": "text"})).await;
    expect_error(&mut c, "bad_message").await;
    c.send_json(json!({"type": "text", "text": "   "})).await;
    expect_error(&mut c, "bad_message").await;
    c.send_json(json!({"type": "whatever"})).await;
    expect_error(&mut c, "unknown_type").await;
    c.send_text_frame(&format!(
        "{{\"type\":\"text\",\"text\":\"{}\"}}",
        "a".repeat(20_000)
    ))
    .await;
    expect_error(&mut c, "frame_too_large").await;
    c.send_json(json!({"type": "text", "text": "b".repeat(5000)}))
        .await;
    expect_error(&mut c, "text_too_long").await;
    // Still serving: a typed turn gets its reply.
    c.send_json(json!({"type": "text", "text": "what is the weather in paris"}))
        .await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["text"], "It is sunny in Paris today. Enjoy it.");
    assert_eq!(done["interrupted"], false);
}

#[tokio::test]
async fn oversize_audio_frame_closes_with_1009_and_spares_other_sessions() {
    let s = stack(&[]).await;
    let mut other = AgentClient::start(s.host.addr, pcm16k(), None).await;
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    // Exactly the limit is accepted: the session goes on to answer the next message (frames
    // are handled in order, so a refused frame would have closed the socket before it).
    c.send_audio(&vec![0u8; 64 * 1024]).await;
    c.send_json(json!({"type": "dance"})).await;
    expect_error(&mut c, "unknown_type").await;
    assert!(
        c.closed.is_none(),
        "closed by a frame of the limit: {:?}",
        c.closed
    );
    // One byte more is refused and ends the session.
    c.send_audio(&vec![0u8; 64 * 1024 + 1]).await;
    let e = expect_error(&mut c, "frame_too_large").await;
    assert_eq!(e["fatal"], true);
    assert_eq!(c.expect_close(LONG).await.0, 1009);
    let refusals: Vec<_> = c
        .of_type("error")
        .into_iter()
        .filter(|e| e["code"] == "frame_too_large")
        .collect();
    assert_eq!(refusals.len(), 1, "only the oversize frame was refused");
    // The other session is untouched.
    other
        .send_json(json!({"type": "text", "text": "what is the weather"}))
        .await;
    let done = other.expect_type("agent_done", LONG).await;
    assert_eq!(done["interrupted"], false);
}

/// G.711 mu-law byte to a linear sample (the test's own decoder, independent of the host's).
fn mulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// The repetition period (in samples) of a periodic signal: the lag in `min..=max` with the
/// strongest normalised autocorrelation, and that correlation.
fn period(samples: &[i16], min: usize, max: usize) -> (usize, f64) {
    let x: Vec<f64> = samples.iter().map(|&s| f64::from(s)).collect();
    (min..=max)
        .map(|lag| {
            let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
            for i in lag..x.len() {
                xy += x[i] * x[i - lag];
                xx += x[i] * x[i];
                yy += x[i - lag] * x[i - lag];
            }
            (lag, xy / (xx * yy).sqrt().max(1.0))
        })
        .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best })
}

/// One typed turn in a session with this output format: (`ready.output`, agent audio bytes,
/// `turn_metrics`, ms from connecting to the metrics as the client measured them).
async fn one_turn(
    addr: std::net::SocketAddr,
    output: serde_json::Value,
) -> (serde_json::Value, Vec<u8>, serde_json::Value, f64) {
    let began = std::time::Instant::now();
    let mut c = AgentClient::start(addr, pcm16k(), Some(output)).await;
    let ready = c.of_type("ready")[0].clone();
    c.send_json(json!({"type": "text", "text": "what is the weather in paris"}))
        .await;
    let transcript = c
        .wait_for(LONG, |m| m["type"] == "transcript" && m["final"] == true)
        .await
        .expect("final transcript of the typed turn");
    assert_eq!(transcript["turn"], 1);
    let done = c.expect_type("agent_done", LONG).await;
    let deltas: String = c
        .of_type("agent_text")
        .iter()
        .map(|m| m["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, done["text"].as_str().unwrap());
    assert!(
        c.of_type("agent_text").len() > 1,
        "the reply streamed in pieces"
    );
    let metrics = c.expect_type("turn_metrics", LONG).await;
    let elapsed_ms = began.elapsed().as_secs_f64() * 1000.0;
    (ready["output"].clone(), c.audio, metrics, elapsed_ms)
}

#[tokio::test]
async fn typed_turn_streams_text_and_mulaw_audio_at_8khz() {
    let s = stack(&[]).await;
    let mulaw8k = json!({"encoding": "mulaw", "sample_rate": 8000});
    let (output, ulaw, _, _) = one_turn(s.host.addr, mulaw8k.clone()).await;
    assert_eq!(output, mulaw8k, "ready.output names the format asked for");
    // The same reply as 16-bit PCM at 16 kHz, to measure the reply's duration independently.
    let (_, pcm, _, _) = one_turn(s.host.addr, pcm16k()).await;
    let reply_ms = pcm.len() as f64 / 32.0;
    assert!(reply_ms > 1000.0, "{reply_ms} ms of PCM reply");
    // Mu-law at 8 kHz: one byte a sample, 8 bytes a ms, for the same duration (to a frame).
    let ulaw_ms = ulaw.len() as f64 / 8.0;
    assert!(
        (ulaw_ms - reply_ms).abs() <= 40.0,
        "{} mu-law bytes are {ulaw_ms} ms at 8 kHz; the reply lasts {reply_ms} ms",
        ulaw.len()
    );
    // Decoded as mu-law at 8 kHz the audio is the fake voice: a buzz repeating at 180 Hz,
    // every 8000 / 180 = 44.4 samples (PCM bytes read as mu-law have no such period).
    let voice: Vec<i16> = ulaw.iter().map(|&b| mulaw_decode(b)).collect();
    let (lag, correlation) = period(&voice[..voice.len().min(8000)], 20, 70);
    assert!(
        (44..=45).contains(&lag) && correlation > 0.9,
        "period {lag} samples (correlation {correlation:.2}); the voice repeats every 44.4"
    );
}

#[tokio::test]
async fn turn_metrics_time_the_turn_and_the_hosts_own_work() {
    let s = stack(&[]).await;
    let (_, _, metrics, elapsed_ms) = one_turn(s.host.addr, pcm16k()).await;
    assert_eq!(metrics["turn"], 1);
    for field in [
        "llm_first_token_ms",
        "tts_first_audio_ms",
        "first_audio_sent_ms",
    ] {
        assert!(metrics[field].is_u64(), "{field} missing: {metrics}");
    }
    // The host's own processing time is measured (it did work: parsing, shaping the prompt,
    // encoding audio), and is part of the session's lifetime so far, which the client saw
    // from its side of the socket.
    let host_ms = metrics["host_processing_ms"]
        .as_f64()
        .expect("host_processing_ms present");
    assert!(
        host_ms.is_finite() && host_ms > 0.0 && host_ms < elapsed_ms,
        "host_processing_ms {host_ms} in a session of {elapsed_ms} ms: {metrics}"
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_turn_then_closes_1001() {
    let mut s = stack(&[("DRAIN_TIMEOUT_MS", "15000")]).await;
    let addr = s.host.addr;
    let mut busy = AgentClient::start(addr, pcm16k(), None).await;
    let mut idle = AgentClient::start(addr, pcm16k(), None).await;
    busy.send_json(json!({"type": "text", "text": "what is the weather in paris"}))
        .await;
    busy.expect_type("agent_text", LONG).await;
    s.host.begin_shutdown();
    // Idle sessions are told and closed at once.
    idle.expect_type("shutdown", LONG).await;
    assert_eq!(idle.expect_close(LONG).await.0, 1001);
    // The busy one is told, finishes its reply, then is closed.
    busy.expect_type("shutdown", LONG).await;
    let done = busy.expect_type("agent_done", LONG).await;
    assert_eq!(done["interrupted"], false);
    assert_eq!(busy.expect_close(LONG).await.0, 1001);
    s.host.wait().await;
    // Nothing listens any more.
    assert!(AgentClient::connect(addr, None).await.is_err());
}

#[tokio::test]
async fn while_draining_new_sessions_get_503_with_retry_after() {
    let mut s = stack(&[("DRAIN_TIMEOUT_MS", "30000")]).await;
    let addr = s.host.addr;
    let mut busy = AgentClient::start(addr, pcm16k(), None).await;
    // The fake echoes the question: a reply of about 20 s keeps the drain going.
    let long = format!("tell me about {}", "the sea and the ships ".repeat(12));
    busy.send_json(json!({"type": "text", "text": long})).await;
    busy.expect_type("agent_text", LONG).await;
    s.host.begin_shutdown();
    busy.expect_type("shutdown", LONG).await;
    // The listener still answers while the turn in flight finishes: with a refusal.
    let refused = AgentClient::connect(addr, None)
        .await
        .err()
        .expect("no new session while draining");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.retry_after.as_deref(), Some("5"));
    assert_eq!(body_code(&refused.body), "draining", "{}", refused.body);
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "draining"),
        "{body}"
    );
    // The session leaving ends the drain.
    busy.send_json(json!({"type": "stop"})).await;
    busy.expect_close(LONG).await;
    s.host.wait().await;
}

#[tokio::test]
async fn drain_timeout_closes_sessions_still_speaking() {
    let mut s = stack(&[("DRAIN_TIMEOUT_MS", "300")]).await;
    let mut busy = AgentClient::start(s.host.addr, pcm16k(), None).await;
    busy.send_json(json!({"type": "text", "text": "tell me a long story"}))
        .await;
    busy.expect_type("agent_text", LONG).await;
    s.host.begin_shutdown();
    busy.expect_type("shutdown", LONG).await;
    assert_eq!(busy.expect_close(LONG).await.0, 1001);
    assert!(
        busy.of_type("agent_done").is_empty(),
        "the reply was cut by the drain timeout"
    );
    s.host.wait().await;
}

#[tokio::test]
async fn stop_closes_normally() {
    let s = stack(&[]).await;
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    c.send_json(json!({"type": "stop"})).await;
    assert_eq!(c.expect_close(LONG).await.0, 1000);
}

#[tokio::test]
async fn agent_profile_chooses_prompt_model_and_voice() {
    let s = CloudStack::start_with_toml(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default().reply("order", "Your order ships tomorrow."),
        ElevenLabsScript::default(),
        r#"
        [agents.support]
        system_prompt = "You are the support desk of a bakery."
        model = "gpt-4.1-mini"
        voice = "supportVoice01"
        "#,
        &[],
    )
    .await;
    let mut c = AgentClient::connect(s.host.addr, None)
        .await
        .expect("upgrade");
    c.send_json(json!({"type": "start", "audio": pcm16k(), "agent": "support"}))
        .await;
    c.expect_type("ready", LONG).await;
    c.send_json(json!({"type": "text", "text": "where is my order"}))
        .await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["text"], "Your order ships tomorrow.");
    let requests = s.openai.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body["model"], "gpt-4.1-mini");
    assert_eq!(
        requests[0].body["messages"][0]["content"],
        "You are the support desk of a bakery."
    );
    let voices: Vec<String> = s
        .elevenlabs
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        voices.iter().all(|p| p.contains("/supportVoice01/")) && !voices.is_empty(),
        "{voices:?}"
    );

    // A session without a profile keeps the host's model.
    let mut plain = AgentClient::start(s.host.addr, pcm16k(), None).await;
    plain
        .send_json(json!({"type": "text", "text": "where is my order"}))
        .await;
    plain.expect_type("agent_done", LONG).await;
    assert_eq!(s.openai.requests()[1].body["model"], "gpt-4o-mini");
}
