//! Preemptive generation end to end, against the cloud fakes: the reply's LLM request starts on
//! the recogniser's final words while the VAD's hangover still runs, so the reply comes sooner;
//! when the user goes on after a pause, the early request is dropped and nothing of it reaches
//! the client. Each comparison runs the same speech with `PREEMPTIVE_GENERATION` on and off in
//! one run. Also the count of turns ended too early: a user who goes on after their turn was
//! committed, before any of its reply was heard. A binary of its own: it reads the process-wide
//! `/metrics` counters.

use serde_json::Value;
use std::time::{Duration, Instant};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::metrics::metric;
use voice_tests::microphone::Microphone;
use voice_tests::speech;

/// The counters are the process's: one scenario at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const USED: &str = "voice_llm_preemptive_used_total";
const WASTED: &str = "voice_llm_preemptive_wasted_total";

/// The model takes 400 ms to its first token, as a hosted model does.
async fn stack(utterances: &[&str], preemptive: bool) -> CloudStack {
    let preemptive = if preemptive { "true" } else { "false" };
    stack_with(utterances, 400, preemptive).await
}

/// The cloud fakes, the model `first_token_ms` to its first token, and a host with
/// `PREEMPTIVE_GENERATION=preemptive`.
async fn stack_with(utterances: &[&str], first_token_ms: u64, preemptive: &str) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(utterances.iter().copied()),
        OpenAiScript {
            first_token_delay: Duration::from_millis(first_token_ms),
            ..OpenAiScript::default()
        },
        ElevenLabsScript::default(),
        &[("PREEMPTIVE_GENERATION", preemptive)],
    )
    .await
}

async fn microphone(s: &CloudStack) -> Microphone {
    Microphone::ready(s.host.addr).await
}

/// On a new client: the first words (voice from 400 to 1600 ms), a pause of `pause_ms`, then
/// the rest (900 ms of voice) and silence.
async fn say_with_a_pause(s: &CloudStack, pause_ms: u32) -> Microphone {
    let mic = microphone(s).await;
    let mut audio = speech::silence(400);
    audio.extend(speech::utterance(1200, pause_ms));
    audio.extend(speech::utterance(900, 2500));
    mic.say(&audio);
    mic
}

/// The reply's text, as the client was shown it.
fn shown(mic: &Microphone) -> String {
    mic.of_type("agent_text")
        .iter()
        .filter_map(|m| m["delta"].as_str())
        .collect()
}

/// Says one question (voice from 400 to 1600 ms); returns the ms from the end of the voice to
/// the reply's first text, as the client measures it, and the client after the reply.
async fn first_reply_delay(s: &CloudStack) -> (f64, Microphone) {
    let mut mic = microphone(s).await;
    let mut audio = speech::silence(400);
    audio.extend(speech::utterance(1200, 2500));
    let started = Instant::now();
    mic.say(&audio);
    mic.until("the reply's first text", |m| m["type"] == "agent_text")
        .await;
    let delay = started.elapsed().as_secs_f64() * 1000.0 - 1600.0;
    mic.until("the reply", |m| m["type"] == "agent_done").await;
    (delay, mic)
}

#[tokio::test]
async fn a_reply_started_on_the_recogniser_s_final_words_comes_sooner() {
    let _serial = SERIAL.lock().await;
    let question = ["what's the weather in paris"];
    let late = stack(&question, false).await;
    let (without, _) = first_reply_delay(&late).await;
    let early = stack(&question, true).await;
    let (used, wasted) = (
        metric(early.host.addr, USED).await,
        metric(early.host.addr, WASTED).await,
    );
    let (with, mic) = first_reply_delay(&early).await;
    eprintln!("end of voice -> first reply text: {with:.0} ms preemptive, {without:.0} ms not");
    // The recogniser's final (300 ms endpointing) starts the request while the VAD's 600 ms
    // hangover runs: the model's 400 ms to its first token overlap the wait for the commit.
    assert!(
        with < 0.85 * without,
        "end of voice -> first reply text: {with:.0} ms preemptive, {without:.0} ms not"
    );
    // One request, taken over by the turn; the reply is the same.
    assert_eq!(early.openai.requests().len(), 1);
    assert_eq!(late.openai.requests().len(), 1);
    assert_eq!(
        shown(&mic),
        "You said: what's the weather in paris. That is interesting. Tell me more."
    );
    assert_eq!(metric(early.host.addr, USED).await, used + 1);
    assert_eq!(metric(early.host.addr, WASTED).await, wasted);
}

#[tokio::test]
async fn words_after_a_pause_drop_the_early_reply_unheard() {
    let _serial = SERIAL.lock().await;
    let s = stack(&["what's the weather", "in paris tomorrow"], true).await;
    let (used, wasted) = (
        metric(s.host.addr, USED).await,
        metric(s.host.addr, WASTED).await,
    );
    // A 450 ms pause: past the recogniser's 300 ms endpointing (its final ends the first
    // words), within the VAD's 600 ms hangover (one turn).
    let mut mic = say_with_a_pause(&s, 450).await;
    mic.until("the reply", |m| m["type"] == "agent_done").await;
    let finals: Vec<&Value> = mic
        .of_type("transcript")
        .into_iter()
        .filter(|m| m["final"] == true)
        .collect();
    assert_eq!(finals.len(), 1, "{finals:?}");
    assert_eq!(finals[0]["text"], "what's the weather in paris tomorrow");
    // The request made at the pause was dropped; the client saw only the reply to all the words.
    let requests = s.openai.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        shown(&mic),
        "You said: what's the weather in paris tomorrow. That is interesting. Tell me more."
    );
    let done = mic.of_type("agent_done");
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["interrupted"], false);
    assert_eq!(metric(s.host.addr, WASTED).await, wasted + 1);
    assert_eq!(metric(s.host.addr, USED).await, used + 1);
}

#[tokio::test]
async fn a_user_who_goes_on_after_the_commit_is_counted_as_a_turn_ended_too_early() {
    let _serial = SERIAL.lock().await;
    const CONTINUED: &str = r#"voice_turn_continued_total{by="silence"}"#;
    const ENDS: &str = r#"voice_turn_ends_total{by="silence"}"#;
    // A model slow to its first token (1 s), so the reply to the first words cannot be heard
    // before the user goes on.
    let s = stack_with(&["what's the weather", "in paris tomorrow"], 1000, "true").await;
    let (continued, ends) = (
        metric(s.host.addr, CONTINUED).await,
        metric(s.host.addr, ENDS).await,
    );
    // A 1200 ms pause: the silence rules end the first turn (600 ms hangover), then the user
    // goes on.
    let mut mic = say_with_a_pause(&s, 1200).await;
    let finals: Vec<Value> = {
        mic.until("the second turn's final transcript", |m| {
            m["type"] == "transcript" && m["final"] == true && m["turn"] == 2
        })
        .await;
        mic.of_type("transcript")
            .into_iter()
            .filter(|m| m["final"] == true)
            .cloned()
            .collect()
    };
    mic.until("the second reply", |m| {
        m["type"] == "agent_done" && m["turn"] == 2
    })
    .await;
    assert_eq!(finals.len(), 2, "{finals:?}");
    assert_eq!(finals[0]["text"], "what's the weather");
    // The first reply was dropped before anything of it was heard; the second answers both halves.
    let done = mic.of_type("agent_done");
    assert_eq!(done.len(), 2, "{done:?}");
    assert_eq!(
        (done[0]["turn"].as_u64(), done[0]["interrupted"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(done[0]["text"], "");
    assert_eq!(done[1]["interrupted"], false);
    // The model reads both halves as one message: nothing of the dropped reply between them, and
    // no two user messages in a row (which strict chat templates refuse).
    let last = s.openai.requests().pop().expect("a request");
    let said = last.conversation();
    assert_eq!(
        said,
        [("user", "what's the weather in paris tomorrow")],
        "{:?}",
        last.body
    );
    // Both turns were ended by the silence rules; the first was ended too early.
    assert_eq!(metric(s.host.addr, ENDS).await, ends + 2);
    assert_eq!(metric(s.host.addr, CONTINUED).await, continued + 1);
}
