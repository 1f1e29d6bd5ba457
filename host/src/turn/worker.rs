//! The end-of-turn model's own OS threads, fed by one bounded queue.
//!
//! Inference takes tens of milliseconds of CPU: on a tokio worker it would stall every session
//! sharing that worker, so it runs on dedicated threads instead (`TURN_MODEL_THREADS`, one by
//! default), each with its own copy of the model. A thread's runs are one core's worth of
//! answers, so the threads are the process's ceiling on sessions asking at once.
//!
//! Sessions pausing at about the same time are answered by one run of the model: when a thread
//! wakes it takes its share of the requests waiting (all of them on one thread, half on two, up
//! to [`MAX_BATCH`]) and runs them as one batch; the other threads take the rest. The batch is
//! small because on the 2-core reference machine it saves no CPU (a clip costs about as much in
//! a batch of eight as alone) while ONNX Runtime's arena keeps the memory of the largest batch a
//! copy has run, about 32 MB a clip, for the life of the process (docs/benchmarks.md); and every
//! answer of a batch comes when its last would have, so spreading a burst over the threads
//! answers it sooner.
//! The queue is bounded: when it is full the request is refused at once ([`TurnModelError::Busy`])
//! and the caller decides without the model rather than waiting behind a backlog. A request
//! whose caller has gone (its future dropped) is skipped. The threads end when every handle to
//! the queue is dropped.

use super::TurnModelError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use tokio::sync::oneshot;

/// Requests that may wait for each thread; past this the queue answers `Busy`.
pub(crate) const QUEUE_LEN: usize = 16;
/// Most requests answered by one run of the model: each clip of a batch costs a thread's copy
/// about 32 MB of arena, kept (with 8, a copy held 258 MB after one burst).
pub(crate) const MAX_BATCH: usize = 2;

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
    /// Requests sent and not yet taken by a thread (counted before the send, so never fewer).
    waiting: Arc<AtomicUsize>,
}

impl Worker {
    /// Starts a thread `name-N` for each of `models`, which it owns; they take requests from one
    /// queue of `queue_len` per thread.
    pub(crate) fn spawn<M: BatchModel>(
        name: &str,
        models: Vec<M>,
        queue_len: usize,
        max_batch: usize,
    ) -> std::io::Result<Self> {
        let threads = models.len().max(1);
        let (queue, requests) = mpsc::sync_channel(queue_len.max(1) * threads);
        let waiting = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            requests: Mutex::new(requests),
            waiting: Arc::clone(&waiting),
            threads,
            max_batch: max_batch.max(1),
        });
        for (i, model) in models.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || serve(model, &shared))?;
        }
        Ok(Self { queue, waiting })
    }

    /// Queues `audio` and waits for its probability; a full queue answers `Busy` at once.
    pub(crate) async fn predict(&self, audio: Vec<f32>) -> Result<f32, TurnModelError> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let refused = match self.queue.try_send(Request { audio, reply }) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => Some(TurnModelError::Busy),
            Err(TrySendError::Disconnected(_)) => Some(TurnModelError::Stopped),
        };
        if let Some(e) = refused {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        answer.await.unwrap_or(Err(TurnModelError::Stopped))
    }
}

/// What the threads share: the queue's receiving end and how many requests wait in it.
struct Shared {
    requests: Mutex<Receiver<Request>>,
    waiting: Arc<AtomicUsize>,
    threads: usize,
    max_batch: usize,
}

impl Shared {
    /// Blocks until a request comes, then takes its share of those waiting behind it (all of
    /// them on one thread; half on two, the rest left to the other thread), at most
    /// `max_batch`; `None` when every handle is gone.
    fn next_batch(&self) -> Option<Vec<Request>> {
        // The lock is held while waiting, so idle threads queue for the next request in turn.
        let requests = self.requests.lock().ok()?;
        let first = requests.recv().ok()?;
        let waiting = self.waiting.fetch_sub(1, Ordering::SeqCst);
        let share = waiting.div_ceil(self.threads).clamp(1, self.max_batch);
        let mut batch = vec![first];
        while batch.len() < share {
            match requests.try_recv() {
                Ok(request) => {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }
}

fn serve<M: BatchModel>(mut model: M, shared: &Shared) {
    while let Some(mut batch) = shared.next_batch() {
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
    use std::time::Duration;
    use tokio::sync::mpsc as async_mpsc;

    /// Where a gated run says how many clips it got, and the tokens it waits for (shared by the
    /// copies of a model on several threads: each run takes one).
    type Gate = (
        async_mpsc::UnboundedSender<usize>,
        Arc<Mutex<mpsc::Receiver<()>>>,
    );

    /// Answers each clip's first sample and panics on an empty clip. With a gate, each run
    /// first says how many clips it got and waits for a token, so a test can hold the thread.
    struct Echo {
        batches: Arc<Mutex<Vec<usize>>>,
        gate: Option<Gate>,
        dropped: Option<mpsc::Sender<()>>,
    }

    impl BatchModel for Echo {
        fn predict(&mut self, clips: &[&[f32]]) -> Result<Vec<f32>, TurnModelError> {
            if let Some((entered, gate)) = &self.gate {
                let _ = entered.send(clips.len());
                let _ = gate.lock().unwrap().recv();
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

    /// Copies of a model held at one gate: runs announce themselves on `entered` and wait for a
    /// token on `open`.
    struct Gated<M> {
        model: M,
        batches: Arc<Mutex<Vec<usize>>>,
        entered: async_mpsc::UnboundedReceiver<usize>,
        open: mpsc::Sender<()>,
    }

    /// One gated model.
    fn gated() -> Gated<Echo> {
        let Gated {
            mut model,
            batches,
            entered,
            open,
        } = gated_copies(1);
        Gated {
            model: model.remove(0),
            batches,
            entered,
            open,
        }
    }

    /// `n` copies of a gated model (one per thread) behind one gate.
    fn gated_copies(n: usize) -> Gated<Vec<Echo>> {
        let (entered_tx, entered) = async_mpsc::unbounded_channel();
        let (open, gate) = mpsc::channel();
        let gate = Arc::new(Mutex::new(gate));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let model = (0..n)
            .map(|_| Echo {
                batches: Arc::clone(&batches),
                gate: Some((entered_tx.clone(), Arc::clone(&gate))),
                dropped: None,
            })
            .collect();
        Gated {
            model,
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
        let worker = Worker::spawn("turn-test-batch", vec![model], 16, 8).unwrap();
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

    /// Queues a request at once, as `predict` does but without a task: several are in the queue
    /// within microseconds.
    fn ask_now(worker: &Worker, value: f32) -> oneshot::Receiver<Result<f32, TurnModelError>> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            audio: vec![value],
            reply,
        };
        worker.waiting.fetch_add(1, Ordering::SeqCst);
        assert!(worker.queue.try_send(request).is_ok(), "queue full");
        answer
    }

    /// The next run's batch size, or `None` if no run starts within a second.
    async fn next_run(entered: &mut async_mpsc::UnboundedReceiver<usize>) -> Option<usize> {
        tokio::time::timeout(Duration::from_secs(1), entered.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn each_thread_answers_a_session_while_the_others_run() {
        let Gated {
            model: models,
            batches,
            mut entered,
            open,
        } = gated_copies(2);
        let worker = Worker::spawn("turn-test-threads", models, 16, 8).unwrap();
        let first = ask(&worker, 0.5);
        assert_eq!(next_run(&mut entered).await, Some(1));
        // The first thread is held in its run: the second answers the next session.
        let second = ask(&worker, 0.25);
        assert_eq!(
            next_run(&mut entered).await,
            Some(1),
            "a second session waits behind the first thread's run"
        );
        open.send(()).unwrap();
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(0.5));
        assert_eq!(second.await.unwrap(), Ok(0.25));
        assert_eq!(*batches.lock().unwrap(), [1, 1]);
    }

    #[tokio::test]
    async fn a_burst_is_shared_among_the_threads() {
        let Gated {
            model: models,
            batches,
            mut entered,
            open,
        } = gated_copies(2);
        let worker = Worker::spawn("turn-test-share", models, 16, 8).unwrap();
        let held = [ask_now(&worker, 1.0), ask_now(&worker, 2.0)];
        assert_eq!(next_run(&mut entered).await, Some(1));
        assert_eq!(next_run(&mut entered).await, Some(1));
        // Both threads held: four sessions ask at once.
        let burst = [3.0, 4.0, 5.0, 6.0].map(|v| ask_now(&worker, v));
        // The first thread free takes half of them (one batch of two, not one of four) ...
        open.send(()).unwrap();
        assert_eq!(next_run(&mut entered).await, Some(2));
        // ... and the other two are each half of what is left.
        open.send(()).unwrap();
        assert_eq!(next_run(&mut entered).await, Some(1));
        open.send(()).unwrap();
        assert_eq!(next_run(&mut entered).await, Some(1));
        for _ in 0..3 {
            open.send(()).unwrap();
        }
        for (r, expected) in held
            .into_iter()
            .chain(burst)
            .zip([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        {
            assert_eq!(r.await.unwrap(), Ok(expected));
        }
        let mut sizes = batches.lock().unwrap().clone();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 1, 1, 1, 2]);
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_its_limit() {
        let Gated {
            model,
            batches,
            mut entered,
            open,
        } = gated();
        let worker = Worker::spawn("turn-test-limit", vec![model], 16, 3).unwrap();
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
        let worker = Worker::spawn("turn-test-full", vec![model], 2, 8).unwrap();
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
        let worker = Worker::spawn("turn-test-left", vec![model], 4, 8).unwrap();
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
        let worker = Worker::spawn("turn-test-panic", vec![model], 4, 8).unwrap();
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
        let worker = Worker::spawn("turn-test-stop", vec![model], 4, 8).unwrap();
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
