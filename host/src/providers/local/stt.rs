//! Offline speech-to-text provider (`local`): Whisper tiny.en on dedicated threads.
//!
//! Per session, an async task buffers the utterance ([`Segmenter`]) and hands it to the Whisper
//! threads when the speech pauses for 300 ms (the recogniser's own endpoint, so the words are
//! final while the host's VAD still waits out its hangover) or when the host sends `Finalize`
//! (its VAD end of speech), answering with `Final { speech_final: true }`. The utterance is
//! already being transcribed from the start of the pause (100 ms of quiet): when nothing was
//! said after it, that run is the final, so the words come one Whisper run sooner. While the
//! user speaks, an interim transcript of the audio so far is produced about once a second when
//! no other transcription of this stream is running (a snapshot cut mid-word is kept from
//! looping by the decoder's bounds, see `whisper.rs`).
//! Dropping the stream cancels a running transcription between decoding steps.

use super::annotations::without_annotations;
use super::segment::{Segmented, Segmenter};
use crate::providers::{
    ProviderError, ProviderErrorKind, SttEvent, SttInput, SttParams, SttProvider, SttStream, Word,
};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

const NAME: &str = "local";
/// Frames the session may queue ahead of the stream task (about 5 s of 20 ms frames).
const INPUT_QUEUE: usize = 256;
const EVENT_QUEUE: usize = 64;
/// Interim transcripts while speaking, every this much new speech.
const INTERIM_EVERY_SAMPLES: usize = 16_000;

/// A transcription job's answer: `Ok(None)` when cancelled.
type Transcript = Result<Option<String>, String>;

/// Runs transcriptions off the async runtime.
pub(crate) trait Transcriber: Send + Sync + 'static {
    /// Queues `audio` (16 kHz PCM16); the answer arrives on `reply`. `Err` when saturated.
    fn submit(&self, audio: Vec<i16>, reply: oneshot::Sender<Transcript>) -> Result<(), ()>;
}

/// The offline speech-to-text provider. Cheap to share: all sessions use one loaded model.
pub struct LocalStt {
    transcriber: Arc<dyn Transcriber>,
}

impl LocalStt {
    /// Loads Whisper tiny.en from `models` once per process (later calls share the first load).
    pub fn load(models: &super::LocalModels) -> Result<Arc<Self>, ProviderError> {
        #[cfg(feature = "local-stt")]
        {
            engine::shared(models).map(|transcriber| {
                Arc::new(Self {
                    transcriber: transcriber as Arc<dyn Transcriber>,
                })
            })
        }
        #[cfg(not(feature = "local-stt"))]
        {
            let _ = models;
            Err(super::feature_off("speech-to-text", "local-stt"))
        }
    }

    #[cfg(test)]
    pub(crate) fn with_transcriber(transcriber: Arc<dyn Transcriber>) -> Self {
        Self { transcriber }
    }
}

impl SttProvider for LocalStt {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Every 20 ms frame as it comes: the recogniser is in the process (no socket to spare
    /// writes on), and its endpoint detector sees the quiet after speech at once, not up to
    /// 80 ms late.
    fn audio_batch_samples(&self) -> usize {
        320
    }

    fn open(&self, _params: SttParams) -> SttStream {
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(run_stream(
            Arc::clone(&self.transcriber),
            input_rx,
            event_tx,
        ));
        SttStream {
            input: input_tx,
            events: event_rx,
        }
    }
}

/// What a transcription in flight is for.
#[derive(Debug, Clone, Copy)]
enum Job {
    /// The words so far of utterance `utterance`, while it is spoken (stale ones are dropped).
    Interim { utterance: u64 },
    /// The utterance `utterance` up to a pause, `voiced` samples long up to its last loud frame:
    /// its final if the quiet lasts to the endpoint, an interim otherwise.
    Speculative { utterance: u64, voiced: usize },
    /// A final: the utterance's start (ms) and length (samples).
    Final { start_ms: u32, len: usize },
}

/// A transcription in flight for this stream.
struct Pending {
    reply: oneshot::Receiver<Transcript>,
    job: Job,
}

/// A speculative transcription that finished while the pause went on.
struct Speculated {
    text: String,
    utterance: u64,
    voiced: usize,
}

/// The stream's task: buffers audio, transcribes at pauses, endpoints and `Finalize`.
///
/// At each pause of [`PAUSE_MS`](super::segment::PAUSE_MS) the utterance so far is transcribed
/// speculatively: if the quiet lasts to the endpoint (or the host finalizes first) and no voice
/// came after the pause, that transcription is the final, so the words arrive a Whisper run
/// sooner (about 250 ms for a short question on this machine). If the voice comes back, it is
/// cancelled; a finished one is sent as an interim.
async fn run_stream(
    transcriber: Arc<dyn Transcriber>,
    mut input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
) {
    let mut seg = Segmenter::new();
    let mut utterance_id: u64 = 0;
    let mut pending: Option<Pending> = None;
    let mut speculated: Option<Speculated> = None;
    // Finals waiting for the in-flight job: (audio, start ms).
    let mut finals: std::collections::VecDeque<(Vec<i16>, u32)> = Default::default();
    let mut last_interim_len = 0usize;
    let mut closing = false;

    loop {
        // Start the next final as soon as nothing runs.
        if pending.is_none() {
            if let Some((audio, start_ms)) = finals.pop_front() {
                let len = audio.len();
                match submit(&transcriber, audio) {
                    Ok(reply) => {
                        pending = Some(Pending {
                            reply,
                            job: Job::Final { start_ms, len },
                        })
                    }
                    Err(err) => {
                        if events.send(SttEvent::Error(err)).await.is_err() {
                            return;
                        }
                    }
                }
                continue;
            }
            if closing {
                return;
            }
        }

        tokio::select! {
            done = async { (&mut pending.as_mut().expect("guarded").reply).await }, if pending.is_some() => {
                let job = pending.take().expect("guarded").job;
                let current = |utterance: u64| utterance == utterance_id && seg.in_speech();
                // Only the user's words: a caption of a noise ("(water splashing)") is none.
                let done = done.map(|r| r.map(|t| t.map(|text| without_annotations(&text))));
                let event = match (done, job) {
                    (Ok(Ok(Some(text))), Job::Final { start_ms, len }) => Some(final_event(text, start_ms, len)),
                    (Ok(Err(reason)), Job::Final { .. }) => Some(SttEvent::Error(ProviderError::new(ProviderErrorKind::Protocol, NAME, reason))),
                    (Ok(Ok(Some(text))), Job::Interim { utterance }) if current(utterance) && !text.is_empty() => {
                        Some(SttEvent::Interim { words: words_of(&text, seg.utterance_start_ms(), seg.utterance_len()), text })
                    }
                    (Ok(Ok(Some(text))), Job::Speculative { utterance, voiced }) if current(utterance) => {
                        let interim = (!text.is_empty()).then(|| SttEvent::Interim {
                            words: words_of(&text, seg.utterance_start_ms(), voiced),
                            text: text.clone(),
                        });
                        speculated = Some(Speculated { text, utterance, voiced });
                        interim
                    }
                    _ => None,
                };
                if let Some(event) = event {
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
            msg = input.recv(), if !closing => {
                let end = match msg {
                    Some(SttInput::Audio(samples)) => match seg.push(&samples) {
                        Segmented::SpeechStarted => {
                            utterance_id += 1;
                            last_interim_len = 0;
                            speculated = None;
                            if events.send(SttEvent::SpeechStarted).await.is_err() {
                                return;
                            }
                            None
                        }
                        Segmented::Full | Segmented::Endpoint => Some(false),
                        Segmented::Pause => {
                            // Only when no final is ahead: finals go out in order.
                            let final_ahead = !finals.is_empty()
                                || pending.as_ref().is_some_and(|p| matches!(p.job, Job::Final { .. }));
                            if !final_ahead {
                                speculated = None;
                                let voiced = seg.utterance_len() - seg.quiet_samples();
                                // Replaces a running interim or speculation (their audio is older).
                                pending = submit(&transcriber, seg.snapshot()).ok().map(|reply| Pending {
                                    reply,
                                    job: Job::Speculative { utterance: utterance_id, voiced },
                                });
                                last_interim_len = seg.utterance_len();
                            }
                            None
                        }
                        Segmented::Resumed => {
                            speculated = None;
                            if pending.as_ref().is_some_and(|p| matches!(p.job, Job::Speculative { .. })) {
                                pending = None;
                            }
                            None
                        }
                        Segmented::Nothing => None,
                    },
                    Some(SttInput::Finalize) => Some(true),
                    Some(SttInput::Close) | None => {
                        closing = true;
                        Some(false)
                    }
                };
                if let Some(finalize) = end {
                    // The end of the utterance: its speculative transcription is the final if
                    // no voice came after the pause it started at.
                    let voiced = seg.utterance_len() - seg.quiet_samples();
                    let start_ms = seg.utterance_start_ms();
                    let heard = seg.take();
                    let len = heard.as_ref().map_or(0, Vec::len);
                    let covers = |utterance: u64, spoken: usize| {
                        heard.is_some() && utterance == utterance_id && spoken >= voiced
                    };
                    if let Some(done) = speculated.take().filter(|s| covers(s.utterance, s.voiced)) {
                        if events.send(final_event(done.text, start_ms, len)).await.is_err() {
                            return;
                        }
                    } else if let Some(p) = pending.as_mut().filter(|p| {
                        matches!(p.job, Job::Speculative { utterance, voiced } if covers(utterance, voiced))
                    }) {
                        p.job = Job::Final { start_ms, len };
                    } else {
                        // A running interim or speculation is now stale; the final replaces it
                        // rather than wait behind it (with the reply that waits for the words).
                        if pending.as_ref().is_some_and(|p| !matches!(p.job, Job::Final { .. })) {
                            pending = None;
                        }
                        match heard {
                            Some(audio) => finals.push_back((audio, start_ms)),
                            None if finalize && finals.is_empty() && pending.is_none() => {
                                // Nothing was heard: still answer, so the session is not left waiting.
                                let empty = SttEvent::Final { text: String::new(), words: Vec::new(), speech_final: true, from_finalize: true };
                                if events.send(empty).await.is_err() {
                                    return;
                                }
                            }
                            None => {}
                        }
                    }
                    continue;
                }
                let len = seg.utterance_len();
                if pending.is_none() && finals.is_empty() && speculated.is_none() && len >= last_interim_len + INTERIM_EVERY_SAMPLES {
                    last_interim_len = len;
                    // Interims are best effort: a saturated pool just skips them.
                    if let Ok(reply) = submit(&transcriber, seg.snapshot()) {
                        pending = Some(Pending { reply, job: Job::Interim { utterance: utterance_id } });
                    }
                }
            }
            _ = events.closed() => return,
        }
    }
}

fn submit(
    transcriber: &Arc<dyn Transcriber>,
    audio: Vec<i16>,
) -> Result<oneshot::Receiver<Transcript>, ProviderError> {
    let (tx, rx) = oneshot::channel();
    transcriber.submit(audio, tx).map_err(|()| {
        ProviderError::new(
            ProviderErrorKind::Unavailable,
            NAME,
            "offline speech-to-text is saturated (too many concurrent sessions)",
        )
    })?;
    Ok(rx)
}

fn final_event(text: String, start_ms: u32, samples: usize) -> SttEvent {
    SttEvent::Final {
        words: words_of(&text, start_ms, samples),
        text,
        speech_final: true,
        from_finalize: false,
    }
}

/// Words with approximate timing: Whisper is decoded without timestamps here, so the words are
/// spread evenly over the utterance. Confidence is not estimated (reported as 1.0).
fn words_of(text: &str, start_ms: u32, samples: usize) -> Vec<Word> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let span_ms = (samples / 16) as u32;
    let n = words.len().max(1) as u32;
    words
        .iter()
        .enumerate()
        .map(|(i, w)| Word {
            word: w
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase(),
            start_ms: start_ms + span_ms * i as u32 / n,
            end_ms: start_ms + span_ms * (i as u32 + 1) / n,
            confidence: 1.0,
        })
        .collect()
}

#[cfg(feature = "local-stt")]
mod engine {
    //! The Whisper worker pool, loaded once per process.
    use super::{Transcriber, Transcript};
    use crate::providers::local::whisper::{EncoderWindow, WhisperModel};
    use crate::providers::local::worker::WorkerPool;
    use crate::providers::local::{not_installed, LocalModels};
    use crate::providers::ProviderError;
    use std::sync::{Arc, Mutex};
    use tokio::sync::oneshot;

    /// Jobs queued beyond the running ones before new work is refused.
    const QUEUE: usize = 32;

    pub(crate) struct WhisperPool {
        pool: WorkerPool<WhisperModel>,
    }

    impl Transcriber for WhisperPool {
        fn submit(&self, audio: Vec<i16>, reply: oneshot::Sender<Transcript>) -> Result<(), ()> {
            self.pool
                .try_submit(Box::new(move |model: &mut WhisperModel| {
                    if reply.is_closed() {
                        return;
                    }
                    let samples: Vec<f32> =
                        audio.iter().map(|&s| f32::from(s) / 32_768.0).collect();
                    let result =
                        model.transcribe(&samples, EncoderWindow::default(), &|| reply.is_closed());
                    let _ = reply.send(result);
                }))
                .map_err(|_| ())
        }
    }

    static SHARED: Mutex<Option<Arc<WhisperPool>>> = Mutex::new(None);

    /// The process-wide Whisper pool, loading the model on first use.
    pub(crate) fn shared(models: &LocalModels) -> Result<Arc<WhisperPool>, ProviderError> {
        let mut guard = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = guard.as_ref() {
            return Ok(Arc::clone(pool));
        }
        let dir = models.whisper_dir();
        if !dir
            .join(crate::providers::local::models::WHISPER_MODEL)
            .is_file()
        {
            return Err(not_installed(
                "speech-to-text model (Whisper tiny.en)",
                &dir,
                &models.dir,
            ));
        }
        let model = WhisperModel::load(&dir).map_err(|reason| {
            ProviderError::new(
                crate::providers::ProviderErrorKind::NotInstalled,
                "local",
                format!("cannot load Whisper from {}: {reason}; reinstall with `voice-host models install`", dir.display()),
            )
        })?;
        // One thread: candle already spreads each matrix product over all cores.
        let pool =
            WorkerPool::spawn("whisper", 1, QUEUE, move || Ok(model.clone())).map_err(|e| {
                ProviderError::new(
                    crate::providers::ProviderErrorKind::Unavailable,
                    "local",
                    e.to_string(),
                )
            })?;
        let pool = Arc::new(WhisperPool { pool });
        *guard = Some(Arc::clone(&pool));
        Ok(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers with the number of samples it was given, on its own thread.
    struct CountingTranscriber {
        calls: AtomicUsize,
    }

    impl Transcriber for CountingTranscriber {
        fn submit(&self, audio: Vec<i16>, reply: oneshot::Sender<Transcript>) -> Result<(), ()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = reply.send(Ok(Some(format!("heard {} samples", audio.len()))));
            });
            Ok(())
        }
    }

    fn tone(ms: usize) -> Vec<i16> {
        (0..ms * 16)
            .map(|i| (8_000.0 * (i as f32 * 0.0864).sin()) as i16)
            .collect()
    }

    #[tokio::test]
    async fn finalize_transcribes_the_buffered_utterance_as_speech_final() {
        let stt = LocalStt::with_transcriber(Arc::new(CountingTranscriber {
            calls: AtomicUsize::new(0),
        }));
        let mut stream = stt.open(SttParams::default());
        for _ in 0..25 {
            stream
                .input
                .send(SttInput::Audio(vec![0; 320]))
                .await
                .unwrap();
        }
        for chunk in tone(600).chunks(320) {
            stream
                .input
                .send(SttInput::Audio(chunk.to_vec()))
                .await
                .unwrap();
        }
        stream.input.send(SttInput::Finalize).await.unwrap();
        assert_eq!(stream.events.recv().await, Some(SttEvent::SpeechStarted));
        match stream.events.recv().await {
            Some(SttEvent::Final {
                text,
                words,
                speech_final,
                ..
            }) => {
                assert!(speech_final);
                assert!(text.starts_with("heard "), "{text}");
                let n: usize = text.split_whitespace().nth(1).unwrap().parse().unwrap();
                assert!(
                    (9_600..=9_600 + 4_800).contains(&n),
                    "utterance plus pre-roll, got {n}"
                );
                assert_eq!(words.len(), 3);
                assert!(words[0].start_ms < words[2].end_ms);
            }
            other => panic!("expected a final, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn finalize_without_speech_answers_an_empty_final() {
        let stt = LocalStt::with_transcriber(Arc::new(CountingTranscriber {
            calls: AtomicUsize::new(0),
        }));
        let mut stream = stt.open(SttParams::default());
        stream
            .input
            .send(SttInput::Audio(vec![0; 3_200]))
            .await
            .unwrap();
        stream.input.send(SttInput::Finalize).await.unwrap();
        assert_eq!(
            stream.events.recv().await,
            Some(SttEvent::Final {
                text: String::new(),
                words: vec![],
                speech_final: true,
                from_finalize: true,
            })
        );
    }

    /// Answers every job with the same text, as Whisper might for a noise.
    struct FixedTranscriber(&'static str);

    impl Transcriber for FixedTranscriber {
        fn submit(&self, _audio: Vec<i16>, reply: oneshot::Sender<Transcript>) -> Result<(), ()> {
            let _ = reply.send(Ok(Some(self.0.to_string())));
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_caption_of_a_noise_is_not_the_user_s_words() {
        for (heard, said) in [
            ("(water splashing)", ""),
            ("[laughter] Book it for tonight.", "Book it for tonight."),
        ] {
            let stt = LocalStt::with_transcriber(Arc::new(FixedTranscriber(heard)));
            let mut stream = stt.open(SttParams::default());
            stream.input.send(SttInput::Audio(tone(600))).await.unwrap();
            stream.input.send(SttInput::Finalize).await.unwrap();
            assert_eq!(stream.events.recv().await, Some(SttEvent::SpeechStarted));
            match stream.events.recv().await {
                Some(SttEvent::Final { text, words, .. }) => {
                    assert_eq!(text, said, "{heard:?}");
                    assert_eq!(words.len(), said.split_whitespace().count(), "{heard:?}");
                }
                other => panic!("expected a final, got {other:?}"),
            }
        }
    }

    /// Never answers its first job (an interim still running), answers the rest at once.
    struct SlowFirstTranscriber {
        held: std::sync::Mutex<Vec<oneshot::Sender<Transcript>>>,
    }

    impl Transcriber for SlowFirstTranscriber {
        fn submit(&self, audio: Vec<i16>, reply: oneshot::Sender<Transcript>) -> Result<(), ()> {
            let mut held = self.held.lock().unwrap();
            if held.is_empty() {
                held.push(reply);
            } else {
                let _ = reply.send(Ok(Some(format!("heard {} samples", audio.len()))));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_endpoint_final_does_not_wait_for_a_running_interim() {
        let transcriber = Arc::new(SlowFirstTranscriber {
            held: Default::default(),
        });
        let stt = LocalStt::with_transcriber(transcriber.clone());
        let mut stream = stt.open(SttParams::default());
        // 1.2 s of speech (an interim starts after the first second), then quiet past the
        // recogniser's endpoint; no `Finalize` from the host.
        let quiet = 16 * (crate::providers::local::segment::ENDPOINT_MS + 100);
        let audio = [tone(1_200), vec![0; quiet]].concat();
        for chunk in audio.chunks(320) {
            stream
                .input
                .send(SttInput::Audio(chunk.to_vec()))
                .await
                .unwrap();
        }
        let final_event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                match stream.events.recv().await {
                    Some(SttEvent::Final { speech_final, .. }) => return speech_final,
                    Some(_) => {}
                    None => panic!("stream ended without a final"),
                }
            }
        })
        .await;
        assert_eq!(final_event, Ok(true), "the endpoint's final came");
        let held = transcriber.held.lock().unwrap();
        assert!(
            held.len() == 1 && held[0].is_closed(),
            "the interim was given up"
        );
    }

    /// Sends `audio` in 20 ms frames, letting the transcriber's thread answer as real time would.
    async fn speak(stream: &mut SttStream, audio: &[i16]) -> Vec<SttEvent> {
        let mut events = Vec::new();
        for chunk in audio.chunks(320) {
            stream
                .input
                .send(SttInput::Audio(chunk.to_vec()))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            while let Ok(event) = stream.events.try_recv() {
                events.push(event);
            }
        }
        events
    }

    fn samples_heard(text: &str) -> usize {
        text.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn the_transcription_started_at_the_pause_is_the_final_at_the_endpoint() {
        let transcriber = Arc::new(CountingTranscriber {
            calls: AtomicUsize::new(0),
        });
        let stt = LocalStt::with_transcriber(transcriber.clone());
        let mut stream = stt.open(SttParams::default());
        let quiet = 16 * (crate::providers::local::segment::ENDPOINT_MS + 100);
        let events = speak(
            &mut stream,
            &[vec![0; 3_200], tone(600), vec![0; quiet]].concat(),
        )
        .await;
        let interim = events.iter().find_map(|e| match e {
            SttEvent::Interim { text, .. } => Some(text.clone()),
            _ => None,
        });
        let final_text = events.iter().find_map(|e| match e {
            SttEvent::Final { text, .. } => Some(text.clone()),
            _ => None,
        });
        let final_text = final_text.expect("the endpoint's final");
        assert_eq!(
            transcriber.calls.load(Ordering::SeqCst),
            1,
            "one Whisper run for the utterance"
        );
        assert_eq!(interim.as_deref(), Some(final_text.as_str()));
        let pause = 16 * crate::providers::local::segment::PAUSE_MS;
        let n = samples_heard(&final_text);
        assert!(
            n >= 9_600 + pause && n <= 9_600 + pause + 4_800,
            "the speech up to the pause plus pre-roll, got {n}"
        );
    }

    #[tokio::test]
    async fn voice_after_the_pause_is_in_the_final() {
        let transcriber = Arc::new(CountingTranscriber {
            calls: AtomicUsize::new(0),
        });
        let stt = LocalStt::with_transcriber(transcriber.clone());
        let mut stream = stt.open(SttParams::default());
        let quiet = 16 * (crate::providers::local::segment::ENDPOINT_MS + 100);
        let audio = [
            vec![0; 3_200],
            tone(600),
            vec![0; 200 * 16],
            tone(400),
            vec![0; quiet],
        ]
        .concat();
        let events = speak(&mut stream, &audio).await;
        let finals: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                SttEvent::Final { text, .. } => Some(samples_heard(text)),
                _ => None,
            })
            .collect();
        assert_eq!(finals.len(), 1, "one final: {events:?}");
        assert!(
            finals[0] >= (600 + 200 + 400) * 16,
            "the final covers the voice after the pause: {}",
            finals[0]
        );
        assert_eq!(transcriber.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_speculation_is_not_the_final_when_one_batch_holds_the_return_of_the_voice() {
        let transcriber = Arc::new(CountingTranscriber {
            calls: AtomicUsize::new(0),
        });
        let stt = LocalStt::with_transcriber(transcriber.clone());
        let mut stream = stt.open(SttParams::default());
        let mut events = speak(
            &mut stream,
            &[vec![0; 3_200], tone(600), vec![0; 200 * 16]].concat(),
        )
        .await;
        // The voice's return, its next pause and the endpoint in one message: the segmenter
        // reports only the endpoint.
        let quiet = 16 * (crate::providers::local::segment::ENDPOINT_MS + 100);
        events.extend(speak_at_once(&mut stream, [tone(400), vec![0; quiet]].concat()).await);
        let n = events
            .iter()
            .find_map(|e| match e {
                SttEvent::Final { text, .. } => Some(samples_heard(text)),
                _ => None,
            })
            .expect("a final");
        assert!(
            n >= (600 + 200 + 400) * 16,
            "the final covers the voice after the pause: {n}"
        );
    }

    async fn speak_at_once(stream: &mut SttStream, audio: Vec<i16>) -> Vec<SttEvent> {
        stream.input.send(SttInput::Audio(audio)).await.unwrap();
        let mut events = Vec::new();
        while let Ok(Some(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(500), stream.events.recv()).await
        {
            let done = matches!(event, SttEvent::Final { .. });
            events.push(event);
            if done {
                break;
            }
        }
        events
    }

    #[tokio::test]
    async fn long_speech_gets_interim_results_before_the_final() {
        let stt = LocalStt::with_transcriber(Arc::new(CountingTranscriber {
            calls: AtomicUsize::new(0),
        }));
        let mut stream = stt.open(SttParams::default());
        let mut saw_interim = false;
        for chunk in tone(3_000).chunks(320) {
            stream
                .input
                .send(SttInput::Audio(chunk.to_vec()))
                .await
                .unwrap();
            // Give the interim job a chance to answer, as real-time audio would.
            tokio::task::yield_now().await;
            while let Ok(event) = stream.events.try_recv() {
                saw_interim |= matches!(event, SttEvent::Interim { .. });
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        stream.input.send(SttInput::Finalize).await.unwrap();
        loop {
            match stream.events.recv().await {
                Some(SttEvent::Interim { .. }) => saw_interim = true,
                Some(SttEvent::Final { speech_final, .. }) => {
                    assert!(speech_final);
                    break;
                }
                Some(_) => {}
                None => panic!("stream ended without a final"),
            }
        }
        assert!(
            saw_interim,
            "3 s of speech should produce an interim result"
        );
    }
}
