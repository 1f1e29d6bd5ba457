//! The files of a new plug-in project, by slot and language, rendered in memory: nothing here
//! touches the disk, so the whole project is known to render before anything is written.

use crate::plugins::Slot;

use super::name::lib_name;
use super::templates::{self as t, render};
use super::versions::Versions;
use super::Lang;

/// One file of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// Path relative to the project directory, `/`-separated.
    pub path: &'static str,
    pub contents: String,
    /// Scripts are made executable.
    pub executable: bool,
}

/// What the project is.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub name: &'a str,
    pub slot: Slot,
    pub lang: Lang,
}

/// Index of a slot in the per-slot template arrays.
fn slot_index(slot: Slot) -> usize {
    match slot {
        Slot::Intent => 0,
        Slot::Prompt => 1,
        Slot::BargeIn => 2,
        Slot::Turn => 3,
    }
}

/// The world's decision function.
fn export(slot: Slot) -> &'static str {
    match slot {
        Slot::Intent => "analyze",
        Slot::Prompt => "shape",
        Slot::BargeIn | Slot::Turn => "decide",
    }
}

/// What the stub answers, for the README.
fn stub_behaviour(slot: Slot) -> &'static str {
    match slot {
        Slot::Intent => "finds no intent, as the host's built-in behaviour does",
        Slot::Prompt => {
            "passes the conversation to the LLM as the host's built-in behaviour does: the \
             system prompt (when there is one), the history, then the user's turn"
        }
        Slot::BargeIn => {
            "is a simple rule like the host's built-in one: backchannels (\"uh-huh\", \"yeah\") \
             are ignored, five words interrupt once the agent has spoken three seconds unless a \
             protected phrase is playing, and anything else waits for more words"
        }
        Slot::Turn => {
            "keeps the host's silence rules (`wait(0)`) except after a word that promises more \
             (\"and\", \"um\", \"to\"...), when it holds the turn open for 1.5 s"
        }
    }
}

/// Every file of the project described by `spec`.
pub fn files(spec: Spec<'_>, versions: &Versions) -> Result<Vec<ProjectFile>, String> {
    let slot = spec.slot;
    let lib = lib_name(spec.name);
    let slot_env = slot.as_str().to_ascii_uppercase();
    let host_version = env!("CARGO_PKG_VERSION");
    let wit_package = t::wit_package()?;
    let wit_version = wit_package.rsplit('@').next().unwrap_or_default();
    let (lang_name, source_path, source) = match spec.lang {
        Lang::Rust => ("Rust", "src/lib.rs", t::RUST_SOURCES[slot_index(slot)]),
        Lang::Python => ("Python", "app.py", t::PYTHON_SOURCES[slot_index(slot)]),
        Lang::Js => ("JavaScript", "app.js", t::JS_SOURCES[slot_index(slot)]),
    };
    let mut values: Vec<(&str, &str)> = vec![
        ("name", spec.name),
        ("lib", &lib),
        ("slot", slot.as_str()),
        ("SLOT", &slot_env),
        ("world", slot.world()),
        ("export", export(slot)),
        ("host_version", host_version),
        ("wit_package", wit_package),
        ("wit_version", wit_version),
        ("lang_name", lang_name),
        ("source", source_path),
        ("stub", stub_behaviour(slot)),
        ("wit_bindgen_version", &versions.wit_bindgen),
        ("componentize_py_version", &versions.componentize_py),
        ("componentize_js_version", &versions.componentize_js),
    ];
    let build_section = render(
        match spec.lang {
            Lang::Rust => t::RUST_README,
            Lang::Python => t::PYTHON_README,
            Lang::Js => t::JS_README,
        },
        &values,
    )?;
    values.push(("build", build_section.trim_end()));

    let file = |path: &'static str, template: &str, executable: bool| {
        render(template, &values).map(|contents| ProjectFile {
            path,
            contents,
            executable,
        })
    };
    let mut out = vec![
        ProjectFile {
            path: "wit/policy.wit",
            contents: t::POLICY_WIT.to_string(),
            executable: false,
        },
        file("README.md", t::README, false)?,
        file("test.sh", t::TEST_SH, true)?,
        file(".gitignore", t::GITIGNORE, false)?,
        file(
            "sample-recording.jsonl",
            t::SAMPLES[slot_index(slot)],
            false,
        )?,
        file(source_path, source, false)?,
    ];
    // The `world` file names the WIT world for the build script, as in voice-host's own
    // plugins/python and plugins/js.
    let world = ProjectFile {
        path: "world",
        contents: format!("{}\n", slot.world()),
        executable: false,
    };
    match spec.lang {
        Lang::Rust => {
            out.push(file("Cargo.toml", t::RUST_CARGO_TOML, false)?);
            out.push(file("build.sh", t::RUST_BUILD_SH, true)?);
        }
        Lang::Python => {
            out.push(world);
            out.push(file("build.sh", t::PYTHON_BUILD_SH, true)?);
        }
        Lang::Js => {
            out.push(world);
            out.push(file("package.json", t::JS_PACKAGE_JSON, false)?);
            out.push(file("build.sh", t::JS_BUILD_SH, true)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions() -> Versions {
        Versions {
            wit_bindgen: "0.63".into(),
            componentize_py: "0.25.1".into(),
            componentize_js: "0.23.0".into(),
        }
    }

    #[test]
    fn every_slot_and_language_renders_completely() {
        for slot in Slot::ALL {
            for lang in [Lang::Rust, Lang::Python, Lang::Js] {
                let spec = Spec {
                    name: "my-policy",
                    slot,
                    lang,
                };
                let files = files(spec, &versions()).unwrap();
                for f in &files {
                    if f.path != "wit/policy.wit" {
                        assert!(!f.contents.contains("{{"), "{slot} {lang:?} {}", f.path);
                    }
                }
                let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
                for needed in ["wit/policy.wit", "README.md", "build.sh", "test.sh"] {
                    assert!(paths.contains(&needed), "{paths:?}");
                }
                let readme = &files
                    .iter()
                    .find(|f| f.path == "README.md")
                    .unwrap()
                    .contents;
                let env = format!("{}_PLUGIN_CANARY", slot.as_str().to_ascii_uppercase());
                assert!(readme.contains(&env), "{readme}");
            }
        }
    }

    #[test]
    fn the_sample_is_of_the_slot_and_named_after_the_project() {
        for slot in Slot::ALL {
            let spec = Spec {
                name: "my-policy",
                slot,
                lang: Lang::Rust,
            };
            let files = files(spec, &versions()).unwrap();
            let sample = files
                .iter()
                .find(|f| f.path == "sample-recording.jsonl")
                .unwrap();
            for line in sample.contents.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["slot"], slot.as_str(), "{line}");
                assert_eq!(v["plugin"], "my-policy", "{line}");
                assert_eq!(v["outcome"], "plugin", "{line}");
            }
        }
    }

    #[test]
    fn the_rust_crate_pins_the_workspace_wit_bindgen() {
        let spec = Spec {
            name: "my-policy",
            slot: Slot::Intent,
            lang: Lang::Rust,
        };
        let files = files(spec, &versions()).unwrap();
        let manifest = &files
            .iter()
            .find(|f| f.path == "Cargo.toml")
            .unwrap()
            .contents;
        assert!(manifest.contains("wit-bindgen = \"0.63\""), "{manifest}");
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        let build = &files
            .iter()
            .find(|f| f.path == "build.sh")
            .unwrap()
            .contents;
        assert!(build.contains("release/my_policy.wasm"), "{build}");
    }
}
