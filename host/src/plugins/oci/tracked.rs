//! A slot whose live version comes from an OCI reference: which version it runs, and why the
//! newest one is not running when it is not. Read by `/readyz`, the admin listing and the log.

use std::sync::Mutex;

use super::reference::OciSource;
use crate::plugins::Slot;

/// A slot served from `source`.
pub(crate) struct Tracked {
    pub source: OciSource,
    state: Mutex<State>,
}

struct State {
    /// Manifest digest of the running version.
    running: String,
    problem: Option<Problem>,
}

#[derive(Clone, PartialEq)]
enum Problem {
    /// The registry could not be asked, or a pull failed (in transit, or its bytes did not
    /// match their digest): tried again at the next poll.
    Retried { reason: String },
    /// `digest` was pulled but its content is not a working component: not tried again until
    /// the reference moves to another version.
    Refused { digest: String, reason: String },
}

impl Tracked {
    /// `running` is the manifest digest loaded at startup; `problem` says why it is not fresh
    /// (the registry was unreachable and a stored copy serves).
    pub fn new(source: OciSource, running: String, problem: Option<String>) -> Self {
        Self {
            source,
            state: Mutex::new(State {
                running,
                problem: problem.map(|reason| Problem::Retried { reason }),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Manifest digest of the running version.
    pub fn running(&self) -> String {
        self.lock().running.clone()
    }

    /// Whether the reference's current version `latest` should be pulled and loaded. Clears a
    /// transient problem when `latest` is what runs (the registry answered again).
    pub fn wants(&self, latest: &str) -> bool {
        let mut state = self.lock();
        if state.running == latest {
            if matches!(state.problem, Some(Problem::Retried { .. })) {
                tracing::info!(source = %self.source, "the plug-in registry answers again");
                state.problem = None;
            }
            return false;
        }
        !matches!(&state.problem, Some(Problem::Refused { digest, .. }) if digest == latest)
    }

    /// `digest` now serves the slot.
    pub fn switched(&self, slot: Slot, digest: &str) {
        let mut state = self.lock();
        tracing::info!(
            slot = %slot,
            source = %self.source,
            from = %state.running,
            to = digest,
            "plug-in rolled to the reference's new version"
        );
        state.running = digest.to_string();
        state.problem = None;
    }

    /// The registry could not be asked or the pull failed; logged when the reason changes.
    pub fn retried(&self, slot: Slot, reason: String) {
        self.set(slot, Problem::Retried { reason });
    }

    /// `digest` is not a working component; logged once.
    pub fn refused(&self, slot: Slot, digest: &str, reason: String) {
        self.set(
            slot,
            Problem::Refused {
                digest: digest.to_string(),
                reason,
            },
        );
    }

    fn set(&self, slot: Slot, problem: Problem) {
        let mut state = self.lock();
        if state.problem.as_ref() != Some(&problem) {
            let line = describe(&self.source, &state.running, &problem);
            tracing::error!(slot = %slot, "{line}");
            state.problem = Some(problem);
        }
    }

    /// Why the reference's newest version does not serve, if it does not.
    pub fn problem(&self) -> Option<String> {
        let state = self.lock();
        let problem = state.problem.as_ref()?;
        Some(describe(&self.source, &state.running, problem))
    }
}

fn describe(source: &OciSource, running: &str, problem: &Problem) -> String {
    let running = short(running);
    match problem {
        Problem::Retried { reason } => {
            format!("cannot update from {source}: {reason}; {running} still serves")
        }
        Problem::Refused { digest, reason } => format!(
            "{source} moved to {}, which was refused: {reason}; {running} still serves",
            short(digest)
        ),
    }
}

/// `sha256:` and 12 hex digits: enough to tell versions apart in a line meant for people.
fn short(digest: &str) -> &str {
    let end = "sha256:".len() + 12;
    digest.get(..end).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn a_refused_version_is_not_pulled_again_until_the_reference_moves() {
        let t = Tracked::new(
            OciSource::parse("oci://127.0.0.1:5000/voice/intent:live").unwrap(),
            digest('1'),
            None,
        );
        assert!(!t.wants(&digest('1')));
        assert!(t.wants(&digest('2')));
        t.refused(Slot::Intent, &digest('2'), "fits no world".into());
        assert!(!t.wants(&digest('2')));
        let line = t.problem().unwrap();
        assert!(
            line.contains("oci://127.0.0.1:5000/voice/intent:live"),
            "{line}"
        );
        assert!(line.contains("sha256:222222222222,"), "{line}");
        assert!(line.contains("sha256:111111111111 still serves"), "{line}");
        assert!(t.wants(&digest('3')));
        t.switched(Slot::Intent, &digest('3'));
        assert_eq!(t.running(), digest('3'));
        assert_eq!(t.problem(), None);
    }

    #[test]
    fn an_unreachable_registry_is_retried_and_cleared_when_it_answers() {
        let t = Tracked::new(
            OciSource::parse("oci://127.0.0.1:5000/voice/intent:live").unwrap(),
            digest('1'),
            Some("connection refused".into()),
        );
        assert!(t.problem().unwrap().contains("connection refused"));
        t.retried(Slot::Intent, "timed out".into());
        assert!(t.problem().unwrap().contains("timed out"));
        // A failed pull of a new version is retried at the next poll.
        t.retried(Slot::Intent, "digest mismatch".into());
        assert!(t.wants(&digest('2')));
        assert!(!t.wants(&digest('1')));
        assert_eq!(t.problem(), None);
    }
}
