//! Golden values computed by pipecat's own code (scripts/smart-turn-reference.py) for the
//! recordings in host/tests/fixtures/smart-turn/, and the audio of each case rebuilt the way
//! the script builds it.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
pub struct Reference {
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    pub parts: Vec<Part>,
    pub samples: usize,
    pub probability: f64,
    pub band_means: Vec<f64>,
    pub frame_means: Vec<f64>,
    /// (flat index into `[80, 800]`, value)
    pub values: Vec<(usize, f64)>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Part {
    Wav(String),
    Silence { silence_ms: usize },
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smart-turn")
}

pub fn load() -> Reference {
    let path = fixtures().join("reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference.json")
}

impl Case {
    /// The case's recording, 16 kHz mono in [-1, 1) (PCM16 / 32768, as pipecat converts it).
    pub fn audio(&self) -> Vec<f32> {
        let mut audio = Vec::new();
        for part in &self.parts {
            match part {
                Part::Wav(name) => {
                    let path = fixtures().join(format!("{name}.wav"));
                    let (pcm, rate) = crate::audio::read_wav_mono_i16(&path).expect("fixture WAV");
                    assert_eq!(rate, 16_000, "{}", path.display());
                    audio.extend(pcm.iter().map(|&s| f32::from(s) / 32_768.0));
                }
                Part::Silence { silence_ms } => {
                    audio.extend(std::iter::repeat_n(0.0, 16 * silence_ms));
                }
            }
        }
        audio
    }
}
