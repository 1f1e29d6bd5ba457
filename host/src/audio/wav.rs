//! Reading and writing mono 16-bit WAV files.

use std::path::Path;

use anyhow::{bail, Context};

/// Reads a WAV file as mono 16-bit samples and its sample rate.
///
/// Integer (8 to 32 bit) and float files are converted; multi-channel audio is averaged
/// to mono.
pub fn read_wav_mono_i16(path: impl AsRef<Path>) -> anyhow::Result<(Vec<i16>, u32)> {
    let path = path.as_ref();
    let reader =
        hound::WavReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    mono_i16(reader, path)
}

/// [`read_wav_mono_i16`] for a WAV file already in memory.
pub fn decode_wav_mono_i16(bytes: &[u8]) -> anyhow::Result<(Vec<i16>, u32)> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).context("reading WAV")?;
    mono_i16(reader, Path::new("<memory>"))
}

fn mono_i16<R: std::io::Read>(
    mut reader: hound::WavReader<R>,
    path: &Path,
) -> anyhow::Result<(Vec<i16>, u32)> {
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 {
        bail!("{} declares zero channels", path.display());
    }
    let interleaved: Vec<i32> = match spec.sample_format {
        hound::SampleFormat::Int => {
            if !(1..=32).contains(&spec.bits_per_sample) {
                bail!(
                    "{}: unsupported {} bit samples",
                    path.display(),
                    spec.bits_per_sample
                );
            }
            // Scale to 16 bits whatever the file's depth.
            let shift = i32::from(spec.bits_per_sample) - 16;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| if shift >= 0 { v >> shift } else { v << -shift }))
                .collect::<Result<_, _>>()
        }
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.map(|v| (v.clamp(-1.0, 1.0) * 32_767.0) as i32))
            .collect::<Result<_, _>>(),
    }
    .with_context(|| format!("reading samples from {}", path.display()))?;
    let mono = interleaved
        .chunks_exact(channels)
        .map(|frame| {
            let sum: i64 = frame.iter().map(|&v| i64::from(v)).sum();
            (sum / channels as i64).clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
        })
        .collect();
    Ok((mono, spec.sample_rate))
}

/// Writes `samples` as a mono 16-bit PCM WAV file at `rate` Hz.
pub fn write_wav_mono_i16(
    path: impl AsRef<Path>,
    samples: &[i16],
    rate: u32,
) -> anyhow::Result<()> {
    let path = path.as_ref();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)
        .with_context(|| format!("creating {}", path.display()))?;
    let mut samples_writer = writer.get_i16_writer(samples.len() as u32);
    for &s in samples {
        samples_writer.write_sample(s);
    }
    samples_writer
        .flush()
        .with_context(|| format!("writing {}", path.display()))?;
    writer
        .finalize()
        .with_context(|| format!("finishing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("voice-host-wav-{}-{name}", std::process::id()))
    }

    #[test]
    fn round_trips_samples_and_rate() {
        let path = temp_path("round.wav");
        let samples: Vec<i16> = (0..1_000).map(|i| (i * 37 - 18_000) as i16).collect();
        write_wav_mono_i16(&path, &samples, 22_050).unwrap();
        let (back, rate) = read_wav_mono_i16(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(rate, 22_050);
        assert_eq!(back, samples);
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let path = temp_path("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for (l, r) in [(100i16, 300i16), (-1_000, 1_000), (i16::MAX, i16::MAX)] {
            w.write_sample(l).unwrap();
            w.write_sample(r).unwrap();
        }
        w.finalize().unwrap();
        let (mono, _) = read_wav_mono_i16(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(mono, [200, 0, i16::MAX]);
    }

    #[test]
    fn float_and_24_bit_are_scaled() {
        let path = temp_path("float.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for v in [0.5f32, -1.0, 2.0] {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let (mono, _) = read_wav_mono_i16(&path).unwrap();
        assert_eq!(mono, [16_383, -32_767, 32_767]);

        let spec = hound::WavSpec {
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
            ..spec
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(0x12_3456i32).unwrap();
        w.finalize().unwrap();
        let (mono, _) = read_wav_mono_i16(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(mono, [0x1234]);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_wav_mono_i16("/nonexistent/voice.wav").unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/voice.wav"));
    }
}
