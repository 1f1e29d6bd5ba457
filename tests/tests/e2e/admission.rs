//! Admission and per-client limits through real WebSocket and HTTP clients: session tokens
//! checked before the upgrade (401), a token's agent and session length, per-IP caps (429),
//! start and idle timeouts, audio faster than real time, typed-turn rate, and Twilio's signed
//! webhook and stream token. Each test names the control it proves in docs/security.md.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use voice_host::admission::token::{mint_hs256, now_s, Claims};
use voice_host::admission::twilio::TwilioAuth;
use voice_tests::agent_client::{AgentClient, Refused};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;

const LONG: Duration = Duration::from_secs(20);
const SECRET: &str = "admission-test-secret-0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-auth-token-for-tests";
const REPLY: &str = "It is sunny in Paris today. Enjoy it.";
const PROFILES: &str = r#"
[agents.sales]
system_prompt = "You sell bread."
[agents.support]
system_prompt = "You help with orders."
"#;

fn pcm16k() -> Value {
    json!({"encoding": "pcm16", "sample_rate": 16000})
}

async fn stack(extra: &[(&str, &str)]) -> CloudStack {
    CloudStack::start_with_toml(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default().reply("weather", REPLY),
        ElevenLabsScript::default(),
        PROFILES,
        extra,
    )
    .await
}

fn claims(exp: u64) -> Claims {
    Claims {
        sub: "user-42".into(),
        exp,
        nbf: None,
        iat: None,
        agent: None,
        max_session_s: None,
        call_sid: None,
    }
}

fn token(c: &Claims) -> String {
    mint_hs256(SECRET.as_bytes(), c)
}

fn valid_token() -> String {
    token(&claims(now_s() + 600))
}

async fn refused(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Refused {
    match AgentClient::connect_with(addr, path, headers).await {
        Ok(_) => panic!("{path} was admitted"),
        Err(r) => r,
    }
}

fn body_code(r: &Refused) -> String {
    let v: Value = serde_json::from_str(&r.body).expect("JSON error body");
    v["code"].as_str().unwrap_or_default().to_string()
}

async fn expect_error(c: &mut AgentClient, code: &str) -> Value {
    let e = c
        .wait_for(LONG, |v| v["type"] == "error" && v["code"] == code)
        .await
        .unwrap_or_else(|| panic!("no error {code}; got {:?}", c.messages));
    assert_eq!(e["code"], code, "{e}");
    e
}

/// A typed turn reaches the LLM and its reply comes back.
async fn converse(c: &mut AgentClient) {
    c.send_json(json!({"type": "text", "text": "what is the weather in paris"}))
        .await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["text"], REPLY);
}

#[tokio::test]
async fn bad_tokens_get_401_before_the_upgrade() {
    let s = stack(&[("AUTH_SECRET", SECRET)]).await;
    let addr = s.host.addr;
    let expired = token(&claims(now_s() - 3600));
    let forged = mint_hs256(
        b"some-other-secret-some-other-secret",
        &claims(now_s() + 600),
    );
    let cases = [
        ("/agent".to_string(), "token_missing"),
        ("/agent?token=not-a-jwt".to_string(), "token_malformed"),
        (format!("/agent?token={expired}"), "token_expired"),
        (format!("/agent?token={forged}"), "token_invalid"),
    ];
    for (path, code) in cases {
        let r = refused(addr, &path, &[]).await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(body_code(&r), code, "{path}");
        assert!(!r.body.contains(&expired) && !r.body.contains(&forged));
    }
    // The same through the subprotocol entry.
    let proto = format!("voice-host.v1, token.{expired}");
    let r = refused(addr, "/agent", &[("sec-websocket-protocol", &proto)]).await;
    assert_eq!((r.status, body_code(&r).as_str()), (401, "token_expired"));
    // The Twilio stream is guarded the same way when no TWILIO_AUTH_TOKEN is set.
    let r = refused(addr, "/twilio", &[]).await;
    assert_eq!((r.status, body_code(&r).as_str()), (401, "token_missing"));
}

#[tokio::test]
async fn a_valid_token_works_by_query_and_by_subprotocol() {
    let s = stack(&[("AUTH_SECRET", SECRET)]).await;
    let addr = s.host.addr;
    let by_query = AgentClient::connect_with(addr, &format!("/agent?token={}", valid_token()), &[])
        .await
        .expect("admitted with ?token=");
    let mut c = by_query.start_session(pcm16k(), None).await;
    converse(&mut c).await;

    let proto = format!("voice-host.v1, token.{}", valid_token());
    let by_protocol =
        AgentClient::connect_with(addr, "/agent", &[("sec-websocket-protocol", &proto)])
            .await
            .expect("admitted with the subprotocol entry");
    // Only the non-secret protocol is echoed.
    assert_eq!(by_protocol.protocol.as_deref(), Some("voice-host.v1"));
    let mut c = by_protocol.start_session(pcm16k(), None).await;
    converse(&mut c).await;
}

#[tokio::test]
async fn a_token_for_one_agent_cannot_start_another() {
    let s = stack(&[("AUTH_SECRET", SECRET)]).await;
    let mut sales = claims(now_s() + 600);
    sales.agent = Some("sales".into());
    let path = format!("/agent?token={}", token(&sales));
    let mut c = AgentClient::connect_with(s.host.addr, &path, &[])
        .await
        .expect("admitted");
    c.send_json(json!({"type": "start", "audio": pcm16k(), "agent": "support"}))
        .await;
    let e = expect_error(&mut c, "agent_not_allowed").await;
    assert_eq!(e["fatal"], false);
    // A start naming no agent runs the token's agent.
    c.send_json(json!({"type": "start", "audio": pcm16k()}))
        .await;
    c.expect_type("ready", LONG).await;
    converse(&mut c).await;
    let prompt = &s.openai.requests()[0].body["messages"][0]["content"];
    assert_eq!(prompt, "You sell bread.");
}

#[tokio::test]
async fn a_token_can_shorten_the_session() {
    let s = stack(&[("AUTH_SECRET", SECRET)]).await;
    let mut short = claims(now_s() + 600);
    short.max_session_s = Some(1);
    let path = format!("/agent?token={}", token(&short));
    let c = AgentClient::connect_with(s.host.addr, &path, &[])
        .await
        .expect("admitted");
    let mut c = c.start_session(pcm16k(), None).await;
    let e = expect_error(&mut c, "session_time_limit").await;
    assert_eq!(e["fatal"], true);
    assert_eq!(c.expect_close(LONG).await.0, 1008);
}

#[tokio::test]
async fn one_ip_past_its_cap_gets_429_while_another_is_served() {
    let s = stack(&[
        ("MAX_SESSIONS_PER_IP", "1"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let addr = s.host.addr;
    let first = AgentClient::connect_with(addr, "/agent", &[("x-forwarded-for", "198.51.100.1")])
        .await
        .expect("first session of the address");
    let _first = first.start_session(pcm16k(), None).await;
    let r = refused(addr, "/agent", &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(body_code(&r), "too_many_sessions");
    assert!(r
        .retry_after
        .as_deref()
        .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)));
    // Another client behind the same proxy is served.
    let other = AgentClient::connect_with(addr, "/agent", &[("x-forwarded-for", "198.51.100.2")])
        .await
        .expect("another address is served");
    let mut other = other.start_session(pcm16k(), None).await;
    converse(&mut other).await;
}

#[tokio::test]
async fn the_connection_rate_per_ip_gets_429_with_retry_after() {
    let s = stack(&[("CONNECT_RATE_PER_MIN", "1"), ("CONNECT_BURST", "2")]).await;
    let _a = AgentClient::connect(s.host.addr, None)
        .await
        .expect("first");
    let _b = AgentClient::connect(s.host.addr, None)
        .await
        .expect("second");
    let r = refused(s.host.addr, "/agent", &[]).await;
    assert_eq!((r.status, body_code(&r).as_str()), (429, "rate_limited"));
    assert!(r.retry_after.is_some());
}

#[tokio::test]
async fn a_silent_socket_is_closed_at_start_timeout() {
    let s = stack(&[("START_TIMEOUT_MS", "300")]).await;
    let mut c = AgentClient::connect(s.host.addr, None)
        .await
        .expect("upgrade");
    let e = expect_error(&mut c, "start_timeout").await;
    assert_eq!(e["fatal"], true);
    assert_eq!(c.expect_close(LONG).await.0, 1008);
}

#[tokio::test]
async fn an_idle_session_is_closed() {
    let s = stack(&[("IDLE_TIMEOUT_MS", "300")]).await;
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    let e = expect_error(&mut c, "idle_timeout").await;
    assert_eq!(e["fatal"], true);
    assert_eq!(c.expect_close(LONG).await.0, 1008);
}

#[tokio::test]
async fn audio_at_four_times_real_time_is_refused() {
    let s = stack(&[]).await;
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    let frame = vec![0u8; 640]; // 20 ms at 16 kHz
    let mut seen = false;
    // 20 ms of audio every 5 ms for up to 80 s of audio; the error comes after about 10 s.
    for _ in 0..4000 {
        c.send_audio(&frame).await;
        let due = tokio::time::Instant::now() + Duration::from_millis(5);
        c.drain_until(due).await;
        if c.of_type("error")
            .iter()
            .any(|e| e["code"] == "audio_too_fast")
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "no audio_too_fast; got {:?}", c.messages);
    // The session goes on.
    converse(&mut c).await;
}

#[tokio::test]
async fn typed_turns_are_rate_limited_per_session() {
    let s = stack(&[("TEXT_TURNS_PER_MIN", "1")]).await;
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    for _ in 0..6 {
        c.send_json(json!({"type": "text", "text": "hello"})).await;
    }
    let e = expect_error(&mut c, "rate_limited").await;
    assert_eq!(e["fatal"], false);
}

// --- Twilio -------------------------------------------------------------------------------

const CALL_SID: &str = "CA00000000000000000000000000000007";
const STREAM_SID: &str = "MZ00000000000000000000000000000007";

async fn twilio_stack() -> CloudStack {
    stack(&[
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("PUBLIC_URL", "https://voice.example.com"),
        ("AUTH_SECRET", SECRET),
    ])
    .await
}

async fn post_voice(addr: SocketAddr, signature: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/twilio/voice?agent=sales"))
        .form(&[("CallSid", CALL_SID), ("From", "+15550100")]);
    if let Some(sig) = signature {
        req = req.header("x-twilio-signature", sig);
    }
    let resp = req.send().await.expect("webhook answers");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

fn twilio_signature() -> String {
    let params = vec![
        ("CallSid".to_string(), CALL_SID.to_string()),
        ("From".to_string(), "+15550100".to_string()),
    ];
    TwilioAuth::new(TWILIO_TOKEN).expected_signature(
        "https://voice.example.com/twilio/voice?agent=sales",
        &params,
    )
}

/// Open `/twilio`, send `start` with these custom parameters, then `stop`; the close code.
async fn stream_close_code(addr: SocketAddr, custom: Value) -> Option<u16> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/twilio"))
        .await
        .expect("the stream is admitted to reach its start");
    let start = json!({"event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID,
        "start": {"streamSid": STREAM_SID, "callSid": CALL_SID, "customParameters": custom,
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
    ws.send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    let stop = json!({"event": "stop", "sequenceNumber": "2", "streamSid": STREAM_SID,
        "stop": {"callSid": CALL_SID}});
    let _ = ws.send(Message::Text(stop.to_string().into())).await;
    tokio::time::timeout(LONG, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the host ends the stream")
}

#[tokio::test]
async fn twilio_webhook_signature_is_checked() {
    let s = twilio_stack().await;
    assert_eq!(post_voice(s.host.addr, None).await.0, 403);
    assert_eq!(
        post_voice(s.host.addr, Some("bm90IHRoZSBzaWduYXR1cmU="))
            .await
            .0,
        403
    );
    let (status, xml) = post_voice(s.host.addr, Some(&twilio_signature())).await;
    assert_eq!(status, 200, "{xml}");
    assert!(
        xml.contains("<Stream url=\"wss://voice.example.com/twilio\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<Parameter name=\"agent\" value=\"sales\"/>"),
        "{xml}"
    );
    assert!(xml.contains("<Parameter name=\"token\" value=\""), "{xml}");
}

#[tokio::test]
async fn twilio_streams_need_the_token_of_their_call() {
    let s = twilio_stack().await;
    let (_, xml) = post_voice(s.host.addr, Some(&twilio_signature())).await;
    let stream_token = xml
        .split("<Parameter name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the TwiML carries a stream token")
        .to_string();
    // No token, a wrong token, and the right token for another agent are refused.
    assert_eq!(
        stream_close_code(s.host.addr, json!({"agent": "sales"})).await,
        Some(1008)
    );
    let wrong = TwilioAuth::new("another-account-token").mint_stream_token(CALL_SID, Some("sales"));
    assert_eq!(
        stream_close_code(s.host.addr, json!({"agent": "sales", "token": wrong})).await,
        Some(1008)
    );
    assert_eq!(
        stream_close_code(
            s.host.addr,
            json!({"agent": "support", "token": stream_token})
        )
        .await,
        Some(1008)
    );
    // The token the webhook handed out lets the call run until its stop (a normal close).
    assert_eq!(
        stream_close_code(
            s.host.addr,
            json!({"agent": "sales", "token": stream_token})
        )
        .await,
        Some(1000)
    );
}

#[tokio::test]
async fn admin_routes_live_only_on_the_admin_listener() {
    let token = "admin-token-0123456789abcdef0123456789";
    // Admin routes exist when a plug-in is configured.
    let plugin = voice_tests::plugins::component("barge-in-seed");
    let s = stack(&[
        ("ADMIN_TOKEN", token),
        ("ADMIN_BIND", "127.0.0.1:0"),
        ("BARGE_IN_PLUGIN", plugin.to_str().unwrap()),
    ])
    .await;
    let admin = s.host.admin_addr.expect("an admin listener");
    let status = |addr: SocketAddr| async move {
        reqwest::Client::new()
            .get(format!("http://{addr}/admin/plugins"))
            .bearer_auth(token)
            .send()
            .await
            .expect("http request")
            .status()
            .as_u16()
    };
    assert_eq!(status(admin).await, 200, "served on ADMIN_BIND");
    assert_eq!(status(s.host.addr).await, 404, "not on the public port");
}

/// A Twilio stream that sent its `start` with `token` and hears the agent's first audio.
async fn call_in_progress(
    addr: SocketAddr,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/twilio"))
        .await
        .expect("the call's stream is admitted");
    let start = json!({"event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID,
        "start": {"streamSid": STREAM_SID, "callSid": CALL_SID,
                  "customParameters": {"agent": "sales", "token": token},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
    ws.send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    tokio::time::timeout(LONG, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"media\"") => return,
                Some(Ok(_)) => continue,
                other => panic!("the call ended before its greeting: {other:?}"),
            }
        }
    })
    .await
    .expect("the greeting plays");
    ws
}

/// The HTTP status and body of a refused WebSocket upgrade to `path`.
async fn refused_upgrade(addr: SocketAddr, path: &str) -> (u16, String) {
    match tokio_tungstenite::connect_async(format!("ws://{addr}{path}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => (
            resp.status().as_u16(),
            String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(e) => panic!("{path}: not an HTTP refusal: {e}"),
        Ok(_) => panic!("{path}: admitted"),
    }
}

#[tokio::test]
async fn twilio_calls_from_one_address_are_capped_only_until_their_stream_token_checks_out() {
    // One session per address and one new connection a minute: two calls from Twilio's one
    // media-server address still run side by side.
    let s = stack(&[
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("PUBLIC_URL", "https://voice.example.com"),
        ("AUTH_SECRET", SECRET),
        ("GREETING", "Hello, thank you for calling the bakery."),
        ("MAX_SESSIONS_PER_IP", "1"),
        ("CONNECT_RATE_PER_MIN", "1"),
        ("CONNECT_BURST", "1"),
    ])
    .await;
    let addr = s.host.addr;
    let (_, xml) = post_voice(addr, Some(&twilio_signature())).await;
    let token = xml
        .split("<Parameter name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the TwiML carries a stream token")
        .to_string();
    let _first = call_in_progress(addr, &token).await;
    let _second = call_in_progress(addr, &token).await;
    // A stream that has not shown a token yet counts: one is let in, the next is refused.
    let (_silent, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/twilio"))
        .await
        .expect("one stream without a token yet");
    let (status, body) = refused_upgrade(addr, "/twilio").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too_many_sessions"), "{body}");
    // `/agent` from the same address keeps its connection rate.
    assert_eq!(refused_upgrade(addr, "/agent").await.0, 401);
    let (status, body) = refused_upgrade(addr, "/agent").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("rate_limited"), "{body}");
}
