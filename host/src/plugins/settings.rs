//! Configuration of the plug-in runtime: which component serves each slot and the limits that
//! bound every call.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::canary::CanaryPolicy;
use super::oci::OciSettings;

/// One of the four behaviour slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// Intent analysis of a final user turn (world `intent-analyzer`).
    Intent,
    /// Prompt shaping (world `prompt-shaper`).
    Prompt,
    /// Barge-in policy (world `barge-in-policy`).
    BargeIn,
    /// End-of-turn policy (world `end-of-turn-policy`).
    Turn,
}

impl Slot {
    /// All slots, in a stable order.
    pub const ALL: [Slot; 4] = [Slot::Intent, Slot::Prompt, Slot::BargeIn, Slot::Turn];

    /// The slot's name in configuration and metrics (`intent`, `prompt`, `barge_in`, `turn`).
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Intent => "intent",
            Slot::Prompt => "prompt",
            Slot::BargeIn => "barge_in",
            Slot::Turn => "turn",
        }
    }

    /// The WIT world a component must target to serve this slot.
    pub fn world(self) -> &'static str {
        match self {
            Slot::Intent => "intent-analyzer",
            Slot::Prompt => "prompt-shaper",
            Slot::BargeIn => "barge-in-policy",
            Slot::Turn => "end-of-turn-policy",
        }
    }

    /// The world with its package and version, e.g. `voice:policy/intent-analyzer@0.1.2`.
    pub fn qualified_world(self) -> String {
        format!("voice:policy/{}@0.1.2", self.world())
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What serves one slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotSettings {
    /// Component file, or an OCI reference (`oci://REGISTRY/REPO:TAG` or `...@sha256:...`);
    /// `None` selects the built-in behaviour.
    pub path: Option<PathBuf>,
    /// Key/value configuration passed to the plug-in's `init` (the shadow and canary versions
    /// get the same).
    pub config: Vec<(String, String)>,
    /// A shadow version: answers every call beside the live one, compared and counted, never
    /// heard (`<SLOT>_PLUGIN_SHADOW`).
    pub shadow: Option<PathBuf>,
    /// A canary version serving a share of new sessions (`<SLOT>_PLUGIN_CANARY`).
    pub canary: Option<CanarySettings>,
}

/// A canary version of a slot and when it is rolled back by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySettings {
    /// Component file.
    pub path: PathBuf,
    /// Share of new sessions that get it, 0..=100 (`<SLOT>_PLUGIN_CANARY_PERCENT`).
    pub percent: u8,
    /// Automatic rollback (`PLUGIN_CANARY_MARGIN_PCT`, `PLUGIN_CANARY_MIN_CALLS`).
    pub policy: CanaryPolicy,
}

impl SlotSettings {
    /// A slot served by the component at `path` with the given configuration.
    pub fn component(path: impl Into<PathBuf>, config: Vec<(String, String)>) -> Self {
        Self {
            path: Some(path.into()),
            config,
            ..Self::default()
        }
    }
}

/// Where and how plug-in calls are recorded (`PLUGIN_RECORD*`, see `record/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSettings {
    /// Directory holding `plugin-calls.jsonl` and its rotated predecessors.
    pub dir: PathBuf,
    /// Keep transcripts and other free text; `false` keeps only word counts and lengths.
    pub text: bool,
    /// Size at which the file is rotated, in bytes.
    pub max_file_bytes: u64,
    /// Rotated files kept beside the current one (`plugin-calls.jsonl.1` is the newest).
    pub rotated_files: u32,
}

impl RecordSettings {
    /// Default size of one recording file, in MiB (`PLUGIN_RECORD_MAX_MB`).
    pub const DEFAULT_MAX_MB: u64 = 64;
    /// Default number of rotated files kept (`PLUGIN_RECORD_FILES`).
    pub const DEFAULT_ROTATED_FILES: u32 = 3;

    /// Recording into `dir` with the default text, size and rotation settings.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            text: true,
            max_file_bytes: Self::DEFAULT_MAX_MB * 1024 * 1024,
            rotated_files: Self::DEFAULT_ROTATED_FILES,
        }
    }
}

/// Settings of the plug-in runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSettings {
    /// The intent-analyzer slot.
    pub intent: SlotSettings,
    /// The prompt-shaper slot.
    pub prompt: SlotSettings,
    /// The barge-in-policy slot.
    pub barge_in: SlotSettings,
    /// The end-of-turn-policy slot.
    pub turn: SlotSettings,
    /// Linear memory cap of one plug-in instance, in bytes.
    pub memory_limit_bytes: u64,
    /// Table size cap (elements) of one plug-in instance.
    pub table_limit: u32,
    /// CPU time budget of one plug-in call on its thread, in milliseconds (checked at epoch
    /// ticks; a wall-clock backstop of ten times as much ends a call whatever its CPU use).
    pub call_deadline_ms: u64,
    /// Faults after which a session keeps the built-in behaviour for that slot until it ends
    /// or a new version is loaded.
    pub session_fault_limit: u32,
    /// Distinct sessions that must fault within `fault_window_ms` to quarantine a version.
    pub quarantine_sessions: u32,
    /// Window over which faulting sessions are counted, in milliseconds.
    pub fault_window_ms: u64,
    /// First quarantine's length in milliseconds; the version is then retried by itself, and
    /// each further quarantine doubles the length (up to 32 times this).
    pub quarantine_backoff_ms: u64,
    /// Largest `max_tokens` a prompt plug-in may request (the host's `LLM_MAX_TOKENS`).
    pub prompt_max_tokens: u32,
    /// Where precompiled components are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Concurrent sessions the instance pool is sized for.
    pub max_sessions: u32,
    /// Watch the component files and reload them when they change.
    pub watch: bool,
    /// Record every call of a configured plug-in (`None`: no recording).
    pub record: Option<RecordSettings>,
    /// Sessions a slot's shadow version may shadow at once; further sessions are not shadowed.
    pub shadow_max_sessions: u32,
    /// Rollback policy of canaries started without one of their own (the admin endpoint).
    pub canary_policy: CanaryPolicy,
    /// How slots named `oci://...` are pulled and followed.
    pub oci: OciSettings,
}

impl PluginSettings {
    /// Settings of one slot.
    pub fn slot(&self, slot: Slot) -> &SlotSettings {
        match slot {
            Slot::Intent => &self.intent,
            Slot::Prompt => &self.prompt,
            Slot::BargeIn => &self.barge_in,
            Slot::Turn => &self.turn,
        }
    }

    /// Settings of one slot, to change.
    pub fn slot_mut(&mut self, slot: Slot) -> &mut SlotSettings {
        match slot {
            Slot::Intent => &mut self.intent,
            Slot::Prompt => &mut self.prompt,
            Slot::BargeIn => &mut self.barge_in,
            Slot::Turn => &mut self.turn,
        }
    }
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            intent: SlotSettings::default(),
            prompt: SlotSettings::default(),
            barge_in: SlotSettings::default(),
            turn: SlotSettings::default(),
            memory_limit_bytes: 16 * 1024 * 1024,
            table_limit: 10_000,
            call_deadline_ms: 5,
            session_fault_limit: 5,
            quarantine_sessions: 3,
            fault_window_ms: 60_000,
            quarantine_backoff_ms: 30_000,
            prompt_max_tokens: 300,
            cache_dir: default_cache_dir(),
            max_sessions: 1024,
            watch: true,
            record: None,
            shadow_max_sessions: 64,
            canary_policy: CanaryPolicy::default(),
            oci: OciSettings::default(),
        }
    }
}

/// `$XDG_CACHE_HOME/voice-host/plugins`, else `~/.cache/voice-host/plugins`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("voice-host").join("plugins"))
}
