//! What a project name may be: it becomes a directory, a Cargo package, a `.wasm` file stem
//! (the plug-in's name in the host's logs, metrics and recordings) and a shell word in the
//! generated scripts, so only names that are valid as all of these are accepted.

/// Longest accepted name; recordings and metrics labels stay readable.
const MAX_LEN: usize = 64;

/// Rust keywords and the standard library's crates: Cargo refuses them as package names.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc-macro",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "std",
    "static",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// `Ok` when `name` can name a project; otherwise the reason, as one line.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > MAX_LEN {
        return Err(format!("the name is longer than {MAX_LEN} characters"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "invalid name {name:?}: {bad:?} is not allowed (use lowercase letters, digits, '-' and '_')"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "invalid name {name:?}: it must start with a lowercase letter"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "invalid name {name:?}: it is reserved in Rust and Cargo"
        ));
    }
    Ok(())
}

/// `name` as a Rust library name (the stem of the `.wasm` Cargo writes).
pub fn lib_name(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_like_names_pass() {
        for name in ["my-policy", "intent_v2", "a", "x9-y_z"] {
            assert_eq!(validate(name), Ok(()), "{name}");
        }
        assert_eq!(lib_name("my-policy"), "my_policy");
    }

    #[test]
    fn other_names_are_refused_with_a_reason() {
        for name in [
            "",
            "My-Policy",
            "my policy",
            "../up",
            "a/b",
            ".hidden",
            "-dash",
            "_under",
            "9lives",
            "fn",
            "test",
            "émile",
        ] {
            let reason = validate(name).expect_err(name);
            assert!(!reason.contains('\n'), "{reason}");
        }
        assert!(validate(&"a".repeat(MAX_LEN + 1)).is_err());
    }
}
