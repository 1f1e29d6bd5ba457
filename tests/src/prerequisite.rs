//! What a test does when something it needs outside the workspace (a Debian package, the offline
//! models) is missing: outside CI it says why and the test is skipped; with `CI=true`, which the
//! test command sets after installing everything, a missing prerequisite fails the test, so a
//! green run never hides an untested behaviour.

/// Whether the suite runs as the test command runs it (`CI=true`).
pub fn required() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Reports a missing prerequisite: panics with `reason` under `CI=true`, otherwise prints a
/// loud notice. The caller returns (skips) after this.
pub fn missing(test: &str, reason: &str) {
    if required() {
        panic!("{test}: prerequisite missing under CI=true: {reason}");
    }
    eprintln!("\n*** SKIPPED {test}: {reason} (run scripts/install-deps.sh) ***\n");
}
