//! Offline text-to-speech provider (`local`): espeak-ng, one sentence at a time, on a dedicated
//! thread. Audio streams out in ~100 ms chunks as espeak-ng produces them, resampled to the
//! session's preferred rate; dropping the stream aborts the sentence being synthesised.

use crate::audio::Resampler;
use crate::providers::{
    ProviderError, ProviderErrorKind, TtsEvent, TtsInput, TtsParams, TtsProvider, TtsStream,
};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

const NAME: &str = "local";
const INPUT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 64;

/// One sentence to synthesise.
pub(crate) struct Utterance {
    pub text: String,
    pub voice: Option<String>,
    /// Sample rate the session wants (0 = espeak-ng's own).
    pub sample_rate: u32,
}

/// Runs syntheses off the async runtime.
pub(crate) trait Synthesizer: Send + Sync + 'static {
    /// Queues a sentence; audio chunks go to `events`, then `done` fires (with an error message
    /// if synthesis failed). `Err` when saturated.
    fn submit(
        &self,
        utterance: Utterance,
        events: mpsc::Sender<TtsEvent>,
        done: oneshot::Sender<Result<(), String>>,
    ) -> Result<(), ()>;
}

/// The offline text-to-speech provider (one espeak-ng per process, shared by all sessions).
pub struct LocalTts {
    synth: Arc<dyn Synthesizer>,
}

impl LocalTts {
    /// Opens libespeak-ng (once per process).
    pub fn load() -> Result<Arc<Self>, ProviderError> {
        #[cfg(feature = "local-tts")]
        {
            engine::shared().map(|synth| {
                Arc::new(Self {
                    synth: synth as Arc<dyn Synthesizer>,
                })
            })
        }
        #[cfg(not(feature = "local-tts"))]
        {
            Err(super::feature_off("text-to-speech", "local-tts"))
        }
    }
}

impl TtsProvider for LocalTts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn open(&self, params: TtsParams) -> TtsStream {
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(run_stream(
            Arc::clone(&self.synth),
            params,
            input_rx,
            event_tx,
        ));
        TtsStream {
            input: input_tx,
            events: event_rx,
        }
    }
}

async fn run_stream(
    synth: Arc<dyn Synthesizer>,
    params: TtsParams,
    mut input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    loop {
        let msg = tokio::select! {
            msg = input.recv() => msg,
            _ = events.closed() => return,
        };
        match msg {
            Some(TtsInput::Text(text)) if !text.trim().is_empty() => {
                let (done_tx, done_rx) = oneshot::channel();
                let utterance = Utterance {
                    text,
                    voice: params.voice.clone(),
                    sample_rate: params.preferred_rate,
                };
                if synth.submit(utterance, events.clone(), done_tx).is_err() {
                    let err = ProviderError::new(
                        ProviderErrorKind::Unavailable,
                        NAME,
                        "offline text-to-speech is saturated (too many concurrent sessions)",
                    );
                    let _ = events.send(TtsEvent::Error(err)).await;
                    return;
                }
                match done_rx.await {
                    Ok(Ok(())) => {}
                    Ok(Err(reason)) => {
                        let err = ProviderError::new(ProviderErrorKind::Protocol, NAME, reason);
                        let _ = events.send(TtsEvent::Error(err)).await;
                        return;
                    }
                    // The job was dropped: the stream is being torn down.
                    Err(_) => return,
                }
            }
            Some(TtsInput::Text(_)) => {}
            Some(TtsInput::Flush) => {
                if events.send(TtsEvent::Done).await.is_err() {
                    return;
                }
            }
            None => return,
        }
    }
}

/// Streams resampled chunks to `events`; `false` once the receiver is gone.
pub(crate) struct ChunkSender {
    events: mpsc::Sender<TtsEvent>,
    resampler: Option<Resampler>,
    rate: u32,
    scratch: Vec<i16>,
}

impl ChunkSender {
    /// Converts from `native_rate` to `wanted` (0 or an unsupported rate keeps the native one).
    pub(crate) fn new(events: mpsc::Sender<TtsEvent>, native_rate: u32, wanted: u32) -> Self {
        let resampler = (wanted != 0 && wanted != native_rate)
            .then(|| Resampler::new(native_rate, wanted).ok())
            .flatten();
        let rate = if resampler.is_some() {
            wanted
        } else {
            native_rate
        };
        Self {
            events,
            resampler,
            rate,
            scratch: Vec::new(),
        }
    }

    /// Sends one chunk (blocking: call from an inference thread).
    pub(crate) fn send(&mut self, samples: &[i16]) -> bool {
        if self.events.is_closed() {
            return false;
        }
        let out = match self.resampler.as_mut() {
            Some(r) => {
                self.scratch.clear();
                r.process(samples, &mut self.scratch);
                std::mem::take(&mut self.scratch)
            }
            None => samples.to_vec(),
        };
        self.emit(out)
    }

    /// Sends what the resampler still holds (end of a sentence).
    pub(crate) fn finish(&mut self) -> bool {
        let Some(r) = self.resampler.as_mut() else {
            return true;
        };
        let mut tail = Vec::new();
        r.flush(&mut tail);
        self.emit(tail)
    }

    fn emit(&self, samples: Vec<i16>) -> bool {
        if samples.is_empty() {
            return !self.events.is_closed();
        }
        let event = TtsEvent::Audio {
            samples,
            sample_rate: self.rate,
            alignment: None,
        };
        self.events.blocking_send(event).is_ok()
    }
}

#[cfg(feature = "local-tts")]
mod engine {
    //! The espeak-ng thread.
    use super::{ChunkSender, Synthesizer, Utterance};
    use crate::providers::local::espeak::Espeak;
    use crate::providers::local::worker::WorkerPool;
    use crate::providers::{ProviderError, ProviderErrorKind, TtsEvent};
    use std::sync::{Arc, Mutex};
    use tokio::sync::{mpsc, oneshot};

    /// Sentences queued beyond the running one before new work is refused.
    const QUEUE: usize = 64;

    pub(crate) struct EspeakPool {
        pool: WorkerPool<&'static Espeak>,
    }

    static SHARED: Mutex<Option<Arc<EspeakPool>>> = Mutex::new(None);

    pub(crate) fn shared() -> Result<Arc<EspeakPool>, ProviderError> {
        let mut guard = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = guard.as_ref() {
            return Ok(Arc::clone(pool));
        }
        let espeak = Espeak::get().map_err(|reason| {
            ProviderError::new(
                ProviderErrorKind::NotInstalled,
                "local",
                format!("offline text-to-speech unavailable: {reason}; run `scripts/install-deps.sh` (apt-get install espeak-ng)"),
            )
        })?;
        // One thread: espeak-ng is a process-wide singleton and far faster than real time.
        let pool = WorkerPool::spawn("espeak", 1, QUEUE, move || Ok(espeak)).map_err(|e| {
            ProviderError::new(ProviderErrorKind::Unavailable, "local", e.to_string())
        })?;
        let pool = Arc::new(EspeakPool { pool });
        *guard = Some(Arc::clone(&pool));
        Ok(pool)
    }

    impl Synthesizer for EspeakPool {
        fn submit(
            &self,
            utterance: Utterance,
            events: mpsc::Sender<TtsEvent>,
            done: oneshot::Sender<Result<(), String>>,
        ) -> Result<(), ()> {
            self.pool
                .try_submit(Box::new(move |espeak: &mut &'static Espeak| {
                    let mut out =
                        ChunkSender::new(events, espeak.sample_rate(), utterance.sample_rate);
                    let result = espeak
                        .synthesize(
                            &utterance.text,
                            utterance.voice.as_deref(),
                            None,
                            &mut |s: &[i16]| out.send(s),
                        )
                        .map(|completed| {
                            if completed {
                                out.finish();
                            }
                        });
                    let _ = done.send(result);
                }))
                .map_err(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Produces a 100 ms tone per sentence at 22,050 Hz, like espeak-ng, on its own thread.
    struct ToneSynth;

    impl Synthesizer for ToneSynth {
        fn submit(
            &self,
            u: Utterance,
            events: mpsc::Sender<TtsEvent>,
            done: oneshot::Sender<Result<(), String>>,
        ) -> Result<(), ()> {
            std::thread::spawn(move || {
                let mut out = ChunkSender::new(events, 22_050, u.sample_rate);
                let tone: Vec<i16> = (0..2_205)
                    .map(|i| ((i as f32 * 0.1).sin() * 8_000.0) as i16)
                    .collect();
                out.send(&tone);
                out.finish();
                let _ = done.send(Ok(()));
            });
            Ok(())
        }
    }

    #[tokio::test]
    async fn sentences_become_audio_at_the_requested_rate_then_done_after_flush() {
        let tts = LocalTts {
            synth: Arc::new(ToneSynth),
        };
        let mut stream = tts.open(TtsParams {
            preferred_rate: 16_000,
            ..Default::default()
        });
        stream
            .input
            .send(TtsInput::Text("Hello there.".into()))
            .await
            .unwrap();
        stream
            .input
            .send(TtsInput::Text("How are you?".into()))
            .await
            .unwrap();
        stream.input.send(TtsInput::Flush).await.unwrap();
        let mut samples = 0;
        loop {
            match stream.events.recv().await.expect("stream ended early") {
                TtsEvent::Audio {
                    samples: s,
                    sample_rate,
                    ..
                } => {
                    assert_eq!(sample_rate, 16_000);
                    samples += s.len();
                }
                TtsEvent::Done => break,
                TtsEvent::Error(e) => panic!("{e}"),
            }
        }
        // Two 100 ms sentences at 16 kHz.
        assert!((3_000..=3_400).contains(&samples), "{samples}");
    }
}
