//! The writing half of a client connection, shared by protocol v1 and Twilio: the session's
//! output to the socket, every send bounded in time, so a client that stops reading cannot hold
//! a task (or its session slot) for longer than [`SEND_TIMEOUT`].

use super::protocol::close;
use crate::session::{Outbound, OutboundRx};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use std::time::Duration;
use tokio::sync::watch;

/// Longest a single frame may take to reach the socket's buffer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The sending half of a client's WebSocket.
pub type Sink = SplitSink<WebSocket, Message>;

/// Send one frame within [`SEND_TIMEOUT`]; false when the client is gone or not reading.
pub async fn send(sink: &mut Sink, frame: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, sink.send(frame)).await,
        Ok(Ok(()))
    )
}

/// Send a close frame (best effort, bounded in time).
pub async fn send_close(sink: &mut Sink, code: u16, reason: &str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    }));
    send(sink, frame).await;
}

/// Write the session's output until it closes, the client stops reading, or the server forces
/// every connection shut. `encode` turns a JSON event or an audio chunk into the frames of the
/// transport's protocol.
pub async fn run(
    mut sink: Sink,
    mut rx: OutboundRx,
    mut force: watch::Receiver<bool>,
    mut encode: impl FnMut(Outbound) -> Vec<Message> + Send,
) {
    loop {
        let next = tokio::select! {
            o = rx.recv() => o,
            r = force.changed() => {
                if r.is_ok() {
                    send_close(&mut sink, close::GOING_AWAY, "server shutting down").await;
                    return;
                }
                continue;
            }
        };
        let frames = match next {
            Some(Outbound::Close { code, reason }) => {
                send_close(&mut sink, code, &reason).await;
                return;
            }
            None => {
                send_close(&mut sink, close::NORMAL, "").await;
                return;
            }
            Some(out) => encode(out),
        };
        for frame in frames {
            if !send(&mut sink, frame).await {
                tracing::warn!("client not reading; connection dropped");
                return;
            }
        }
    }
}
