//! The `voice-host` binary as a process: on SIGTERM it tells sessions, lets the turn in flight
//! finish, closes with 1001 and exits 0.

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::{DeepgramScript, FakeDeepgram};
use voice_tests::fake_elevenlabs::{ElevenLabsScript, FakeElevenLabs};
use voice_tests::fake_openai::{FakeOpenAi, OpenAiScript};
use voice_tests::host::{DEEPGRAM_KEY, ELEVENLABS_KEY, OPENAI_KEY};

/// Liveness bound on each wait (start-up, a message, the exit): a hung host fails, never hangs.
const LIMIT: Duration = Duration::from_secs(30);
/// About four seconds of speech from the fake voice (60 ms a character), paced in real time.
const REPLY: &str = "Once upon a time there was a lighthouse keeper who counted the ships.";

/// Kills the host if the test fails before it exits.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_turn_in_flight_then_exits_0() {
    let deepgram = FakeDeepgram::start(DeepgramScript::new(["hello"]).with_key(DEEPGRAM_KEY))
        .await
        .unwrap();
    let openai = FakeOpenAi::start(
        OpenAiScript::default()
            .reply("story", REPLY)
            .with_key(OPENAI_KEY),
    )
    .await
    .unwrap();
    let elevenlabs = FakeElevenLabs::start(ElevenLabsScript::default().with_key(ELEVENLABS_KEY))
        .await
        .unwrap();
    let child = Command::new(voice_tests::binary::voice_host())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("DRAIN_TIMEOUT_MS", "20000")
        .env("DEEPGRAM_URL", deepgram.url())
        .env("DEEPGRAM_API_KEY", DEEPGRAM_KEY)
        .env("OPENAI_BASE_URL", openai.base_url())
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("ELEVENLABS_URL", elevenlabs.url())
        .env("ELEVENLABS_API_KEY", ELEVENLABS_KEY)
        .env("INTENT_PLUGIN", "none")
        .env("PROMPT_PLUGIN", "none")
        .env("BARGE_IN_PLUGIN", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start voice-host");
    let mut host = Reap(child);

    // Log lines are read on a thread of their own so every wait for one has a deadline.
    let stdout = host.0.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr: SocketAddr = tokio::task::spawn_blocking(move || loop {
        let line = lines
            .recv_timeout(LIMIT)
            .expect("the host logs that it listens");
        if line.contains("voice-host listening") {
            let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
            return v["fields"]["addr"]
                .as_str()
                .expect("addr field")
                .parse()
                .expect("a socket address");
        }
    })
    .await
    .unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");

    let pcm = json!({"encoding": "pcm16", "sample_rate": 16000});
    let mut busy = AgentClient::start(addr, pcm.clone(), None).await;
    let mut idle = AgentClient::start(addr, pcm, None).await;
    busy.send_json(json!({"type": "text", "text": "tell me a story"}))
        .await;
    // The reply is under way: its text streams while its audio plays out in real time.
    busy.expect_type("agent_text", LIMIT).await;
    let status = Command::new("kill")
        .args(["-TERM", &host.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    idle.expect_type("shutdown", LIMIT).await;
    assert_eq!(idle.expect_close(LIMIT).await.0, 1001);
    busy.expect_type("shutdown", LIMIT).await;
    let done = busy.expect_type("agent_done", LIMIT).await;
    assert_eq!(done["interrupted"], false, "{done}");
    assert_eq!(done["text"], REPLY);
    let (code, _) = busy.expect_close(LIMIT).await;
    assert_eq!(code, 1001);
    // All of the reply's audio went out before the close (16-bit samples at 16 kHz).
    let audio_ms = busy.audio.len() as u64 / 32;
    let expected_ms = REPLY.chars().count() as u64 * 60;
    assert!(
        audio_ms + 100 >= expected_ms,
        "{audio_ms} ms of {expected_ms} ms of reply audio before the close"
    );

    let give_up = tokio::time::Instant::now() + LIMIT;
    let exit = loop {
        if let Some(s) = host.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0));
}
