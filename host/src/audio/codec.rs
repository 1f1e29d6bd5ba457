//! Wire encodings of mono audio: 16-bit little-endian PCM and G.711 mu-law.

use serde::{Deserialize, Serialize};

/// How samples are laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Signed 16-bit little-endian linear PCM, two bytes per sample.
    Pcm16,
    /// ITU-T G.711 mu-law, one byte per sample (telephony, e.g. Twilio Media Streams).
    Mulaw,
}

/// Lowest sample rate the host accepts on any audio path.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate the host accepts on any audio path.
pub const MAX_SAMPLE_RATE: u32 = 48_000;

/// A mono audio stream's encoding and sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioFormat {
    /// Sample encoding on the wire.
    pub encoding: Encoding,
    /// Samples per second.
    pub sample_rate: u32,
}

impl AudioFormat {
    /// A format from its parts.
    pub const fn new(encoding: Encoding, sample_rate: u32) -> Self {
        Self {
            encoding,
            sample_rate,
        }
    }

    /// Checks that the sample rate is one the host can resample (8000..=48000 Hz).
    pub fn validate(&self) -> Result<(), String> {
        if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            Ok(())
        } else {
            Err(format!(
                "sample rate {} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz",
                self.sample_rate
            ))
        }
    }

    /// Bytes one sample takes on the wire.
    pub fn bytes_per_sample(&self) -> usize {
        match self.encoding {
            Encoding::Pcm16 => 2,
            Encoding::Mulaw => 1,
        }
    }

    /// Bytes that `ms` milliseconds of audio take (whole samples, rounded down).
    pub fn bytes_for_ms(&self, ms: u32) -> usize {
        let samples = u64::from(self.sample_rate) * u64::from(ms) / 1000;
        usize::try_from(samples)
            .unwrap_or(usize::MAX)
            .saturating_mul(self.bytes_per_sample())
    }

    /// Milliseconds of audio held in `bytes` (rounded down; 0 for a zero sample rate).
    pub fn duration_ms(&self, bytes: usize) -> u32 {
        if self.sample_rate == 0 {
            return 0;
        }
        let samples = (bytes / self.bytes_per_sample()) as u64;
        u32::try_from(samples * 1000 / u64::from(self.sample_rate)).unwrap_or(u32::MAX)
    }

    /// Checks that `bytes` holds whole samples, as a self-contained frame must.
    pub fn validate_frame(&self, bytes: &[u8]) -> Result<(), &'static str> {
        if bytes.len().is_multiple_of(self.bytes_per_sample()) {
            Ok(())
        } else {
            Err("PCM16 frame has an odd number of bytes")
        }
    }

    /// Decodes whole samples from `bytes`, appending them to `out`.
    ///
    /// Stateless: a trailing odd byte of PCM16 is ignored. Check frames with
    /// [`AudioFormat::validate_frame`], or use a [`Decoder`] when a stream may split samples.
    pub fn decode(&self, bytes: &[u8], out: &mut Vec<i16>) {
        match self.encoding {
            Encoding::Pcm16 => decode_pcm16(bytes, out),
            Encoding::Mulaw => decode_mulaw(bytes, out),
        }
    }

    /// Encodes `samples`, appending the bytes to `out`.
    pub fn encode(&self, samples: &[i16], out: &mut Vec<u8>) {
        match self.encoding {
            Encoding::Pcm16 => {
                out.reserve(samples.len() * 2);
                for s in samples {
                    out.extend_from_slice(&s.to_le_bytes());
                }
            }
            Encoding::Mulaw => out.extend(samples.iter().map(|&s| linear_to_mulaw(s))),
        }
    }
}

/// A streaming decoder that carries a PCM16 sample split across two chunks.
#[derive(Debug, Clone)]
pub struct Decoder {
    format: AudioFormat,
    carry: Option<u8>,
}

impl Decoder {
    /// A decoder for `format`.
    pub fn new(format: AudioFormat) -> Self {
        Self {
            format,
            carry: None,
        }
    }

    /// The format this decoder reads.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Decodes `bytes`, appending samples to `out`; an odd trailing PCM16 byte waits for the next call.
    pub fn decode(&mut self, mut bytes: &[u8], out: &mut Vec<i16>) {
        if self.format.encoding == Encoding::Mulaw {
            decode_mulaw(bytes, out);
            return;
        }
        if let Some(low) = self.carry.take() {
            match bytes.split_first() {
                Some((&high, rest)) => {
                    out.push(i16::from_le_bytes([low, high]));
                    bytes = rest;
                }
                None => {
                    self.carry = Some(low);
                    return;
                }
            }
        }
        decode_pcm16(bytes, out);
        if !bytes.len().is_multiple_of(2) {
            self.carry = bytes.last().copied();
        }
    }

    /// Drops a carried half sample.
    pub fn reset(&mut self) {
        self.carry = None;
    }
}

fn decode_pcm16(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]])),
    );
}

fn decode_mulaw(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(bytes.iter().map(|&b| mulaw_to_linear(b)));
}

/// G.711 bias added to the magnitude before finding the segment.
const MULAW_BIAS: i32 = 0x84;
/// Largest magnitude that still fits once the bias is added.
const MULAW_CLIP: i32 = 32_635;

/// Encodes one linear sample as G.711 mu-law.
pub fn linear_to_mulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample);
    let sign = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    magnitude = magnitude.min(MULAW_CLIP) + MULAW_BIAS;
    // The segment (exponent) is the position of the highest set bit above bit 7;
    // after biasing, `magnitude >> 7` is in 1..=255 so this is 0..=7.
    let exponent = 31 - ((magnitude >> 7) as u32).leading_zeros();
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !(sign | ((exponent as i32) << 4) | mantissa) as u8
}

const fn mulaw_to_linear_calc(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn build_mulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = mulaw_to_linear_calc(i as u8);
        i += 1;
    }
    table
}

/// Decoded value of every mu-law byte, computed at compile time.
static MULAW_DECODE: [i16; 256] = build_mulaw_table();

/// Decodes one G.711 mu-law byte to a linear sample.
pub fn mulaw_to_linear(byte: u8) -> i16 {
    MULAW_DECODE[usize::from(byte)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCM16_16K: AudioFormat = AudioFormat::new(Encoding::Pcm16, 16_000);
    const MULAW_8K: AudioFormat = AudioFormat::new(Encoding::Mulaw, 8_000);

    #[test]
    fn json_names_are_lowercase() {
        let json = serde_json::to_string(&MULAW_8K).unwrap();
        assert_eq!(json, r#"{"encoding":"mulaw","sample_rate":8000}"#);
        let parsed: AudioFormat =
            serde_json::from_str(r#"{"encoding":"pcm16","sample_rate":16000}"#).unwrap();
        assert_eq!(parsed, PCM16_16K);
        assert!(serde_json::from_str::<Encoding>(r#""opus""#).is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(PCM16_16K.bytes_per_sample(), 2);
        assert_eq!(MULAW_8K.bytes_per_sample(), 1);
        assert_eq!(PCM16_16K.bytes_for_ms(20), 640);
        assert_eq!(MULAW_8K.bytes_for_ms(20), 160);
        assert_eq!(PCM16_16K.duration_ms(640), 20);
        assert_eq!(MULAW_8K.duration_ms(8_000), 1_000);
        assert_eq!(AudioFormat::new(Encoding::Pcm16, 0).duration_ms(100), 0);
        assert_eq!(
            AudioFormat::new(Encoding::Pcm16, 22_050).bytes_for_ms(1_000),
            44_100
        );
    }

    #[test]
    fn validate_rejects_rates_outside_range() {
        assert!(PCM16_16K.validate().is_ok());
        assert!(AudioFormat::new(Encoding::Pcm16, 7_999).validate().is_err());
        assert!(AudioFormat::new(Encoding::Mulaw, 96_000)
            .validate()
            .is_err());
    }

    #[test]
    fn validate_frame_flags_odd_pcm16() {
        assert!(PCM16_16K.validate_frame(&[0, 0, 0]).is_err());
        assert!(PCM16_16K.validate_frame(&[0, 0]).is_ok());
        assert!(MULAW_8K.validate_frame(&[0, 0, 0]).is_ok());
    }

    #[test]
    fn mulaw_known_values() {
        assert_eq!(linear_to_mulaw(0), 0xFF);
        assert_eq!(linear_to_mulaw(-1), 0x7F);
        assert_eq!(linear_to_mulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_mulaw(i16::MIN), 0x00);
        assert_eq!(mulaw_to_linear(0xFF), 0);
        assert_eq!(mulaw_to_linear(0x80), 32_124);
        assert_eq!(mulaw_to_linear(0x00), -32_124);
        // Segment 0 has a step of 8 after the bias is removed.
        assert_eq!(mulaw_to_linear(0xFE), 8);
    }

    #[test]
    fn mulaw_is_symmetric() {
        for s in 1..=i16::MAX {
            let pos = linear_to_mulaw(s);
            let neg = linear_to_mulaw(-s);
            assert_eq!(pos & 0x7F, neg & 0x7F, "magnitude code differs for {s}");
            assert_ne!(pos & 0x80, neg & 0x80, "sign bit equal for {s}");
        }
        for b in 0..=255u8 {
            assert_eq!(mulaw_to_linear(b), -mulaw_to_linear(b ^ 0x80));
        }
    }

    #[test]
    fn mulaw_round_trip_error_is_within_half_a_step() {
        for s in i16::MIN..=i16::MAX {
            let back = i32::from(mulaw_to_linear(linear_to_mulaw(s)));
            let magnitude = i32::from(s).abs().min(MULAW_CLIP);
            // Quantisation step doubles per segment: 8, 16, ... 1024.
            let segment = 31 - (((magnitude + MULAW_BIAS) >> 7) as u32).leading_zeros();
            let step = 8 << segment;
            let target = if s < 0 { -magnitude } else { magnitude };
            assert!(
                (back - target).abs() <= step / 2,
                "{s} decoded as {back}, step {step}"
            );
        }
    }

    #[test]
    fn mulaw_decode_then_encode_is_identity_except_negative_zero() {
        for b in 0..=255u8 {
            let again = linear_to_mulaw(mulaw_to_linear(b));
            if b == 0x7F {
                // Negative zero decodes to 0, which encodes as positive zero.
                assert_eq!(again, 0xFF);
            } else {
                assert_eq!(again, b);
            }
        }
    }

    #[test]
    fn pcm16_round_trip_is_little_endian() {
        let samples = [0i16, 1, -1, 0x1234, i16::MIN, i16::MAX];
        let mut bytes = Vec::new();
        PCM16_16K.encode(&samples, &mut bytes);
        assert_eq!(&bytes[6..8], &[0x34, 0x12]);
        let mut back = Vec::new();
        PCM16_16K.decode(&bytes, &mut back);
        assert_eq!(back, samples);
    }

    #[test]
    fn encode_and_decode_append() {
        let mut out = vec![7i16];
        MULAW_8K.decode(&[0xFF, 0x80], &mut out);
        assert_eq!(out, [7, 0, 32_124]);
        let mut bytes = vec![1u8];
        MULAW_8K.encode(&[0], &mut bytes);
        assert_eq!(bytes, [1, 0xFF]);
    }

    #[test]
    fn stateless_decode_ignores_trailing_odd_byte() {
        let mut out = Vec::new();
        PCM16_16K.decode(&[0x01, 0x00, 0x05], &mut out);
        assert_eq!(out, [1]);
    }

    #[test]
    fn decoder_carries_split_sample() {
        let samples: Vec<i16> = (0..50).map(|i| i * 300 - 7_000).collect();
        let mut bytes = Vec::new();
        PCM16_16K.encode(&samples, &mut bytes);
        let mut decoder = Decoder::new(PCM16_16K);
        let mut out = Vec::new();
        // Odd-sized pieces, including an empty one and a single byte.
        let mut rest = &bytes[..];
        for size in [3usize, 0, 1, 1, 7, 5, 200].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            decoder.decode(&rest[..n], &mut out);
            rest = &rest[n..];
        }
        assert_eq!(out, samples);
    }

    #[test]
    fn decoder_reset_drops_half_sample() {
        let mut decoder = Decoder::new(PCM16_16K);
        let mut out = Vec::new();
        decoder.decode(&[0xAA], &mut out);
        decoder.reset();
        decoder.decode(&[0x02, 0x00], &mut out);
        assert_eq!(out, [2]);
    }
}
