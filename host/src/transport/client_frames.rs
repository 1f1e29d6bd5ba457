//! The client's side of a `/agent` session once it runs: WebSocket frames checked and turned
//! into [`Inbound`] items, read by the session task itself.
//!
//! Why a stream the session polls rather than a reader task feeding a channel: every 20 ms
//! audio frame then wakes one task instead of two and crosses no channel, which is most of what
//! a listening session costs the host. The checks are the same: oversized frames end the
//! session (1009), audio faster than twice real time and typed turns over the rate are dropped
//! with an error, and the idle and session-length limits end it (1008).

use super::input_limits::InputLimits;
use super::protocol::{
    close, ClientMessage, ServerMessage, MAX_AUDIO_FRAME_BYTES, MAX_TEXT_FRAME_BYTES,
};
use crate::session::{Inbound, OutboundTx};
use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::{SplitStream, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Checked client input of one session; ends (`None`) when the client leaves or breaks a limit.
pub struct ClientFrames {
    socket: SplitStream<WebSocket>,
    limits: InputLimits,
    /// Errors and the close for limits broken here go straight to the client.
    out: OutboundTx,
    ended: bool,
    /// Dropped with this value: tells the connection's supervisor that the client's side is
    /// over, so a session slow to wind down is stopped.
    _gone: oneshot::Sender<()>,
}

impl ClientFrames {
    /// Reads `socket` under `limits`; `gone` resolves once this value is dropped.
    pub fn new(
        socket: SplitStream<WebSocket>,
        limits: InputLimits,
        out: OutboundTx,
    ) -> (Self, oneshot::Receiver<()>) {
        let (gone, gone_rx) = oneshot::channel();
        let frames = Self {
            socket,
            limits,
            out,
            ended: false,
            _gone: gone,
        };
        (frames, gone_rx)
    }

    /// Ends the stream with a fatal error and a close.
    fn end(&mut self, error: ServerMessage, code: u16, reason: &str) -> Poll<Option<Inbound>> {
        let _ = self.out.json(error.to_json());
        self.out.close(code, reason);
        self.ended = true;
        Poll::Ready(None)
    }

    /// What a frame means to the session: `Ready` ends the poll with it, `None` skips it.
    fn frame(&mut self, frame: Message) -> Option<Poll<Option<Inbound>>> {
        let inbound = match frame {
            Message::Binary(bytes) => {
                if bytes.len() > MAX_AUDIO_FRAME_BYTES {
                    return Some(self.end(
                        ServerMessage::error(
                            "frame_too_large",
                            format!("audio frames may be at most {MAX_AUDIO_FRAME_BYTES} bytes"),
                            true,
                        ),
                        close::TOO_BIG,
                        "frame too large",
                    ));
                }
                if let Err(report) = self.limits.audio(bytes.len()) {
                    if let Some(error) = report {
                        let _ = self.out.json(error);
                    }
                    return None;
                }
                Inbound::Audio(bytes)
            }
            Message::Text(text) if text.len() > MAX_TEXT_FRAME_BYTES => Inbound::Error {
                code: "frame_too_large".into(),
                message: format!("text frames may be at most {MAX_TEXT_FRAME_BYTES} bytes"),
            },
            Message::Text(text) => match ClientMessage::parse(&text) {
                Ok(m @ ClientMessage::Text { .. }) => match self.limits.text_turn() {
                    Ok(()) => Inbound::Message(m),
                    Err(error) => {
                        let _ = self.out.json(error);
                        return None;
                    }
                },
                Ok(m) => {
                    self.limits.touch();
                    Inbound::Message(m)
                }
                Err(e) => Inbound::Error {
                    code: e.code.into(),
                    message: e.message,
                },
            },
            Message::Close(_) => {
                self.ended = true;
                return Some(Poll::Ready(None));
            }
            Message::Ping(_) | Message::Pong(_) => return None,
        };
        Some(Poll::Ready(Some(inbound)))
    }
}

impl Stream for ClientFrames {
    type Item = Inbound;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            match this.socket.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(ready) = this.frame(frame) {
                        return ready;
                    }
                }
                // Includes frames over the WebSocket layer's limit.
                Poll::Ready(Some(Err(_))) => {
                    return this.end(
                        ServerMessage::error(
                            "frame_too_large",
                            "frame rejected by the WebSocket layer",
                            true,
                        ),
                        close::TOO_BIG,
                        "frame too large",
                    )
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        match this.limits.poll_expired(cx) {
            Poll::Ready(why) => {
                let error = why.error(this.limits.limits());
                this.end(error, close::POLICY, why.reason())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
