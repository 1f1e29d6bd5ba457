//! The reference plug-ins, run through the host runtime.

use crate::common::{config, settings, slot, wasm};
use voice_host::behaviour::defaults::{BargeInRules, BuiltinBehaviours, DefaultBargeIn};
use voice_host::behaviour::{
    BargeInDecision, BargeInEvent, BehaviourSource, ChatMessage, Intent, IntentInput, PromptInput,
    PromptOutput, Role, TurnDecision, TurnEvent, TurnTrigger,
};
use voice_host::plugins::{check_component, PluginError, PluginRegistry, PluginSettings, Slot};

fn event(words: &str, agent_ms: u32, user_ms: u32, protected: bool) -> BargeInEvent {
    BargeInEvent {
        interim_text: words.into(),
        word_count: words.split_whitespace().count() as u32,
        user_speech_ms: user_ms,
        agent_spoken_ms: agent_ms,
        spoken_text: "Your table is booked for".into(),
        remaining_text: "eight people at seven.".into(),
        protected_playing: protected,
        turn: 1,
    }
}

fn intent_of(reg: &PluginRegistry, transcript: &str) -> Option<Intent> {
    let mut b = reg.for_session("s");
    b.intent.analyze(&IntentInput {
        transcript: transcript.into(),
        turn: 1,
        history: vec![],
    })
}

#[test]
fn intent_keywords_matches_builtin_and_configured_rules() {
    let reg = PluginRegistry::start(
        PluginSettings {
            intent: slot(
                "intent-keywords",
                &[("intent.book", "book a table, reservation")],
            ),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let repeat = intent_of(&reg, "Sorry, can you repeat that?").expect("an intent");
    assert_eq!(repeat.name, "repeat");
    assert!(repeat.confidence > 0.5 && repeat.confidence <= 1.0);

    let weather = intent_of(&reg, "What's the weather in Paris tomorrow").expect("an intent");
    assert_eq!(weather.name, "weather");
    assert_eq!(
        weather.slots,
        vec![("city".to_string(), "paris".to_string())]
    );

    assert_eq!(
        intent_of(&reg, "I'd like to book a table").unwrap().name,
        "book"
    );
    assert_eq!(intent_of(&reg, "tell me a story about dragons"), None);
}

#[test]
fn prompt_persona_answers_repeat_and_goodbye_directly_and_shapes_the_rest() {
    let reg = PluginRegistry::start(
        PluginSettings {
            prompt: slot(
                "prompt-persona",
                &[
                    ("persona", "You are Ada, a concise concierge."),
                    ("temperature", "0.3"),
                ],
            ),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let mut b = reg.for_session("s");
    let history = vec![
        ChatMessage::new(Role::User, "when do you open"),
        ChatMessage::new(Role::Assistant, "We open at <protect>nine sharp</protect>."),
    ];
    let input = |turn: &str, intent: Option<Intent>| PromptInput {
        system_prompt: "Hotel front desk.".into(),
        history: history.clone(),
        user_turn: turn.into(),
        turn: 2,
        intent,
    };
    let intent = |name: &str| {
        Some(Intent {
            name: name.into(),
            confidence: 0.9,
            slots: vec![],
        })
    };

    assert_eq!(
        b.prompt.shape(&input("say that again", intent("repeat"))),
        PromptOutput::Direct {
            text: "We open at nine sharp.".into()
        }
    );
    let PromptOutput::Direct { text } = b.prompt.shape(&input("bye", intent("goodbye"))) else {
        panic!("goodbye is answered directly")
    };
    assert!(
        text.starts_with("<protect>") && text.ends_with("</protect>"),
        "{text}"
    );

    let weather = Some(Intent {
        name: "weather".into(),
        confidence: 0.8,
        slots: vec![("city".into(), "oslo".into())],
    });
    let PromptOutput::Llm { messages, settings } = b.prompt.shape(&input("is it cold", weather))
    else {
        panic!("other intents go to the LLM")
    };
    assert_eq!(messages.first().unwrap().role, Role::System);
    let system = &messages[0].content;
    assert!(system.contains("You are Ada"), "{system}");
    assert!(system.contains("Hotel front desk."), "{system}");
    assert!(
        system.contains("weather") && system.contains("city = oslo"),
        "{system}"
    );
    assert_eq!(&messages[1..3], &history[..]);
    assert_eq!(
        messages.last().unwrap(),
        &ChatMessage::new(Role::User, "is it cold")
    );
    assert_eq!(settings.temperature, Some(0.3));
}

#[test]
fn barge_in_seed_plugin_decides_like_the_builtin_rules() {
    for (threshold, min_ms, protect) in [(5, 3000, true), (2, 500, false)] {
        let rules = BargeInRules {
            threshold_words: threshold,
            min_agent_ms: min_ms,
            protect_phrases: protect,
        };
        let reg = PluginRegistry::start(
            PluginSettings {
                barge_in: slot(
                    "barge-in-seed",
                    &[
                        ("threshold_words", &threshold.to_string()),
                        ("min_agent_ms", &min_ms.to_string()),
                        ("protect_phrases", &protect.to_string()),
                    ],
                ),
                ..settings()
            },
            BuiltinBehaviours { rules },
        )
        .expect("starts");
        let mut b = reg.for_session("s");
        let mut seen = std::collections::HashSet::new();
        for words in [
            "",
            "uh-huh",
            "no wait",
            "okay got it",
            "no no I meant tuesday please",
        ] {
            for agent_ms in [0, 600, 3500] {
                for protected in [false, true] {
                    let ev = event(words, agent_ms, 300, protected);
                    let expected = DefaultBargeIn::decide_with(&rules, &ev);
                    assert_eq!(b.barge_in.decide(&ev), expected, "{ev:?} with {rules:?}");
                    seen.insert(format!("{expected:?}"));
                }
            }
        }
        assert!(
            seen.len() >= 3,
            "the grid exercises ignore, wait and interrupt: {seen:?}"
        );
    }
}

#[test]
fn barge_in_smart_stops_on_stop_words_and_ignores_backchannels() {
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("barge-in-smart", &[("pause_after_ms", "500")]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let mut b = reg.for_session("s");
    // Stop words win even before the agent's minimum speaking time.
    assert_eq!(
        b.barge_in.decide(&event("stop", 400, 300, false)),
        BargeInDecision::Interrupt
    );
    assert_eq!(
        b.barge_in.decide(&event("wait, hold on", 4000, 300, false)),
        BargeInDecision::Interrupt
    );
    // Backchannels never interrupt, however many.
    assert_eq!(
        b.barge_in
            .decide(&event("yeah okay uh-huh sure right", 8000, 2000, false)),
        BargeInDecision::Ignore
    );
    // Sustained speech without words yet pauses the audio.
    assert_eq!(
        b.barge_in.decide(&event("", 4000, 700, false)),
        BargeInDecision::Pause
    );
    assert_eq!(
        b.barge_in.decide(&event("", 4000, 100, false)),
        BargeInDecision::Wait
    );
    // Protected phrases are heard whole: decide again after them.
    assert_eq!(
        b.barge_in.decide(&event("stop", 4000, 300, true)),
        BargeInDecision::Wait
    );
    // Otherwise the seed threshold.
    assert_eq!(
        b.barge_in
            .decide(&event("no I meant the other one", 4000, 900, false)),
        BargeInDecision::Interrupt
    );
}

#[test]
fn plugin_state_is_per_session() {
    // Two sessions configured identically answer identically and independently.
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: slot(
                "barge-in-seed",
                &[("threshold_words", "2"), ("min_agent_ms", "0")],
            ),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .unwrap();
    let mut a = reg.for_session("a");
    let mut b = reg.for_session("b");
    let ev = event("no wait", 10, 300, false);
    assert_eq!(a.barge_in.decide(&ev), BargeInDecision::Interrupt);
    drop(a);
    assert_eq!(b.barge_in.decide(&ev), BargeInDecision::Interrupt);
}

#[test]
fn start_fails_with_a_one_line_reason_naming_slot_and_file() {
    let missing = PluginRegistry::start(
        PluginSettings {
            barge_in: voice_host::plugins::SlotSettings::component(
                "/nonexistent/policy.wasm",
                vec![],
            ),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("a missing file fails");
    let text = missing.to_string();
    assert!(
        matches!(
            missing,
            PluginError::Read {
                slot: Slot::BargeIn,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("barge_in") && text.contains("/nonexistent/policy.wasm"),
        "{text}"
    );
    assert!(!text.contains('\n'));

    let bad_config = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("barge-in-seed", &[("threshold_words", "many")]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("init refuses the configuration");
    let text = bad_config.to_string();
    assert!(
        text.contains("threshold_words") && text.contains("barge_in_seed"),
        "{text}"
    );
    assert!(!text.contains('\n'));

    let wrong_slot = PluginRegistry::start(
        PluginSettings {
            intent: slot("barge-in-seed", &[]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("a barge-in policy cannot serve the intent slot");
    assert!(
        matches!(
            wrong_slot,
            PluginError::Invalid {
                slot: Slot::Intent,
                ..
            }
        ),
        "{wrong_slot}"
    );
}

#[test]
fn status_reports_what_serves_each_slot() {
    let reg = PluginRegistry::start(
        PluginSettings {
            intent: slot("intent-keywords", &[]),
            barge_in: slot("barge-in-smart", &[]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .unwrap();
    let status = reg.status();
    let by_slot = |s: Slot| status.iter().find(|x| x.slot == s).unwrap();
    assert_eq!(
        by_slot(Slot::Intent).plugin.as_deref(),
        Some("intent_keywords")
    );
    assert_eq!(by_slot(Slot::Prompt).plugin, None, "no plug-in: built-in");
    let smart = by_slot(Slot::BargeIn);
    assert_eq!(smart.plugin.as_deref(), Some("barge_in_smart"));
    assert_eq!(smart.version.as_ref().unwrap().len(), 12);
    assert!(smart.loaded_at.is_some() && !smart.quarantined && smart.faults == 0);
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json[2]["slot"], "barge_in");
    assert!(reg.quarantined().is_empty());
}

#[test]
fn check_names_the_slot_each_reference_plugin_fits() {
    for (krate, slot) in [
        ("intent-keywords", Slot::Intent),
        ("prompt-persona", Slot::Prompt),
        ("barge-in-seed", Slot::BargeIn),
        ("barge-in-smart", Slot::BargeIn),
        ("turn-smart", Slot::Turn),
        // Built against the 0.1.0 contract: a host of a later 0.1.x still takes it.
        ("test-policy-v0-1-0", Slot::BargeIn),
        ("test-turn-v0-1-1", Slot::Turn),
    ] {
        let report = check_component(&wasm(krate)).expect("fits a slot");
        assert_eq!(report.fits, vec![slot], "{krate}");
        assert!(
            report.to_string().contains(&format!("fits slot {slot}")),
            "{report}"
        );
    }
    let _ = config(&[]);
}

/// Where the barge-in slot's current version came from, in the status listing and the
/// per-origin load counters: (`origin`, loads from the cache, loads compiled).
fn barge_in_origin(registry: &PluginRegistry) -> (String, u64, u64) {
    let status = registry.status();
    let slot = status
        .iter()
        .find(|s| s.slot == Slot::BargeIn)
        .expect("barge-in slot listed");
    let text = registry.prometheus();
    let loads = |origin: &str| {
        crate::common::metric(
            &text,
            &format!("voice_plugin_loads_total{{slot=\"barge_in\",origin=\"{origin}\"}}"),
        )
    };
    (
        slot.origin.expect("a plug-in serves the slot").to_string(),
        loads("cache"),
        loads("compiled"),
    )
}

#[test]
fn precompiled_cache_is_used_on_restart() {
    let dir = crate::common::TempDir::new("cache");
    let with_cache = || PluginSettings {
        barge_in: slot("barge-in-seed", &[]),
        cache_dir: Some(dir.path().to_path_buf()),
        ..settings()
    };
    let first = PluginRegistry::start(with_cache(), BuiltinBehaviours::default()).unwrap();
    assert_eq!(barge_in_origin(&first), ("compiled".into(), 0, 1));
    // The directory also holds the cache's MAC key.
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "one precompiled artifact");
    let hash = first.status()[2].hash.clone().unwrap();
    assert!(artifacts[0]
        .file_name()
        .to_string_lossy()
        .starts_with(&hash));
    drop(first);

    // A restart loads the artifact instead of compiling, and the plug-in answers.
    let second = PluginRegistry::start(with_cache(), BuiltinBehaviours::default()).unwrap();
    assert_eq!(barge_in_origin(&second), ("cache".into(), 1, 0));
    let mut b = second.for_session("s");
    assert_eq!(
        b.barge_in.decide(&event("yeah", 0, 0, false)),
        BargeInDecision::Ignore
    );
    let text = second.prometheus();
    assert_eq!(
        crate::common::metric(&text, "voice_plugin_calls_total{slot=\"barge_in\"}"),
        1,
        "the plug-in answered"
    );
    assert_eq!(
        crate::common::metric(&text, "voice_plugin_fallbacks_total{slot=\"barge_in\"}"),
        0
    );
    drop(b);
    drop(second);

    // A corrupt artifact is detected and replaced (compiled again), not loaded.
    std::fs::write(artifacts[0].path(), b"not a compiled component").unwrap();
    let third = PluginRegistry::start(with_cache(), BuiltinBehaviours::default()).unwrap();
    assert_eq!(barge_in_origin(&third), ("compiled".into(), 0, 1));
    let mut b = third.for_session("s");
    assert_eq!(
        b.barge_in.decide(&event("yeah", 0, 0, false)),
        BargeInDecision::Ignore
    );
    assert!(std::fs::metadata(artifacts[0].path()).unwrap().len() > 1000);
    drop(b);
    drop(third);
    let fourth = PluginRegistry::start(with_cache(), BuiltinBehaviours::default()).unwrap();
    assert_eq!(
        barge_in_origin(&fourth),
        ("cache".into(), 1, 0),
        "the rewritten artifact is used"
    );
}

fn pause(text: &str, probability: Option<f32>, agent: &str) -> TurnEvent {
    TurnEvent {
        trigger: TurnTrigger::Pause,
        silence_ms: 200,
        speech_ms: 1500,
        text: text.into(),
        word_count: text.split_whitespace().count() as u32,
        text_final: false,
        model_probability: probability,
        words_probability: None,
        agent_last_sentence: agent.into(),
        turn: 1,
    }
}

#[test]
fn turn_smart_ends_finished_turns_early_and_holds_unfinished_ones() {
    let reg = PluginRegistry::start(
        PluginSettings {
            turn: slot("turn-smart", &[("hold_ms", "1800")]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    assert!(reg.asks_turn(), "a turn plug-in is asked");
    let mut b = reg.for_session("s");
    let mut decide = |text: &str, p: Option<f32>| b.turn.decide(&pause(text, p, "How can I help?"));
    // Finished, by the words alone (no model) or with a confident model.
    assert_eq!(
        decide("what's the weather in paris", None),
        TurnDecision::EndTurn
    );
    assert_eq!(
        decide("I'd like a table for two.", None),
        TurnDecision::EndTurn
    );
    assert_eq!(
        decide("book it for tonight", Some(0.95)),
        TurnDecision::EndTurn
    );
    // Unfinished words hold the turn whatever the model says.
    for unfinished in [
        "I'd like to book a table for",
        "I want the pasta and",
        "my number is 4 1 5",
        "so um",
        "let me think,",
        "well",
        "I'd like to book a table for...",
        "Um, reporting environment. It's",
        "You're using it. What's",
        "and I think we’re",
    ] {
        assert_eq!(
            decide(unfinished, Some(0.99)),
            TurnDecision::Wait(1800),
            "{unfinished}"
        );
    }
    // A question the recogniser heard as one is finished, even ending in a preposition.
    assert_eq!(
        decide("which gate does it leave from?", None),
        TurnDecision::EndTurn
    );
    assert_eq!(
        decide("which gate does it leave from", Some(0.99)),
        TurnDecision::Wait(1800)
    );
    // Words that can end a sentence hold only without its stop ("I didn't know that.").
    assert_eq!(
        decide("I didn't know that.", Some(0.9)),
        TurnDecision::EndTurn
    );
    assert_eq!(
        decide("I didn't know that", Some(0.99)),
        TurnDecision::Wait(1800)
    );
    assert_eq!(decide("see you then.", None), TurnDecision::EndTurn);
    // A contraction inside the words does not hold them.
    assert_eq!(decide("That's it.", Some(0.9)), TurnDecision::EndTurn);
    // An elliptical answer the recogniser closed is finished; the same verb after a noun or
    // "to", or without the stop, holds.
    for finished in [
        "Yes, it is.",
        "I wish I could.",
        "No, we were!",
        "Yes I am.",
    ] {
        assert_eq!(
            decide(finished, Some(0.9)),
            TurnDecision::EndTurn,
            "{finished}"
        );
    }
    for unfinished in ["Yes, it is", "it could", "I want the.", "and I think it's."] {
        assert_eq!(
            decide(unfinished, Some(0.99)),
            TurnDecision::Wait(1800),
            "{unfinished}"
        );
    }
    // A preposition, pronoun or verb that also ends sentences, closed by the recogniser's stop,
    // holds once: until `hold_ms` (1800) of silence, then the silence rules decide.
    let perhaps = [
        "The thing is.",
        "that the need to be.",
        "Pretty straightforward, I think you're on.",
        "Just what he's talking about.",
        "about.",
    ];
    for text in perhaps {
        assert_eq!(decide(text, Some(0.99)), TurnDecision::Wait(1600), "{text}");
    }

    assert_eq!(
        decide("I want the pasta and.", None),
        TurnDecision::Wait(1800)
    );
    // A number without its stop has more to come; with it, it is finished.
    assert_eq!(
        decide("the address is 22", Some(0.99)),
        TurnDecision::Wait(1800)
    );
    assert_eq!(
        decide("arriving on the twenty", Some(0.99)),
        TurnDecision::Wait(1800)
    );
    assert_eq!(
        decide("The address is 22 Baker Street.", None),
        TurnDecision::EndTurn
    );
    // A statement the model is sure is unfinished is held until 1 s of silence (`doubt_ms`),
    // even with a stop (a recogniser writes stops at pauses inside sentences); a doubt less
    // sure is left to the silence rules; so are no words yet.
    assert_eq!(
        decide("book it for tonight", Some(0.05)),
        TurnDecision::Wait(800)
    );
    assert_eq!(decide("Uh, book.", Some(0.05)), TurnDecision::Wait(800));
    assert_eq!(
        decide("book it for tonight", Some(0.3)),
        TurnDecision::Wait(0)
    );
    assert_eq!(
        decide("can you book it for tonight?", Some(0.05)),
        TurnDecision::Wait(0),
        "a question mark: the silence rules"
    );
    assert_eq!(decide("", Some(0.99)), TurnDecision::Wait(0));
    let mut later = pause("book it for tonight", Some(0.05), "");
    later.trigger = TurnTrigger::Timer;
    later.silence_ms = 1000;
    assert_eq!(
        b.turn.decide(&later),
        TurnDecision::Wait(0),
        "the doubt's hold ran out"
    );
    for text in perhaps {
        let mut ran_out = pause(text, Some(0.99), "");
        ran_out.trigger = TurnTrigger::Timer;
        ran_out.silence_ms = 1800;
        assert_eq!(b.turn.decide(&ran_out), TurnDecision::Wait(0), "{text}");
    }
    // A short answer to the agent's question is finished.
    let yes = b.turn.decide(&pause("no thanks", None, "Anything else?"));
    assert_eq!(yes, TurnDecision::EndTurn);

    // Words a text model reads as unfinished (`turn-signals`) hold an end of turn until 1 s of
    // silence (`doubt_ms`), however sure the audio model is; a likely end, or no text model,
    // leaves it ended. They never end a turn the rest holds.
    let mut read = |text: &str, p: Option<f32>, words: Option<f32>, silence_ms: u32| {
        let mut event = pause(text, p, "How can I help?");
        event.words_probability = words;
        event.silence_ms = silence_ms;
        b.turn.decide(&event)
    };
    let sure = Some(0.97);
    assert_eq!(
        read("call my mother", sure, Some(0.004), 200),
        TurnDecision::Wait(800)
    );
    assert_eq!(
        read("call my mother", sure, Some(0.004), 1000),
        TurnDecision::EndTurn
    );
    assert_eq!(
        read("call my mother", sure, Some(0.3), 200),
        TurnDecision::EndTurn
    );
    assert_eq!(
        read("call my mother", sure, None, 200),
        TurnDecision::EndTurn
    );
    assert_eq!(
        read("call my mother", sure, Some(f32::NAN), 200),
        TurnDecision::EndTurn
    );
    assert_eq!(
        read("I want the pasta and", sure, Some(0.9), 200),
        TurnDecision::Wait(1800)
    );

    let no_doubt = PluginRegistry::start(
        PluginSettings {
            turn: slot("turn-smart", &[("hold_below", "0"), ("doubt_ms", "1500")]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let mut b = no_doubt.for_session("s");
    assert_eq!(
        b.turn.decide(&pause("book it for tonight", Some(0.05), "")),
        TurnDecision::Wait(0),
        "hold_below = 0 leaves a doubted turn to the silence rules"
    );

    let refused = PluginRegistry::start(
        PluginSettings {
            turn: slot("turn-smart", &[("end_score", "1.5")]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("init refuses the configuration");
    assert!(refused.to_string().contains("end_score"), "{refused}");
}

#[test]
fn without_a_turn_plugin_sessions_keep_the_silence_rules() {
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("barge-in-smart", &[]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    assert!(!reg.asks_turn(), "nothing but the rules could answer");
    let mut b = reg.for_session("s");
    assert_eq!(
        b.turn.decide(&pause("what's the weather", Some(1.0), "")),
        TurnDecision::Wait(0)
    );
}

#[test]
fn turn_smart_s_text_hold_is_configurable() {
    let reg = PluginRegistry::start(
        PluginSettings {
            turn: slot("turn-smart", &[("text_hold", "0")]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("starts");
    let mut b = reg.for_session("s");
    let mut event = pause("call my mother", Some(0.97), "");
    event.words_probability = Some(0.004);
    assert_eq!(
        b.turn.decide(&event),
        TurnDecision::EndTurn,
        "text_hold = 0: no hold"
    );
    let refused = PluginRegistry::start(
        PluginSettings {
            turn: slot("turn-smart", &[("text_hold", "high")]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .err()
    .expect("init refuses the configuration");
    assert!(refused.to_string().contains("text_hold"), "{refused}");
}

#[test]
fn a_turn_plugin_built_before_turn_signals_still_serves() {
    let reg = PluginRegistry::start(
        PluginSettings {
            turn: slot("test-turn-v0-1-1", &[]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("a 0.1.1 plug-in links against this host");
    let mut b = reg.for_session("s");
    let mut event = pause("book it for tonight.", None, "");
    event.words_probability = Some(0.5);
    assert_eq!(b.turn.decide(&event), TurnDecision::EndTurn);
    // The silence rules would answer `Wait(0)`; the plug-in holds.
    assert_eq!(
        b.turn.decide(&pause("book it for", None, "")),
        TurnDecision::Wait(700)
    );
}

#[test]
fn a_plugin_built_against_the_first_contract_still_serves() {
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: slot("test-policy-v0-1-0", &[]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .expect("a 0.1.0 plug-in links against this host");
    let mut b = reg.for_session("s");
    // The built-in rules would wait (the agent has spoken only 100 ms); the plug-in interrupts.
    assert_eq!(
        b.barge_in.decide(&event("no stop", 100, 300, false)),
        BargeInDecision::Interrupt
    );
}
