//! The `voice-host` binary as a process: on SIGTERM it tells sessions, lets the turn in flight
//! finish, closes with 1001 and exits 0.

use serde_json::json;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::{DeepgramScript, FakeDeepgram};
use voice_tests::fake_elevenlabs::{ElevenLabsScript, FakeElevenLabs};
use voice_tests::fake_openai::{FakeOpenAi, OpenAiScript};
use voice_tests::host::{DEEPGRAM_KEY, ELEVENLABS_KEY, OPENAI_KEY};
use voice_tests::host_process::{HostProcess, LIMIT};

/// About four seconds of speech from the fake voice (60 ms a character), paced in real time.
const REPLY: &str = "Once upon a time there was a lighthouse keeper who counted the ships.";

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
    let mut host = HostProcess::spawn(&[
        ("DRAIN_TIMEOUT_MS", "20000"),
        ("DEEPGRAM_URL", &deepgram.url()),
        ("DEEPGRAM_API_KEY", DEEPGRAM_KEY),
        ("OPENAI_BASE_URL", &openai.base_url()),
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("ELEVENLABS_URL", &elevenlabs.url()),
        ("ELEVENLABS_API_KEY", ELEVENLABS_KEY),
        ("INTENT_PLUGIN", "none"),
        ("PROMPT_PLUGIN", "none"),
        ("BARGE_IN_PLUGIN", "none"),
    ])
    .await;
    let addr = host.addr;
    assert!(addr.ip().is_loopback(), "{addr}");

    let pcm = json!({"encoding": "pcm16", "sample_rate": 16000});
    let mut busy = AgentClient::start(addr, pcm.clone(), None).await;
    let mut idle = AgentClient::start(addr, pcm, None).await;
    busy.send_json(json!({"type": "text", "text": "tell me a story"}))
        .await;
    // The reply is under way: its text streams while its audio plays out in real time.
    busy.expect_type("agent_text", LIMIT).await;
    host.terminate();

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

    assert_eq!(host.exit().await.code(), Some(0));
}
