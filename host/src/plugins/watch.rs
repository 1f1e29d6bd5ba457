//! Watches the live component file of each slot and reloads the slot when it changes. A promoted
//! canary moves a slot's live file; the watcher follows it from its next poll.
//!
//! Polling file metadata (size, modification time, inode) keeps this portable and free of
//! platform notification quirks; a reload only happens when the content hash differs, and a
//! half-written file simply fails validation and is retried when it changes again. Users should
//! still write a new version to a temporary name and rename it over the old file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, SystemTime};

use super::error::PluginError;
use super::registry::PluginRegistry;
use super::settings::Slot;

/// How often the files are checked.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Stops the watcher thread when dropped or stopped.
pub(crate) struct WatchHandle {
    stop: Arc<AtomicBool>,
}

impl WatchHandle {
    /// A handle setting `stop` (which the thread it stops polls).
    pub fn new(stop: Arc<AtomicBool>) -> Self {
        Self { stop }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// One watched file: the slot's live file and its last seen stamp.
struct Watched {
    slot: Slot,
    path: PathBuf,
    last: Option<Stamp>,
}

/// Starts the watcher; it ends when the registry is dropped.
pub(crate) fn spawn_watcher(
    registry: Weak<PluginRegistry>,
    paths: Vec<(Slot, PathBuf)>,
) -> Result<WatchHandle, PluginError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    let mut watched: Vec<Watched> = paths
        .into_iter()
        .map(|(slot, path)| Watched {
            slot,
            last: stamp(&path),
            path,
        })
        .collect();
    thread::Builder::new()
        .name("plugin-watch".into())
        .spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                thread::sleep(POLL_INTERVAL);
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                for Watched { slot, path, last } in watched.iter_mut() {
                    // A promotion loaded the new file already: watch it from its current state.
                    if let Some(live) = registry.live_path(*slot).filter(|p| p != path) {
                        *last = stamp(&live);
                        *path = live;
                        continue;
                    }
                    let now = stamp(path);
                    if now.is_none() || now == *last {
                        continue;
                    }
                    *last = now;
                    tracing::info!(slot = %slot, path = %path.display(), "plug-in file changed; reloading");
                    // Errors are logged, counted and kept in the slot's status by the registry.
                    let _ = registry.reload_slot(*slot);
                }
            }
        })
        .map_err(|e| PluginError::Runtime(format!("cannot start the plug-in file watcher: {e}")))?;
    Ok(WatchHandle::new(stop))
}
