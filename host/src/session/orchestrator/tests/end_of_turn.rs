//! The end-of-turn policy's say over words the VAD never counted as speech.

use super::harness::*;
use crate::behaviour::{TurnDecision, TurnTrigger};
use crate::session::events::{Action, Event, TurnEnd};
use crate::session::orchestrator::OrchestratorConfig;

fn with_policy(turn_policy: bool) -> Session {
    Session::new(
        OrchestratorConfig {
            turn_policy,
            ..OrchestratorConfig::default()
        },
        Policy::Manual,
    )
}

/// The policy's question in `out`: its number, trigger, text and silence so far.
fn asked(out: &[Action]) -> Option<(u32, TurnTrigger, String, u32)> {
    out.iter().find_map(|a| match a {
        Action::AskTurn { seq, event } => {
            Some((*seq, event.trigger, event.text.clone(), event.silence_ms))
        }
        _ => None,
    })
}

#[test]
fn without_a_policy_a_final_the_vad_never_heard_ends_the_turn_at_once() {
    let mut s = with_policy(false);
    let out = s.at(1000, final_text("the", true));
    assert_eq!(plans(&out).len(), 1, "{out:?}");
    assert_eq!(plans(&out)[0].1, "the");
}

#[test]
fn a_final_the_vad_never_heard_is_the_policy_s_to_judge_and_its_hold_keeps_the_turn_open() {
    let mut s = with_policy(true);
    // A short word too quiet or brief for the VAD: the recogniser still hears it.
    let out = s.at(1000, final_text("the", true));
    let (seq, trigger, text, silence_ms) = asked(&out).expect("the policy is asked");
    assert_eq!(
        (trigger, text.as_str(), silence_ms),
        (TurnTrigger::Transcript, "the", 0)
    );
    assert!(plans(&out).is_empty(), "no turn before the policy answers");
    let out = s.at(
        1030,
        Event::TurnDecided {
            seq,
            decision: TurnDecision::Wait(1500),
        },
    );
    assert!(plans(&out).is_empty());
    // The speaker goes on within the hold: one turn with all of it.
    let out = s.run_until(1800);
    assert!(plans(&out).is_empty(), "{out:?}");
    s.at(1800, vad_start(1800));
    s.at(2600, vad_end(2600));
    let out = s.at(2650, finalize_result("book of the month"));
    let (seq, _, text, _) = asked(&out).expect("the policy judges the whole utterance");
    assert_eq!(text, "the book of the month");
    let out = s.at(
        2680,
        Event::TurnDecided {
            seq,
            decision: TurnDecision::EndTurn,
        },
    );
    let planned = plans(&out);
    assert_eq!(planned.len(), 1, "{out:?}");
    assert_eq!(planned[0].1, "the book of the month");
}

#[test]
fn a_final_the_vad_never_heard_ends_the_turn_when_the_policy_says_so() {
    let mut s = with_policy(true);
    let out = s.at(1000, final_text("Thank you.", true));
    let (seq, ..) = asked(&out).expect("the policy is asked");
    let out = s.at(
        1020,
        Event::TurnDecided {
            seq,
            decision: TurnDecision::EndTurn,
        },
    );
    assert_eq!(ended_by(&out), vec![TurnEnd::Policy]);
    assert_eq!(plans(&out)[0].1, "Thank you.");
}

#[test]
fn an_unanswered_policy_leaves_the_vad_unheard_words_to_the_rules() {
    let mut s = with_policy(true);
    let out = s.at(1000, final_text("okay", true));
    assert!(asked(&out).is_some());
    // No answer: the rules take over once the answer is overdue, and the turn still ends.
    let out = s.run_until(10_000);
    assert_eq!(plans(&out).len(), 1, "{out:?}");
    assert_eq!(plans(&out)[0].1, "okay");
}
