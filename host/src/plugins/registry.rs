//! The plug-in registry: the current version of each slot, per-session behaviours, reload (hot
//! swap), shadow and canary versions, and status.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::behaviour::defaults::{
    BuiltinBehaviours, DefaultBargeIn, NoIntent, PassThroughPrompt, SilenceRules,
};
use crate::behaviour::{BehaviourSource, Behaviours, Observer};

use super::behaviours::{PluginBargeIn, PluginIntent, PluginPrompt, PluginTurn};
use super::bindings::{barge_in, intent, prompt, turn};
use super::canary::CanaryPolicy;
use super::error::PluginError;
use super::instance::SlotInstance;
use super::loaded::{load, read_component, LoadedPlugin};
use super::oci::{self, OciSource, Registries, Tracked};
use super::runtime::Runtime;
use super::settings::{CanarySettings, PluginSettings, Slot};
use super::shadow::{self, Candidate};
use super::slot_cell::{Canary, CanaryOutcome, SlotCell, SlotStatus, Wanted};
use super::watch::{spawn_watcher, WatchHandle};
use super::worlds::World;

/// Runs `$body` with `$cell` bound to the cell of `$slot` (the cells differ in type).
macro_rules! on_cell {
    ($registry:expr, $slot:expr, $cell:ident => $body:expr) => {
        match $slot {
            Slot::Intent => {
                let $cell = &$registry.intent;
                $body
            }
            Slot::Prompt => {
                let $cell = &$registry.prompt;
                $body
            }
            Slot::BargeIn => {
                let $cell = &$registry.barge_in;
                $body
            }
            Slot::Turn => {
                let $cell = &$registry.turn;
                $body
            }
        }
    };
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
    turn: SlotCell<turn::EndOfTurnPolicy>,
    generation: AtomicU64,
    canary_policy: CanaryPolicy,
    /// Serialises reloads (file watcher and admin endpoint).
    reload_lock: Mutex<()>,
    /// Pulls `oci://` versions (live, shadow and canary).
    registries: Registries,
    /// Per slot (indexed by `Slot as usize`): the OCI reference its live version follows.
    sources: [Option<Tracked>; 4],
    /// The file watcher and the tag follower, stopped when the registry is dropped.
    watchers: Mutex<Vec<WatchHandle>>,
}

impl PluginRegistry {
    /// Loads every configured slot (pulling `oci://` sources, compiling or reading the
    /// precompiled cache, validating and self-checking each), starts the file watcher when
    /// `settings.watch` is set and follows the tags that serve slots. Fails with a one-line
    /// reason naming the slot and file when a configured component is missing or invalid.
    pub fn start(
        mut settings: PluginSettings,
        fallback: BuiltinBehaviours,
    ) -> Result<Arc<PluginRegistry>, PluginError> {
        let registries = Registries::new(
            settings.oci.clone(),
            oci::store_dir(settings.cache_dir.as_deref()),
        );
        let mut sources: [Option<Tracked>; 4] = Default::default();
        for slot in Slot::ALL {
            let configured = settings.slot(slot).path.as_deref();
            let Some(source) = configured.and_then(OciSource::from_path) else {
                continue;
            };
            let source = source.map_err(|reason| PluginError::Source { slot, reason })?;
            let (pulled, problem) =
                oci::first_pull(&registries, &source).map_err(|reason| PluginError::Source {
                    slot,
                    reason: format!("cannot pull {source}: {reason}"),
                })?;
            tracing::info!(slot = %slot, source = %source, digest = %pulled.digest, "plug-in pulled");
            settings.slot_mut(slot).path = Some(pulled.file);
            sources[slot as usize] = Some(Tracked::new(source, pulled.digest, problem));
        }
        let rt = Runtime::new(&settings)?;
        let registry = Arc::new(PluginRegistry {
            rt,
            fallback,
            intent: SlotCell::new(&settings.intent),
            prompt: SlotCell::new(&settings.prompt),
            barge_in: SlotCell::new(&settings.barge_in),
            turn: SlotCell::new(&settings.turn),
            generation: AtomicU64::new(0),
            canary_policy: settings.canary_policy,
            reload_lock: Mutex::new(()),
            registries,
            sources,
            watchers: Mutex::new(Vec::new()),
        });
        registry.reload_cell(&registry.intent, true)?;
        registry.reload_cell(&registry.prompt, true)?;
        registry.reload_cell(&registry.barge_in, true)?;
        registry.reload_cell(&registry.turn, true)?;
        for slot in Slot::ALL {
            let configured = settings.slot(slot);
            if let Some(path) = &configured.shadow {
                registry.set_shadow(slot, Some(path))?;
            }
            if let Some(canary) = &configured.canary {
                registry.start_canary(slot, canary)?;
            }
        }
        if settings.watch {
            let paths: Vec<(Slot, PathBuf)> = Slot::ALL
                .iter()
                .filter_map(|s| settings.slot(*s).path.clone().map(|p| (*s, p)))
                .collect();
            if !paths.is_empty() {
                let handle = spawn_watcher(Arc::downgrade(&registry), paths)?;
                registry.watching(handle);
            }
        }
        // A tag is followed whatever `watch` says: naming a tag asks for its newest version,
        // and a digest is how a slot is frozen.
        let tags: Vec<Slot> = Slot::ALL
            .into_iter()
            .filter(|s| matches!(&registry.sources[*s as usize], Some(t) if !t.source.is_pinned()))
            .collect();
        if !tags.is_empty() {
            let every = settings.oci.poll;
            let handle = oci::spawn_follower(Arc::downgrade(&registry), tags, every)?;
            registry.watching(handle);
        }
        Ok(registry)
    }

    fn watching(&self, handle: WatchHandle) {
        self.watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    /// What serves each slot now (judging running canaries first).
    pub fn status(&self) -> Vec<SlotStatus> {
        self.judge(&self.intent);
        self.judge(&self.prompt);
        self.judge(&self.barge_in);
        self.judge(&self.turn);
        let mut all = vec![
            self.intent.status(),
            self.prompt.status(),
            self.barge_in.status(),
            self.turn.status(),
        ];
        for status in &mut all {
            if let Some(tracked) = &self.sources[status.slot as usize] {
                status.source = Some(tracked.source.text.clone());
                status.digest = Some(tracked.running());
                if let Some(problem) = tracked.problem() {
                    status.last_error = Some(problem);
                }
            }
        }
        all
    }

    /// One line per slot whose OCI reference names a version that does not serve (the registry
    /// is unreachable, or the new version was refused), for the body of `/readyz`. The server
    /// stays ready: the running version serves.
    pub fn source_problems(&self) -> Vec<String> {
        Slot::ALL
            .into_iter()
            .filter_map(|slot| {
                let problem = self.sources[slot as usize].as_ref()?.problem()?;
                Some(format!("plug-in {slot}: {problem}"))
            })
            .collect()
    }

    /// Asks the registry what `slot`'s tag names now and, when it moved, pulls, checks and
    /// loads that version; sessions switch at their next turn. A version that fails keeps the
    /// running one (see [`PluginRegistry::source_problems`]).
    pub(crate) fn follow_source(&self, slot: Slot) {
        let Some(tracked) = &self.sources[slot as usize] else {
            return;
        };
        let latest = match self.registries.resolve(&tracked.source) {
            Ok(digest) => digest,
            Err(reason) => return tracked.retried(slot, reason),
        };
        if !tracked.wants(&latest) {
            return;
        }
        let pulled = match self.registries.pull(&tracked.source, &latest) {
            Ok(pulled) => pulled,
            Err(reason) => return tracked.retried(slot, reason),
        };
        match self.switch_live(slot, pulled.file) {
            Ok(()) => {
                tracked.switched(slot, &pulled.digest);
                self.registries.prune(&self.loaded_files());
            }
            Err(e) => tracked.refused(slot, &latest, e.to_string()),
        }
    }

    /// The files of every version loaded now (live, shadow and canary of each slot).
    fn loaded_files(&self) -> Vec<PathBuf> {
        fn of<W: World>(cell: &SlotCell<W>) -> impl Iterator<Item = PathBuf> {
            let shadow = cell.shadow().map(|p| p.info.path.clone());
            let canary = cell.canary().map(|c| c.plugin.info.path.clone());
            let live = cell.current().map(|p| p.info.path.clone());
            [cell.live_path(), live, shadow, canary]
                .into_iter()
                .flatten()
        }
        of(&self.intent)
            .chain(of(&self.prompt))
            .chain(of(&self.barge_in))
            .chain(of(&self.turn))
            .collect()
    }

    /// Loads `file` as `slot`'s live version; on failure the previous file stays live.
    fn switch_live(&self, slot: Slot, file: PathBuf) -> Result<(), PluginError> {
        on_cell!(self, slot, cell => {
            let previous = cell.set_live_path(file);
            let result = self.reload_cell(cell, false).map(drop);
            if result.is_err() {
                if let Some(previous) = previous {
                    cell.set_live_path(previous);
                }
            }
            result
        })
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
            Slot::Turn => self.reload_cell(&self.turn, false).map(drop),
        }
    }

    /// Counters of the runtime as OpenMetrics text (calls, fallbacks, faults by kind,
    /// quarantines, instantiations, reloads, quarantined and degraded gauges per slot, and the
    /// recorder's written and dropped records when recording is on), without the closing
    /// `# EOF`: `/metrics` puts it after the process metrics and then ends the text.
    pub fn prometheus(&self) -> String {
        let status = self.status();
        let mut out = String::new();
        self.rt.metrics.encode(&mut out, |slot| {
            status.iter().any(|s| s.slot == slot && s.quarantined)
        });
        if let Some(recorder) = &self.rt.recorder {
            recorder.encode(&mut out);
        }
        out
    }

    /// The file a slot's live version is read from (moved by a promotion).
    pub(crate) fn live_path(&self, slot: Slot) -> Option<PathBuf> {
        on_cell!(self, slot, cell => cell.live_path())
    }

    /// Rollback policy for canaries started without their own.
    pub fn canary_policy(&self) -> CanaryPolicy {
        self.canary_policy
    }

    /// Starts (`Some`) or stops (`None`) shadowing `slot` with the component at `path`: loaded
    /// and self-checked like a live version; sessions pick it up at their next turn.
    pub fn set_shadow(&self, slot: Slot, path: Option<&Path>) -> Result<(), PluginError> {
        on_cell!(self, slot, cell => {
            let plugin = match path {
                Some(path) => Some(self.load_candidate(cell, path)?),
                None => None,
            };
            match &plugin {
                Some(p) => tracing::info!(slot = %slot, shadow = &*p.label, "shadow version started"),
                None => tracing::info!(slot = %slot, "shadow version stopped"),
            }
            cell.set_shadow(plugin);
            Ok(())
        })
    }

    /// Starts a canary of `slot` (replacing a running one): `canary.percent` % of new sessions
    /// get it.
    pub fn start_canary(&self, slot: Slot, canary: &CanarySettings) -> Result<(), PluginError> {
        on_cell!(self, slot, cell => {
            let plugin = self.load_candidate(cell, &canary.path)?;
            tracing::info!(
                slot = %slot,
                canary = &*plugin.label,
                percent = canary.percent.min(100),
                "canary version started"
            );
            cell.start_canary(Canary {
                plugin,
                percent: canary.percent.min(100),
                policy: canary.policy,
            });
            Ok(())
        })
    }

    /// Ends the canary of `slot`: its sessions go back to the live version at their next turn.
    pub fn abort_canary(&self, slot: Slot) -> Result<CanaryOutcome, PluginError> {
        let ended = on_cell!(self, slot, cell => cell.end_canary(None, "aborted", None));
        let ended = ended.ok_or(PluginError::NoCanary(slot))?;
        tracing::info!(slot = %slot, canary = %ended.version, "canary version aborted");
        Ok(ended)
    }

    /// Makes the canary of `slot` the live version: every session runs it from its next turn,
    /// and reloads read its file from now on.
    pub fn promote_canary(&self, slot: Slot) -> Result<CanaryOutcome, PluginError> {
        let _guard = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let promoted = on_cell!(self, slot, cell => cell.promote());
        let promoted = promoted.ok_or(PluginError::NoCanary(slot))?;
        tracing::info!(slot = %slot, version = %promoted.version, "canary version promoted to live");
        Ok(promoted)
    }

    /// Loads a shadow or canary version of `cell`'s slot, configured like the live one. An
    /// `oci://` path is pulled first (a tag is read once: candidates do not follow it).
    fn load_candidate<W: World>(
        &self,
        cell: &SlotCell<W>,
        path: &Path,
    ) -> Result<Arc<LoadedPlugin<W>>, PluginError> {
        let pulled;
        let path = match OciSource::from_path(path) {
            None => path,
            Some(source) => {
                let source_error = |reason: String| PluginError::Source {
                    slot: W::SLOT,
                    reason,
                };
                let source = source.map_err(source_error)?;
                pulled = self
                    .registries
                    .fetch(&source)
                    .map_err(|reason| source_error(format!("cannot pull {source}: {reason}")))?;
                pulled.file.as_path()
            }
        };
        let _guard = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = read_component::<W>(path)?;
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        load::<W>(&self.rt, path, &bytes, &cell.config, generation)
    }

    /// Rolls back `cell`'s canary when it misbehaves (see `canary.rs`).
    fn judge<W: World>(&self, cell: &SlotCell<W>) {
        if let Some(rollback) = cell.judge() {
            self.rt.metrics.canary_rollbacks[W::SLOT as usize].inc();
            tracing::error!(
                slot = %W::SLOT,
                canary = %rollback.version,
                reason = rollback.reason.as_deref().unwrap_or(""),
                "canary version rolled back by itself; its sessions return to the live version at their next turn"
            );
        }
    }

    fn reload_cell<W: World>(
        &self,
        cell: &SlotCell<W>,
        initial: bool,
    ) -> Result<Reloaded, PluginError> {
        let Some(path) = cell.live_path() else {
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
            load::<W>(&self.rt, &path, &bytes, &cell.config, generation).map(Some)
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
                cell.set_current(plugin);
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

    fn intent_behaviour(
        &self,
        session: &Arc<str>,
        version: Option<Arc<LoadedPlugin<intent::IntentAnalyzer>>>,
    ) -> Box<dyn crate::behaviour::IntentAnalyzer> {
        match version {
            Some(p) => Box::new(self.intent_plugin(session, p, SlotInstance::new)),
            None => Box::new(NoIntent),
        }
    }

    fn prompt_behaviour(
        &self,
        session: &Arc<str>,
        version: Option<Arc<LoadedPlugin<prompt::PromptShaper>>>,
    ) -> Box<dyn crate::behaviour::PromptShaper> {
        match version {
            Some(p) => Box::new(self.prompt_plugin(session, p, SlotInstance::new)),
            None => Box::new(PassThroughPrompt),
        }
    }

    fn barge_in_behaviour(
        &self,
        session: &Arc<str>,
        version: Option<Arc<LoadedPlugin<barge_in::BargeInPolicy>>>,
    ) -> Box<dyn crate::behaviour::BargeInPolicy> {
        match version {
            Some(p) => Box::new(self.barge_in_plugin(session, p, SlotInstance::new)),
            None => Box::new(DefaultBargeIn(self.fallback.rules)),
        }
    }

    fn turn_behaviour(
        &self,
        session: &Arc<str>,
        version: Option<Arc<LoadedPlugin<turn::EndOfTurnPolicy>>>,
    ) -> Box<dyn crate::behaviour::TurnPolicy> {
        match version {
            Some(p) => Box::new(self.turn_plugin(session, p, SlotInstance::new)),
            None => Box::new(SilenceRules),
        }
    }

    fn intent_plugin(
        &self,
        session: &Arc<str>,
        p: Arc<LoadedPlugin<intent::IntentAnalyzer>>,
        instance: Instance<intent::IntentAnalyzer>,
    ) -> PluginIntent {
        PluginIntent {
            slot: instance(self.rt.clone(), p, session.clone()),
            fallback: NoIntent,
        }
    }

    fn prompt_plugin(
        &self,
        session: &Arc<str>,
        p: Arc<LoadedPlugin<prompt::PromptShaper>>,
        instance: Instance<prompt::PromptShaper>,
    ) -> PluginPrompt {
        PluginPrompt {
            slot: instance(self.rt.clone(), p, session.clone()),
            fallback: PassThroughPrompt,
            max_tokens: self.rt.limits.prompt_max_tokens,
        }
    }

    fn barge_in_plugin(
        &self,
        session: &Arc<str>,
        p: Arc<LoadedPlugin<barge_in::BargeInPolicy>>,
        instance: Instance<barge_in::BargeInPolicy>,
    ) -> PluginBargeIn {
        PluginBargeIn {
            slot: instance(self.rt.clone(), p, session.clone()),
            fallback: DefaultBargeIn(self.fallback.rules),
        }
    }

    fn turn_plugin(
        &self,
        session: &Arc<str>,
        p: Arc<LoadedPlugin<turn::EndOfTurnPolicy>>,
        instance: Instance<turn::EndOfTurnPolicy>,
    ) -> PluginTurn {
        PluginTurn {
            slot: instance(self.rt.clone(), p, session.clone()),
            fallback: SilenceRules,
        }
    }

    /// A shadow tap running `candidate`, or `None` when the slot shadows enough sessions.
    fn tap<C: Candidate>(&self, candidate: C) -> Option<Box<dyn Observer<C::Input, C::Decision>>> {
        shadow::spawn(&self.rt, candidate).map(|t| Box::new(t) as Box<_>)
    }

    fn shadows(&self, session: &Arc<str>) -> crate::behaviour::Shadows {
        crate::behaviour::Shadows {
            intent: self
                .intent
                .shadow()
                .and_then(|p| self.tap(self.intent_plugin(session, p, SlotInstance::shadow))),
            prompt: self
                .prompt
                .shadow()
                .and_then(|p| self.tap(self.prompt_plugin(session, p, SlotInstance::shadow))),
            barge_in: self
                .barge_in
                .shadow()
                .and_then(|p| self.tap(self.barge_in_plugin(session, p, SlotInstance::shadow))),
            turn: self
                .turn
                .shadow()
                .and_then(|p| self.tap(self.turn_plugin(session, p, SlotInstance::shadow))),
        }
    }
}

/// Makes a slot's instance for a session: [`SlotInstance::new`] or [`SlotInstance::shadow`].
type Instance<W> = fn(Arc<Runtime>, Arc<LoadedPlugin<W>>, Arc<str>) -> SlotInstance<W>;

impl Drop for PluginRegistry {
    fn drop(&mut self) {
        let watchers = self.watchers.get_mut().unwrap_or_else(|p| p.into_inner());
        for handle in watchers.drain(..) {
            handle.stop();
        }
    }
}

/// Whether a session's observer of a slot runs the slot's shadow version now.
fn shadow_current<I, D, W: World>(
    observer: &Option<Box<dyn Observer<I, D>>>,
    cell: &SlotCell<W>,
) -> bool {
    observer.as_ref().map(|o| o.generation()) == cell.shadow().map(|p| p.generation)
}

impl BehaviourSource for PluginRegistry {
    fn asks_turn(&self) -> bool {
        self.turn.live_path().is_some()
            || self.turn.canary().is_some()
            || self.turn.shadow().is_some()
    }

    fn for_session(&self, session_id: &str) -> Behaviours {
        let session: Arc<str> = session_id.into();
        self.judge(&self.intent);
        self.judge(&self.prompt);
        self.judge(&self.barge_in);
        self.judge(&self.turn);
        Behaviours {
            intent: self.intent_behaviour(&session, self.intent.pick(session_id)),
            prompt: self.prompt_behaviour(&session, self.prompt.pick(session_id)),
            barge_in: self.barge_in_behaviour(&session, self.barge_in.pick(session_id)),
            turn: self.turn_behaviour(&session, self.turn.pick(session_id)),
            shadows: self.shadows(&session),
        }
    }

    fn refresh(&self, session_id: &str, current: &mut Behaviours) {
        let session: Arc<str> = session_id.into();
        self.judge(&self.intent);
        self.judge(&self.prompt);
        self.judge(&self.barge_in);
        self.judge(&self.turn);
        let mut swapped = Vec::new();
        if let Wanted::Switch(v) = self.intent.wanted(current.intent.plugin_generation()) {
            current.intent = self.intent_behaviour(&session, v);
            swapped.push(Slot::Intent);
        }
        if let Wanted::Switch(v) = self.prompt.wanted(current.prompt.plugin_generation()) {
            current.prompt = self.prompt_behaviour(&session, v);
            swapped.push(Slot::Prompt);
        }
        if let Wanted::Switch(v) = self.barge_in.wanted(current.barge_in.plugin_generation()) {
            current.barge_in = self.barge_in_behaviour(&session, v);
            swapped.push(Slot::BargeIn);
        }
        if let Wanted::Switch(v) = self.turn.wanted(current.turn.plugin_generation()) {
            current.turn = self.turn_behaviour(&session, v);
            swapped.push(Slot::Turn);
        }
        let shadows = &mut current.shadows;
        if !shadow_current(&shadows.intent, &self.intent) {
            // The old observer (if any) is dropped first, ending its thread and freeing its
            // place among the shadowed sessions.
            shadows.intent = None;
            shadows.intent = self
                .intent
                .shadow()
                .and_then(|p| self.tap(self.intent_plugin(&session, p, SlotInstance::shadow)));
        }
        if !shadow_current(&shadows.prompt, &self.prompt) {
            shadows.prompt = None;
            shadows.prompt = self
                .prompt
                .shadow()
                .and_then(|p| self.tap(self.prompt_plugin(&session, p, SlotInstance::shadow)));
        }
        if !shadow_current(&shadows.barge_in, &self.barge_in) {
            shadows.barge_in = None;
            shadows.barge_in = self
                .barge_in
                .shadow()
                .and_then(|p| self.tap(self.barge_in_plugin(&session, p, SlotInstance::shadow)));
        }
        if !shadow_current(&shadows.turn, &self.turn) {
            shadows.turn = None;
            shadows.turn = self
                .turn
                .shadow()
                .and_then(|p| self.tap(self.turn_plugin(&session, p, SlotInstance::shadow)));
        }
        if !swapped.is_empty() {
            tracing::debug!(session = session_id, slots = ?swapped, "session switched plug-in versions");
        }
    }
}
