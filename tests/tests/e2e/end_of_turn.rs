//! The end-of-turn slot end to end, against the cloud fakes: the reference policy
//! (`plugins/turn-smart`) ends a finished question sooner than the silence rules do, and holds a
//! turn whose words promise more across a pause the silence rules take as its end. Each test
//! runs the same speech with and without the plug-in, so the comparison is within one run.

use serde_json::Value;
use std::time::{Duration, Instant};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::microphone::Microphone;
use voice_tests::{plugins, speech};

/// The cloud fakes and a host, with the reference turn policy or without; `extra` settings on
/// top. The policy decides on the words alone here (`TURN_MODEL=none`): the fakes' buzz is no
/// speech the end-of-turn model can judge (`the_model_judges_each_pause` covers the model).
async fn stack_with(utterances: &[&str], policy: bool, extra: &[(&str, &str)]) -> CloudStack {
    let turn = plugins::component("turn-smart");
    let turn = if policy {
        turn.to_str().unwrap().to_string()
    } else {
        "none".to_string()
    };
    let mut settings = vec![("TURN_PLUGIN", turn.as_str()), ("TURN_MODEL", "none")];
    settings.extend_from_slice(extra);
    CloudStack::start(
        DeepgramScript::new(utterances.iter().copied()),
        OpenAiScript::default(),
        ElevenLabsScript::default(),
        &settings,
    )
    .await
}

async fn stack(utterances: &[&str], policy: bool) -> CloudStack {
    stack_with(utterances, policy, &[]).await
}

fn is_final(m: &Value) -> bool {
    m["type"] == "transcript" && m["final"] == true
}

async fn microphone(s: &CloudStack) -> Microphone {
    Microphone::ready(s.host.addr).await
}

/// Says one utterance (voice from 400 to 1600 ms) and returns the ms from the end of the voice
/// to the turn's final transcript, as the client measures it, and the client.
async fn end_of_turn_delay(s: &CloudStack) -> (f64, Microphone) {
    let mut mic = microphone(s).await;
    let mut audio = speech::silence(400);
    audio.extend(speech::utterance(1200, 2500));
    let started = Instant::now();
    mic.say(&audio);
    let fin = mic.until("the final transcript", is_final).await;
    assert_eq!(fin["text"], "what's the weather in paris", "{fin}");
    (started.elapsed().as_secs_f64() * 1000.0 - 1600.0, mic)
}

#[tokio::test]
async fn a_finished_question_ends_sooner_with_the_reference_policy() {
    let question = ["what's the weather in paris"];
    let rules = stack(&question, false).await;
    let (by_rules, _) = end_of_turn_delay(&rules).await;
    let policy = stack(&question, true).await;
    let (by_policy, mic) = end_of_turn_delay(&policy).await;
    // `/metrics` says what ended it (the counter is the process's: other tests add to it).
    let by = r#"voice_turn_ends_total{by="policy"}"#;
    assert!(voice_tests::metrics::metric(policy.host.addr, by).await >= 1);
    eprintln!("end of voice -> final transcript: {by_policy:.0} ms with the policy, {by_rules:.0} ms by the rules");
    // The rules wait for the VAD's 600 ms hangover; the policy ends the turn when the
    // recogniser's final words (300 ms endpointing) make a finished question.
    assert!(
        by_policy < 0.8 * by_rules,
        "end of voice -> final transcript: {by_policy:.0} ms with the policy, {by_rules:.0} ms by the rules"
    );
    // The end of speech the policy brought forward is reported where the voice ended.
    let vad = mic.of_type("vad");
    assert_eq!(vad.len(), 2, "{vad:?}");
    assert_eq!(vad[1]["event"], "speech_end");
    let end = vad[1]["at_ms"].as_u64().unwrap();
    assert!(
        (1560..=1700).contains(&end),
        "speech_end at {end} ms: {vad:?}"
    );
    // And the conversation goes on: the reply comes as usual.
    let mut mic = mic;
    mic.until("the reply", |m| m["type"] == "agent_done").await;
}

/// Says "I'd like to book a table for", pauses 900 ms (more than the VAD's hangover), then "four
/// people please"; returns the final transcripts.
async fn held_across_a_pause(policy: bool) -> Vec<String> {
    let s = stack(
        &["I'd like to book a table for", "four people please"],
        policy,
    )
    .await;
    let mut mic = microphone(&s).await;
    let mut audio = speech::silence(400);
    audio.extend(speech::utterance(1200, 900));
    audio.extend(speech::utterance(900, 2500));
    mic.say(&audio);
    mic.finish_saying().await;
    mic.until("the reply", |m| m["type"] == "agent_done").await;
    mic.log
        .iter()
        .filter(|m| is_final(m))
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn an_unfinished_sentence_is_not_cut_off_at_a_pause() {
    // The silence rules cut the sentence at the pause (the test's premise)...
    let by_rules = held_across_a_pause(false).await;
    assert_eq!(
        by_rules.first().map(String::as_str),
        Some("I'd like to book a table for"),
        "{by_rules:?}"
    );
    // ...the policy holds the turn after "for", and the user's next words join it.
    let by_policy = held_across_a_pause(true).await;
    assert_eq!(
        by_policy,
        ["I'd like to book a table for four people please"],
        "{by_policy:?}"
    );
}

/// A host with the model on two threads (pauses at `TURN_PAUSE_MS` 150) recording its plug-in calls in
/// `dir`; the client says one utterance (voice from 400 to 1600 ms) and hears the reply. Returns
/// the turn slot's recorded calls once the question about the final words is among them.
async fn turn_calls_with_the_model(utterance: &str, dir: &std::path::Path) -> Vec<Value> {
    let _ = std::fs::remove_dir_all(dir);
    let s = stack_with(
        &[utterance],
        true,
        &[
            ("TURN_MODEL", "smart-turn"),
            ("TURN_MODEL_THREADS", "2"),
            ("TURN_PAUSE_MS", "150"),
            ("PLUGIN_RECORD", dir.to_str().unwrap()),
        ],
    )
    .await;
    let mut mic = microphone(&s).await;
    let mut audio = speech::silence(400);
    audio.extend(speech::utterance(1200, 2500));
    mic.say(&audio);
    mic.until("the reply", |m| m["type"] == "agent_done").await;
    let read = || -> Vec<Value> {
        plugins::recorded_calls(dir)
            .into_iter()
            .filter(|l| l["slot"] == "turn")
            .collect()
    };
    voice_tests::eventually(
        "the turn calls in the recording",
        Duration::from_secs(30),
        || read().iter().any(|l| l["input"]["trigger"] == "transcript"),
    )
    .await;
    let calls = read();
    let _ = std::fs::remove_dir_all(dir);
    calls
}

fn call<'a>(calls: &'a [Value], trigger: &str) -> &'a Value {
    calls
        .iter()
        .find(|l| l["input"]["trigger"] == trigger)
        .unwrap_or_else(|| panic!("no question at the {trigger}: {calls:#?}"))
}

fn probability(call: &Value) -> f64 {
    call["input"]["model_probability"]
        .as_f64()
        .unwrap_or_else(|| panic!("not judged: {call}"))
}

/// With the model on, a pause is judged from the turn's audio and the policy sees the
/// probability; questions about new words in the same silence see the latest.
#[tokio::test]
async fn the_model_judges_each_pause() {
    let dir = std::env::temp_dir().join(format!("voice-turn-model-{}", std::process::id()));
    let calls = turn_calls_with_the_model("what's the weather in paris", &dir).await;
    let pause = call(&calls, "pause");
    let p = probability(pause);
    assert!((0.0..=1.0).contains(&p), "{pause}");
    // Asked once the silence reached TURN_PAUSE_MS, before the recogniser's final words (its
    // endpointing is 300 ms) and the VAD's 600 ms end of speech.
    let silence = pause["input"]["silence_ms"].as_u64().unwrap();
    assert!((150..300).contains(&silence), "{pause}");
    assert_eq!(pause["outcome"], "plugin", "{pause}");
    // The final words came after the pause: the question about them carries its judgement.
    let q = probability(call(&calls, "transcript"));
    assert!((q - p).abs() < 1e-6, "{calls:#?}");
}

/// The end of speech is judged again, from the turn's audio with its 600 ms of silence: on
/// human speech that second answer lifts finished sentences the model doubted at the pause out
/// of the policy's hold (docs/benchmarks.md, "One judgement per silence"). The policy, holding
/// the turn after "for", is asked at the end of speech with a probability of its own.
#[tokio::test]
async fn the_end_of_speech_is_judged_again() {
    let dir = std::env::temp_dir().join(format!("voice-turn-end-{}", std::process::id()));
    let calls = turn_calls_with_the_model("I'd like to book a table for", &dir).await;
    let p = probability(call(&calls, "pause"));
    let end = call(&calls, "speech_end");
    // Asked at the VAD's end of speech (its 600 ms hangover, give or take a frame), well after
    // the pause (150-300 ms).
    assert!(end["input"]["silence_ms"].as_u64().unwrap() >= 500, "{end}");
    let q = probability(end);
    assert!((0.0..=1.0).contains(&q), "{end}");
    assert_ne!(q, p, "the pause's answer was reused: {calls:#?}");
}

#[tokio::test]
async fn a_turn_the_policy_ended_too_early_is_counted_against_its_version() {
    const ADMIN: &str = "end-of-turn-test-admin-token-0123456789";
    let turn = plugins::component("turn-smart");
    // A model slow to its first token (1 s): the reply cannot be heard before the user goes on.
    let s = CloudStack::start(
        DeepgramScript::new(["what's the weather in paris", "and in rome tomorrow"]),
        OpenAiScript {
            first_token_delay: Duration::from_millis(1000),
            ..OpenAiScript::default()
        },
        ElevenLabsScript::default(),
        &[
            ("TURN_PLUGIN", turn.to_str().unwrap()),
            ("TURN_MODEL", "none"),
            ("ADMIN_TOKEN", ADMIN),
        ],
    )
    .await;
    let continued = r#"voice_turn_continued_total{by="policy"}"#;
    let before = voice_tests::metrics::metric(s.host.addr, continued).await;
    let mut mic = microphone(&s).await;
    // A finished question, which the policy ends at once; the user goes on after 1.2 s.
    let mut audio = speech::silence(400);
    audio.extend(speech::utterance(1200, 1200));
    audio.extend(speech::utterance(900, 2500));
    mic.say(&audio);
    mic.until("the second reply", |m| {
        m["type"] == "agent_done" && m["turn"] == 2
    })
    .await;
    let done = mic.of_type("agent_done");
    assert_eq!(done[0]["interrupted"], true, "{done:?}");
    assert_eq!(done[0]["text"], "", "the first reply was heard: {done:?}");
    // The version that ended the turn has it in its figures (this host's alone)...
    let (status, listing) =
        voice_tests::plugins::admin_with(s.host.addr, ADMIN, "GET", "/admin/plugins", None).await;
    assert_eq!(status, 200, "{listing}");
    let usage = &voice_tests::plugins::slot_entry(&listing, "turn")["usage"];
    assert!(usage["turn_ends"].as_u64() >= Some(1), "{usage}");
    assert_eq!(usage["turns_continued"], 1, "{usage}");
    // ...and the process's counter (other tests add to it) has one more.
    assert!(voice_tests::metrics::metric(s.host.addr, continued).await > before);
}

/// Says "can you tell me", pauses 800 ms (past the VAD's hangover), then "the way to the
/// station", to a host with the reference policy and `TURN_WORDS_MODEL` = `words`; returns the
/// final transcripts and the turn slot's recorded calls.
/// What the user saw, the turn plug-in's recorded calls and how many questions the text model
/// answered meanwhile (`/metrics`: the process's count, which other tests add to).
async fn open_words_across_a_pause(
    words: &str,
    dir: &std::path::Path,
) -> (Vec<String>, Vec<Value>, u64) {
    let _ = std::fs::remove_dir_all(dir);
    let s = stack_with(
        &["can you tell me", "the way to the station"],
        true,
        &[
            ("TURN_WORDS_MODEL", words),
            // Two threads, each with its own cache: the session reads on one of them.
            ("TURN_WORDS_THREADS", "2"),
            ("PLUGIN_RECORD", dir.to_str().unwrap()),
        ],
    )
    .await;
    let answered = r#"voice_turn_model_answers_total{model="words",outcome="answered"}"#;
    let before = voice_tests::metrics::metric(s.host.addr, answered).await;
    let mut mic = microphone(&s).await;
    let mut audio = speech::silence(400);
    audio.extend(speech::utterance(1200, 800));
    audio.extend(speech::utterance(900, 2500));
    mic.say(&audio);
    mic.finish_saying().await;
    mic.until("the reply", |m| m["type"] == "agent_done").await;
    let finals = mic
        .log
        .iter()
        .filter(|m| is_final(m))
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect();
    let calls = plugins::recorded_calls(dir)
        .into_iter()
        .filter(|l| l["slot"] == "turn")
        .collect();
    let _ = std::fs::remove_dir_all(dir);
    let after = voice_tests::metrics::metric(s.host.addr, answered).await;
    (finals, calls, after - before)
}

/// "Can you tell me" reads as a finished question to the policy's word rules, which end the
/// turn at the pause; the text end-of-turn model reads it as going on, and the policy holds
/// the turn until 1 s of silence, so the rest of the sentence joins it.
#[tokio::test]
async fn words_the_text_model_reads_as_unfinished_are_not_cut_off() {
    let dir = std::env::temp_dir().join(format!("voice-turn-words-{}", std::process::id()));
    let (cut, calls, _) = open_words_across_a_pause("none", &dir).await;
    assert_eq!(
        cut.first().map(String::as_str),
        Some("can you tell me"),
        "without the text model the turn ends at the pause: {cut:?}"
    );
    assert!(
        calls
            .iter()
            .all(|c| c["input"].get("words_probability").is_none()),
        "{calls:#?}"
    );
    let (held, calls, answered) = open_words_across_a_pause("smollm2", &dir).await;
    assert_eq!(held, ["can you tell me the way to the station"], "{held:?}");
    // `/metrics` counts the questions it answered (the pause's, at least).
    assert!(answered >= 1, "{answered}");
    // The policy saw how unlikely an end the words were, at the pause.
    let pause = call(&calls, "pause");
    let p = pause["input"]["words_probability"]
        .as_f64()
        .unwrap_or_else(|| panic!("no words probability: {pause}"));
    assert!(p < 0.02, "{pause}");
}
