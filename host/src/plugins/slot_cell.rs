//! One slot's versions: the live one, and the shadow and canary candidates beside it. Which
//! version a session gets is decided here.
//!
//! Each version sits behind its own lock and is swapped whole (an `Arc`), so a session that
//! picked a version keeps a consistent one whatever happens to the slot meanwhile. A promotion
//! is the only change touching two of them; it takes the canary's lock before the live one's,
//! and nothing else takes both.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use super::canary::{takes_canary, verdict, CanaryPolicy};
use super::loaded::LoadedPlugin;
use super::settings::{Slot, SlotSettings};
use super::usage::UsageSnapshot;
use super::worlds::World;

/// What serves a slot, for `plugins list`, the admin endpoint and `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotStatus {
    /// The slot.
    pub slot: Slot,
    /// Plug-in name (component file stem); `None` when the built-in behaviour serves the slot.
    pub plugin: Option<String>,
    /// Component file.
    pub path: Option<PathBuf>,
    /// The OCI reference the slot follows (`oci://...`); `None` when it names a file.
    pub source: Option<String>,
    /// Manifest digest of the version pulled from `source` that serves now.
    pub digest: Option<String>,
    /// Version: the first 12 hex digits of the component's SHA-256.
    pub version: Option<String>,
    /// Full SHA-256 of the component.
    pub hash: Option<String>,
    /// When the version was loaded, in ms since the Unix epoch.
    pub loaded_at: Option<u64>,
    /// Where the loaded version's machine code came from: `cache` (the precompiled artifact)
    /// or `compiled` (compiled at load).
    pub origin: Option<&'static str>,
    /// Faults of this version since it was loaded.
    pub faults: u64,
    /// Whether the version is quarantined (built-in behaviour used instead).
    pub quarantined: bool,
    /// Times this version was quarantined.
    pub quarantines: u64,
    /// When quarantined: milliseconds until the version is retried by itself.
    pub retry_in_ms: Option<u64>,
    /// Why the last reload of this slot was rejected, if it was.
    pub last_error: Option<String>,
    /// What the live version did in sessions.
    pub usage: Option<UsageSnapshot>,
    /// The shadow version, if one runs.
    pub shadow: Option<CandidateStatus>,
    /// The canary version, if one runs.
    pub canary: Option<CanaryStatus>,
    /// How the last canary of this slot ended, if one did.
    pub last_canary: Option<CanaryOutcome>,
}

/// A shadow or canary version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateStatus {
    pub plugin: String,
    pub path: PathBuf,
    pub version: String,
    pub loaded_at: u64,
    pub quarantined: bool,
    pub usage: UsageSnapshot,
}

/// A running canary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryStatus {
    #[serde(flatten)]
    pub candidate: CandidateStatus,
    /// Share of new sessions that get it.
    pub percent: u8,
    /// When it is rolled back by itself.
    pub policy: CanaryPolicy,
}

/// How a canary ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryOutcome {
    pub plugin: String,
    pub version: String,
    /// `rolled_back` (by itself), `aborted`, `replaced` (by another canary) or `promoted`.
    pub outcome: &'static str,
    /// Why, for a rollback.
    pub reason: Option<String>,
    /// When, in ms since the Unix epoch.
    pub at_ms: u64,
    /// What it did while it ran.
    pub usage: UsageSnapshot,
}

/// A canary version and its share.
pub(crate) struct Canary<W: World> {
    pub plugin: Arc<LoadedPlugin<W>>,
    pub percent: u8,
    pub policy: CanaryPolicy,
}

fn candidate_status<W: World>(p: &LoadedPlugin<W>) -> CandidateStatus {
    CandidateStatus {
        plugin: p.info.name.clone(),
        path: p.info.path.clone(),
        version: p.info.short_hash().to_string(),
        loaded_at: p.info.loaded_at_ms,
        quarantined: p.faults.is_quarantined(),
        usage: p.usage.snapshot(),
    }
}

fn now_ms() -> u64 {
    super::record::now_ms()
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|p| p.into_inner())
}

/// One slot: its versions and last errors.
pub(crate) struct SlotCell<W: World> {
    /// `init` configuration of every version of the slot.
    pub config: Vec<(String, String)>,
    /// The live version's file (a promotion moves it to the canary's).
    live_path: Mutex<Option<PathBuf>>,
    current: RwLock<Option<Arc<LoadedPlugin<W>>>>,
    shadow: RwLock<Option<Arc<LoadedPlugin<W>>>>,
    canary: RwLock<Option<Arc<Canary<W>>>>,
    last_canary: Mutex<Option<CanaryOutcome>>,
    last_error: Mutex<Option<String>>,
}

/// What a session's slot should run after a turn boundary.
pub(crate) enum Wanted<W: World> {
    /// What it runs is right.
    Keep,
    /// Switch to this version (`None`: the built-in behaviour).
    Switch(Option<Arc<LoadedPlugin<W>>>),
}

impl<W: World> SlotCell<W> {
    pub fn new(settings: &SlotSettings) -> Self {
        Self {
            config: settings.config.clone(),
            live_path: Mutex::new(settings.path.clone()),
            current: RwLock::new(None),
            shadow: RwLock::new(None),
            canary: RwLock::new(None),
            last_canary: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    pub fn live_path(&self) -> Option<PathBuf> {
        lock(&self.live_path).clone()
    }

    /// Points the live version at another file (a new version pulled from a registry); returns
    /// the previous one, to put back if the new file does not load.
    pub fn set_live_path(&self, path: PathBuf) -> Option<PathBuf> {
        lock(&self.live_path).replace(path)
    }

    pub fn current(&self) -> Option<Arc<LoadedPlugin<W>>> {
        read(&self.current)
    }

    pub fn set_current(&self, plugin: Arc<LoadedPlugin<W>>) {
        *write(&self.current) = Some(plugin);
    }

    pub fn shadow(&self) -> Option<Arc<LoadedPlugin<W>>> {
        read(&self.shadow)
    }

    pub fn set_shadow(&self, plugin: Option<Arc<LoadedPlugin<W>>>) {
        *write(&self.shadow) = plugin;
    }

    pub fn canary(&self) -> Option<Arc<Canary<W>>> {
        read(&self.canary)
    }

    pub fn set_error(&self, error: Option<String>) {
        *lock(&self.last_error) = error;
    }

    /// Starts `canary`; a canary already running ends as `replaced`.
    pub fn start_canary(&self, canary: Canary<W>) {
        let previous = write(&self.canary).replace(Arc::new(canary));
        if let Some(previous) = previous {
            self.ended(&previous, "replaced", None);
        }
    }

    /// Ends the running canary (`aborted` or `rolled_back`) if it is still `which` (or any,
    /// when `which` is `None`); returns what ended.
    pub fn end_canary(
        &self,
        which: Option<&Arc<Canary<W>>>,
        outcome: &'static str,
        reason: Option<String>,
    ) -> Option<CanaryOutcome> {
        let ended = {
            let mut slot = write(&self.canary);
            let same = match (slot.as_ref(), which) {
                (Some(running), Some(which)) => Arc::ptr_eq(running, which),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !same {
                return None;
            }
            slot.take()?
        };
        Some(self.ended(&ended, outcome, reason))
    }

    /// Makes the running canary the live version (for every session from its next turn) and
    /// its file the one reloads read.
    pub fn promote(&self) -> Option<CanaryOutcome> {
        let mut canary = write(&self.canary);
        let promoted = canary.take()?;
        *lock(&self.live_path) = Some(promoted.plugin.info.path.clone());
        *write(&self.current) = Some(promoted.plugin.clone());
        drop(canary);
        Some(self.ended(&promoted, "promoted", None))
    }

    fn ended(
        &self,
        canary: &Canary<W>,
        outcome: &'static str,
        reason: Option<String>,
    ) -> CanaryOutcome {
        let record = CanaryOutcome {
            plugin: canary.plugin.info.name.clone(),
            version: canary.plugin.info.short_hash().to_string(),
            outcome,
            reason,
            at_ms: now_ms(),
            usage: canary.plugin.usage.snapshot(),
        };
        *lock(&self.last_canary) = Some(record.clone());
        record
    }

    /// Rolls the canary back when it faults more than the live version by its margin (or was
    /// quarantined); returns the rollback. Cheap: a read lock and some counters.
    pub fn judge(&self) -> Option<CanaryOutcome> {
        let canary = self.canary()?;
        let live = self.current().map(|p| p.usage.snapshot());
        let reason = verdict(
            &canary.plugin.usage.snapshot(),
            live.as_ref(),
            canary.plugin.faults.quarantines() > 0,
            &canary.policy,
        )?;
        self.end_canary(Some(&canary), "rolled_back", Some(reason))
    }

    /// The version a new session gets: the canary for its share of sessions, else the live one.
    pub fn pick(&self, session_id: &str) -> Option<Arc<LoadedPlugin<W>>> {
        if let Some(canary) = self.canary() {
            if takes_canary(session_id, canary.percent) {
                return Some(canary.plugin.clone());
            }
        }
        self.current()
    }

    /// What a session running version `running` (`None`: the built-in behaviour) should run
    /// from its next turn: a canary session stays while its canary runs; every other session
    /// follows the live version. No session moves onto a canary.
    pub fn wanted(&self, running: Option<u64>) -> Wanted<W> {
        if let (Some(canary), Some(running)) = (self.canary(), running) {
            if canary.plugin.generation == running {
                return Wanted::Keep;
            }
        }
        let live = self.current();
        if live.as_ref().map(|p| p.generation) == running {
            Wanted::Keep
        } else {
            Wanted::Switch(live)
        }
    }

    pub fn status(&self) -> SlotStatus {
        let current = self.current();
        let last_error = lock(&self.last_error).clone();
        let shadow = self.shadow().map(|p| candidate_status(&p));
        let canary = self.canary().map(|c| CanaryStatus {
            candidate: candidate_status(&c.plugin),
            percent: c.percent,
            policy: c.policy,
        });
        let last_canary = lock(&self.last_canary).clone();
        let mut status = SlotStatus {
            slot: W::SLOT,
            plugin: None,
            path: None,
            source: None,
            digest: None,
            version: None,
            hash: None,
            loaded_at: None,
            origin: None,
            faults: 0,
            quarantined: false,
            quarantines: 0,
            retry_in_ms: None,
            last_error,
            usage: None,
            shadow,
            canary,
            last_canary,
        };
        if let Some(p) = current {
            status.plugin = Some(p.info.name.clone());
            status.path = Some(p.info.path.clone());
            status.version = Some(p.info.short_hash().to_string());
            status.hash = Some(p.info.hash.clone());
            status.loaded_at = Some(p.info.loaded_at_ms);
            status.origin = Some(p.info.origin.as_str());
            status.faults = p.faults.total();
            status.quarantined = p.faults.is_quarantined();
            status.quarantines = p.faults.quarantines();
            status.retry_in_ms = p.faults.retry_in().map(|d| d.as_millis() as u64);
            status.usage = Some(p.usage.snapshot());
        }
        status
    }
}
