//! Speech-to-text faults under load: fifty sessions speak at once, each through a real-time
//! microphone, while the fake Deepgram fails beneath ten of them a round. In every round each
//! session stays open, hears no error, has its words transcribed and answered in full; when the
//! sessions end, the fake sees every recogniser stream closed and `/metrics` no session.
//!
//! - Handshake refused (500): the stream connects again; nothing said is lost.
//! - Stream dropped mid-utterance: it reconnects and sends again the audio no final result
//!   covered, so each utterance is still transcribed from its first word to its last.
//! - A malformed message: skipped.
//! - Silence longer than Deepgram's idle timeout (microphones paused): `KeepAlive` holds every
//!   stream open, and the next words are heard.
//!
//! The only test in its binary: `/metrics` is process-wide.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;
use voice_tests::fake_deepgram::{DeepgramConnection, DeepgramScript};
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::metrics::sessions_become;
use voice_tests::microphone::Microphone;
use voice_tests::{eventually, speech, Fault};

const SESSIONS: usize = 50;
/// Faults queued per round: each is taken by the next recogniser connection of any session.
const FAULTS: usize = 10;
const WORDS: &str = "what is the weather";
const REPLY: &str = "It is sunny in Paris today.";
/// Length of each utterance.
const SPEECH_MS: u32 = 1000;
const LIMIT: Duration = Duration::from_secs(60);

/// Every session says its question at once; each must be transcribed and answered in full,
/// with no error.
async fn speak(what: &str, mics: &mut [Microphone]) {
    join_all(mics.iter_mut().enumerate().map(|(i, m)| async move {
        m.say(&speech::utterance(SPEECH_MS, 600));
        let heard = m
            .until("the final transcript", |v| {
                v["type"] == "transcript" && v["final"] == true
            })
            .await;
        let text = heard["text"].as_str().unwrap_or_default().to_lowercase();
        assert!(text.contains(WORDS), "{what}: session {i} heard {heard}");
        let turn = heard["turn"].as_u64();
        let done = m
            .until("the answer", |v| {
                v["type"] == "agent_done" && v["turn"].as_u64() == turn
            })
            .await;
        assert_eq!(done["interrupted"], false, "{what}: session {i}: {done}");
        assert_eq!(done["text"], REPLY, "{what}: session {i}");
        let errors: Vec<&Value> = m.of_type("error");
        assert!(errors.is_empty(), "{what}: session {i}: {errors:?}");
    }))
    .await;
}

/// The sessions end; their recogniser streams close and no session is left.
async fn end(s: &CloudStack, mics: Vec<Microphone>) {
    for m in &mics {
        m.send(json!({"type": "stop"}));
    }
    sessions_become(s.host.addr, 0, LIMIT).await;
    drop(mics);
    eventually("every recogniser stream closed", LIMIT, || {
        s.deepgram.connections().iter().all(|c| c.ended.is_some())
    })
    .await;
}

/// Recogniser connections opened since `from`.
fn since(s: &CloudStack, from: usize) -> Vec<DeepgramConnection> {
    s.deepgram.connections().split_off(from)
}

/// Shortest span, first word to last, of the final results `connections` sent (ms).
fn shortest_final(connections: &[DeepgramConnection]) -> f64 {
    connections
        .iter()
        .flat_map(|c| &c.sent)
        .filter(|m| m["type"] == "Results" && m["is_final"] == true)
        .filter_map(|m| {
            let words = m["channel"]["alternatives"][0]["words"].as_array()?;
            let first = words.first()?["start"].as_f64()?;
            let last = words.last()?["end"].as_f64()?;
            Some((last - first) * 1000.0)
        })
        .fold(f64::INFINITY, f64::min)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_speaking_sessions_ride_out_recogniser_faults() {
    let s = CloudStack::start(
        DeepgramScript {
            fallback: WORDS.into(),
            ..Default::default()
        },
        OpenAiScript::default().reply("weather", REPLY),
        ElevenLabsScript::default(),
        &[("MAX_SESSIONS_PER_IP", "0"), ("CONNECT_RATE_PER_MIN", "0")],
    )
    .await;
    let addr = s.host.addr;
    let faults = s.deepgram.faults();

    // Handshake refused.
    let from = s.deepgram.connections().len();
    for _ in 0..FAULTS {
        faults.push(Fault::Status {
            code: 500,
            retry_after: None,
        });
    }
    let mut mics = Microphone::many_ready(addr, SESSIONS).await;
    speak("handshake refused", &mut mics).await;
    assert_eq!(faults.next(), None, "every refusal was met");
    let opened = since(&s, from);
    assert_eq!(
        opened.iter().filter(|c| c.refused == Some(500)).count(),
        FAULTS
    );
    assert_eq!(opened.len(), SESSIONS + FAULTS, "one retry per refusal");
    end(&s, mics).await;

    // Dropped mid-utterance, 400 ms into the words.
    let from = s.deepgram.connections().len();
    for _ in 0..FAULTS {
        faults.push(Fault::DropMidUtterance { after_ms: 400 });
    }
    let mut mics = Microphone::many_ready(addr, SESSIONS).await;
    speak("dropped mid-utterance", &mut mics).await;
    let opened = since(&s, from);
    let dropped = opened
        .iter()
        .filter(|c| c.ended.as_deref() == Some("dropped-by-fault"))
        .count();
    assert_eq!(dropped, FAULTS);
    // The audio before the drop was sent again: no final covers less than the utterance.
    let shortest = shortest_final(&opened);
    assert!(
        shortest >= f64::from(SPEECH_MS) * 0.9,
        "a final result covers only {shortest} ms of a {SPEECH_MS} ms utterance"
    );
    end(&s, mics).await;

    // A malformed message from the recogniser.
    for _ in 0..FAULTS {
        faults.push(Fault::Malformed);
    }
    let mut mics = Microphone::many_ready(addr, SESSIONS).await;
    speak("malformed message", &mut mics).await;
    assert_eq!(faults.next(), None, "every malformed message was sent");
    end(&s, mics).await;

    // Silence past the idle timeout: the microphones pause, the streams stay open.
    let from = s.deepgram.connections().len();
    let mut mics = Microphone::many_ready(addr, SESSIONS).await;
    for m in &mics {
        m.mute(true);
    }
    tokio::time::sleep(DeepgramScript::default().idle_timeout + Duration::from_secs(1)).await;
    let opened = since(&s, from);
    assert_eq!(opened.len(), SESSIONS);
    for c in &opened {
        assert_eq!(c.ended, None, "a stream closed while the user was silent");
        assert!(c.control.iter().any(|k| k == "KeepAlive"), "{c:?}");
    }
    for m in &mics {
        m.mute(false);
    }
    speak("after a long silence", &mut mics).await;
    assert_eq!(
        since(&s, from).len(),
        SESSIONS,
        "no stream had to reconnect"
    );
    end(&s, mics).await;
}
