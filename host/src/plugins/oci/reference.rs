//! `oci://REGISTRY/REPOSITORY:TAG` and `oci://REGISTRY/REPOSITORY@sha256:DIGEST`: where a slot's
//! component comes from when it is not a file.

use std::fmt;
use std::path::Path;

use oci_client::Reference;

/// The scheme that marks a slot's source as an OCI artifact.
pub const SCHEME: &str = "oci://";

/// A component published in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSource {
    /// As configured, e.g. `oci://ghcr.io/acme/barge-in:stable`.
    pub text: String,
    pub(crate) reference: Reference,
}

impl OciSource {
    /// Parses `oci://REGISTRY/REPOSITORY(:TAG|@sha256:DIGEST)`. The registry must be named (no
    /// implicit Docker Hub) and a tag or digest given (no implicit `latest`): a slot's source
    /// should say exactly what it runs.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| format!("{text:?} does not start with {SCHEME}"))?;
        let malformed = |why: &str| format!("malformed OCI reference {text:?}: {why}");
        let (name, _) = rest.split_once('@').unwrap_or((rest, ""));
        let Some((registry, repository)) = name.split_once('/') else {
            return Err(malformed("expected oci://REGISTRY/REPOSITORY:TAG"));
        };
        // Docker's rule: the first component is a registry when it has a dot, a port or is
        // localhost. Anything else would silently mean Docker Hub.
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(malformed(
                "name the registry (a host with a dot or a port, or localhost)",
            ));
        }
        let after_repo = repository.rsplit('/').next().unwrap_or(repository);
        if !rest.contains('@') && !after_repo.contains(':') {
            return Err(malformed("give a tag (:TAG) or a digest (@sha256:...)"));
        }
        let reference: Reference = rest.parse().map_err(|e| malformed(&format!("{e}")))?;
        if let Some(digest) = reference.digest() {
            let hex = digest.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed("the digest must be sha256: and 64 hex digits"));
            }
        }
        Ok(Self {
            text: text.to_string(),
            reference,
        })
    }

    /// `Some` when `path` is an `oci://` reference (well formed or not).
    pub fn from_path(path: &Path) -> Option<Result<Self, String>> {
        let text = path.to_str()?;
        text.starts_with(SCHEME).then(|| Self::parse(text))
    }

    /// Pinned to a digest: never moves, never polled.
    pub fn is_pinned(&self) -> bool {
        self.reference.digest().is_some()
    }

    /// The same repository at `digest` (what a tag resolved to), so that a pull reads one
    /// version even if the tag moves meanwhile.
    pub(crate) fn at(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    /// `host:port` of the registry.
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// Last segment of the repository, a readable name for a component that names none.
    pub(crate) fn short_name(&self) -> &str {
        let repo = self.reference.repository();
        repo.rsplit('/').next().unwrap_or(repo)
    }
}

impl fmt::Display for OciSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests_parse() {
        let s = OciSource::parse("oci://127.0.0.1:5000/voice/intent:live").unwrap();
        assert_eq!(s.registry(), "127.0.0.1:5000");
        assert_eq!(s.reference.repository(), "voice/intent");
        assert_eq!(s.reference.tag(), Some("live"));
        assert!(!s.is_pinned());
        assert_eq!(s.short_name(), "intent");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let p = OciSource::parse(&format!("oci://ghcr.io/acme/barge-in@{digest}")).unwrap();
        assert!(p.is_pinned());
        assert_eq!(p.reference.digest(), Some(digest.as_str()));
        assert_eq!(
            s.at(&digest).whole(),
            format!("127.0.0.1:5000/voice/intent@{digest}")
        );
    }

    #[test]
    fn vague_or_broken_references_are_refused_with_a_reason() {
        for (text, why) in [
            ("oci://acme/intent:live", "name the registry"),
            ("oci://ghcr.io/acme/intent", "give a tag"),
            ("oci://localhost:5000/intent", "give a tag"),
            ("oci://ghcr.io", "expected oci://REGISTRY/REPOSITORY:TAG"),
            (
                "oci://ghcr.io/acme/intent@sha256:abc",
                "malformed OCI reference",
            ),
            ("oci://ghcr.io/Acme/intent:live", "malformed OCI reference"),
            (
                "http://ghcr.io/acme/intent:live",
                "does not start with oci://",
            ),
        ] {
            let err = OciSource::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
        // A well-formed digest of another algorithm: the host verifies sha256 only.
        let sha512 = format!("oci://ghcr.io/acme/intent@sha512:{}", "ab".repeat(64));
        let err = OciSource::parse(&sha512).unwrap_err();
        assert!(err.contains("must be sha256"), "{err}");
        assert!(OciSource::from_path(Path::new("plugins/intent.wasm")).is_none());
        assert!(OciSource::from_path(Path::new("oci://x")).unwrap().is_err());
    }
}
