//! A small pool of dedicated inference threads fed by a bounded queue, so model inference never
//! runs on (or blocks) the async runtime. Each thread owns per-thread state (a model context)
//! built on that thread; jobs borrow it mutably.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

/// A unit of work run on one of the pool's threads with that thread's state.
pub(crate) type Job<S> = Box<dyn FnOnce(&mut S) + Send + 'static>;

/// The queue was full: the machine is saturated with inference work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

/// Threads owning state `S`, taking jobs from one bounded queue.
pub(crate) struct WorkerPool<S> {
    queue: SyncSender<Job<S>>,
}

impl<S: 'static> WorkerPool<S> {
    /// Starts `threads` threads named `name-N`, each building its state with `make_state`.
    /// A thread whose state fails to build logs why and exits; the others keep serving.
    pub(crate) fn spawn<F>(
        name: &str,
        threads: usize,
        queue_len: usize,
        make_state: F,
    ) -> std::io::Result<Self>
    where
        F: Fn() -> Result<S, String> + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Job<S>>(queue_len.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let make_state = Arc::new(make_state);
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let make_state = Arc::clone(&make_state);
            let thread_name = format!("{name}-{i}");
            thread::Builder::new()
                .name(thread_name.clone())
                .spawn(move || match make_state() {
                    Ok(mut state) => serve(&rx, &mut state),
                    Err(reason) => tracing::error!(thread = %thread_name, %reason, "inference thread failed to start"),
                })?;
        }
        Ok(Self { queue: tx })
    }

    /// Queues a job without waiting; `Err(Busy)` when the queue is full or no thread is left.
    pub(crate) fn try_submit(&self, job: Job<S>) -> Result<(), Busy> {
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

fn serve<S>(rx: &Mutex<Receiver<Job<S>>>, state: &mut S) {
    loop {
        // Hold the lock only while taking a job, so idle threads wait their turn for the next one.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                // A panicking job must not take the thread (and the model context) down with it.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(state)));
                if outcome.is_err() {
                    tracing::error!("inference job panicked; continuing");
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_named_threads_with_their_state() {
        // Each thread's state records the thread that built it and counts the jobs it served.
        let pool = WorkerPool::spawn("test-pool", 2, 8, || {
            Ok((thread::current().name().unwrap_or("").to_string(), 0u32))
        })
        .unwrap();
        let (tx, rx) = mpsc::channel();
        let jobs = 6;
        for _ in 0..jobs {
            let tx = tx.clone();
            pool.try_submit(Box::new(move |state: &mut (String, u32)| {
                state.1 += 1;
                let name = thread::current().name().unwrap_or("").to_string();
                tx.send((name, state.0.clone(), state.1)).unwrap();
            }))
            .unwrap();
        }
        let mut served: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
        for _ in 0..jobs {
            let (thread_name, built_on, count) = rx.recv().unwrap();
            assert!(thread_name.starts_with("test-pool-"), "{thread_name}");
            assert_eq!(built_on, thread_name, "a job gets its own thread's state");
            served.entry(thread_name).or_default().push(count);
        }
        // The state lives as long as its thread: each job sees the count its predecessors on
        // that thread left, so the counts per thread run 1, 2, 3, ...
        for (name, counts) in &served {
            let expected: Vec<u32> = (1..=counts.len() as u32).collect();
            assert_eq!(counts, &expected, "{name}");
        }
        assert_eq!(served.values().map(Vec::len).sum::<usize>(), jobs);
        assert!(
            served.values().any(|c| c.len() > 1),
            "some thread served several jobs: {served:?}"
        );
    }

    #[test]
    fn a_full_queue_reports_busy_instead_of_blocking() {
        let (block_tx, block_rx) = mpsc::channel::<()>();
        let block_rx = Arc::new(Mutex::new(block_rx));
        let pool = WorkerPool::spawn("busy-pool", 1, 1, || Ok(())).unwrap();
        let (started_tx, started_rx) = mpsc::channel();
        // Occupy the only thread, then fill the one queue slot.
        let held = Arc::clone(&block_rx);
        pool.try_submit(Box::new(move |_| {
            started_tx.send(()).unwrap();
            let _ = held.lock().unwrap().recv();
        }))
        .unwrap();
        started_rx.recv().unwrap();
        pool.try_submit(Box::new(|_| {})).unwrap();
        assert_eq!(pool.try_submit(Box::new(|_| {})), Err(Busy));
        block_tx.send(()).unwrap();
    }
}
