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
use voice_tests::speech;

const LIMIT: Duration = Duration::from_secs(30);
/// 20 ms of PCM16 at 16 kHz.
const FRAME_BYTES: usize = 640;

async fn stack(extra: &[(&str, &str)]) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default(),
        ElevenLabsScript::default(),
        extra,
    )
    .await
}

fn pcm(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Index in `c.messages` of the first message matching `pred`.
fn position(c: &AgentClient, pred: impl Fn(&Value) -> bool) -> Option<usize> {
    c.messages.iter().position(pred)
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

/// Streams 500 ms of silence, `voiced_ms` of speech and 1500 ms of silence in real time, then
/// waits for the turn's final transcript; returns the client.
async fn speak(s: &CloudStack, voiced_ms: u32) -> AgentClient {
    let mut c = AgentClient::start(
        s.host.addr,
        json!({"encoding": "pcm16", "sample_rate": 16000}),
        None,
    )
    .await;
    let mut audio = speech::silence(500);
    audio.extend(speech::utterance(voiced_ms, 1500));
    c.stream_realtime(&pcm(&audio), FRAME_BYTES).await;
    let is_final = |m: &Value| m["type"] == "transcript" && m["final"] == true;
    if position(&c, is_final).is_none() {
        c.wait_for(LIMIT, is_final)
            .await
            .unwrap_or_else(|| panic!("no final transcript: {:?}", c.messages));
    }
    c
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
    let fin = position(&c, |m| m["type"] == "transcript" && m["final"] == true).unwrap();
    assert!(ended < fin, "{:?}", c.messages);
    assert_eq!(c.messages[fin]["text"], "hello there");
}
