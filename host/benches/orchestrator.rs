//! Host-side cost of the turn orchestrator (pure, no I/O): a whole typed turn with 20 LLM
//! tokens and 2 s of TTS audio paced out to `agent_done`, and the work per 20 ms audio frame
//! while a reply plays; each also with the session's OpenTelemetry trace shown every event and
//! action, as the session task does when traces are exported (the spans go to a batch exporter
//! whose collector refuses connections: what is measured is the session's side).
//!
//! Run with `cargo bench -p voice-host --bench orchestrator`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};
use voice_host::behaviour::{ChatMessage, GenerationSettings, PromptOutput, Role};
use voice_host::providers::LlmEvent;
use voice_host::session::events::{Action, Event};
use voice_host::session::orchestrator::{Orchestrator, OrchestratorConfig};
use voice_host::telemetry::{SessionTrace, Telemetry};

/// 20 ms of 16 kHz PCM16 (the default output format).
const FRAME_BYTES: usize = 640;

const TOKENS: [&str; 20] = [
    "Sure",
    ",",
    " the",
    " weather",
    " in",
    " Paris",
    " is",
    " sunny",
    " today",
    ".",
    " It",
    " will",
    " reach",
    " twenty",
    " two",
    " degrees",
    " this",
    " afternoon",
    ",",
    " enjoy!",
];

/// Feeds one session's events and counts the actions, as the session task would carry them out.
struct Feeder {
    orch: Orchestrator,
    out: Vec<Action>,
    now: u64,
    actions: usize,
    trace: Option<SessionTrace>,
}

impl Feeder {
    fn new() -> Self {
        Self {
            orch: Orchestrator::new(OrchestratorConfig::default()),
            out: Vec::with_capacity(64),
            now: 0,
            actions: 0,
            trace: None,
        }
    }

    fn traced(telemetry: &Telemetry) -> Self {
        Self {
            trace: Some(telemetry.session("bench")),
            ..Self::new()
        }
    }

    fn feed(&mut self, event: Event) {
        if let Some(t) = &mut self.trace {
            t.on_event(&event);
        }
        self.orch.handle(self.now, event, &mut self.out);
        if let Some(t) = &mut self.trace {
            for a in &self.out {
                t.on_action(a);
            }
        }
        self.actions += self.out.len();
    }

    /// The turn and plan of the `PlanReply` just produced.
    fn planned_turn(&self) -> Option<(u32, u32)> {
        self.out.iter().find_map(|a| match a {
            Action::PlanReply { turn, plan, .. } => Some((*turn, *plan)),
            _ => None,
        })
    }

    /// One whole typed turn, from the user's text to `agent_done` once the audio has played.
    fn turn(&mut self) {
        self.out.clear();
        self.feed(Event::UserText("what is the weather in paris".into()));
        let (turn, plan) = self.planned_turn().expect("a typed turn is planned");
        self.out.clear();
        self.feed(Event::ReplyPlanned {
            turn,
            plan,
            output: PromptOutput::Llm {
                messages: vec![ChatMessage::new(Role::User, "what is the weather in paris")],
                settings: GenerationSettings::default(),
            },
            plugins_ms: 0.0,
        });
        for token in TOKENS {
            self.now += 1;
            self.out.clear();
            self.feed(Event::Llm {
                turn,
                event: LlmEvent::Token(token.into()),
            });
        }
        self.out.clear();
        self.feed(Event::Llm {
            turn,
            event: LlmEvent::Done {
                finish_reason: None,
                usage: None,
            },
        });
        // 2 s of speech in 100 ms chunks, as a streaming TTS delivers it.
        for _ in 0..20 {
            self.out.clear();
            self.feed(Event::TtsAudio {
                turn,
                bytes: vec![0; FRAME_BYTES * 5],
                alignment: None,
            });
        }
        self.out.clear();
        self.feed(Event::TtsDone { turn });
        // Paced out: a tick at every wakeup until the reply is done.
        while let Some(at) = self.orch.next_wakeup() {
            self.now = at;
            self.out.clear();
            self.feed(Event::Tick);
        }
        self.now += 100;
    }

    /// Start a reply with `seconds` of audio queued, ready to be paced out frame by frame.
    fn speaking(&mut self, seconds: usize) {
        self.out.clear();
        self.feed(Event::UserText("tell me a long story".into()));
        let (turn, plan) = self.planned_turn().expect("a typed turn is planned");
        self.out.clear();
        self.feed(Event::ReplyPlanned {
            turn,
            plan,
            output: PromptOutput::Direct {
                text: "Once upon a time.".into(),
            },
            plugins_ms: 0.0,
        });
        self.out.clear();
        self.feed(Event::TtsAudio {
            turn,
            bytes: vec![0; FRAME_BYTES * 50 * seconds],
            alignment: None,
        });
        // All of it synthesised: nothing is owed, so no stall timer ends the reply early.
        self.out.clear();
        self.feed(Event::TtsDone { turn });
    }
}

/// Traces exported over OTLP/HTTP to a port where nothing listens.
fn telemetry() -> std::sync::Arc<Telemetry> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    Telemetry::start(&voice_host::config::telemetry::TelemetryConfig {
        traces_endpoint: Some(format!("http://{closed}/v1/traces")),
        base_endpoint: None,
        protocol: voice_host::config::telemetry::OtlpProtocol::HttpProtobuf,
        service_name: "bench".into(),
        record_text: false,
    })
    .expect("exporter")
    .expect("tracing on")
}

fn bench_turn(c: &mut Criterion) {
    let telemetry = telemetry();
    for (name, mut f) in [
        ("orchestrator/typed_turn_20_tokens_2s_audio", Feeder::new()),
        (
            "orchestrator/typed_turn_20_tokens_2s_audio_traced",
            Feeder::traced(&telemetry),
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                f.turn();
                black_box(f.actions)
            })
        });
    }
}

/// One 20 ms frame of reply audio: the tick at the orchestrator's wakeup that releases it.
fn bench_frame(c: &mut Criterion) {
    let telemetry = telemetry();
    for (name, traced) in [
        ("orchestrator/audio_frame_tick", false),
        ("orchestrator/audio_frame_tick_traced", true),
    ] {
        bench_frames(c, name, traced.then_some(&*telemetry));
    }
}

fn bench_frames(c: &mut Criterion, name: &str, telemetry: Option<&Telemetry>) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                // A fresh reply with a minute of audio, set up outside the measurement.
                let mut f = telemetry.map_or_else(Feeder::new, Feeder::traced);
                f.speaking(60);
                let frames = (iters - done).min(2500);
                for _ in 0..frames {
                    let at = f.orch.next_wakeup().expect("audio is queued");
                    f.now = at;
                    f.out.clear();
                    let t0 = Instant::now();
                    f.feed(Event::Tick);
                    total += t0.elapsed();
                }
                black_box(f.actions);
                done += frames;
            }
            total
        })
    });
}

criterion_group!(benches, bench_turn, bench_frame);
criterion_main!(benches);
