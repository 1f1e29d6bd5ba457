//! The writing half of a client connection, shared by protocol v1 and Twilio: the session's
//! output to the socket, every send bounded in time, so a client that stops reading cannot hold
//! a task (or its session slot) for longer than [`SEND_TIMEOUT`].

use super::protocol::close;
use crate::session::{Outbound, OutboundRx};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{Sink as FrameSink, SinkExt};
use std::time::Duration;
use tokio::sync::watch;

/// Longest a single frame may take to reach the socket's buffer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The sending half of a client's WebSocket.
pub type Sink = SplitSink<WebSocket, Message>;

/// What became of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Ok,
    /// The connection is closed or broken.
    Gone,
    /// The client has not taken the frame within [`SEND_TIMEOUT`]: it is not reading.
    TimedOut,
}

/// Send one frame within [`SEND_TIMEOUT`].
pub async fn send<S: FrameSink<Message> + Unpin>(sink: &mut S, frame: Message) -> Sent {
    match tokio::time::timeout(SEND_TIMEOUT, sink.send(frame)).await {
        Ok(Ok(())) => Sent::Ok,
        Ok(Err(_)) => Sent::Gone,
        Err(_) => Sent::TimedOut,
    }
}

/// Send a close frame (best effort, bounded in time).
pub async fn send_close<S: FrameSink<Message> + Unpin>(sink: &mut S, code: u16, reason: &str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    }));
    let _ = send(sink, frame).await;
}

/// Write the session's output until it closes, the client stops reading, or the server forces
/// every connection shut. `encode` turns a JSON event or an audio chunk into the frames of the
/// transport's protocol.
pub async fn run<S: FrameSink<Message> + Unpin>(
    mut sink: S,
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
            match send(&mut sink, frame).await {
                Sent::Ok => {}
                Sent::Gone => return,
                Sent::TimedOut => {
                    // Dropping the sink (and, as the session ends, the stream) closes the
                    // connection; a close frame could not get through either.
                    tracing::warn!("client not reading; connection dropped");
                    rx.report_slow_client();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::outbound;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A client that never takes a frame (its socket buffers are full).
    struct NotReading;

    impl FrameSink<Message> for NotReading {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
        fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), ()> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_does_not_read_is_given_up_on_after_the_send_timeout() {
        let (tx, rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS);
        let (_force_tx, force) = watch::channel(false);
        let before = crate::metrics::global().slow_clients.get();
        tx.audio(vec![0; 640], 20).unwrap();
        let started = tokio::time::Instant::now();
        run(NotReading, rx, force, |o| match o {
            Outbound::Audio(b) => vec![Message::Binary(b.into())],
            _ => Vec::new(),
        })
        .await;
        assert_eq!(started.elapsed(), SEND_TIMEOUT, "on the virtual clock");
        assert!(crate::metrics::global().slow_clients.get() > before);
        // The writer is gone: the session's next send learns the client is.
        assert_eq!(tx.json("{}".into()), Err(outbound::SendError::Closed));
    }
}
