//! Entry points for hostile-input testing: each takes arbitrary bytes and sends them through the
//! host's real parser for one kind of outside input, the way the host reads it. None may panic,
//! whatever the bytes; bad input must come back as an error or be skipped.
//!
//! The fuzz targets in `fuzz/` and the corpus replay test (`host/tests/fuzz_corpus.rs`) both call
//! these, so a crash the fuzzer finds replays under the ordinary test command.

use crate::audio::{
    decode_wav_mono_i16, AudioFormat, Encoding, InputPipeline, OutputPipeline, VadConfig,
    MAX_SAMPLE_RATE, MIN_SAMPLE_RATE,
};
use crate::config::source::RawSettings;
use crate::config::Config;
use crate::providers::cloud::{deepgram, elevenlabs, openai};
use crate::transport::protocol::ClientMessage;
use crate::transport::twilio::inbound::inbound;
use crate::transport::twilio::marks::PlaybackMarks;
use std::sync::Mutex;

/// A fuzz target: its name and the entry point that feeds it bytes.
pub type Target = (&'static str, fn(&[u8]));

/// The fuzz targets, by name, with their entry points.
pub const TARGETS: &[Target] = &[
    ("client_message", client_message),
    ("twilio_message", twilio_message),
    ("audio", audio),
    ("openai_stream", openai_stream),
    ("deepgram_message", deepgram_message),
    ("elevenlabs_message", elevenlabs_message),
    ("wav", wav),
    ("config", config),
];

/// A client text frame on `/agent` (protocol v1), and for a `start` the pipelines it sets up.
pub fn client_message(data: &[u8]) {
    // WebSocket text frames are UTF-8 by the time the host sees them.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ClientMessage::Start { audio, output, .. }) = ClientMessage::parse(text) {
        if audio.validate().is_ok() {
            let _ = InputPipeline::new(audio, VadConfig::default());
        }
        let output = output.unwrap_or(audio);
        if output.validate().is_ok() {
            let _ = OutputPipeline::new(output);
        }
    }
}

/// A Twilio Media Streams text frame, read as a call in progress reads it.
pub fn twilio_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let marks = Mutex::new(PlaybackMarks::new(8000));
    let _ = inbound(text, &marks);
}

/// Client audio in an arbitrary format through decode, resample and 20 ms framing (with the
/// VAD), and synthesised audio at an arbitrary rate through the output pipeline.
///
/// Layout: `[flags, in_rate: 4, tts_rate: 4, out_rate: 4, chunks…]`, each chunk a length byte
/// then that many bytes. A rate is taken as is when flag bit 1 is set, else folded into the
/// supported range so most inputs reach the resampler.
pub fn audio(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((rates, mut rest)) = rest.split_at_checked(12) else {
        return;
    };
    let rate = |i: usize| {
        let raw = u32::from_le_bytes([rates[i], rates[i + 1], rates[i + 2], rates[i + 3]]);
        if flags & 2 != 0 {
            raw
        } else {
            MIN_SAMPLE_RATE + raw % (MAX_SAMPLE_RATE - MIN_SAMPLE_RATE + 1)
        }
    };
    let encoding = |bit: u8| {
        if flags & bit != 0 {
            Encoding::Mulaw
        } else {
            Encoding::Pcm16
        }
    };
    let input = AudioFormat::new(encoding(1), rate(0));
    let tts_rate = rate(4);
    let output = AudioFormat::new(encoding(4), rate(8));

    let mut pipeline = InputPipeline::new(input, VadConfig::default()).ok();
    let mut speaker = output
        .validate()
        .is_ok()
        .then(|| OutputPipeline::new(output));
    let mut encoded = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if let Some(p) = &mut pipeline {
            p.push(chunk, |frame, _, _| {
                assert_eq!(frame.len(), crate::audio::FRAME_SAMPLES)
            });
        }
        if let Some(s) = &mut speaker {
            let mut samples = Vec::new();
            AudioFormat::new(Encoding::Pcm16, tts_rate).decode(chunk, &mut samples);
            s.push(&samples, tts_rate, &mut encoded);
            if flags & 8 != 0 && len % 7 == 0 {
                s.reset();
            }
        }
    }
    if let Some(s) = &mut speaker {
        s.flush(&mut encoded);
    }
}

/// An OpenAI chat-completions event stream body, cut into pieces of `data[0]` bytes (the
/// whole body at once for 0).
pub fn openai_stream(data: &[u8]) {
    let Some((&size, body)) = data.split_first() else {
        return;
    };
    let size = if size == 0 {
        body.len().max(1)
    } else {
        usize::from(size)
    };
    let _ = openai::read_stream(body.chunks(size));
}

/// A Deepgram live-transcription text frame, on a fresh connection and on one an hour into the
/// session.
pub fn deepgram_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = deepgram::read_server_text(text, 0, 0);
    let _ = deepgram::read_server_text(text, 16_000 * 3600, 16_000);
}

/// Samples a Deepgram connection starting at session sample `connection_base` still keeps for
/// resending after reading `text` with `kept` samples held (`None` for a skipped frame).
pub fn deepgram_kept_after(text: &str, connection_base: u64, kept: usize) -> Option<u64> {
    deepgram::read_server_text(text, connection_base, kept).map(|(_, kept)| kept)
}

/// An ElevenLabs stream-input text frame, for a PCM 16 kHz and a mu-law 8 kHz session.
pub fn elevenlabs_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = elevenlabs::read_server_text(text, 16_000);
    let _ = elevenlabs::read_server_text(text, 8_000);
}

/// A WAV file (as read for test audio and `talk --wav`).
pub fn wav(data: &[u8]) {
    let _ = decode_wav_mono_i16(data);
}

/// A TOML configuration file, parsed and validated as `--config` is (the environment left out).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut raw) = RawSettings::from_toml(text) else {
        return;
    };
    // A non-PEM value names a file to read; keep the fuzzer off the file system.
    if raw
        .get("AUTH_PUBLIC_KEY")
        .is_some_and(|v| !v.trim_start().starts_with("-----BEGIN"))
    {
        raw.values.remove("AUTH_PUBLIC_KEY");
    }
    let _ = Config::from_raw(&raw);
}
