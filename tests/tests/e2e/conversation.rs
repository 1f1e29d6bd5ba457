//! Conversations under real timing, through `/agent` against the local provider fakes: typed
//! turns racing each other, and a barge-in held back by the minimum speaking time.
//! (A client that stops reading: `slow_client.rs` end to end, `transport::writer` and
//! `session::outbound` on a virtual clock.)

use serde_json::json;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::microphone::{is, Microphone};
use voice_tests::{plugins, speech};

const LIMIT: Duration = Duration::from_secs(30);
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him. He read them all winter long.";
/// PCM16 at 16 kHz: bytes of one millisecond of agent audio.
const BYTES_PER_MS: usize = 32;

async fn stack(extra: &[(&str, &str)]) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["what about the weather in paris today"]),
        OpenAiScript::default()
            .reply("story", STORY)
            .reply("paris", "It is sunny in Paris.")
            .reply("question", "Here is my answer."),
        ElevenLabsScript::default(),
        extra,
    )
    .await
}

/// Types `texts` back to back (one write each, no waiting); every turn must be accounted for,
/// the last answered, and the session must answer the next turn.
async fn typed_burst(texts: &[&str]) {
    // Above the per-session typed-turn rate limit's burst of 5 (docs/security.md).
    let s = stack(&[("TEXT_TURNS_PER_MIN", "600")]).await;
    let mut c = AgentClient::start(
        s.host.addr,
        json!({"encoding": "pcm16", "sample_rate": 16000}),
        None,
    )
    .await;
    for t in texts {
        c.send_json(json!({"type": "text", "text": t})).await;
    }
    let last = texts.len() as u64;
    let done = c
        .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == last)
        .await
        .unwrap_or_else(|| panic!("turn {last} was never answered: {:#?}", c.messages));
    assert_eq!(done["interrupted"], false, "{done}");
    assert_eq!(done["text"], "Here is my answer.");
    // Every turn was accounted for: each got its final transcript and exactly one agent_done.
    for turn in 1..=last {
        let finals = c
            .messages
            .iter()
            .filter(|m| m["type"] == "transcript" && m["final"] == true && m["turn"] == turn)
            .count();
        let dones = c
            .of_type("agent_done")
            .into_iter()
            .filter(|m| m["turn"] == turn)
            .count();
        assert_eq!((finals, dones), (1, 1), "turn {turn}: {:#?}", c.messages);
    }
    // And the session answers the next turn.
    c.send_json(json!({"type": "text", "text": "one more question"}))
        .await;
    let next = last + 1;
    let done = c
        .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == next)
        .await
        .unwrap_or_else(|| panic!("the next turn was never answered: {:#?}", c.messages));
    assert_eq!(done["interrupted"], false);
    assert!(c.of_type("error").is_empty(), "{:#?}", c.of_type("error"));
    c.close().await;
}

#[tokio::test]
async fn two_typed_turns_sent_together_are_both_accounted_for_and_the_last_is_answered() {
    typed_burst(&["first question", "second question"]).await;
}

#[tokio::test]
async fn a_burst_of_five_typed_turns_is_answered() {
    typed_burst(&[
        "question one",
        "question two",
        "question three",
        "question four",
        "question five",
    ])
    .await;
}

/// Asks for a long story, then 0.5 s into the reply says seven words and stops before 3 s of
/// agent speech. Returns the agent audio (bytes) received when the interrupt came.
async fn seven_word_barge_in(extra: &[(&str, &str)]) -> usize {
    let s = stack(extra).await;
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", s.host.addr),
        json!({"encoding": "pcm16", "sample_rate": 16000}),
    )
    .await;
    let story = mic.ask_after_ready("tell me a long story").await;
    mic.audio(500 * BYTES_PER_MS).await;
    mic.say(&speech::utterance(1800, 0));
    mic.until("the interrupt", is("interrupt", story)).await;
    let at_interrupt = mic.audio_bytes;
    let done = mic.until("the story's end", is("agent_done", story)).await;
    assert_eq!(done["interrupted"], true, "{done}");
    let heard = done["text"].as_str().unwrap();
    assert!(
        STORY.starts_with(heard) && heard.len() < STORY.len() / 2,
        "remembered {heard:?}"
    );
    paris_answered_after(&mut mic, story).await;
    let finals = mic
        .log
        .iter()
        .filter(|v| v["type"] == "transcript" && v["final"] == true)
        .count();
    assert_eq!(finals, 2, "one utterance, one turn: {:#?}", mic.log);
    at_interrupt
}

/// The user's words ("what about the weather in paris today") become the turn after `turn`
/// and are answered; returns the answer's `agent_done`.
async fn paris_answered_after(mic: &mut Microphone, turn: u64) -> serde_json::Value {
    let fin = mic
        .until("the user's words as a turn", |v| {
            v["type"] == "transcript" && v["final"] == true && v["turn"].as_u64() > Some(turn)
        })
        .await;
    assert_eq!(fin["text"], "what about the weather in paris today");
    let answer = mic
        .until(
            "the answer",
            is("agent_done", fin["turn"].as_u64().unwrap()),
        )
        .await;
    assert_eq!(answer["text"], "It is sunny in Paris.");
    answer
}

#[tokio::test]
async fn a_seven_word_barge_in_interrupts_once_the_minimum_duration_has_passed() {
    assert_waited_for_the_minimum("built-in rules", seven_word_barge_in(&[]).await);
}

/// The user stopped talking after about 2.3 s of agent speech; the interruption must still come,
/// and only once the 3000 ms minimum had been spoken (audio arrives up to the 200 ms lead
/// ahead of being heard, so at least 3000 ms of it was received).
fn assert_waited_for_the_minimum(policy: &str, received: usize) {
    assert!(
        received >= 3000 * BYTES_PER_MS,
        "{policy}: interrupted after only {} ms of agent audio",
        received / BYTES_PER_MS
    );
}

#[tokio::test]
async fn a_seven_word_barge_in_interrupts_with_each_reference_barge_in_plugin() {
    for name in ["barge-in-seed", "barge-in-smart"] {
        let path = plugins::component(name);
        // Interrupted, remembered only as heard, and the words answered (checked inside).
        let received = seven_word_barge_in(&[("BARGE_IN_PLUGIN", path.to_str().unwrap())]).await;
        assert_waited_for_the_minimum(name, received);
    }
}

/// The user types a question and starts talking before any of the (slow) reply is heard: they
/// had only paused. The agent does not talk over them; their words are the next turn and the
/// reply is dropped unheard.
#[tokio::test]
async fn a_reply_nobody_heard_waits_for_the_user_and_their_words_replace_it() {
    let s = CloudStack::start(
        DeepgramScript::new(["what about the weather in paris today"]),
        OpenAiScript {
            first_token_delay: Duration::from_millis(1000),
            ..OpenAiScript::default()
        }
        .reply("story", STORY)
        .reply("paris", "It is sunny in Paris."),
        ElevenLabsScript::default(),
        &[],
    )
    .await;
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", s.host.addr),
        json!({"encoding": "pcm16", "sample_rate": 16000}),
    )
    .await;
    mic.until("ready", |v| v["type"] == "ready").await;
    mic.send(json!({"type": "text", "text": "tell me a long story"}));
    let story = mic
        .until("the typed turn", |v| {
            v["type"] == "transcript" && v["final"] == true
        })
        .await["turn"]
        .as_u64()
        .unwrap();
    // The reply's first token is a second away; the user speaks for 1.8 s.
    mic.say(&speech::utterance(1800, 1000));
    let done = mic.until("the story's end", is("agent_done", story)).await;
    assert_eq!(done["interrupted"], true, "{done}");
    assert_eq!(done["text"], "", "{done}");
    assert_eq!(mic.audio_bytes, 0, "the agent talked over the user");
    let answer = paris_answered_after(&mut mic, story).await;
    assert_eq!(answer["interrupted"], false, "{answer}");
    assert!(mic.audio_bytes > 0, "the answer was not heard");
    // Nothing of the dropped reply was said, so the model reads the user's two requests as one
    // message, as memory keeps them.
    let last = s.openai.requests().pop().expect("a request");
    let said = last.conversation();
    assert_eq!(
        said,
        [(
            "user",
            "tell me a long story what about the weather in paris today"
        )]
    );
}
