//! Talking to a registry: what a tag points at now, pulling one version, publishing one.
//!
//! Every operation runs on a thread of its own with a small runtime of its own, so callers need
//! not be async (plug-ins load at startup, on the watcher thread and from admin requests) and a
//! slow registry never holds one of the server's async workers. Operations are rare (startup,
//! one manifest request per tag per poll), so a client per operation costs nothing that matters.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciImageManifest, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::io::AsyncWrite;

use super::artifact::{self, Publication, MAX_COMPONENT_BYTES};
use super::reference::OciSource;
use super::store::{Pulled, Store};

/// How long a pulled component no reference names and no slot runs stays on disk (a rollback
/// within a day finds it there).
const PRUNE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How the host reaches registries (`PLUGIN_OCI_*`, `PLUGIN_POLL_S`).
#[derive(Clone, PartialEq)]
pub struct OciSettings {
    /// Registries (`host:port`) reached over plain HTTP (`PLUGIN_OCI_INSECURE`); every other
    /// registry over HTTPS.
    pub insecure: Vec<String>,
    /// Basic credentials (`PLUGIN_OCI_USERNAME`, `PLUGIN_OCI_PASSWORD`); anonymous when unset.
    pub username: Option<String>,
    pub password: Option<String>,
    /// How often a tag is checked for a new version (`PLUGIN_POLL_S`).
    pub poll: Duration,
    /// Bound of one registry operation (a pull of tens of MiB included).
    pub timeout: Duration,
}

impl Default for OciSettings {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            username: None,
            password: None,
            poll: Duration::from_secs(30),
            timeout: Duration::from_secs(120),
        }
    }
}

// The password never reaches a log line through `{:?}` of the settings.
impl std::fmt::Debug for OciSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciSettings")
            .field("insecure", &self.insecure)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("poll", &self.poll)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Pulls components into a [`Store`] and publishes them.
#[derive(Debug, Clone)]
pub(crate) struct Registries {
    settings: OciSettings,
    store: Store,
}

impl Registries {
    pub fn new(settings: OciSettings, store_dir: PathBuf) -> Self {
        Self {
            settings,
            store: Store::new(store_dir),
        }
    }

    fn client(&self) -> Client {
        Client::new(ClientConfig {
            protocol: match self.settings.insecure.as_slice() {
                [] => ClientProtocol::Https,
                hosts => ClientProtocol::HttpsExcept(hosts.to_vec()),
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(30)),
            ..ClientConfig::default()
        })
    }

    fn auth(&self) -> RegistryAuth {
        match (&self.settings.username, &self.settings.password) {
            (Some(user), Some(password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            _ => RegistryAuth::Anonymous,
        }
    }

    /// The manifest digest `source` names now (a tag's current version; a digest itself).
    pub fn resolve(&self, source: &OciSource) -> Result<String, String> {
        if let Some(digest) = source.reference.digest() {
            return Ok(digest.to_string());
        }
        self.run(move || async move {
            self.client()
                .fetch_manifest_digest(&source.reference, &self.auth())
                .await
                .map_err(|e| registry_error(&e))
        })
    }

    /// Pulls the version of `source` at manifest `digest` (see [`Registries::resolve`]) into
    /// the store, verifying the manifest and the component against their digests, and
    /// remembers it as what `source` resolves to.
    pub fn pull(&self, source: &OciSource, digest: &str) -> Result<Pulled, String> {
        let reference = source.at(digest);
        let pulled = self.run(|| self.pull_at(&reference, source.short_name()))?;
        self.store.remember(source, &pulled);
        Ok(pulled)
    }

    /// [`Registries::resolve`] then [`Registries::pull`].
    pub fn fetch(&self, source: &OciSource) -> Result<Pulled, String> {
        let digest = self.resolve(source)?;
        self.pull(source, &digest)
    }

    /// Removes stored components nothing uses (see [`Store::prune`]).
    pub fn prune(&self, keep: &[PathBuf]) {
        let removed = self.store.prune(keep, PRUNE_AFTER);
        if removed > 0 {
            tracing::info!(
                removed,
                "removed plug-in components pulled before and no longer used"
            );
        }
    }

    /// What `source` resolved to when last pulled, if its component is still stored intact.
    pub fn last_known(&self, source: &OciSource) -> Option<Pulled> {
        self.store.last_known(source)
    }

    async fn pull_at(&self, reference: &Reference, fallback_name: &str) -> Result<Pulled, String> {
        let client = self.client();
        // Checks the manifest's bytes against the digest it was asked for.
        let (raw, digest) = client
            .pull_manifest_raw(
                reference,
                &self.auth(),
                &[OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE],
            )
            .await
            .map_err(|e| registry_error(&e))?;
        let manifest: OciImageManifest = serde_json::from_slice(&raw)
            .map_err(|e| format!("not an image manifest (an index or another artifact?): {e}"))?;
        let layer = artifact::component_layer(&manifest)?;
        let name = artifact::component_name(&manifest, layer, fallback_name);
        if let Some(file) = self.store.component(&layer.digest, &name) {
            return Ok(Pulled {
                digest,
                layer: layer.digest.clone(),
                name,
                file,
            });
        }
        let mut sink = Bounded::new(layer.size as u64);
        // Checks the bytes against the layer's digest (a mismatch reads as a corrupt artifact,
        // see `registry_error`).
        client
            .pull_blob(reference, layer, &mut sink)
            .await
            .map_err(|e| registry_error(&e))?;
        let file = self
            .store
            .put(&layer.digest, &name, &sink.bytes)
            .map_err(|e| format!("cannot store the component: {e}"))?;
        Ok(Pulled {
            digest,
            layer: layer.digest.clone(),
            name,
            file,
        })
    }

    /// Publishes `publication` as `target`; returns the manifest digest.
    pub fn push(&self, target: &OciSource, publication: Publication<'_>) -> Result<String, String> {
        let (layer, config, manifest) = artifact::build(publication);
        self.run(move || async move {
            let client = self.client();
            client
                .push(
                    &target.reference,
                    std::slice::from_ref(&layer),
                    config,
                    &self.auth(),
                    Some(manifest),
                )
                .await
                .map_err(|e| registry_error(&e))?;
            client
                .fetch_manifest_digest(&target.reference, &self.auth())
                .await
                .map_err(|e| registry_error(&e))
        })
    }

    /// Runs an operation on a thread and runtime of its own, bounded by the settings' timeout.
    fn run<'a, T, F, Fut>(&'a self, op: F) -> Result<T, String>
    where
        T: Send,
        F: FnOnce() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, String>>,
    {
        let timeout = self.settings.timeout;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot start the registry client: {e}"))?;
                    rt.block_on(async {
                        tokio::time::timeout(timeout, op())
                            .await
                            .unwrap_or_else(|_| {
                                Err(format!("the registry did not answer within {timeout:?}"))
                            })
                    })
                })
                .join()
                .unwrap_or_else(|_| Err("the registry client panicked".to_string()))
        })
    }
}

/// One line for a registry error (the client's messages may span lines).
fn registry_error(e: &oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::{DigestError, OciDistributionError};
    if let OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) =
        e
    {
        return format!(
            "the bytes the registry sent do not match their digest (expected {expected}, got \
             {actual}): a corrupt or tampered artifact"
        );
    }
    let text = e.to_string();
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// A byte sink that refuses more than the descriptor announced: a registry cannot make the host
/// buffer more than the size it declared (itself bounded by [`MAX_COMPONENT_BYTES`]).
struct Bounded {
    bytes: Vec<u8>,
    limit: u64,
}

impl Bounded {
    fn new(limit: u64) -> Self {
        let limit = limit.min(MAX_COMPONENT_BYTES);
        Self {
            bytes: Vec::with_capacity(limit as usize),
            limit,
        }
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes.len() as u64 + buf.len() as u64 > this.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than the {} bytes the manifest announced",
                this.limit
            ))));
        }
        this.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let s = OciSettings {
            username: Some("ci".into()),
            password: Some("hunter2-registry-secret".into()),
            ..OciSettings::default()
        };
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn a_registry_cannot_send_more_than_it_announced() {
        let mut sink = Bounded::new(4);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(
            Pin::new(&mut sink).poll_write(&mut cx, b"abc"),
            Poll::Ready(Ok(3))
        ));
        assert!(matches!(
            Pin::new(&mut sink).poll_write(&mut cx, b"de"),
            Poll::Ready(Err(_))
        ));
        assert_eq!(sink.bytes, b"abc");
    }

    #[test]
    fn an_unreachable_registry_is_a_one_line_error_not_a_hang() {
        // Nothing listens on port 9 of loopback (discard); plain HTTP so no TLS is involved.
        let registries = Registries::new(
            OciSettings {
                insecure: vec!["127.0.0.1:9".into()],
                timeout: Duration::from_secs(20),
                ..OciSettings::default()
            },
            std::env::temp_dir().join("voice-host-oci-unreachable"),
        );
        let source = OciSource::parse("oci://127.0.0.1:9/voice/intent:live").unwrap();
        let err = registries.fetch(&source).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(registries.last_known(&source).is_none());
    }
}
