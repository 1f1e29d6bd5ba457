//! Whisper tiny.en inference with `candle-transformers`, loading CTranslate2 weights.
//!
//! Whisper encodes a 30 s window whatever the audio length; most of a short utterance's cost is
//! that. [`EncoderWindow::Utterance`] encodes only the utterance plus a margin (candle slices the
//! positional table to the input length), which is several times faster; see
//! docs/benchmarks.md for the measured speed and accuracy of both.

use super::ct2;
use super::mel::mel_filters;
use super::vocab::Vocabulary;
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, audio, model::Whisper};
use std::collections::HashMap;
use std::path::Path;

/// How much audio context the encoder sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderWindow {
    /// The fixed 30 s window Whisper was trained on (slowest, reference accuracy).
    Full,
    /// The utterance plus `pad_ms` of silence, at least `min_ms` in total.
    Utterance { pad_ms: u32, min_ms: u32 },
}

impl Default for EncoderWindow {
    fn default() -> Self {
        Self::Utterance {
            pad_ms: 1_000,
            min_ms: 3_000,
        }
    }
}

/// Longest text a single utterance decodes to (Whisper's own limit is 224 tokens).
const MAX_DECODE_TOKENS: usize = 128;

/// Tokens a second of audio may decode to: fast speech is about 4 words (6 tokens) a second.
/// Audio cut mid-word (an interim snapshot) can send the decoder into a repetition loop; this
/// bound ends it after a few steps instead of `MAX_DECODE_TOKENS`, which on a 2-core machine
/// costs seconds and delays the interims (and so the barge-in) that depend on it.
const TOKENS_PER_SECOND: usize = 10;

/// Where a decoding loop's repeats begin: when the tokens end with the same run of at least
/// three tokens three times over ("Please stop. Please stop. Please stop."), the index of the
/// second run, so that one copy is kept. Real speech seldom says a phrase three times running;
/// a decoder fed audio cut mid-word often does.
fn repetition_loop(tokens: &[u32]) -> Option<usize> {
    let n = tokens.len();
    (3..=n / 3).find_map(|run| {
        let last = &tokens[n - run..];
        let repeated = tokens[n - 3 * run..n - run]
            .chunks(run)
            .all(|chunk| chunk == last);
        repeated.then_some(n - 2 * run)
    })
}

/// Most tokens `samples` (16 kHz) may decode to.
fn token_budget(samples: usize) -> usize {
    (8 + samples * TOKENS_PER_SECOND / 16_000).min(MAX_DECODE_TOKENS)
}

/// Loaded Whisper weights and tables, shared by all inference threads.
#[derive(Clone)]
pub struct WhisperModel {
    model: Whisper,
    vocab: std::sync::Arc<Vocabulary>,
    filters: std::sync::Arc<Vec<f32>>,
}

impl WhisperModel {
    /// Loads `model.bin` and `vocabulary.txt` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(dir.join(super::models::WHISPER_MODEL)).map_err(|e| {
            format!(
                "cannot read {}: {e}",
                dir.join(super::models::WHISPER_MODEL).display()
            )
        })?;
        let vocab_text = std::fs::read_to_string(dir.join(super::models::WHISPER_VOCAB))
            .map_err(|e| format!("cannot read vocabulary: {e}"))?;
        let vocab = Vocabulary::parse(&vocab_text)?;
        let index = ct2::parse(&bytes)?;
        let dims = ct2::WhisperDims::infer(&index)?;
        let map = ct2::whisper_tensor_map(&index)?;
        let mut tensors = HashMap::with_capacity(map.len());
        for (name, source) in &map {
            let var = &index.variables[&source.ct2_name];
            let data = ct2::to_f32(&bytes, var, source.rows)?;
            let tensor = Tensor::from_vec(data, source.shape.as_slice(), &Device::Cpu)
                .map_err(|e| e.to_string())?;
            tensors.insert(name.clone(), tensor);
        }
        drop(bytes);
        let config = w::Config {
            num_mel_bins: map["model.encoder.conv1.weight"].shape[1],
            max_source_positions: w::N_FRAMES / 2,
            d_model: dims.d_model,
            // Every Whisper size uses 64-wide attention heads.
            encoder_attention_heads: dims.d_model / 64,
            encoder_layers: dims.encoder_layers,
            vocab_size: vocab.len(),
            max_target_positions: map["model.decoder.embed_positions.weight"].shape[0],
            decoder_attention_heads: dims.d_model / 64,
            decoder_layers: dims.decoder_layers,
            suppress_tokens: Vec::new(),
        };
        let filters = mel_filters(w::SAMPLE_RATE as f64, w::N_FFT, config.num_mel_bins);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let model = Whisper::load(&vb, config).map_err(|e| format!("cannot build Whisper: {e}"))?;
        Ok(Self {
            model,
            vocab: std::sync::Arc::new(vocab),
            filters: std::sync::Arc::new(filters),
        })
    }

    /// Transcribes 16 kHz mono audio in [-1, 1]. `cancelled` is polled between decoding steps;
    /// a cancelled transcription returns `Ok(None)`.
    pub fn transcribe(
        &mut self,
        samples: &[f32],
        window: EncoderWindow,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<String>, String> {
        let e = |e: candle_core::Error| e.to_string();
        let n_mels = self.model.config.num_mel_bins;
        let mel = audio::pcm_to_mel(&self.model.config, samples, &self.filters);
        let n_len = mel.len() / n_mels;
        let mel = Tensor::from_vec(mel, (1, n_mels, n_len), &Device::Cpu).map_err(e)?;
        let frames = encoder_frames(samples.len(), window).min(n_len);
        let mel = mel
            .narrow(2, 0, frames)
            .and_then(|m| m.contiguous())
            .map_err(e)?;
        if cancelled() {
            return Ok(None);
        }
        let features = self.model.encoder.forward(&mel, true).map_err(e)?;

        let vocab = &self.vocab;
        let mut tokens = vec![vocab.sot, vocab.no_timestamps];
        let prefix = tokens.len();
        for step in 0..token_budget(samples.len()) {
            if cancelled() {
                return Ok(None);
            }
            let input = Tensor::new(tokens.as_slice(), &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(e)?;
            let ys = self
                .model
                .decoder
                .forward(&input, &features, step == 0)
                .map_err(e)?;
            let last = ys.i((..1, tokens.len() - 1..)).map_err(e)?;
            let logits = self
                .model
                .decoder
                .final_linear(&last)
                .and_then(|l| l.i(0))
                .and_then(|l| l.i(0))
                .map_err(e)?;
            let next = best_text_token(&logits, vocab, tokens.len() == prefix).map_err(e)?;
            if next == vocab.eot {
                break;
            }
            tokens.push(next);
            if let Some(cut) = repetition_loop(&tokens[prefix..]) {
                tokens.truncate(prefix + cut);
                break;
            }
        }
        Ok(Some(vocab.decode(&tokens[prefix..]).trim().to_string()))
    }
}

/// Mel frames (10 ms each) the encoder sees; even, because the second convolution halves them.
pub fn encoder_frames(samples: usize, window: EncoderWindow) -> usize {
    let full = w::N_FRAMES;
    let frames = match window {
        EncoderWindow::Full => full,
        EncoderWindow::Utterance { pad_ms, min_ms } => {
            let audio_frames = samples.div_ceil(w::HOP_LENGTH);
            (audio_frames + pad_ms as usize / 10).max(min_ms as usize / 10)
        }
    };
    let frames = frames.min(full);
    frames + frames % 2
}

/// Greedy choice among text tokens and end-of-text (other special tokens are never chosen;
/// end-of-text is not allowed as the very first token, which would be an empty transcript of speech).
fn best_text_token(logits: &Tensor, vocab: &Vocabulary, first: bool) -> candle_core::Result<u32> {
    let logits: Vec<f32> = logits.to_dtype(DType::F32)?.to_vec1()?;
    let mut best = (vocab.eot, f32::NEG_INFINITY);
    for (id, &logit) in logits.iter().enumerate() {
        let id = id as u32;
        let allowed = !vocab.is_special(id) || (id == vocab.eot && !first);
        if allowed && logit > best.1 {
            best = (id, logit);
        }
    }
    Ok(best.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phrase_decoded_three_times_running_is_kept_once() {
        // "Please stop." as three tokens, looping.
        let looped = [7, 8, 9, 7, 8, 9, 7, 8, 9];
        assert_eq!(repetition_loop(&looped), Some(3));
        assert_eq!(repetition_loop(&[1, 2, 7, 8, 9, 7, 8, 9, 7, 8, 9]), Some(5));
        // Twice is speech, not a loop; so are short words said over and over ("no no no").
        assert_eq!(repetition_loop(&[7, 8, 9, 7, 8, 9]), None);
        assert_eq!(repetition_loop(&[4, 4, 4, 4, 4, 4]), None);
        assert_eq!(repetition_loop(&[5, 6, 5, 6, 5, 6]), None);
        assert_eq!(repetition_loop(&[]), None);
    }

    #[test]
    fn the_token_budget_grows_with_the_audio_up_to_the_cap() {
        assert_eq!(token_budget(16_000), 18, "1 s of audio");
        assert_eq!(token_budget(4 * 16_000), 48);
        assert_eq!(token_budget(60 * 16_000), MAX_DECODE_TOKENS);
    }

    #[test]
    fn utterance_window_covers_audio_plus_margin_and_stays_even() {
        let window = EncoderWindow::Utterance {
            pad_ms: 1_000,
            min_ms: 3_000,
        };
        assert_eq!(
            encoder_frames(16_000, window),
            300,
            "1 s audio -> 3 s minimum"
        );
        assert_eq!(
            encoder_frames(16_000 * 4 + 1, window),
            502,
            "4 s audio + 1 s pad, rounded to even"
        );
        assert_eq!(
            encoder_frames(16_000 * 40, window),
            3_000,
            "never beyond 30 s"
        );
        assert_eq!(encoder_frames(100, EncoderWindow::Full), 3_000);
    }

    #[cfg(feature = "local-tts")]
    #[test]
    fn transcribes_espeak_speech_with_both_windows_and_stops_when_cancelled() {
        let Some(models) = crate::providers::local::test_models() else {
            return;
        };
        let mut model = WhisperModel::load(&models.whisper_dir()).expect("load");
        let audio: Vec<f32> = crate::providers::local::test_speech("what is the weather in paris")
            .iter()
            .map(|&s| f32::from(s) / 32_768.0)
            .collect();
        for window in [EncoderWindow::default(), EncoderWindow::Full] {
            let text = model
                .transcribe(&audio, window, &|| false)
                .unwrap()
                .unwrap()
                .to_lowercase();
            for word in ["what", "weather", "paris"] {
                assert!(text.contains(word), "{window:?}: {text:?} lacks {word}");
            }
        }
        assert_eq!(
            model
                .transcribe(&audio, EncoderWindow::default(), &|| true)
                .unwrap(),
            None
        );
    }
}
