//! The end-of-turn report: false cut-offs and end-of-turn delay on a labelled set of utterances
//! (`host/tests/fixtures/turn-set/utterances.toml`), per speech source and overall, for
//! - the silence rules alone (no end-of-turn policy: the turn ends at the VAD's end of speech);
//! - the reference policy `turn-smart` without a model (the words alone);
//! - the reference policy with Smart Turn v3.2 (the host's configuration with `TURN_PLUGIN`).
//!
//! Each utterance is spoken by espeak-ng (each voice and rate is a source), segment by segment
//! with the labelled silences between them, resampled to 16 kHz, and played on a simulated clock
//! through what a session runs: the real `VoiceGate` (webrtc-vad, pauses at 200 ms, hangover
//! 600 ms), the real orchestrator (`session::orchestrator`, which owns the rules of what an
//! answer does), the turn's audio as the session keeps it (`TurnAudio`: 0.5 s pre-roll, at most
//! 8 s) judged by the model at each pause and end of speech as the session driver does (the
//! latest judgement for new words and timers), and the plug-in answering through the host's
//! plug-in runtime. An answer reaches the orchestrator after the model's measured inference time.
//!
//! The recogniser is simulated, perfect: while a segment is spoken it reports the words so far
//! every 300 ms (in proportion to the time spoken), and the segment's labelled text as a final
//! when its voice ends, each `--stt-ms` later (default 0: at once); the answer to the host's
//! finalize arrives `--stt-ms` after it is asked (the orchestrator waits at most 300 ms for it).
//!
//! - false cut-off: an incomplete utterance whose turn is committed at one of its inner pauses
//!   (the committed words lack what followed);
//! - end-of-turn delay: on complete utterances, from the end of the voice in the audio to the
//!   moment the orchestrator commits the turn (asks for a reply).
//!
//! Run: `scripts/end-of-turn-report.sh` (builds the plug-in, then this example), or
//! `cargo run --release -p voice-host --example end_of_turn_report -- [OPTIONS]`:
//!   --voices en-us,en-gb,en-us+f3   espeak-ng voices
//!   --rates 140,175,210             words per minute
//!   --stt-ms N                      recogniser latency (words after the voice, finalize answer)
//!   --strip-punctuation             the recogniser writes no punctuation
//!   --plugin PATH                   the policy (plugins/dist/turn_smart.wasm)
//!   --config key=value,...          the policy's configuration
//!   --set PATH                      the labelled set
//!   --verbose                       one line per utterance and strategy
//!   --trace TEXT                    only utterances containing TEXT, every event printed

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use voice_host::audio::{Resampler, VadConfig, VadTransition, VoiceGate, FRAME_SAMPLES};
use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::behaviour::{BehaviourSource, ChatMessage, Role, TurnPolicy, TurnTrigger};
use voice_host::plugins::{PluginRegistry, PluginSettings, SlotSettings};
use voice_host::providers::local::bench::Espeak;
use voice_host::providers::SttEvent;
use voice_host::session::events::{Action, Event};
use voice_host::session::orchestrator::{Orchestrator, OrchestratorConfig};
use voice_host::session::turn_audio::TurnAudio;
use voice_host::turn::TurnModel;

const RATE: usize = 16_000;
const FRAME_MS: u64 = 20;
/// Silence before the speech (the pre-roll the model is given comes from it).
const LEAD_MS: usize = 1000;
/// Silence after it: longer than any hold (5 s after the last voice) and the silence timeout.
const TAIL_MS: usize = 8000;
/// How often the simulated recogniser reports the words heard so far while the voice lasts.
const INTERIM_MS: u64 = 300;

#[derive(Deserialize)]
struct Set {
    complete: Vec<Complete>,
    incomplete: Vec<Incomplete>,
}

#[derive(Deserialize)]
struct Complete {
    text: String,
    agent: Option<String>,
}

#[derive(Deserialize)]
struct Incomplete {
    say: Vec<String>,
    pauses_ms: Vec<u32>,
    cue: String,
    agent: Option<String>,
}

/// One labelled utterance.
struct Item {
    segments: Vec<String>,
    pauses_ms: Vec<u32>,
    agent: Option<String>,
    /// `None` for a complete utterance.
    cue: Option<String>,
}

/// An utterance spoken by one source: 16 kHz audio and where each segment's voice lies.
struct Clip {
    audio: Vec<i16>,
    /// (start, end) of each segment's voice, in ms of the clip.
    spans: Vec<(u64, u64)>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Strategy {
    Silence,
    TextPolicy,
    ModelPolicy,
}

impl Strategy {
    const ALL: [Strategy; 3] = [
        Strategy::Silence,
        Strategy::TextPolicy,
        Strategy::ModelPolicy,
    ];
    fn name(self) -> &'static str {
        match self {
            Strategy::Silence => "silence rules",
            Strategy::TextPolicy => "turn-smart, words only",
            Strategy::ModelPolicy => "Smart Turn + turn-smart",
        }
    }
}

/// What happened to one utterance under one strategy.
struct Outcome {
    /// When the turn was committed (ms of the clip), with its words.
    committed: Option<(u64, String)>,
    /// (time, probability, ms of wall time) of each model run.
    model_runs: Vec<(u64, f32, f64)>,
}

struct Options {
    voices: Vec<String>,
    rates: Vec<u32>,
    stt_ms: u64,
    strip_punctuation: bool,
    plugin: PathBuf,
    config: Vec<(String, String)>,
    set: PathBuf,
    models: PathBuf,
    verbose: bool,
    /// Only utterances whose text contains this, with every event traced.
    trace: Option<String>,
}

fn options() -> Options {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut o = Options {
        voices: vec!["en-us".into(), "en-gb".into(), "en-us+f3".into()],
        rates: vec![140, 175, 210],
        stt_ms: 0,
        strip_punctuation: false,
        plugin: root
            .parent()
            .expect("the workspace")
            .join("plugins/dist/turn_smart.wasm"),
        config: Vec::new(),
        set: root.join("tests/fixtures/turn-set/utterances.toml"),
        models: std::env::var_os("MODELS_DIR").map_or_else(
            voice_host::providers::local::LocalModels::default_dir,
            PathBuf::from,
        ),
        verbose: false,
        trace: None,
    };
    let mut args = std::env::args().skip(1);
    let list = |v: Option<String>| -> Vec<String> {
        v.expect("a value")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--voices" => o.voices = list(args.next()),
            "--rates" => {
                o.rates = list(args.next())
                    .iter()
                    .map(|r| r.parse().expect("--rates: words per minute"))
                    .collect()
            }
            "--stt-ms" => {
                o.stt_ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--stt-ms N")
            }
            "--strip-punctuation" => o.strip_punctuation = true,
            "--plugin" => o.plugin = args.next().expect("--plugin PATH").into(),
            "--config" => {
                o.config = list(args.next())
                    .iter()
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("--config key=value,...");
                        (k.to_string(), v.to_string())
                    })
                    .collect()
            }
            "--set" => o.set = args.next().expect("--set PATH").into(),
            "--models" => o.models = args.next().expect("--models DIR").into(),
            "--verbose" => o.verbose = true,
            "--trace" => o.trace = Some(args.next().expect("--trace TEXT")),
            other => panic!("unknown option {other} (see the header of this file)"),
        }
    }
    o
}

fn load_set(path: &Path) -> Vec<Item> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let set: Set = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut items: Vec<Item> = set
        .complete
        .into_iter()
        .map(|c| Item {
            segments: vec![c.text],
            pauses_ms: Vec::new(),
            agent: c.agent,
            cue: None,
        })
        .collect();
    for i in set.incomplete {
        assert!(
            i.say.len() >= 2 && i.pauses_ms.len() == i.say.len() - 1,
            "{:?}: an incomplete utterance has a pause after each segment but the last",
            i.say
        );
        assert!(
            i.pauses_ms.iter().all(|p| (200..=1500).contains(p)),
            "{:?}: pauses are 200-1500 ms",
            i.say
        );
        items.push(Item {
            segments: i.say,
            pauses_ms: i.pauses_ms,
            agent: i.agent,
            cue: Some(i.cue),
        });
    }
    items
}

/// `text` spoken by espeak-ng, at 16 kHz, without its leading and trailing silence.
fn speak(espeak: &Espeak, text: &str, voice: &str, wpm: u32) -> Vec<i16> {
    let mut native = Vec::new();
    espeak
        .synthesize(text, Some(voice), Some(wpm), &mut |s: &[i16]| {
            native.extend_from_slice(s);
            true
        })
        .expect("espeak-ng speaks");
    let mut resampler = Resampler::new(espeak.sample_rate(), RATE as u32).expect("resampler");
    let mut audio = Vec::new();
    resampler.process(&native, &mut audio);
    resampler.flush(&mut audio);
    let loud = |s: &i16| s.unsigned_abs() > 200;
    let first = audio.iter().position(loud).unwrap_or(0);
    let last = audio.iter().rposition(loud).map_or(audio.len(), |i| i + 1);
    audio[first..last].to_vec()
}

fn clip_of(espeak: &Espeak, item: &Item, voice: &str, wpm: u32) -> Clip {
    let ms = |samples: usize| (samples * 1000 / RATE) as u64;
    let mut audio = vec![0i16; LEAD_MS * RATE / 1000];
    let mut spans = Vec::new();
    for (i, segment) in item.segments.iter().enumerate() {
        let start = audio.len();
        audio.extend(speak(espeak, segment, voice, wpm));
        spans.push((ms(start), ms(audio.len())));
        let pause = item.pauses_ms.get(i).map_or(TAIL_MS, |&p| p as usize);
        audio.extend(std::iter::repeat_n(0, pause * RATE / 1000));
    }
    let whole = audio.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
    audio.resize(whole, 0);
    Clip { audio, spans }
}

/// What the simulated recogniser writes for a segment.
fn heard(text: &str, strip_punctuation: bool) -> String {
    if !strip_punctuation {
        return text.to_string();
    }
    text.chars()
        .filter(|c| !matches!(c, '.' | ',' | '?' | '!' | ';' | ':'))
        .collect()
}

/// Something due at a time on the simulated clock.
enum Due {
    Stt(SttEvent),
    Decided(Event),
}

struct Sim<'a> {
    model: Option<&'a TurnModel>,
    policy: Option<&'a mut dyn TurnPolicy>,
    runtime: &'a tokio::runtime::Runtime,
    stt_ms: u64,
    strip_punctuation: bool,
    trace: bool,
}

fn final_words(text: String, from_finalize: bool) -> SttEvent {
    SttEvent::Final {
        text,
        words: Vec::new(),
        speech_final: false,
        from_finalize,
    }
}

impl Sim<'_> {
    fn run(&mut self, item: &Item, clip: &Clip) -> Outcome {
        let policy_on = self.policy.is_some();
        let mut gate = VoiceGate::new(VadConfig {
            pause_ms: if policy_on { 200 } else { 0 },
            hangover_ms: 600,
            ..VadConfig::default()
        })
        .expect("VAD");
        let cfg = OrchestratorConfig {
            turn_policy: policy_on,
            vad_hangover_ms: 600,
            ..OrchestratorConfig::default()
        };
        let memory: Vec<ChatMessage> = item
            .agent
            .iter()
            .map(|a| ChatMessage::new(Role::Assistant, a.clone()))
            .collect();
        let mut orch = Orchestrator::resumed(cfg, &memory, 1);
        let mut audio = TurnAudio::default();
        let mut latest: Option<f32> = None;
        let mut outcome = Outcome {
            committed: None,
            model_runs: Vec::new(),
        };
        // Things due later, in order of time then of scheduling.
        let mut due: Vec<(u64, u64, Due)> = Vec::new();
        let mut order = 0u64;
        for (segment, &(start, end)) in item.segments.iter().zip(&clip.spans) {
            // A streaming recogniser: the words so far every `INTERIM_MS` while the voice
            // lasts (in proportion to the time spoken), the whole segment as a final at its end.
            let words = heard(segment, self.strip_punctuation);
            let all: Vec<&str> = words.split_whitespace().collect();
            let mut t = start + INTERIM_MS;
            while t < end {
                let n = (all.len() as u64 * (t - start)).div_ceil(end - start) as usize;
                let so_far = all[..n.min(all.len())].join(" ");
                let interim = SttEvent::Interim {
                    // A guess carries no final stop yet.
                    text: so_far.trim_end_matches(['.', '?', '!']).to_string(),
                    words: Vec::new(),
                };
                due.push((t + self.stt_ms, order, Due::Stt(interim)));
                order += 1;
                t += INTERIM_MS;
            }
            due.push((
                end + self.stt_ms,
                order,
                Due::Stt(final_words(words, false)),
            ));
            order += 1;
        }
        let frames = clip.audio.len() / FRAME_SAMPLES;
        let mut next_frame = 0usize;
        let mut now = 0u64;
        let mut actions = Vec::new();
        loop {
            let frame_at = (next_frame < frames).then(|| (next_frame as u64 + 1) * FRAME_MS);
            let due_at = due.iter().map(|d| (d.0, d.1)).min();
            let wake_at = orch.next_wakeup().map(|t| t.max(now));
            let Some(at) = [frame_at, due_at.map(|d| d.0), wake_at]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            now = at;
            let mut events = Vec::new();
            if let Some((t, o)) = due_at.filter(|d| d.0 == at) {
                let i = due.iter().position(|d| d.0 == t && d.1 == o).unwrap();
                match due.swap_remove(i).2 {
                    Due::Stt(e) => events.push(Event::Stt(e)),
                    Due::Decided(e) => events.push(e),
                }
            } else if frame_at == Some(at) {
                let frame = &clip.audio[next_frame * FRAME_SAMPLES..][..FRAME_SAMPLES];
                let t = gate.process(frame, next_frame as u64 * FRAME_MS);
                next_frame += 1;
                // As the session driver: the turn's audio, then the transition.
                audio.push(frame);
                if let Some(t) = t {
                    if matches!(t, VadTransition::SpeechStart { .. }) {
                        audio.speech_started();
                    }
                    if matches!(
                        t,
                        VadTransition::SpeechStart { .. } | VadTransition::Resume { .. }
                    ) {
                        latest = None;
                    }
                    events.push(Event::Vad(t));
                }
            } else {
                events.push(Event::Tick);
            }
            for event in events {
                if self.trace && !matches!(event, Event::Tick) {
                    println!("  {now:>6} ms  {event:?}");
                }
                orch.handle(now, event, &mut actions);
            }
            for action in actions.drain(..) {
                match action {
                    Action::AskTurn { seq, mut event } => {
                        let mut took_ms = 0.0;
                        if let Some(model) = self.model {
                            if matches!(event.trigger, TurnTrigger::Pause | TurnTrigger::SpeechEnd)
                            {
                                let clip = audio.clip();
                                let started = Instant::now();
                                let p = self.runtime.block_on(model.predict(clip)).ok();
                                took_ms = started.elapsed().as_secs_f64() * 1000.0;
                                if let Some(p) = p {
                                    latest = Some(p);
                                    outcome.model_runs.push((now, p, took_ms));
                                }
                            }
                            event.model_probability = latest;
                        }
                        let policy = self.policy.as_mut().expect("asked only with a policy");
                        let decision = policy.decide(&event);
                        if self.trace {
                            println!(
                                "  {now:>6} ms  ask {:?} silence {} ms, {:?}, p {:?} -> {decision:?}",
                                event.trigger, event.silence_ms, event.text, event.model_probability
                            );
                        }
                        due.push((
                            now + took_ms.ceil() as u64,
                            order,
                            Due::Decided(Event::TurnDecided { seq, decision }),
                        ));
                        order += 1;
                    }
                    Action::EndSpeech => {
                        let _ = gate.end_now();
                    }
                    Action::FinalizeStt => {
                        due.push((
                            now + self.stt_ms,
                            order,
                            Due::Stt(final_words(String::new(), true)),
                        ));
                        order += 1;
                    }
                    Action::PlanReply { user_text, .. } => {
                        outcome.committed = Some((now, user_text));
                    }
                    _ => {}
                }
            }
            if outcome.committed.is_some() {
                break;
            }
        }
        outcome
    }
}

fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[derive(Default)]
struct Tally {
    incomplete: u32,
    cut: u32,
    delays: Vec<f64>,
    /// Complete utterances whose turn was never committed early (for the record).
    complete: u32,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.incomplete += other.incomplete;
        self.cut += other.cut;
        self.complete += other.complete;
        self.delays.extend_from_slice(&other.delays);
    }

    fn cut_cell(&self) -> String {
        if self.incomplete == 0 {
            return "-".into();
        }
        format!(
            "{:.1} % ({}/{})",
            100.0 * f64::from(self.cut) / f64::from(self.incomplete),
            self.cut,
            self.incomplete
        )
    }

    fn delay_cell(&self) -> String {
        let mut d = self.delays.clone();
        d.sort_by(f64::total_cmp);
        match (percentile(&d, 0.5), percentile(&d, 0.95)) {
            (Some(p50), Some(p95)) => format!("{p50:.0} / {p95:.0}"),
            _ => "-".into(),
        }
    }
}

#[derive(Default)]
struct ModelTally {
    /// Probabilities at the first pause after the end of a complete utterance.
    at_end: Vec<f32>,
    /// Probabilities at the first model run in each inner pause of an incomplete one.
    inside: Vec<f32>,
    runs_ms: Vec<f64>,
    runs: u32,
    turns: u32,
}

fn share_above(ps: &[f32], threshold: f32) -> String {
    if ps.is_empty() {
        return "-".into();
    }
    let n = ps.iter().filter(|&&p| p > threshold).count();
    format!("{:.0} %", 100.0 * n as f64 / ps.len() as f64)
}

fn main() {
    let o = options();
    let mut items = load_set(&o.set);
    if let Some(wanted) = &o.trace {
        items.retain(|i| i.segments.join(" ").contains(wanted.as_str()));
    }
    let espeak = Espeak::get().unwrap_or_else(|e| panic!("espeak-ng: {e}"));
    let model = TurnModel::load(&o.models).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.plugin.is_file(),
        "{} is missing: scripts/build-plugins.sh turn-smart",
        o.plugin.display()
    );
    let registry = PluginRegistry::start(
        PluginSettings {
            turn: SlotSettings::component(&o.plugin, o.config.clone()),
            watch: false,
            ..PluginSettings::default()
        },
        BuiltinBehaviours::default(),
    )
    .unwrap_or_else(|e| panic!("the policy {}: {e}", o.plugin.display()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let n_complete = items.iter().filter(|i| i.cue.is_none()).count();
    println!(
        "{} utterances ({} complete, {} incomplete), sources: voices {} x rates {}; recogniser \
         latency {} ms{}; policy {} {:?}",
        items.len(),
        n_complete,
        items.len() - n_complete,
        o.voices.join(","),
        o.rates
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        o.stt_ms,
        if o.strip_punctuation {
            ", no punctuation"
        } else {
            ""
        },
        o.plugin.display(),
        o.config
    );

    // tallies[source][strategy]
    let mut tallies: Vec<(String, BTreeMap<Strategy, Tally>, ModelTally)> = Vec::new();
    let mut by_cue: BTreeMap<(String, Strategy), Tally> = BTreeMap::new();
    let started = Instant::now();
    for voice in &o.voices {
        for &wpm in &o.rates {
            let source = format!("{voice} {wpm} wpm");
            let mut per: BTreeMap<Strategy, Tally> = BTreeMap::new();
            let mut mt = ModelTally::default();
            for item in &items {
                let clip = clip_of(espeak, item, voice, wpm);
                let voice_end = clip.spans.last().unwrap().1;
                let full = words_of(&item.segments.join(" "));
                for strategy in Strategy::ALL {
                    let mut behaviours = registry.for_session("report");
                    let mut sim = Sim {
                        model: (strategy == Strategy::ModelPolicy).then_some(&model),
                        policy: (strategy != Strategy::Silence)
                            .then_some(behaviours.turn.as_mut() as &mut dyn TurnPolicy),
                        runtime: &runtime,
                        stt_ms: o.stt_ms,
                        strip_punctuation: o.strip_punctuation,
                        trace: o.trace.is_some(),
                    };
                    if o.trace.is_some() {
                        println!("{source} {}: voice {:?}", strategy.name(), clip.spans);
                    }
                    let out = sim.run(item, &clip);
                    let t = per.entry(strategy).or_default();
                    let (at, text) = out.committed.clone().unwrap_or_else(|| {
                        panic!("{source} {strategy:?}: {:?} never committed", item.segments)
                    });
                    let cut = words_of(&text) != full;
                    let mut line = format!("{source:<16} {:<24} ", strategy.name());
                    match &item.cue {
                        None => {
                            t.complete += 1;
                            let delay = at as f64 - voice_end as f64;
                            t.delays.push(delay);
                            line += &format!("complete   delay {delay:>5.0} ms");
                        }
                        Some(cue) => {
                            t.incomplete += 1;
                            t.cut += u32::from(cut);
                            let c = by_cue.entry((cue.clone(), strategy)).or_default();
                            c.incomplete += 1;
                            c.cut += u32::from(cut);
                            line += &format!(
                                "{:<10} {}",
                                cue,
                                if cut { "CUT OFF   " } else { "held      " }
                            );
                        }
                    }
                    if strategy == Strategy::ModelPolicy {
                        mt.turns += 1;
                        mt.runs += out.model_runs.len() as u32;
                        mt.runs_ms.extend(out.model_runs.iter().map(|r| r.2));
                        match &item.cue {
                            None => {
                                if let Some(r) = out.model_runs.iter().find(|r| r.0 >= voice_end) {
                                    mt.at_end.push(r.1);
                                }
                            }
                            Some(_) => {
                                for (i, &(_, end)) in
                                    clip.spans[..clip.spans.len() - 1].iter().enumerate()
                                {
                                    let next = clip.spans[i + 1].0;
                                    if let Some(r) =
                                        out.model_runs.iter().find(|r| r.0 >= end && r.0 < next)
                                    {
                                        mt.inside.push(r.1);
                                    }
                                }
                            }
                        }
                        line += &format!(
                            "  p = [{}]",
                            out.model_runs
                                .iter()
                                .map(|r| format!("{:.2}", r.1))
                                .collect::<Vec<_>>()
                                .join(" ")
                        );
                    }
                    if o.verbose {
                        println!("{line}  {:?} -> {:?}", item.segments, text);
                    }
                }
            }
            tallies.push((source, per, mt));
        }
    }

    println!(
        "\n({} runs in {:.0} s)\n",
        tallies.len() * items.len() * Strategy::ALL.len(),
        started.elapsed().as_secs_f64()
    );
    let mut header = String::from("| Source |");
    let mut rule = String::from("|---|");
    for s in Strategy::ALL {
        header += &format!(
            " {}: false cut-offs | {}: delay p50 / p95 ms |",
            s.name(),
            s.name()
        );
        rule += "---|---|";
    }
    header += " model p > 0.5 at the end of complete utterances | model p > 0.5 at inner pauses |";
    rule += "---|---|";
    println!("{header}\n{rule}");
    let mut overall: BTreeMap<Strategy, Tally> = BTreeMap::new();
    let mut all_model = ModelTally::default();
    for (source, per, mt) in &tallies {
        let mut row = format!("| {source} |");
        for s in Strategy::ALL {
            let t = &per[&s];
            row += &format!(" {} | {} |", t.cut_cell(), t.delay_cell());
            overall.entry(s).or_default().add(t);
        }
        row += &format!(
            " {} | {} |",
            share_above(&mt.at_end, 0.5),
            share_above(&mt.inside, 0.5)
        );
        println!("{row}");
        all_model.at_end.extend_from_slice(&mt.at_end);
        all_model.inside.extend_from_slice(&mt.inside);
        all_model.runs_ms.extend_from_slice(&mt.runs_ms);
        all_model.runs += mt.runs;
        all_model.turns += mt.turns;
    }
    let mut row = String::from("| **overall** |");
    for s in Strategy::ALL {
        let t = &overall[&s];
        row += &format!(" **{}** | **{}** |", t.cut_cell(), t.delay_cell());
    }
    row += &format!(
        " {} | {} |",
        share_above(&all_model.at_end, 0.5),
        share_above(&all_model.inside, 0.5)
    );
    println!("{row}");

    println!("\nFalse cut-offs by what could tell the utterance was unfinished:\n");
    let mut header = String::from("| Cue |");
    let mut rule = String::from("|---|");
    for s in Strategy::ALL {
        header += &format!(" {} |", s.name());
        rule += "---|";
    }
    println!("{header}\n{rule}");
    let cues: Vec<String> = {
        let mut c: Vec<String> = by_cue.keys().map(|k| k.0.clone()).collect();
        c.dedup();
        c
    };
    for cue in cues {
        let mut row = format!("| {cue} |");
        for s in Strategy::ALL {
            row += &format!(" {} |", by_cue[&(cue.clone(), s)].cut_cell());
        }
        println!("{row}");
    }

    let mut ms = all_model.runs_ms.clone();
    ms.sort_by(f64::total_cmp);
    println!(
        "\nModel: {} runs over {} turns ({:.2} per turn: each pause and end of speech), wall \
         time per run p50 {:.1} ms, p95 {:.1} ms (the answer reaches the orchestrator that \
         much later).",
        all_model.runs,
        all_model.turns,
        f64::from(all_model.runs) / f64::from(all_model.turns.max(1)),
        percentile(&ms, 0.5).unwrap_or(0.0),
        percentile(&ms, 0.95).unwrap_or(0.0),
    );
}
