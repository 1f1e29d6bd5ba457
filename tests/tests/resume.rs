//! Session resume: a client whose connection drops reconnects with the `session_id` and
//! `resume_token` of its `ready` and keeps its conversation; to another replica when they share
//! Redis. A used, wrong or expired token, a session ended with `stop`, and a store that is down
//! each start a new session with a code saying why.
//!
//! The tests of this file run one at a time: they wait for the host's `voice_sessions_active`
//! (one counter per test process) to come back down, which is when a dropped session's last
//! words are stored.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::Mutex;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::redis::Redis;

const LIMIT: Duration = Duration::from_secs(30);
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him. He read them all winter long.";
/// PCM16 at 16 kHz: bytes of one millisecond of agent audio.
const BYTES_PER_MS: usize = 32;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn stack(extra: &[(&str, &str)]) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(Vec::<String>::new()),
        OpenAiScript::default().reply("story", STORY),
        ElevenLabsScript::default(),
        extra,
    )
    .await
}

/// Opens `/agent` and sends `start` (with `resume` when given); returns the client and `ready`.
async fn open(addr: SocketAddr, resume: Option<&Value>) -> (AgentClient, Value) {
    let mut c = AgentClient::connect(addr, None).await.expect("upgrade");
    let mut start = json!({"type": "start", "audio": {"encoding": "pcm16", "sample_rate": 16000}});
    if let Some(r) = resume {
        start["resume"] = r.clone();
    }
    c.send_json(start).await;
    let ready = c.expect_type("ready", LIMIT).await;
    (c, ready)
}

/// The `resume` object a client sends after `ready`.
fn resume_of(ready: &Value) -> Value {
    json!({"session_id": ready["session_id"], "token": ready["resume_token"]})
}

/// One typed turn, answered; returns its `agent_done`.
async fn turn(c: &mut AgentClient, text: &str) -> Value {
    c.send_json(json!({"type": "text", "text": text})).await;
    c.expect_type("agent_done", LIMIT).await
}

/// Sessions open in this process (all hosts of the test).
async fn active(addr: SocketAddr) -> u64 {
    voice_tests::metrics::metric(addr, "voice_sessions_active").await
}

/// Waits until only `baseline` sessions are open (sessions of earlier tests whose runtime
/// ended without closing them stay counted): the dropped session's last write is done.
async fn sessions_ended(addr: SocketAddr, baseline: u64) {
    for _ in 0..200 {
        if active(addr).await <= baseline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sessions still open after 10 s");
}

/// The error a fresh session got instead of resuming, after checking its `ready`.
async fn refused(c: &mut AgentClient, ready: &Value, old_id: &Value) -> String {
    assert_eq!(ready["resumed"], false, "{ready}");
    assert_ne!(&ready["session_id"], old_id, "a new session: {ready}");
    let e = c.expect_type("error", LIMIT).await;
    e["code"].as_str().unwrap_or_default().to_string()
}

/// The messages of the newest LLM request.
fn last_llm_messages(s: &CloudStack) -> Vec<(String, String)> {
    let requests = s.openai.requests();
    let body = &requests.last().expect("an LLM request").body;
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_resumes_with_its_memory_and_turn_numbers_and_its_token_works_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let s = stack(&[]).await;
    let addr = s.host.addr;
    let base = active(addr).await;
    let (mut a, ready) = open(addr, None).await;
    assert_eq!(ready["resumed"], false);
    let token = ready["resume_token"].as_str().expect("a resume token");
    assert!(token.len() >= 43, "256 bits: {token}");
    let first = turn(&mut a, "my name is Ada").await;
    a.close().await;
    sessions_ended(addr, base).await;

    let (mut b, again) = open(addr, Some(&resume_of(&ready))).await;
    assert_eq!(again["resumed"], true, "{again}");
    assert_eq!(again["session_id"], ready["session_id"]);
    assert_ne!(
        again["resume_token"], ready["resume_token"],
        "a new token each time"
    );
    assert!(b.of_type("error").is_empty(), "{:?}", b.messages);
    let second = turn(&mut b, "what is my name").await;
    assert!(
        second["turn"].as_u64() > first["turn"].as_u64(),
        "turn numbers go on: {first} then {second}"
    );
    let messages = last_llm_messages(&s);
    assert!(
        messages.contains(&("user".into(), "my name is Ada".into())),
        "the resumed session remembers the user: {messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|(r, c)| r == "assistant" && c.contains("You said: my name is Ada")),
        "and its own reply: {messages:?}"
    );
    b.close().await;
    sessions_ended(addr, base).await;

    // The first token was used: refused, and a new session starts.
    let (mut c, third) = open(addr, Some(&resume_of(&ready))).await;
    assert_eq!(
        refused(&mut c, &third, &ready["session_id"]).await,
        "resume_rejected"
    );
    let fresh = turn(&mut c, "hello").await;
    assert_eq!(
        fresh["interrupted"], false,
        "the new session works: {fresh}"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_by_the_drop_is_remembered_as_far_as_it_was_heard() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let s = stack(&[]).await;
    let addr = s.host.addr;
    let base = active(addr).await;
    let (mut a, ready) = open(addr, None).await;
    a.send_json(json!({"type": "text", "text": "tell me a story"}))
        .await;
    // About a second of the story reaches the client, then its connection drops.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while a.audio.len() < 1000 * BYTES_PER_MS {
        assert!(tokio::time::Instant::now() < deadline, "no story audio");
        a.next(LIMIT).await;
    }
    drop(a);
    sessions_ended(addr, base).await;

    let (mut b, again) = open(addr, Some(&resume_of(&ready))).await;
    assert_eq!(again["resumed"], true, "{again}");
    turn(&mut b, "go on").await;
    let messages = last_llm_messages(&s);
    let heard = messages
        .iter()
        .rev()
        .find(|(r, _)| r == "assistant")
        .map(|(_, c)| c.clone())
        .unwrap_or_else(|| panic!("the story is in memory: {messages:?}"));
    assert!(
        !heard.is_empty() && STORY.starts_with(&heard) && heard.len() < STORY.len() / 2,
        "memory keeps what was heard of the cut reply, not all of it: {heard:?}"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_unknown_and_expired_sessions_start_fresh_with_a_code() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let s = stack(&[("RESUME_TTL_S", "1")]).await;
    let addr = s.host.addr;
    let base = active(addr).await;

    // `stop` ends the conversation for good.
    let (mut a, ready) = open(addr, None).await;
    turn(&mut a, "remember the number four").await;
    a.send_json(json!({"type": "stop"})).await;
    a.expect_close(LIMIT).await;
    sessions_ended(addr, base).await;
    let (mut b, again) = open(addr, Some(&resume_of(&ready))).await;
    assert_eq!(
        refused(&mut b, &again, &ready["session_id"]).await,
        "resume_expired"
    );
    b.close().await;

    // A session nobody knows.
    let unknown = json!({"session_id": "no-such-session", "token": "x"});
    let (mut c, fresh) = open(addr, Some(&unknown)).await;
    assert_eq!(
        refused(&mut c, &fresh, &json!("no-such-session")).await,
        "resume_expired"
    );
    c.close().await;

    // A dropped session past RESUME_TTL_S.
    let (mut d, ready) = open(addr, None).await;
    turn(&mut d, "remember the number five").await;
    d.close().await;
    sessions_ended(addr, base).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (mut e, late) = open(addr, Some(&resume_of(&ready))).await;
    assert_eq!(
        refused(&mut e, &late, &ready["session_id"]).await,
        "resume_expired"
    );
    e.close().await;

    // With RESUME_TTL_S=0 no token is handed out, and a resume is refused as unavailable.
    let off = s.another_host(&[("RESUME_TTL_S", "0")]).await;
    let (f, plain) = open(off.addr, None).await;
    assert!(plain.get("resume_token").is_none(), "{plain}");
    f.close().await;
    let (mut g, tried) = open(off.addr, Some(&unknown)).await;
    assert_eq!(
        refused(&mut g, &tried, &json!("no-such-session")).await,
        "resume_unavailable"
    );
    g.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_another_host_sharing_redis_and_a_down_store_only_costs_the_resume() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(redis) = Redis::start().await else {
        return;
    };
    let shared = [("REDIS_URL", redis.url.as_str())];
    let s = stack(&shared).await;
    let a_addr = s.host.addr;
    let base = active(a_addr).await;
    let b = s.another_host(&shared).await;
    let alone = s.another_host(&[]).await;

    let (mut a, ready) = open(a_addr, None).await;
    turn(&mut a, "my name is Grace").await;
    a.close().await;
    sessions_ended(a_addr, base).await;

    // A host keeping records in its own memory knows nothing of it.
    let (mut x, other) = open(alone.addr, Some(&resume_of(&ready))).await;
    assert_eq!(
        refused(&mut x, &other, &ready["session_id"]).await,
        "resume_expired"
    );
    x.close().await;

    // The replica sharing Redis goes on with the conversation.
    let (mut c, again) = open(b.addr, Some(&resume_of(&ready))).await;
    assert_eq!(again["resumed"], true, "{again}");
    assert_eq!(again["session_id"], ready["session_id"]);
    turn(&mut c, "what is my name").await;
    let messages = last_llm_messages(&s);
    assert!(
        messages.contains(&("user".into(), "my name is Grace".into())),
        "the memory came through Redis: {messages:?}"
    );
    c.close().await;
    sessions_ended(a_addr, base).await;

    // The token host B handed out works on host A; the first one, used on B, does not.
    let (d, back) = open(a_addr, Some(&resume_of(&again))).await;
    assert_eq!(back["resumed"], true, "{back}");
    d.close().await;
    sessions_ended(a_addr, base).await;
    let (mut reused, stale) = open(a_addr, Some(&resume_of(&ready))).await;
    assert_eq!(
        refused(&mut reused, &stale, &ready["session_id"]).await,
        "resume_rejected"
    );
    reused.close().await;
    sessions_ended(a_addr, base).await;

    // Redis goes away: a resume is refused as unavailable and the new session still talks.
    drop(redis);
    let (mut e, down) = open(b.addr, Some(&resume_of(&back))).await;
    assert_eq!(
        refused(&mut e, &down, &ready["session_id"]).await,
        "resume_unavailable"
    );
    let answered = turn(&mut e, "hello").await;
    assert_eq!(answered["interrupted"], false, "{answered}");
    e.close().await;
}
