//! The session's ElevenLabs socket, end to end through `/agent` against the fake
//! `multi-stream-input` server: a session's replies share one socket, a typed turn that
//! replaces a reply closes its context and none of its late audio reaches the client, a socket
//! the service closed between replies is replaced for the next one, and a failure in the middle
//! of a reply reaches the client as it does with a socket per reply.

use serde_json::{json, Value};
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::{ElevenLabsRequest, ElevenLabsScript};
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::{CloudStack, ELEVENLABS_KEY};
use voice_tests::{eventually, Fault};

const LIMIT: Duration = Duration::from_secs(30);
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him.";

async fn stack(script: ElevenLabsScript, extra: &[(&str, &str)]) -> CloudStack {
    let mut settings = vec![("TEXT_TURNS_PER_MIN", "600")];
    settings.extend_from_slice(extra);
    CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default()
            .reply("story", STORY)
            .reply("paris", "It is sunny in Paris.")
            .reply("question", "Here is my answer."),
        script,
        &settings,
    )
    .await
}

async fn session(s: &CloudStack) -> AgentClient {
    AgentClient::start(
        s.host.addr,
        json!({"encoding": "pcm16", "sample_rate": 16000}),
        Some(json!({"encoding": "pcm16", "sample_rate": 16000})),
    )
    .await
}

/// Types `text` and waits for the reply's `agent_done`.
async fn ask(c: &mut AgentClient, text: &str) -> Value {
    c.send_json(json!({"type": "text", "text": text})).await;
    let turn = c
        .wait_for(LIMIT, |m| {
            m["type"] == "transcript" && m["final"] == true && m["text"] == text
        })
        .await
        .unwrap_or_else(|| panic!("no turn for {text:?}: {:#?}", c.messages))["turn"]
        .clone();
    c.wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == turn)
        .await
        .unwrap_or_else(|| panic!("{text:?} was never answered: {:#?}", c.messages))
}

fn multi_context(requests: &[ElevenLabsRequest]) -> Vec<&ElevenLabsRequest> {
    requests.iter().filter(|r| r.is_multi_context()).collect()
}

#[tokio::test]
async fn a_sessions_replies_share_one_socket_closed_when_the_session_ends() {
    let s = stack(ElevenLabsScript::default(), &[]).await;
    let mut c = session(&s).await;
    for text in ["first question", "second question", "third question"] {
        let done = ask(&mut c, text).await;
        assert_eq!(done["interrupted"], false, "{done}");
        assert_eq!(done["text"], "Here is my answer.");
    }
    assert!(c.of_type("error").is_empty(), "{:#?}", c.of_type("error"));
    let requests = s.elevenlabs.requests();
    assert_eq!(s.elevenlabs.websocket_connections(), 1, "{requests:#?}");
    let socket = &multi_context(&requests)[0];
    assert_eq!(
        socket.path,
        "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/multi-stream-input"
    );
    assert_eq!(socket.param("output_format"), Some("pcm_16000"));
    assert_eq!(socket.param("inactivity_timeout"), Some("180"));
    assert_eq!(socket.header("xi-api-key"), Some(ELEVENLABS_KEY));
    assert_eq!(socket.contexts.len(), 3, "{:#?}", socket.contexts);
    let mut ids: Vec<&str> = socket.contexts.iter().map(|x| x.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "context ids are not reused: {ids:?}");
    for context in &socket.contexts {
        assert!(context.finished && !context.closed_unflushed, "{context:?}");
    }
    // Every byte the voice produced reached the client (PCM16 at 16 kHz both ways).
    assert_eq!(c.audio.len(), socket.audio_bytes_sent);

    c.close().await;
    eventually("the socket is closed with the session", LIMIT, || {
        s.elevenlabs.requests()[0].ended.is_some()
    })
    .await;
    let socket = s.elevenlabs.requests().remove(0);
    assert_eq!(socket.ended.as_deref(), Some("final"), "{socket:#?}");
    assert_eq!(socket.messages.last(), Some(&json!({"close_socket": true})));
}

#[tokio::test]
async fn a_socket_per_reply_is_still_selectable() {
    let s = stack(
        ElevenLabsScript::default(),
        &[("ELEVENLABS_TRANSPORT", "stream-input")],
    )
    .await;
    let mut c = session(&s).await;
    for text in ["first question", "second question", "third question"] {
        assert_eq!(ask(&mut c, text).await["interrupted"], false);
    }
    let requests = s.elevenlabs.requests();
    assert_eq!(s.elevenlabs.websocket_connections(), 3);
    assert!(multi_context(&requests).is_empty());
}

#[tokio::test]
async fn a_replaced_reply_closes_its_context_and_none_of_its_late_audio_is_heard() {
    // Slow audio messages, so that the story is still being spoken when it is replaced.
    let script = ElevenLabsScript {
        chunk_interval: Duration::from_millis(50),
        ..ElevenLabsScript::default()
    };
    let s = stack(script, &[]).await;
    let mut c = session(&s).await;
    c.send_json(json!({"type": "text", "text": "tell me a story"}))
        .await;
    let started = tokio::time::Instant::now() + LIMIT;
    while c.audio.is_empty() {
        assert!(tokio::time::Instant::now() < started, "no story audio");
        c.next(LIMIT).await;
    }
    c.send_json(json!({"type": "text", "text": "what about paris"}))
        .await;
    let story = c
        .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == 1)
        .await
        .expect("the story ends");
    assert_eq!(story["interrupted"], true, "{story}");
    let after_story = c.audio.len();
    let answer = c
        .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == 2)
        .await
        .expect("the answer");
    assert_eq!(answer["text"], "It is sunny in Paris.");
    assert_eq!(answer["interrupted"], false);

    assert_eq!(s.elevenlabs.websocket_connections(), 1);
    let socket = s.elevenlabs.requests().remove(0);
    let [story_context, answer_context] = &socket.contexts[..] else {
        panic!("two contexts: {:#?}", socket.contexts)
    };
    assert!(story_context.closed_unflushed, "{story_context:?}");
    assert!(
        story_context.audio_bytes_after_close > 0,
        "the fake sent late audio for the closed context: {story_context:?}"
    );
    assert!(story_context.finished, "{story_context:?}");
    let closes: Vec<&Value> = socket
        .messages
        .iter()
        .filter(|m| m["close_context"] == true)
        .collect();
    assert_eq!(closes[0]["context_id"], json!(story_context.id));
    // After the story's end the client got the answer's audio and nothing else.
    assert_eq!(
        c.audio.len() - after_story,
        answer_context.audio_bytes_sent,
        "audio of the replaced story reached the client"
    );
}

#[tokio::test]
async fn a_socket_the_service_closed_between_replies_is_replaced_for_the_next() {
    let script = ElevenLabsScript {
        inactivity_timeout: Some(Duration::from_millis(300)),
        ..ElevenLabsScript::default()
    };
    let s = stack(script, &[]).await;
    let mut c = session(&s).await;
    assert_eq!(ask(&mut c, "first question").await["interrupted"], false);
    eventually("the idle socket times out", LIMIT, || {
        s.elevenlabs.requests()[0].ended.as_deref() == Some("idle")
    })
    .await;
    let done = ask(&mut c, "second question").await;
    assert_eq!(done["interrupted"], false, "{done}");
    assert_eq!(done["text"], "Here is my answer.");
    assert!(c.of_type("error").is_empty(), "{:#?}", c.of_type("error"));
    let requests = s.elevenlabs.requests();
    assert_eq!(s.elevenlabs.websocket_connections(), 2);
    assert_eq!(requests[1].contexts.len(), 1);
    assert!(requests[1].contexts[0].finished);
    assert_eq!(
        c.audio.len(),
        requests[0].audio_bytes_sent + requests[1].audio_bytes_sent
    );
}

/// What the client sees of a reply whose speech fails with `fault` after two audio messages,
/// and whether the next reply is answered.
async fn failed_reply(transport: &str, fault: Fault) -> (String, bool, bool) {
    let s = stack(
        ElevenLabsScript::default(),
        &[("ELEVENLABS_TRANSPORT", transport)],
    )
    .await;
    s.elevenlabs.faults().push(fault);
    let mut c = session(&s).await;
    let done = ask(&mut c, "tell me a story").await;
    let error = c
        .of_type("error")
        .first()
        .map(|e| e["code"].as_str().unwrap().to_string());
    let next = ask(&mut c, "second question").await;
    (
        error.unwrap_or_default(),
        done["interrupted"].as_bool().unwrap(),
        next["interrupted"] == false && next["text"] == "Here is my answer.",
    )
}

#[tokio::test]
async fn a_failure_in_the_middle_of_a_reply_reaches_the_client_as_with_a_socket_per_reply() {
    for (fault, code) in [
        (Fault::StreamError { after: 2 }, "provider_auth"),
        (Fault::DropMidStream { after: 2 }, "provider_unavailable"),
    ] {
        let per_reply = failed_reply("stream-input", fault.clone()).await;
        let shared = failed_reply("websocket", fault.clone()).await;
        assert_eq!(per_reply.0, code, "{fault:?}");
        assert_eq!(shared, per_reply, "{fault:?}");
        assert!(shared.2, "{fault:?}: the next reply is answered");
    }
}
