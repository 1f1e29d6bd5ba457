//! The recorder: a bounded queue from the calls to one writer thread that owns the file.
//!
//! A call never waits for the writer: [`Recorder::send`] puts the record in the queue if there
//! is room and otherwise drops it and counts it, so a slow disk costs records, never session
//! time. The writer drains the queue, writes one line per record and flushes whenever the queue
//! is empty, so a recording is complete on disk moments after the calls. It ends when the
//! recorder is dropped, after writing what was queued.

use std::io;
use std::sync::mpsc::{self, SyncSender, TrySendError};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::metrics::{exposition, registered};
use crate::plugins::settings::RecordSettings;

use super::line::encode;
use super::rotate::RotatingFile;
use super::CallRecord;

/// Records waiting for the writer at most; past it records are dropped. A prompt call's record
/// holds the conversation (tens of kB at most), so this also bounds the memory a stalled disk
/// can hold up.
const QUEUE_RECORDS: usize = 1024;

/// Where the writer puts lines: the rotating file, or a test's sink.
pub(crate) trait LineSink: Send + 'static {
    /// Writes one line; `line` has no newline.
    fn write_line(&mut self, line: &[u8]) -> io::Result<()>;
    /// Makes what was written durable enough for a reader of the file.
    fn flush(&mut self) -> io::Result<()>;
}

/// What the recorder did, for `/metrics`; clones share the values (the writer thread holds one).
#[derive(Clone)]
struct Counters {
    written: Counter,
    /// Records lost: the queue was full, or the line could not be written.
    dropped: Counter,
}

impl Counters {
    /// The counters, registered in `registry`.
    fn new(registry: &mut Registry) -> Self {
        Self {
            written: registered(
                registry,
                "voice_plugin_records",
                "Plug-in calls written to the recording (PLUGIN_RECORD)",
                Counter::default(),
            ),
            dropped: registered(
                registry,
                "voice_plugin_record_dropped",
                "Plug-in call records dropped because the recording writer could not keep up or write",
                Counter::default(),
            ),
        }
    }
}

/// The sending side of the recording; owned by the plug-in runtime.
pub(crate) struct Recorder {
    queue: SyncSender<CallRecord>,
    counters: Counters,
    /// The recorder's own registry: it may run or not beside the runtime's counters.
    registry: Registry,
}

impl Recorder {
    /// Opens the recording file in `settings.dir` and starts the writer thread.
    pub fn start(settings: &RecordSettings) -> io::Result<Self> {
        let file = RotatingFile::open(
            &settings.dir,
            settings.max_file_bytes,
            settings.rotated_files,
        )?;
        Self::spawn(file, settings.text, QUEUE_RECORDS)
    }

    /// Starts a writer putting records into `sink`, with room for `capacity` waiting records.
    pub(crate) fn spawn(
        mut sink: impl LineSink,
        keep_text: bool,
        capacity: usize,
    ) -> io::Result<Self> {
        let (queue, records) = mpsc::sync_channel::<CallRecord>(capacity);
        let mut registry = Registry::default();
        let counters = Counters::new(&mut registry);
        let count = counters.clone();
        std::thread::Builder::new()
            .name("plugin-recorder".into())
            .spawn(move || {
                let mut healthy = true;
                while let Ok(first) = records.recv() {
                    let mut next = Some(first);
                    while let Some(record) = next {
                        let written = encode(record, keep_text)
                            .map_err(io::Error::from)
                            .and_then(|line| sink.write_line(line.as_bytes()));
                        healthy = tally(&count, written, healthy);
                        next = records.try_recv().ok();
                    }
                    if let Err(e) = sink.flush() {
                        if healthy {
                            tracing::warn!(error = %e, "cannot write the plug-in call recording");
                        }
                        healthy = false;
                    }
                }
            })?;
        Ok(Self {
            queue,
            counters,
            registry,
        })
    }

    /// Queues `record` for the writer, or drops and counts it when the queue is full. Never
    /// waits.
    pub fn send(&self, record: CallRecord) {
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.inc();
            }
        }
    }

    /// Records written so far.
    #[cfg(test)]
    pub fn written(&self) -> u64 {
        self.counters.written.get()
    }

    /// Records lost so far (queue full or write failed).
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.get()
    }

    /// Appends the recorder's counters as OpenMetrics text to `out` (without `# EOF`).
    pub fn encode(&self, out: &mut String) {
        exposition::encode(out, &self.registry);
    }
}

/// Counts one record's fate; logs the first failure after a success. Returns whether the
/// writer is healthy now.
fn tally(counters: &Counters, written: io::Result<()>, healthy: bool) -> bool {
    match written {
        Ok(()) => {
            counters.written.inc();
            true
        }
        Err(e) => {
            counters.dropped.inc();
            if healthy {
                tracing::warn!(error = %e, "cannot write the plug-in call recording; records are dropped until it can");
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{BargeInDecision, BargeInEvent};
    use crate::plugins::record::Call;
    use std::sync::mpsc::{Receiver, Sender};
    use std::sync::Arc;
    use std::time::Duration;

    fn record(n: u32) -> CallRecord {
        CallRecord {
            at_ms: 0,
            plugin: "barge_in_smart".into(),
            version: "0123456789ab".into(),
            session: Arc::from("s"),
            instance: 1,
            turn: n,
            call: Call::BargeIn {
                input: BargeInEvent {
                    interim_text: format!("words {n}"),
                    word_count: 2,
                    turn: n,
                    ..Default::default()
                },
                decision: BargeInDecision::Wait,
            },
            fallback: None,
            duration: Duration::from_micros(5),
        }
    }

    /// A sink that tells when a line arrives and then writes nothing until allowed to go on:
    /// a disk that stalls.
    struct StalledSink {
        arrived: Sender<String>,
        go_on: Receiver<()>,
    }

    impl LineSink for StalledSink {
        fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
            let _ = self
                .arrived
                .send(String::from_utf8_lossy(line).into_owned());
            self.go_on.recv().map_err(|_| io::Error::other("test over"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_writer_never_blocks_the_caller_and_drops_are_counted() {
        let (arrived_tx, arrived) = mpsc::channel();
        let (go_on, go_on_rx) = mpsc::channel();
        const CAPACITY: usize = 8;
        let recorder = Recorder::spawn(
            StalledSink {
                arrived: arrived_tx,
                go_on: go_on_rx,
            },
            true,
            CAPACITY,
        )
        .unwrap();
        // The writer takes the first record and stalls writing it.
        recorder.send(record(0));
        let first = arrived.recv().unwrap();
        assert!(first.contains("words 0"), "{first}");
        // Every further send returns at once: the queue fills, then the rest are dropped.
        const MORE: usize = 100;
        for n in 1..=MORE {
            recorder.send(record(n as u32));
        }
        assert_eq!(recorder.dropped(), (MORE - CAPACITY) as u64);
        // Once the disk goes on, everything queued is written, in order.
        for _ in 0..=CAPACITY {
            go_on.send(()).unwrap();
        }
        let mut lines = Vec::new();
        for _ in 0..CAPACITY {
            lines.push(arrived.recv().unwrap());
        }
        for (i, line) in lines.iter().enumerate() {
            assert!(line.contains(&format!("words {}", i + 1)), "{line}");
        }
        drop(recorder);
    }

    /// A sink collecting lines in memory.
    struct Collect(Sender<String>);

    impl LineSink for Collect {
        fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
            let _ = self.0.send(String::from_utf8_lossy(line).into_owned());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_writer_masks_text_when_asked_and_counts_what_it_wrote() {
        let (tx, rx) = mpsc::channel();
        let recorder = Recorder::spawn(Collect(tx), false, 16).unwrap();
        recorder.send(record(4));
        let line = rx.recv().unwrap();
        assert!(!line.contains("words 4"), "{line}");
        assert!(
            line.contains(r#""interim_text":{"words":2,"chars":7}"#),
            "{line}"
        );
        // The count follows the write; the sink saw the line first.
        while recorder.written() == 0 {
            std::thread::yield_now();
        }
        let mut metrics = String::new();
        recorder.encode(&mut metrics);
        assert!(
            metrics.contains("voice_plugin_records_total 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("voice_plugin_record_dropped_total 0\n"),
            "{metrics}"
        );
    }
}
