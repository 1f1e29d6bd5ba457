//! Replies replaced by newer turns, and the end of the session (stop, server drain).

use super::harness::*;
use crate::behaviour::{ChatMessage, Role};
use crate::session::events::{Action, Event};
use crate::session::orchestrator::State;
use crate::transport::protocol::{close, ServerMessage};

#[test]
fn a_new_turn_while_the_reply_is_generated_cancels_the_stale_reply() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "what's the weather");
    s.at(10, s.planned_llm(turn));
    let out = s.at(20, llm_token(turn, "Let me"));
    assert_eq!(agent_text(&out), "Let me");
    assert_eq!(s.orch.state(), State::Thinking);

    s.at(300, vad_start(300));
    // Final words before any of the reply was heard: it is dropped unheard.
    let out = s.at(900, final_text("in Paris", true));
    assert!(cancelled(&out, turn), "{out:?}");
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    let out = s.at(950, vad_end(930));
    assert_eq!(
        plans(&out),
        vec![(
            turn + 1,
            "in Paris".to_string(),
            vec![ChatMessage::new(Role::User, "what's the weather")]
        )]
    );
    assert_eq!(
        s.orch.memory().messages(),
        vec![ChatMessage::new(Role::User, "what's the weather in Paris")]
    );
    // The old stream's late tokens do not reach the client.
    assert!(s.feed(llm_token(turn, " check.")).is_empty());
    assert!(s.feed(s.planned_llm(turn)).is_empty());
}

#[test]
fn a_reply_replaced_before_anything_of_it_was_seen_still_gets_its_agent_done() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    let out = s.at(10, Event::UserText("hello again".into()));
    assert!(out.contains(&Action::CancelLlm { turn }));
    assert!(
        !out.contains(&Action::Send(ServerMessage::Interrupt { turn })),
        "nothing to flush"
    );
    assert_eq!(
        agent_done(&out),
        vec![(turn, String::new(), true)],
        "the client learns what became of turn 1"
    );
    assert_eq!(plans(&out)[0].0, turn + 1);
}

#[test]
fn a_typed_turn_while_speaking_interrupts_and_keeps_what_was_heard() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "tell me the plan");
    s.reply(
        turn,
        "First we meet. Then we eat.",
        Speech::Aligned { ms_per_char: 100 },
    );
    // 1500 ms heard: "First we meet." (14 chars) and a bit.
    let out = s.at(1500, Event::UserText("skip that".into()));
    assert!(cancelled(&out, turn));
    assert_eq!(
        agent_done(&out),
        vec![(turn, "First we meet.".to_string(), true)]
    );
    assert_eq!(
        plans(&out)[0].2.last(),
        Some(&ChatMessage::new(Role::Assistant, "First we meet."))
    );
}

#[test]
fn stop_cancels_the_reply_and_closes_normally() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.reply(
        turn,
        "Hi there.",
        Speech::Unaligned {
            ms: 3000,
            done: true,
        },
    );
    let out = s.at(500, Event::Stop);
    assert!(cancelled(&out, turn));
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Hi".to_string(), true)],
        "what was heard in 500 ms at the estimated speaking rate"
    );
    assert_eq!(
        out.last(),
        Some(&Action::Close {
            code: close::NORMAL,
            reason: "session stopped".into()
        })
    );
    // A closed session does nothing more.
    assert!(s.run_until(10_000).is_empty());
    assert!(s.feed(Event::UserText("hello?".into())).is_empty());
    assert_eq!(s.orch.next_wakeup(), None);
}

#[test]
fn drain_when_idle_closes_at_once() {
    let mut s = Session::with_rules();
    let out = s.at(100, Event::Drain);
    assert_eq!(messages(&out), vec![&ServerMessage::Shutdown {}]);
    assert_eq!(closes(&out), vec![close::GOING_AWAY]);
}

#[test]
fn drain_lets_the_reply_in_flight_finish_then_closes() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.at(10, s.planned_llm(turn));
    s.feed(llm_token(turn, "Hi there."));
    let out = s.at(20, Event::Drain);
    assert_eq!(messages(&out), vec![&ServerMessage::Shutdown {}]);
    assert!(closes(&out).is_empty());
    // A repeated drain does not announce the shutdown twice.
    assert!(messages(&s.feed(Event::Drain)).is_empty());

    s.feed(llm_done(turn));
    s.at(30, tts_audio(turn, 1000, None));
    s.feed(Event::TtsDone { turn });
    // A new user turn is not started while draining.
    assert!(plans(&s.at(200, Event::UserText("one more thing".into()))).is_empty());
    let out = s.run_until(5000);
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Hi there.".to_string(), false)]
    );
    assert_eq!(closes(&out), vec![close::GOING_AWAY]);
    let done = out
        .iter()
        .position(|a| matches!(a, Action::Send(ServerMessage::AgentDone { .. })));
    let close = out.iter().position(|a| matches!(a, Action::Close { .. }));
    assert!(done < close, "the reply ends before the session");
}

#[test]
fn drain_closes_once_a_barge_in_ends_the_reply() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.reply(
        turn,
        "Hi there, how are you today?",
        Speech::Unaligned {
            ms: 8000,
            done: true,
        },
    );
    s.at(100, Event::Drain);
    s.at(4000, vad_start(4000));
    let out = s.at(4200, interim("stop talking please right now"));
    assert!(cancelled(&out, turn));
    assert_eq!(closes(&out), vec![close::GOING_AWAY]);
}
