//! The VAD alone on the human recordings (`--human`, after the end-of-turn tables): the gate as a
//! session with a policy runs it (pauses at 200 ms, hangover 600 ms) over each whole recording,
//! scored against the labelled voiced stretches and pauses of `human.toml`.
//!
//! - **as recorded**: the recordings as they are. The labelled pauses are those webrtc-vad's gate
//!   found (`--human --draft`) and their edges are its estimates, so this measures agreement with
//!   webrtc-vad's voice edges more than truth: webrtc-vad sees every pause 200 ms late by
//!   construction;
//! - **pauses silent**, **noise**, **clicks**, **hum**: the lead before the first voice and every
//!   labelled pause replaced by digital silence, white noise, 5 ms clicks every 120 ms or a 150 Hz
//!   hum (deterministic, as the gate's unit tests make them), the voiced stretches untouched: the
//!   voice in the audio then starts and stops exactly at the labels, for both engines.
//!
//! Per condition and engine:
//! - pauses seen: labelled pauses some of which the gate calls silence (from its `Pause` or
//!   `SpeechEnd` to its next `Resume` or `SpeechStart`; to `TOLERANCE_MS` after the labelled next
//!   voice), and how long after the labelled end of the voice it reported that silence (what
//!   delays an end-of-turn decision; negative when it stopped hearing voice before the label);
//! - pauses inside voice: silences the gate reports that overlap no labelled pause;
//! - voice inside pauses: `SpeechStart`/`Resume` reported inside a labelled pause or the lead,
//!   more than `TOLERANCE_MS` before its next voice (a false start: a turn held or begun by noise);
//! - start confirmation: from a labelled voice onset to the `SpeechStart` after an end of speech
//!   (or the first voice), and to the `Resume` after a pause.

use crate::human::{Labels, Recording};
use crate::sim::{percentile, Vad, WhiteNoise, RATE};
use std::path::Path;
use voice_host::audio::{VadTransition, FRAME_SAMPLES};

/// Slack for an event just after a labelled edge.
const TOLERANCE_MS: u64 = 100;
/// How long after a labelled onset a start still belongs to it.
const ONSET_WINDOW_MS: u64 = 1000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Condition {
    AsRecorded,
    Silent,
    /// White noise, peak level (RMS is peak / sqrt 3).
    Noise(i16),
    Clicks,
    Hum,
}

impl Condition {
    const ALL: [Condition; 7] = [
        Condition::AsRecorded,
        Condition::Silent,
        Condition::Noise(100),
        Condition::Noise(300),
        Condition::Noise(1000),
        Condition::Clicks,
        Condition::Hum,
    ];

    fn name(self) -> String {
        match self {
            Condition::AsRecorded => "as recorded".into(),
            Condition::Silent => "pauses silent".into(),
            Condition::Noise(peak) => {
                let rms = f64::from(peak) / 3f64.sqrt() / 32768.0;
                format!("white noise {:.0} dBFS RMS", 20.0 * rms.log10())
            }
            Condition::Clicks => "clicks (5 ms, every 120 ms)".into(),
            Condition::Hum => "150 Hz hum".into(),
        }
    }

    /// The sample at absolute index `i` of the recording inside a silence.
    fn sample(self, i: usize, noise: &mut WhiteNoise) -> i16 {
        match self {
            Condition::AsRecorded | Condition::Silent => 0,
            Condition::Noise(peak) => noise.sample(i32::from(peak)),
            Condition::Clicks => {
                let period = 120 * RATE / 1000;
                if i % period < 5 * RATE / 1000 {
                    noise.sample(20_000)
                } else {
                    0
                }
            }
            Condition::Hum => {
                let t = i as f32 / RATE as f32;
                ((std::f32::consts::TAU * 150.0 * t).sin() * 3_300.0) as i16
            }
        }
    }
}

fn at(ms: u64) -> usize {
    ms as usize * RATE / 1000
}

/// The recording under `condition`: the lead and the labelled pauses replaced.
fn condition_audio(rec: &Recording, audio: &[i16], condition: Condition) -> Vec<i16> {
    let mut out = audio.to_vec();
    if condition == Condition::AsRecorded {
        return out;
    }
    let mut noise = WhiteNoise::default();
    let silences = std::iter::once((0, rec.first_voice_ms))
        .chain(rec.pause.iter().map(|p| (p.at_ms, p.at_ms + p.ms)));
    for (from, to) in silences {
        for i in at(from)..at(to).min(out.len()) {
            out[i] = condition.sample(i, &mut noise);
        }
    }
    out
}

/// The gate's transitions over `audio`: (end of the frame that reported it, transition).
fn listen(vad: &Vad, audio: &[i16]) -> Vec<(u64, VadTransition)> {
    let mut gate = vad.gate(true);
    let frame_ms = (FRAME_SAMPLES * 1000 / RATE) as u64;
    audio
        .chunks_exact(FRAME_SAMPLES)
        .enumerate()
        .filter_map(|(i, frame)| {
            let start = i as u64 * frame_ms;
            gate.process(frame, start).map(|t| (start + frame_ms, t))
        })
        .collect()
}

#[derive(Default)]
struct Score {
    pauses: u32,
    seen: u32,
    /// Reported after the labelled end of the voice (ms), per seen pause.
    late: Vec<f64>,
    unlabelled: u32,
    false_starts: u32,
    starts: Vec<f64>,
    resumes: Vec<f64>,
}

impl Score {
    fn add(&mut self, o: &Score) {
        self.pauses += o.pauses;
        self.seen += o.seen;
        self.late.extend_from_slice(&o.late);
        self.unlabelled += o.unlabelled;
        self.false_starts += o.false_starts;
        self.starts.extend_from_slice(&o.starts);
        self.resumes.extend_from_slice(&o.resumes);
    }

    fn row(&self, condition: &str, engine: &str) -> String {
        let p = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            match (percentile(&v, 0.5), percentile(&v, 0.95)) {
                (Some(a), Some(b)) => format!("{a:.0} / {b:.0} ({})", v.len()),
                _ => "- (0)".into(),
            }
        };
        format!(
            "| {condition} | {engine} | {}/{} | {} | {} | {} | {} | {} |",
            self.seen,
            self.pauses,
            p(&self.late),
            self.unlabelled,
            self.false_starts,
            p(&self.starts),
            p(&self.resumes),
        )
    }
}

fn score(rec: &Recording, events: &[(u64, VadTransition)], verbose: bool) -> Score {
    let mut s = Score {
        pauses: rec.pause.len() as u32,
        ..Score::default()
    };
    let last = rec
        .pause
        .last()
        .map_or(rec.first_voice_ms, |p| p.at_ms + p.ms);
    // Silences (from, to): before the first voice, and each pause; each ends at a voice onset.
    let silences: Vec<(u64, u64)> = std::iter::once((0, rec.first_voice_ms))
        .chain(rec.pause.iter().map(|p| (p.at_ms, p.at_ms + p.ms)))
        .collect();
    // What the gate called silence: from the first Pause or SpeechEnd after voice to the next
    // SpeechStart or Resume (times the events were reported).
    let mut quiet: Vec<(u64, u64)> = Vec::new();
    let mut quiet_from: Option<u64> = None;
    let mut onset_done = vec![false; silences.len()];
    for &(emitted, t) in events {
        match t {
            VadTransition::Pause { .. } | VadTransition::SpeechEnd { .. } => {
                quiet_from.get_or_insert(emitted);
            }
            VadTransition::SpeechStart { .. } | VadTransition::Resume { .. } => {
                if let Some(from) = quiet_from.take() {
                    quiet.push((from, emitted));
                }
                if emitted > last + ONSET_WINDOW_MS {
                    continue;
                }
                let silence = silences
                    .iter()
                    .position(|&(from, to)| emitted > from && emitted + TOLERANCE_MS <= to);
                if let Some(i) = silence {
                    s.false_starts += 1;
                    if verbose {
                        println!(
                            "  {}: {t:?} reported at {emitted} ms, in the silence {:?}",
                            rec.name, silences[i]
                        );
                    }
                    continue;
                }
                // The onset it confirms: the latest one at most ONSET_WINDOW_MS before.
                let onset = silences.iter().rposition(|&(_, to)| {
                    to < emitted + TOLERANCE_MS && emitted <= to + ONSET_WINDOW_MS
                });
                if let Some(i) = onset.filter(|&i| !onset_done[i]) {
                    onset_done[i] = true;
                    let took = emitted as f64 - silences[i].1 as f64;
                    if matches!(t, VadTransition::SpeechStart { .. }) {
                        s.starts.push(took);
                    } else {
                        s.resumes.push(took);
                    }
                }
            }
            // This scores confirmed speech only.
            VadTransition::Onset { .. } | VadTransition::FalseOnset { .. } => {}
        }
    }
    if let Some(from) = quiet_from {
        quiet.push((from, u64::MAX));
    }
    // A labelled pause is seen when the gate calls some of it silence (to TOLERANCE_MS after
    // the voice is back); how late: from the labelled end of the voice to that report (before
    // it when the gate stopped hearing voice sooner).
    let window = |p: &crate::human::Pause| (p.at_ms, p.at_ms + p.ms + TOLERANCE_MS);
    for (i, p) in rec.pause.iter().enumerate() {
        let (from, to) = window(p);
        match quiet.iter().find(|q| q.0 <= to && q.1 > from) {
            Some(q) => {
                s.seen += 1;
                s.late.push(q.0 as f64 - p.at_ms as f64);
            }
            None if verbose => println!(
                "  {}: pause {i} of {} ms at {} ms not seen",
                rec.name, p.ms, p.at_ms
            ),
            None => {}
        }
    }
    for q in quiet.iter().filter(|q| q.0 <= last + TOLERANCE_MS) {
        let labelled = rec.pause.iter().any(|p| {
            let (from, to) = window(p);
            q.0 <= to && q.1 > from
        });
        if !labelled {
            s.unlabelled += 1;
            if verbose {
                println!(
                    "  {}: silence reported at {} ms, inside voice",
                    rec.name, q.0
                );
            }
        }
    }
    s
}

/// Prints the VAD-alone table for `vad` (one engine) over the labelled recordings.
pub fn report(vad: &Vad, labels: &Labels, recordings: &Path, verbose: bool) {
    let audio: Vec<Vec<i16>> = labels
        .recording
        .iter()
        .map(|r| crate::human::load_wav(&recordings.join(&r.file)))
        .collect();
    let pauses: usize = labels.recording.iter().map(|r| r.pause.len()).sum();
    let onsets = pauses + labels.recording.len();
    println!(
        "\nThe VAD alone ({}, pauses at {} ms, hangover {} ms) over the whole recordings, \
         {pauses} labelled pauses and {onsets} voice onsets: pauses seen (some of the pause \
         reported as silence), reported after the labelled end of the voice p50 / p95 ms (n), \
         silences reported inside voice, starts or resumes inside silence, start confirmation after the labelled onset \
         (SpeechStart, after an end of speech; Resume, after a pause) p50 / p95 ms (n):\n",
        vad.name(),
        vad.config.turn_pause_ms,
        vad.config.vad_hangover_ms,
    );
    println!(
        "| Condition | VAD | pauses seen | reported after the voice ends | pauses inside voice | \
         starts inside silence | SpeechStart after the onset | Resume after the onset |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for condition in Condition::ALL {
        let mut all = Score::default();
        for (rec, audio) in labels.recording.iter().zip(&audio) {
            let heard = listen(vad, &condition_audio(rec, audio, condition));
            if verbose {
                println!("{} {}:", condition.name(), rec.name);
            }
            all.add(&score(rec, &heard, verbose));
        }
        println!("{}", all.row(&condition.name(), vad.name()));
    }
}
