//! Faults under load: fifty sessions converse at once while the fake providers fail beneath
//! them, ten failures a round. After each round every session is still open; a session whose
//! request met a fault the host absorbs (a retried 429 or 500, a skipped malformed chunk) got
//! its whole reply and no error; one whose reply broke got a documented, non-fatal `error`, the
//! reply's text so far, and an `agent_done`; and the next round works for everyone. Then ten
//! clients vanish mid-reply and the others close: nothing is left open, no session in
//! `/metrics`, no recogniser or speech stream at the fakes.
//!
//! The only test in its binary: `/metrics` is process-wide.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::metrics::metric;
use voice_tests::{eventually, Fault, Faults};

const SESSIONS: usize = 50;
/// Faults queued per round: each is taken by the next request or connection of any session.
const FAULTS: usize = 10;
/// Liveness bound for one turn under load (retries wait up to a few seconds).
const LIMIT: Duration = Duration::from_secs(60);
const REPLY: &str = "It is sunny in Paris today.";
/// Error codes a provider failure may give the client (docs/protocol.md).
const PROVIDER_CODES: [&str; 4] = [
    "provider_unavailable",
    "provider_error",
    "provider_rejected",
    "provider_auth",
];

/// What one session saw of one turn.
#[derive(Debug)]
struct Turn {
    done: Value,
    errors: Vec<Value>,
    text: String,
}

impl Turn {
    fn whole(&self) -> bool {
        self.done["interrupted"] == false && self.done["text"] == REPLY && self.errors.is_empty()
    }
}

async fn turn(c: &mut AgentClient) -> Turn {
    let from = c.messages.len();
    c.send_json(json!({"type": "text", "text": "what is the weather"}))
        .await;
    let done = c
        .wait_for(LIMIT, |v| v["type"] == "agent_done")
        .await
        .unwrap_or_else(|| panic!("no agent_done; got {:?}", &c.messages[from..]));
    let seen = &c.messages[from..];
    Turn {
        errors: seen
            .iter()
            .filter(|v| v["type"] == "error")
            .cloned()
            .collect(),
        text: seen
            .iter()
            .filter(|v| v["type"] == "agent_text")
            .filter_map(|v| v["delta"].as_str())
            .collect(),
        done,
    }
}

/// Every session takes a turn at once.
async fn round(clients: &mut [AgentClient]) -> Vec<Turn> {
    let turns = join_all(clients.iter_mut().map(turn)).await;
    for (i, c) in clients.iter().enumerate() {
        assert!(c.closed.is_none(), "session {i} was closed: {:?}", c.closed);
    }
    turns
}

/// Queues `fault` `FAULTS` times on `faults`, runs a round, and checks that every fault was met.
async fn round_with(clients: &mut [AgentClient], faults: &Faults, fault: Fault) -> Vec<Turn> {
    for _ in 0..FAULTS {
        faults.push(fault.clone());
    }
    let turns = round(clients).await;
    assert_eq!(faults.next(), None, "{fault:?}: some faults were never met");
    turns
}

/// A round whose faults the host rides out: every session got its whole reply, no error.
fn absorbed(what: &str, turns: &[Turn]) {
    let broken: Vec<&Turn> = turns.iter().filter(|t| !t.whole()).collect();
    assert!(broken.is_empty(), "{what}: {broken:#?}");
}

/// Checks a faulted round: exactly `expected` replies broke, each told with a documented,
/// non-fatal provider error and ended as interrupted, keeping no more than the reply; the
/// reply's text reached every client.
fn contained(what: &str, turns: &[Turn], expected: usize) {
    let broken: Vec<&Turn> = turns.iter().filter(|t| !t.whole()).collect();
    assert_eq!(broken.len(), expected, "{what}: {broken:#?}");
    for t in &broken {
        assert!(
            !t.errors.is_empty(),
            "{what}: broken without an error: {t:#?}"
        );
        for e in &t.errors {
            assert!(
                PROVIDER_CODES.contains(&e["code"].as_str().unwrap_or_default())
                    && e["fatal"] == false,
                "{what}: {e}"
            );
        }
        assert_eq!(t.done["interrupted"], true, "{what}: {t:#?}");
        assert!(
            REPLY.starts_with(t.done["text"].as_str().unwrap()),
            "{what}: remembered more than the reply: {t:#?}"
        );
        assert_eq!(t.text, REPLY, "{what}: the reply's text reached the client");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_ride_out_provider_faults_and_leave_nothing_open() {
    let s = CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default().reply("weather", REPLY),
        ElevenLabsScript::default(),
        &[
            ("MAX_SESSIONS_PER_IP", "0"),
            ("CONNECT_RATE_PER_MIN", "0"),
            ("TEXT_TURNS_PER_MIN", "0"),
        ],
    )
    .await;
    let pcm = json!({"encoding": "pcm16", "sample_rate": 16000});
    let mut clients =
        join_all((0..SESSIONS).map(|_| AgentClient::start(s.host.addr, pcm.clone(), None))).await;
    absorbed("no fault", &round(&mut clients).await);
    let llm = s.openai.faults();
    let tts = s.elevenlabs.faults();
    let server_error = Fault::Status {
        code: 500,
        retry_after: None,
    };
    // (fault, where, replies it breaks): retried or skipped faults break none; audio cut
    // after it began playing cannot be taken back.
    let cases = [
        (
            "LLM 429 with retry-after",
            llm,
            Fault::Status {
                code: 429,
                retry_after: Some(Duration::from_secs(1)),
            },
            0,
        ),
        ("LLM 500 then success", llm, server_error.clone(), 0),
        ("LLM malformed chunk", llm, Fault::Malformed, 0),
        (
            "LLM stream cut before a sentence",
            llm,
            Fault::DropMidStream { after: 2 },
            0,
        ),
        (
            "LLM error event mid-stream",
            llm,
            Fault::StreamError { after: 1 },
            0,
        ),
        ("TTS error status", tts, server_error, 0),
        (
            "TTS socket dropped mid-sentence",
            tts,
            Fault::DropMidStream { after: 1 },
            FAULTS,
        ),
    ];
    for (what, faults, fault, breaks) in cases {
        contained(what, &round_with(&mut clients, faults, fault).await, breaks);
        // And everyone's next turn is whole.
        absorbed(&format!("after {what}"), &round(&mut clients).await);
    }

    // Ten clients vanish mid-reply (no close frame): their sessions end and every provider
    // stream they had open is closed.
    let gone = 10;
    for c in clients.iter_mut().take(gone) {
        c.send_json(json!({"type": "text", "text": "what is the weather"}))
            .await;
    }
    for c in clients.iter_mut().take(gone) {
        c.expect_type("agent_text", LIMIT).await;
    }
    drop(clients.drain(..gone));
    let addr = s.host.addr;
    sessions_become(addr, SESSIONS - gone).await;
    eventually("the vanished sessions' streams closed", LIMIT, || {
        let recognisers_ended = s
            .deepgram
            .connections()
            .iter()
            .filter(|c| c.ended.is_some())
            .count();
        recognisers_ended == gone && s.elevenlabs.requests().iter().all(|r| r.ended.is_some())
    })
    .await;

    // The others close; nothing is left open.
    for c in &mut clients {
        c.send_json(json!({"type": "stop"})).await;
    }
    for c in &mut clients {
        assert_eq!(c.expect_close(LIMIT).await.0, 1000);
    }
    sessions_become(addr, 0).await;
    eventually("every recogniser stream closed", LIMIT, || {
        s.deepgram.connections().iter().all(|c| c.ended.is_some())
    })
    .await;
    assert_eq!(s.deepgram.connections().len(), SESSIONS);
}

/// Waits until `/metrics` counts `n` active sessions; panics after [`LIMIT`].
async fn sessions_become(addr: std::net::SocketAddr, n: usize) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let active = metric(addr, "voice_sessions_active").await;
        if active == n as u64 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{active} sessions active, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
