//! Events that race in a real conversation: turns arriving while replies are planned, barge-ins
//! that outlive the user's speech, false interruptions, and providers that go quiet.

use super::harness::*;
use crate::behaviour::{BargeInDecision, ChatMessage, Role};
use crate::session::events::Event;
use crate::session::orchestrator::{OrchestratorConfig, State};
use crate::transport::protocol::ServerMessage;

const STORY: &str = "Once upon a time there was a lighthouse keeper. He lived alone on a rock. \
Every night he lit the lamp. Ships passed safely in the dark. One winter a storm came.";

/// A long reply (24 s of audio) playing from a typed turn at 0.
fn story(policy: Policy) -> (Session, u32) {
    let mut s = Session::new(OrchestratorConfig::default(), policy);
    let turn = s.typed(0, "tell me a long story");
    s.reply(
        turn,
        STORY,
        Speech::Unaligned {
            ms: 24_000,
            done: true,
        },
    );
    (s, turn)
}

#[test]
fn back_to_back_typed_turns_each_end_with_agent_done_and_the_last_is_answered() {
    let mut s = Session::with_rules();
    let mut out = s.at(0, Event::UserText("first question".into()));
    let first = planned_turn(&out).unwrap();
    out.extend(s.at(0, Event::UserText("second question".into())));
    let second = first + 1;
    for t in ["third", "fourth", "fifth"] {
        out.extend(s.at(1, Event::UserText(t.into())));
    }
    // Each superseded turn is closed for the client: nothing of it was said.
    let superseded: Vec<_> = (first..second + 3)
        .map(|turn| (turn, String::new(), true))
        .collect();
    assert_eq!(agent_done(&out), superseded);
    assert_eq!(
        plans(&out).iter().map(|p| p.0).collect::<Vec<_>>(),
        (first..=second + 3).collect::<Vec<_>>()
    );
    // Answers to the older plans arrive late and change nothing.
    out.extend(s.feed(s.planned_llm(first)));
    out.extend(s.feed(s.planned_llm(second)));
    assert!(agent_text(&out).is_empty());
    let last = second + 3;
    out.extend(s.reply(
        last,
        "Here you go.",
        Speech::Unaligned {
            ms: 500,
            done: true,
        },
    ));
    out.extend(s.run_until(2000));
    let mut expected = superseded;
    expected.push((last, "Here you go.".into(), false));
    assert_eq!(agent_done(&out), expected);
    assert_eq!(s.orch.state(), State::Listening);
    assert_eq!(s.typed(3000, "and the next one"), last + 1);
}

#[test]
fn a_seven_word_barge_in_early_in_a_long_reply_interrupts_once_the_minimum_has_passed() {
    let (mut s, turn) = story(Policy::Rules(Default::default()));
    s.at(500, vad_start(500));
    s.at(1200, interim("what about the weather"));
    s.at(2000, interim("what about the weather in paris today"));
    s.at(2300, vad_end(2300));
    let out = s.at(
        2400,
        finalize_result("what about the weather in paris today"),
    );
    assert!(
        agent_done(&out).is_empty(),
        "2400 ms heard: held back by the 3000 ms minimum"
    );
    assert!(plans(&out).is_empty(), "the words are held, not a turn yet");
    // The user has stopped; the policy is asked again as the agent goes on.
    let out = s.run_until(2999);
    assert!(agent_done(&out).is_empty());
    let out = s.run_until(3200);
    let done = agent_done(&out);
    assert_eq!(done.len(), 1, "interrupted once the minimum passed");
    assert!(done[0].2);
    assert_eq!(
        plans(&out),
        vec![(
            turn + 1,
            "what about the weather in paris today".to_string(),
            vec![
                ChatMessage::new(Role::User, "tell me a long story"),
                ChatMessage::new(Role::Assistant, done[0].1.as_str()),
            ]
        )],
        "the held words are the next turn"
    );
    let last_question = &s.asked.last().unwrap().0;
    assert_eq!(last_question.word_count, 7);
    assert!(last_question.agent_spoken_ms >= 3000);
}

#[test]
fn a_held_barge_in_the_policy_finally_ignores_is_dropped_and_the_reply_goes_on() {
    let (mut s, turn) = story(Policy::Manual);
    let out = s.at(4000, vad_start(4000));
    let (_, seq, _) = questions(&out).pop().unwrap();
    s.decide(turn, seq, BargeInDecision::Wait);
    s.at(4300, interim("hang on a second"));
    s.at(4600, vad_end(4600));
    let out = s.at(4700, finalize_result("hang on a second"));
    let (_, seq, question) = questions(&out)
        .pop()
        .expect("asked again with the final transcript");
    assert_eq!(question.interim_text, "hang on a second");
    assert!(agent_done(&out).is_empty());
    // Asked again on the timer while the answer is `wait`.
    s.decide(turn, seq, BargeInDecision::Wait);
    let out = s.run_until(4900);
    let (_, seq, _) = questions(&out).pop().expect("re-asked after 200 ms");
    let out = s.decide(turn, seq, BargeInDecision::Ignore);
    assert!(agent_done(&out).is_empty());
    let out = s.run_until(60_000);
    assert_eq!(agent_done(&out), vec![(turn, STORY.to_string(), false)]);
    assert!(plans(&out).is_empty(), "ignored words are not a turn");
    assert!(questions(&out).is_empty(), "and the barge-in is over");
}

#[test]
fn held_words_fold_into_the_next_typed_turn_and_never_come_back() {
    let (mut s, turn) = story(Policy::Manual);
    let out = s.at(4000, vad_start(4000));
    let (_, seq, _) = questions(&out).pop().unwrap();
    s.decide(turn, seq, BargeInDecision::Wait);
    s.at(4300, interim("and the dog"));
    s.at(4600, vad_end(4600));
    s.at(4700, finalize_result("and the dog"));
    let out = s.at(5000, Event::UserText("skip to the end".into()));
    assert_eq!(
        transcripts(&out).last(),
        Some(&(turn + 1, "and the dog skip to the end".to_string(), true))
    );
    let next = turn + 1;
    let mut out = s.reply(
        next,
        "The end.",
        Speech::Unaligned {
            ms: 500,
            done: true,
        },
    );
    out.extend(s.run_until(60_000));
    assert_eq!(
        agent_done(&out),
        vec![(next, "The end.".to_string(), false)]
    );
    assert!(plans(&out).is_empty(), "no ghost turn of the held words");
}

#[test]
fn an_interruption_whose_words_come_back_empty_resumes_the_reply() {
    let (mut s, _) = story(Policy::Always(BargeInDecision::Interrupt));
    let out = s.at(4000, vad_start(4000));
    assert_eq!(agent_done(&out).len(), 1, "interrupted at once");
    s.at(4200, interim("hmm well maybe"));
    s.at(4500, vad_end(4500));
    // The recogniser revises its guess to nothing.
    let out = s.at(4600, finalize_result(""));
    assert!(plans(&out).is_empty(), "no turn without words");
    let text = agent_text(&out);
    assert!(
        !text.is_empty() && STORY.ends_with(&text),
        "the agent goes on with what it had left to say: {text:?}"
    );
    assert_eq!(s.orch.state(), State::Thinking);
    assert!(messages(&out)
        .iter()
        .all(|m| !matches!(m, ServerMessage::Transcript { is_final: true, .. })));
}

#[test]
fn a_silent_llm_stream_ends_with_an_error_and_the_session_listens_again() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.at(5, s.planned_llm(turn));
    s.feed(llm_token(turn, "Sure. Let"));
    s.at(100, tts_audio(turn, 300, None));
    let out = s.run_until(10_004);
    assert!(agent_done(&out).is_empty(), "not before the stall timeout");
    let out = s.run_until(10_005);
    assert!(out.contains(&crate::session::events::Action::CancelLlm { turn }));
    assert_eq!(error_codes(&out), vec!["provider_unavailable".to_string()]);
    assert_eq!(
        spoken_sentences(&out),
        Vec::<String>::new(),
        "\"Let\" is never spoken"
    );
    let mut out = s.at(10_100, Event::TtsDone { turn });
    out.extend(s.run_until(11_000));
    assert_eq!(agent_done(&out), vec![(turn, "Sure.".to_string(), true)]);
    assert_eq!(s.orch.state(), State::Listening);
}

#[test]
fn a_model_at_work_on_tool_calls_is_not_taken_for_a_stalled_one() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "what is the weather");
    s.at(5, s.planned_llm(turn));
    // Tool-call rounds: no reply text for 25 s, but the stream says it is still at work.
    let mut out = Vec::new();
    for at in (3_000..=25_000).step_by(3_000) {
        out.extend(s.run_until(at));
        out.extend(s.at(at, llm_working(turn)));
    }
    assert!(
        !out.contains(&crate::session::events::Action::CancelLlm { turn }),
        "cancelled while the model was at work"
    );
    assert!(error_codes(&out).is_empty(), "{:?}", error_codes(&out));
    s.at(25_100, llm_token(turn, "It is sunny."));
    s.feed(llm_done(turn));
    s.at(25_200, tts_audio(turn, 300, None));
    let mut out = s.at(25_300, Event::TtsDone { turn });
    out.extend(s.run_until(27_000));
    assert_eq!(
        agent_done(&out),
        vec![(turn, "It is sunny.".to_string(), false)]
    );
    // Silence after the work is a stall again.
    let turn = s.typed(30_000, "and tomorrow");
    s.at(30_005, s.planned_llm(turn));
    s.at(33_000, llm_working(turn));
    let out = s.run_until(43_001);
    assert!(out.contains(&crate::session::events::Action::CancelLlm { turn }));
    assert_eq!(error_codes(&out), vec!["provider_unavailable".to_string()]);
}

#[test]
fn a_speech_stream_that_owes_audio_and_goes_silent_is_ended() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.at(5, s.planned_llm(turn));
    s.feed(llm_token(turn, "Hi there."));
    s.feed(llm_done(turn));
    assert!(agent_done(&s.run_until(10_004)).is_empty());
    let out = s.run_until(10_005);
    assert_eq!(error_codes(&out), vec!["provider_unavailable".to_string()]);
    assert!(cancelled(&out, turn));
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    assert_eq!(s.orch.state(), State::Listening);
    assert!(s.orch.memory().last().is_some_and(|m| m.role == Role::User));
}
