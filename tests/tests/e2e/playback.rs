//! `playback` reports over `/agent`: a client that says how much of the reply it has really
//! played moves what the host believes was heard (the interrupted `agent_done` text and what
//! the agent remembers), a report about another reply changes nothing, and a malformed report
//! gets a non-fatal `bad_message`.

use serde_json::{json, Value};
use std::time::Duration;
use voice_tests::agent_client::{AgentClient, Received};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::{synth::MS_PER_CHAR, ElevenLabsScript};
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;

const LIMIT: Duration = Duration::from_secs(30);
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him. He read them all winter long.";
const ANSWER: &str = "Here is my answer.";
/// PCM16 at 16 kHz: bytes of one millisecond of agent audio.
const BYTES_PER_MS: usize = 32;
/// Agent audio the client holds before it reports and interrupts.
const RECEIVED_MS: usize = 4000;
/// The default `AUDIO_LEAD_MS`: audio may be received this far ahead of being played.
const LEAD_MS: usize = 200;
/// What the reports in these tests say was played.
const REPORTED_MS: u64 = 1200;

fn pcm16k() -> Value {
    json!({"encoding": "pcm16", "sample_rate": 16000})
}

async fn stack() -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default()
            .reply("story", STORY)
            .reply("question", ANSWER),
        ElevenLabsScript::default(),
        &[],
    )
    .await
}

/// Asks for the story, reads until `RECEIVED_MS` of its audio arrived, sends `report` (built
/// from the story's turn) if any, then interrupts with a typed turn. Returns the story's
/// interrupted `agent_done` text.
async fn heard_when_interrupted(
    s: &CloudStack,
    report: Option<fn(u64) -> Value>,
) -> (String, AgentClient) {
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    c.send_json(json!({"type": "text", "text": "tell me a story"}))
        .await;
    let story = c.expect_type("agent_text", LIMIT).await["turn"]
        .as_u64()
        .unwrap();
    while c.audio.len() < RECEIVED_MS * BYTES_PER_MS {
        match c.next(LIMIT).await {
            Some(Received::Closed { code, .. }) => panic!("closed {code}: {:?}", c.messages),
            Some(_) => {}
            None => panic!("the story's audio stopped: {:?}", c.messages),
        }
    }
    if let Some(report) = report {
        c.send_json(report(story)).await;
    }
    c.send_json(json!({"type": "text", "text": "a question"}))
        .await;
    let done = c
        .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == story)
        .await
        .unwrap_or_else(|| panic!("the story never ended: {:?}", c.messages));
    assert_eq!(done["interrupted"], true, "{done}");
    let heard = done["text"].as_str().unwrap().to_string();
    assert!(STORY.starts_with(&heard), "{heard:?} is not what was said");
    (heard, c)
}

/// Without a report the host counts as heard all the audio sent but the lead the client may
/// still hold: at least this many characters of the story (one word of slack for the cut).
fn least_heard_by_pacing() -> usize {
    (RECEIVED_MS - LEAD_MS) / MS_PER_CHAR as usize - 10
}

#[tokio::test]
async fn a_playback_report_sets_what_was_heard_and_what_is_remembered() {
    let s = stack().await;
    let (heard, mut c) = heard_when_interrupted(
        &s,
        Some(|_| json!({"type": "playback", "played_ms": REPORTED_MS})),
    )
    .await;
    // The client played 1.2 s (then a moment more until the interrupt): the first 20
    // characters' time, 16 of them letters, and far less than the pacing alone would credit.
    assert!(heard.starts_with("Once upon a time"), "{heard:?}");
    assert!(
        heard.len() < least_heard_by_pacing(),
        "{heard:?} follows the pacing, not the report"
    );
    // The agent remembers having said only that.
    let answered = c
        .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["text"] == ANSWER)
        .await;
    assert!(answered.is_some(), "{:?}", c.messages);
    let last = s
        .openai
        .requests()
        .pop()
        .expect("the question reached the LLM");
    let remembered: Vec<&Value> = last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    assert_eq!(remembered.len(), 1, "{}", last.body);
    assert_eq!(remembered[0]["content"], heard.as_str());
}

#[tokio::test]
async fn a_report_naming_the_reply_counts_and_one_naming_another_is_ignored() {
    let s = stack().await;
    let named = heard_when_interrupted(
        &s,
        Some(|turn| json!({"type": "playback", "turn": turn, "played_ms": REPORTED_MS})),
    );
    let other = heard_when_interrupted(
        &s,
        Some(|turn| json!({"type": "playback", "turn": turn + 7, "played_ms": REPORTED_MS})),
    );
    let unreported = heard_when_interrupted(&s, None);
    let ((named, _), (other, _), (unreported, _)) = tokio::join!(named, other, unreported);
    assert!(named.starts_with("Once upon a time"), "{named:?}");
    assert!(named.len() < least_heard_by_pacing(), "{named:?}");
    for heard in [&other, &unreported] {
        assert!(
            heard.len() >= least_heard_by_pacing() && heard.len() < STORY.len(),
            "{heard:?} should follow the pacing"
        );
    }
}

#[tokio::test]
async fn a_malformed_playback_report_is_an_error_and_the_session_goes_on() {
    let s = stack().await;
    let mut c = AgentClient::start(s.host.addr, pcm16k(), None).await;
    for bad in [
        json!({"type": "playback"}),
        json!({"type": "playback", "played_ms": "soon"}),
        json!({"type": "playback", "played_ms": -5}),
        json!({"type": "playback", "played_ms": 10, "turn": "first"}),
    ] {
        c.send_json(bad.clone()).await;
        let e = c.expect_type("error", LIMIT).await;
        assert_eq!(e["code"], "bad_message", "{bad}: {e}");
        assert_eq!(e["fatal"], false, "{bad}: {e}");
        assert!(e["message"]
            .as_str()
            .is_some_and(|m| m.contains("playback")));
    }
    // A well-formed report with no reply playing is accepted silently, and the session serves.
    c.send_json(json!({"type": "playback", "played_ms": 0}))
        .await;
    c.send_json(json!({"type": "text", "text": "a question"}))
        .await;
    let done = c.expect_type("agent_done", LIMIT).await;
    assert_eq!(done["text"], ANSWER);
    assert_eq!(done["interrupted"], false);
    assert_eq!(c.of_type("error").len(), 4, "{:?}", c.messages);
    assert!(c.closed.is_none());
}
