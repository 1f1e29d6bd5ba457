//! The load rig measures what it says: `agent-load --converse` against a host on fake providers
//! that take production-like time (recogniser 150 ms, first token 350 ms, first audio 150 ms)
//! reports every turn answered, speech end -> first audio no shorter than those latencies
//! together, and the replies it talked over interrupted.

use serde_json::Value;
use std::time::Duration;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;

const QUESTION: &str = "could you tell me a little more about that please";
const ANSWER: &str = "Of course. Let me tell you a little more about that, slowly and one thing after the other, until you stop me.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversing_run_measures_latency_turns_and_barge_ins() {
    let ms = Duration::from_millis;
    let (stt, llm, tts) = (150, 350, 150);
    let stack = CloudStack::start(
        DeepgramScript {
            fallback: QUESTION.into(),
            pitch_check: false,
            latency: ms(stt),
            ..DeepgramScript::default()
        },
        OpenAiScript {
            first_token_delay: ms(llm),
            split_events: false,
            ..OpenAiScript::default()
        }
        .reply("more", ANSWER),
        ElevenLabsScript {
            first_audio_delay: ms(tts),
            ..ElevenLabsScript::default()
        },
        &[],
    )
    .await;
    let json = std::env::temp_dir().join(format!("voice-load-rig-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&json);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent-load"))
        .args(["--url", &format!("ws://{}/agent", stack.host.addr)])
        .args(["--sessions", "3", "--seconds", "16", "--converse"])
        .args(["--turn-every", "8", "--barge-in", "1"])
        .args([
            "--json",
            json.to_str().expect("utf-8 path"),
            "--label",
            "test",
        ])
        .output()
        .await
        .expect("agent-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "agent-load failed: {stdout}");
    let run: Value = serde_json::from_str(
        std::fs::read_to_string(&json)
            .expect("agent-load wrote its figures")
            .trim(),
    )
    .expect("one JSON line");
    let _ = std::fs::remove_file(&json);

    assert_eq!(run["ready"], 3, "{stdout}");
    assert_eq!(run["ended_early"], 0, "{stdout}");
    assert_eq!(run["errors"], serde_json::json!({}), "{stdout}");
    let started = run["turns"]["started"].as_u64().expect("turns started");
    assert!(started >= 6, "two turns or more per session: {stdout}");
    assert_eq!(
        run["turns"]["answered"].as_u64(),
        Some(started),
        "every turn answered: {stdout}"
    );
    let p50 = run["first_audio_ms"]["p50"].as_f64().expect("a latency");
    assert!(
        p50 >= (stt + llm + tts) as f64,
        "speech end -> first audio {p50} ms, shorter than the providers' own {} ms: {stdout}",
        stt + llm + tts
    );
    // Every reply that lasted long enough was talked over, and the default rules (five words,
    // after 3 s of agent speech) let each of those interrupt.
    let barge_ins = run["barge_ins"].as_u64().expect("barge-ins");
    assert!(barge_ins >= 3, "{stdout}");
    assert_eq!(run["interrupts"].as_u64(), Some(barge_ins), "{stdout}");
}
