//! A barge-in policy answering `Pause`: audio stops at once, then resumes or becomes an
//! interruption depending on what the user says.

use super::harness::*;
use crate::behaviour::BargeInDecision;
use crate::session::events::Action;
use crate::session::orchestrator::{OrchestratorConfig, State};
use crate::transport::protocol::ServerMessage;

const REPLY: &str = "Your table for two is booked for eight tonight at the corner bistro.";

/// A reply of 6000 ms playing from 0; the user starts speaking at 2000 and the policy pauses.
/// Returns the session, the turn and all audio sent so far in ms.
fn paused() -> (Session, u32, u64) {
    let mut s = Session::new(OrchestratorConfig::default(), Policy::Manual);
    let turn = s.typed(0, "book a table");
    let mut sent = audio_ms(&s.reply(
        turn,
        REPLY,
        Speech::Unaligned {
            ms: 6000,
            done: true,
        },
    ));
    let mut out = s.at(2000, vad_start(2000));
    let (_, seq, question) = questions(&out)
        .pop()
        .expect("speech during a reply is judged");
    assert_eq!(question.agent_spoken_ms, 2000);
    out.extend(s.decide(turn, seq, BargeInDecision::Pause));
    assert!(
        messages(&out).contains(&&ServerMessage::Pause { turn }),
        "the client pauses its player too"
    );
    sent += audio_ms(&out);
    assert_eq!(s.orch.state(), State::Speaking);
    (s, turn, sent)
}

#[test]
fn a_pause_stops_audio_at_once_and_resumes_where_it_stopped_if_no_words_follow() {
    let (mut s, turn, mut sent) = paused();
    let out = s.at(2300, vad_end(2300));
    assert!(out.contains(&Action::FinalizeStt));
    let out = s.run_until(3999);
    assert_eq!(audio_ms(&out), 0, "no audio while paused");
    assert!(agent_done(&out).is_empty());

    // The pause timeout (2000 ms) passes without words: the reply continues, first from what
    // the client buffered (the 200 ms lead), then with new audio.
    let out = s.run_until(4000);
    assert!(messages(&out).contains(&&ServerMessage::Resume { turn }));
    sent += audio_ms(&out);
    let out = s.run_until(4100);
    assert!(audio_ms(&out) > 0, "audio resumes");
    sent += audio_ms(&out);
    let out = s.run_until(60_000);
    sent += audio_ms(&out);
    assert_eq!(sent, 6000, "every ms of the reply is sent exactly once");
    assert_eq!(agent_done(&out), vec![(turn, REPLY.to_string(), false)]);
    assert!(plans(&out).is_empty());
}

#[test]
fn real_words_during_a_pause_become_an_interruption() {
    let (mut s, turn, _) = paused();
    let out = s.at(2400, interim("actually make it nine"));
    assert!(
        agent_done(&out).is_empty(),
        "the policy has not answered yet"
    );
    assert_eq!(audio_ms(&out), 0);
    let out = s.run_until(4000);
    let done = agent_done(&out);
    assert_eq!(done.len(), 1, "{out:?}");
    let (_, heard, interrupted) = &done[0];
    assert!(interrupted);
    // 2000 ms of 6000 were heard (the client paused with the lead still in its buffer).
    assert_eq!(heard, "Your table for two is");
    assert!(cancelled(&out, turn));
    assert_eq!(s.orch.memory().last().unwrap().content, *heard);
    s.at(4100, vad_end(4100));
    let out = s.at(4200, final_text("actually make it nine", true));
    assert_eq!(plans(&out)[0].1, "actually make it nine");
}

#[test]
fn a_final_backchannel_during_a_pause_resumes_at_once() {
    let (mut s, turn, _) = paused();
    s.at(2200, interim("mm-hmm"));
    s.at(2400, vad_end(2400));
    let out = s.at(2500, finalize_result("mm-hmm"));
    assert!(
        messages(&out).contains(&&ServerMessage::Resume { turn }),
        "the reply resumes without waiting for the timeout"
    );
    assert!(plans(&out).is_empty());
    let out = s.run_until(60_000);
    assert_eq!(agent_done(&out), vec![(turn, REPLY.to_string(), false)]);
}

#[test]
fn a_final_with_real_words_during_a_pause_interrupts_at_once() {
    let (mut s, turn, _) = paused();
    s.at(2200, interim("no the other one"));
    s.at(2400, vad_end(2400));
    let out = s.at(2500, finalize_result("no the other one"));
    assert!(cancelled(&out, turn));
    assert!(agent_done(&out)[0].2);
    assert_eq!(plans(&out)[0].0, turn + 1);
}
