//! Randomized simulation of a session: generated interleavings of user speech, typing, playback
//! reports and stop/drain, against scripted providers and plug-ins that answer late, fail or go
//! silent (a faulting plug-in reaches the session as the built-in answer, late), all on a
//! virtual clock. After every action and at the end of every run the session's
//! invariants (what the client sees in `client_sees`, memory in `check_remembered`, liveness
//! in `check_settled`, and that no reply starts talking while the user is saying words or their
//! voice is beginning) are checked. proptest shrinks a failing
//! run to a short script; a shrunk failure worth keeping becomes a named test in `races`.
//!
//! With an end-of-turn policy (profile `turn_policy`), the VAD also reports pauses and the policy
//! answers on its own clock (or never); the turn must still settle, a held turn is never taken
//! by the silence rules, and a policy that always answers `Wait(0)` at once changes nothing the
//! client sees (`a_policy_answering_wait_0_changes_nothing`).
//!
//! With preemptive generation (profile `preemptive`), replies may be planned and generated before
//! their turn is committed: every word the client is shown or that is spoken for a reply must
//! come from an LLM stream planned on exactly that turn's words, and every speculative stream
//! is counted once, used or wasted.
//!
//! The scripted providers behave as the session task's I/O does: a plan request is answered
//! after a delay (answers of superseded turns still arrive and must be ignored); LLM tokens, TTS
//! audio and barge-in decisions come on their own clocks; a cancelled stream sends nothing more,
//! except one stale event now and then, as a real connection may.

use crate::audio::VadTransition;
use crate::behaviour::defaults::{BargeInRules, DefaultBargeIn};
use crate::behaviour::{BargeInDecision, GenerationSettings, PromptOutput, Role, TurnDecision};
use crate::providers::{Alignment, LlmEvent, ProviderError, ProviderErrorKind, SttEvent};
use crate::session::events::{Action, Event};
use crate::session::orchestrator::{Orchestrator, OrchestratorConfig, State};
use crate::transport::protocol::ServerMessage;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How long a faulting plug-in call takes to be given up: the wall-clock backstop of the
/// default 5 ms CPU deadline (`PluginSettings::call_deadline_ms`).
const PLUGIN_FAULT_MS: u64 = 50;

/// What the user (or the client) does at a step.
#[derive(Debug, Clone)]
enum Input {
    VadStart,
    VadEnd,
    /// The VAD heard a short silence inside speech (reported only with a turn policy).
    VadPause,
    /// The voice came back after a pause.
    VadResume,
    /// The VAD hears voice it has not confirmed as speech.
    VadOnset,
    /// That voice came to nothing.
    VadFalseOnset,
    /// An interim guess of `n` new words (a backchannel when `n` is 0).
    Interim(u8),
    /// A final of `n` new words (empty when 0); `repeat` repeats the last interim's words.
    Final {
        n: u8,
        speech_final: bool,
        from_finalize: bool,
        repeat: bool,
    },
    UtteranceEnd,
    /// A typed turn of `n` words (1..).
    Typed(u8),
    /// A playback report for the current reply, the previous one, or unnamed; `pct` of the
    /// audio sent so far.
    Playback {
        of: u8,
        pct: u8,
    },
    Stop,
    Drain,
}

/// How the scripted providers and plug-ins behave in one run.
#[derive(Debug, Clone)]
struct Profile {
    seed: u64,
    plan_delay: u64,
    decide_delay: u64,
    /// 0: built-in rules, 1..=4: always this decision, 5: a random decision each time,
    /// 6: a plug-in that faults on every other call (the session then gets the built-in
    /// decision, after the call's wall-clock backstop) and answers at random otherwise.
    policy: u8,
    first_token: u64,
    token_gap: u64,
    tts_delay: u64,
    ms_per_char: u64,
    aligned: bool,
    /// The recogniser answers `Finalize` after this long (never when `None`).
    finalize_answer: Option<u64>,
    /// The end-of-turn policy: 0 none, 1 `Wait(0)` (the built-in answer), 2 always `EndTurn`,
    /// 3 a random answer (a hold of up to 8 s, beyond the cap, included), 4 never answers.
    turn_policy: u8,
    /// How long its answers take.
    turn_delay: u64,
    /// Preemptive generation on.
    preemptive: bool,
}

#[derive(Debug, Clone)]
struct Script {
    profile: Profile,
    steps: Vec<(u64, Input)>,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => Just(Input::VadStart),
        4 => Just(Input::VadEnd),
        2 => Just(Input::VadPause),
        1 => Just(Input::VadResume),
        2 => Just(Input::VadOnset),
        1 => Just(Input::VadFalseOnset),
        4 => (0u8..6).prop_map(Input::Interim),
        4 => (0u8..5, any::<bool>(), any::<bool>(), prop::bool::weighted(0.2)).prop_map(
            |(n, speech_final, from_finalize, repeat)| Input::Final { n, speech_final, from_finalize, repeat }
        ),
        1 => Just(Input::UtteranceEnd),
        3 => (1u8..5).prop_map(Input::Typed),
        2 => (0u8..3, 0u8..=100).prop_map(|(of, pct)| Input::Playback { of, pct }),
        1 => prop::bool::weighted(0.3).prop_map(|drain| if drain { Input::Drain } else { Input::Stop }),
    ]
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        any::<u64>(),
        (0u64..400, 0u64..300, 0u8..7),
        (0u64..800, 0u64..150, 0u64..400),
        // At least as fast as the 14 characters a second the host assumes without timing.
        (50u64..=71, any::<bool>(), prop::option::of(20u64..500)),
        (0u8..5, 0u64..300, any::<bool>()),
    )
        .prop_map(
            |(
                seed,
                (plan_delay, decide_delay, policy),
                (first_token, token_gap, tts_delay),
                (ms_per_char, aligned, finalize_answer),
                (turn_policy, turn_delay, preemptive),
            )| Profile {
                seed,
                plan_delay,
                decide_delay,
                policy,
                first_token,
                token_gap,
                tts_delay,
                ms_per_char,
                aligned,
                finalize_answer,
                turn_policy,
                turn_delay,
                preemptive,
            },
        )
}

fn script() -> impl Strategy<Value = Script> {
    (
        profile(),
        prop::collection::vec((0u64..1500, input()), 1..40),
    )
        .prop_map(|(profile, steps)| Script { profile, steps })
}

/// A small deterministic generator for the providers' choices (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How a provider stream of one reply ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    Done,
    /// Fails after this many items.
    Error(usize),
    /// Goes silent after this many items.
    Stall(usize),
}

/// Audio bytes carry their reply's turn, so every chunk sent can be traced to its reply.
fn tag(turn: u32) -> u8 {
    (turn % 250) as u8 + 1
}

/// The words of the scripted reply to `turn` from LLM stream `stream` (every sentence ends with
/// a stop; every word names its stream).
fn reply_text(turn: u32, stream: usize, rng: &mut Rng) -> String {
    let sentences = 1 + rng.below(3);
    (0..sentences)
        .map(|s| {
            let words = 2 + rng.below(4);
            let body: Vec<String> = (0..words)
                .map(|w| format!("r{turn}s{stream}x{s}y{w}"))
                .collect();
            format!("{}.", body.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Split text into LLM-like tokens at arbitrary places.
fn tokenize(text: &str, rng: &mut Rng) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let n = (1 + rng.below(6) as usize).min(chars.len() - i);
        out.push(chars[i..i + n].iter().collect());
        i += n;
    }
    out
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One simulated session and everything the client saw.
struct Sim {
    orch: Orchestrator,
    now: u64,
    p: Profile,
    rng: Rng,
    /// Pending provider and plug-in events: (time, order) -> event.
    queue: BTreeMap<(u64, u64), (Owner, Event)>,
    order: u64,
    next_word: u32,
    last_interim: String,
    /// Per reply turn: sentences handed to TTS, audio sent (ms), its provider endings.
    spoken: HashMap<u32, Vec<String>>,
    audio_sent_ms: HashMap<u32, u64>,
    llm_ending: HashMap<u32, Ending>,
    /// Time the next TTS audio of a turn is ready (sentences are synthesised in order).
    tts_ready_at: HashMap<u32, u64>,
    tts_items: HashMap<u32, usize>,
    /// What the client saw.
    final_turns: Vec<u32>,
    done: HashMap<u32, u32>,
    ended: HashSet<u32>,
    active: Option<u32>,
    user_words_in_turns: HashMap<String, u32>,
    repeated_words: HashSet<String>,
    closed: bool,
    /// Every action but the end-of-turn questions, with its time (see `client_log`).
    log: Vec<(u64, String)>,
    /// The user words each plan request was made on, by plan number.
    plan_texts: HashMap<u32, String>,
    /// The plan whose answer is being fed (its `StartLlm` follows in the same event).
    answering_plan: Option<u32>,
    /// The user words each LLM stream was planned on, by stream number.
    stream_texts: Vec<String>,
    /// The committed words of each turn (its final transcript).
    committed: HashMap<u32, String>,
    /// The reply text shown to the client, per turn.
    shown: HashMap<u32, String>,
    /// LLM streams started before their turn was committed, and the outcomes counted.
    speculative_streams: usize,
    preemptions_counted: usize,
    /// Since when the VAD has heard voice it has not settled (onset, then start or false onset).
    onset_since: Option<u64>,
    /// Turns counted as ended too early (the user went on before their reply was heard).
    continued: HashSet<u32>,
    draining: bool,
    /// How long voice without words holds a reply nobody has heard.
    pause_timeout_ms: u64,
}

/// Which stream a pending event belongs to (cancelling a stream drops its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    User,
    Plan,
    Llm(u32),
    /// An LLM stream started before its turn was committed.
    SpeculativeLlm(u32),
    Tts(u32),
    Policy,
    TurnPolicy,
}

impl Sim {
    fn new(p: Profile) -> Self {
        let cfg = OrchestratorConfig {
            greeting: p
                .seed
                .is_multiple_of(4)
                .then(|| "Hello there. How can I help?".to_string()),
            turn_policy: p.turn_policy > 0,
            preemptive: p.preemptive,
            ..OrchestratorConfig::default()
        };
        Self {
            pause_timeout_ms: cfg.pause_timeout_ms,
            orch: Orchestrator::new(cfg),
            now: 0,
            rng: Rng(p.seed),
            p,
            queue: BTreeMap::new(),
            order: 0,
            next_word: 0,
            last_interim: String::new(),
            spoken: HashMap::new(),
            audio_sent_ms: HashMap::new(),
            llm_ending: HashMap::new(),
            tts_ready_at: HashMap::new(),
            tts_items: HashMap::new(),
            final_turns: Vec::new(),
            done: HashMap::new(),
            ended: HashSet::new(),
            active: None,
            user_words_in_turns: HashMap::new(),
            repeated_words: HashSet::new(),
            closed: false,
            log: Vec::new(),
            plan_texts: HashMap::new(),
            answering_plan: None,
            stream_texts: Vec::new(),
            committed: HashMap::new(),
            shown: HashMap::new(),
            speculative_streams: 0,
            preemptions_counted: 0,
            onset_since: None,
            continued: HashSet::new(),
            draining: false,
        }
    }

    fn schedule(&mut self, at: u64, owner: Owner, event: Event) {
        self.order += 1;
        self.queue.insert((at, self.order), (owner, event));
    }

    fn fresh_words(&mut self, n: u8) -> String {
        if n == 0 {
            return "okay".into();
        }
        (0..n)
            .map(|_| {
                self.next_word += 1;
                format!("u{}", self.next_word)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn start(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        self.orch.start(self.now, &mut out);
        self.apply(out)
    }

    fn feed(&mut self, event: Event) -> Result<(), String> {
        // Only a typed turn, the policy's own answer or the user's voice (which voids the hold;
        // the silence timeout may then be due) ends a turn the end-of-turn policy holds open.
        let may_end = matches!(
            event,
            Event::UserText(_)
                | Event::TurnDecided { .. }
                | Event::Vad(VadTransition::SpeechStart { .. } | VadTransition::Resume { .. })
        );
        let held = self.orch.turn_held(self.now);
        self.answering_plan = match &event {
            Event::ReplyPlanned { plan, .. } => Some(*plan),
            _ => None,
        };
        let mut out = Vec::new();
        self.orch.handle(self.now, event, &mut out);
        if held
            && !may_end
            && out
                .iter()
                .any(|a| matches!(a, Action::TurnCommitted { .. }))
        {
            return Err("a spoken turn was ended while the end-of-turn policy held it".into());
        }
        self.apply(out)
    }

    /// Let virtual time pass to `t`: scripted events and the orchestrator's wakeups in order.
    fn run_until(&mut self, t: u64) -> Result<(), String> {
        loop {
            let next_event = self.queue.keys().next().map(|k| k.0);
            let wake = self.orch.next_wakeup();
            let next = match (next_event, wake) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > t {
                break;
            }
            if wake.is_some_and(|w| w <= self.now) {
                return Err(format!("wakeup {wake:?} is not after now {}", self.now));
            }
            self.now = self.now.max(next);
            if next_event == Some(next) {
                let key = *self.queue.keys().next().expect("a queued event");
                let (_, event) = self.queue.remove(&key).expect("the event");
                self.feed(event)?;
            } else {
                self.feed(Event::Tick)?;
            }
        }
        self.now = self.now.max(t);
        Ok(())
    }

    fn user(&mut self, input: Input) -> Result<(), String> {
        let event = match input {
            Input::VadStart => {
                self.onset_since = None;
                Event::Vad(VadTransition::SpeechStart { at_ms: self.now })
            }
            Input::VadEnd => Event::Vad(VadTransition::SpeechEnd { at_ms: self.now }),
            Input::VadPause => Event::Vad(VadTransition::Pause {
                at_ms: self.now.saturating_sub(200),
                silence_ms: 200,
            }),
            Input::VadResume => Event::Vad(VadTransition::Resume { at_ms: self.now }),
            Input::VadOnset => {
                self.onset_since.get_or_insert(self.now);
                Event::Vad(VadTransition::Onset { at_ms: self.now })
            }
            Input::VadFalseOnset => {
                self.onset_since = None;
                Event::Vad(VadTransition::FalseOnset { at_ms: self.now })
            }
            Input::Interim(n) => {
                let text = self.fresh_words(n);
                self.last_interim = text.clone();
                Event::Stt(SttEvent::Interim {
                    text,
                    words: Vec::new(),
                })
            }
            Input::Final {
                n,
                speech_final,
                from_finalize,
                repeat,
            } => {
                let text = if repeat && !self.last_interim.is_empty() {
                    for w in self.last_interim.split_whitespace() {
                        self.repeated_words.insert(w.to_string());
                    }
                    self.last_interim.clone()
                } else if n == 0 {
                    String::new()
                } else {
                    self.fresh_words(n)
                };
                Event::Stt(SttEvent::Final {
                    text,
                    words: Vec::new(),
                    speech_final,
                    from_finalize,
                })
            }
            Input::UtteranceEnd => Event::Stt(SttEvent::UtteranceEnd),
            Input::Typed(n) => Event::UserText(self.fresh_words(n)),
            Input::Playback { of, pct } => {
                let current = self.active;
                let turn = match of {
                    0 => current,
                    1 => current.map(|t| t.saturating_sub(1)),
                    _ => None,
                };
                let sent = current.and_then(|t| self.audio_sent_ms.get(&t)).copied();
                Event::Playback {
                    turn,
                    played_ms: sent.unwrap_or(0) * u64::from(pct) / 100,
                }
            }
            Input::Stop => Event::Stop,
            Input::Drain => {
                self.draining = true;
                Event::Drain
            }
        };
        self.feed(event)
    }

    /// The policy's answer to `event` and how long after the question it arrives.
    fn decision(&mut self, event: &crate::behaviour::BargeInEvent) -> (BargeInDecision, u64) {
        let all = [
            BargeInDecision::Ignore,
            BargeInDecision::Interrupt,
            BargeInDecision::Pause,
            BargeInDecision::Wait,
        ];
        let built_in = || DefaultBargeIn::decide_with(&BargeInRules::default(), event);
        let delay = self.p.decide_delay;
        match self.p.policy {
            0 => (built_in(), delay),
            n @ 1..=4 => (all[usize::from(n - 1)], delay),
            5 => (all[self.rng.below(4) as usize], delay),
            _ if self.rng.below(2) == 0 => (built_in(), delay + PLUGIN_FAULT_MS),
            _ => (all[self.rng.below(4) as usize], delay),
        }
    }

    /// Carry out the orchestrator's actions as the providers would, checking what the client
    /// sees as it goes.
    fn apply(&mut self, out: Vec<Action>) -> Result<(), String> {
        // Answers given at once, fed after this event's actions as the session task does.
        let mut at_once = Vec::new();
        for action in out {
            if !matches!(action, Action::AskTurn { .. }) {
                self.log.push((self.now, format!("{action:?}")));
            }
            match action {
                Action::Send(m) => self.client_sees(m)?,
                Action::SendAudio(bytes) => {
                    let Some(&first) = bytes.first() else {
                        continue;
                    };
                    if bytes.iter().any(|b| *b != first) {
                        return Err("a chunk mixes the audio of two replies".into());
                    }
                    let turn = u32::from(first - 1);
                    if self.ended.contains(&turn) {
                        return Err(format!("audio of reply {turn} after its end"));
                    }
                    if self.active.is_some_and(|a| a != turn) {
                        return Err(format!(
                            "audio of reply {turn} while reply {:?} is active",
                            self.active
                        ));
                    }
                    if !self.audio_sent_ms.contains_key(&turn) && self.orch.user_has_words() {
                        return Err(format!(
                            "reply {turn} starts talking while the user is saying words"
                        ));
                    }
                    // Voice the VAD has not settled holds a reply nobody heard, up to the pause
                    // timeout (noise), unless the server is shutting down.
                    let beginning = self
                        .onset_since
                        .is_some_and(|t| self.now < t + self.pause_timeout_ms);
                    if !self.audio_sent_ms.contains_key(&turn) && beginning && !self.draining {
                        return Err(format!(
                            "reply {turn} starts talking while the user's voice is beginning"
                        ));
                    }
                    if !self.audio_sent_ms.contains_key(&turn)
                        && self.shown.get(&turn).is_none_or(|s| s.is_empty())
                    {
                        return Err(format!("reply {turn} is heard before any of it is shown"));
                    }
                    self.active = Some(turn);
                    *self.audio_sent_ms.entry(turn).or_default() += bytes.len() as u64 / 32;
                }
                Action::FinalizeStt => {
                    if let Some(after) = self.p.finalize_answer {
                        let at = self.now + after;
                        self.schedule(
                            at,
                            Owner::User,
                            Event::Stt(SttEvent::Final {
                                text: String::new(),
                                words: Vec::new(),
                                speech_final: false,
                                from_finalize: true,
                            }),
                        );
                    }
                }
                Action::TurnCommitted {
                    turn, user_text, ..
                } => {
                    self.committed.insert(turn, user_text);
                }
                Action::Preempted(_) => self.preemptions_counted += 1,
                Action::TurnContinued { turn, .. } => {
                    // Counted once, for a committed user turn whose reply, not heard at all,
                    // is still to end.
                    if !self.committed.contains_key(&turn) {
                        return Err(format!("turn {turn} continued but was never committed"));
                    }
                    if self.audio_sent_ms.contains_key(&turn) {
                        return Err(format!("turn {turn} continued after its reply was heard"));
                    }
                    if self.ended.contains(&turn) || !self.continued.insert(turn) {
                        return Err(format!("turn {turn} continued after its reply ended"));
                    }
                }
                Action::PlanReply {
                    turn,
                    plan,
                    user_text,
                    ..
                } => {
                    self.plan_texts.insert(plan, user_text);
                    // A faulting prompt plug-in leaves the built-in prompt (an LLM request).
                    let fault = self.p.policy == 6 && self.rng.below(2) == 0;
                    let output = if !fault && self.rng.below(5) == 0 {
                        PromptOutput::Direct {
                            text: format!("Direct d{turn}a d{turn}b."),
                        }
                    } else {
                        PromptOutput::Llm {
                            messages: Vec::new(),
                            settings: GenerationSettings::default(),
                        }
                    };
                    let at = self.now + self.p.plan_delay + if fault { PLUGIN_FAULT_MS } else { 0 };
                    self.schedule(
                        at,
                        Owner::Plan,
                        Event::ReplyPlanned {
                            turn,
                            plan,
                            output,
                            plugins_ms: 0.1,
                        },
                    );
                }
                Action::StartLlm { turn, .. } => {
                    let Some(text) = self.answering_plan.and_then(|p| self.plan_texts.get(&p))
                    else {
                        return Err("an LLM stream started outside a plan's answer".into());
                    };
                    let text = text.clone();
                    let speculative = !self.committed.contains_key(&turn);
                    self.speculative_streams += usize::from(speculative);
                    self.start_llm(turn, text, speculative);
                }
                Action::CancelLlm { turn } => self.cancel(Owner::Llm(turn)),
                Action::StartTts { turn } => {
                    self.tts_ready_at.insert(turn, self.now);
                }
                Action::SpeakSentence { turn, text } => {
                    if !text.ends_with(['.', '?', '!']) {
                        return Err(format!("a fragment was spoken: {text:?}"));
                    }
                    self.check_stream_words(turn, &text)?;
                    self.spoken.entry(turn).or_default().push(text.clone());
                    self.tts_item(turn, Some(text));
                }
                Action::FlushTts { turn } => self.tts_item(turn, None),
                Action::CancelTts { turn } => self.cancel(Owner::Tts(turn)),
                Action::AskBargeIn { turn, seq, event } => {
                    let (decision, after) = self.decision(&event);
                    let at = self.now + after;
                    self.schedule(
                        at,
                        Owner::Policy,
                        Event::BargeInDecided {
                            turn,
                            seq,
                            decision,
                        },
                    );
                }
                Action::AskTurn { seq, .. } => {
                    let decision = match self.p.turn_policy {
                        2 => TurnDecision::EndTurn,
                        3 => match self.rng.below(3) {
                            0 => TurnDecision::EndTurn,
                            1 => TurnDecision::Wait(0),
                            _ => TurnDecision::Wait(self.rng.below(8000) as u32),
                        },
                        4 => continue,
                        _ => TurnDecision::Wait(0),
                    };
                    let answer = Event::TurnDecided { seq, decision };
                    if self.p.turn_delay == 0 {
                        at_once.push(answer);
                    } else {
                        let at = self.now + self.p.turn_delay;
                        self.schedule(at, Owner::TurnPolicy, answer);
                    }
                }
                Action::EndSpeech => {}
                Action::Metrics(_) => {}
                Action::Close { .. } => self.closed = true,
            }
        }
        for answer in at_once {
            self.feed(answer)?;
        }
        Ok(())
    }

    /// What the session did, per ms of virtual time, in a fixed order within each ms.
    fn client_log(&self) -> Vec<(u64, String)> {
        let mut log = self.log.clone();
        log.sort();
        log
    }

    /// Every generated word of reply `turn` must come from a stream planned on the words the
    /// turn was committed with (a preemptive stream for other words never speaks).
    fn check_stream_words(&self, turn: u32, text: &str) -> Result<(), String> {
        if !self.committed.contains_key(&turn) {
            // Not a user's turn: the greeting, or the rest of a reply a false barge-in stopped
            // (words of a reply checked when it was spoken).
            return Ok(());
        }
        for word in text.split_whitespace().filter(|w| w.starts_with('r')) {
            let stream: Option<usize> = word
                .split_once('s')
                .and_then(|(_, rest)| rest.split_once('x'))
                .and_then(|(n, _)| n.parse().ok());
            let Some(planned_on) = stream.and_then(|n| self.stream_texts.get(n)) else {
                return Err(format!("reply {turn}: a word of no stream: {word:?}"));
            };
            if self.committed.get(&turn) != Some(planned_on) {
                return Err(format!(
                    "reply {turn} committed on {:?} speaks {word:?}, generated for {planned_on:?}",
                    self.committed.get(&turn)
                ));
            }
        }
        Ok(())
    }

    /// Drop a cancelled stream's pending events, but now and then let one stale event through
    /// (it was already on its way). A preemptive stream's are all dropped, as the session task
    /// drops its receiver: its turn number is the next reply's too.
    fn cancel(&mut self, owner: Owner) {
        let keep_one = self.rng.below(4) == 0;
        let mut kept = false;
        let speculative = match owner {
            Owner::Llm(turn) => Some(Owner::SpeculativeLlm(turn)),
            _ => None,
        };
        self.queue.retain(|_, (o, _)| {
            if Some(*o) == speculative {
                return false;
            }
            if *o != owner {
                return true;
            }
            if keep_one && !kept {
                kept = true;
                return true;
            }
            false
        });
    }

    fn start_llm(&mut self, turn: u32, user_text: String, speculative: bool) {
        let stream = self.stream_texts.len();
        self.stream_texts.push(user_text);
        let owner = if speculative {
            Owner::SpeculativeLlm(turn)
        } else {
            Owner::Llm(turn)
        };
        let text = reply_text(turn, stream, &mut self.rng);
        let tokens = tokenize(&text, &mut self.rng);
        let ending = match self.rng.below(10) {
            0 => Ending::Error(self.rng.below(tokens.len() as u64 + 1) as usize),
            1 => Ending::Stall(self.rng.below(tokens.len() as u64 + 1) as usize),
            _ => Ending::Done,
        };
        self.llm_ending.insert(turn, ending);
        let mut at = self.now + self.p.first_token;
        let cut = match ending {
            Ending::Done => tokens.len(),
            Ending::Error(k) | Ending::Stall(k) => k,
        };
        for token in tokens.into_iter().take(cut) {
            self.schedule(
                at,
                owner,
                Event::Llm {
                    turn,
                    event: LlmEvent::Token(token),
                },
            );
            at += self.p.token_gap;
        }
        let last = match ending {
            Ending::Done => Some(LlmEvent::Done {
                finish_reason: Some("stop".into()),
                usage: None,
            }),
            Ending::Error(_) => Some(LlmEvent::Error(ProviderError::new(
                ProviderErrorKind::Unavailable,
                "sim",
                "the stream broke",
            ))),
            Ending::Stall(_) => None,
        };
        if let Some(event) = last {
            self.schedule(at, owner, Event::Llm { turn, event });
        }
    }

    /// Synthesise one sentence (or finish, for `None`), in order, possibly failing or stalling.
    fn tts_item(&mut self, turn: u32, text: Option<String>) {
        let n = {
            let c = self.tts_items.entry(turn).or_default();
            *c += 1;
            *c
        };
        // Each reply's speech fails or stalls at a chosen item now and then.
        let fate = (self.p.seed ^ u64::from(turn).wrapping_mul(0x2545_F491)) % 20;
        let fail_at = 2 + (self.p.seed % 3) as usize;
        if fate <= 1 && n > fail_at {
            return; // nothing more after a stall or an error
        }
        if fate == 0 && n == fail_at {
            return; // stalled
        }
        let ready = self.tts_ready_at.get(&turn).copied().unwrap_or(self.now);
        let at = ready.max(self.now) + self.p.tts_delay;
        self.tts_ready_at.insert(turn, at);
        if fate == 1 && n == fail_at {
            let error = ProviderError::new(ProviderErrorKind::Unavailable, "sim", "tts broke");
            self.schedule(at, Owner::Tts(turn), Event::TtsError { turn, error });
            return;
        }
        let event = match text {
            None => Event::TtsDone { turn },
            Some(text) => {
                let chars = text.chars().count() as u64;
                let ms = chars * self.p.ms_per_char;
                let alignment = self.p.aligned.then(|| Alignment {
                    chars: text.chars().collect(),
                    start_ms: (0..chars as u32)
                        .map(|i| i * self.p.ms_per_char as u32)
                        .collect(),
                    duration_ms: vec![self.p.ms_per_char as u32; chars as usize],
                });
                Event::TtsAudio {
                    turn,
                    bytes: vec![tag(turn); ms as usize * 32],
                    alignment,
                }
            }
        };
        self.schedule(at, Owner::Tts(turn), event);
    }

    fn client_sees(&mut self, m: ServerMessage) -> Result<(), String> {
        match m {
            ServerMessage::Transcript {
                turn,
                text,
                is_final: true,
            } => {
                if self.final_turns.last().is_some_and(|&t| t >= turn) {
                    return Err(format!("turn {turn} after turn {:?}", self.final_turns));
                }
                self.final_turns.push(turn);
                for w in text.split_whitespace().filter(|w| w.starts_with('u')) {
                    if let Some(t) = self.user_words_in_turns.insert(w.to_string(), turn) {
                        if !self.repeated_words.contains(w) {
                            return Err(format!("word {w} of turn {t} came back in turn {turn}"));
                        }
                    }
                }
            }
            ServerMessage::AgentText { turn, delta } => {
                // A reply the user's words may replace is not shown while they say them.
                if !self.audio_sent_ms.contains_key(&turn)
                    && self.orch.user_has_words()
                    && !self.draining
                {
                    return Err(format!(
                        "reply {turn} is shown while the user is saying words"
                    ));
                }
                // Deltas cut words anywhere: the whole words shown so far are checked.
                let shown = self.shown.entry(turn).or_default();
                shown.push_str(&delta);
                let whole = shown.rsplit_once(' ').map_or("", |(w, _)| w).to_string();
                self.check_stream_words(turn, &whole)?;
                if self.ended.contains(&turn) {
                    return Err(format!("text of reply {turn} after its end"));
                }
                if self.active.is_some_and(|a| a != turn) {
                    return Err(format!(
                        "reply {turn} streams while reply {:?} is active",
                        self.active
                    ));
                }
                self.active = Some(turn);
            }
            ServerMessage::Interrupt { turn } => {
                self.ended.insert(turn);
            }
            ServerMessage::AgentDone {
                turn,
                text,
                interrupted,
            } => {
                // A reply that ends whole was shown whole. (One that broke off may end in a
                // piece of a word.)
                let shown = self.shown.remove(&turn).unwrap_or_default();
                if !interrupted && shown != text {
                    return Err(format!(
                        "reply {turn} ended as {text:?}, shown as {shown:?}"
                    ));
                }
                *self.done.entry(turn).or_default() += 1;
                if self.done[&turn] > 1 {
                    return Err(format!("reply {turn} ended twice"));
                }
                self.ended.insert(turn);
                if self.active == Some(turn) {
                    self.active = None;
                }
                if self.continued.contains(&turn) && (!interrupted || !text.is_empty()) {
                    return Err(format!(
                        "turn {turn} continued, but its reply was not dropped"
                    ));
                }
                self.check_remembered(turn, &text, interrupted)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// What a reply leaves in memory: a prefix of what was spoken, no more than was heard.
    fn check_remembered(&self, turn: u32, text: &str, interrupted: bool) -> Result<(), String> {
        let spoken = words(
            &self
                .spoken
                .get(&turn)
                .cloned()
                .unwrap_or_default()
                .join(" "),
        );
        let text = words(text);
        if !spoken.starts_with(&text) {
            return Err(format!(
                "reply {turn} remembered {text:?}, not a prefix of {spoken:?}"
            ));
        }
        if interrupted {
            // Characters whose audio was sent (each sentence is synthesised on its own, so the
            // space that joins two sentences comes with the second).
            let sent = self.audio_sent_ms.get(&turn).copied().unwrap_or(0);
            let mut left = sent;
            let mut audible = 0;
            for (i, sentence) in self.spoken.get(&turn).into_iter().flatten().enumerate() {
                let chars = sentence.chars().count() as u64;
                let covered = (left / self.p.ms_per_char).min(chars);
                audible += covered as usize + usize::from(i > 0 && covered > 0);
                left = left.saturating_sub(chars * self.p.ms_per_char);
            }
            if text.chars().count() > audible + 1 {
                return Err(format!(
                    "reply {turn} remembered {text:?}, more than the {sent} ms sent"
                ));
            }
        }
        if !text.is_empty() {
            let last = self
                .orch
                .memory()
                .messages()
                .into_iter()
                .rev()
                .find(|m| m.role == Role::Assistant);
            if !last.is_some_and(|m| words(&m.content).ends_with(&text)) {
                return Err(format!("reply {turn}: memory does not end with {text:?}"));
            }
        }
        Ok(())
    }

    /// Once inputs stop, the session is idle again in bounded time, and every turn is answered.
    fn check_settled(&self) -> Result<(), String> {
        if !self.orch.is_closed() {
            if self.orch.state() != State::Listening || !self.orch.is_idle() {
                return Err(format!(
                    "not back to listening: {:?}, idle {}",
                    self.orch.state(),
                    self.orch.is_idle()
                ));
            }
            if self.orch.next_wakeup().is_some() {
                return Err("an idle session still has a timer".into());
            }
        }
        for turn in &self.final_turns {
            if self.done.get(turn).copied().unwrap_or(0) != 1 {
                return Err(format!("turn {turn} never got its agent_done"));
            }
        }
        if let Some(a) = self.active {
            return Err(format!("reply {a} never ended"));
        }
        if self.preemptions_counted != self.speculative_streams {
            return Err(format!(
                "{} preemptive streams, {} counted used or wasted",
                self.speculative_streams, self.preemptions_counted
            ));
        }
        Ok(())
    }
}

/// Longest a session may take to settle once inputs stop (virtual ms): past the stall
/// watchdogs, the silence timeout and the longest scripted reply.
const SETTLE_MS: u64 = 60_000;

fn run(script: &Script) -> Result<(), String> {
    simulate(script).map(drop)
}

/// Runs `script` and checks the invariants; the finished simulation for further checks.
fn simulate(script: &Script) -> Result<Sim, String> {
    let mut sim = Sim::new(script.profile.clone());
    sim.start()?;
    for (delay, input) in &script.steps {
        let t = sim.now + delay;
        sim.run_until(t)?;
        if sim.closed {
            break;
        }
        sim.user(input.clone())?;
    }
    // The user goes quiet: the VAD ends any speech it was hearing.
    if !sim.closed {
        sim.feed(Event::Vad(VadTransition::SpeechEnd { at_ms: sim.now }))?;
    }
    let end = sim.now + SETTLE_MS;
    sim.run_until(end)?;
    sim.check_settled()?;
    Ok(sim)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Sessions generated by the normal test command; `SIM_CASES` overrides, e.g. for a long
        // run.
        cases: crate::session::generated_cases::from_env("SIM_CASES", 10_000),
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_sessions_keep_every_invariant(script in script()) {
        if let Err(why) = run(&script) {
            prop_assert!(false, "{why}");
        }
    }

    /// The built-in answer of the end-of-turn slot, given at once, leaves every session exactly
    /// as it is without a turn plug-in: same messages, audio and provider calls at the same
    /// virtual times.
    #[test]
    fn a_policy_answering_wait_0_changes_nothing(script in script()) {
        let without = Script {
            profile: Profile { turn_policy: 0, ..script.profile.clone() },
            steps: script.steps.clone(),
        };
        let with = Script {
            profile: Profile { turn_policy: 1, turn_delay: 0, ..script.profile.clone() },
            steps: script.steps.clone(),
        };
        match (simulate(&without), simulate(&with)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.client_log(), b.client_log()),
            (a, b) => prop_assert!(false, "{:?} / {:?}", a.err(), b.err()),
        }
    }
}

// ---- shrunk failures of generated runs, kept as named cases ----

fn profile_of(seed: u64) -> Profile {
    Profile {
        seed,
        plan_delay: 0,
        decide_delay: 0,
        policy: 0,
        first_token: 0,
        token_gap: 0,
        tts_delay: 0,
        ms_per_char: 60,
        aligned: false,
        finalize_answer: None,
        turn_policy: 0,
        turn_delay: 0,
        preemptive: false,
    }
}

/// A stopped session kept the silence timer of the words it had: the session task would spin.
#[test]
fn regression_a_stopped_session_keeps_no_timer() {
    let script = Script {
        profile: profile_of(493_481_913_581),
        steps: vec![(0, Input::Interim(0)), (0, Input::Stop)],
    };
    run(&script).unwrap();
}

/// A playback report made before any audio was sent was projected forward from then, so the
/// lead still in the client's buffer counted as heard.
#[test]
fn regression_an_early_playback_report_does_not_count_the_unplayed_lead() {
    let script = Script {
        profile: Profile {
            plan_delay: 43,
            first_token: 701,
            token_gap: 43,
            tts_delay: 249,
            ms_per_char: 55,
            ..profile_of(1_389_250_621_123_174_687)
        },
        steps: vec![
            (0, Input::Typed(1)),
            (218, Input::Playback { of: 0, pct: 0 }),
            (1427, Input::VadStart),
            (1419, Input::Stop),
        ],
    };
    run(&script).unwrap();
}

/// The policy's end of speech was fed back by the I/O in the middle of the actions of the event
/// that caused it: the reply it interrupted then had audio applied after its end.
#[test]
fn regression_the_policy_ends_speech_within_the_event_that_decided_it() {
    let script = Script {
        profile: Profile {
            plan_delay: 299,
            policy: 3,
            first_token: 403,
            token_gap: 8,
            tts_delay: 139,
            ms_per_char: 57,
            turn_policy: 2,
            turn_delay: 185,
            ..profile_of(4_739_239_879_424_915_998)
        },
        steps: vec![
            (0, Input::VadStart),
            (0, Input::Interim(0)),
            (0, Input::VadEnd),
            (0, Input::Typed(1)),
            (
                0,
                Input::Final {
                    n: 0,
                    speech_final: false,
                    from_finalize: false,
                    repeat: true,
                },
            ),
            (299, Input::Typed(1)),
            (
                299,
                Input::Final {
                    n: 1,
                    speech_final: false,
                    from_finalize: false,
                    repeat: false,
                },
            ),
            (308, Input::VadStart),
            (
                555,
                Input::Final {
                    n: 0,
                    speech_final: false,
                    from_finalize: true,
                    repeat: true,
                },
            ),
            (1230, Input::VadPause),
            (185, Input::VadStart),
        ],
    };
    run(&script).unwrap();
}
