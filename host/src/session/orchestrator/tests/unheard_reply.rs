//! A user who speaks again before hearing any of the reply had only paused: the reply waits for
//! them from their first voiced frame, and their utterance decides what becomes of it.

use super::harness::*;
use crate::behaviour::{ChatMessage, Role};
use crate::providers::SttEvent;
use crate::session::events::{Action, Event, TurnEnd};
use crate::session::orchestrator::unheard_reply::CONTINUED_WITHIN_MS;
use crate::session::orchestrator::{OrchestratorConfig, State};
use crate::transport::protocol::ServerMessage;

/// A spoken turn "book me a flight to London" committed at 1100 ms; returns its number.
fn spoken_turn(s: &mut Session) -> u32 {
    s.at(0, vad_start(0));
    s.at(500, final_text("book me a flight to London", true));
    let out = s.at(1100, vad_end(500));
    planned_turn(&out).expect("the turn is committed")
}

const REPLY: Speech = Speech::Unaligned {
    ms: 1000,
    done: true,
};

#[test]
fn a_user_who_goes_on_is_not_talked_over_and_their_words_replace_the_reply() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    // The user goes on before the agent says anything; the reply is ready meanwhile.
    s.at(1300, vad_start(1290));
    let mut out = s.reply(turn, "Sure, which day?", REPLY);
    out.extend(s.at(1600, interim("for next Monday")));
    assert_eq!(audio_ms(&out), 0, "the agent talked over the user");
    assert_eq!(
        agent_text(&out),
        "",
        "a reply the user may replace is shown"
    );
    assert_eq!(s.orch.state(), State::Thinking);
    assert!(
        continued(&out).is_empty(),
        "interim words decide nothing yet"
    );
    // Final words: their utterance will replace the waiting reply, which is dropped unheard now.
    // The turn's end came too early, which is counted once, against what had ended it.
    let out = s.at(1900, final_text("for next Monday morning.", true));
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    assert!(out.contains(&Action::CancelLlm { turn }) && out.contains(&Action::CancelTts { turn }));
    assert_eq!(agent_text(&out), "");
    assert!(
        !out.contains(&Action::Send(ServerMessage::Interrupt { turn })),
        "nothing of the reply was shown, so there is nothing to take back"
    );
    assert_eq!(continued(&out), vec![(turn, TurnEnd::Silence)]);
    assert_eq!(s.orch.state(), State::Listening);
    // Their utterance ends: it is the next turn.
    let out = s.at(2500, vad_end(1900));
    let plans = plans(&out);
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].0, turn + 1);
    assert_eq!(plans[0].1, "for next Monday morning.");
    // Memory keeps the whole request as one user message: nothing of the dropped reply stands
    // between its two halves.
    assert_eq!(
        s.orch.memory().messages(),
        vec![ChatMessage::new(
            Role::User,
            "book me a flight to London for next Monday morning."
        )]
    );
    assert!(continued(&out).is_empty());
    // The next reply plays as usual.
    let mut out = s.reply(turn + 1, "Booked for Monday morning.", REPLY);
    out.extend(s.run_until(5000));
    assert_eq!(audio_ms(&out), 1000);
    assert!(continued(&out).is_empty());
    assert_eq!(
        agent_done(&out),
        vec![(turn + 1, "Booked for Monday morning.".into(), false)]
    );
}

#[test]
fn a_user_who_speaks_after_waiting_for_a_slow_reply_did_not_go_on() {
    // The turn's end of speech is at 1100 ms; nothing of the reply has come when the user speaks
    // again, up to the window after it (going on with the sentence) or later (asking again).
    for (back, went_on) in [
        (1100 + CONTINUED_WITHIN_MS, true),
        (1100 + CONTINUED_WITHIN_MS + 1, false),
        (1100 + 3000, false),
    ] {
        let mut s = Session::with_rules();
        let turn = spoken_turn(&mut s);
        s.at(back, vad_start(back - 10));
        let out = s.at(back + 400, final_text("hello, are you there?", true));
        // Either way the reply nobody heard gives way to the new words.
        assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
        let expected = if went_on {
            vec![(turn, TurnEnd::Silence)]
        } else {
            Vec::new()
        };
        assert_eq!(continued(&out), expected, "voice back at {back} ms");
    }
}

#[test]
fn a_waiting_reply_that_ends_without_speech_is_shown_whole() {
    // Speech synthesis gave no audio for the reply while the user spoke: it ends whole, and the
    // client is shown what its `agent_done` says it said.
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    s.at(1300, vad_start(1290));
    let mut out = s.reply(
        turn,
        "Sure, which day?",
        Speech::Unaligned { ms: 0, done: true },
    );
    out.extend(s.run_until(1500));
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Sure, which day?".into(), false)]
    );
    assert_eq!(agent_text(&out), "Sure, which day?");
}

#[test]
fn a_cough_lets_the_waiting_reply_play_when_it_ends() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    let mut all = s.at(1300, vad_start(1290));
    let out = s.reply(turn, "Sure, which day?", REPLY);
    assert_eq!(audio_ms(&out), 0);
    assert_eq!(agent_text(&out), "", "shown while it waits");
    all.extend(out);
    // Voice without words: the recogniser's answer to the finalize is empty.
    all.extend(s.at(1700, vad_end(1500)));
    let mut out = s.at(1750, finalize_result(""));
    assert!(audio_ms(&out) > 0, "the reply waits after the cough");
    // Its text is shown as it plays, before its audio.
    assert_eq!(agent_text(&out), "Sure, which day?");
    let first_text = out
        .iter()
        .position(|a| matches!(a, Action::Send(ServerMessage::AgentText { .. })));
    let first_audio = out.iter().position(|a| matches!(a, Action::SendAudio(_)));
    assert!(first_text < first_audio, "{out:?}");
    out.extend(s.run_until(5000));
    assert_eq!(audio_ms(&out), 1000);
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Sure, which day?".into(), false)]
    );
    assert!(!cancelled(&out, turn));
    all.extend(out);
    assert!(
        continued(&all).is_empty(),
        "a cough does not go on with the turn"
    );
}

#[test]
fn voice_without_words_holds_the_reply_no_longer_than_the_pause_timeout() {
    // Steady noise the VAD calls speech, and voice that began but is never settled (a gate
    // that went quiet): neither has words.
    for (voice, what) in [(vad_start(1290), "noise"), (vad_onset(1300), "an onset")] {
        let cfg = OrchestratorConfig::default();
        let timeout = cfg.pause_timeout_ms;
        let mut s = Session::new(cfg, Policy::Rules(Default::default()));
        let turn = spoken_turn(&mut s);
        s.at(1300, voice);
        let out = s.reply(turn, "Sure, which day?", REPLY);
        assert_eq!(audio_ms(&out), 0, "{what}");
        let out = s.run_until(1300 + timeout - 1);
        assert_eq!(audio_ms(&out), 0, "{what}");
        let out = s.run_until(1300 + timeout);
        assert!(audio_ms(&out) > 0, "{what} held the reply past the timeout");
        assert_eq!(s.orch.state(), State::Speaking, "{what}");
    }
}

#[test]
fn words_the_vad_did_not_hear_hold_the_reply_too() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    s.at(1300, interim("for"));
    let out = s.reply(turn, "Sure, which day?", REPLY);
    assert_eq!(audio_ms(&out), 0);
    // Words hold it past the pause timeout (2 s): only the end of the utterance decides.
    let out = s.run_until(3700);
    assert_eq!(audio_ms(&out), 0);
    let out = s.at(3750, final_text("for Monday", true));
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    assert_eq!(plans(&out)[0].1, "for Monday");
}

#[test]
fn speech_begun_before_a_typed_turn_was_answered_holds_its_reply() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "tell me the plan");
    s.at(30, vad_start(30));
    s.at(40, interim("and after that"));
    let out = s.reply(
        turn,
        "First we meet. Then we eat.",
        Speech::Aligned { ms_per_char: 100 },
    );
    assert_eq!(audio_ms(&out), 0);
    assert_eq!(s.orch.state(), State::Thinking);
    // The recogniser closes the utterance: its words are the next turn.
    s.at(1500, vad_end(1480));
    let out = s.at(1540, Event::Stt(SttEvent::UtteranceEnd));
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    assert_eq!(plans(&out)[0].1, "and after that");
    // Interim words alone reach the end of the utterance without dropping the reply first:
    // it is counted as the new turn replaces it.
    assert_eq!(continued(&out), vec![(turn, TurnEnd::Typed)]);
    assert_eq!(
        plans(&out)[0].2,
        vec![ChatMessage::new(Role::User, "tell me the plan")]
    );
}

#[test]
fn a_reply_already_heard_is_not_held_but_judged_as_a_barge_in() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    let mut out = s.reply(turn, "Sure, which day?", REPLY);
    assert!(audio_ms(&out) > 0);
    out.extend(s.at(1300, vad_start(1290)));
    out.extend(s.run_until(1500));
    // Audio goes on while the barge-in policy judges (the built-in rules wait for words).
    assert!(audio_ms(&out) > 200);
    assert_eq!(s.orch.state(), State::Speaking);
    // Words interrupt it: a barge-in, not a turn ended too early.
    out.extend(s.at(1600, final_text("no wait, I meant Paris", true)));
    out.extend(s.at(2200, vad_end(1600)));
    assert_eq!(agent_done(&out)[0].0, turn);
    assert!(continued(&out).is_empty());
}

#[test]
fn while_draining_the_waiting_reply_plays_and_the_session_ends() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    s.at(1300, vad_start(1290));
    s.at(1400, Event::Drain);
    let mut out = s.reply(turn, "Sure, which day?", REPLY);
    out.extend(s.at(1600, final_text("for Monday", true)));
    out.extend(s.at(2200, vad_end(1600)));
    out.extend(s.run_until(6000));
    assert_eq!(audio_ms(&out), 1000);
    assert!(continued(&out).is_empty(), "the reply was heard after all");
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Sure, which day?".into(), false)]
    );
    assert_eq!(closes(&out), vec![1001]);
}

#[test]
fn a_reply_to_held_words_waits_while_the_user_is_already_saying_more() {
    use crate::behaviour::BargeInDecision;
    let mut s = Session::new(
        OrchestratorConfig::default(),
        Policy::Always(BargeInDecision::Wait),
    );
    let turn = s.typed(0, "tell me a joke");
    s.reply(turn, "Why did the chicken cross the road?", REPLY);
    // Words during the reply that the policy holds back, then more words while it ends.
    s.at(100, vad_start(100));
    s.at(300, final_text("actually wait", true));
    s.at(900, vad_end(300));
    s.at(950, vad_start(950));
    let out = s.at(980, interim("and tell me"));
    let out = [out, s.run_until(1500)].concat();
    // The reply ended; the held words are a turn, planned while the user is still talking.
    let held = plans(&out);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].1, "actually wait");
    let out = s.reply(turn + 1, "Sure, go on.", REPLY);
    assert_eq!(audio_ms(&out), 0, "the agent talked over the user");
    // Their utterance has words: it replaces the reply.
    let out = s.at(1600, final_text("and tell me another", true));
    assert_eq!(agent_done(&out), vec![(turn + 1, String::new(), true)]);
    let out = s.at(2200, vad_end(1600));
    assert_eq!(plans(&out)[0].1, "and tell me another");
}

#[test]
fn voice_resuming_after_a_pause_within_speech_holds_the_reply_too() {
    use crate::audio::VadTransition;
    let mut s = Session::with_rules();
    // The user is talking (the VAD's speech goes on) when they type a question.
    s.at(0, vad_start(0));
    let turn = s.typed(100, "what time is it");
    s.at(
        400,
        Event::Vad(VadTransition::Pause {
            at_ms: 200,
            silence_ms: 200,
        }),
    );
    // A quiet pause: the reply would play; the voice comes back before it does.
    s.at(500, Event::Vad(VadTransition::Resume { at_ms: 480 }));
    let out = s.reply(turn, "It is noon.", REPLY);
    assert_eq!(audio_ms(&out), 0, "the agent talked over the user");
    // The voice ends without words: the reply plays.
    s.at(1200, vad_end(600));
    let out = s.at(1250, finalize_result(""));
    assert!(audio_ms(&out) > 0);
}

#[test]
fn the_first_voiced_frames_hold_the_reply_before_the_vad_confirms_speech() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    // The reply is ready as the user's voice begins, before the VAD has confirmed it.
    s.at(1290, vad_onset(1290));
    let mut out = s.reply(turn, "Sure, which day?", REPLY);
    out.extend(s.at(1430, vad_start(1290)));
    out.extend(s.at(1700, final_text("for next Monday morning.", true)));
    assert_eq!(audio_ms(&out), 0, "the agent talked over the user");
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    let out = s.at(2300, vad_end(1700));
    assert_eq!(plans(&out)[0].1, "for next Monday morning.");
}

#[test]
fn a_click_the_vad_never_confirms_lets_the_reply_play_when_it_fades() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    s.at(1290, vad_onset(1290));
    let out = s.reply(turn, "Sure, which day?", REPLY);
    assert_eq!(audio_ms(&out), 0);
    let mut out = s.at(1400, vad_false_onset(1400));
    assert!(audio_ms(&out) > 0, "the reply waits after the click");
    out.extend(s.run_until(5000));
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Sure, which day?".into(), false)]
    );
}

/// "book me a flight to London", its end of speech at 1100 ms, and voice beginning at 1150 ms,
/// just before the recogniser's last words (returned with the session).
fn words_come_as_voice_begins() -> (Session, Vec<Action>) {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(500, interim("book me a flight to London"));
    s.at(1100, vad_end(500));
    s.at(1150, vad_onset(1150));
    let out = s.at(1200, finalize_result("book me a flight to London"));
    (s, out)
}

/// Voice beginning as the turn would end (the VAD heard it, has not confirmed it): the turn
/// waits to know whether the user is going on. A click the VAD drops lets it end then.
#[test]
fn a_turn_waits_for_voice_the_vad_has_not_settled() {
    let (mut s, out) = words_come_as_voice_begins();
    assert_eq!(
        planned_turn(&out),
        None,
        "the turn ended over voice beginning"
    );
    let out = s.at(1250, vad_false_onset(1250));
    let turn = planned_turn(&out).expect("the turn ends once the click is dropped");
    assert_eq!(plans(&out)[0].1, "book me a flight to London");
    let out = s.reply(turn, "Sure, which day?", REPLY);
    assert!(audio_ms(&out) > 0);
}

/// The voice was the user going on: their next words join the turn, no reply is started on
/// half of it.
#[test]
fn voice_beginning_as_the_turn_would_end_joins_it() {
    let (mut s, mut out) = words_come_as_voice_begins();
    out.extend(s.at(1290, vad_start(1150)));
    out.extend(s.at(1700, interim("for Monday")));
    out.extend(s.at(2300, vad_end(1700)));
    out.extend(s.at(2350, finalize_result("for Monday")));
    let plans = plans(&out);
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert_eq!(plans[0].1, "book me a flight to London for Monday");
}

/// Voice the VAD never settles (the audio stopped coming) holds the turn no longer than the
/// VAD takes to settle it.
#[test]
fn voice_never_settled_holds_the_turn_a_bounded_time() {
    let (mut s, out) = words_come_as_voice_begins();
    assert_eq!(planned_turn(&out), None);
    let out = s.run_until(1449);
    assert_eq!(planned_turn(&out), None);
    let out = s.run_until(1450);
    assert!(planned_turn(&out).is_some(), "the turn never ended");
}

#[test]
fn a_click_does_not_release_a_reply_an_unfinished_utterance_holds() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    s.at(1300, vad_start(1290));
    s.reply(turn, "Sure, which day?", REPLY);
    // Their speech ended; its words are still to come from the recogniser.
    s.at(1900, vad_end(1500));
    let mut out = s.at(1910, vad_onset(1910));
    out.extend(s.at(1990, vad_false_onset(1990)));
    assert_eq!(
        audio_ms(&out),
        0,
        "a click let the reply talk over the user"
    );
    let out = s.at(2000, finalize_result("for Monday"));
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    assert_eq!(plans(&out)[0].1, "for Monday");
}

#[test]
fn a_cough_ending_as_voice_begins_again_waits_for_that_voice() {
    let mut s = Session::with_rules();
    let turn = spoken_turn(&mut s);
    s.at(1300, vad_start(1290));
    s.reply(turn, "Sure, which day?", REPLY);
    s.at(1700, vad_end(1500));
    // The cough's utterance ends empty while the next voice begins.
    s.at(1720, vad_onset(1720));
    let out = s.at(1750, finalize_result(""));
    assert_eq!(audio_ms(&out), 0, "the agent talked over the user");
    let out = s.at(1860, vad_false_onset(1860));
    assert!(audio_ms(&out) > 0, "the reply waits after the click");
}

#[test]
fn speech_over_a_greeting_not_heard_yet_is_no_turn_ended_too_early() {
    let cfg = OrchestratorConfig {
        greeting: Some("Hello! How can I help?".into()),
        ..Default::default()
    };
    let mut s = Session::new(cfg, Policy::Rules(Default::default()));
    s.start();
    // The user speaks before any of the greeting was synthesised: it waits, then is dropped.
    let mut out = s.at(100, vad_start(100));
    out.extend(s.at(600, final_text("book a table", true)));
    out.extend(s.at(1200, vad_end(600)));
    assert_eq!(agent_done(&out), vec![(0, String::new(), true)]);
    assert_eq!(plans(&out)[0].1, "book a table");
    assert!(continued(&out).is_empty(), "no user turn had ended");
}
