//! `voice-host talk` against a host wired to the fake providers: it streams a WAV file, prints
//! the conversation and writes the agent's voice to a WAV file; failures are reported in plain
//! words with the right exit status.

use std::path::PathBuf;
use voice_host::audio::{read_wav_mono_i16, write_wav_mono_i16};
use voice_host::cli::talk::{talk, TalkArgs, TalkError};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::speech;

const REPLY: &str = "It is sunny in Paris today.";

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voice-talk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn args(url: String, wav: Option<PathBuf>, out: PathBuf) -> TalkArgs {
    TalkArgs {
        url,
        wav,
        text: None,
        out,
        agent: None,
        rate: 16_000,
        tail_ms: 1_000,
        wait: 20,
        json: false,
    }
}

async fn stack() -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["what is the weather in paris"]),
        OpenAiScript::default().reply("weather", REPLY),
        ElevenLabsScript::default(),
        &[],
    )
    .await
}

#[tokio::test]
async fn a_spoken_question_gets_a_printed_and_recorded_answer() {
    let s = stack().await;
    // An 8 kHz file: the client sends it at its own rate and the host resamples.
    let question: Vec<i16> = speech::utterance(1200, 300)
        .into_iter()
        .step_by(2)
        .collect();
    let wav = temp("question.wav");
    write_wav_mono_i16(&wav, &question, 8000).unwrap();
    let out = temp("answer.wav");
    let _ = std::fs::remove_file(&out);

    let mut printed = Vec::new();
    let a = args(
        format!("ws://{}/agent", s.host.addr),
        Some(wav),
        out.clone(),
    );
    let summary = talk(&a, &mut printed).await.expect("talk runs");
    let text = String::from_utf8(printed).unwrap();

    assert!(summary.answered(), "{summary:?}\n{text}");
    assert!(text.contains("connected: session "), "{text}");
    assert!(
        text.contains("you:   what is the weather in paris\n"),
        "{text}"
    );
    assert!(text.contains(&format!("agent: {REPLY}\n")), "{text}");
    assert!(text.contains("turn 1 latency: "), "{text}");
    assert!(text.contains("LLM first token"), "{text}");
    assert!(text.contains("written to "), "{text}");

    let (voice, rate) = read_wav_mono_i16(&out).expect("agent audio written");
    assert_eq!(rate, 16_000);
    let ms = voice.len() as u64 * 1000 / 16_000;
    // The fake voice speaks 60 ms a character: the whole reply arrived.
    let expected = REPLY.chars().count() as u64 * 60;
    assert!(
        ms + 200 >= expected,
        "{ms} ms of audio for a {expected} ms reply"
    );
    assert_eq!(summary.audio_ms, ms);
    assert!(
        voice.iter().any(|&v| v.unsigned_abs() > 1000),
        "audible audio"
    );
}

#[tokio::test]
async fn a_typed_turn_works_without_a_wav() {
    let s = stack().await;
    let out = temp("typed.wav");
    let mut a = args(format!("ws://{}/agent", s.host.addr), None, out.clone());
    a.text = Some("how is the weather".into());
    a.json = true;
    let mut printed = Vec::new();
    let summary = talk(&a, &mut printed).await.expect("talk runs");
    assert!(summary.answered(), "{summary:?}");
    let events: Vec<serde_json::Value> = String::from_utf8(printed)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("--json prints one JSON event a line"))
        .collect();
    assert_eq!(events[0]["type"], "ready");
    let done = events
        .iter()
        .find(|e| e["type"] == "agent_done")
        .expect("agent_done printed");
    assert_eq!(done["text"], REPLY);
}

#[tokio::test]
async fn failures_are_explained() {
    let out = temp("never.wav");
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut a = args(
        format!("ws://127.0.0.1:{port}/agent?token=s3cret"),
        None,
        out.clone(),
    );
    a.text = Some("hello".into());
    let err = talk(&a, &mut Vec::new()).await.expect_err("no host");
    let msg = err.to_string();
    assert!(matches!(err, TalkError::Connect(_)), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}/agent")), "{msg}");
    assert!(
        !msg.contains("s3cret"),
        "query strings are not echoed: {msg}"
    );

    let missing = temp("missing.wav");
    let a = args(
        "ws://127.0.0.1:9/agent".into(),
        Some(missing.clone()),
        out.clone(),
    );
    let err = talk(&a, &mut Vec::new()).await.expect_err("no such file");
    assert!(matches!(err, TalkError::Input { .. }), "{err}");
    assert!(err.to_string().contains("missing.wav"), "{err}");

    // A host that refuses the session says why.
    let s = stack().await;
    let mut a = args(format!("ws://{}/agent", s.host.addr), None, out.clone());
    a.text = Some("hello".into());
    a.agent = Some("nobody".into());
    let err = talk(&a, &mut Vec::new()).await.expect_err("refused");
    assert!(err.to_string().contains("unknown_agent"), "{err}");
    assert!(err.to_string().contains("nobody"), "{err}");
    assert!(!out.exists(), "no audio file when nothing was received");
}
