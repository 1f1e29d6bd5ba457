//! OpenTelemetry traces end to end: a host pointed at a local OTLP receiver (`otlp_receiver.rs`)
//! by the standard variables exports one trace per session, a span per turn and the turn's stages
//! under it, over http/protobuf, http/json and gRPC; text stays out of spans unless
//! `OTEL_RECORD_TEXT=true`.

use serde_json::{json, Value};
use std::time::Duration;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::microphone::{is, Microphone};
use voice_tests::otlp_receiver::{OtlpReceiver, ReceivedSpan};
use voice_tests::speech;

const LIMIT: Duration = Duration::from_secs(30);
const QUESTION: &str = "what about the weather in paris today";
const ANSWER: &str = "It is sunny in Paris.";
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him. He read them all winter long.";
/// PCM16 at 16 kHz: bytes of one millisecond of agent audio.
const BYTES_PER_MS: usize = 32;

async fn stack(receiver: &OtlpReceiver, protocol: &str, extra: &[(&str, &str)]) -> CloudStack {
    let endpoint = match protocol {
        "grpc" => receiver.grpc_endpoint.clone(),
        _ => receiver.http_endpoint.clone(),
    };
    let mut settings = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_SERVICE_NAME", "voice-agent-test"),
        ("DRAIN_TIMEOUT_MS", "3000"),
    ];
    settings.extend_from_slice(extra);
    CloudStack::start(
        DeepgramScript::new([QUESTION, "wait stop that please"]),
        OpenAiScript::default()
            .reply("paris", ANSWER)
            .reply("story", STORY),
        ElevenLabsScript::default(),
        &settings,
    )
    .await
}

async fn connect(s: &CloudStack) -> (Microphone, String) {
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", s.host.addr),
        json!({"encoding": "pcm16", "sample_rate": 16000}),
    )
    .await;
    let ready = mic.until("ready", |m| m["type"] == "ready").await;
    let id = ready["session_id"].as_str().unwrap().to_string();
    (mic, id)
}

/// Ends the session and the host (a drain exports what is queued), keeping the fakes up.
async fn stop(s: CloudStack, mic: Microphone) {
    drop(mic);
    let CloudStack {
        host,
        deepgram,
        openai,
        elevenlabs,
    } = s;
    host.shutdown().await;
    drop((deepgram, openai, elevenlabs));
}

fn one<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} span expected: {spans:#?}");
    found[0]
}

fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

/// The tree every answered turn has: the session at the root, the turn under it, its stages
/// under the turn, all in one trace, each stage inside the turn's time, each span naming the
/// session and the turn.
fn assert_turn_tree(spans: &[ReceivedSpan], session_id: &str, stages: &[&str]) -> ReceivedSpan {
    let session = one(spans, "session");
    assert_eq!(session.parent_span_id, "", "the session is the root");
    assert_eq!(session.attr("session.id"), Some(session_id));
    assert_eq!(session.service, "voice-agent-test");
    let turn = one(spans, "turn");
    assert_eq!(turn.parent_span_id, session.span_id);
    assert_eq!(turn.attr("voice.turn"), Some("1"));
    let under_turn = children(spans, turn);
    let mut names: Vec<&str> = under_turn.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut expected = stages.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "{spans:#?}");
    for s in spans {
        assert_eq!(
            s.trace_id, session.trace_id,
            "one trace per session: {s:#?}"
        );
        assert_eq!(s.attr("session.id"), Some(session_id), "{s:#?}");
        assert!(s.start_ns <= s.end_ns, "{s:#?}");
    }
    for s in &under_turn {
        assert_eq!(s.attr("voice.turn"), Some("1"), "{s:#?}");
        assert!(
            s.start_ns >= turn.start_ns && s.end_ns <= turn.end_ns,
            "{} lies outside its turn: {s:#?} in {turn:#?}",
            s.name
        );
    }
    assert!(turn.start_ns >= session.start_ns && turn.end_ns <= session.end_ns);
    turn.clone()
}

fn no_text_anywhere(spans: &[ReceivedSpan], texts: &[&str]) {
    for s in spans {
        for (k, v) in &s.attributes {
            for t in texts {
                assert!(!v.contains(t), "{k} of {} holds text: {v}", s.name);
            }
        }
    }
}

/// Over http/protobuf (the default protocol): one spoken turn is one trace.
#[tokio::test]
async fn a_spoken_turn_is_exported_as_a_span_tree_over_http_protobuf() {
    let receiver = OtlpReceiver::start().await;
    // Stages in the order of a turn planned at its commit: a reply started before it
    // (preemptive generation, `session_trace_tests.rs`) opens its plan and LLM spans earlier.
    let s = stack(
        &receiver,
        "http/protobuf",
        &[("PREEMPTIVE_GENERATION", "false")],
    )
    .await;
    let (mut mic, session_id) = connect(&s).await;
    mic.say(&speech::utterance(1200, 0));
    let done = mic.until("the reply", is("agent_done", 1)).await;
    assert_eq!(done["text"], ANSWER);
    let metrics: Value = mic.until("turn metrics", is("turn_metrics", 1)).await;
    stop(s, mic).await;

    let spans = receiver
        .wait_for("the session span", LIMIT, |s| {
            s.iter().any(|s| s.name == "session")
        })
        .await;
    let turn = assert_turn_tree(
        &spans,
        &session_id,
        &[
            "stt",
            "plugin.intent",
            "plugin.prompt",
            "llm",
            "tts",
            "playout",
        ],
    );
    assert!(spans.iter().all(|s| s.transport == "http/protobuf"));
    assert_eq!(turn.attr("voice.interrupted"), Some("false"));
    // Lengths, not words.
    assert_eq!(
        turn.attr("voice.user_text_chars"),
        Some(QUESTION.len().to_string().as_str())
    );
    assert_eq!(
        turn.attr("voice.agent_text_chars"),
        Some(ANSWER.len().to_string().as_str())
    );
    no_text_anywhere(&spans, &["weather", "sunny"]);
    let llm = one(&spans, "llm");
    assert!(llm.events.contains(&"first_token".to_string()), "{llm:#?}");
    assert!(llm.attr("llm.tokens").unwrap().parse::<u32>().unwrap() > 0);
    let tts = one(&spans, "tts");
    assert!(tts.events.contains(&"first_audio".to_string()), "{tts:#?}");
    // The stages run in the order a turn needs them.
    let stt = one(&spans, "stt");
    let playout = one(&spans, "playout");
    assert!(stt.end_ns <= llm.start_ns && llm.start_ns <= tts.start_ns);
    assert!(tts.start_ns <= playout.start_ns);
    // The turn span starts at the end of speech, as the turn's metrics count from there: the
    // first audio went out within the turn, `first_audio_sent_ms` after its start.
    let first_audio_ms = metrics["first_audio_sent_ms"].as_u64().unwrap();
    let playout_after_ms = (playout.start_ns - turn.start_ns) / 1_000_000;
    assert!(
        playout_after_ms.abs_diff(first_audio_ms) <= 50,
        "playout starts {playout_after_ms} ms into the turn; metrics say {first_audio_ms} ms"
    );
}

/// Over gRPC, with text recorded: a barge-in shows as decisions of the policy, an event on the
/// turn and an interrupted playout.
#[tokio::test]
async fn a_barge_in_is_traced_over_grpc_with_text_when_asked() {
    let receiver = OtlpReceiver::start().await;
    let s = stack(
        &receiver,
        "grpc",
        &[
            ("OTEL_RECORD_TEXT", "true"),
            ("TTS_MIN_DURATION_MS", "0"),
            ("TTS_BARGE_THRESHOLD_WORDS", "2"),
            ("TTS_PROTECTED_PHRASES", "false"),
        ],
    )
    .await;
    let (mut mic, session_id) = connect(&s).await;
    mic.send(json!({"type": "text", "text": "tell me a long story"}));
    let story = 1;
    mic.until("the story's first words", is("agent_text", story))
        .await;
    mic.audio(500 * BYTES_PER_MS).await;
    mic.say(&speech::utterance(1800, 0));
    mic.until("the interrupt", is("interrupt", story)).await;
    let done = mic.until("the story's end", is("agent_done", story)).await;
    assert_eq!(done["interrupted"], true);
    stop(s, mic).await;

    let spans = receiver
        .wait_for("the session span", LIMIT, |s| {
            s.iter().any(|s| s.name == "session")
        })
        .await;
    assert!(spans.iter().all(|s| s.transport == "grpc"));
    // The first turn: typed (no stt), interrupted by speech.
    let turns: Vec<_> = spans.iter().filter(|s| s.name == "turn").collect();
    let turn = turns
        .iter()
        .find(|t| t.attr("voice.turn") == Some("1"))
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(turn.attr("voice.interrupted"), Some("true"));
    assert!(turn.events.contains(&"barge_in".to_string()), "{turn:#?}");
    assert_eq!(turn.attr("voice.user_text"), Some("tell me a long story"));
    assert!(
        STORY.starts_with(turn.attr("voice.agent_text").unwrap()),
        "{turn:#?}"
    );
    let under: Vec<_> = children(&spans, turn);
    let decisions: Vec<_> = under
        .iter()
        .filter(|s| s.name == "barge_in.decide")
        .filter_map(|s| s.attr("voice.barge_in.decision"))
        .collect();
    assert_eq!(decisions.last(), Some(&"interrupt"), "{under:#?}");
    let playout = under
        .iter()
        .find(|s| s.name == "playout")
        .unwrap_or_else(|| panic!("{under:#?}"));
    assert_eq!(playout.attr("voice.interrupted"), Some("true"));
    let llm = under.iter().find(|s| s.name == "llm").unwrap();
    let tts = under.iter().find(|s| s.name == "tts").unwrap();
    assert!(
        llm.attr("voice.cancelled") == Some("true") || tts.attr("voice.cancelled") == Some("true"),
        "the barge-in cut the reply short: {llm:#?} {tts:#?}"
    );
    let session = one(&spans, "session");
    assert_eq!(session.attr("session.id"), Some(session_id.as_str()));
    assert!(spans.iter().all(|s| s.trace_id == session.trace_id));
}

/// Over http/json: a typed turn has no speech-to-text stage.
#[tokio::test]
async fn a_typed_turn_is_exported_over_http_json() {
    let receiver = OtlpReceiver::start().await;
    let s = stack(&receiver, "http/json", &[]).await;
    let (mut mic, session_id) = connect(&s).await;
    mic.send(json!({"type": "text", "text": "and in paris?"}));
    mic.until("the reply", is("agent_done", 1)).await;
    stop(s, mic).await;
    let spans = receiver
        .wait_for("the session span", LIMIT, |s| {
            s.iter().any(|s| s.name == "session")
        })
        .await;
    assert!(spans.iter().all(|s| s.transport == "http/json"));
    assert_turn_tree(
        &spans,
        &session_id,
        &["plugin.intent", "plugin.prompt", "llm", "tts", "playout"],
    );
}

/// A collector that accepts connections and never answers: conversations go on as usual (spans
/// wait in the exporter's queue, off the session's path), and the host still shuts down.
#[tokio::test]
async fn a_collector_that_never_answers_does_not_hold_up_a_conversation() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let s = CloudStack::start(
        DeepgramScript::new([QUESTION]),
        OpenAiScript::default().reply("paris", ANSWER),
        ElevenLabsScript::default(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("DRAIN_TIMEOUT_MS", "3000"),
        ],
    )
    .await;
    let (mut mic, _) = connect(&s).await;
    for turn in 1..=3u64 {
        mic.send(json!({"type": "text", "text": "and in paris?"}));
        let done = mic.until("the reply", is("agent_done", turn)).await;
        assert_eq!(done["text"], ANSWER);
        assert_eq!(done["interrupted"], false);
    }
    stop(s, mic).await;
    held.abort();
}
