//! End to end through `/agent` with the cloud providers pointed at the local fakes: real speech
//! (espeak-ng) streamed at real-time pace, transcripts, streamed agent text, agent audio in the
//! requested format and rate, turn metrics, and a barge-in that stops the audio and keeps only
//! what was heard in memory.

use serde_json::json;
use std::path::Path;
use std::process::Command;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::microphone::{is, Microphone};

const STORY: &str =
    "Once upon a time there was a lighthouse keeper. Every night she climbed the stairs. \
    She lit the lamp for the ships at sea. One stormy night a small boat came close to the rocks. \
    She rang the bell until the sailors saw the light.";

/// Speaks `text` into a 16 kHz mono WAV with espeak-ng and sox; `None` when they are missing.
fn speech(dir: &Path, name: &str, text: &str) -> Option<Vec<i16>> {
    let raw = dir.join(format!("{name}-raw.wav"));
    let wav = dir.join(format!("{name}.wav"));
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .ok()?
        .success()
        && Command::new("sox")
            .arg(&raw)
            .args(["-r", "16000", "-c", "1", "-b", "16"])
            .arg(&wav)
            .status()
            .ok()?
            .success();
    if !ok {
        return None;
    }
    let mut reader = hound::WavReader::open(&wav).ok()?;
    reader.samples::<i16>().collect::<Result<Vec<_>, _>>().ok()
}

#[tokio::test]
async fn speech_in_agent_voice_out_with_barge_in() {
    let dir = std::env::temp_dir().join(format!("voice-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let utterances = [
        ("weather", "what is the weather in paris"),
        ("story", "please tell me a story"),
        ("stop", "wait stop that please"),
    ];
    let mut audio = Vec::new();
    for (name, text) in utterances {
        match speech(&dir, name, text) {
            Some(a) => audio.push(a),
            None => {
                voice_tests::prerequisite::missing(
                    "speech_in_agent_voice_out_with_barge_in",
                    "espeak-ng and sox are needed to speak the test utterances",
                );
                return;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let stack = CloudStack::start(
        DeepgramScript::new(utterances.map(|(_, t)| t)),
        OpenAiScript::default()
            .reply("weather", "It is sunny in Paris today.")
            .reply("story", STORY),
        ElevenLabsScript::default(),
        &[
            ("TTS_MIN_DURATION_MS", "0"),
            ("TTS_BARGE_THRESHOLD_WORDS", "2"),
            ("TTS_PROTECTED_PHRASES", "false"),
        ],
    )
    .await;
    let (openai, elevenlabs) = (&stack.openai, &stack.elevenlabs);
    let mut client = Microphone::connect(
        &format!("ws://{}/agent", stack.host.addr),
        json!({"encoding": "mulaw", "sample_rate": 8000}),
    )
    .await;

    let ready = client.until("ready", |v| v["type"] == "ready").await;
    assert_eq!(
        ready["output"],
        json!({"encoding": "mulaw", "sample_rate": 8000})
    );

    // Turn 1: a question answered in full.
    client.say(&audio[0]);
    let fin = client
        .until("final transcript 1", |v| {
            v["type"] == "transcript" && v["final"] == true
        })
        .await;
    assert_eq!(fin["text"], "what is the weather in paris");
    let turn = fin["turn"].as_u64().unwrap();
    let done = client.until("agent_done 1", is("agent_done", turn)).await;
    assert_eq!(done["interrupted"], false);
    assert_eq!(done["text"], "It is sunny in Paris today.");
    let streamed: String = client
        .of("agent_text", turn)
        .iter()
        .map(|v| v["delta"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "It is sunny in Paris today.");
    let metrics = client
        .until("turn_metrics 1", is("turn_metrics", turn))
        .await;
    for field in [
        "llm_first_token_ms",
        "tts_first_audio_ms",
        "first_audio_sent_ms",
    ] {
        assert!(metrics[field].is_number(), "{field} in {metrics}");
    }
    // Mu-law at 8 kHz end to end: the client got exactly the bytes the voice produced.
    let tts_bytes: usize = elevenlabs
        .requests()
        .iter()
        .map(|r| r.audio_bytes_sent)
        .sum();
    assert!(tts_bytes > 0);
    assert!(elevenlabs
        .requests()
        .iter()
        .all(|r| r.param("output_format") == Some("ulaw_8000")));
    client
        .audio(tts_bytes.saturating_sub(client.audio_bytes))
        .await;
    assert_eq!(client.audio_bytes, tts_bytes);

    // Turn 2: a long story, interrupted after about a second of it.
    client.say(&audio[1]);
    let fin = client
        .until("final transcript 2", |v| {
            v["type"] == "transcript" && v["final"] == true && v["turn"].as_u64() > Some(turn)
        })
        .await;
    let story_turn = fin["turn"].as_u64().unwrap();
    let before = client.audio_bytes;
    client.audio(8000).await;
    client.say(&audio[2]);
    client.until("interrupt", is("interrupt", story_turn)).await;
    let done = client
        .until("agent_done 2", is("agent_done", story_turn))
        .await;
    assert_eq!(done["interrupted"], true);
    let heard = done["text"].as_str().unwrap();
    assert!(STORY.starts_with(heard.trim_end()), "remembered {heard:?}");
    assert!(heard.len() < STORY.len() / 2, "remembered {heard:?}");
    let story_audio = client.audio_bytes - before;
    assert!(story_audio < STORY.len() * 480, "audio stopped early");

    // The interrupted reply is remembered only as far as it was heard.
    let fin = client
        .until("final transcript 3", |v| {
            v["type"] == "transcript" && v["final"] == true && v["turn"].as_u64() > Some(story_turn)
        })
        .await;
    let third = fin["turn"].as_u64().unwrap();
    client.until("agent_done 3", is("agent_done", third)).await;
    let last = openai.requests().last().cloned().unwrap();
    let messages = last.body["messages"].as_array().unwrap();
    let remembered = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    assert_eq!(remembered.trim(), heard.trim());
    stack.host.shutdown().await;
}

#[tokio::test]
async fn refused_llm_key_reports_an_error_and_the_session_goes_on() {
    let stack = CloudStack::with_defaults().await;
    let mut client = Microphone::connect(
        &format!("ws://{}/agent", stack.host.addr),
        json!({"encoding": "mulaw", "sample_rate": 8000}),
    )
    .await;
    client.until("ready", |v| v["type"] == "ready").await;

    stack.openai.faults().push(voice_tests::Fault::Status {
        code: 401,
        retry_after: None,
    });
    client.send(json!({"type": "text", "text": "first try"}));
    let error = client.until("error", |v| v["type"] == "error").await;
    assert_eq!(error["code"], "provider_auth");
    assert_eq!(error["fatal"], false);
    assert!(!error.to_string().contains(voice_tests::host::OPENAI_KEY));

    client.send(json!({"type": "text", "text": "second try"}));
    // The failed turn ends with an empty reply; the next one is answered in full. Nothing of the
    // agent came between them, so the model reads both as one message (as memory keeps them).
    let done = client
        .until("agent_done with text", |v| {
            v["type"] == "agent_done" && v["text"].as_str().is_some_and(|t| !t.is_empty())
        })
        .await;
    assert_eq!(done["interrupted"], false);
    assert_eq!(
        done["text"],
        "You said: first try second try. That is interesting. Tell me more."
    );
    assert_eq!(stack.openai.requests().len(), 2, "no retry after 401");
    stack.host.shutdown().await;
}
