//! The fake voice: a buzz whose length follows the text (60 ms per character), in the requested
//! output format, cut into chunks with character alignment.

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// Milliseconds of audio per character of text.
pub const MS_PER_CHAR: u32 = 60;
/// Characters per audio chunk (each chunk carries its own alignment).
const CHARS_PER_CHUNK: usize = 12;

/// A supported `output_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcm(u32),
    Ulaw8000,
}

impl Format {
    /// Parses an `output_format` value; the fake produces PCM and mu-law only.
    pub fn parse(value: &str) -> Option<Self> {
        if value == "ulaw_8000" {
            return Some(Self::Ulaw8000);
        }
        let rate: u32 = value.strip_prefix("pcm_")?.parse().ok()?;
        [8000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000]
            .contains(&rate)
            .then_some(Self::Pcm(rate))
    }

    pub fn sample_rate(self) -> u32 {
        match self {
            Self::Pcm(r) => r,
            Self::Ulaw8000 => 8000,
        }
    }

    fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcm(_) => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Self::Ulaw8000 => samples.iter().map(|&s| mulaw(s)).collect(),
        }
    }
}

/// One chunk of synthesised speech with the characters it voices.
pub struct Chunk {
    pub audio: Vec<u8>,
    pub chars: Vec<char>,
}

impl Chunk {
    /// The stream-input JSON message for this chunk (times relative to the chunk's start).
    pub fn message(&self) -> Value {
        use base64::Engine;
        let starts: Vec<u32> = (0..self.chars.len() as u32)
            .map(|i| i * MS_PER_CHAR)
            .collect();
        let durations = vec![MS_PER_CHAR; self.chars.len()];
        let original: Vec<String> = self.chars.iter().map(|c| c.to_string()).collect();
        let normalized: Vec<String> = self
            .chars
            .iter()
            .map(|c| c.to_lowercase().to_string())
            .collect();
        json!({
            "audio": base64::engine::general_purpose::STANDARD.encode(&self.audio),
            "isFinal": null,
            "normalizedAlignment": {"chars": normalized, "charStartTimesMs": starts, "charDurationsMs": durations},
            "alignment": {"chars": original, "charStartTimesMs": starts, "charDurationsMs": durations},
        })
    }
}

/// Synthesises `text` into chunks.
pub fn synthesise(text: &str, format: Format) -> Vec<Chunk> {
    let rate = format.sample_rate();
    let second = buzz_second(rate);
    let chars: Vec<char> = text.chars().collect();
    let mut phase = 0usize;
    chars
        .chunks(CHARS_PER_CHUNK)
        .map(|piece| {
            let n = (rate as usize * MS_PER_CHAR as usize / 1000) * piece.len();
            let samples: Vec<i16> = (phase..phase + n)
                .map(|i| second[i % second.len()])
                .collect();
            phase += n;
            Chunk {
                audio: format.encode(&samples),
                chars: piece.to_vec(),
            }
        })
        .collect()
}

/// One second of the buzz at `rate` (whole cycles of both tones, so it repeats seamlessly),
/// computed once per rate: a load run synthesises hours of it, and `sin` per sample made the
/// fake voice the most expensive part of the load rig.
fn buzz_second(rate: u32) -> Arc<[i16]> {
    static SECONDS: Mutex<Vec<(u32, Arc<[i16]>)>> = Mutex::new(Vec::new());
    let mut cache = SECONDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = cache.iter().find(|(r, _)| *r == rate) {
        return s.clone();
    }
    let second: Arc<[i16]> = (0..rate)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let tau = std::f32::consts::TAU;
            let s = 0.6 * (tau * 180.0 * t).sin() + 0.4 * (tau * 540.0 * t).sin();
            (s * 8000.0) as i16
        })
        .collect();
    cache.push((rate, second.clone()));
    second
}

/// G.711 mu-law encoding of one sample (the fake's own, independent of the host's codec).
fn mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_length_follows_text_length() {
        let chunks = synthesise("Hello world.", Format::Pcm(16_000));
        let bytes: usize = chunks.iter().map(|c| c.audio.len()).sum();
        assert_eq!(bytes, 12 * 60 * 16 * 2);
        let ulaw: usize = synthesise("Hi", Format::Ulaw8000)
            .iter()
            .map(|c| c.audio.len())
            .sum();
        assert_eq!(ulaw, 2 * 60 * 8);
    }

    #[test]
    fn mulaw_matches_the_g711_reference_points() {
        assert_eq!(mulaw(0), 0xFF);
        assert_eq!(mulaw(-1), 0x7F);
        assert_eq!(mulaw(32_767), 0x80);
        assert_eq!(mulaw(-32_768), 0x00);
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse("pcm_16000"), Some(Format::Pcm(16_000)));
        assert_eq!(Format::parse("ulaw_8000"), Some(Format::Ulaw8000));
        assert_eq!(Format::parse("mp3_44100_128"), None);
    }
}
