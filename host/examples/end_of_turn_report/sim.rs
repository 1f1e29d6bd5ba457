//! What the two speech sources share: the utterance as the simulation takes it, the simulation
//! of a session's turn (VoiceGate, orchestrator, TurnAudio + TurnModel, the plug-in) on a
//! simulated clock with a perfect recogniser, and the tallies of the report.

use std::path::Path;
use std::time::Instant;
use voice_host::audio::{VadEngine, VadTransition, VoiceGate, FRAME_SAMPLES};
use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::behaviour::{
    BehaviourSource, ChatMessage, PromptOutput, Role, TurnPolicy, TurnTrigger,
};
use voice_host::config::Config;
use voice_host::plugins::{PluginRegistry, PluginSettings, SlotSettings};
use voice_host::providers::SttEvent;
use voice_host::session::events::{Action, Event};
use voice_host::session::orchestrator::{Orchestrator, OrchestratorConfig};
use voice_host::session::turn_audio::TurnAudio;
use voice_host::turn::words::worth_reading_ahead;
use voice_host::turn::{TurnModel, WordsModel, WordsSession};

use crate::recogniser::Recogniser;

pub const RATE: usize = 16_000;
pub const FRAME_MS: u64 = 20;

/// A deterministic white-noise generator (xorshift32): the same noise on every run.
pub struct WhiteNoise(u32);

impl Default for WhiteNoise {
    fn default() -> Self {
        Self(0x9e37_79b9)
    }
}

impl WhiteNoise {
    /// The next sample, uniform in -peak..peak (its RMS is peak / sqrt 3).
    pub fn sample(&mut self, peak: i32) -> i16 {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 17;
        *x ^= *x << 5;
        (((*x >> 16) as i32 - 32_768) * peak / 32_768) as i16
    }

    /// The peak that gives white noise of `rms_dbfs` dB RMS relative to full scale.
    pub fn peak_for(rms_dbfs: f64) -> i32 {
        (10f64.powf(rms_dbfs / 20.0) * 32_768.0 * 3f64.sqrt()).round() as i32
    }
}

/// One labelled utterance.
pub struct Item {
    pub segments: Vec<String>,
    pub pauses_ms: Vec<u32>,
    pub agent: Option<String>,
    /// `None` for a complete utterance.
    pub cue: Option<String>,
}

/// An utterance spoken by one source: 16 kHz audio and where each segment's voice lies.
pub struct Clip {
    pub audio: Vec<i16>,
    /// (start, end) of each segment's voice, in ms of the clip.
    pub spans: Vec<(u64, u64)>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Strategy {
    Silence,
    TextPolicy,
    ModelPolicy,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [
        Strategy::Silence,
        Strategy::TextPolicy,
        Strategy::ModelPolicy,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Silence => "silence rules",
            Strategy::TextPolicy => "turn-smart, words only",
            Strategy::ModelPolicy => "Smart Turn + turn-smart",
        }
    }
}

/// What happened to one utterance under one strategy.
pub struct Outcome {
    /// When the turn was committed (ms of the clip), with its words.
    pub committed: Option<(u64, String)>,
    /// With `--reply-ms`: when the agent's first audio went out, and the words of every turn
    /// committed by then (no reply was heard between them, so the model reads them as one
    /// user message).
    pub answered: Option<(u64, String)>,
    /// (time, probability, ms of wall time) of each model run.
    pub model_runs: Vec<(u64, f32, f64)>,
}

impl Outcome {
    /// The words the agent answers: what the turn committed, or with `--reply-ms` everything
    /// the user had said when the agent began to speak (a cut-off only if the agent spoke
    /// before the utterance was over).
    pub fn said(&self) -> Option<&str> {
        self.answered
            .as_ref()
            .or(self.committed.as_ref())
            .map(|(_, words)| words.as_str())
    }
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
    /// The recogniser's interim of a segment for the words spoken by a time.
    Interim {
        segment: usize,
        spoken_by: u64,
    },
    /// The recogniser's final of a segment, at the end of its voice.
    SegmentFinal(usize),
    /// Any other event: a policy's answer, the reply's plan and audio.
    Event(Event),
}

/// The VAD as a session builds it: the engine `VAD_ENGINE` names, loaded as the server loads it
/// (`server::vad_engine`), and the gate's settings from the configuration
/// (`Config::vad_config`: with the defaults, pauses at 200 ms when a policy asks, hangover 600 ms).
pub struct Vad {
    pub config: Config,
    engine: VadEngine,
}

impl Vad {
    /// Loads the engine `config` names (Silero: from its models directory).
    pub fn load(config: Config) -> Self {
        let engine = voice_host::server::vad_engine(&config).unwrap_or_else(|e| panic!("{e}"));
        Self { config, engine }
    }

    /// `webrtc` or `silero`.
    pub fn name(&self) -> &'static str {
        self.engine.name()
    }

    /// A session's gate, reporting pauses inside speech when a policy judges them.
    pub fn gate(&self, turn_policy: bool) -> VoiceGate {
        VoiceGate::with_engine(self.config.vad_config(turn_policy), &self.engine).expect("VAD")
    }
}

struct Sim<'a> {
    vad: &'a Vad,
    model: Option<&'a TurnModel>,
    /// The text end-of-turn model, read as a session reads it (`--text-hold`).
    words: Option<WordsSession>,
    policy: Option<&'a mut dyn TurnPolicy>,
    runtime: &'a tokio::runtime::Runtime,
    stt_ms: u64,
    strip_punctuation: bool,
    trace: bool,
    reply_ms: Option<u64>,
}

/// The reply the simulation gives a committed turn with `--reply-ms`: a fixed text, as a prompt
/// plug-in's direct answer, whose audio arrives `reply_ms` after the commit.
const REPLY_TEXT: &str = "Okay.";
/// Bytes of the reply's audio (1 s of the default output, PCM16 at 16 kHz).
const REPLY_BYTES: usize = 32_000;

impl Sim<'_> {
    pub fn run(&mut self, item: &Item, clip: &Clip) -> Outcome {
        let policy_on = self.policy.is_some();
        let mut gate = self.vad.gate(policy_on);
        let cfg = OrchestratorConfig {
            turn_policy: policy_on,
            vad_hangover_ms: u64::from(self.vad.config.vad_hangover_ms),
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
            answered: None,
            model_runs: Vec::new(),
        };
        let mut said_so_far = String::new();
        // The words the text model last read ahead.
        let mut read: Option<(String, String)> = None;
        // Things due later, in order of time then of scheduling.
        let mut due: Vec<(u64, u64, Due)> = Vec::new();
        let mut order = 0u64;
        let mut recogniser = Recogniser::new(
            item.segments
                .iter()
                .map(|segment| heard(segment, self.strip_punctuation))
                .zip(clip.spans.iter().copied()),
        );
        for (at, segment, interim) in recogniser.schedule() {
            let report = match interim {
                Some(spoken_by) => Due::Interim { segment, spoken_by },
                None => Due::SegmentFinal(segment),
            };
            due.push((at + self.stt_ms, order, report));
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
                    Due::Interim { segment, spoken_by } => {
                        events.extend(recogniser.interim(segment, spoken_by).map(Event::Stt))
                    }
                    Due::SegmentFinal(segment) => {
                        events.extend(recogniser.segment_final(segment).map(Event::Stt))
                    }
                    Due::Event(e) => events.push(e),
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
                let transcript = matches!(event, Event::Stt(_));
                if self.trace {
                    match &event {
                        Event::Tick => {}
                        Event::TtsAudio { turn, bytes, .. } => {
                            println!(
                                "  {now:>6} ms  TtsAudio {{ turn: {turn}, {} bytes }}",
                                bytes.len()
                            );
                        }
                        event => println!("  {now:>6} ms  {event:?}"),
                    }
                }
                orch.handle(now, event, &mut actions);
                // The text model reads the words as they come in, as the session driver has it
                // do while the user speaks (its time not counted: it is spent before the pause),
                // so that at a pause only what is new is left to read.
                if let Some(words) = self.words.as_ref().filter(|_| transcript) {
                    let now_said = orch.turn_words();
                    if let Some((agent, said)) = now_said
                        .as_ref()
                        .filter(|w| worth_reading_ahead(read.as_ref(), w))
                    {
                        let _ = self.runtime.block_on(words.probability(agent, said));
                        read = now_said;
                    }
                }
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
                        if let Some(words) = &self.words {
                            // Read beside the audio model, as the session driver does: the
                            // answer waits for the slower of the two.
                            let started = Instant::now();
                            event.words_probability = self
                                .runtime
                                .block_on(
                                    words.probability(&event.agent_last_sentence, &event.text),
                                )
                                .ok();
                            took_ms = took_ms.max(started.elapsed().as_secs_f64() * 1000.0);
                        }
                        let policy = self.policy.as_mut().expect("asked only with a policy");
                        let decision = policy.decide(&event);
                        if self.trace {
                            println!(
                                "  {now:>6} ms  ask {:?} silence {} ms, {:?}, p {:?}, words {:?} -> {decision:?}",
                                event.trigger,
                                event.silence_ms,
                                event.text,
                                event.model_probability,
                                event.words_probability
                            );
                        }
                        due.push((
                            now + took_ms.ceil() as u64,
                            order,
                            Due::Event(Event::TurnDecided { seq, decision }),
                        ));
                        order += 1;
                    }
                    Action::EndSpeech => {
                        let _ = gate.end_now();
                    }
                    Action::FinalizeStt => {
                        due.push((now + self.stt_ms, order, Due::Stt(recogniser.finalize(now))));
                        order += 1;
                    }
                    Action::TurnCommitted { .. } => {
                        // As the session driver: the turn's audio starts afresh, and the model's
                        // judgement of the committed turn does not judge what comes next.
                        audio.turn_ended();
                        latest = None;
                    }
                    Action::PlanReply {
                        turn,
                        plan,
                        user_text,
                        ..
                    } => {
                        said_so_far = format!("{said_so_far} {user_text}").trim().to_string();
                        outcome.committed.get_or_insert((now, user_text));
                        if let Some(reply_ms) = self.reply_ms {
                            let planned = Event::ReplyPlanned {
                                turn,
                                plan,
                                output: PromptOutput::Direct {
                                    text: REPLY_TEXT.into(),
                                },
                                plugins_ms: 0.0,
                            };
                            let audio = Event::TtsAudio {
                                turn,
                                bytes: vec![0; REPLY_BYTES],
                                alignment: None,
                            };
                            let at = now + reply_ms;
                            for (at, e) in
                                [(now, planned), (at, audio), (at, Event::TtsDone { turn })]
                            {
                                due.push((at, order, Due::Event(e)));
                                order += 1;
                            }
                        }
                    }
                    Action::SendAudio(_) if outcome.answered.is_none() => {
                        outcome.answered = Some((now, said_so_far.clone()));
                    }
                    _ => {}
                }
            }
            let over = match self.reply_ms {
                Some(_) => outcome.answered.is_some(),
                None => outcome.committed.is_some(),
            };
            if over {
                break;
            }
        }
        outcome
    }
}

pub fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[derive(Default)]
pub struct Tally {
    pub incomplete: u32,
    pub cut: u32,
    pub delays: Vec<f64>,
    /// Complete utterances whose turn was never committed early (for the record).
    pub complete: u32,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.incomplete += other.incomplete;
        self.cut += other.cut;
        self.complete += other.complete;
        self.delays.extend_from_slice(&other.delays);
    }

    pub fn cut_cell(&self) -> String {
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

    pub fn delay_cell(&self) -> String {
        let mut d = self.delays.clone();
        d.sort_by(f64::total_cmp);
        match (percentile(&d, 0.5), percentile(&d, 0.95)) {
            (Some(p50), Some(p95)) => format!("{p50:.0} / {p95:.0}"),
            _ => "-".into(),
        }
    }
}

#[derive(Default)]
pub struct ModelTally {
    /// Probabilities at the first pause after the end of a complete utterance.
    pub at_end: Vec<f32>,
    /// Probabilities at the first model run in each inner pause of an incomplete one.
    pub inside: Vec<f32>,
    pub runs_ms: Vec<f64>,
    pub runs: u32,
    pub turns: u32,
}

pub fn share_above(ps: &[f32], threshold: f32) -> String {
    if ps.is_empty() {
        return "-".into();
    }
    let n = ps.iter().filter(|&&p| p > threshold).count();
    format!("{:.0} %", 100.0 * n as f64 / ps.len() as f64)
}

/// The VAD, the model, the plug-in runtime and the async runtime the simulation runs with.
pub struct Harness {
    pub vad: Vad,
    pub model: TurnModel,
    /// With `--text-hold`: the text end-of-turn model beside Smart Turn.
    pub words: Option<WordsModel>,
    registry: std::sync::Arc<PluginRegistry>,
    runtime: tokio::runtime::Runtime,
}

/// How the simulated recogniser behaves, and what is printed.
#[derive(Clone, Copy)]
pub struct SimOptions {
    pub stt_ms: u64,
    pub strip_punctuation: bool,
    pub trace: bool,
    /// Give each committed turn a reply whose audio comes this long after the commit, and
    /// count as cut off what the agent begins to answer before the utterance is over.
    pub reply_ms: Option<u64>,
}

impl Harness {
    /// Loads the end-of-turn model from `models` and starts the policy `plugin` with `config`;
    /// turns run through `vad`.
    pub fn start(vad: Vad, models: &Path, plugin: &Path, config: &[(String, String)]) -> Self {
        let model = TurnModel::load(models).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plugin.is_file(),
            "{} is missing: scripts/build-plugins.sh turn-smart",
            plugin.display()
        );
        let registry = PluginRegistry::start(
            PluginSettings {
                turn: SlotSettings::component(plugin, config.to_vec()),
                watch: false,
                ..PluginSettings::default()
            },
            BuiltinBehaviours::default(),
        )
        .unwrap_or_else(|e| panic!("the policy {}: {e}", plugin.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            vad,
            model,
            words: None,
            registry,
            runtime,
        }
    }

    /// One utterance through a session's turn under `strategy`, with a fresh policy instance.
    pub fn run(&self, strategy: Strategy, item: &Item, clip: &Clip, o: SimOptions) -> Outcome {
        let mut behaviours = self.registry.for_session("report");
        let mut sim = Sim {
            vad: &self.vad,
            model: (strategy == Strategy::ModelPolicy).then_some(&self.model),
            words: self
                .words
                .as_ref()
                .filter(|_| strategy == Strategy::ModelPolicy)
                .map(WordsModel::session),
            policy: (strategy != Strategy::Silence)
                .then_some(behaviours.turn.as_mut() as &mut dyn TurnPolicy),
            runtime: &self.runtime,
            stt_ms: o.stt_ms,
            strip_punctuation: o.strip_punctuation,
            trace: o.trace,
            reply_ms: o.reply_ms,
        };
        sim.run(item, clip)
    }

    /// The model's probability on `audio` (16 kHz, as `TurnAudio::clip` gives it), if it answers.
    pub fn predict(&self, audio: Vec<f32>) -> Option<f32> {
        self.runtime.block_on(self.model.predict(audio)).ok()
    }
}

/// ROC AUC: the chance that a complete pause scores above an incomplete one (ties count half).
pub fn auc(positive: &[f32], negative: &[f32]) -> Option<f64> {
    if positive.is_empty() || negative.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for &p in positive {
        for &n in negative {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (positive.len() * negative.len()) as f64)
}

/// The model's probabilities of one run, for verbose output: `  p = [0.12 0.87]`.
pub fn probabilities(runs: &[(u64, f32, f64)]) -> String {
    let ps: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.1)).collect();
    format!("  p = [{}]", ps.join(" "))
}

/// The header and rule lines of a results table: `first` column, then a cut-off and a delay
/// column (`delay` names it) per strategy.
pub fn table_head(first: &str, delay: &str) -> (String, String) {
    let mut header = format!("| {first} |");
    let mut rule = String::from("|---|");
    for s in Strategy::ALL {
        header += &format!(" {}: false cut-offs | {}: {delay} |", s.name(), s.name());
        rule += "---|---|";
    }
    (header, rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_replies_the_words_answered_are_all_those_said_before_the_agent_spoke() {
        let o = Outcome {
            committed: Some((100, "book a flight".into())),
            answered: Some((900, "book a flight to London".into())),
            model_runs: Vec::new(),
        };
        assert_eq!(o.said(), Some("book a flight to London"));
        let o = Outcome {
            answered: None,
            ..o
        };
        assert_eq!(o.said(), Some("book a flight"));
    }

    #[test]
    fn white_noise_has_the_level_asked_for() {
        for db in [-60.0, -40.0, -25.0] {
            let (mut noise, peak) = (WhiteNoise::default(), WhiteNoise::peak_for(db));
            let n = 160_000;
            let power: f64 = (0..n)
                .map(|_| (f64::from(noise.sample(peak)) / 32_768.0).powi(2))
                .sum::<f64>()
                / n as f64;
            let level = 10.0 * power.log10();
            assert!((level - db).abs() < 0.3, "{db} dBFS asked, {level:.2} made");
        }
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.9, 0.8], &[0.1, 0.2]), Some(1.0));
        assert_eq!(auc(&[0.5], &[0.5]), Some(0.5));
        assert_eq!(auc(&[], &[0.5]), None);
    }
}
