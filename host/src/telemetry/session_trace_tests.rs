//! The span tree a session's events and actions produce, exported synchronously to a collector
//! in memory (the exporter is the edge; the trace logic is the code under test).

use super::*;
use crate::behaviour::PromptOutput;
use crate::transport::protocol::ServerMessage;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

fn trace(record_text: bool) -> (SessionTrace, Collect, SdkTracerProvider) {
    let collect = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collect.clone())
        .build();
    let t = SessionTrace::new(provider.tracer("test"), "s-1", record_text);
    (t, collect, provider)
}

fn plan(turn: u32, text: &str) -> Action {
    Action::TurnCommitted {
        turn,
        user_text: text.into(),
        by: crate::session::events::TurnEnd::Silence,
    }
}

fn done(turn: u32, text: &str, interrupted: bool) -> Action {
    Action::Send(ServerMessage::AgentDone {
        turn,
        text: text.into(),
        interrupted,
    })
}

fn planned(turn: u32) -> Answer {
    Answer::Planned {
        turn,
        plan: turn,
        output: PromptOutput::Direct {
            text: "For how many?".into(),
        },
        plugins_ms: 2.0,
        intent_ms: 1.0,
    }
}

/// One spoken turn, answered in full.
fn spoken_turn(t: &mut SessionTrace, turn: u32) {
    t.on_event(&Event::Vad(VadTransition::SpeechStart { at_ms: 0 }));
    t.on_event(&Event::Vad(VadTransition::SpeechEnd { at_ms: 900 }));
    t.on_event(&Event::Stt(SttEvent::Final {
        text: "book a table".into(),
        words: vec![],
        speech_final: true,
        from_finalize: true,
    }));
    t.on_action(&plan(turn, "book a table"));
    t.on_answer(&planned(turn));
    t.on_action(&Action::StartLlm {
        turn,
        messages: vec![],
        settings: Default::default(),
    });
    for word in ["For ", "how ", "many?"] {
        t.on_event(&Event::Llm {
            turn,
            event: LlmEvent::Token(word.into()),
        });
    }
    t.on_action(&Action::StartTts { turn });
    t.on_action(&Action::SpeakSentence {
        turn,
        text: "For how many?".into(),
    });
    t.on_event(&Event::Llm {
        turn,
        event: LlmEvent::Done {
            finish_reason: None,
            usage: None,
        },
    });
    t.on_event(&Event::TtsAudio {
        turn,
        bytes: vec![0; 640],
        alignment: None,
    });
    t.on_action(&Action::SendAudio(vec![0; 640]));
    t.on_action(&Action::SendAudio(vec![0; 640]));
    t.on_event(&Event::TtsDone { turn });
    t.on_action(&done(turn, "For how many?", false));
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[test]
fn a_turn_is_a_child_of_the_session_with_its_stages_under_it() {
    let (mut t, collect, _p) = trace(false);
    spoken_turn(&mut t, 1);
    t.end();
    let spans = collect.0.lock().unwrap().clone();
    let session = named(&spans, "session")[0];
    let turn = named(&spans, "turn")[0];
    assert_eq!(turn.parent_span_id, session.span_context.span_id());
    let mut stages: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id == turn.span_context.span_id())
        .map(|s| s.name.to_string())
        .collect();
    stages.sort();
    assert_eq!(
        stages,
        [
            "llm",
            "playout",
            "plugin.intent",
            "plugin.prompt",
            "stt",
            "tts"
        ]
    );
    for s in &spans {
        assert_eq!(s.span_context.trace_id(), session.span_context.trace_id());
        assert_eq!(attr(s, "session.id").as_deref(), Some("s-1"));
        assert!(s.start_time <= s.end_time, "{}", s.name);
    }
    let llm = named(&spans, "llm")[0];
    assert_eq!(attr(llm, "llm.tokens").as_deref(), Some("3"));
    assert_eq!(attr(llm, "voice.cancelled").as_deref(), Some("false"));
    assert_eq!(llm.events.events[0].name, "first_token");
    // The plug-in calls split the plan's time: intent first, then the prompt.
    let intent = named(&spans, "plugin.intent")[0];
    let prompt = named(&spans, "plugin.prompt")[0];
    assert!(intent.end_time <= prompt.start_time);
    assert_eq!(attr(session, "voice.turns").as_deref(), Some("1"));
}

#[test]
fn text_is_kept_out_unless_asked_for() {
    for record in [false, true] {
        let (mut t, collect, _p) = trace(record);
        spoken_turn(&mut t, 1);
        t.end();
        let spans = collect.0.lock().unwrap().clone();
        let turn = named(&spans, "turn")[0];
        let words = spans
            .iter()
            .flat_map(|s| s.attributes.iter())
            .any(|kv| kv.value.to_string().contains("table"));
        assert_eq!(
            words, record,
            "text in spans with OTEL_RECORD_TEXT={record}"
        );
        if record {
            assert_eq!(
                attr(turn, "voice.user_text").as_deref(),
                Some("book a table")
            );
        } else {
            assert_eq!(attr(turn, "voice.user_text_chars").as_deref(), Some("12"));
        }
    }
}

#[test]
fn a_barge_in_marks_the_turn_and_its_cancelled_stages() {
    let (mut t, collect, _p) = trace(false);
    t.on_action(&plan(1, "tell me a story"));
    t.on_answer(&planned(1));
    t.on_action(&Action::StartLlm {
        turn: 1,
        messages: vec![],
        settings: Default::default(),
    });
    t.on_action(&Action::StartTts { turn: 1 });
    t.on_action(&Action::SendAudio(vec![0; 640]));
    for decision in [BargeInDecision::Wait, BargeInDecision::Interrupt] {
        t.on_answer(&Answer::Decided {
            turn: 1,
            seq: 1,
            decision,
            took_ms: 0.1,
        });
    }
    t.on_action(&Action::CancelLlm { turn: 1 });
    t.on_action(&Action::CancelTts { turn: 1 });
    t.on_action(&Action::Send(ServerMessage::Interrupt { turn: 1 }));
    t.on_action(&done(1, "Once", true));
    let spans = collect.0.lock().unwrap().clone();
    let turn = named(&spans, "turn")[0];
    assert_eq!(attr(turn, "voice.interrupted").as_deref(), Some("true"));
    assert_eq!(turn.events.events[0].name, "barge_in");
    let decisions: Vec<_> = named(&spans, "barge_in.decide")
        .into_iter()
        .map(|s| attr(s, "voice.barge_in.decision").unwrap())
        .collect();
    assert_eq!(decisions, ["wait", "interrupt"]);
    for stage in ["llm", "tts"] {
        let s = named(&spans, stage)[0];
        assert_eq!(
            attr(s, "voice.cancelled").as_deref(),
            Some("true"),
            "{stage}"
        );
    }
    // A typed turn has no speech-to-text stage.
    assert!(named(&spans, "stt").is_empty());
}

#[test]
fn a_turn_replaced_before_its_reply_ends_and_one_open_at_the_end_are_both_exported() {
    let (mut t, collect, _p) = trace(false);
    t.on_action(&plan(1, "first"));
    t.on_action(&plan(2, "second"));
    // Answers and events of a turn already over are not attributed to the new one.
    t.on_answer(&planned(1));
    t.end();
    let spans = collect.0.lock().unwrap().clone();
    let turns: Vec<_> = named(&spans, "turn")
        .into_iter()
        .map(|s| attr(s, "voice.turn").unwrap())
        .collect();
    assert_eq!(turns, ["1", "2"]);
    assert!(named(&spans, "plugin.intent").is_empty());
    assert_eq!(named(&spans, "session").len(), 1);
}

#[test]
fn a_reply_started_before_its_turn_was_committed_is_traced_under_the_turn() {
    let (mut t, collect, _p) = trace(false);
    t.on_event(&Event::Vad(VadTransition::SpeechStart { at_ms: 0 }));
    // A speculation that the user's next words made void: nothing of it is traced.
    t.on_answer(&planned(1));
    t.on_action(&Action::StartLlm {
        turn: 1,
        messages: vec![],
        settings: Default::default(),
    });
    t.on_action(&Action::CancelLlm { turn: 1 });
    t.on_action(&Action::Preempted(Preemption::Wasted));
    // The one the turn takes over, planned and started before the end of speech.
    t.on_answer(&planned(1));
    t.on_action(&Action::StartLlm {
        turn: 1,
        messages: vec![],
        settings: Default::default(),
    });
    std::thread::sleep(Duration::from_millis(5));
    t.on_event(&Event::Vad(VadTransition::SpeechEnd { at_ms: 900 }));
    t.on_action(&plan(1, "book a table"));
    t.on_action(&Action::Preempted(Preemption::Used));
    t.on_event(&Event::Llm {
        turn: 1,
        event: LlmEvent::Token("For how many?".into()),
    });
    t.on_action(&done(1, "For how many?", false));
    t.end();
    let spans = collect.0.lock().unwrap().clone();
    let turn = named(&spans, "turn")[0];
    assert_eq!(attr(turn, "voice.preempted").as_deref(), Some("true"));
    let under: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id == turn.span_context.span_id())
        .collect();
    let mut names: Vec<_> = under.iter().map(|s| s.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["llm", "plugin.intent", "plugin.prompt", "stt"]);
    for s in under {
        assert!(
            s.start_time >= turn.start_time,
            "{} before its turn",
            s.name
        );
    }
    assert_eq!(named(&spans, "llm").len(), 1);
}

#[test]
fn a_turn_the_user_went_on_after_is_marked() {
    let (mut t, collect, _p) = trace(false);
    t.on_action(&plan(1, "book a table"));
    t.on_action(&Action::TurnContinued {
        turn: 1,
        by: crate::session::events::TurnEnd::Policy,
    });
    t.on_action(&done(1, "", true));
    t.on_action(&plan(2, "book a table for two"));
    t.on_action(&done(2, "For when?", false));
    t.end();
    let spans = collect.0.lock().unwrap().clone();
    let continued: Vec<_> = named(&spans, "turn")
        .into_iter()
        .map(|s| attr(s, "voice.continued"))
        .collect();
    assert_eq!(continued, [Some("true".to_string()), None]);
}
