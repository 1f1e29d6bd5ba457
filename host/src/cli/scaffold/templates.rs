//! The text of a generated project: template files embedded in the binary (so `plugins new`
//! works from an installed `voice-host`, far from this source tree) and their rendering.
//!
//! A template holds `{{key}}` placeholders; [`render`] replaces each with its value and refuses
//! to leave one unreplaced, so a typo in a template is an error rather than a broken project.

/// The host's WIT package, vendored into every project at the host's own version.
pub const POLICY_WIT: &str = include_str!("../../../../wit/policy.wit");

/// The WIT package's name and version as declared in [`POLICY_WIT`], e.g. `voice:policy@0.1.0`
/// (JavaScript imports name the version).
pub fn wit_package() -> Result<&'static str, String> {
    POLICY_WIT
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map(|rest| rest.trim().trim_end_matches(';').trim())
        .filter(|package| package.contains('@'))
        .ok_or_else(|| "the embedded policy.wit declares no versioned package".to_string())
}

/// The project's README; `{{build}}` takes the language's build section.
pub const README: &str = include_str!("templates/README.md");
/// The replay test.
pub const TEST_SH: &str = include_str!("templates/test.sh");
/// Written as `.gitignore`: build output and installed tools.
pub const GITIGNORE: &str = include_str!("templates/gitignore");

/// Rust: the manifest and the build script.
pub const RUST_CARGO_TOML: &str = include_str!("templates/rust/Cargo.toml");
pub const RUST_BUILD_SH: &str = include_str!("templates/rust/build.sh");
pub const RUST_README: &str = include_str!("templates/readme/rust.md");

/// Python: the build script.
pub const PYTHON_BUILD_SH: &str = include_str!("templates/python/build.sh");
pub const PYTHON_README: &str = include_str!("templates/readme/python.md");

/// JavaScript: the build script and `package.json`.
pub const JS_BUILD_SH: &str = include_str!("templates/js/build.sh");
pub const JS_PACKAGE_JSON: &str = include_str!("templates/js/package.json");
pub const JS_README: &str = include_str!("templates/readme/js.md");

/// The stubbed sources, by slot: `[intent, prompt, barge_in, turn]`.
pub const RUST_SOURCES: [&str; 4] = [
    include_str!("templates/rust/intent.rs"),
    include_str!("templates/rust/prompt.rs"),
    include_str!("templates/rust/barge_in.rs"),
    include_str!("templates/rust/turn.rs"),
];
pub const PYTHON_SOURCES: [&str; 4] = [
    include_str!("templates/python/intent.py"),
    include_str!("templates/python/prompt.py"),
    include_str!("templates/python/barge_in.py"),
    include_str!("templates/python/turn.py"),
];
pub const JS_SOURCES: [&str; 4] = [
    include_str!("templates/js/intent.js"),
    include_str!("templates/js/prompt.js"),
    include_str!("templates/js/barge_in.js"),
    include_str!("templates/js/turn.js"),
];

/// The sample recordings, by slot: `[intent, prompt, barge_in, turn]`. Their decisions are the
/// stubs'.
pub const SAMPLES: [&str; 4] = [
    include_str!("templates/sample/intent.jsonl"),
    include_str!("templates/sample/prompt.jsonl"),
    include_str!("templates/sample/barge_in.jsonl"),
    include_str!("templates/sample/turn.jsonl"),
];

/// `template` with every `{{key}}` replaced by its value in `values`; `Err` names a placeholder
/// without a value.
pub fn render(template: &str, values: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a template has an unclosed {{".to_string())?;
        let key = &after[..end];
        let value = values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("a template needs {{{{{key}}}}}, which has no value"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_once() {
        let got = render("a {{x}} b {{y}}{{x}}", &[("x", "1"), ("y", "{{x}}")]).unwrap();
        // A value is not rendered again: text containing braces stays as it is.
        assert_eq!(got, "a 1 b {{x}}1");
    }

    #[test]
    fn a_missing_value_is_an_error() {
        assert!(render("{{nope}}", &[]).unwrap_err().contains("{{nope}}"));
        assert!(render("{{open", &[]).is_err());
    }

    #[test]
    fn the_vendored_wit_is_the_hosts_package() {
        assert!(POLICY_WIT.contains("package voice:policy@"));
        let package = wit_package().unwrap();
        assert!(package.starts_with("voice:policy@"), "{package}");
        assert!(!package.ends_with(';'), "{package}");
    }
}
