//! The fake `multi-stream-input` socket: many contexts on one socket, each opened by its first
//! message (a single space with the voice settings), fed text, flushed, and closed with
//! `close_context`; audio messages and `isFinal` name their context in camelCase `contextId`.
//!
//! Contexts are spoken side by side, one audio message at a time in turn. A context closed
//! after its flush finishes its audio and then gets `isFinal` (as the service does when a
//! client closes a context at the end of a reply); one closed before its flush (a barge-in)
//! loses its text not yet spoken, but one audio message already under way still goes out
//! after the close, as the service's late audio does, and then `isFinal`. That late message
//! crosses the client's next message on the wire: it goes out once the client has said
//! something more (typically opened the next reply's context), the moment a client that routes
//! audio by arrival rather than by context would hand it to the wrong reply. `close_socket` ends
//! the contexts the same way and then closes with 1000. A socket that hears nothing for the
//! inactivity timeout closes with 1008 `input_timeout_exceeded`.

use super::messages::{self, MultiMessage};
use super::synth::{synthesise, Chunk};
use super::{
    close_with_error, idle_message, ContextLog, Shared, WsOptions, QUOTA_ERROR, QUOTA_MESSAGE,
    SCHEDULE_CHARS,
};
use crate::faults::Fault;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::time::Instant;

struct Context {
    id: String,
    /// Its index in the connection's [`ContextLog`]s.
    log: usize,
    /// Its opening message (the voice settings later messages may only repeat).
    init: Value,
    buffer: String,
    /// Audio generated and not sent yet.
    queue: VecDeque<Chunk>,
    /// The voice's time to first audio: the context's first audio goes no earlier.
    first_audio_at: Option<Instant>,
    flushed: bool,
    closing: bool,
    /// Closed unflushed: its late audio waits for the client's next message.
    late: bool,
}

/// When the faults of this connection strike, counted in audio messages sent.
struct FaultPlan {
    drop_after: Option<usize>,
    stall_after: Option<usize>,
    error_after: Option<usize>,
    malformed: bool,
}

impl FaultPlan {
    fn new(fault: &Option<Fault>) -> Self {
        Self {
            drop_after: match fault {
                Some(Fault::DropMidStream { after }) => Some(*after),
                _ => None,
            },
            stall_after: match fault {
                Some(Fault::Stall { after }) => Some(*after),
                _ => None,
            },
            error_after: match fault {
                Some(Fault::StreamError { after }) => Some(*after),
                _ => None,
            },
            malformed: matches!(fault, Some(Fault::Malformed)),
        }
    }
}

pub(super) async fn serve(mut socket: WebSocket, shared: Arc<Shared>, id: usize, opts: WsOptions) {
    let mut contexts: Vec<Context> = Vec::new();
    let mut opened = 0usize;
    let mut first_message = true;
    let mut plan = FaultPlan::new(&opts.fault);
    let mut sent_audio = 0usize;
    // Once stalled, the socket reads on but never speaks or finishes a context again.
    let mut stalled = false;
    let mut closing_socket = false;
    let mut next_turn = 0usize;
    let mut next_send = Instant::now();
    let mut idle_at = Instant::now() + opts.inactivity;
    let mut shutdown = shared.shutdown.clone();
    let ended: String = 'conn: loop {
        let due = contexts
            .iter()
            .filter(|c| !c.queue.is_empty() && !c.late && !stalled)
            .map(|c| c.first_audio_at.map_or(next_send, |t| t.max(next_send)))
            .min();
        let frame = tokio::select! {
            frame = socket.recv() => Some(frame),
            _ = tokio::time::sleep_until(due.unwrap_or(idle_at)), if due.is_some() => None,
            _ = tokio::time::sleep_until(idle_at) => {
                let _ = close_with_error(&mut socket, "input_timeout_exceeded", &idle_message(opts.inactivity)).await;
                break "idle".into();
            }
            _ = shutdown.wait() => break "shutdown".into(),
        };
        if let Some(frame) = frame {
            let text = match frame {
                None | Some(Err(_)) => break "client-gone".into(),
                Some(Ok(Message::Close(_))) => break "client-close".into(),
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(_)) => continue,
            };
            idle_at = Instant::now() + opts.inactivity;
            for c in &mut contexts {
                c.late = false;
            }
            let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
                let _ =
                    close_with_error(&mut socket, "invalid_input_message", messages::UNPARSEABLE)
                        .await;
                break "invalid".into();
            };
            shared.log.update(id, |r| r.messages.push(message.clone()));
            if std::mem::take(&mut first_message) {
                if let Some(expected) = &shared.script.api_key {
                    let presented = message
                        .get("xi_api_key")
                        .or_else(|| message.get("xi-api-key"))
                        .and_then(Value::as_str)
                        .or(opts.header_key.as_deref());
                    if presented != Some(expected.as_str()) {
                        let _ = close_with_error(&mut socket, "invalid_api_key", "Invalid API key")
                            .await;
                        break "auth".into();
                    }
                }
            }
            let named = message
                .get("context_id")
                .or_else(|| message.get("contextId"))
                .and_then(Value::as_str);
            let open = contexts
                .iter()
                .position(|c| Some(c.id.as_str()) == named && !c.closing);
            match messages::check_multi(&message, open.map(|i| &contexts[i].init)) {
                Err(refusal) => {
                    let _ = close_with_error(&mut socket, refusal.code, &refusal.message).await;
                    break "invalid".into();
                }
                Ok(MultiMessage::CloseSocket) => {
                    closing_socket = true;
                    for c in &mut contexts {
                        close_context(&shared, id, c);
                        // Nothing more will come from the client to cross.
                        c.late = false;
                    }
                }
                Ok(MultiMessage::Context {
                    id: context,
                    text,
                    flush,
                    close,
                }) => {
                    let Some(i) = open else {
                        if !close {
                            shared.log.update(id, |r| {
                                r.contexts.push(ContextLog {
                                    id: context.clone(),
                                    ..ContextLog::default()
                                })
                            });
                            contexts.push(Context {
                                id: context,
                                log: opened,
                                init: message.clone(),
                                buffer: String::new(),
                                queue: VecDeque::new(),
                                first_audio_at: None,
                                flushed: false,
                                closing: false,
                                late: false,
                            });
                            opened += 1;
                        }
                        continue;
                    };
                    let c = &mut contexts[i];
                    c.buffer.push_str(&text);
                    let generate = flush
                        || opts.auto_mode
                        || c.buffer.chars().count() >= SCHEDULE_CHARS
                        || message
                            .get("try_trigger_generation")
                            .and_then(Value::as_bool)
                            == Some(true);
                    if generate && !c.buffer.trim().is_empty() {
                        let spoken = std::mem::take(&mut c.buffer);
                        c.queue.extend(synthesise(spoken.trim_start(), opts.format));
                        c.first_audio_at.get_or_insert_with(|| {
                            Instant::now() + shared.script.first_audio_delay
                        });
                    }
                    c.flushed |= flush;
                    if close {
                        close_context(&shared, id, c);
                    }
                }
            }
        } else {
            // Audio is due: the next context in turn that has some ready.
            let now = Instant::now();
            let n = contexts.len();
            let Some(i) = (0..n).map(|k| (next_turn + k) % n).find(|&i| {
                !contexts[i].queue.is_empty()
                    && !contexts[i].late
                    && contexts[i].first_audio_at.is_none_or(|t| t <= now)
            }) else {
                continue;
            };
            next_turn = i + 1;
            if plan.drop_after == Some(sent_audio) {
                break 'conn "dropped-by-fault".into();
            }
            if plan.error_after == Some(sent_audio) {
                let _ = close_with_error(&mut socket, QUOTA_ERROR, QUOTA_MESSAGE).await;
                break 'conn "error-by-fault".into();
            }
            if plan.stall_after == Some(sent_audio) {
                stalled = true;
                continue;
            }
            if std::mem::take(&mut plan.malformed)
                && socket
                    .send(Message::Text("{\"audio\":".into()))
                    .await
                    .is_err()
            {
                break 'conn "client-gone".into();
            }
            let c = &mut contexts[i];
            let Some(chunk) = c.queue.pop_front() else {
                continue;
            };
            let mut message = chunk.message();
            message["contextId"] = json!(c.id);
            if socket
                .send(Message::Text(message.to_string().into()))
                .await
                .is_err()
            {
                break 'conn "client-gone".into();
            }
            sent_audio += 1;
            let (bytes, log, late) = (chunk.audio.len(), c.log, c.closing);
            shared.log.update(id, |r| {
                r.audio_messages_sent += 1;
                r.audio_bytes_sent += bytes;
                if let Some(l) = r.contexts.get_mut(log) {
                    l.audio_bytes_sent += bytes;
                    if late {
                        l.audio_bytes_after_close += bytes;
                    }
                }
            });
            next_send = Instant::now() + shared.script.chunk_interval;
        }
        if stalled {
            continue;
        }
        // Closed contexts whose audio is all out end with `isFinal`.
        while let Some(i) = contexts
            .iter()
            .position(|c| c.closing && c.queue.is_empty())
        {
            let c = contexts.remove(i);
            let fin = json!({"isFinal": true, "contextId": c.id});
            if socket
                .send(Message::Text(fin.to_string().into()))
                .await
                .is_err()
            {
                break 'conn "client-gone".into();
            }
            shared.log.update(id, |r| {
                if let Some(l) = r.contexts.get_mut(c.log) {
                    l.finished = true;
                }
            });
        }
        if closing_socket && contexts.is_empty() {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 1000,
                    reason: "".into(),
                })))
                .await;
            break "final".into();
        }
    };
    shared.log.update(id, |r| r.ended = Some(ended));
}

/// `close_context` (or `close_socket`): a flushed context finishes its audio; an unflushed one
/// drops its text, all but the one audio message already under way.
fn close_context(shared: &Shared, id: usize, c: &mut Context) {
    if c.closing {
        return;
    }
    c.closing = true;
    if !c.flushed {
        c.buffer.clear();
        c.queue.truncate(1);
        c.late = !c.queue.is_empty();
        let log = c.log;
        shared.log.update(id, |r| {
            if let Some(l) = r.contexts.get_mut(log) {
                l.closed_unflushed = true;
            }
        });
    }
}
