//! `voice-host plugins new NAME --slot SLOT [--lang LANG] [--dir PARENT]`: writes a standalone
//! plug-in project for a third party, outside any workspace: the host's WIT package vendored at
//! this host's version, a stubbed guest that builds and answers something valid, a build
//! script, a replay test over a sample recording, and a README on building, checking, replaying
//! and deploying it.
//!
//! Everything the project needs is embedded in the binary (the WIT, the templates, the pinned
//! tool versions), so the command works from an installed `voice-host`. Errors are one line,
//! `voice-host plugins new: <reason>`, with exit status 2 (clap rejects bad `--slot`/`--lang`
//! values itself).

mod name;
mod project;
mod templates;
mod versions;
mod write;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::plugins::Slot;

/// The slot the plug-in serves, as spelled in configuration.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotArg {
    /// Intent analysis of a final user turn (world `intent-analyzer`).
    Intent,
    /// Prompt shaping (world `prompt-shaper`).
    Prompt,
    /// Barge-in policy (world `barge-in-policy`).
    #[value(name = "barge_in", alias = "barge-in")]
    BargeIn,
    /// End-of-turn policy (world `end-of-turn-policy`).
    Turn,
}

impl From<SlotArg> for Slot {
    fn from(slot: SlotArg) -> Self {
        match slot {
            SlotArg::Intent => Slot::Intent,
            SlotArg::Prompt => Slot::Prompt,
            SlotArg::BargeIn => Slot::BargeIn,
            SlotArg::Turn => Slot::Turn,
        }
    }
}

/// The guest's language.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with wit-bindgen (wasm32-wasip2).
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with componentize-js.
    #[value(alias = "javascript")]
    Js,
}

/// Arguments of `plugins new`.
#[derive(clap::Args, Debug, Clone)]
pub struct NewArgs {
    /// The project's name: its directory, package and component file (`NAME.wasm`). Lowercase
    /// letters, digits, '-' and '_'.
    pub name: String,
    /// The slot the plug-in serves.
    #[arg(long, value_enum)]
    pub slot: SlotArg,
    /// The plug-in's language.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Lang,
    /// Where to create the project directory NAME (default: the current directory).
    #[arg(long, value_name = "PARENT")]
    pub dir: Option<PathBuf>,
}

/// Writes the project and says where it is and what to run next.
pub fn run(args: NewArgs) -> ExitCode {
    match create(&args) {
        Ok(dir) => {
            println!(
                "created {} ({} {} plug-in)",
                dir.display(),
                Slot::from(args.slot),
                lang_label(args.lang)
            );
            println!(
                "next: cd {} && ./build.sh && voice-host plugins check {}.wasm && ./test.sh",
                dir.display(),
                args.name
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("voice-host plugins new: {reason}");
            ExitCode::from(2)
        }
    }
}

fn lang_label(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    }
}

/// The project directory, once written.
fn create(args: &NewArgs) -> Result<PathBuf, String> {
    name::validate(&args.name)?;
    let versions = versions::Versions::embedded()?;
    let spec = project::Spec {
        name: &args.name,
        slot: args.slot.into(),
        lang: args.lang,
    };
    let files = project::files(spec, &versions)?;
    // Without --dir the path stays relative ("NAME"), as the user would type it.
    let parent = args.dir.as_deref().unwrap_or(Path::new(""));
    let dir = parent.join(&args.name);
    write::write_project(&dir, &files)?;
    Ok(dir)
}
