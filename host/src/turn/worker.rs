//! The end-of-turn model's own OS thread, fed by a bounded queue.
//!
//! Inference takes tens of milliseconds of CPU: on a tokio worker it would stall every session
//! sharing that worker, so it runs on one dedicated thread instead. Sessions pausing at about
//! the same time are answered by one run of the model: when the thread wakes it takes every
//! request waiting (up to [`MAX_BATCH`]) and runs them as one batch. On the 2-core reference
//! machine a batch saves no CPU (a clip costs about 22 ms alone, 25 ms in a batch of four:
//! docs/benchmarks.md) and every answer of a batch comes when its last would have, so
//! [`MAX_BATCH`] is the knob if the first answers matter more.
//! The queue is bounded: when it is full the request is refused at once ([`TurnModelError::Busy`])
//! and the caller decides without the model rather than waiting behind a backlog. A request
//! whose caller has gone (its future dropped) is skipped. The thread ends when every handle to
//! the queue is dropped.

use super::TurnModelError;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use tokio::sync::oneshot;

/// Requests that may wait for the thread; past this the queue answers `Busy`.
pub(crate) const QUEUE_LEN: usize = 16;
/// Most requests answered by one run of the model.
pub(crate) const MAX_BATCH: usize = 8;

/// What the thread runs: probabilities for a batch of clips, in order.
pub(crate) trait BatchModel: Send + 'static {
    fn predict(&mut self, clips: &[&[f32]]) -> Result<Vec<f32>, TurnModelError>;
}

impl BatchModel for super::smart_turn::SmartTurn {
    fn predict(&mut self, clips: &[&[f32]]) -> Result<Vec<f32>, TurnModelError> {
        super::smart_turn::SmartTurn::predict(self, clips)
    }
}

struct Request {
    audio: Vec<f32>,
    reply: oneshot::Sender<Result<f32, TurnModelError>>,
}

/// The sending side of the queue; cloning it is cheap.
#[derive(Clone)]
pub(crate) struct Worker {
    queue: SyncSender<Request>,
}

impl Worker {
    /// Starts the thread `name`, which owns `model`.
    pub(crate) fn spawn<M: BatchModel>(
        name: &str,
        model: M,
        queue_len: usize,
        max_batch: usize,
    ) -> std::io::Result<Self> {
        let (queue, requests) = mpsc::sync_channel(queue_len.max(1));
        let max_batch = max_batch.max(1);
        thread::Builder::new()
            .name(name.to_string())
            .spawn(move || serve(model, &requests, max_batch))?;
        Ok(Self { queue })
    }

    /// Queues `audio` and waits for its probability; a full queue answers `Busy` at once.
    pub(crate) async fn predict(&self, audio: Vec<f32>) -> Result<f32, TurnModelError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Request { audio, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(TurnModelError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(TurnModelError::Stopped),
        }
        answer.await.unwrap_or(Err(TurnModelError::Stopped))
    }
}

fn serve<M: BatchModel>(mut model: M, requests: &Receiver<Request>, max_batch: usize) {
    // Blocks until a request comes, then takes those already waiting behind it.
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        batch.retain(|r| !r.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let clips: Vec<&[f32]> = batch.iter().map(|r| r.audio.as_slice()).collect();
        // A panic must not take the thread (and every later answer) down with it.
        let answers =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.predict(&clips)))
                .unwrap_or_else(|_| {
                    tracing::error!("end-of-turn inference panicked; continuing");
                    Err(TurnModelError::Inference("inference panicked".into()))
                });
        match answers {
            Ok(probabilities) if probabilities.len() == batch.len() => {
                for (request, p) in batch.into_iter().zip(probabilities) {
                    let _ = request.reply.send(Ok(p));
                }
            }
            Ok(probabilities) => {
                let e = TurnModelError::Inference(format!(
                    "{} answers for {} requests",
                    probabilities.len(),
                    batch.len()
                ));
                for request in batch {
                    let _ = request.reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for request in batch {
                    let _ = request.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::sync::mpsc as async_mpsc;

    /// Answers each clip's first sample and panics on an empty clip. With a gate, each run
    /// first says how many clips it got and waits for a token, so a test can hold the thread.
    struct Echo {
        batches: Arc<Mutex<Vec<usize>>>,
        gate: Option<(async_mpsc::UnboundedSender<usize>, mpsc::Receiver<()>)>,
        dropped: Option<mpsc::Sender<()>>,
    }

    impl BatchModel for Echo {
        fn predict(&mut self, clips: &[&[f32]]) -> Result<Vec<f32>, TurnModelError> {
            if let Some((entered, gate)) = &self.gate {
                let _ = entered.send(clips.len());
                let _ = gate.recv();
            }
            self.batches.lock().unwrap().push(clips.len());
            if clips.iter().any(|c| c.is_empty()) {
                panic!("empty clip");
            }
            Ok(clips.iter().map(|c| c[0]).collect())
        }
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            if let Some(tx) = &self.dropped {
                let _ = tx.send(());
            }
        }
    }

    /// A model held at its gate: runs announce themselves on the first receiver and wait for a
    /// token on the sender.
    struct Gated {
        model: Echo,
        batches: Arc<Mutex<Vec<usize>>>,
        entered: async_mpsc::UnboundedReceiver<usize>,
        open: mpsc::Sender<()>,
    }

    fn gated() -> Gated {
        let (entered_tx, entered) = async_mpsc::unbounded_channel();
        let (open, gate) = mpsc::channel();
        let batches = Arc::new(Mutex::new(Vec::new()));
        Gated {
            model: Echo {
                batches: Arc::clone(&batches),
                gate: Some((entered_tx, gate)),
                dropped: None,
            },
            batches,
            entered,
            open,
        }
    }

    fn ask(worker: &Worker, value: f32) -> tokio::task::JoinHandle<Result<f32, TurnModelError>> {
        let worker = worker.clone();
        tokio::spawn(async move { worker.predict(vec![value]).await })
    }

    /// Lets the spawned requests run up to their queueing (this runtime has one thread).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn requests_waiting_together_are_answered_by_one_batched_run() {
        let Gated {
            model,
            batches,
            mut entered,
            open,
        } = gated();
        let worker = Worker::spawn("turn-test-batch", model, 16, 8).unwrap();
        // The first request occupies the thread ...
        let first = ask(&worker, 0.5);
        assert_eq!(entered.recv().await, Some(1));
        // ... while five more queue up behind it, and are run together.
        let rest: Vec<_> = (1..=5).map(|i| ask(&worker, i as f32 / 10.0)).collect();
        settle().await;
        open.send(()).unwrap();
        assert_eq!(entered.recv().await, Some(5));
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(0.5));
        for (i, r) in rest.into_iter().enumerate() {
            let expected = (i + 1) as f32 / 10.0;
            assert_eq!(r.await.unwrap(), Ok(expected), "each gets its own answer");
        }
        assert_eq!(*batches.lock().unwrap(), [1, 5]);
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_its_limit() {
        let Gated {
            model,
            batches,
            mut entered,
            open,
        } = gated();
        let worker = Worker::spawn("turn-test-limit", model, 16, 3).unwrap();
        let first = ask(&worker, 0.0);
        assert_eq!(entered.recv().await, Some(1));
        let rest: Vec<_> = (1..=7).map(|i| ask(&worker, i as f32)).collect();
        settle().await;
        for expected in [3, 3, 1] {
            open.send(()).unwrap();
            assert_eq!(entered.recv().await, Some(expected));
        }
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(0.0));
        for (i, r) in rest.into_iter().enumerate() {
            assert_eq!(r.await.unwrap(), Ok((i + 1) as f32));
        }
        assert_eq!(*batches.lock().unwrap(), [1, 3, 3, 1]);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let Gated {
            model,
            batches,
            mut entered,
            open,
        } = gated();
        let worker = Worker::spawn("turn-test-full", model, 2, 8).unwrap();
        // One request on the thread and two in the queue: the queue is full.
        let running = ask(&worker, 1.0);
        assert_eq!(entered.recv().await, Some(1));
        let queued = [ask(&worker, 2.0), ask(&worker, 2.0)];
        settle().await;
        let asked = std::time::Instant::now();
        assert_eq!(worker.predict(vec![3.0]).await, Err(TurnModelError::Busy));
        assert!(asked.elapsed() < Duration::from_millis(50));
        open.send(()).unwrap();
        assert_eq!(entered.recv().await, Some(2), "the queued two run together");
        open.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(1.0));
        for q in queued {
            assert_eq!(q.await.unwrap(), Ok(2.0));
        }
        assert_eq!(*batches.lock().unwrap(), [1, 2]);
        // Room again: the next request is served.
        let later = ask(&worker, 4.0);
        assert_eq!(entered.recv().await, Some(1));
        open.send(()).unwrap();
        assert_eq!(later.await.unwrap(), Ok(4.0));
    }

    #[tokio::test]
    async fn a_request_whose_caller_left_is_not_run() {
        let Gated {
            model,
            batches,
            mut entered,
            open,
        } = gated();
        let worker = Worker::spawn("turn-test-left", model, 4, 8).unwrap();
        let running = ask(&worker, 1.0);
        assert_eq!(entered.recv().await, Some(1));
        let abandoned = ask(&worker, 2.0);
        let kept = ask(&worker, 3.0);
        settle().await;
        abandoned.abort();
        settle().await;
        open.send(()).unwrap();
        assert_eq!(
            entered.recv().await,
            Some(1),
            "only the request still awaited"
        );
        open.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(1.0));
        assert_eq!(kept.await.unwrap(), Ok(3.0));
        assert_eq!(*batches.lock().unwrap(), [1, 1]);
    }

    #[tokio::test]
    async fn a_panicking_run_fails_its_batch_and_the_thread_serves_on() {
        let model = Echo {
            batches: Arc::default(),
            gate: None,
            dropped: None,
        };
        let worker = Worker::spawn("turn-test-panic", model, 4, 8).unwrap();
        assert!(matches!(
            worker.predict(Vec::new()).await,
            Err(TurnModelError::Inference(_))
        ));
        assert_eq!(worker.predict(vec![0.25]).await, Ok(0.25));
    }

    #[tokio::test]
    async fn dropping_every_handle_stops_the_thread() {
        let (dropped_tx, dropped) = mpsc::channel();
        let model = Echo {
            batches: Arc::default(),
            gate: None,
            dropped: Some(dropped_tx),
        };
        let worker = Worker::spawn("turn-test-stop", model, 4, 8).unwrap();
        let other = worker.clone();
        assert_eq!(other.predict(vec![0.75]).await, Ok(0.75));
        drop(worker);
        assert!(
            dropped.recv_timeout(Duration::from_millis(100)).is_err(),
            "a handle is left: the thread serves on"
        );
        assert_eq!(other.predict(vec![0.5]).await, Ok(0.5));
        drop(other);
        dropped
            .recv_timeout(Duration::from_secs(5))
            .expect("the thread ended and dropped its model");
    }
}
