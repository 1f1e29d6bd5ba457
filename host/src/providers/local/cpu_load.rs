//! How many cores are free right now, to choose how many threads a local generation uses.
//!
//! llama.cpp splits each token's work across its threads and waits for the slowest: on a
//! 2-core machine two threads give 27 tokens/s when the machine is idle but 7 when another
//! thread keeps one core busy, where one thread gives 15 (`docs/benchmarks.md`, "Offline
//! providers"). So a generation uses all cores only when no other work is running.
//!
//! The signal is the kernel's count of runnable tasks (`/proc/loadavg`, fourth field), read a
//! few times a millisecond apart and taking the smallest: a snapshot, not an average, so it
//! follows load that starts and stops with conversations, and the minimum ignores threads that
//! wake briefly (the host's own I/O).

use std::time::Duration;

/// Snapshots taken; the smallest count is used.
const SAMPLES: usize = 4;
const SAMPLE_GAP: Duration = Duration::from_millis(1);

/// Runnable tasks other than the reading thread, from the text of `/proc/loadavg`
/// (`"0.97 1.09 1.22 3/83 6442"`: 3 runnable, including the reader).
pub(crate) fn others_runnable(loadavg: &str) -> Option<usize> {
    let running = loadavg.split_whitespace().nth(3)?.split('/').next()?;
    running.parse::<usize>().ok().map(|n| n.saturating_sub(1))
}

/// Threads a generation should use on `cores` cores while `others` tasks are runnable: all of
/// them when every core is free, else half of them (one on two cores). Two settings, not one
/// per count: llama.cpp fixes a context's threads when it is made, so each setting is a
/// context (with its own cache) kept ready.
pub(crate) fn threads_for(cores: usize, others: usize) -> usize {
    if others == 0 {
        cores.max(1)
    } else {
        narrow(cores)
    }
}

/// The thread count used on a loaded machine.
pub(crate) fn narrow(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// Other runnable tasks now (the smallest of a few snapshots); `None` where the kernel does
/// not say (not Linux), in which case the caller assumes an idle machine.
pub(crate) fn others_runnable_now() -> Option<usize> {
    (0..SAMPLES)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(SAMPLE_GAP);
            }
            std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|text| others_runnable(&text))
        })
        .collect::<Option<Vec<usize>>>()?
        .into_iter()
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn loadavg_runnable_count_excludes_the_reader() {
        assert_eq!(others_runnable("0.97 1.09 1.22 1/83 6442"), Some(0));
        assert_eq!(others_runnable("3.10 2.00 1.50 4/310 99"), Some(3));
        assert_eq!(others_runnable("garbage"), None);
        assert_eq!(others_runnable("1 2 3 x/5 6"), None);
    }

    #[test]
    fn all_cores_only_when_nothing_else_runs() {
        assert_eq!(threads_for(2, 0), 2);
        assert_eq!(threads_for(2, 1), 1);
        assert_eq!(threads_for(8, 3), 4);
        assert_eq!(threads_for(0, 0), 1);
        assert_eq!(threads_for(1, 5), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn busy_threads_are_seen_as_load() {
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        // Spinning threads are always runnable (running or waiting for a core). The kernel's
        // count is a racy sum over cores, and a full parallel test run once read it low: the
        // spinners must be seen in one of a few readings.
        std::thread::sleep(Duration::from_millis(20));
        let mut seen = None;
        for _ in 0..10 {
            seen = others_runnable_now();
            if seen.is_some_and(|n| n >= 2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        for s in spinners {
            s.join().unwrap();
        }
        assert!(seen.is_some_and(|n| n >= 2), "saw {seen:?}");
    }
}
