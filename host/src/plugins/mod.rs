//! WebAssembly behaviour plug-ins: wasmtime engine, component registry, per-session instances,
//! limits and hot swap.
//!
//! [`PluginRegistry::start`] loads the component configured for each slot (see
//! [`PluginSettings`]) and implements [`crate::behaviour::BehaviourSource`]: every session gets
//! its own instance of each slot, every call is bounded in memory and time, and a failing call
//! falls back to the built-in behaviour. The contract plug-ins implement is the WIT package in
//! `wit/policy.wit`.
//!
//! With `PLUGIN_RECORD` set every plug-in call is recorded (`record/`), and `voice-host plugins
//! replay` runs a component over a recording with this same runtime (`replay/`).
//!
//! A slot may also run candidate versions beside its live one: a shadow answering every call
//! off the session's path, compared and counted (`shadow.rs`), and a canary serving a share of
//! new sessions, rolled back by itself when it faults more than the live version (`canary.rs`).
//! `slot_cell.rs` decides which version each session runs.
//!
//! A slot may name a component published in an OCI registry instead of a file (`oci/`): a tag is
//! followed, and a new version behind it is pulled, verified and hot-swapped like a changed file.

mod admin;
mod behaviours;
mod bindings;
mod cache;
mod cache_dir;
mod canary;
mod check;
mod deadline;
mod engine;
mod epoch_ticker;
mod error;
mod faults;
mod imports;
mod instance;
mod loaded;
mod metrics;
pub mod oci;
mod prompt_clamp;
mod record;
mod registry;
mod replay;
mod runtime;
mod settings;
mod shadow;
mod slot_cell;
mod usage;
mod wasi;
mod watch;
mod worlds;

pub use admin::admin_routes;
pub use canary::CanaryPolicy;
pub use check::{check_component, CheckReport};
pub use error::PluginError;
pub use faults::FaultKind;
pub use prompt_clamp::{MAX_CHARS as PROMPT_MAX_CHARS, MAX_MESSAGES as PROMPT_MAX_MESSAGES};
pub use record::FILE_NAME as RECORD_FILE_NAME;
pub use registry::PluginRegistry;
pub use replay::{replay, Disagreement, ReplayOptions, ReplayReport, SideReport};
pub use settings::{
    default_cache_dir, CanarySettings, PluginSettings, RecordSettings, Slot, SlotSettings,
};
pub use slot_cell::{CanaryOutcome, CanaryStatus, CandidateStatus, SlotStatus};
pub use usage::UsageSnapshot;
