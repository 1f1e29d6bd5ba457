//! The plug-in registry: the current version of each slot, per-session behaviours, reload (hot
//! swap) and status.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::behaviour::defaults::{BuiltinBehaviours, DefaultBargeIn, NoIntent, PassThroughPrompt};
use crate::behaviour::{BehaviourSource, Behaviours};

use super::behaviours::{PluginBargeIn, PluginIntent, PluginPrompt};
use super::bindings::{barge_in, intent, prompt};
use super::error::PluginError;
use super::instance::SlotInstance;
use super::loaded::{load, read_component, LoadedPlugin};
use super::runtime::Runtime;
use super::settings::{PluginSettings, Slot, SlotSettings};
use super::watch::{spawn_watcher, WatchHandle};
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
}

/// One slot: its settings, current version and last reload error.
struct SlotCell<W: World> {
    settings: SlotSettings,
    current: RwLock<Option<Arc<LoadedPlugin<W>>>>,
    last_error: Mutex<Option<String>>,
}

impl<W: World> SlotCell<W> {
    fn new(settings: SlotSettings) -> Self {
        Self {
            settings,
            current: RwLock::new(None),
            last_error: Mutex::new(None),
        }
    }

    fn current(&self) -> Option<Arc<LoadedPlugin<W>>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    fn status(&self) -> SlotStatus {
        let current = self.current();
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match current {
            None => SlotStatus {
                slot: W::SLOT,
                plugin: None,
                path: None,
                version: None,
                hash: None,
                loaded_at: None,
                origin: None,
                faults: 0,
                quarantined: false,
                quarantines: 0,
                retry_in_ms: None,
                last_error,
            },
            Some(p) => SlotStatus {
                slot: W::SLOT,
                plugin: Some(p.info.name.clone()),
                path: Some(p.info.path.clone()),
                version: Some(p.info.short_hash().to_string()),
                hash: Some(p.info.hash.clone()),
                loaded_at: Some(p.info.loaded_at_ms),
                origin: Some(p.info.origin.as_str()),
                faults: p.faults.total(),
                quarantined: p.faults.is_quarantined(),
                quarantines: p.faults.quarantines(),
                retry_in_ms: p.faults.retry_in().map(|d| d.as_millis() as u64),
                last_error,
            },
        }
    }
}

/// Outcome of reloading one slot.
enum Reloaded {
    Unchanged,
    Swapped,
}

/// The plug-ins serving each slot. Implements [`BehaviourSource`] for sessions.
pub struct PluginRegistry {
    rt: Arc<Runtime>,
    fallback: BuiltinBehaviours,
    intent: SlotCell<intent::IntentAnalyzer>,
    prompt: SlotCell<prompt::PromptShaper>,
    barge_in: SlotCell<barge_in::BargeInPolicy>,
    generation: AtomicU64,
    /// Serialises reloads (file watcher and admin endpoint).
    reload_lock: Mutex<()>,
    watcher: Mutex<Option<WatchHandle>>,
}

impl PluginRegistry {
    /// Loads every configured slot (compiling or reading the precompiled cache, validating and
    /// self-checking each) and starts the file watcher when `settings.watch` is set. Fails with
    /// a one-line reason naming the slot and file when a configured component is missing or
    /// invalid.
    pub fn start(
        settings: PluginSettings,
        fallback: BuiltinBehaviours,
    ) -> Result<Arc<PluginRegistry>, PluginError> {
        let rt = Runtime::new(&settings)?;
        let registry = Arc::new(PluginRegistry {
            rt,
            fallback,
            intent: SlotCell::new(settings.intent.clone()),
            prompt: SlotCell::new(settings.prompt.clone()),
            barge_in: SlotCell::new(settings.barge_in.clone()),
            generation: AtomicU64::new(0),
            reload_lock: Mutex::new(()),
            watcher: Mutex::new(None),
        });
        registry.reload_cell(&registry.intent, true)?;
        registry.reload_cell(&registry.prompt, true)?;
        registry.reload_cell(&registry.barge_in, true)?;
        if settings.watch {
            let paths: Vec<(Slot, PathBuf)> = Slot::ALL
                .iter()
                .filter_map(|s| settings.slot(*s).path.clone().map(|p| (*s, p)))
                .collect();
            if !paths.is_empty() {
                let handle = spawn_watcher(Arc::downgrade(&registry), paths)?;
                *registry.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            }
        }
        Ok(registry)
    }

    /// What serves each slot now.
    pub fn status(&self) -> Vec<SlotStatus> {
        vec![
            self.intent.status(),
            self.prompt.status(),
            self.barge_in.status(),
        ]
    }

    /// One line per quarantined (degraded) slot, for the body of `/readyz`. The server stays
    /// ready meanwhile: the built-in behaviour serves the slot.
    pub fn quarantined(&self) -> Vec<String> {
        self.status()
            .into_iter()
            .filter(|s| s.quarantined)
            .map(|s| {
                format!(
                    "plug-in {} ({}@{}) quarantined after faults in several sessions; built-in \
                     behaviour in use, retried in {} s",
                    s.slot,
                    s.plugin.as_deref().unwrap_or("?"),
                    s.version.as_deref().unwrap_or("?"),
                    s.retry_in_ms.unwrap_or(0).div_ceil(1000)
                )
            })
            .collect()
    }

    /// Re-reads every configured component file. A changed (or quarantined) slot gets a new
    /// version once it compiles, links and passes its self-check; new sessions use it at once and
    /// running sessions at their next turn boundary. A slot whose new file fails keeps its old
    /// version; the first such failure is returned (the other slots are still reloaded).
    pub fn reload(&self) -> Result<Vec<SlotStatus>, PluginError> {
        let mut first_error = None;
        for slot in Slot::ALL {
            if let Err(e) = self.reload_slot(slot) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(self.status()),
        }
    }

    /// Reloads one slot (see [`PluginRegistry::reload`]).
    pub fn reload_slot(&self, slot: Slot) -> Result<(), PluginError> {
        match slot {
            Slot::Intent => self.reload_cell(&self.intent, false).map(drop),
            Slot::Prompt => self.reload_cell(&self.prompt, false).map(drop),
            Slot::BargeIn => self.reload_cell(&self.barge_in, false).map(drop),
        }
    }

    /// Counters of the runtime as Prometheus text (calls, fallbacks, faults by kind,
    /// quarantines, instantiations, reloads, quarantined and degraded gauges per slot, and the
    /// recorder's written and dropped records when recording is on).
    pub fn prometheus(&self) -> String {
        let status = self.status();
        let mut out = self
            .rt
            .metrics
            .render(|slot| status.iter().any(|s| s.slot == slot && s.quarantined));
        if let Some(recorder) = &self.rt.recorder {
            out.push_str(&recorder.prometheus());
        }
        out
    }

    fn reload_cell<W: World>(
        &self,
        cell: &SlotCell<W>,
        initial: bool,
    ) -> Result<Reloaded, PluginError> {
        let Some(path) = cell.settings.path.clone() else {
            return Ok(Reloaded::Unchanged);
        };
        let _guard = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let counters = self.rt.metrics.slot(W::SLOT);
        let result = read_component::<W>(&path).and_then(|bytes| {
            let current = cell.current();
            let hash = super::cache::content_hash(&bytes);
            if let Some(cur) = &current {
                if cur.info.hash == hash && !cur.faults.is_quarantined() {
                    return Ok(None);
                }
            }
            let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            load::<W>(&self.rt, &path, &bytes, &cell.settings.config, generation).map(Some)
        });
        match result {
            Ok(None) => {
                cell.set_error(None);
                Ok(Reloaded::Unchanged)
            }
            Ok(Some(plugin)) => {
                tracing::info!(
                    slot = %W::SLOT,
                    plugin = &*plugin.label,
                    origin = ?plugin.info.origin,
                    "plug-in loaded"
                );
                counters.loaded(plugin.info.origin);
                *cell.current.write().unwrap_or_else(|p| p.into_inner()) = Some(plugin);
                cell.set_error(None);
                if !initial {
                    super::metrics::SlotCounters::inc(&counters.reloads_ok);
                }
                Ok(Reloaded::Swapped)
            }
            Err(err) => {
                if !initial {
                    super::metrics::SlotCounters::inc(&counters.reloads_failed);
                    tracing::error!(slot = %W::SLOT, error = %err, "plug-in reload rejected; the previous version stays");
                }
                cell.set_error(Some(err.to_string()));
                Err(err)
            }
        }
    }

    fn intent_behaviour(&self, session: &Arc<str>) -> Box<dyn crate::behaviour::IntentAnalyzer> {
        match self.intent.current() {
            Some(p) => Box::new(PluginIntent {
                slot: SlotInstance::new(self.rt.clone(), p, session.clone()),
                fallback: NoIntent,
            }),
            None => Box::new(NoIntent),
        }
    }

    fn prompt_behaviour(&self, session: &Arc<str>) -> Box<dyn crate::behaviour::PromptShaper> {
        match self.prompt.current() {
            Some(p) => Box::new(PluginPrompt {
                slot: SlotInstance::new(self.rt.clone(), p, session.clone()),
                fallback: PassThroughPrompt,
                max_tokens: self.rt.limits.prompt_max_tokens,
            }),
            None => Box::new(PassThroughPrompt),
        }
    }

    fn barge_in_behaviour(&self, session: &Arc<str>) -> Box<dyn crate::behaviour::BargeInPolicy> {
        let fallback = DefaultBargeIn(self.fallback.rules);
        match self.barge_in.current() {
            Some(p) => Box::new(PluginBargeIn {
                slot: SlotInstance::new(self.rt.clone(), p, session.clone()),
                fallback,
            }),
            None => Box::new(fallback),
        }
    }
}

impl Drop for PluginRegistry {
    fn drop(&mut self) {
        if let Some(handle) = self
            .watcher
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            handle.stop();
        }
    }
}

/// Generation of a slot's current version, if a plug-in serves it.
fn generation_of<W: World>(cell: &SlotCell<W>) -> Option<u64> {
    cell.current().map(|p| p.generation)
}

impl BehaviourSource for PluginRegistry {
    fn for_session(&self, session_id: &str) -> Behaviours {
        let session: Arc<str> = session_id.into();
        Behaviours {
            intent: self.intent_behaviour(&session),
            prompt: self.prompt_behaviour(&session),
            barge_in: self.barge_in_behaviour(&session),
        }
    }

    fn refresh(&self, session_id: &str, current: &mut Behaviours) {
        let session: Arc<str> = session_id.into();
        let mut swapped = Vec::new();
        if let Some(g) = generation_of(&self.intent) {
            if current.intent.plugin_generation() != Some(g) {
                current.intent = self.intent_behaviour(&session);
                swapped.push(Slot::Intent);
            }
        }
        if let Some(g) = generation_of(&self.prompt) {
            if current.prompt.plugin_generation() != Some(g) {
                current.prompt = self.prompt_behaviour(&session);
                swapped.push(Slot::Prompt);
            }
        }
        if let Some(g) = generation_of(&self.barge_in) {
            if current.barge_in.plugin_generation() != Some(g) {
                current.barge_in = self.barge_in_behaviour(&session);
                swapped.push(Slot::BargeIn);
            }
        }
        if !swapped.is_empty() {
            tracing::debug!(session = session_id, slots = ?swapped, "session switched plug-in versions");
        }
    }
}
