//! The tool versions a generated project pins: the ones this host's own plug-ins are built with.
//!
//! They are read from the workspace's own files, embedded at compile time, rather than copied
//! here, so a scaffold can never drift from what the workspace builds and tests: wit-bindgen from
//! the root `Cargo.toml`, componentize-py and componentize-js from `scripts/build-plugins.sh`.

/// The workspace manifest, for its `wit-bindgen` requirement.
const WORKSPACE_MANIFEST: &str = include_str!("../../../../Cargo.toml");
/// The plug-in build script, for its `COMPONENTIZE_*_VERSION` pins.
const BUILD_PLUGINS: &str = include_str!("../../../../scripts/build-plugins.sh");

/// The pinned versions of the guest toolchains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The `wit-bindgen` crate requirement, e.g. `0.63`.
    pub wit_bindgen: String,
    /// componentize-py on PyPI, e.g. `0.25.1`.
    pub componentize_py: String,
    /// `@bytecodealliance/componentize-js` on npm, e.g. `0.23.0`.
    pub componentize_js: String,
}

impl Versions {
    /// The versions embedded in this binary; `Err` names the one that could not be read.
    pub fn embedded() -> Result<Self, String> {
        Ok(Self {
            wit_bindgen: dependency(WORKSPACE_MANIFEST, "wit-bindgen")
                .ok_or("the wit-bindgen version is missing from the embedded Cargo.toml")?,
            componentize_py: shell_assignment(BUILD_PLUGINS, "COMPONENTIZE_PY_VERSION")
                .ok_or("the componentize-py version is missing from build-plugins.sh")?,
            componentize_js: shell_assignment(BUILD_PLUGINS, "COMPONENTIZE_JS_VERSION")
                .ok_or("the componentize-js version is missing from build-plugins.sh")?,
        })
    }
}

/// The version of `name` in a manifest line `name = "X"` or `name = { version = "X", ... }`.
fn dependency(manifest: &str, name: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix(name)?
            .trim_start()
            .strip_prefix('=')?;
        let rest = rest.trim_start();
        let quoted = match rest.strip_prefix('{') {
            Some(table) => table
                .split("version")
                .nth(1)?
                .trim_start()
                .strip_prefix('=')?,
            None => rest,
        };
        quoted
            .trim_start()
            .strip_prefix('"')?
            .split('"')
            .next()
            .map(str::to_string)
    })
}

/// The value of a shell assignment `NAME=value` at the start of a line.
fn shell_assignment(script: &str, name: &str) -> Option<String> {
    script.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix('=')?;
        let value = value.trim().trim_matches(['"', '\'']);
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn looks_like_a_version(v: &str) -> bool {
        !v.is_empty()
            && v.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    }

    #[test]
    fn the_embedded_pins_are_found() {
        let v = Versions::embedded().unwrap();
        assert!(looks_like_a_version(&v.wit_bindgen), "{v:?}");
        assert!(looks_like_a_version(&v.componentize_py), "{v:?}");
        assert!(looks_like_a_version(&v.componentize_js), "{v:?}");
    }

    #[test]
    fn both_manifest_forms_are_read() {
        let manifest = "[workspace.dependencies]\nwit-bindgen-rt = \"9\"\nwit-bindgen = \"0.63\"\n\
                        serde = { version = \"1\", features = [\"derive\"] }\n";
        assert_eq!(dependency(manifest, "wit-bindgen").as_deref(), Some("0.63"));
        assert_eq!(dependency(manifest, "serde").as_deref(), Some("1"));
        assert_eq!(dependency(manifest, "tokio"), None);
    }

    #[test]
    fn shell_pins_are_read() {
        let script = "#!/bin/sh\n# COMPONENTIZE_PY_VERSION=9\nCOMPONENTIZE_PY_VERSION=0.25.1\n";
        assert_eq!(
            shell_assignment(script, "COMPONENTIZE_PY_VERSION").as_deref(),
            Some("0.25.1")
        );
        assert_eq!(shell_assignment(script, "COMPONENTIZE_JS_VERSION"), None);
    }
}
