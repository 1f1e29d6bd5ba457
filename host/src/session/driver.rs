//! The I/O side of a session: one task that feeds the orchestrator with client audio and
//! messages, provider streams, plug-in answers and timers, and carries out its actions.

use super::events::{Action, Event, TurnEnd};
use super::host_share::HostShare;
use super::orchestrator::{Orchestrator, OrchestratorConfig};
use super::outbound::SendError;
use super::plugin_worker::{self, Answer, Request};
use super::turn_audio::TurnAudio;
use super::{Inbound, OutboundTx, SessionDeps, StartParams};
use crate::audio::{Encoding, InputPipeline, OutputPipeline, VadTransition};
use crate::behaviour::{joined_runs, TurnEvent, TurnTrigger};
use crate::providers::{
    LlmEvent, LlmRequest, SttInput, SttParams, SttStream, TtsEvent, TtsInput, TtsParams,
    TtsSession, TtsStream,
};
use crate::resume::{Saver, Snapshot};
use crate::transport::protocol::{close, ClientMessage, ServerMessage};
use crate::turn::{ModelKind, ModelOutcome, ReadAhead, WordsSession};
use futures_util::{Stream, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

struct Driver {
    deps: Arc<SessionDeps>,
    start: StartParams,
    /// The session clock's zero. Tokio's clock, so a test can drive the session on virtual time.
    epoch: tokio::time::Instant,
    orch: Orchestrator,
    /// Decodes, frames and runs the VAD on the client's audio.
    input: InputPipeline,
    out: OutboundTx,
    /// Bytes of one ms of output audio.
    out_bytes_per_ms: u64,
    stt_in: mpsc::Sender<SttInput>,
    stt_events: Option<mpsc::Receiver<crate::providers::SttEvent>>,
    /// Audio gathered for the recogniser, sent when it holds `stt_batch_samples`
    /// ([`crate::providers::SttProvider::audio_batch_samples`]).
    stt_batch: Vec<i16>,
    stt_batch_samples: usize,
    llm_turn: u32,
    llm_rx: Option<mpsc::Receiver<LlmEvent>>,
    /// Opens each reply's speech stream; may keep one provider connection for the session.
    tts: Box<dyn TtsSession>,
    tts_turn: u32,
    tts_in: Option<mpsc::Sender<TtsInput>>,
    tts_rx: Option<mpsc::Receiver<TtsEvent>>,
    output: OutputPipeline,
    plugins: mpsc::UnboundedSender<Request>,
    plugin_cx: plugin_worker::Context,
    host_share: HostShare,
    actions: Vec<Action>,
    closing: bool,
    /// Writes the session's snapshot for resume (resumable sessions only).
    saver: Option<Saver>,
    /// The memory revision last handed to the saver.
    saved_revision: u64,
    /// The client sent `stop`: the conversation is over, nothing to resume.
    stopped_by_client: bool,
    /// The session's trace, when traces are exported.
    trace: Option<crate::telemetry::SessionTrace>,
    /// The end-of-turn model and the audio it judges (a turn plug-in and a model only).
    turn_model: Option<(crate::turn::TurnModel, TurnAudio)>,
    /// The model's judgement of the current silence, shared with the tasks that run it, so a
    /// question about new words in the same silence gets it (waiting for it when it is due).
    judgement: Arc<watch::Sender<Judgement>>,
    /// The text end-of-turn model's reader for this session (a turn plug-in and a model only).
    words: Option<WordsSession>,
    /// The words last read ahead (agent sentence, words), to read again only a few words on.
    words_read: Option<(String, String)>,
}

/// The end-of-turn model's answer for a question: known now, or to come.
enum AudioJudgement {
    Known(Option<f32>),
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = Option<f32>> + Send>>),
}

/// What the end-of-turn model said about the user's current silence.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Judgement {
    /// Bumped whenever the voice comes back or the turn is committed: a judgement of an older
    /// silence, or of audio that is no longer the turn's, is void.
    silence: u64,
    state: Judged,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Judged {
    /// Not judged (no pause yet, or the model gave no answer).
    Nothing,
    /// The model is running on this silence.
    Running,
    Probability(f32),
}

/// Counts a question to an end-of-turn model in `/metrics`, with what came of it.
fn count_model_answer(model: ModelKind, answer: &Result<f32, crate::turn::TurnModelError>) {
    crate::metrics::global().count_turn_model(model, ModelOutcome::of(answer));
}

/// How long a question about new words waits for a judgement still running, at most.
const JUDGEMENT_WAIT: Duration = Duration::from_millis(500);
/// How long a question waits for the text end-of-turn model, at most.
const WORDS_WAIT: Duration = Duration::from_millis(500);

/// Run a session until the client leaves or the orchestrator closes it. `inbound` is the
/// client's side, read by this task (no reader task or channel in between): it ends when the
/// client leaves, and is dropped as soon as it does.
pub async fn run(
    deps: Arc<SessionDeps>,
    start: StartParams,
    mut inbound: impl Stream<Item = Inbound> + Unpin,
    out: OutboundTx,
    mut shutdown: watch::Receiver<bool>,
) {
    // Pauses inside speech matter only to an end-of-turn policy; without one the VAD reports
    // none, so the session runs exactly as before.
    let turn_policy = deps.behaviours.asks_turn();
    let vad = deps.config.vad_config(turn_policy);
    let input = match InputPipeline::with_engine(start.input, vad, &deps.vad_engine) {
        Ok(p) => p,
        Err(e) => {
            let _ = out.json(ServerMessage::error("bad_audio_format", e, true).to_json());
            out.close(close::POLICY, "bad audio format");
            return;
        }
    };
    let orch_cfg = OrchestratorConfig {
        output: start.output,
        greeting: start.agent.greeting.clone(),
        turn_policy,
        ..deps.orchestrator.clone()
    };
    // The behaviours live in their own task (instantiating plug-ins runs their `init`, off the
    // async workers); answers come back on this channel.
    let (answers_tx, mut answers) = mpsc::channel(8);
    let plugin_cx = plugin_worker::Context {
        source: deps.behaviours.clone(),
        session_id: start.session_id.clone(),
        system_prompt: start.agent.system_prompt.clone(),
    };
    let plugins = plugin_worker::spawn(plugin_cx.clone(), answers_tx);
    let stt_batch_samples = deps.providers.stt.audio_batch_samples();
    let SttStream {
        input: stt_in,
        events: stt_events,
    } = deps.providers.stt.open(SttParams {
        session_id: start.session_id.clone(),
        language: Some(deps.config.stt_language.clone()),
    });
    let out_bytes_per_ms = u64::from(start.output.sample_rate / 1000).max(1)
        * match start.output.encoding {
            Encoding::Pcm16 => 2,
            Encoding::Mulaw => 1,
        };
    let orch = match start.resume.as_ref().and_then(|r| r.restored.as_ref()) {
        Some(snap) => Orchestrator::resumed(orch_cfg, &snap.memory, snap.next_turn),
        None => Orchestrator::new(orch_cfg),
    };
    let saver = start.resume.as_ref().map(|r| {
        Saver::spawn(
            deps.resume.clone(),
            start.session_id.clone(),
            r.token.hash().to_string(),
        )
    });
    let mut d = Driver {
        output: OutputPipeline::new(start.output),
        out_bytes_per_ms,
        orch,
        input,
        epoch: tokio::time::Instant::now(),
        out,
        stt_events: Some(stt_events),
        stt_in,
        stt_batch: Vec::with_capacity(stt_batch_samples),
        stt_batch_samples,
        llm_turn: 0,
        llm_rx: None,
        tts: deps.providers.tts.clone().session(&start.session_id),
        tts_turn: 0,
        tts_in: None,
        tts_rx: None,
        plugins,
        plugin_cx,
        host_share: HostShare::default(),
        actions: Vec::with_capacity(32),
        closing: false,
        saver,
        saved_revision: u64::MAX,
        stopped_by_client: false,
        trace: deps
            .telemetry
            .as_ref()
            .map(|t| t.session(&start.session_id)),
        turn_model: deps
            .turn_model
            .clone()
            .filter(|_| turn_policy)
            .map(|m| (m, TurnAudio::default())),
        judgement: Arc::new(
            watch::channel(Judgement {
                silence: 0,
                state: Judged::Nothing,
            })
            .0,
        ),
        words: deps
            .words_model
            .as_ref()
            .filter(|_| turn_policy)
            .map(|m| m.session()),
        words_read: None,
        deps,
        start,
    };
    let now = d.now();
    d.orch.start(now, &mut d.actions);
    d.apply_actions(Instant::now());
    d.save_if_changed();

    let mut draining = false;
    while !d.closing {
        let wake_at = d
            .orch
            .next_wakeup()
            .map(|at| d.epoch + Duration::from_millis(at));
        let sleep = async move {
            match wake_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // A fixed order for events ready at once, so that the same events give the same
        // conversation. The session's own work (plug-in answers, provider events) comes before
        // new client input, so a client that floods cannot hold back its providers' events
        // (and trip their stall watchdogs); the timer comes last, as every event also does the
        // work that fell due (`Orchestrator::advance`), and a timer always due could otherwise
        // shut out everything else.
        tokio::select! {
            biased;
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    d.feed(Event::Drain);
                }
            }
            Some(answer) = answers.recv() => d.on_answer(answer),
            ev = recv_opt(&mut d.stt_events) => match ev {
                Some(e) => {
                    d.feed(Event::Stt(e));
                    d.read_words_ahead();
                }
                None => d.stt_events = None,
            },
            ev = recv_opt(&mut d.llm_rx) => {
                let turn = d.llm_turn;
                match ev {
                    Some(event) => d.feed(Event::Llm { turn, event }),
                    None => {
                        d.llm_rx = None;
                    }
                }
            }
            ev = recv_opt(&mut d.tts_rx) => match ev {
                Some(e) => d.on_tts(e),
                None => d.tts_rx = None,
            },
            msg = inbound.next() => match msg {
                Some(Inbound::Audio(bytes)) => {
                    let t0 = Instant::now();
                    let mut transitions = Vec::new();
                    let batch = &mut d.stt_batch;
                    let batch_samples = d.stt_batch_samples;
                    let mut turn_audio = d.turn_model.as_mut().map(|(_, audio)| audio);
                    let mut full = Vec::new();
                    d.input.push(&bytes, |frame, _at, t| {
                        if let Some(audio) = turn_audio.as_deref_mut() {
                            audio.push(frame);
                            if matches!(t, Some(VadTransition::SpeechStart { .. })) {
                                audio.speech_started();
                            }
                        }
                        batch.extend_from_slice(frame);
                        if batch.len() >= batch_samples {
                            full.push(std::mem::replace(batch, Vec::with_capacity(batch_samples)));
                        }
                        if let Some(t) = t {
                            transitions.push(t);
                        }
                    });
                    for samples in full {
                        d.send_stt(SttInput::Audio(samples));
                    }
                    d.host_share.add(t0, Instant::now());
                    for t in transitions {
                        if matches!(t, VadTransition::SpeechStart { .. } | VadTransition::Resume { .. }) {
                            // The model's judgement of the last silence no longer holds.
                            d.forget_judgement();
                        }
                        d.feed(Event::Vad(t));
                    }
                }
                Some(Inbound::Message(m)) => d.on_client_message(m),
                Some(Inbound::Error { code, message }) => {
                    d.send_json(ServerMessage::error(&code, message, false));
                }
                None => {
                    // The client went away.
                    d.feed(Event::Stop);
                    d.closing = true;
                }
            },
            _ = sleep => d.feed(Event::Tick),
        }
    }
    // The client's side is over for this session: let the connection know now rather than
    // after the last writes below.
    drop(inbound);
    let _ = d.stt_in.try_send(SttInput::Close);
    if let Some(trace) = d.trace.take() {
        trace.end();
    }
    if let Some(saver) = d.saver.take() {
        saver.finish(d.stopped_by_client).await;
    }
}

impl Driver {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn feed(&mut self, event: Event) {
        let t0 = Instant::now();
        let now = self.now();
        if let Some(trace) = &mut self.trace {
            trace.on_event(&event);
        }
        self.orch.handle(now, event, &mut self.actions);
        // Carrying the actions out (encoding messages, handing audio and text on) is host
        // work too; the providers and plug-ins they start run elsewhere.
        self.apply_actions(t0);
        self.host_share.add(t0, Instant::now());
        self.save_if_changed();
    }

    /// Hands the saver a new snapshot when the memory changed (once per turn, not per event).
    fn save_if_changed(&mut self) {
        let (Some(saver), Some(resume)) = (&self.saver, &self.start.resume) else {
            return;
        };
        let revision = self.orch.memory().revision();
        if revision == self.saved_revision {
            return;
        }
        self.saved_revision = revision;
        saver.save(Snapshot {
            agent: resume.agent.clone(),
            next_turn: self.orch.next_turn(),
            memory: self.orch.memory().messages(),
        });
    }

    fn send_json(&mut self, m: ServerMessage) {
        let text = m.to_json();
        self.deliver(|out| out.json(text));
    }

    fn send_audio(&mut self, bytes: Vec<u8>) {
        let ms = bytes.len() as u64 / self.out_bytes_per_ms;
        self.deliver(|out| out.audio(bytes, ms));
    }

    fn deliver(&mut self, f: impl FnOnce(&OutboundTx) -> Result<(), SendError>) {
        if self.closing {
            return;
        }
        match f(&self.out) {
            Ok(()) => {}
            Err(SendError::TooSlow) => {
                // A client that does not read its socket must not make the server buffer
                // without bound: its session ends, and the close overtakes the queued audio.
                tracing::warn!(session = %self.start.session_id, "client too slow, closing");
                self.out.report_slow_client();
                self.out.close_now(close::POLICY, "client not reading");
                self.closing = true;
            }
            Err(SendError::Closed) => self.closing = true,
        }
    }

    fn send_stt(&mut self, input: SttInput) {
        if self.stt_in.try_send(input).is_err() {
            crate::metrics::global().stt_audio_dropped.inc();
        }
    }

    fn on_client_message(&mut self, m: ClientMessage) {
        match m {
            ClientMessage::Start { .. } => {
                self.send_json(ServerMessage::error(
                    "already_started",
                    "the session has already started",
                    false,
                ));
            }
            ClientMessage::Text { text } => {
                if text.chars().count() > 4000 {
                    self.send_json(ServerMessage::error(
                        "text_too_long",
                        "a typed turn may have at most 4000 characters",
                        false,
                    ));
                } else {
                    self.feed(Event::UserText(text));
                }
            }
            ClientMessage::Playback { played_ms, turn } => {
                crate::metrics::global().playback_reports.inc();
                self.feed(Event::Playback { turn, played_ms })
            }
            ClientMessage::Stop {} => {
                self.stopped_by_client = true;
                self.feed(Event::Stop)
            }
        }
    }

    fn on_tts(&mut self, e: TtsEvent) {
        let turn = self.tts_turn;
        match e {
            TtsEvent::Audio {
                samples,
                sample_rate,
                alignment,
            } => {
                let t0 = Instant::now();
                let mut bytes = Vec::with_capacity(samples.len() * 2);
                self.output.push(&samples, sample_rate, &mut bytes);
                self.host_share.add(t0, Instant::now());
                self.feed(Event::TtsAudio {
                    turn,
                    bytes,
                    alignment,
                });
            }
            TtsEvent::Done => {
                let mut bytes = Vec::new();
                self.output.flush(&mut bytes);
                if !bytes.is_empty() {
                    self.feed(Event::TtsAudio {
                        turn,
                        bytes,
                        alignment: None,
                    });
                }
                self.tts_rx = None;
                self.tts_in = None;
                self.feed(Event::TtsDone { turn });
            }
            TtsEvent::Error(error) => {
                self.tts_rx = None;
                self.tts_in = None;
                self.feed(Event::TtsError { turn, error });
            }
        }
    }

    fn on_answer(&mut self, answer: Answer) {
        if let Some(trace) = &mut self.trace {
            trace.on_answer(&answer);
        }
        match answer {
            Answer::Planned {
                turn,
                plan,
                output,
                plugins_ms,
                ..
            } => self.feed(Event::ReplyPlanned {
                turn,
                plan,
                output,
                plugins_ms,
            }),
            Answer::Decided {
                turn,
                seq,
                decision,
                ..
            } => self.feed(Event::BargeInDecided {
                turn,
                seq,
                decision,
            }),
            Answer::TurnDecided { seq, decision, .. } => {
                self.feed(Event::TurnDecided { seq, decision })
            }
        }
    }

    /// Queue a request to the session's behaviours. If their task is gone (a host bug), the
    /// built-ins answer at once, so no turn waits for an answer that cannot come.
    fn ask_behaviours(&mut self, request: Request) {
        if let Err(e) = self.plugins.send(request) {
            if let Some(answer) = plugin_worker::answer_with_builtins(&self.plugin_cx, e.0) {
                self.on_answer(answer);
            }
        }
    }

    /// Asks the end-of-turn policy, with the models' probabilities when they run: the end-of-turn
    /// model's ([`Self::judge_audio`]) and the text model's for the event's words (read on its
    /// thread, mostly read ahead already). The question goes to the plug-in when both have
    /// answered, or without a probability one cannot give in time.
    fn ask_turn(&mut self, seq: u32, mut event: TurnEvent) {
        let audio = self.judge_audio(event.trigger);
        let words = self.words.clone();
        if let (AudioJudgement::Known(p), None) = (&audio, &words) {
            event.model_probability = *p;
            return self.ask_behaviours(Request::Turn { seq, event });
        }
        let plugins = self.plugins.clone();
        tokio::spawn(async move {
            let read = async {
                let w = words.as_ref()?;
                let answer = w
                    .probability_within(&event.agent_last_sentence, &event.text, WORDS_WAIT)
                    .await;
                count_model_answer(ModelKind::Words, &answer);
                answer.ok()
            };
            let judged = async {
                match audio {
                    AudioJudgement::Known(p) => p,
                    AudioJudgement::Later(p) => p.await,
                }
            };
            let (model, words) = tokio::join!(judged, read);
            event.model_probability = model;
            event.words_probability = words;
            // A session that ended meanwhile has no worker to ask; its orchestrator is gone too.
            let _ = plugins.send(Request::Turn { seq, event });
        });
    }

    /// The end-of-turn model's probability for a question with `trigger`: judged anew from the
    /// turn's audio at a pause or the end of speech (on the model's thread), and the latest
    /// judgement of the same silence for new words or a timer (waited for while it runs).
    fn judge_audio(&mut self, trigger: TurnTrigger) -> AudioJudgement {
        let Some((model, audio)) = &self.turn_model else {
            return AudioJudgement::Known(None);
        };
        let judgement = self.judgement.clone();
        if !matches!(trigger, TurnTrigger::Pause | TurnTrigger::SpeechEnd) {
            let now = *judgement.borrow();
            return match now.state {
                Judged::Running => {
                    let mut rx = judgement.subscribe();
                    AudioJudgement::Later(Box::pin(async move {
                        let done =
                            rx.wait_for(|j| j.silence != now.silence || j.state != Judged::Running);
                        match tokio::time::timeout(JUDGEMENT_WAIT, done).await {
                            Ok(Ok(j)) if j.silence == now.silence => match j.state {
                                Judged::Probability(p) => Some(p),
                                _ => None,
                            },
                            _ => None,
                        }
                    }))
                }
                Judged::Probability(p) => AudioJudgement::Known(Some(p)),
                Judged::Nothing => AudioJudgement::Known(None),
            };
        }
        let (model, clip) = (model.clone(), audio.clip());
        let mut silence = 0;
        judgement.send_modify(|j| {
            silence = j.silence;
            j.state = Judged::Running;
        });
        let session = self.start.session_id.clone();
        AudioJudgement::Later(Box::pin(async move {
            let answer = model.predict(clip).await;
            count_model_answer(ModelKind::Audio, &answer);
            if let Err(e) = &answer {
                tracing::debug!(session = %session, error = %e, "end-of-turn model gave no answer");
            }
            let p = answer.ok();
            judgement.send_if_modified(|j| {
                let current = j.silence == silence;
                if current {
                    j.state = p.map_or(Judged::Nothing, Judged::Probability);
                }
                current
            });
            p
        }))
    }

    /// New words of the user's turn: the text model reads them now, a few words at a time, so
    /// that the question at the next pause costs little more than what is new.
    fn read_words_ahead(&mut self) {
        let Some(words) = &self.words else { return };
        let Some(now) = self.orch.turn_words() else {
            return;
        };
        if crate::turn::words::worth_reading_ahead(self.words_read.as_ref(), &now) {
            if words.read_ahead(&now.0, &now.1) == ReadAhead::Refused {
                crate::metrics::global().words_reads_ahead_refused.inc();
            }
            self.words_read = Some(now);
        }
    }

    /// The model's judgement no longer holds (the voice came back, or the turn it judged was
    /// committed); one still running is void when it answers.
    fn forget_judgement(&self) {
        self.judgement.send_modify(|j| {
            j.silence += 1;
            j.state = Judged::Nothing;
        });
    }

    /// Carries out the pending actions of the unit of work that started at `started`.
    fn apply_actions(&mut self, started: Instant) {
        // Actions can cause more actions (e.g. an immediate plan); loop until none are left.
        while !self.actions.is_empty() {
            let batch: Vec<Action> = std::mem::take(&mut self.actions);
            for a in batch {
                self.apply(a, started);
            }
        }
    }

    fn apply(&mut self, action: Action, started: Instant) {
        if let Some(trace) = &mut self.trace {
            trace.on_action(&action);
        }
        match action {
            Action::Send(m) => self.send_json(m),
            Action::SendAudio(bytes) => {
                self.host_share.audio_sent(started, Instant::now());
                self.send_audio(bytes)
            }
            Action::FinalizeStt => {
                if !self.stt_batch.is_empty() {
                    let samples = std::mem::take(&mut self.stt_batch);
                    self.send_stt(SttInput::Audio(samples));
                }
                self.send_stt(SttInput::Finalize);
            }
            Action::TurnCommitted { by, .. } => {
                crate::metrics::global().count_turn_end(by);
                self.host_share.turn_committed(Instant::now());
                if let Some((_, audio)) = &mut self.turn_model {
                    audio.turn_ended();
                    // It judged the committed turn's audio: words of the next turn heard
                    // before any pause in it (a short "it's also" the VAD missed) are not
                    // judged by it.
                    self.forget_judgement();
                }
            }
            Action::PlanReply {
                turn,
                plan,
                user_text,
                history,
            } => self.ask_behaviours(Request::Plan {
                turn,
                plan,
                user_text,
                history,
            }),
            Action::TurnContinued { by, .. } => {
                crate::metrics::global().count_turn_continued(by);
                if by == TurnEnd::Policy {
                    // The plug-in version's own figures (`GET /admin/plugins`).
                    self.ask_behaviours(Request::TurnContinued);
                }
            }
            Action::Preempted(outcome) => crate::metrics::global().count_preemption(outcome),
            Action::StartLlm {
                turn,
                messages,
                settings,
            } => {
                let rx = self.deps.providers.llm.stream(LlmRequest {
                    session_id: self.start.session_id.clone(),
                    turn,
                    messages: joined_runs(messages),
                    settings,
                    model: self.start.agent.model.clone(),
                });
                self.llm_turn = turn;
                self.llm_rx = Some(rx);
            }
            Action::CancelLlm { turn } => {
                if self.llm_turn == turn {
                    self.llm_rx = None;
                }
            }
            Action::StartTts { turn } => {
                let TtsStream { input, events } = self.tts.open(TtsParams {
                    session_id: self.start.session_id.clone(),
                    turn,
                    voice: self.start.agent.voice.clone(),
                    preferred_rate: self.start.output.sample_rate,
                });
                self.output.reset();
                self.tts_turn = turn;
                self.tts_in = Some(input);
                self.tts_rx = Some(events);
            }
            Action::SpeakSentence { turn, text } => self.tts_send(turn, TtsInput::Text(text)),
            Action::FlushTts { turn } => self.tts_send(turn, TtsInput::Flush),
            Action::CancelTts { turn } => {
                if self.tts_turn == turn {
                    self.tts_in = None;
                    self.tts_rx = None;
                    self.output.reset();
                }
            }
            Action::AskBargeIn { turn, seq, event } => {
                self.ask_behaviours(Request::Decide { turn, seq, event })
            }
            Action::AskTurn { seq, event } => self.ask_turn(seq, event),
            Action::EndSpeech => {
                // The orchestrator has already taken this as the end of speech.
                let _ = self.input.end_speech_now();
            }
            Action::Metrics(mut m) => {
                m.host_processing_ms = self.host_share.take().as_secs_f64() * 1000.0;
                crate::metrics::global().observe_turn(&m);
                self.send_json(ServerMessage::TurnMetrics(m));
            }
            Action::Close { code, reason } => {
                if !self.closing {
                    self.out.close(code, reason);
                }
                self.closing = true;
            }
        }
    }

    fn tts_send(&mut self, turn: u32, input: TtsInput) {
        if self.tts_turn != turn {
            return;
        }
        if let Some(tx) = &self.tts_in {
            if tx.try_send(input).is_err() {
                tracing::warn!(session = %self.start.session_id, "text-to-speech input full");
            }
        }
    }
}
