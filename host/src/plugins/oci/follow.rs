//! Follows the tags that serve slots: every `PLUGIN_POLL_S` it asks the registry what each tag
//! names now (one manifest request), and when that changed, the registry pulls, checks and loads
//! the new version exactly as a changed file is loaded. Digest references never move and are not
//! polled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::plugins::error::PluginError;
use crate::plugins::registry::PluginRegistry;
use crate::plugins::watch::WatchHandle;
use crate::plugins::Slot;

/// How often the thread looks at its stop flag while it waits.
const TICK: Duration = Duration::from_millis(100);

/// Starts following `slots` every `every`; the thread ends when the registry is dropped.
pub(crate) fn spawn_follower(
    registry: Weak<PluginRegistry>,
    slots: Vec<Slot>,
    every: Duration,
) -> Result<WatchHandle, PluginError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    thread::Builder::new()
        .name("plugin-oci".into())
        .spawn(move || loop {
            let due = Instant::now() + every;
            while Instant::now() < due {
                if stop_flag.load(Ordering::Relaxed) {
                    return;
                }
                thread::sleep(TICK.min(due.saturating_duration_since(Instant::now())));
            }
            let Some(registry) = registry.upgrade() else {
                return;
            };
            for slot in &slots {
                registry.follow_source(*slot);
            }
        })
        .map_err(|e| PluginError::Runtime(format!("cannot start the plug-in tag follower: {e}")))?;
    Ok(WatchHandle::new(stop))
}
