//! How a reply is generated, spoken, paced and remembered.

use super::harness::*;
use crate::behaviour::{ChatMessage, GenerationSettings, Role};
use crate::providers::LlmEvent;
use crate::providers::ProviderErrorKind;
use crate::session::events::{Action, Event};
use crate::session::orchestrator::{Orchestrator, OrchestratorConfig, State};

#[test]
fn an_llm_reply_streams_text_and_speaks_each_sentence_as_it_ends() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "what is the weather");
    let out = s.at(5, s.planned_llm(turn));
    assert_eq!(
        out,
        vec![Action::StartLlm {
            turn,
            messages: prompt_messages(turn),
            settings: GenerationSettings {
                temperature: Some(0.5),
                max_tokens: None
            },
        }]
    );

    let mut shown = String::new();
    let out = s.at(50, llm_token(turn, "Sure"));
    shown.push_str(&agent_text(&out));
    assert!(spoken_sentences(&out).is_empty());
    let out = s.at(60, llm_token(turn, "! The"));
    shown.push_str(&agent_text(&out));
    // The first sentence reaches TTS while the LLM is still generating.
    let start = out.iter().position(|a| *a == Action::StartTts { turn });
    let first = out.iter().position(|a| {
        *a == Action::SpeakSentence {
            turn,
            text: "Sure!".into(),
        }
    });
    assert!(
        start.is_some() && first.is_some() && start < first,
        "{out:?}"
    );
    assert!(!out.contains(&Action::FlushTts { turn }));

    let out = s.at(70, llm_token(turn, " weather is sunny."));
    shown.push_str(&agent_text(&out));
    let out = s.at(80, llm_done(turn));
    shown.push_str(&agent_text(&out));
    assert_eq!(
        spoken_sentences(&out),
        vec!["The weather is sunny.".to_string()]
    );
    assert_eq!(out.last(), Some(&Action::FlushTts { turn }));
    assert_eq!(shown, "Sure! The weather is sunny.");
    assert_eq!(
        s.orch.state(),
        State::Thinking,
        "nothing has been heard yet"
    );
}

#[test]
fn reply_audio_is_paced_at_real_time_plus_the_lead_and_then_done() {
    let cfg = OrchestratorConfig::default();
    let (lead, chunk) = (cfg.lead_ms, u64::from(cfg.chunk_ms));
    let mut s = Session::new(cfg, Policy::Rules(Default::default()));
    let turn = s.typed(1000, "tell me a story");
    s.at(1010, s.planned_llm(turn));
    s.feed(llm_token(turn, "Once upon a time."));
    s.feed(llm_done(turn));
    let out = s.at(1100, tts_audio(turn, 2000, None));
    assert_eq!(audio_ms(&out), lead, "only the lead goes out at once");
    assert_eq!(s.orch.state(), State::Speaking);
    s.feed(Event::TtsDone { turn });

    let mut sent = audio_ms(&out);
    for t in (1120..=2900).step_by(20) {
        let out = s.run_until(t);
        sent += audio_ms(&out);
        let due = (t - 1100 + lead).min(2000);
        assert!(
            sent + chunk >= due && sent <= due + chunk,
            "at {t} ms {sent} ms were sent, {due} ms due"
        );
        assert!(
            agent_done(&out).is_empty(),
            "the client is still playing at {t}"
        );
    }
    assert_eq!(sent, 2000, "all audio is sent");

    let out = s.run_until(3099);
    assert!(agent_done(&out).is_empty());
    let out = s.run_until(3100);
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Once upon a time.".into(), false)]
    );
    let m = metrics(&out);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].turn, turn);
    assert_eq!(m[0].plugins_ms, Some(0.25));
    assert_eq!(m[0].llm_first_token_ms, Some(10));
    assert_eq!(m[0].first_sentence_ms, Some(10));
    assert_eq!(m[0].tts_first_audio_ms, Some(100));
    assert_eq!(m[0].first_audio_sent_ms, Some(100));
    assert_eq!(s.orch.state(), State::Listening);
    assert_eq!(s.orch.next_wakeup(), None, "an idle session needs no timer");
    assert_eq!(
        s.orch.memory().messages(),
        vec![
            ChatMessage::new(Role::User, "tell me a story"),
            ChatMessage::new(Role::Assistant, "Once upon a time."),
        ]
    );

    // The next turn is planned with that history.
    let out = s.at(4000, Event::UserText("and then?".into()));
    assert_eq!(plans(&out)[0].2, s.orch.memory().messages()[..2].to_vec());
}

#[test]
fn spoken_turn_metrics_start_at_the_end_of_speech() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    s.at(900, vad_end(880));
    let out = s.at(1150, finalize_result("hello"));
    let turn = planned_turn(&out).unwrap();
    s.at(1200, s.planned_llm(turn));
    s.at(1400, llm_token(turn, "Hi."));
    s.feed(llm_done(turn));
    s.at(1600, tts_audio(turn, 100, None));
    s.feed(Event::TtsDone { turn });
    let out = s.run_until(2000);
    let m = &metrics(&out)[0];
    assert_eq!(m.speech_end_ms, Some(900));
    assert_eq!(m.transcript_final_ms, Some(250));
    assert_eq!(m.llm_first_token_ms, Some(500));
    assert_eq!(m.first_audio_sent_ms, Some(700));
}

#[test]
fn an_endpoint_before_the_vad_hangover_ends_the_turn_at_the_end_of_speech() {
    let mut s = Session::with_rules();
    s.at(0, vad_start(0));
    // The recogniser's endpointing fires while the local VAD is still in its hangover: the
    // turn ends when the VAD agrees, with no wait for a finalize result (nothing was said since).
    assert!(plans(&s.at(600, final_text("hello", true))).is_empty());
    let out = s.at(800, vad_end(780));
    let turn = planned_turn(&out).unwrap();
    s.at(850, s.planned_llm(turn));
    s.at(1000, llm_token(turn, "Hi."));
    s.feed(llm_done(turn));
    s.at(1100, tts_audio(turn, 100, None));
    s.feed(Event::TtsDone { turn });
    let out = s.run_until(1500);
    let m = &metrics(&out)[0];
    assert_eq!(m.speech_end_ms, Some(800));
    assert_eq!(m.transcript_final_ms, Some(0));
    assert_eq!(m.llm_first_token_ms, Some(200));
}

#[test]
fn a_direct_reply_is_spoken_without_the_llm() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "repeat that");
    let out = s.at(
        5,
        s.planned_direct(turn, "I said ten o'clock. See you then."),
    );
    assert!(!out.iter().any(|a| matches!(a, Action::StartLlm { .. })));
    assert_eq!(agent_text(&out), "I said ten o'clock. See you then.");
    assert_eq!(
        spoken_sentences(&out),
        vec![
            "I said ten o'clock.".to_string(),
            "See you then.".to_string()
        ]
    );
    assert_eq!(out.last(), Some(&Action::FlushTts { turn }));
    s.speak(
        turn,
        &[],
        Speech::Unaligned {
            ms: 500,
            done: true,
        },
    );
    let out = s.run_until(1000);
    assert_eq!(
        agent_done(&out),
        vec![(turn, "I said ten o'clock. See you then.".into(), false)]
    );
}

#[test]
fn the_greeting_is_spoken_at_start_and_remembered() {
    let cfg = OrchestratorConfig {
        greeting: Some("Hello! How can I help?".into()),
        ..Default::default()
    };
    let mut s = Session::new(cfg, Policy::Rules(Default::default()));
    let out = s.start();
    assert_eq!(agent_text(&out), "Hello! How can I help?");
    assert!(out.contains(&Action::StartTts { turn: 0 }));
    assert_eq!(
        spoken_sentences(&out),
        vec!["Hello!".to_string(), "How can I help?".to_string()]
    );
    s.speak(
        0,
        &[],
        Speech::Unaligned {
            ms: 1500,
            done: true,
        },
    );
    let out = s.run_until(2000);
    assert_eq!(
        agent_done(&out),
        vec![(0, "Hello! How can I help?".into(), false)]
    );
    let turn = s.typed(2500, "hi");
    assert_eq!(turn, 1, "the greeting does not use up a user turn");
    assert_eq!(
        s.orch.memory().messages(),
        vec![
            ChatMessage::new(Role::Assistant, "Hello! How can I help?"),
            ChatMessage::new(Role::User, "hi"),
        ]
    );
}

#[test]
fn an_llm_error_is_reported_and_the_session_goes_on() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.at(5, s.planned_llm(turn));
    let out = s.at(
        50,
        Event::Llm {
            turn,
            event: LlmEvent::Error(provider_error(ProviderErrorKind::Auth)),
        },
    );
    assert_eq!(error_codes(&out), vec!["provider_auth".to_string()]);
    assert_eq!(agent_done(&out), vec![(turn, String::new(), true)]);
    assert!(spoken_sentences(&out).is_empty());
    assert_eq!(s.orch.state(), State::Listening);
    assert!(closes(&out).is_empty());
    let next = s.typed(100, "are you there?");
    assert_eq!(next, turn + 1);
}

#[test]
fn after_an_llm_error_only_whole_sentences_are_spoken_and_the_reply_is_interrupted() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.at(5, s.planned_llm(turn));
    let mut out = s.feed(llm_token(turn, "Hi there."));
    out.extend(s.feed(llm_token(turn, " Let me")));
    out.extend(s.at(
        60,
        Event::Llm {
            turn,
            event: LlmEvent::Error(provider_error(ProviderErrorKind::Unavailable)),
        },
    ));
    assert_eq!(error_codes(&out), vec!["provider_unavailable".to_string()]);
    assert_eq!(
        spoken_sentences(&out),
        vec!["Hi there.".to_string()],
        "the fragment \"Let me\" is never spoken"
    );
    assert!(out.contains(&Action::FlushTts { turn }));
    s.at(100, tts_audio(turn, 600, None));
    s.feed(Event::TtsDone { turn });
    let out = s.run_until(1000);
    assert_eq!(
        agent_done(&out),
        vec![(turn, "Hi there.".to_string(), true)],
        "interrupted, with what was heard"
    );
    assert_eq!(
        s.orch.memory().last(),
        Some(&ChatMessage::new(Role::Assistant, "Hi there."))
    );
    assert_eq!(s.typed(1100, "go on"), turn + 1, "the next turn works");
}

#[test]
fn after_a_tts_error_the_reply_ends_interrupted_at_what_was_heard() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.at(5, s.planned_llm(turn));
    s.feed(llm_token(turn, "Hi there. How are you today, my friend?"));
    s.feed(llm_done(turn));
    // 300 ms synthesised, the 200 ms lead sent; 1 s later 1 s more would have been heard.
    let mut sent = audio_ms(&s.at(20, tts_audio(turn, 1500, None)));
    sent += audio_ms(&s.run_until(1020));
    let out = s.at(
        1020,
        Event::TtsError {
            turn,
            error: provider_error(ProviderErrorKind::Rejected),
        },
    );
    assert_eq!(error_codes(&out), vec!["provider_rejected".to_string()]);
    assert!(cancelled(&out, turn), "the client drops what it buffered");
    let done = agent_done(&out);
    assert_eq!(done.len(), 1);
    let (_, heard, interrupted) = &done[0];
    assert!(interrupted);
    assert!(
        heard.len() < "Hi there. How are you today, my friend?".len() && heard.starts_with("Hi"),
        "only what was heard, not the whole text: {heard:?}"
    );
    assert_eq!(
        s.orch.memory().last(),
        Some(&ChatMessage::new(Role::Assistant, heard.as_str()))
    );
    sent += audio_ms(&out) + audio_ms(&s.run_until(3000));
    assert_eq!(sent, 1200, "no audio after the error");
    assert!(closes(&out).is_empty());
    assert_eq!(s.orch.state(), State::Listening);
    assert_eq!(s.typed(3100, "hello?"), turn + 1);
}

#[test]
fn events_of_an_old_reply_are_ignored() {
    let mut s = Session::with_rules();
    let turn = s.typed(0, "hello");
    s.reply(
        turn,
        "Hi.",
        Speech::Unaligned {
            ms: 200,
            done: true,
        },
    );
    s.run_until(500);
    assert_eq!(s.orch.state(), State::Listening);
    for event in [
        llm_token(turn, "More words."),
        llm_done(turn),
        tts_audio(turn, 200, None),
        Event::TtsDone { turn },
        s.planned_llm(turn),
    ] {
        let out = s.at(600, event);
        assert!(out.is_empty(), "{out:?}");
    }
}

#[test]
fn a_resumed_session_keeps_its_memory_and_turn_numbers_and_does_not_greet_again() {
    let cfg = OrchestratorConfig {
        greeting: Some("Hello! How can I help?".into()),
        ..Default::default()
    };
    let memory = vec![
        ChatMessage::new(Role::User, "my name is Ada"),
        ChatMessage::new(Role::Assistant, "Nice to meet you, Ada."),
    ];
    let mut s = Session::new(cfg.clone(), Policy::Rules(Default::default()));
    s.orch = Orchestrator::resumed(cfg, &memory, 7);
    let out = s.start();
    assert_eq!(agent_text(&out), "", "no greeting on resume: {out:?}");
    let turn = s.typed(100, "what is my name");
    assert_eq!(turn, 7, "turn numbers go on");
    let mut expected = memory.clone();
    expected.push(ChatMessage::new(Role::User, "what is my name"));
    assert_eq!(s.orch.memory().messages(), expected);
}
