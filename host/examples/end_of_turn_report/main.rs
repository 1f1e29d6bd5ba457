//! The end-of-turn report: false cut-offs and end-of-turn delay on a labelled set of utterances
//! (`host/tests/fixtures/turn-set/utterances.toml`), per speech source and overall, for
//! - the silence rules alone (no end-of-turn policy: the turn ends at the VAD's end of speech);
//! - the reference policy `turn-smart` without a model (the words alone);
//! - the reference policy with Smart Turn v3.2 (the host's configuration with `TURN_PLUGIN`).
//!
//! Each utterance is spoken by espeak-ng (each voice and rate is a source), segment by segment
//! with the labelled silences between them, resampled to 16 kHz (or, with `--neural`, by a
//! neural voice, see neural.rs), and played on a simulated clock
//! through what a session runs: the real `VoiceGate` (webrtc-vad, or Silero VAD with `--vad
//! silero`, built as a session builds it; pauses at 200 ms, hangover 600 ms), the real orchestrator (`session::orchestrator`, which owns the rules of what an
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
//!   --reply-ms N                    each committed turn gets a reply whose audio comes N ms
//!                                   after the commit; a cut-off is then what the user hears:
//!                                   the agent beginning to answer before the utterance is over
//!                                   (a reply nobody heard yet waits for a user who goes on)
//!   --continuing                    a segment before an inner pause is spoken as a clause that
//!                                   goes on (espeak-ng's comma intonation), not a sentence's end
//!   --neural                        Piper's neural voice instead of espeak-ng, each utterance
//!                                   spoken as one sentence and cut where the labels pause
//!   --neural-segments               the same voice, each segment spoken alone
//!   --speech DIR                    its rendering (MODELS_DIR/neural-speech)
//!   --text-hold T                   the text end-of-turn model beside Smart Turn (the host's
//!                                   `TURN_WORDS_MODEL`), read as a session reads it, and the
//!                                   policy's `text_hold` = T: an end of turn whose words end a
//!                                   sentence with a probability under T waits to 1 s of silence
//!   --plugin PATH                   the policy (plugins/dist/turn_smart.wasm)
//!   --config key=value,...          the policy's configuration
//!   --set PATH                      the labelled set
//!   --vad webrtc|silero             the VAD engine (`VAD_ENGINE`; default webrtc)
//!   --verbose                       one line per utterance and strategy
//!   --trace TEXT                    only utterances containing TEXT, every event printed
//!   --human                         human speech instead of espeak-ng (see human.rs):
//!     --labels PATH                 its labelled pauses (tests/fixtures/turn-set/human.toml)
//!     --recordings DIR              the recordings (MODELS_DIR/human-speech)
//!     --draft                       print a draft labels file (VAD pauses, Whisper's words)
//!     --labelled-stops              no stop at the end of a segment before an incomplete pause

mod human;
mod neural;
mod recogniser;
mod sim;
mod vad_alone;

use serde::Deserialize;
use sim::{
    auc, percentile, probabilities, share_above, table_head, words_of, Clip, Harness, Item,
    ModelTally, SimOptions, Strategy, Tally, Vad, WhiteNoise, RATE,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use voice_host::audio::{Resampler, FRAME_SAMPLES};
use voice_host::config::{source::RawSettings, Config};
use voice_host::providers::local::bench::Espeak;
use voice_host::turn::WordsModel;

/// Silence before the speech (the pre-roll the model is given comes from it).
const LEAD_MS: usize = 1000;
/// Silence after it: longer than any hold (5 s after the last voice) and the silence timeout.
pub const TAIL_MS: usize = 8000;

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

struct Options {
    voices: Vec<String>,
    rates: Vec<u32>,
    stt_ms: u64,
    /// Give committed turns a reply this long after the commit; count heard cut-offs.
    reply_ms: Option<u64>,
    strip_punctuation: bool,
    /// A white-noise floor under the whole clip, dB RMS relative to full scale (a room and a
    /// microphone: a real recording never has digital silence).
    noise_dbfs: Option<f64>,
    /// Segments before an inner pause spoken with a going-on intonation.
    continuing: bool,
    /// Hold the model + policy's end of turn when the words' end is less likely than this.
    text_hold: Option<f64>,
    /// The neural voice's rendering instead of espeak-ng.
    neural: Option<neural::Mode>,
    /// Where it is (`neural-speech/` of the models directory).
    speech: Option<PathBuf>,
    plugin: PathBuf,
    config: Vec<(String, String)>,
    set: PathBuf,
    models: PathBuf,
    verbose: bool,
    /// Only utterances whose text contains this, with every event traced.
    trace: Option<String>,
    /// The human-speech source instead of espeak-ng.
    human: Option<human::HumanOptions>,
    /// The session configuration the VAD is built from: the defaults with `--vad` as
    /// `VAD_ENGINE` and the models directory.
    session: Config,
}

/// The options from the command line (without the program's name); an error is one line.
fn options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut o = Options {
        voices: vec!["en-us".into(), "en-gb".into(), "en-us+f3".into()],
        rates: vec![140, 175, 210],
        stt_ms: 0,
        reply_ms: None,
        strip_punctuation: false,
        noise_dbfs: None,
        continuing: false,
        neural: None,
        speech: None,
        text_hold: None,
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
        human: None,
        session: Config::from_raw(&RawSettings::default()).expect("the default configuration"),
    };
    let mut vad = String::from("webrtc");
    let (mut human, mut draft, mut labelled_stops) = (false, false, false);
    let (mut labels, mut recordings): (Option<PathBuf>, Option<PathBuf>) = (None, None);
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
            "--reply-ms" => {
                o.reply_ms = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--reply-ms N: the reply's first audio, ms after the commit")?,
                )
            }
            "--strip-punctuation" => o.strip_punctuation = true,
            "--noise-dbfs" => {
                o.noise_dbfs = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|db: &f64| (-90.0..=-10.0).contains(db))
                        .ok_or("--noise-dbfs N: the noise floor in dB RMS, -90 to -10")?,
                )
            }
            "--continuing" => o.continuing = true,
            "--neural" => o.neural = Some(neural::Mode::Sentence),
            "--neural-segments" => o.neural = Some(neural::Mode::Segments),
            "--text-hold" => {
                o.text_hold = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|t: &f64| (0.0..=1.0).contains(t))
                        .ok_or("--text-hold T: a probability, 0 to 1")?,
                )
            }
            "--speech" => o.speech = Some(args.next().ok_or("--speech DIR")?.into()),
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
            "--human" => human = true,
            "--labels" => labels = Some(args.next().expect("--labels PATH").into()),
            "--recordings" => recordings = Some(args.next().expect("--recordings DIR").into()),
            "--draft" => draft = true,
            "--labelled-stops" => labelled_stops = true,
            "--vad" => vad = args.next().ok_or("--vad webrtc|silero")?,
            other => {
                return Err(format!(
                    "unknown option {other} (see host/examples/end_of_turn_report/main.rs)"
                ))
            }
        }
    }
    // As the host reads VAD_ENGINE (the same names, the same error).
    let mut raw = RawSettings::default();
    raw.values.insert("VAD_ENGINE".into(), vad.clone());
    raw.values
        .insert("MODELS_DIR".into(), o.models.display().to_string());
    o.session = Config::from_raw(&raw).map_err(|e| format!("--vad {vad}: {}", e.problem))?;
    if human && o.noise_dbfs.is_some() {
        return Err(
            "--noise-dbfs is for the espeak-ng set (the recordings have their own noise)".into(),
        );
    }
    if o.neural.is_some() && (human || o.continuing) {
        return Err(format!(
            "--neural and --neural-segments speak the set with a voice of their own, not with {}",
            if human { "--human" } else { "--continuing" }
        ));
    }
    if human {
        o.human = Some(human::HumanOptions {
            labels: labels.unwrap_or_else(|| root.join("tests/fixtures/turn-set/human.toml")),
            recordings: recordings.unwrap_or_else(|| o.models.join("human-speech")),
            draft,
            labelled_stops,
        });
    }
    Ok(o)
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
    trimmed(audio)
}

/// `audio` without its leading and trailing silence.
pub fn trimmed(audio: Vec<i16>) -> Vec<i16> {
    let loud = |s: &i16| s.unsigned_abs() > 200;
    let first = audio.iter().position(loud).unwrap_or(0);
    let last = audio.iter().rposition(loud).map_or(audio.len(), |i| i + 1);
    audio[first..last].to_vec()
}

/// Who speaks the utterances: an espeak-ng voice at a rate, or a neural voice's rendering.
enum Source<'a> {
    Espeak {
        espeak: &'a Espeak,
        voice: String,
        wpm: u32,
        /// Segments before an inner pause spoken with a going-on intonation.
        continuing: bool,
    },
    Neural(neural::NeuralSource),
}

impl Source<'_> {
    fn name(&self) -> String {
        match self {
            Source::Espeak { voice, wpm, .. } => format!("{voice} {wpm} wpm"),
            Source::Neural(n) => n.name.clone(),
        }
    }

    /// The voice of each of the item's segments, at 16 kHz, without silence around it.
    fn voice_of(&self, item: &Item) -> Vec<Vec<i16>> {
        match self {
            Source::Espeak {
                espeak,
                voice,
                wpm,
                continuing,
            } => {
                let last = item.segments.len() - 1;
                let spoken = |(i, segment): (usize, &String)| {
                    // espeak-ng gives text without punctuation a sentence's final fall; with
                    // `continuing`, a segment the speaker goes on from is spoken as a clause
                    // that goes on (a comma's rise) and the recogniser still hears the
                    // labelled words.
                    if *continuing
                        && i < last
                        && !segment.trim_end().ends_with(['.', '?', '!', ','])
                    {
                        format!("{segment},")
                    } else {
                        segment.clone()
                    }
                };
                item.segments
                    .iter()
                    .enumerate()
                    .map(|s| speak(espeak, &spoken(s), voice, *wpm))
                    .collect()
            }
            Source::Neural(n) => n
                .voice_of(&item.segments)
                .unwrap_or_else(|e| {
                    eprintln!("end_of_turn_report: {e}");
                    std::process::exit(1)
                })
                .to_vec(),
        }
    }
}

/// The item's clip: 1 s of silence, each segment's voice with the labelled pause after it, the
/// tail, and the noise floor under all of it.
fn clip_of(voices: Vec<Vec<i16>>, item: &Item, noise_dbfs: Option<f64>) -> Clip {
    let ms = |samples: usize| (samples * 1000 / RATE) as u64;
    let mut audio = vec![0i16; LEAD_MS * RATE / 1000];
    let mut spans = Vec::new();
    for (i, voice) in voices.into_iter().enumerate() {
        let start = audio.len();
        audio.extend(voice);
        spans.push((ms(start), ms(audio.len())));
        let pause = item.pauses_ms.get(i).map_or(TAIL_MS, |&p| p as usize);
        audio.extend(std::iter::repeat_n(0, pause * RATE / 1000));
    }
    let whole = audio.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
    audio.resize(whole, 0);
    if let Some(db) = noise_dbfs {
        let (mut noise, peak) = (WhiteNoise::default(), WhiteNoise::peak_for(db));
        for s in &mut audio {
            *s = s.saturating_add(noise.sample(peak));
        }
    }
    Clip { audio, spans }
}

fn main() {
    let o = options(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("end_of_turn_report: {e}");
        std::process::exit(2)
    });
    let mut items = load_set(&o.set);
    if let Some(wanted) = &o.trace {
        items.retain(|i| i.segments.join(" ").contains(wanted.as_str()));
    }
    let vad = Vad::load(o.session);
    if let Some(human) = o.human.as_ref().filter(|h| h.draft) {
        human::draft(human, &o.models, &vad);
        return;
    }
    let mut config = o.config.clone();
    if let Some(threshold) = o.text_hold {
        config.push(("text_hold".into(), threshold.to_string()));
    }
    let mut harness = Harness::start(vad, &o.models, &o.plugin, &config);
    if let Some(threshold) = o.text_hold {
        harness.words = Some(WordsModel::load(&o.models).unwrap_or_else(|e| {
            eprintln!("end_of_turn_report: {e}");
            std::process::exit(1)
        }));
        println!(
            "Smart Turn + turn-smart with the text model: an end of turn whose words end a \
             sentence with probability under {threshold} (SmolLM2, `text_hold`) waits to the \
             policy's `doubt_ms` of silence."
        );
    }
    let sim_options = SimOptions {
        stt_ms: o.stt_ms,
        strip_punctuation: o.strip_punctuation,
        trace: o.trace.is_some(),
        reply_ms: o.reply_ms,
    };
    if let Some(ms) = o.reply_ms {
        println!(
            "Replies: the agent's first audio {ms} ms after each commit; a cut-off is the agent \
             beginning to answer before the utterance is over."
        );
    }
    if let Some(human) = &o.human {
        human::report(&harness, human, sim_options, o.trace.as_deref(), o.verbose);
        return;
    }
    let sources: Vec<Source> = match o.neural {
        Some(mode) => {
            let dir = o
                .speech
                .clone()
                .unwrap_or_else(|| o.models.join("neural-speech"));
            neural::load(&dir, mode)
                .unwrap_or_else(|e| {
                    eprintln!("end_of_turn_report: {e}");
                    std::process::exit(1)
                })
                .into_iter()
                .map(Source::Neural)
                .collect()
        }
        None => {
            let espeak = Espeak::get().unwrap_or_else(|e| panic!("espeak-ng: {e}"));
            o.voices
                .iter()
                .flat_map(|voice| {
                    o.rates.iter().map(|&wpm| Source::Espeak {
                        espeak,
                        voice: voice.clone(),
                        wpm,
                        continuing: o.continuing,
                    })
                })
                .collect()
        }
    };

    let n_complete = items.iter().filter(|i| i.cue.is_none()).count();
    println!(
        "{} utterances ({} complete, {} incomplete), sources: {}; VAD {}; \
         recogniser latency {} ms{}{}; policy {} {:?}",
        items.len(),
        n_complete,
        items.len() - n_complete,
        sources
            .iter()
            .map(Source::name)
            .collect::<Vec<_>>()
            .join(", "),
        harness.vad.name(),
        o.stt_ms,
        if o.strip_punctuation {
            ", no punctuation"
        } else {
            ""
        },
        o.noise_dbfs
            .map(|db| format!("; white noise {db} dBFS RMS under the clip"))
            .unwrap_or_default(),
        o.plugin.display(),
        o.config
    );

    // tallies[source][strategy]
    let mut tallies: Vec<(String, BTreeMap<Strategy, Tally>, ModelTally)> = Vec::new();
    let mut by_cue: BTreeMap<(String, Strategy), Tally> = BTreeMap::new();
    let started = Instant::now();
    for speaker in &sources {
        let source = speaker.name();
        let mut per: BTreeMap<Strategy, Tally> = BTreeMap::new();
        let mut mt = ModelTally::default();
        for item in &items {
            let clip = clip_of(speaker.voice_of(item), item, o.noise_dbfs);
            let voice_end = clip.spans.last().unwrap().1;
            let full = words_of(&item.segments.join(" "));
            for strategy in Strategy::ALL {
                if o.trace.is_some() {
                    println!("{source} {}: voice {:?}", strategy.name(), clip.spans);
                }
                let out = harness.run(strategy, item, &clip, sim_options);
                let t = per.entry(strategy).or_default();
                let at = out.committed.as_ref().map(|c| c.0).unwrap_or_else(|| {
                    panic!("{source} {strategy:?}: {:?} never committed", item.segments)
                });
                let cut = out.said().map(words_of).as_ref() != Some(&full);
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
                    line += &probabilities(&out.model_runs);
                }
                if o.verbose {
                    println!(
                        "{line}  {:?} -> {:?}",
                        item.segments,
                        out.said().unwrap_or_default()
                    );
                }
            }
        }
        tallies.push((source, per, mt));
    }

    println!(
        "\n({} runs in {:.0} s)\n",
        tallies.len() * items.len() * Strategy::ALL.len(),
        started.elapsed().as_secs_f64()
    );
    let (mut header, mut rule) = table_head("Source", "delay p50 / p95 ms");
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

    if let Some(a) = auc(&all_model.at_end, &all_model.inside) {
        println!(
            "\nModel ROC AUC, end of complete utterances against inner pauses, all sources: {a:.2}"
        );
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

#[cfg(test)]
mod tests {
    use super::options;

    fn parse(args: &[&str]) -> Result<super::Options, String> {
        options(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn vad_names_the_engine_as_vad_engine_does() {
        use voice_host::config::VadEngineChoice;
        assert_eq!(
            parse(&[]).unwrap().session.vad_engine,
            VadEngineChoice::WebRtc
        );
        let o = parse(&["--vad", "silero", "--human"]).unwrap();
        assert_eq!(o.session.vad_engine, VadEngineChoice::Silero);
        assert!(o.human.is_some());
    }

    #[test]
    fn an_unknown_engine_or_option_is_one_line() {
        assert_eq!(parse(&["--reply-ms", "550"]).unwrap().reply_ms, Some(550));
        assert_eq!(
            parse(&["--noise-dbfs", "-50"]).unwrap().noise_dbfs,
            Some(-50.0)
        );
        for args in [
            &["--vad", "cobra"][..],
            &["--vad"],
            &["--vda", "silero"],
            &["--reply-ms", "soon"],
            &["--noise-dbfs", "50"],
            &["--noise-dbfs", "-50", "--human"],
            &["--neural", "--human"],
            &["--neural-segments", "--continuing"],
            &["--speech"],
        ] {
            let e = parse(args).err().expect("refused");
            assert!(!e.contains('\n'), "{e}");
            assert!(e.contains(args[0]), "{e}");
        }
        assert!(parse(&["--neural"]).unwrap().neural.is_some());
        assert_eq!(
            parse(&["--vad", "cobra"]).err().unwrap(),
            "--vad cobra: unknown engine \"cobra\" (webrtc or silero)"
        );
    }
}
