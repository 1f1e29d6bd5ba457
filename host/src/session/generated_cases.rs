//! How many generated cases a property test of the session runs: its default for the normal test
//! command, or the number in an environment variable for a long run (`SIM_CASES=60000`).

/// The number in `var`, else `default`.
pub(crate) fn from_env(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
