//! `voice-host talk`, run as the binary, against a host wired to the fake providers: it streams
//! a WAV file, prints the conversation and writes the agent's voice to a WAV file; its exit
//! status is 0 when the agent answered with audio, 1 when it did not, 2 when the session could
//! not run, with the reason as one line on stderr.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;
use voice_host::audio::{read_wav_mono_i16, write_wav_mono_i16};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::{speech, Fault};

const REPLY: &str = "It is sunny in Paris today.";
/// Liveness bound on one run of the client (its own `--wait` is shorter).
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voice-talk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// Runs `voice-host talk` with `args`; kills it if it outlives [`RUN_LIMIT`].
async fn talk(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(voice_tests::binary::voice_host())
        .arg("talk")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(RUN_LIMIT, child)
        .await
        .expect("voice-host talk ended")
        .expect("voice-host talk ran")
}

/// The single line `voice-host talk: <reason>` on stderr.
fn reason(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
    let line = lines[0];
    assert!(line.starts_with("voice-host talk: "), "{line}");
    line.to_string()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    let url = format!("ws://{}/agent", s.host.addr);

    let run = talk(&[
        "--url",
        &url,
        "--wav",
        wav.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--wait",
        "20",
    ])
    .await;
    let text = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{text}\n{stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
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
    assert!(
        text.contains(&format!(
            "{:.1} s of agent audio written",
            ms as f64 / 1000.0
        )),
        "the summary states the audio written: {text}"
    );
    assert!(
        voice.iter().any(|&v| v.unsigned_abs() > 1000),
        "audible audio"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_turn_works_without_a_wav() {
    let s = stack().await;
    let out = temp("typed.wav");
    let url = format!("ws://{}/agent", s.host.addr);
    let run = talk(&[
        "--url",
        &url,
        "--text",
        "how is the weather",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let events: Vec<serde_json::Value> = String::from_utf8(run.stdout)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_audio_exits_1() {
    let s = stack().await;
    // The model refuses the turn (not retryable): no reply, no audio.
    s.openai.faults().push(Fault::Status {
        code: 400,
        retry_after: None,
    });
    let out = temp("unanswered.wav");
    let _ = std::fs::remove_file(&out);
    let url = format!("ws://{}/agent", s.host.addr);
    let run = talk(&[
        "--url",
        &url,
        "--text",
        "how is the weather",
        "--wait",
        "5",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(
        reason(&run),
        "voice-host talk: the agent did not answer with audio"
    );
    assert_eq!(s.openai.requests().len(), 1, "the turn reached the model");
    assert!(!out.exists(), "no audio file when nothing was received");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_2_with_the_reason() {
    let out = temp("never.wav");
    let _ = std::fs::remove_file(&out);
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/agent?token=s3cret");
    let run = talk(&[
        "--url",
        &url,
        "--text",
        "hello",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let line = reason(&run);
    assert!(line.contains(&format!("127.0.0.1:{port}/agent")), "{line}");
    assert!(
        !line.contains("s3cret"),
        "query strings are not echoed: {line}"
    );

    let missing = temp("missing.wav");
    let run = talk(&[
        "--url",
        "ws://127.0.0.1:9/agent",
        "--wav",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(reason(&run).contains("missing.wav"), "{run:?}");

    // A host that refuses the session says why.
    let s = stack().await;
    let url = format!("ws://{}/agent", s.host.addr);
    let run = talk(&[
        "--url",
        &url,
        "--text",
        "hello",
        "--agent",
        "nobody",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let line = reason(&run);
    assert!(line.contains("unknown_agent"), "{line}");
    assert!(line.contains("nobody"), "{line}");
    assert!(!out.exists(), "no audio file when nothing was received");
}
