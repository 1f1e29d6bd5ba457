//! The session task itself (the driver, its plug-in worker and its output queue) under generated
//! interleavings, on tokio's paused clock: scripted providers answer late, fail or go silent,
//! typed turns come in bursts, the client reports playback for old replies. What the client
//! receives is checked: every turn ends with exactly one `agent_done`, replies never overlap, no
//! agent audio arrives between a reply's end and the next reply's first text, and the session
//! answers a last question once the script is over. What the LLM is given is checked against
//! what the client saw: every typed question is a turn, in order, and the history of each
//! request holds exactly the questions before it and, for each reply, what its `agent_done` said
//! the user heard (never text the client was not shown, nothing of a reply with no audio).
//!
//! The orchestrator alone is driven far harder by `orchestrator::tests::simulation`; this run is
//! about the I/O around it (the plug-in worker's queue, stale provider channels, timers).

use super::driver;
use super::outbound::{self, Outbound, OutboundRx};
use super::{Inbound, Providers, SessionDeps, StartParams};
use crate::audio::{AudioFormat, Encoding};
use crate::behaviour::defaults::BuiltinBehaviours;
use crate::behaviour::{ChatMessage, Role};
use crate::config::source::RawSettings;
use crate::config::Config;
use crate::providers::{
    LlmEvent, LlmProvider, LlmRequest, ProviderError, ProviderErrorKind, SttEvent, SttInput,
    SttParams, SttProvider, SttStream, TtsEvent, TtsInput, TtsParams, TtsProvider, TtsStream,
};
use crate::transport::protocol::ClientMessage;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How the scripted providers behave in one run.
#[derive(Debug, Clone)]
struct Script {
    /// LLM: delay before the first token (ms), then how the stream ends: 0 done, 1 error, 2 silent.
    llm_delay: u64,
    llm_end: u8,
    /// TTS: delay per sentence (ms); 0 done, 1 error, 2 silent.
    tts_delay: u64,
    tts_end: u8,
    /// Client actions: (wait ms, action); 0..=2 typed turn, 3 playback report for an old turn.
    steps: Vec<(u64, u8)>,
}

/// Scripts with times in whole milliseconds, or half of them on a 30 ms grid (the scripted LLM's
/// token interval): then client actions often fall on the very instant a token, a sentence's
/// audio or a timer does, and the session must still do the same thing every run.
fn script() -> impl Strategy<Value = Script> {
    prop_oneof![script_in(1), script_in(30)]
}

fn script_in(unit: u64) -> impl Strategy<Value = Script> {
    (
        0..400 / unit,
        prop::sample::select(vec![0u8, 0, 0, 1, 2]),
        0..300 / unit,
        prop::sample::select(vec![0u8, 0, 0, 1, 2]),
        prop::collection::vec((0..1500 / unit, 0u8..4), 1..8),
    )
        .prop_map(
            move |(llm_delay, llm_end, tts_delay, tts_end, steps)| Script {
                llm_delay: llm_delay * unit,
                llm_end,
                tts_delay: tts_delay * unit,
                tts_end,
                steps: steps
                    .into_iter()
                    .map(|(wait, a)| (wait * unit, a))
                    .collect(),
            },
        )
}

/// What the LLM was asked: (turn, messages) per request.
type Requests = Arc<Mutex<Vec<(u32, Vec<ChatMessage>)>>>;

struct ScriptedLlm(Script, Requests);

impl LlmProvider for ScriptedLlm {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn stream(&self, request: LlmRequest) -> mpsc::Receiver<LlmEvent> {
        let (tx, rx) = mpsc::channel(16);
        let s = self.0.clone();
        self.1
            .lock()
            .unwrap()
            .push((request.turn, request.messages.clone()));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(s.llm_delay)).await;
            let text = format!("Answer {}. It has two sentences.", request.turn);
            for token in text.split_inclusive(' ') {
                if tx.send(LlmEvent::Token(token.into())).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                if s.llm_end != 0 && token.ends_with(". ") {
                    break; // the stream breaks after the first sentence
                }
            }
            let end = match s.llm_end {
                0 => LlmEvent::Done {
                    finish_reason: Some("stop".into()),
                    usage: None,
                },
                1 => LlmEvent::Error(ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    "scripted",
                    "broke",
                )),
                _ => {
                    // Silent: hold the stream open until the session drops it.
                    tx.closed().await;
                    return;
                }
            };
            let _ = tx.send(end).await;
        });
        rx
    }
}

struct ScriptedTts(Script);

impl TtsProvider for ScriptedTts {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn open(&self, _params: TtsParams) -> TtsStream {
        let (input, mut inputs) = mpsc::channel::<TtsInput>(16);
        let (tx, events) = mpsc::channel(16);
        let s = self.0.clone();
        tokio::spawn(async move {
            let mut sentences = 0;
            while let Some(i) = inputs.recv().await {
                tokio::time::sleep(Duration::from_millis(s.tts_delay)).await;
                let event = match i {
                    TtsInput::Text(t) => {
                        sentences += 1;
                        if s.tts_end != 0 && sentences > 1 {
                            if s.tts_end == 1 {
                                let _ = tx
                                    .send(TtsEvent::Error(ProviderError::new(
                                        ProviderErrorKind::Unavailable,
                                        "scripted",
                                        "broke",
                                    )))
                                    .await;
                            }
                            tx.closed().await;
                            return;
                        }
                        TtsEvent::Audio {
                            samples: vec![1000; t.chars().count() * 16 * 60],
                            sample_rate: 16_000,
                            alignment: None,
                        }
                    }
                    TtsInput::Flush => TtsEvent::Done,
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        TtsStream { input, events }
    }
}

/// Speech-to-text that hears nothing (this run types its turns).
struct Deaf;

impl SttProvider for Deaf {
    fn name(&self) -> &'static str {
        "deaf"
    }

    fn open(&self, _params: SttParams) -> SttStream {
        let (input, mut inputs) = mpsc::channel::<SttInput>(64);
        let (tx, events) = mpsc::channel::<SttEvent>(16);
        tokio::spawn(async move {
            while inputs.recv().await.is_some() {}
            drop(tx);
        });
        SttStream { input, events }
    }
}

/// What the client saw, checked as it arrives.
#[derive(Default)]
struct Client {
    finals: Vec<u64>,
    /// The text of each final transcript, by turn.
    final_text: BTreeMap<u64, String>,
    /// What each reply showed (`agent_text` deltas), by turn.
    shown: HashMap<u64, String>,
    /// Agent audio bytes received while each reply was the active one.
    audio: HashMap<u64, usize>,
    /// The text of each `agent_done`: what memory keeps of the reply.
    done_text: BTreeMap<u64, String>,
    done: HashMap<u64, u32>,
    active: Option<u64>,
    /// The last reply ended and no new one has shown text yet.
    between: bool,
}

impl Client {
    fn see(&mut self, out: Outbound) -> Result<(), String> {
        match out {
            Outbound::Audio(bytes) => {
                if self.active.is_none() && self.between {
                    return Err("agent audio after the reply ended".into());
                }
                if let Some(a) = self.active {
                    *self.audio.entry(a).or_default() += bytes.len();
                }
            }
            Outbound::Json(text) => {
                let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                let turn = v["turn"].as_u64();
                match v["type"].as_str() {
                    Some("transcript") if v["final"] == true => {
                        let t = turn.unwrap_or_default();
                        self.finals.push(t);
                        let text = v["text"].as_str().unwrap_or_default();
                        self.final_text.insert(t, text.to_string());
                    }
                    Some("agent_text") => {
                        if self.active.is_some_and(|a| Some(a) != turn) {
                            return Err(format!("reply {turn:?} overlaps {:?}", self.active));
                        }
                        self.active = turn;
                        self.between = false;
                        let delta = v["delta"].as_str().unwrap_or_default();
                        self.shown
                            .entry(turn.unwrap_or_default())
                            .or_default()
                            .push_str(delta);
                    }
                    Some("agent_done") => {
                        let t = turn.unwrap_or_default();
                        let text = v["text"].as_str().unwrap_or_default().to_string();
                        let shown = self.shown.get(&t).map_or("", String::as_str);
                        if !shown.trim_start().starts_with(text.trim()) {
                            return Err(format!(
                                "turn {t} keeps {text:?}, more than it showed ({shown:?})"
                            ));
                        }
                        if !text.trim().is_empty() && !self.audio.contains_key(&t) {
                            return Err(format!("turn {t} keeps {text:?} but sent no audio"));
                        }
                        self.done_text.insert(t, text);
                        *self.done.entry(t).or_default() += 1;
                        if self.done[&t] > 1 {
                            return Err(format!("turn {t} ended twice"));
                        }
                        if self.active == turn {
                            self.active = None;
                        }
                        self.between = true;
                    }
                    Some("interrupt") => {
                        if self.active == turn {
                            self.active = None;
                        }
                        self.between = true;
                    }
                    _ => {}
                }
            }
            Outbound::Close { .. } => {}
        }
        Ok(())
    }

    /// The conversation memory should hold before `turn`'s question: each earlier question and
    /// what its reply's `agent_done` kept (a greeting's too), in turn order; consecutive
    /// messages of one role are one message (a question whose reply kept nothing joins the next).
    fn history_before(&self, turn: u64) -> Vec<(Role, String)> {
        let mut turns: Vec<u64> = self
            .final_text
            .keys()
            .chain(self.done_text.keys())
            .copied()
            .collect();
        turns.sort_unstable();
        turns.dedup();
        let mut history: Vec<(Role, String)> = Vec::new();
        for t in turns.into_iter().filter(|&t| t < turn) {
            if let Some(q) = self.final_text.get(&t) {
                push_joined(&mut history, Role::User, q.trim());
            }
            if let Some(a) = self.done_text.get(&t).filter(|a| !a.trim().is_empty()) {
                push_joined(&mut history, Role::Assistant, a.trim());
            }
        }
        history
    }

    /// Every request's messages (without the system prompt) are the history the client saw,
    /// then the turn's own question (joined to the history's last question when nothing of the
    /// agent came between them: the LLM never reads two user messages in a row).
    fn check_requests(&self, requests: &[(u32, Vec<ChatMessage>)]) -> Result<(), String> {
        for (turn, messages) in requests {
            let t = u64::from(*turn);
            let asked: Vec<(Role, String)> = messages
                .iter()
                .filter(|m| m.role != Role::System)
                .map(|m| (m.role, m.content.trim().to_string()))
                .collect();
            let question = self
                .final_text
                .get(&t)
                .ok_or(format!("turn {t} asked without a final transcript"))?;
            let mut expected = self.history_before(t);
            push_joined(&mut expected, Role::User, question.trim());
            if asked != expected {
                return Err(format!(
                    "turn {t}: the LLM was given {asked:?}, the client saw {expected:?}"
                ));
            }
        }
        Ok(())
    }
}

/// Appends a message, joined to the last one with a space when it has the same role.
fn push_joined(history: &mut Vec<(Role, String)>, role: Role, text: &str) {
    match history.last_mut() {
        Some((last, content)) if *last == role => {
            content.push(' ');
            content.push_str(text);
        }
        _ => history.push((role, text.to_string())),
    }
}

async fn drain(rx: &mut OutboundRx, client: &mut Client, for_ms: u64) -> Result<(), String> {
    let until = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    loop {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(out)) => client.see(out)?,
            Ok(None) | Err(_) => return Ok(()),
        }
    }
}

/// What memory kept of each reply (its `agent_done` text, by turn) and what the LLM was asked.
type Kept = (BTreeMap<u64, String>, Vec<(u32, Vec<ChatMessage>)>);

/// Plays the script; `reports` false leaves out the client's playback reports (for old
/// replies), which must change nothing of what memory keeps.
async fn run(script: Script, reports: bool) -> Result<Kept, String> {
    let config = Arc::new(Config::from_raw(&RawSettings::default()).map_err(|e| e.to_string())?);
    let requests = Requests::default();
    let deps = Arc::new(SessionDeps {
        providers: Providers {
            stt: Arc::new(Deaf),
            llm: Arc::new(ScriptedLlm(script.clone(), requests.clone())),
            tts: Arc::new(ScriptedTts(script.clone())),
        },
        behaviours: Arc::new(BuiltinBehaviours::default()),
        orchestrator: crate::server::orchestrator_config(&config),
        resume: Arc::new(crate::resume::ResumeStore::new(None, config.resume.ttl()).unwrap()),
        config: config.clone(),
        telemetry: None,
        turn_model: None,
        words_model: None,
        vad_engine: crate::audio::VadEngine::WebRtc,
    });
    let format = AudioFormat {
        encoding: Encoding::Pcm16,
        sample_rate: 16_000,
    };
    let start = StartParams {
        session_id: "sim".into(),
        input: format,
        output: format,
        agent: config
            .agent_profile(None)
            .cloned()
            .ok_or("no default agent")?,
        resume: None,
    };
    let (in_tx, mut in_rx) = mpsc::channel(64);
    let (out_tx, mut out_rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS * 100);
    let (_drain_tx, drain_rx) = watch::channel(false);
    let inbound = futures_util::stream::poll_fn(move |cx| in_rx.poll_recv(cx));
    let session = tokio::spawn(driver::run(deps, start, inbound, out_tx, drain_rx));
    let mut client = Client::default();
    let mut typed = 0;
    for (wait, action) in &script.steps {
        drain(&mut out_rx, &mut client, *wait).await?;
        let message = if *action < 3 {
            typed += 1;
            ClientMessage::Text {
                text: format!("question {typed}"),
            }
        } else if !reports {
            continue;
        } else {
            ClientMessage::Playback {
                played_ms: 500,
                turn: Some(typed.max(1) - 1),
            }
        };
        in_tx
            .send(Inbound::Message(message))
            .await
            .map_err(|_| "the session ended")?;
    }
    // Past every stall watchdog: the session must be listening again.
    drain(&mut out_rx, &mut client, 30_000).await?;
    for t in &client.finals {
        if client.done.get(t) != Some(&1) {
            return Err(format!("turn {t} has no agent_done: {:?}", client.done));
        }
    }
    if let Some(a) = client.active {
        return Err(format!("reply {a} never ended"));
    }
    // And it answers a last question.
    in_tx
        .send(Inbound::Message(ClientMessage::Text {
            text: "last question".into(),
        }))
        .await
        .map_err(|_| "the session ended")?;
    drain(&mut out_rx, &mut client, 30_000).await?;
    let last = client.finals.last().copied().ok_or("no turn")?;
    if client.done.get(&last) != Some(&1) {
        return Err(format!("the last question (turn {last}) was not answered"));
    }
    // Every typed question became a turn, in order, with its own words.
    let typed_in_order: Vec<String> = (1..=typed)
        .map(|k| format!("question {k}"))
        .chain(["last question".to_string()])
        .collect();
    let committed: Vec<String> = client.final_text.values().cloned().collect();
    if committed != typed_in_order {
        return Err(format!("typed {typed_in_order:?}, committed {committed:?}"));
    }
    let requests = requests.lock().unwrap().clone();
    client.check_requests(&requests)?;
    drop(in_tx);
    let _ = session.await;
    Ok((client.done_text, requests))
}

/// A runtime on tokio's paused clock: every run of a script is the same run.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig {
        // `DRIVER_CASES` overrides, e.g. for a long run.
        cases: super::generated_cases::from_env("DRIVER_CASES", 1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_session_task_answers_every_turn_under_generated_timing(script in script()) {
        let kept = paused_runtime()
            .block_on(run(script.clone(), true))
            .map_err(TestCaseError::fail)?;
        // A report for another reply says nothing about the one playing: without the reports
        // the same script keeps the same words (the paused clock and the session's fixed order for
        // events of one instant make the runs repeatable).
        let without = paused_runtime()
            .block_on(run(script, false))
            .map_err(TestCaseError::fail)?;
        prop_assert_eq!(
            &kept.0,
            &without.0,
            "the same script kept other words (stale playback reports, or one instant's events \
             in another order)"
        );
        prop_assert_eq!(&kept.1, &without.1);
    }
}
