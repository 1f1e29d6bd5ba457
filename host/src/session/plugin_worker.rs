//! The session's behaviours (intent analyzer, prompt shaper, barge-in and end-of-turn policies),
//! owned by one task
//! for the whole session. The session queues requests to it and gets answers back in order;
//! each batch of calls runs off the async workers (a plug-in call may take a while, a Python
//! instance milliseconds to start).
//!
//! Owning the behaviours in one place is what makes "a turn that arrives while plug-ins run" a
//! non-event: its request waits in the queue, and no request is ever dropped for want of a
//! behaviour that is busy elsewhere. A request that a newer one of the same kind supersedes is
//! skipped (its answer would be stale), so a burst of turns costs one plan, not five.

use crate::behaviour::defaults::BuiltinBehaviours;
use crate::behaviour::{
    BargeInDecision, BargeInEvent, BehaviourSource, Behaviours, ChatMessage, IntentInput,
    PromptInput, PromptOutput, TurnDecision, TurnEvent,
};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// What the session asks of its behaviours.
#[derive(Debug, Clone)]
pub enum Request {
    /// Run the intent analyzer and the prompt shaper for a user turn (a turn boundary: newer
    /// plug-in versions are picked up first). `plan` numbers the request; its answer carries it.
    Plan {
        turn: u32,
        plan: u32,
        user_text: String,
        history: Vec<ChatMessage>,
    },
    /// Ask the barge-in policy question `seq`.
    Decide {
        turn: u32,
        seq: u32,
        event: BargeInEvent,
    },
    /// Ask the end-of-turn policy question `seq`.
    Turn { seq: u32, event: TurnEvent },
    /// The user went on speaking after a turn the end-of-turn policy ended, before any of its
    /// reply was heard (counted against the version; nothing is answered).
    TurnContinued,
}

/// The behaviours' answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Planned {
        turn: u32,
        plan: u32,
        output: PromptOutput,
        /// Both calls together; the intent analyzer's share (it runs first) in `intent_ms`.
        plugins_ms: f64,
        intent_ms: f64,
    },
    Decided {
        turn: u32,
        seq: u32,
        decision: BargeInDecision,
        /// How long the barge-in policy took.
        took_ms: f64,
    },
    TurnDecided {
        seq: u32,
        decision: TurnDecision,
        /// How long the end-of-turn policy took.
        took_ms: f64,
    },
}

impl Request {
    /// Requests of one kind supersede each other.
    fn kind(&self) -> usize {
        match self {
            Request::Plan { .. } => 0,
            Request::Decide { .. } => 1,
            Request::Turn { .. } => 2,
            Request::TurnContinued => 3,
        }
    }
}

/// What a session's behaviours need to know about it.
#[derive(Clone)]
pub struct Context {
    pub source: Arc<dyn BehaviourSource>,
    pub session_id: String,
    pub system_prompt: String,
}

impl Context {
    /// Answer one request with `b` (a report has no answer).
    fn answer(&self, b: &mut Behaviours, request: Request) -> Option<Answer> {
        Some(match request {
            Request::Plan {
                turn,
                plan,
                user_text,
                history,
            } => {
                self.source.refresh(&self.session_id, b);
                let t0 = Instant::now();
                let intent = b.analyze(&IntentInput {
                    transcript: user_text.clone(),
                    turn,
                    history: history.clone(),
                });
                let intent_ms = t0.elapsed().as_secs_f64() * 1000.0;
                let output = b.shape(&PromptInput {
                    system_prompt: self.system_prompt.clone(),
                    history,
                    user_turn: user_text,
                    turn,
                    intent,
                });
                Answer::Planned {
                    turn,
                    plan,
                    output,
                    plugins_ms: t0.elapsed().as_secs_f64() * 1000.0,
                    intent_ms,
                }
            }
            Request::Decide { turn, seq, event } => {
                let t0 = Instant::now();
                let decision = b.decide(&event);
                Answer::Decided {
                    turn,
                    seq,
                    decision,
                    took_ms: t0.elapsed().as_secs_f64() * 1000.0,
                }
            }
            Request::Turn { seq, event } => {
                let t0 = Instant::now();
                let decision = b.decide_turn(&event);
                Answer::TurnDecided {
                    seq,
                    decision,
                    took_ms: t0.elapsed().as_secs_f64() * 1000.0,
                }
            }
            Request::TurnContinued => {
                b.turn_continued();
                return None;
            }
        })
    }
}

/// Answer `request` with the built-in behaviours (when the worker is gone).
pub fn answer_with_builtins(cx: &Context, request: Request) -> Option<Answer> {
    let mut b = BuiltinBehaviours::default().behaviours();
    cx.answer(&mut b, request)
}

/// Keep only the newest request of each kind, in arrival order: an older plan belongs to a turn
/// a newer one replaced, an older question to a barge-in (or a silence) already asked about again.
/// Reports (`TurnContinued`) are all kept.
fn supersede(batch: Vec<Request>) -> Vec<Request> {
    let mut last: Vec<Option<usize>> = (0..3)
        .map(|kind| batch.iter().rposition(|r| r.kind() == kind))
        .collect();
    // End-of-turn questions may arrive out of order (one waited for the model): the newest is
    // the highest number, not the last to arrive.
    last[2] = batch
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Request::Turn { seq, .. } => Some((*seq, i)),
            _ => None,
        })
        .max()
        .map(|(_, i)| i);
    batch
        .into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(r.kind()).is_none_or(|l| *l == Some(*i)))
        .map(|(_, r)| r)
        .collect()
}

/// Start the worker; requests go in, answers come out on `answers` in order.
pub fn spawn(cx: Context, answers: mpsc::Sender<Answer>) -> mpsc::UnboundedSender<Request> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
    tokio::spawn(async move {
        let mut behaviours = {
            let job = cx.clone();
            tokio::task::spawn_blocking(move || job.source.for_session(&job.session_id))
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(session = %cx.session_id, error = %e, "plug-in instantiation failed; using the built-in behaviours");
                    BuiltinBehaviours::default().behaviours()
                })
        };
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let work = supersede(batch);
            let job_cx = cx.clone();
            let job_work = work.clone();
            let done = tokio::task::spawn_blocking(move || {
                let mut b = behaviours;
                let out: Vec<Answer> = job_work
                    .into_iter()
                    .filter_map(|r| job_cx.answer(&mut b, r))
                    .collect();
                (b, out)
            })
            .await;
            let out = match done {
                Ok((b, out)) => {
                    behaviours = b;
                    out
                }
                Err(e) => {
                    // A behaviour panicked (the runtime contains plug-in faults, so this is a
                    // host bug): the session goes on with the built-ins, every request answered.
                    tracing::error!(session = %cx.session_id, error = %e, "behaviour call panicked; using the built-in behaviours");
                    behaviours = BuiltinBehaviours::default().behaviours();
                    work.into_iter()
                        .filter_map(|r| cx.answer(&mut behaviours, r))
                        .collect()
                }
            };
            for answer in out {
                if answers.send(answer).await.is_err() {
                    return;
                }
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(turn: u32) -> Request {
        Request::Plan {
            turn,
            plan: turn,
            user_text: format!("turn {turn}"),
            history: Vec::new(),
        }
    }

    fn ask(seq: u32) -> Request {
        Request::Decide {
            turn: 1,
            seq,
            event: BargeInEvent::default(),
        }
    }

    fn turns(rs: &[Request]) -> Vec<String> {
        rs.iter()
            .map(|r| match r {
                Request::Plan { turn, .. } => format!("plan {turn}"),
                Request::Decide { seq, .. } => format!("ask {seq}"),
                Request::Turn { seq, .. } => format!("turn question {seq}"),
                Request::TurnContinued => "continued".to_string(),
            })
            .collect()
    }

    #[test]
    fn only_the_newest_of_each_kind_is_answered() {
        let kept = supersede(vec![plan(1), ask(1), plan(2), ask(2), plan(3)]);
        assert_eq!(turns(&kept), ["ask 2", "plan 3"]);
    }

    fn turn_question(seq: u32) -> Request {
        Request::Turn {
            seq,
            event: crate::behaviour::TurnEvent {
                trigger: crate::behaviour::TurnTrigger::Pause,
                silence_ms: 200,
                speech_ms: 1000,
                text: String::new(),
                word_count: 0,
                text_final: false,
                model_probability: None,
                words_probability: None,
                agent_last_sentence: String::new(),
                turn: 1,
            },
        }
    }

    #[test]
    fn reports_are_never_superseded() {
        let kept = supersede(vec![
            Request::TurnContinued,
            plan(1),
            Request::TurnContinued,
            plan(2),
        ]);
        assert_eq!(turns(&kept), ["continued", "continued", "plan 2"]);
    }

    #[test]
    fn the_newest_end_of_turn_question_is_the_highest_number() {
        // Question 3 waited for the model and arrived after question 4.
        let kept = supersede(vec![turn_question(4), plan(1), turn_question(3)]);
        assert_eq!(turns(&kept), ["turn question 4", "plan 1"]);
    }

    #[tokio::test]
    async fn a_burst_of_plans_is_answered_for_the_newest_turn() {
        let (answers_tx, mut answers) = mpsc::channel(8);
        let cx = Context {
            source: Arc::new(BuiltinBehaviours::default()),
            session_id: "s".into(),
            system_prompt: String::new(),
        };
        let tx = spawn(cx, answers_tx);
        for turn in 1..=5 {
            tx.send(plan(turn)).unwrap();
        }
        let mut planned = Vec::new();
        while let Ok(Some(a)) =
            tokio::time::timeout(std::time::Duration::from_secs(5), answers.recv()).await
        {
            if let Answer::Planned { turn, .. } = a {
                planned.push(turn);
                if turn == 5 {
                    break;
                }
            }
        }
        assert_eq!(
            planned.last(),
            Some(&5),
            "the newest turn is always planned"
        );
        assert!(
            planned.windows(2).all(|w| w[0] < w[1]),
            "in order: {planned:?}"
        );
    }
}
