//! The labelled set spoken by a neural voice (`--neural`, `--neural-segments`): Piper's
//! `en_US-joe-medium` (VITS, trained on a human speaker's recordings, CC0), rendered by
//! `scripts/render_neural_speech.py` through `scripts/fetch-neural-speech.sh` into the models
//! directory's `neural-speech/`.
//!
//! Unlike espeak-ng, which speaks each segment alone and ends each with a finished sentence's
//! fall, the default rendering (`sentence`) speaks the whole utterance as one sentence and cuts
//! it at the word boundaries where the labels pause: the voice before a pause is a sentence going
//! on, as a speaker who stops mid-sentence gives it. `segments` speaks each segment alone, as the
//! espeak-ng sources do, to tell the prosody of the cut from the voice. Each rendering comes at
//! three length scales (0.85, 1.0, 1.2: three sources, as espeak-ng's rates are).

use crate::sim::RATE;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use voice_host::audio::Resampler;

/// How the utterances were spoken (`manifest.json`'s `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The whole utterance as one sentence, cut at the labelled pauses.
    Sentence,
    /// Each segment alone.
    Segments,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Sentence => "sentence",
            Mode::Segments => "segments",
        }
    }
}

#[derive(Deserialize)]
struct Manifest {
    voice: String,
    sample_rate: u32,
    sources: Vec<ManifestSource>,
}

#[derive(Deserialize)]
struct ManifestSource {
    mode: String,
    length_scale: f64,
    clips: Vec<ManifestClip>,
}

#[derive(Deserialize)]
struct ManifestClip {
    say: Vec<String>,
    files: Vec<String>,
}

/// One rendering at one length scale: the voice of each segment of each utterance, at 16 kHz.
pub struct NeuralSource {
    pub name: String,
    segments: HashMap<Vec<String>, Vec<Vec<i16>>>,
}

impl NeuralSource {
    /// The voice of each of the utterance's segments; an error names what is missing.
    pub fn voice_of(&self, say: &[String]) -> Result<&[Vec<i16>], String> {
        self.segments.get(say).map(Vec::as_slice).ok_or_else(|| {
            format!(
                "{}: {say:?} was not rendered (the set changed? scripts/fetch-neural-speech.sh \
                 renders it again)",
                self.name
            )
        })
    }
}

/// The sources of `mode` in `dir` (`neural-speech/` of the models directory).
pub fn load(dir: &Path, mode: Mode) -> Result<Vec<NeuralSource>, String> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {}: {e} (scripts/end-of-turn-report.sh --neural renders it)",
            path.display()
        )
    })?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut sources = Vec::new();
    for source in manifest.sources.iter().filter(|s| s.mode == mode.name()) {
        let mut segments = HashMap::new();
        for clip in &source.clips {
            let voice = clip
                .files
                .iter()
                .map(|f| read_voice(&dir.join(f), manifest.sample_rate))
                .collect::<Result<Vec<_>, _>>()?;
            if voice.len() != clip.say.len() {
                return Err(format!(
                    "{}: {:?} has {} files",
                    path.display(),
                    clip.say,
                    voice.len()
                ));
            }
            segments.insert(clip.say.clone(), voice);
        }
        sources.push(NeuralSource {
            name: format!(
                "{} {} x{:.2}",
                manifest.voice,
                mode.name(),
                source.length_scale
            ),
            segments,
        });
    }
    if sources.is_empty() {
        return Err(format!("{}: no {} rendering", path.display(), mode.name()));
    }
    Ok(sources)
}

/// A segment's voice at 16 kHz without its leading and trailing silence.
fn read_voice(path: &Path, rate: u32) -> Result<Vec<i16>, String> {
    let mut reader =
        hound::WavReader::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_rate != rate || spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(format!(
            "{}: {rate} Hz mono 16-bit expected",
            path.display()
        ));
    }
    let native = reader
        .samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut resampler = Resampler::new(rate, RATE as u32)?;
    let mut audio = Vec::new();
    resampler.process(&native, &mut audio);
    resampler.flush(&mut audio);
    Ok(crate::trimmed(audio))
}

#[cfg(test)]
mod tests {
    use super::{load, Mode};
    use crate::sim::RATE;

    /// A directory removed when the test ends.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A rendering of one two-segment utterance, each segment a tone between silences at
    /// 22,050 Hz, in a fresh directory.
    fn rendering(name: &str) -> Scratch {
        let dir =
            Scratch(std::env::temp_dir().join(format!("vh-neural-{name}-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(dir.path());
        std::fs::create_dir_all(dir.path().join("sentence-1.00")).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        for (k, tone_ms) in [(0, 500), (1, 300)] {
            let path = dir.path().join(format!("sentence-1.00/000-{k}.wav"));
            let mut w = hound::WavWriter::create(path, spec).unwrap();
            // 100 ms of silence, the tone, 100 ms of silence.
            let (silence, tone) = (2_205, 22_050 * tone_ms / 1000);
            for i in 0..silence * 2 + tone {
                let on = (silence..silence + tone).contains(&i);
                let phase = i as f64 * 440.0 * std::f64::consts::TAU / 22_050.0;
                w.write_sample(if on { (phase.sin() * 8000.0) as i16 } else { 0 })
                    .unwrap();
            }
            w.finalize().unwrap();
        }
        let manifest = serde_json::json!({
            "voice": "en_US-joe-medium",
            "sample_rate": 22050,
            "sources": [{
                "mode": "sentence",
                "length_scale": 1.0,
                "clips": [{
                    "say": ["Book me a flight to London", "for next Monday morning."],
                    "files": ["sentence-1.00/000-0.wav", "sentence-1.00/000-1.wav"],
                }],
            }],
        });
        std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
        dir
    }

    #[test]
    fn each_segment_is_its_voice_alone_at_16_khz() {
        let dir = rendering("voice");
        let sources = load(dir.path(), Mode::Sentence).expect("the rendering loads");
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].name, "en_US-joe-medium sentence x1.00");
        let say = ["Book me a flight to London", "for next Monday morning."].map(String::from);
        let voice = sources[0].voice_of(&say).expect("rendered");
        let ms: Vec<usize> = voice.iter().map(|v| v.len() * 1000 / RATE).collect();
        // The tones' lengths, without the silence around them (the first and last samples of
        // a sine are near zero, so a few ms go too).
        assert!((490..=500).contains(&ms[0]), "{ms:?}");
        assert!((290..=300).contains(&ms[1]), "{ms:?}");
    }

    #[test]
    fn what_is_missing_is_named() {
        let dir = rendering("missing");
        let sources = load(dir.path(), Mode::Sentence).unwrap();
        let e = sources[0]
            .voice_of(&["Call my mother".to_string()])
            .unwrap_err();
        assert!(
            e.contains("Call my mother") && e.contains("fetch-neural-speech.sh"),
            "{e}"
        );
        let e = load(dir.path(), Mode::Segments)
            .err()
            .expect("no such rendering");
        assert!(e.contains("no segments rendering"), "{e}");
        let e = load(&dir.path().join("elsewhere"), Mode::Sentence)
            .err()
            .expect("no manifest");
        assert!(e.contains("manifest.json") && e.contains("--neural"), "{e}");
    }
}
