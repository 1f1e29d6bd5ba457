//! The session's output to its transport: a queue bounded by audio time, with a close that
//! overtakes everything queued.
//!
//! Agent audio is paced at real time plus a small lead, so a client that reads its socket keeps
//! this queue nearly empty. One that stops reading makes it grow: past `max_audio_ms` of queued
//! audio (or a full queue) the session is told the client is too slow, and its close request
//! ([`OutboundTx::close_now`]) reaches the writer at once instead of waiting behind the audio it
//! could not deliver. An ordinary close ([`OutboundTx::close`]) goes out after what is queued, so
//! an `error` or `shutdown` sent before it is not lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Queued audio past which a client counts as not reading (ms).
pub const MAX_QUEUED_AUDIO_MS: u64 = 1000;
/// Queued messages at most (JSON events and audio chunks together).
const CAPACITY: usize = 256;

/// From the session to the transport.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Json(String),
    Audio(Vec<u8>),
    Close { code: u16, reason: String },
}

/// Why an item could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The client does not read fast enough: the queue holds too much audio, or is full.
    TooSlow,
    /// The transport has gone.
    Closed,
}

struct Item {
    out: Outbound,
    audio_ms: u64,
}

/// Whether this connection was counted as a client not reading. The session (queue full) and
/// the writer (a send timed out) can each find it out; the connection is counted once.
#[derive(Clone, Default)]
struct SlowClient(Arc<AtomicBool>);

impl SlowClient {
    /// Counts the connection in `voice_slow_clients_total` the first time; `true` then.
    fn report(&self) -> bool {
        let first = !self.0.swap(true, Ordering::Relaxed);
        if first {
            crate::metrics::global().slow_clients.inc();
        }
        first
    }
}

/// The session's end of the queue. Cheap to clone (the transport's reader shares it).
#[derive(Clone)]
pub struct OutboundTx {
    tx: mpsc::Sender<Item>,
    queued_audio_ms: Arc<AtomicU64>,
    max_audio_ms: u64,
    /// A close was queued: nothing more is accepted.
    closing: Arc<AtomicBool>,
    close: Arc<watch::Sender<Option<(u16, String)>>>,
    slow: SlowClient,
}

/// The transport's end of the queue.
pub struct OutboundRx {
    rx: mpsc::Receiver<Item>,
    queued_audio_ms: Arc<AtomicU64>,
    close: watch::Receiver<Option<(u16, String)>>,
    slow: SlowClient,
}

/// A queue that counts a client as too slow past `max_audio_ms` of undelivered audio.
pub fn channel(max_audio_ms: u64) -> (OutboundTx, OutboundRx) {
    let (tx, rx) = mpsc::channel(CAPACITY);
    let (close_tx, close_rx) = watch::channel(None);
    let queued = Arc::new(AtomicU64::new(0));
    let slow = SlowClient::default();
    (
        OutboundTx {
            tx,
            queued_audio_ms: queued.clone(),
            max_audio_ms,
            closing: Arc::new(AtomicBool::new(false)),
            close: Arc::new(close_tx),
            slow: slow.clone(),
        },
        OutboundRx {
            rx,
            queued_audio_ms: queued,
            close: close_rx,
            slow,
        },
    )
}

impl OutboundTx {
    /// Queue a JSON event.
    pub fn json(&self, text: String) -> Result<(), SendError> {
        self.push(Outbound::Json(text), 0)
    }

    /// Queue `ms` of agent audio.
    pub fn audio(&self, bytes: Vec<u8>, ms: u64) -> Result<(), SendError> {
        let queued = self.queued_audio_ms.load(Ordering::Relaxed);
        if queued + ms > self.max_audio_ms {
            return Err(SendError::TooSlow);
        }
        self.push(Outbound::Audio(bytes), ms)
    }

    fn push(&self, out: Outbound, audio_ms: u64) -> Result<(), SendError> {
        if self.closing.load(Ordering::Relaxed) || self.close.borrow().is_some() {
            return Err(SendError::Closed);
        }
        self.queued_audio_ms.fetch_add(audio_ms, Ordering::Relaxed);
        self.tx.try_send(Item { out, audio_ms }).map_err(|e| {
            self.queued_audio_ms.fetch_sub(audio_ms, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => SendError::TooSlow,
                mpsc::error::TrySendError::Closed(_) => SendError::Closed,
            }
        })
    }

    /// Close the connection with `code` once everything queued so far has been written.
    /// Nothing sent after it goes out.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let reason = reason.into();
        if self.closing.swap(true, Ordering::Relaxed) {
            return;
        }
        let item = Item {
            out: Outbound::Close {
                code,
                reason: reason.clone(),
            },
            audio_ms: 0,
        };
        if self.tx.try_send(item).is_err() {
            // No room behind the queue: the close cannot wait.
            self.close_now(code, reason);
        }
    }

    /// Close the connection with `code` now: the writer sends the close frame next, ahead of
    /// anything still queued (which is dropped). The first close asked for wins.
    pub fn close_now(&self, code: u16, reason: impl Into<String>) {
        self.closing.store(true, Ordering::Relaxed);
        let reason = reason.into();
        self.close.send_if_modified(|c| {
            if c.is_some() {
                return false;
            }
            *c = Some((code, reason));
            true
        });
    }

    /// Audio queued and not yet taken by the writer (ms).
    pub fn queued_audio_ms(&self) -> u64 {
        self.queued_audio_ms.load(Ordering::Relaxed)
    }

    /// The client is not reading: count the connection (once, whoever finds out first).
    pub fn report_slow_client(&self) -> bool {
        self.slow.report()
    }
}

impl OutboundRx {
    /// The next thing to write: a close request first, else the queued items in order. `None`
    /// once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            if let Some((code, reason)) = self.close.borrow_and_update().clone() {
                return Some(Outbound::Close { code, reason });
            }
            tokio::select! {
                biased;
                changed = self.close.changed() => {
                    if changed.is_err() {
                        // Every sender is gone without a close: drain what is left.
                        let item = self.rx.recv().await;
                        return self.take(item);
                    }
                }
                item = self.rx.recv() => {
                    return self.take(item);
                }
            }
        }
    }

    /// The client is not reading: count the connection (once, whoever finds out first).
    pub fn report_slow_client(&self) -> bool {
        self.slow.report()
    }

    fn take(&self, item: Option<Item>) -> Option<Outbound> {
        let item = item?;
        self.queued_audio_ms
            .fetch_sub(item.audio_ms, Ordering::Relaxed);
        Some(item.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn audio_past_the_bound_is_refused_as_too_slow() {
        let (tx, mut rx) = channel(100);
        for _ in 0..5 {
            tx.audio(vec![0; 640], 20).unwrap();
        }
        assert_eq!(tx.audio(vec![0; 640], 20), Err(SendError::TooSlow));
        assert!(tx.json("{}".into()).is_ok(), "events still fit");
        assert!(matches!(rx.recv().await, Some(Outbound::Audio(_))));
        assert_eq!(tx.queued_audio_ms(), 80);
        assert!(tx.audio(vec![0; 640], 20).is_ok(), "room again once read");
    }

    #[test]
    fn a_slow_client_is_counted_once_whoever_finds_out() {
        let (tx, rx) = channel(100);
        assert!(tx.report_slow_client(), "the session finds out first");
        assert!(
            !rx.report_slow_client(),
            "the writer's timeout is the same client"
        );
        assert!(!tx.clone().report_slow_client());
        let (tx, rx) = channel(100);
        assert!(rx.report_slow_client());
        assert!(!tx.report_slow_client());
    }

    #[tokio::test]
    async fn a_close_overtakes_what_is_queued() {
        let (tx, mut rx) = channel(1000);
        tx.audio(vec![0; 640], 20).unwrap();
        tx.json("{}".into()).unwrap();
        tx.close_now(1008, "client not reading");
        tx.close_now(1000, "later");
        assert_eq!(
            rx.recv().await,
            Some(Outbound::Close {
                code: 1008,
                reason: "client not reading".into()
            })
        );
        assert_eq!(tx.json("{}".into()), Err(SendError::Closed));
    }

    #[tokio::test]
    async fn an_ordinary_close_goes_out_after_what_is_queued() {
        let (tx, mut rx) = channel(1000);
        tx.json("error".into()).unwrap();
        tx.close(1008, "no start message");
        assert_eq!(tx.json("late".into()), Err(SendError::Closed));
        assert_eq!(rx.recv().await, Some(Outbound::Json("error".into())));
        assert_eq!(
            rx.recv().await,
            Some(Outbound::Close {
                code: 1008,
                reason: "no start message".into()
            })
        );
    }

    #[tokio::test]
    async fn senders_gone_ends_the_queue_after_what_was_sent() {
        let (tx, mut rx) = channel(1000);
        tx.json("a".into()).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(Outbound::Json("a".into())));
        assert_eq!(rx.recv().await, None);
    }
}
