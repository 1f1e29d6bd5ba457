//! The thread that advances the engine's epoch, which is what lets a call's deadline interrupt
//! a plug-in stuck in a loop. It ticks only while a plug-in call (or instantiation) is running:
//! ticking every millisecond all the time cost an idle host about 4 % of a core, and the epoch
//! only matters to code that is running. Each call holds a [`Ticking`] guard; the first guard
//! wakes the thread and the thread parks again when the last one is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::Duration;

use wasmtime::Engine;

/// What the ticker thread and the calls share.
struct Shared {
    /// Calls in flight.
    active: AtomicUsize,
    stop: AtomicBool,
    /// Epochs advanced so far (for tests and diagnostics).
    ticks: AtomicU64,
}

/// Owns the ticker thread; stops it when dropped.
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
    thread: Thread,
}

/// Keeps the epoch advancing while held: hold one for the whole of each plug-in call.
#[must_use = "the epoch advances only while the guard is held"]
pub(crate) struct Ticking {
    shared: Arc<Shared>,
}

impl EpochTicker {
    /// Starts the thread advancing `engine`'s epoch every `tick` while calls are in flight.
    pub fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
        });
        // A weak reference: the ticker must not keep the engine alive.
        let weak = engine.weak();
        let state = shared.clone();
        let handle = thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !state.stop.load(Ordering::Acquire) {
                    if state.active.load(Ordering::Acquire) == 0 {
                        // An unpark that came before this park makes it return at once, so a
                        // call starting now is never missed.
                        thread::park();
                        continue;
                    }
                    thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                    state.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })?;
        Ok(Self {
            shared,
            thread: handle.thread().clone(),
        })
    }

    /// A guard that keeps the epoch advancing until it is dropped.
    pub fn ticking(&self) -> Ticking {
        if self.shared.active.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        Ticking {
            shared: self.shared.clone(),
        }
    }

    /// Epochs advanced since the start.
    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        // The thread sees the count reach zero on its next round and parks.
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(1);

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).unwrap()
    }

    /// Waits (up to a generous bound) until `ready` holds.
    fn eventually(ready: impl Fn() -> bool) -> bool {
        (0..2000).any(|_| {
            thread::sleep(TICK);
            ready()
        })
    }

    #[test]
    fn the_epoch_advances_only_while_a_call_holds_a_guard() {
        let engine = engine();
        let ticker = EpochTicker::start(&engine, TICK).unwrap();
        thread::sleep(20 * TICK);
        assert_eq!(ticker.ticks(), 0, "no call: the thread sleeps");

        let guard = ticker.ticking();
        assert!(eventually(|| ticker.ticks() >= 5), "a call makes it tick");
        drop(guard);
        // Once parked, the count stays put.
        let settled = eventually(|| {
            let before = ticker.ticks();
            thread::sleep(10 * TICK);
            ticker.ticks() == before
        });
        assert!(settled, "the thread parks when the last call ends");

        // Overlapping calls: ticking goes on until both are over.
        let a = ticker.ticking();
        let b = ticker.ticking();
        drop(a);
        let before = ticker.ticks();
        assert!(
            eventually(|| ticker.ticks() > before + 3),
            "one call still runs"
        );
        drop(b);
    }

    #[test]
    fn a_running_call_is_interrupted_by_its_deadline() {
        // The ticker wakes for a call that starts while it is parked: a guest stuck in a loop
        // reaches its epoch deadline.
        let engine = engine();
        let ticker = EpochTicker::start(&engine, TICK).unwrap();
        thread::sleep(5 * TICK);
        // (module (func (export "spin") (loop br 0)))
        let spin_module: &[u8] = &[
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
            0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
            0x03, 0x02, 0x01, 0x00, // one function of that type
            0x07, 0x08, 0x01, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00, // export "spin"
            0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0
        ];
        let module = wasmtime::Module::new(&engine, spin_module).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(3);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let ticking = ticker.ticking();
        // On its own thread, so that a ticker that never wakes fails the test instead of
        // hanging it.
        let (done, outcome) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let _ticking = ticking;
            let result = spin.call(&mut store, ());
            let trap = result
                .err()
                .and_then(|e| e.downcast_ref::<wasmtime::Trap>().copied());
            let _ = done.send(trap);
        });
        let trap = outcome.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            trap,
            Ok(Some(wasmtime::Trap::Interrupt)),
            "the call was not interrupted"
        );
    }
}
