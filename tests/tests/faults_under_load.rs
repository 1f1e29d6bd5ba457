//! Faults under load: fifty sessions converse at once while the fake providers fail beneath
//! them, ten failures a round. After each round every session is still open; a session whose
//! request met a fault the host absorbs (a retried 429 or 500, a skipped malformed chunk, a
//! storm of tool calls) got its whole reply and no error; one whose reply broke (a socket
//! dropped, a stream that stalls) got a documented, non-fatal `error`, the reply's text so far,
//! and an `agent_done`; and the next round works for everyone. Then ten clients vanish
//! mid-reply and the others close: nothing is left open, no session in `/metrics`, no
//! recogniser, completion or speech stream at the fakes.
//!
//! The only test in its binary: `/metrics` is process-wide.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::{OpenAiRequest, OpenAiScript, AFTER_TOOLS};
use voice_tests::host::CloudStack;
use voice_tests::metrics::sessions_become;
use voice_tests::{eventually, Fault, Faults};

const SESSIONS: usize = 50;
/// Faults queued per round: each is taken by the next request or connection of any session.
const FAULTS: usize = 10;
/// Liveness bound for one turn under load (retries wait up to a few seconds).
const LIMIT: Duration = Duration::from_secs(60);
const REPLY: &str = "It is sunny in Paris today.";
/// How long a provider stream may fall silent before the session gives up on it (the host's
/// `LLM_STALL_TIMEOUT_MS` and `TTS_STALL_TIMEOUT_MS`).
const STALL_MS: u64 = 4000;
/// A `retry-after` date this far ahead: whole seconds, so the host waits 2 to 3 s.
const RETRY_DATE: Duration = Duration::from_secs(3);
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

/// Session `i`'s question (each session's own, so the fake's log tells whose request is whose).
fn question(i: usize) -> String {
    format!("what is the weather, asks session {i}")
}

async fn turn(i: usize, c: &mut AgentClient) -> Turn {
    let from = c.messages.len();
    c.send_json(json!({"type": "text", "text": question(i)}))
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
    let turns = join_all(clients.iter_mut().enumerate().map(|(i, c)| turn(i, c))).await;
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

/// How much of a broken reply's text reaches its client.
#[derive(Clone, Copy, PartialEq)]
enum Shown {
    /// All of it: the text was whole before the fault (speech failed).
    Whole,
    /// What the model had said before the fault (the model's stream failed).
    Prefix,
}

/// Checks a faulted round: exactly `expected` replies broke, each told with a documented,
/// non-fatal provider error and ended as interrupted, keeping no more than the reply; the
/// reply's text, or as much as there was, reached every client.
fn contained(what: &str, turns: &[Turn], expected: usize, shown: Shown) {
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
        match shown {
            Shown::Whole => {
                assert_eq!(t.text, REPLY, "{what}: the reply's text reached the client")
            }
            Shown::Prefix => assert!(REPLY.starts_with(&t.text), "{what}: {t:#?}"),
        }
    }
}

/// Every request the model refused with a `retry-after` date was tried again no sooner than
/// the date allows (whole seconds: at least `RETRY_DATE` less one second).
fn retried_after_the_date(requests: &[OpenAiRequest]) {
    let refused: Vec<&OpenAiRequest> = requests
        .iter()
        .filter(|r| r.outcome.as_deref() == Some("status 429"))
        .collect();
    assert_eq!(refused.len(), FAULTS);
    for r in refused {
        let asked = last_user_text(r);
        let retry = requests
            .iter()
            .find(|n| n.at > r.at && last_user_text(n) == asked)
            .unwrap_or_else(|| panic!("{asked:?} was never tried again"));
        let waited = retry.at - r.at;
        assert!(
            waited >= RETRY_DATE - Duration::from_secs(1),
            "{asked:?} tried again after {waited:?}, before its retry-after date"
        );
    }
}

fn last_user_text(r: &OpenAiRequest) -> String {
    r.body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
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
            ("LLM_STALL_TIMEOUT_MS", &STALL_MS.to_string()),
            ("TTS_STALL_TIMEOUT_MS", &STALL_MS.to_string()),
            // A socket per reply: the fake strikes a queued fault at the next connection, and a
            // session's multi-context socket, opened in the first round, would meet none. That
            // transport's faults are in `e2e/elevenlabs_session.rs`.
            ("ELEVENLABS_TRANSPORT", "stream-input"),
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
    // (fault, where, replies it breaks, text shown): retried or skipped faults break none;
    // audio cut after it began playing cannot be taken back, nor can a stalled stream wait.
    let cases = [
        (
            "LLM 429 with retry-after",
            llm,
            Fault::Status {
                code: 429,
                retry_after: Some(Duration::from_secs(1)),
            },
            0,
            Shown::Whole,
        ),
        (
            "LLM 429 with retry-after as an HTTP date",
            llm,
            Fault::RetryAt {
                code: 429,
                after: RETRY_DATE,
            },
            0,
            Shown::Whole,
        ),
        (
            "LLM 500 then success",
            llm,
            server_error.clone(),
            0,
            Shown::Whole,
        ),
        (
            "LLM malformed chunk",
            llm,
            Fault::Malformed,
            0,
            Shown::Whole,
        ),
        (
            "LLM stream cut before a sentence",
            llm,
            Fault::DropMidStream { after: 2 },
            0,
            Shown::Whole,
        ),
        (
            "LLM error event mid-stream",
            llm,
            Fault::StreamError { after: 1 },
            0,
            Shown::Whole,
        ),
        (
            "LLM storm of tool calls",
            llm,
            Fault::ToolStorm { calls: 40 },
            0,
            Shown::Whole,
        ),
        (
            "LLM stream that stalls",
            llm,
            Fault::Stall { after: 3 },
            FAULTS,
            Shown::Prefix,
        ),
        ("TTS error status", tts, server_error, 0, Shown::Whole),
        (
            "TTS socket dropped mid-sentence",
            tts,
            Fault::DropMidStream { after: 1 },
            FAULTS,
            Shown::Whole,
        ),
        (
            "TTS stream that never finishes",
            tts,
            Fault::Stall { after: 1 },
            FAULTS,
            Shown::Whole,
        ),
    ];
    for (what, faults, fault, breaks, shown) in cases {
        let since = Instant::now();
        let turns = round_with(&mut clients, faults, fault.clone()).await;
        if matches!(fault, Fault::ToolStorm { .. }) {
            // Not a failure: the model's answer after its tools failed is the reply.
            let after_tools = turns
                .iter()
                .filter(|t| {
                    t.done["text"] == AFTER_TOOLS
                        && t.text == AFTER_TOOLS
                        && t.done["interrupted"] == false
                        && t.errors.is_empty()
                })
                .count();
            assert_eq!(after_tools, FAULTS, "{what}: {turns:#?}");
            let rest: Vec<Turn> = turns
                .into_iter()
                .filter(|t| t.done["text"] != AFTER_TOOLS)
                .collect();
            contained(what, &rest, breaks, shown);
            for t in &rest {
                assert!(t.errors.is_empty(), "{what}: {t:#?}");
            }
        } else {
            contained(what, &turns, breaks, shown);
        }
        let requests: Vec<OpenAiRequest> = s
            .openai
            .requests()
            .into_iter()
            .filter(|r| r.at >= since)
            .collect();
        match fault {
            Fault::RetryAt { .. } => retried_after_the_date(&requests),
            Fault::ToolStorm { calls } => {
                // Every call of each storm was answered (the fake refuses a request that leaves
                // one unanswered), in the request that followed it.
                let answered = requests
                    .iter()
                    .filter(|r| {
                        r.body["messages"].as_array().is_some_and(|m| {
                            m.iter().filter(|m| m["role"] == "tool").count() == calls
                        })
                    })
                    .count();
                assert_eq!(answered, FAULTS, "{what}");
            }
            _ => {}
        }
        // And everyone's next turn is whole.
        absorbed(&format!("after {what}"), &round(&mut clients).await);
    }

    // Ten clients vanish mid-reply (no close frame): their sessions end and every provider
    // stream they had open is closed.
    let gone = 10;
    for (i, c) in clients.iter_mut().enumerate().take(gone) {
        c.send_json(json!({"type": "text", "text": question(i)}))
            .await;
    }
    for c in clients.iter_mut().take(gone) {
        c.expect_type("agent_text", LIMIT).await;
    }
    let vanished = Instant::now();
    drop(clients.drain(..gone));
    let addr = s.host.addr;
    sessions_become(addr, (SESSIONS - gone) as u64, LIMIT).await;
    eventually("the vanished sessions' streams closed", LIMIT, || {
        let recognisers_ended = s
            .deepgram
            .connections()
            .iter()
            .filter(|c| c.ended.is_some())
            .count();
        recognisers_ended == gone
            && s.elevenlabs.requests().iter().all(|r| r.ended.is_some())
            && s.openai.requests().iter().all(|r| r.outcome.is_some())
    })
    .await;
    // How soon, for docs/reliability.md (`--nocapture`); the bound above is only liveness.
    eprintln!(
        "the vanished sessions' provider streams were closed {:?} after their clients went",
        vanished.elapsed()
    );

    // The others close; nothing is left open.
    for c in &mut clients {
        c.send_json(json!({"type": "stop"})).await;
    }
    for c in &mut clients {
        assert_eq!(c.expect_close(LIMIT).await.0, 1000);
    }
    sessions_become(addr, 0, LIMIT).await;
    eventually("every recogniser stream closed", LIMIT, || {
        s.deepgram.connections().iter().all(|c| c.ended.is_some())
    })
    .await;
    assert_eq!(s.deepgram.connections().len(), SESSIONS);
}
