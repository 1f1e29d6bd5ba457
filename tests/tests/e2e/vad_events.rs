//! What the host says about the session and the user's voice: `ready` carries the protocol
//! version and the output format, and spoken audio yields one `vad` `speech_start` and one
//! `speech_end`, in order, on the audio clock, before the turn's final transcript.

use serde_json::{json, Value};
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::microphone::Microphone;
use voice_tests::speech;

const LIMIT: Duration = Duration::from_secs(30);

async fn stack(extra: &[(&str, &str)]) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default(),
        ElevenLabsScript::default(),
        extra,
    )
    .await
}

#[tokio::test]
async fn ready_names_protocol_1_and_the_output_format() {
    let s = stack(&[]).await;
    let mut c = AgentClient::connect(s.host.addr, None).await.unwrap();
    c.send_json(json!({
        "type": "start",
        "audio": {"encoding": "pcm16", "sample_rate": 16000},
        "output": {"encoding": "mulaw", "sample_rate": 8000},
    }))
    .await;
    let ready = c.expect_type("ready", LIMIT).await;
    assert_eq!(ready["protocol"], 1, "{ready}");
    assert_eq!(
        ready["output"],
        json!({"encoding": "mulaw", "sample_rate": 8000})
    );
    assert!(ready["session_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
}

/// Speaks 500 ms of silence, `voiced_ms` of speech and 1500 ms of silence from a real-time
/// microphone, and reads until the turn's final transcript; returns the client.
async fn speak(s: &CloudStack, voiced_ms: u32) -> Microphone {
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", s.host.addr),
        json!({"encoding": "pcm16", "sample_rate": 16000}),
    )
    .await;
    let mut audio = speech::silence(500);
    audio.extend(speech::utterance(voiced_ms, 1500));
    mic.say(&audio);
    mic.until("the final transcript", is_final).await;
    mic
}

fn is_final(m: &Value) -> bool {
    m["type"] == "transcript" && m["final"] == true
}

/// Index in the client's log of the first message matching `pred`.
fn position(mic: &Microphone, pred: impl Fn(&Value) -> bool) -> Option<usize> {
    mic.log.iter().position(pred)
}

#[tokio::test]
async fn speech_is_bracketed_by_vad_events_on_the_audio_clock() {
    let s = stack(&[]).await;
    let c = speak(&s, 1500).await;
    let vad = c.of_type("vad");
    assert_eq!(vad.len(), 2, "one start and one end: {vad:?}");
    assert_eq!(vad[0]["event"], "speech_start", "{vad:?}");
    assert_eq!(vad[1]["event"], "speech_end", "{vad:?}");
    // The voice runs from 500 ms to 2000 ms of client audio; the detector reports where it
    // heard it begin and end (to within its 20 ms frames and its own overhang).
    let start = vad[0]["at_ms"].as_u64().unwrap();
    let end = vad[1]["at_ms"].as_u64().unwrap();
    assert!((480..=560).contains(&start), "speech_start at {start} ms");
    assert!((1980..=2100).contains(&end), "speech_end at {end} ms");
    // The turn's final transcript comes after the end of speech.
    let ended = position(&c, |m| m["type"] == "vad" && m["event"] == "speech_end").unwrap();
    let fin = position(&c, is_final).unwrap();
    assert!(ended < fin, "{:?}", c.log);
    assert_eq!(c.log[fin]["text"], "hello there");
}
