//! What one reply's stream needs from the settings: the voice, the output format chosen from the
//! session's preferred rate, and decoding of the returned audio into samples.

use super::{ElevenLabsSettings, NAME};
use crate::audio::{AudioFormat, Decoder, Encoding};
use crate::providers::{Alignment, ProviderError, ProviderErrorKind, TtsEvent, TtsParams};
use std::sync::Arc;

/// The output formats this client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutputFormat {
    /// Headerless 16-bit little-endian PCM at 16 kHz.
    Pcm16k,
    /// Headerless G.711 mu-law at 8 kHz, for telephone clients.
    Ulaw8k,
}

impl OutputFormat {
    /// Mu-law for 8 kHz sessions (no resampling, telephone quality anyway), PCM 16 kHz otherwise.
    pub(super) fn for_rate(preferred_rate: u32) -> Self {
        if preferred_rate == 8000 {
            Self::Ulaw8k
        } else {
            Self::Pcm16k
        }
    }

    /// The `output_format` query value.
    pub(super) fn query_value(self) -> &'static str {
        match self {
            Self::Pcm16k => "pcm_16000",
            Self::Ulaw8k => "ulaw_8000",
        }
    }

    fn audio_format(self) -> AudioFormat {
        match self {
            Self::Pcm16k => AudioFormat::new(Encoding::Pcm16, 16_000),
            Self::Ulaw8k => AudioFormat::new(Encoding::Mulaw, 8_000),
        }
    }
}

/// One reply's synthesis job.
pub(super) struct Job {
    pub settings: Arc<ElevenLabsSettings>,
    pub session_id: String,
    pub turn: u32,
    pub voice: String,
    pub format: OutputFormat,
    decoder: Decoder,
}

impl Job {
    pub(super) fn new(settings: Arc<ElevenLabsSettings>, params: &TtsParams) -> Self {
        let voice = params
            .voice
            .clone()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| settings.voice_id.clone());
        let format = OutputFormat::for_rate(params.preferred_rate);
        Self {
            settings,
            session_id: params.session_id.clone(),
            turn: params.turn,
            voice,
            format,
            decoder: Decoder::new(format.audio_format()),
        }
    }

    pub(super) fn key(&self) -> Option<&str> {
        self.settings.api_key.as_deref()
    }

    /// The voice id, checked to be safe as a URL path segment.
    pub(super) fn checked_voice(&self) -> Result<&str, ProviderError> {
        let ok = !self.voice.is_empty()
            && self.voice.len() <= 64
            && self
                .voice
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(&self.voice)
        } else {
            Err(ProviderError::new(
                ProviderErrorKind::Rejected,
                NAME,
                "voice id must be 1-64 letters, digits, '_' or '-'",
            ))
        }
    }

    /// Decodes a piece of the audio stream into an event; `None` when it held no whole sample.
    pub(super) fn audio_event(
        &mut self,
        bytes: &[u8],
        alignment: Option<Alignment>,
    ) -> Option<TtsEvent> {
        let mut samples = Vec::with_capacity(bytes.len());
        self.decoder.decode(bytes, &mut samples);
        if samples.is_empty() && alignment.is_none() {
            return None;
        }
        Some(TtsEvent::Audio {
            samples,
            sample_rate: self.decoder.format().sample_rate,
            alignment,
        })
    }
}

/// Text as the stream-input endpoint wants it: ending with a space.
pub(super) fn with_trailing_space(text: &str) -> String {
    if text.ends_with(' ') {
        text.to_string()
    } else {
        format!("{text} ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::linear_to_mulaw;

    fn job(rate: u32, voice: Option<&str>) -> Job {
        let params = TtsParams {
            preferred_rate: rate,
            voice: voice.map(str::to_string),
            ..Default::default()
        };
        Job::new(Arc::new(ElevenLabsSettings::default()), &params)
    }

    #[test]
    fn telephone_rate_asks_for_mulaw_and_decodes_it() {
        let mut j = job(8000, None);
        assert_eq!(j.format.query_value(), "ulaw_8000");
        let bytes: Vec<u8> = [0i16, 1000, -1000]
            .iter()
            .map(|&s| linear_to_mulaw(s))
            .collect();
        let Some(TtsEvent::Audio {
            samples,
            sample_rate,
            ..
        }) = j.audio_event(&bytes, None)
        else {
            panic!("no audio")
        };
        assert_eq!(sample_rate, 8000);
        assert_eq!(samples.len(), 3);
        assert!(samples[1] > 900 && samples[2] < -900);
    }

    #[test]
    fn pcm_samples_split_across_chunks_are_kept_whole() {
        let mut j = job(16000, None);
        assert_eq!(j.format.query_value(), "pcm_16000");
        let bytes = [0x34u8, 0x12, 0x78, 0x56];
        assert!(j.audio_event(&bytes[..3], None).is_some());
        let Some(TtsEvent::Audio { samples, .. }) = j.audio_event(&bytes[3..], None) else {
            panic!("no audio")
        };
        assert_eq!(samples, vec![0x5678]);
    }

    #[test]
    fn voice_ids_are_checked_and_text_gets_a_trailing_space() {
        assert!(job(16000, Some("JBFqnCBsd6RMkjVDRZzb"))
            .checked_voice()
            .is_ok());
        assert!(job(16000, Some("../admin")).checked_voice().is_err());
        assert_eq!(with_trailing_space("Hi."), "Hi. ");
        assert_eq!(with_trailing_space("Hi. "), "Hi. ");
    }
}
