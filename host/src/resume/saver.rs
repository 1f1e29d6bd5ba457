//! One task per session writes its snapshots to the store, off the session's path: the session
//! only replaces the latest snapshot (never waits on Redis), and a slow store coalesces writes.
//! When the session ends the task writes the last snapshot, or deletes the record when the
//! client ended the session on purpose.

use super::{ResumeStore, Snapshot};
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone)]
enum Write {
    Nothing,
    Save(Snapshot),
    Forget,
}

/// The session's handle on its writer task. Dropping it lets the task finish its last write;
/// [`Saver::finish`] waits for that.
pub struct Saver {
    tx: watch::Sender<Write>,
    task: tokio::task::JoinHandle<()>,
}

impl Saver {
    /// Starts the writer for `session_id`, writing as `owner` (the hash of the session's
    /// current resume token).
    pub fn spawn(store: Arc<ResumeStore>, session_id: String, owner: String) -> Self {
        let (tx, mut rx) = watch::channel(Write::Nothing);
        let task = tokio::spawn(async move {
            // `changed` reports a value sent just before the sender was dropped, so the last
            // write is never lost.
            while rx.changed().await.is_ok() {
                let write = rx.borrow_and_update().clone();
                match write {
                    Write::Nothing => {}
                    Write::Save(s) => {
                        if !store.save(&session_id, &owner, &s).await {
                            tracing::debug!(
                                "resume record not written (owned elsewhere or store down)"
                            );
                        }
                    }
                    Write::Forget => store.forget(&session_id, &owner).await,
                }
            }
        });
        Self { tx, task }
    }

    /// Ends the session's writes: the last snapshot is written (or the record deleted when
    /// `forget`), and this returns once that is done, so a client resuming after the session
    /// ended finds everything it heard. Bounded by the store's own timeouts.
    pub async fn finish(self, forget: bool) {
        if forget {
            self.forget();
        }
        drop(self.tx);
        let _ = self.task.await;
    }

    /// Replaces the snapshot waiting to be written.
    pub fn save(&self, snapshot: Snapshot) {
        self.tx.send_replace(Write::Save(snapshot));
    }

    /// Deletes the record (after any write in progress).
    pub fn forget(&self) {
        self.tx.send_replace(Write::Forget);
    }
}
