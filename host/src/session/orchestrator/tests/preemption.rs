//! Preemptive generation: the reply starts on a final transcript before the turn is committed,
//! and nothing of it is seen or remembered unless the committed turn says exactly those words.

use super::harness::*;
use crate::behaviour::defaults::BargeInRules;
use crate::behaviour::{ChatMessage, Role};
use crate::providers::{LlmEvent, ProviderErrorKind};
use crate::session::events::{Action, Event, Preemption};
use crate::session::orchestrator::OrchestratorConfig;

fn preemptive() -> Session {
    Session::new(
        OrchestratorConfig {
            preemptive: true,
            ..OrchestratorConfig::default()
        },
        Policy::Rules(BargeInRules::default()),
    )
}

/// The plan numbers requested in `out`.
fn plan_numbers(out: &[Action]) -> Vec<u32> {
    out.iter()
        .filter_map(|a| match a {
            Action::PlanReply { plan, .. } => Some(*plan),
            _ => None,
        })
        .collect()
}

fn outcomes(out: &[Action]) -> Vec<Preemption> {
    out.iter()
        .filter_map(|a| match a {
            Action::Preempted(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn committed(out: &[Action]) -> bool {
    out.iter()
        .any(|a| matches!(a, Action::TurnCommitted { .. }))
}

fn llm_started(out: &[Action], turn: u32) -> bool {
    out.iter()
        .any(|a| matches!(a, Action::StartLlm { turn: t, .. } if *t == turn))
}

/// The user says "what time is it"; its final comes while the VAD still hears speech, and the
/// VAD's end of speech at 520 makes the turn likely over (the commit waits for the recogniser's
/// answer to the finalize). The speculation's plan is answered and its LLM stream opened at 560.
fn speculating(s: &mut Session) {
    s.at(0, vad_start(0));
    s.at(400, interim("what time"));
    let out = s.at(500, final_text("what time is it", false));
    assert_eq!(plans(&out).len(), 0, "the VAD still hears speech");
    let out = s.at(520, vad_end(500));
    assert_eq!(
        plans(&out),
        vec![(1, "what time is it".to_string(), vec![])],
        "the words are final and the speech ended: the reply is planned"
    );
    assert!(!committed(&out), "the turn is not committed yet");
    assert!(transcripts(&out).iter().all(|(_, _, is_final)| !is_final));
    let out = s.at(560, s.planned_llm(1));
    assert!(llm_started(&out, 1));
}

#[test]
fn a_reply_started_before_the_commit_is_heard_sooner_and_only_after_it() {
    let mut s = preemptive();
    speculating(&mut s);
    // The stream answers before the turn is committed: nothing reaches the client.
    let mut early = s.at(600, llm_token(1, "It is "));
    early.extend(s.at(620, llm_token(1, "noon. ")));
    assert!(messages(&early).is_empty(), "{early:?}");
    assert!(spoken_sentences(&early).is_empty());
    // The recogniser's answer to the finalize adds nothing: the turn is committed on the same
    // words, and the reply goes on from what its stream said.
    let out = s.at(700, finalize_result(""));
    assert!(committed(&out));
    assert_eq!(outcomes(&out), vec![Preemption::Used]);
    assert!(plans(&out).is_empty(), "the turn is not planned twice");
    assert_eq!(transcripts(&out), vec![(1, "what time is it".into(), true)]);
    assert_eq!(agent_text(&out), "It is noon. ");
    assert_eq!(spoken_sentences(&out), vec!["It is noon.".to_string()]);
    // It goes on as any reply.
    let out = s.at(720, llm_token(1, "Lunch time."));
    assert_eq!(agent_text(&out), "Lunch time.");
    let out = s.at(730, llm_done(1));
    assert!(out.contains(&Action::FlushTts { turn: 1 }));
    let mut out = s.speak(
        1,
        &["It is noon.".into(), "Lunch time.".into()],
        Speech::Unaligned {
            ms: 1200,
            done: true,
        },
    );
    out.extend(s.run_until(3000));
    assert_eq!(
        agent_done(&out),
        vec![(1, "It is noon. Lunch time.".into(), false)]
    );
    let memory = s.orch.memory().messages();
    assert_eq!(memory[0].role, Role::User);
    assert_eq!(memory[0].content, "what time is it");
    assert_eq!(memory[1].content, "It is noon. Lunch time.");
}

#[test]
fn words_after_the_speculation_drop_it_unheard_and_the_turn_is_planned_afresh() {
    let mut s = preemptive();
    speculating(&mut s);
    let first_plan = s.plan_of(1);
    s.at(600, llm_token(1, "It is noon. "));
    // The user goes on.
    s.at(650, vad_start(640));
    let out = s.at(800, interim("in Paris"));
    assert!(s.orch.memory().messages().is_empty());
    assert!(
        out.contains(&Action::CancelLlm { turn: 1 }),
        "its stream is dropped at once"
    );
    assert_eq!(outcomes(&out), vec![Preemption::Wasted]);
    assert!(agent_text(&out).is_empty());
    let out = s.at(1000, final_text("in Paris", false));
    assert!(plans(&out).is_empty(), "the VAD still hears speech");
    let out = s.at(1100, vad_end(1050));
    assert_eq!(
        plans(&out),
        vec![(1, "what time is it in Paris".to_string(), vec![])],
        "a new speculation for the longer words"
    );
    let second_plan = s.plan_of(1);
    assert_ne!(first_plan, second_plan);
    let out = s.at(1200, finalize_result(""));
    assert!(committed(&out));
    assert!(outcomes(&out).is_empty(), "its plan is not answered yet");
    // A late answer to the dropped plan names the same turn: it starts nothing.
    let stale = Event::ReplyPlanned {
        turn: 1,
        plan: first_plan,
        output: crate::behaviour::PromptOutput::Direct {
            text: "It is noon.".into(),
        },
        plugins_ms: 0.1,
    };
    let out = s.at(1210, stale);
    assert!(out.is_empty(), "{out:?}");
    let out = s.at(1220, s.planned_llm(1));
    assert!(llm_started(&out, 1));
    let out = s.at(1300, llm_token(1, "It is one. "));
    assert_eq!(agent_text(&out), "It is one. ");
    assert_eq!(
        s.orch.memory().messages()[0].content,
        "what time is it in Paris"
    );
}

#[test]
fn a_speculation_whose_stream_failed_is_asked_again_at_the_commit() {
    let mut s = preemptive();
    speculating(&mut s);
    let error = LlmEvent::Error(provider_error(ProviderErrorKind::Unavailable));
    let out = s.at(
        600,
        Event::Llm {
            turn: 1,
            event: error,
        },
    );
    assert!(
        error_codes(&out).is_empty(),
        "no error before the turn is committed"
    );
    assert!(
        plan_numbers(&out).is_empty(),
        "no new request for the same words before the commit (a failing provider is not hammered)"
    );
    let out = s.at(700, finalize_result(""));
    assert!(committed(&out));
    assert_eq!(outcomes(&out), vec![Preemption::Wasted]);
    assert_eq!(plans(&out).len(), 1, "the committed turn asks again");
    let out = s.at(720, s.planned_llm(1));
    assert!(llm_started(&out, 1));
}

#[test]
fn the_recogniser_s_endpoint_starts_the_reply_while_the_vad_s_hangover_runs() {
    let mut s = preemptive();
    s.at(0, vad_start(0));
    let out = s.at(500, final_text("what time is it", true));
    assert_eq!(
        plans(&out),
        vec![(1, "what time is it".to_string(), vec![])]
    );
    assert!(!committed(&out));
    s.at(520, s.planned_llm(1));
    s.at(600, llm_token(1, "It is noon. "));
    // The VAD's end of speech, 600 ms of hangover later, commits the turn at once.
    let out = s.at(1100, vad_end(500));
    assert!(committed(&out));
    assert_eq!(outcomes(&out), vec![Preemption::Used]);
    assert_eq!(spoken_sentences(&out), vec!["It is noon.".to_string()]);
}

#[test]
fn a_typed_turn_drops_the_speculation() {
    let mut s = preemptive();
    speculating(&mut s);
    s.at(600, llm_token(1, "It is noon. "));
    let out = s.at(650, Event::UserText("never mind".into()));
    assert_eq!(outcomes(&out), vec![Preemption::Wasted]);
    assert!(out.contains(&Action::CancelLlm { turn: 1 }));
    let committed_text: Vec<_> = transcripts(&out)
        .into_iter()
        .filter(|(_, _, f)| *f)
        .collect();
    assert_eq!(
        committed_text,
        vec![(1, "what time is it never mind".into(), true)]
    );
    assert!(agent_text(&out).is_empty());
}

#[test]
fn without_preemption_nothing_starts_before_the_commit() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(500, final_text("what time is it", false));
    let out = s.at(520, vad_end(500));
    assert!(plans(&out).is_empty());
    let out = s.at(700, finalize_result(""));
    assert!(committed(&out));
    assert_eq!(plans(&out).len(), 1);
    assert!(outcomes(&out).is_empty());
}

#[test]
fn no_speculation_while_a_reply_is_heard() {
    let mut s = preemptive();
    let turn = s.typed(0, "tell me a story");
    let out = s.reply(
        turn,
        "Once upon a time there was a keeper.",
        Speech::Unaligned {
            ms: 3000,
            done: false,
        },
    );
    assert!(audio_ms(&out) > 0);
    // Its stream and turn number are the reply's: the words that interrupt it are planned only
    // once committed.
    s.at(100, vad_start(100));
    let out = s.at(300, final_text("stop stop please tell me the time", true));
    assert!(plan_numbers(&out).is_empty(), "{out:?}");
    let out = s.at(400, vad_end(380));
    assert!(plan_numbers(&out).is_empty(), "{out:?}");
    // The barge-in interrupts once the reply's first seconds are heard: then the words are a
    // turn, planned once.
    let out = s.run_until(5000);
    assert!(committed(&out));
    assert_eq!(plan_numbers(&out).len(), 1);
    assert!(outcomes(&out).is_empty());
}

#[test]
fn the_words_that_replace_an_unheard_reply_are_prepared_before_their_turn_ends() {
    let mut s = preemptive();
    let turn = s.typed(0, "tell me a story");
    s.at(5, s.planned_llm(turn));
    s.at(10, llm_token(turn, "Once upon a time. "));
    // The user speaks before any of it is heard: their final words drop it, and the reply to
    // them starts at once, before the end of their speech commits the turn.
    s.at(100, vad_start(100));
    let out = s.at(300, final_text("about a dragon", true));
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    assert!(cancelled(&out, turn));
    assert_eq!(
        plans(&out),
        vec![(
            turn + 1,
            "about a dragon".to_string(),
            vec![ChatMessage::new(Role::User, "tell me a story")]
        )]
    );
    assert!(!committed(&out));
    let out = s.at(320, s.planned_llm(turn + 1));
    assert!(llm_started(&out, turn + 1));
    let early = s.at(350, llm_token(turn + 1, "A dragon slept. "));
    assert!(messages(&early).is_empty(), "{early:?}");
    // The commit takes it over, and memory holds the two halves as one request.
    let out = s.at(400, vad_end(380));
    assert!(committed(&out));
    assert_eq!(outcomes(&out), vec![Preemption::Used]);
    assert!(plans(&out).is_empty(), "planned twice: {out:?}");
    assert_eq!(agent_text(&out), "A dragon slept. ");
    assert_eq!(
        s.orch.memory().messages(),
        vec![ChatMessage::new(
            Role::User,
            "tell me a story about a dragon"
        )]
    );
}

#[test]
fn a_turn_the_end_of_turn_policy_ended_says_so() {
    let mut s = Session::new(
        OrchestratorConfig {
            turn_policy: true,
            ..OrchestratorConfig::default()
        },
        Policy::Rules(BargeInRules::default()),
    );
    s.at(0, vad_start(0));
    s.at(400, final_text("what time is it", false));
    let out = s.at(
        700,
        Event::Vad(crate::audio::VadTransition::Pause {
            at_ms: 500,
            silence_ms: 200,
        }),
    );
    let seq = out
        .iter()
        .find_map(|a| match a {
            Action::AskTurn { seq, .. } => Some(*seq),
            _ => None,
        })
        .expect("the policy is asked at the pause");
    let mut out = s.at(
        710,
        Event::TurnDecided {
            seq,
            decision: crate::behaviour::TurnDecision::EndTurn,
        },
    );
    out.extend(s.at(760, finalize_result("")));
    assert_eq!(
        ended_by(&out),
        vec![crate::session::events::TurnEnd::Policy]
    );
}
