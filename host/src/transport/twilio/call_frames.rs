//! Twilio's side of a call once it runs: text frames turned into [`Inbound`] items, read by the
//! session task itself (as `/agent`'s `ClientFrames`: one task woken per frame, no channel).
//! Audio sustained faster than twice real time is dropped, and the idle and call-length limits
//! end the call (1008).

use super::inbound::inbound;
use super::marks::PlaybackMarks;
use crate::session::{Inbound, OutboundTx};
use crate::transport::input_limits::InputLimits;
use crate::transport::protocol::close;
use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::{SplitStream, Stream, StreamExt};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Checked input of one call; ends (`None`) when Twilio closes the stream or a limit is hit.
pub(super) struct CallFrames {
    socket: SplitStream<WebSocket>,
    limits: InputLimits,
    marks: Arc<Mutex<PlaybackMarks>>,
    /// The close for a limit goes straight to Twilio.
    out: OutboundTx,
    ended: bool,
    /// Dropped with this value: the call's supervisor then stops a session slow to wind down.
    _gone: oneshot::Sender<()>,
}

impl CallFrames {
    /// Reads `socket` under `limits`; the receiver resolves once this value is dropped.
    pub(super) fn new(
        socket: SplitStream<WebSocket>,
        limits: InputLimits,
        marks: Arc<Mutex<PlaybackMarks>>,
        out: OutboundTx,
    ) -> (Self, oneshot::Receiver<()>) {
        let (gone, gone_rx) = oneshot::channel();
        let frames = Self {
            socket,
            limits,
            marks,
            out,
            ended: false,
            _gone: gone,
        };
        (frames, gone_rx)
    }

    /// What a frame means to the session, if anything.
    fn frame(&mut self, frame: Message) -> Option<Inbound> {
        self.limits.touch();
        let item = match frame {
            Message::Text(text) => inbound(&text, &self.marks),
            Message::Close(_) => {
                self.ended = true;
                return None;
            }
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => None,
        };
        // Twilio has no channel for an error, so dropped audio is logged (at most once a second).
        if let Some(Inbound::Audio(bytes)) = &item {
            if let Err(report) = self.limits.audio(bytes.len()) {
                if report.is_some() {
                    tracing::warn!("call audio arrives faster than real time; frames dropped");
                }
                return None;
            }
        }
        item
    }
}

impl Stream for CallFrames {
    type Item = Inbound;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let this = self.get_mut();
        while !this.ended {
            match this.socket.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(item) = this.frame(frame) {
                        return Poll::Ready(Some(item));
                    }
                }
                Poll::Ready(None | Some(Err(_))) => this.ended = true,
                Poll::Pending => {
                    return match this.limits.poll_expired(cx) {
                        Poll::Ready(why) => {
                            tracing::info!(reason = why.reason(), "call ended by a limit");
                            this.out.close(close::POLICY, why.reason());
                            this.ended = true;
                            Poll::Ready(None)
                        }
                        Poll::Pending => Poll::Pending,
                    }
                }
            }
        }
        Poll::Ready(None)
    }
}
