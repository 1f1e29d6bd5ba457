//! The user speaking while the agent speaks: when it interrupts, what is remembered, and when
//! the built-in rules (or a plug-in) hold it back.

use super::harness::*;
use crate::behaviour::defaults::BargeInRules;
use crate::behaviour::{BargeInDecision, ChatMessage, Role};
use crate::session::events::Event;
use crate::session::orchestrator::{OrchestratorConfig, State};
use regex::Regex;
use std::sync::Arc;

const TRAINS: &str = "The first train leaves at nine. The second one leaves at ten.";

/// A typed turn at 1000 whose reply starts playing at once.
fn speaking(s: &mut Session, reply: &str, speech: Speech) -> u32 {
    let turn = s.typed(1000, "when do the trains leave");
    s.reply(turn, reply, speech);
    assert_eq!(s.orch.state(), State::Speaking);
    turn
}

#[test]
fn an_accepted_barge_in_stops_the_reply_and_keeps_only_the_aligned_heard_words() {
    let mut s = Session::with_rules();
    let turn = speaking(&mut s, TRAINS, Speech::Aligned { ms_per_char: 80 });
    let mut out = s.at(4000, vad_start(3000));
    out.extend(s.at(4200, interim("wait")));
    assert!(
        agent_done(&out).is_empty(),
        "one word is below the threshold"
    );
    assert!(audio_ms(&out) > 0, "the reply goes on meanwhile");

    // 3400 ms heard: the first sentence (2480 ms) and "The second " (11 x 80 ms).
    let out = s.at(4400, interim("wait I need the earlier one"));
    let heard = "The first train leaves at nine. The second";
    assert!(cancelled(&out, turn), "{out:?}");
    assert_eq!(agent_done(&out), vec![(turn, heard.to_string(), true)]);
    let (question, decision) = s.asked.last().unwrap();
    assert_eq!(*decision, Some(BargeInDecision::Interrupt));
    assert_eq!(question.word_count, 6);
    assert_eq!(question.agent_spoken_ms, 3400);
    assert_eq!(question.spoken_text, heard);
    assert_eq!(question.remaining_text, "one leaves at ten.");
    assert_eq!(
        s.orch.memory().last(),
        Some(&ChatMessage::new(Role::Assistant, heard))
    );

    // The barge-in utterance is the next turn, planned with the truncated history.
    s.at(4600, final_text("wait I need the earlier one", true));
    let out = s.at(4650, vad_end(4600));
    assert_eq!(
        plans(&out),
        vec![(
            turn + 1,
            "wait I need the earlier one".to_string(),
            vec![
                ChatMessage::new(Role::User, "when do the trains leave"),
                ChatMessage::new(Role::Assistant, heard),
            ]
        )]
    );

    // Nothing more of the old reply reaches the client, whatever its providers still send.
    assert_eq!(audio_ms(&s.run_until(9000)), 0);
    for event in [
        llm_token(turn, " More."),
        tts_audio(turn, 500, None),
        Event::TtsDone { turn },
        llm_done(turn),
    ] {
        assert!(s.feed(event).is_empty());
    }
}

#[test]
fn the_clients_playback_report_decides_what_was_heard() {
    let mut s = Session::with_rules();
    let reply = "Alpha bravo charlie delta echo foxtrot.";
    let turn = speaking(
        &mut s,
        reply,
        Speech::Unaligned {
            ms: 8000,
            done: true,
        },
    );
    // The client is behind the server's estimate (6000 ms at 7000): it played 4000 ms at 6900,
    // so 4200 ms by 7100.
    s.at(
        6900,
        Event::Playback {
            turn: Some(turn),
            played_ms: 4000,
        },
    );
    // A late report about another reply says nothing about this one.
    s.at(
        6950,
        Event::Playback {
            turn: Some(turn - 1),
            played_ms: 100,
        },
    );
    s.at(7000, vad_start(6000));
    let out = s.at(7100, interim("stop stop I said stop"));
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Alpha bravo charlie".to_string(), true)]
    );
    assert_eq!(s.asked.last().unwrap().0.agent_spoken_ms, 4200);
}

#[test]
fn without_timing_or_report_the_heard_words_are_estimated_from_the_speaking_rate() {
    let mut s = Session::with_rules();
    let reply = "The museum opens at nine and closes at six on weekdays.";
    // The TTS is still streaming: no total length to scale by, so 14 characters a second.
    let turn = speaking(
        &mut s,
        reply,
        Speech::Unaligned {
            ms: 6000,
            done: false,
        },
    );
    s.at(4300, vad_start(3300));
    let out = s.at(4500, interim("what about the weekend then"));
    assert_eq!(
        agent_done(&out),
        vec![(
            turn,
            "The museum opens at nine and closes at six on".to_string(),
            true
        )]
    );
    assert_eq!(
        s.orch.memory().last().unwrap().content,
        "The museum opens at nine and closes at six on"
    );
}

#[test]
fn a_barge_in_before_the_minimum_agent_time_waits_until_it_is_reached() {
    let mut s = Session::with_rules();
    let turn = speaking(
        &mut s,
        TRAINS,
        Speech::Unaligned {
            ms: 8000,
            done: true,
        },
    );
    s.at(2500, vad_start(1500));
    let out = s.at(2700, interim("no no that is wrong"));
    assert!(
        agent_done(&out).is_empty(),
        "1700 ms heard is below the 3000 ms minimum"
    );
    // The user goes on speaking; the barge-in is judged again as the agent keeps talking.
    let out = s.run_until(3999);
    assert!(agent_done(&out).is_empty());
    assert!(audio_ms(&out) > 0);
    let out = s.run_until(4300);
    assert_eq!(agent_done(&out).len(), 1);
    assert!(agent_done(&out)[0].2);
    assert!(cancelled(&out, turn));
    for (question, decision) in &s.asked {
        let expected = if question.word_count >= 5 && question.agent_spoken_ms >= 3000 {
            BargeInDecision::Interrupt
        } else {
            BargeInDecision::Wait
        };
        assert_eq!(*decision, Some(expected), "{question:?}");
    }
}

#[test]
fn speech_below_the_word_threshold_does_not_interrupt_and_is_the_next_turn() {
    let mut s = Session::with_rules();
    let turn = speaking(
        &mut s,
        TRAINS,
        Speech::Unaligned {
            ms: 6000,
            done: true,
        },
    );
    s.at(4500, vad_start(3500));
    s.at(4700, interim("hold on"));
    s.at(5000, vad_end(4000));
    let out = s.at(5100, final_text("hold on", false));
    assert!(agent_done(&out).is_empty() && plans(&out).is_empty());
    let out = s.run_until(6999);
    assert!(agent_done(&out).is_empty(), "the reply plays to its end");
    let out = s.run_until(7000);
    assert_eq!(agent_done(&out), vec![(turn, TRAINS.to_string(), false)]);
    assert_eq!(
        plans(&out),
        vec![(
            turn + 1,
            "hold on".to_string(),
            vec![
                ChatMessage::new(Role::User, "when do the trains leave"),
                ChatMessage::new(Role::Assistant, TRAINS),
            ]
        )]
    );
}

#[test]
fn backchannels_neither_interrupt_nor_become_a_turn() {
    let mut s = Session::with_rules();
    let turn = speaking(
        &mut s,
        TRAINS,
        Speech::Unaligned {
            ms: 6000,
            done: true,
        },
    );
    s.at(4500, vad_start(3500));
    s.at(4600, interim("uh-huh"));
    s.at(4800, interim("uh-huh yeah okay"));
    s.at(5000, vad_end(4000));
    let out = s.at(5100, final_text("uh-huh yeah okay", false));
    assert!(agent_done(&out).is_empty() && plans(&out).is_empty());
    let out = s.run_until(20_000);
    assert_eq!(agent_done(&out), vec![(turn, TRAINS.to_string(), false)]);
    assert!(plans(&out).is_empty(), "no turn for a backchannel");
    assert_eq!(s.orch.memory().len(), 2);
    assert_eq!(s.orch.state(), State::Listening);
}

#[test]
fn real_words_after_a_backchannel_are_judged_again() {
    let mut s = Session::with_rules();
    let turn = speaking(
        &mut s,
        TRAINS,
        Speech::Unaligned {
            ms: 6000,
            done: true,
        },
    );
    s.at(4500, vad_start(3500));
    s.at(4600, interim("yeah"));
    assert_eq!(s.asked.last().unwrap().1, Some(BargeInDecision::Ignore));
    let out = s.at(4900, interim("yeah but what about the later one"));
    assert_eq!(agent_done(&out).len(), 1, "{:?}", messages(&out));
    assert!(cancelled(&out, turn));
}

/// A reply with a protected sentence from 400 ms to 5360 ms (80 ms a character).
const CODE_REPLY: &str =
    "Okay. <protect>Your confirmation number is 4 4 1 9 2 7, please write it down.</protect> Anything else?";
const CODE_HEARD: &str = "Okay. Your confirmation number is 4 4 1 9 2 7, please write it down.";

/// The user asks to interrupt at 3500 ms heard and keeps talking; returns the interrupting
/// `agent_done` text and the time it came.
fn barge_into_code(cfg: OrchestratorConfig, policy: Policy, reply: &str) -> (String, u64) {
    let mut s = Session::new(cfg, policy);
    let turn = s.typed(0, "what is my number");
    s.reply(turn, reply, Speech::Aligned { ms_per_char: 80 });
    let mut steps = vec![
        (3500, Some(vad_start(3500))),
        (3600, Some(interim("sorry what was the number again"))),
    ];
    steps.extend((3700..=8000).step_by(100).map(|t| (t, None)));
    for (t, event) in steps {
        let out = match event {
            Some(event) => s.at(t, event),
            None => s.run_until(t),
        };
        if let Some((_, text, interrupted)) = agent_done(&out).first() {
            assert!(interrupted);
            return (text.clone(), t);
        }
    }
    panic!("the barge-in never interrupted");
}

#[test]
fn a_protected_sentence_marked_by_the_reply_is_heard_whole() {
    let (heard, at) = barge_into_code(
        OrchestratorConfig::default(),
        Policy::Rules(BargeInRules::default()),
        CODE_REPLY,
    );
    assert_eq!(heard, CODE_HEARD);
    assert!(
        at >= 5360,
        "interrupted at {at}, inside the protected sentence"
    );
}

#[test]
fn a_sentence_matching_a_configured_pattern_is_heard_whole() {
    let cfg = OrchestratorConfig {
        protected_patterns: Arc::new(vec![Regex::new("(?i)confirmation number").unwrap()]),
        ..Default::default()
    };
    let plain = CODE_REPLY
        .replace("<protect>", "")
        .replace("</protect>", "");
    let (heard, at) = barge_into_code(cfg, Policy::Rules(BargeInRules::default()), &plain);
    assert_eq!(heard, CODE_HEARD);
    assert!(at >= 5360);

    // Without the pattern the same words interrupt at once.
    let (heard, at) = barge_into_code(
        OrchestratorConfig::default(),
        Policy::Rules(BargeInRules::default()),
        &plain,
    );
    assert_eq!(at, 3600);
    assert_eq!(heard, "Okay. Your confirmation number is 4 4 1 9 2 7,");
}

#[test]
fn a_plugin_interrupt_during_a_protected_phrase_waits_when_protection_is_on() {
    let policy = Policy::Always(BargeInDecision::Interrupt);
    let (heard, at) = barge_into_code(OrchestratorConfig::default(), policy, CODE_REPLY);
    assert_eq!(heard, CODE_HEARD);
    assert!(at >= 5360);

    let off = OrchestratorConfig {
        protect_phrases: false,
        ..Default::default()
    };
    let (heard, at) = barge_into_code(off, policy, CODE_REPLY);
    assert_eq!(at, 3500, "honoured at the speech start");
    assert_eq!(heard, "Okay. Your confirmation number is 4 4 1 9 2");
}

#[test]
fn a_barge_in_held_by_a_protected_sentence_interrupts_when_it_ends_though_the_user_stopped() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "what is my number");
    s.reply(turn, CODE_REPLY, Speech::Aligned { ms_per_char: 80 });
    s.at(3500, vad_start(3500));
    s.at(3600, interim("sorry what was the number again"));
    s.at(4000, vad_end(4000));
    let out = s.at(4100, finalize_result("sorry what was the number again"));
    assert!(agent_done(&out).is_empty() && plans(&out).is_empty());
    // The user is silent now; the protected sentence plays on to its end at 5360 ms.
    let out = s.run_until(5359);
    assert!(agent_done(&out).is_empty(), "{:?}", messages(&out));
    assert!(audio_ms(&out) > 0);
    let out = s.run_until(5600);
    assert_eq!(agent_done(&out), vec![(turn, CODE_HEARD.to_string(), true)]);
    assert!(cancelled(&out, turn));
    assert_eq!(
        plans(&out),
        vec![(
            turn + 1,
            "sorry what was the number again".to_string(),
            vec![
                ChatMessage::new(Role::User, "what is my number"),
                ChatMessage::new(Role::Assistant, CODE_HEARD),
            ]
        )],
        "the held words are the next turn"
    );
}

#[test]
fn answers_to_old_questions_are_ignored() {
    let mut s = Session::new(OrchestratorConfig::default(), Policy::Manual);
    let turn = speaking(
        &mut s,
        TRAINS,
        Speech::Unaligned {
            ms: 8000,
            done: true,
        },
    );
    let first = questions(&s.at(4000, vad_start(3000)));
    let second = questions(&s.at(4100, interim("please stop right now")));
    let (old, new) = (first[0].1, second[0].1);
    assert!(new > old);

    assert!(s.decide(turn, old, BargeInDecision::Interrupt).is_empty());
    assert!(s
        .decide(turn + 1, new, BargeInDecision::Interrupt)
        .is_empty());
    assert_eq!(s.orch.state(), State::Speaking);
    let out = s.decide(turn, new, BargeInDecision::Interrupt);
    assert_eq!(agent_done(&out).len(), 1);
    // A late repeat changes nothing.
    assert!(s.decide(turn, new, BargeInDecision::Interrupt).is_empty());
}
