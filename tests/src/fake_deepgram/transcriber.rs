//! The fake's "recogniser": finds utterances in the received audio (loud frames that are voice
//! at the declared rate, see [`super::voice`]) and answers each with the next scripted
//! transcript, timed by audio time (not wall time), so results do not depend on how fast the
//! client sends.

use super::voice;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Scripted transcripts shared by all connections: an utterance takes the next one when it is
/// finalised (so a connection that drops mid-utterance does not use one up).
#[derive(Debug, Clone)]
pub struct Script {
    queue: Arc<Mutex<VecDeque<String>>>,
    fallback: String,
}

impl Script {
    pub fn new(utterances: Vec<String>, fallback: String) -> Self {
        Self {
            queue: Arc::new(Mutex::new(utterances.into())),
            fallback,
        }
    }

    fn peek(&self) -> String {
        let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.front().cloned().unwrap_or_else(|| self.fallback.clone())
    }

    fn consume(&self) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
    }
}

/// Stream options from the query string.
#[derive(Debug, Clone)]
pub struct Options {
    pub sample_rate: u32,
    pub interim_results: bool,
    pub endpointing_ms: u32,
    pub utterance_end_ms: Option<u32>,
    pub vad_events: bool,
    pub smart_format: bool,
    /// Frame RMS above which a 20 ms frame counts as speech.
    pub speech_rms: f64,
    /// Loud frames must also be voice at the declared rate (see [`super::voice`]).
    pub pitch_check: bool,
    pub request_id: String,
}

/// An utterance being heard.
#[derive(Debug)]
struct Utterance {
    text: String,
    speech_start_ms: f64,
    speech_end_ms: f64,
    silence_ms: f64,
    interims_sent: usize,
}

/// Per-connection recogniser state.
pub struct Transcriber {
    opts: Options,
    script: Script,
    frame: Vec<i16>,
    frame_len: usize,
    /// The previous frame and the current one: voice is judged over 40 ms.
    window: Vec<i16>,
    /// Audio received so far, ms.
    now_ms: f64,
    /// Everything before this is finalised.
    window_start_ms: f64,
    current: Option<Utterance>,
    /// End of the last finalised word, until `UtteranceEnd` is sent for it.
    last_word_end_ms: Option<f64>,
}

/// Milliseconds between interim results while speech goes on.
const INTERIM_EVERY_MS: f64 = 300.0;
/// Silence after which an empty final closes the window (as the real service does).
const SILENT_FINAL_MS: f64 = 2000.0;

impl Transcriber {
    pub fn new(opts: Options, script: Script) -> Self {
        let frame_len = (opts.sample_rate / 50).max(1) as usize;
        Self {
            opts,
            script,
            frame: Vec::with_capacity(frame_len),
            frame_len,
            window: vec![0; 2 * frame_len],
            now_ms: 0.0,
            window_start_ms: 0.0,
            current: None,
            last_word_end_ms: None,
        }
    }

    /// Audio received so far, in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.now_ms / 1000.0
    }

    /// How long the utterance being heard has lasted (audio time, ms); `None` between them.
    pub fn speaking_ms(&self) -> Option<f64> {
        self.current
            .as_ref()
            .map(|u| self.now_ms - u.speech_start_ms)
    }

    /// Takes audio in and returns the messages it triggers.
    pub fn push(&mut self, mut samples: &[i16], out: &mut Vec<Value>) {
        // Whole frames straight from the input (the usual case: clients send whole frames).
        while self.frame.is_empty() && samples.len() >= self.frame_len {
            let (frame, rest) = samples.split_at(self.frame_len);
            self.on_frame(frame, out);
            samples = rest;
        }
        for &s in samples {
            self.frame.push(s);
            if self.frame.len() == self.frame_len {
                let frame = std::mem::take(&mut self.frame);
                self.on_frame(&frame, out);
                self.frame = frame;
                self.frame.clear();
            }
        }
    }

    fn on_frame(&mut self, frame: &[i16], out: &mut Vec<Value>) {
        let energy: i64 = frame.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
        let rms = (energy as f64 / frame.len() as f64).sqrt();
        let frame_ms = 20.0;
        let start = self.now_ms;
        self.now_ms += frame_ms;
        self.window.drain(..frame.len());
        self.window.extend_from_slice(frame);
        let speech = rms >= self.opts.speech_rms
            && (!self.opts.pitch_check || voice::is_voice(&self.window, self.opts.sample_rate));
        let endpoint = f64::from(self.opts.endpointing_ms.max(100));
        match (&mut self.current, speech) {
            (None, true) => {
                if self.opts.vad_events {
                    out.push(json!({"type": "SpeechStarted", "channel": [0], "timestamp": round3(start / 1000.0)}));
                }
                self.current = Some(Utterance {
                    text: self.script.peek(),
                    speech_start_ms: start,
                    speech_end_ms: self.now_ms,
                    silence_ms: 0.0,
                    interims_sent: 0,
                });
                self.last_word_end_ms = None;
            }
            (Some(u), true) => {
                u.speech_end_ms = self.now_ms;
                u.silence_ms = 0.0;
                let due = ((self.now_ms - u.speech_start_ms) / INTERIM_EVERY_MS) as usize;
                if self.opts.interim_results && due > u.interims_sent {
                    u.interims_sent = due;
                    let (text, start, end) = (u.text.clone(), u.speech_start_ms, u.speech_end_ms);
                    let words = words_of(&text);
                    let shown = due
                        .min(words.len().saturating_sub(1))
                        .max(1)
                        .min(words.len());
                    out.push(self.results(&words[..shown], start, end, false, false, false));
                }
            }
            (Some(u), false) => {
                u.silence_ms += frame_ms;
                if u.silence_ms >= endpoint {
                    self.finish_utterance(true, false, out);
                }
            }
            (None, false) => {
                if let (Some(end), Some(gap)) = (self.last_word_end_ms, self.opts.utterance_end_ms)
                {
                    if self.opts.interim_results && self.now_ms - end >= f64::from(gap) {
                        out.push(json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round3(end / 1000.0)}));
                        self.last_word_end_ms = None;
                    }
                }
                if self.now_ms - self.window_start_ms >= SILENT_FINAL_MS {
                    out.push(self.empty_final(false));
                }
            }
        }
    }

    /// `Finalize`: finalise what is being heard now (or confirm with an empty final).
    pub fn finalize(&mut self, out: &mut Vec<Value>) {
        if self.current.is_some() {
            self.finish_utterance(false, true, out);
        } else {
            out.push(self.empty_final(true));
        }
    }

    /// `CloseStream`: finalise anything pending. The caller then sends `Metadata`.
    pub fn close(&mut self, out: &mut Vec<Value>) {
        if self.current.is_some() {
            self.finish_utterance(false, false, out);
        }
    }

    fn finish_utterance(&mut self, speech_final: bool, from_finalize: bool, out: &mut Vec<Value>) {
        let Some(u) = self.current.take() else { return };
        let words = words_of(&u.text);
        let msg = self.results(
            &words,
            u.speech_start_ms,
            u.speech_end_ms,
            true,
            speech_final,
            from_finalize,
        );
        out.push(msg);
        self.script.consume();
        self.window_start_ms = self.now_ms;
        self.last_word_end_ms = Some(u.speech_end_ms);
    }

    fn empty_final(&mut self, from_finalize: bool) -> Value {
        let msg = self.results(
            &[],
            self.window_start_ms,
            self.now_ms,
            true,
            false,
            from_finalize,
        );
        self.window_start_ms = self.now_ms;
        msg
    }

    /// A `Results` message over the current window with `words` spread across the speech.
    fn results(
        &self,
        words: &[&str],
        speech_start_ms: f64,
        speech_end_ms: f64,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> Value {
        let span = (speech_end_ms - speech_start_ms).max(1.0) / words.len().max(1) as f64;
        let word_values: Vec<Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let start = speech_start_ms + span * i as f64;
                let mut v = json!({
                    "word": normalise(w),
                    "start": round3(start / 1000.0),
                    "end": round3((start + span) / 1000.0),
                    "confidence": 0.99,
                });
                if self.opts.smart_format {
                    v["punctuated_word"] = json!(w);
                }
                v
            })
            .collect();
        let transcript = if self.opts.smart_format {
            words.join(" ")
        } else {
            words
                .iter()
                .map(|w| normalise(w))
                .collect::<Vec<_>>()
                .join(" ")
        };
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "start": round3(self.window_start_ms / 1000.0),
            "duration": round3((self.now_ms - self.window_start_ms) / 1000.0),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{
                "transcript": transcript,
                "confidence": if words.is_empty() { 0.0 } else { 0.99 },
                "words": word_values,
            }]},
            "metadata": {
                "request_id": self.opts.request_id,
                "model_uuid": "00000000-0000-4000-8000-000000000003",
                "model_info": {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"},
            },
        })
    }
}

fn words_of(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// The unformatted form of a word: lower case without punctuation.
fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .collect::<String>()
        .to_lowercase()
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::{silence, utterance};

    fn opts() -> Options {
        Options {
            sample_rate: 16_000,
            interim_results: true,
            endpointing_ms: 300,
            utterance_end_ms: Some(1000),
            vad_events: true,
            smart_format: true,
            speech_rms: 300.0,
            pitch_check: true,
            request_id: "r".into(),
        }
    }

    fn types(msgs: &[Value]) -> Vec<String> {
        msgs.iter()
            .map(|m| {
                let t = m["type"].as_str().unwrap_or("").to_string();
                if t == "Results" && m["is_final"] == true {
                    format!(
                        "Final:{}",
                        m["channel"]["alternatives"][0]["transcript"]
                            .as_str()
                            .unwrap()
                    )
                } else {
                    t
                }
            })
            .collect()
    }

    #[test]
    fn an_utterance_yields_speech_started_interims_final_and_utterance_end() {
        let script = Script::new(
            vec!["Hello there, friend.".into(), "Second one.".into()],
            "x".into(),
        );
        let mut t = Transcriber::new(opts(), script);
        let mut out = Vec::new();
        t.push(&silence(200), &mut out);
        t.push(&utterance(1000, 1500), &mut out);
        let kinds = types(&out);
        assert_eq!(kinds[0], "SpeechStarted");
        assert!(
            kinds.iter().filter(|k| *k == "Results").count() >= 2,
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&"Final:Hello there, friend.".to_string()),
            "{kinds:?}"
        );
        assert_eq!(kinds.last().unwrap(), "UtteranceEnd");
        let fin = out.iter().find(|m| m["is_final"] == true).unwrap();
        assert_eq!(fin["speech_final"], true);
        assert_eq!(
            fin["channel"]["alternatives"][0]["words"][0]["word"],
            "hello"
        );
        assert_eq!(
            fin["channel"]["alternatives"][0]["words"][1]["punctuated_word"],
            "there,"
        );
        out.clear();
        t.push(&utterance(600, 0), &mut out);
        t.finalize(&mut out);
        let fin = out.iter().find(|m| m["is_final"] == true).unwrap();
        assert_eq!(fin["from_finalize"], true);
        assert_eq!(
            fin["channel"]["alternatives"][0]["transcript"],
            "Second one."
        );
    }
}
