//! How the user's speech and typing become turns.

use super::harness::*;
use crate::behaviour::{ChatMessage, Role};
use crate::session::events::Action;
use crate::session::events::Event;
use crate::session::orchestrator::State;
use crate::transport::protocol::{ServerMessage, VadEventKind};

#[test]
fn speech_final_ends_the_turn_once_the_vad_hears_silence() {
    let mut s = Session::with_rules();
    let out = s.at(100, vad_start(80));
    assert_eq!(
        messages(&out),
        vec![&ServerMessage::Vad {
            event: VadEventKind::SpeechStart,
            at_ms: 80
        }]
    );
    let out = s.at(400, interim("what is"));
    assert_eq!(transcripts(&out), vec![(1, "what is".into(), false)]);
    let out = s.at(700, interim("what is the weather"));
    assert_eq!(
        transcripts(&out),
        vec![(1, "what is the weather".into(), false)]
    );
    assert!(plans(&out).is_empty(), "interim text does not end a turn");

    let out = s.at(1000, final_text("what is the weather", true));
    assert_eq!(
        transcripts(&out).last(),
        Some(&(1, "what is the weather".into(), false))
    );
    assert!(
        plans(&out).is_empty(),
        "the recogniser's endpoint does not end a turn the VAD still hears"
    );

    let out = s.at(1100, vad_end(1080));
    assert!(out.contains(&Action::FinalizeStt));
    assert_eq!(
        transcripts(&out).last(),
        Some(&(1, "what is the weather".into(), true))
    );
    assert_eq!(
        plans(&out),
        vec![(1, "what is the weather".into(), vec![])],
        "nothing was said after the endpoint: no need to wait for the finalize result"
    );
    assert_eq!(s.orch.state(), State::Thinking);
    let out = s.at(1200, finalize_result(""));
    assert!(plans(&out).is_empty(), "the turn is not ended twice");
    assert_eq!(
        s.orch.memory().messages(),
        vec![ChatMessage::new(Role::User, "what is the weather")]
    );
}

#[test]
fn a_final_after_the_speech_ended_ends_the_turn() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(300, interim("book a table"));
    let out = s.at(900, vad_end(880));
    assert!(
        out.contains(&Action::FinalizeStt),
        "the STT is asked to finalise"
    );
    assert!(plans(&out).is_empty(), "interim text waits for its final");
    let out = s.at(1100, finalize_result("book a table for two"));
    assert_eq!(
        plans(&out),
        vec![(1, "book a table for two".into(), vec![])]
    );
}

#[test]
fn finals_while_still_speaking_are_joined_into_one_turn() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    let out = s.at(800, final_text("book a table", false));
    assert!(plans(&out).is_empty(), "the user is still speaking");
    let out = s.at(1200, interim("for two"));
    assert_eq!(
        transcripts(&out),
        vec![(1, "book a table for two".into(), false)]
    );
    let out = s.at(1500, vad_end(1480));
    assert!(plans(&out).is_empty(), "the last words are not final yet");
    let out = s.at(1700, finalize_result("for two"));
    assert_eq!(
        plans(&out),
        vec![(1, "book a table for two".into(), vec![])]
    );
}

#[test]
fn a_final_segment_then_the_end_of_speech_ends_the_turn() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    assert!(plans(&s.at(800, final_text("hello there", false))).is_empty());
    let out = s.at(1000, vad_end(980));
    assert!(
        plans(&out).is_empty(),
        "words said after the last final may still be in the recogniser"
    );
    // With no answer to the finalize, the turn ends when the wait for it runs out.
    assert!(plans(&s.run_until(1299)).is_empty());
    let out = s.run_until(1300);
    assert_eq!(plans(&out), vec![(1, "hello there".into(), vec![])]);
}

#[test]
fn the_finalize_result_holds_the_trailing_words_of_the_same_turn() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(800, final_text("i would like", false));
    let out = s.at(1000, vad_end(980));
    assert!(plans(&out).is_empty());
    let out = s.at(1150, finalize_result("a window seat"));
    assert_eq!(
        plans(&out),
        vec![(1, "i would like a window seat".into(), vec![])],
        "one utterance, one turn"
    );
    assert!(plans(&s.run_until(5000)).is_empty(), "and no second turn");
}

#[test]
fn utterance_end_ends_the_turn() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(700, final_text("hello there", false));
    s.at(1000, vad_end(980));
    let out = s.at(1100, Event::Stt(crate::providers::SttEvent::UtteranceEnd));
    assert_eq!(
        plans(&out),
        vec![(1, "hello there".into(), vec![])],
        "nothing more is coming: no need to wait out the finalize"
    );
    let out = s.at(2000, Event::Stt(crate::providers::SttEvent::UtteranceEnd));
    assert!(
        plans(&out).is_empty(),
        "an utterance end without words is no turn"
    );
}

#[test]
fn silence_after_interim_text_ends_the_turn() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(500, interim("cancel my"));
    s.at(900, interim("cancel my order"));
    // The timeout counts from the last words even while the VAD hears "speech" (steady noise).
    assert_eq!(s.orch.next_wakeup(), Some(900 + 2500));
    s.at(1000, vad_end(980));
    // The STT never sends a final: the silence timeout (2500 ms after the speech ended) ends it.
    assert!(plans(&s.run_until(3499)).is_empty());
    let out = s.run_until(3500);
    assert_eq!(plans(&out), vec![(1, "cancel my order".into(), vec![])]);
    assert_eq!(transcripts(&out), vec![(1, "cancel my order".into(), true)]);
}

#[test]
fn a_late_final_after_the_silence_timeout_does_not_start_a_second_turn() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(500, interim("cancel my order"));
    s.at(1000, vad_end(980));
    let out = s.run_until(3500);
    assert_eq!(plans(&out), vec![(1, "cancel my order".into(), vec![])]);
    let out = s.at(3600, final_text("Cancel my order.", true));
    assert!(plans(&out).is_empty(), "the same words again: {out:?}");
    // New words after that are a new turn.
    s.at(5000, vad_start(4980));
    s.at(5300, interim("and refund"));
    s.at(5600, final_text("and refund me", true));
    let out = s.at(5700, vad_end(5680));
    assert_eq!(plans(&out).len(), 1);
}

#[test]
fn a_turn_under_steady_noise_ends_by_the_silence_timeout() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(600, interim("is the shop open"));
    // The VAD never hears silence (a fan, traffic); no final ever comes.
    assert!(plans(&s.run_until(3099)).is_empty());
    let out = s.run_until(3100);
    assert_eq!(plans(&out), vec![(1, "is the shop open".into(), vec![])]);
}

#[test]
fn a_late_final_is_matched_by_whole_words() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(500, interim("i don't know"));
    s.at(1000, vad_end(980));
    assert_eq!(plans(&s.run_until(3500)).len(), 1);
    // "no" is inside "know" but is not one of its words: a new turn.
    s.at(4000, vad_start(3980));
    s.at(4300, final_text("no", true));
    let out = s.at(4400, vad_end(4380));
    assert_eq!(plans(&out).len(), 1, "{out:?}");
}

#[test]
fn empty_typed_text_is_an_error_and_no_turn() {
    let mut s = Session::with_rules();
    let out = s.at(10, Event::UserText("   ".into()));
    assert_eq!(error_codes(&out), vec!["bad_message".to_string()]);
    assert!(plans(&out).is_empty());
    assert_eq!(s.orch.state(), State::Listening);
    assert!(s.orch.memory().is_empty());
}

#[test]
fn typed_text_is_a_turn() {
    let mut s = Session::with_rules();
    let out = s.at(10, Event::UserText("  what time is it ".into()));
    assert_eq!(transcripts(&out), vec![(1, "what time is it".into(), true)]);
    assert_eq!(plans(&out), vec![(1, "what time is it".into(), vec![])]);
    assert_eq!(s.orch.state(), State::Thinking);
}

#[test]
fn speech_recognition_errors_are_reported_and_the_session_goes_on() {
    let mut s = Session::with_rules();
    let err = provider_error(crate::providers::ProviderErrorKind::Unavailable);
    let out = s.at(10, Event::Stt(crate::providers::SttEvent::Error(err)));
    assert_eq!(error_codes(&out), vec!["provider_unavailable".to_string()]);
    assert!(closes(&out).is_empty());
    assert_eq!(s.typed(20, "hello"), 1);
}

#[test]
fn each_committed_turn_says_what_ended_it() {
    use crate::session::events::TurnEnd;
    // The silence rules: the VAD's end of speech and the recogniser's final.
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(500, final_text("what time is it", true));
    assert_eq!(ended_by(&s.at(1100, vad_end(500))), vec![TurnEnd::Silence]);
    // Words without a final, for the silence timeout.
    let mut s = Session::with_rules();
    s.at(0, interim("what time"));
    assert_eq!(ended_by(&s.run_until(3000)), vec![TurnEnd::SilenceTimeout]);
    // Typed.
    let mut s = Session::with_rules();
    assert_eq!(
        ended_by(&s.at(0, Event::UserText("hello".into()))),
        vec![TurnEnd::Typed]
    );
}
