//! A throwaway OCI registry on loopback for tests of plug-ins pulled by reference: the CNCF
//! distribution registry (`docker-registry`, Debian package `docker-registry`) serving plain
//! HTTP on a free port, its storage in a temporary directory, killed and removed when dropped.
//!
//! Its storage is a plain directory tree, so a test can damage a stored blob
//! ([`OciRegistry::corrupt_blob`]) the way a faulty disk or a tampering mirror would: the
//! registry then serves the damaged bytes under the blob's original digest.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The media type of the manifests the host's `plugins push` writes.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A running registry.
pub struct OciRegistry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`: the registry's host part in references and in `PLUGIN_OCI_INSECURE`.
    pub addr: String,
}

impl OciRegistry {
    /// Starts one, or `None` (after [`crate::prerequisite::missing`]) when `docker-registry` is
    /// not installed.
    pub async fn start() -> Option<Self> {
        Self::start_with(None).await
    }

    /// Like [`OciRegistry::start`], answering only `user` with the password whose bcrypt hash
    /// is `bcrypt` (HTTP basic authentication, as a private registry does). The methods of this
    /// type that read the registry do not log in: use them with [`OciRegistry::start`] only.
    pub async fn start_with_login(user: &str, bcrypt: &str) -> Option<Self> {
        Self::start_with(Some((user, bcrypt))).await
    }

    async fn start_with(login: Option<(&str, &str)>) -> Option<Self> {
        if Command::new("docker-registry")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            crate::prerequisite::missing(
                "oci registry",
                "docker-registry is not installed (Debian: apt-get install docker-registry)",
            );
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "voice-oci-registry-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("storage")).expect("registry temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        let auth = match login {
            None => String::new(),
            Some((user, bcrypt)) => {
                let htpasswd = dir.join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{bcrypt}\n")).expect("htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    htpasswd.display()
                )
            }
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 {auth}\
                 http:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )
        .expect("write the registry configuration");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Self { child, dir, addr };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let answered = client
                .get(format!("http://{}/v2/", registry.addr))
                .send()
                .await
                .map(|r| r.status().as_u16());
            // 401: up, and asking for the login.
            if answered.as_ref().is_ok_and(|s| *s == 200 || *s == 401) {
                return Some(registry);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "docker-registry did not answer on {}: {}",
            registry.addr,
            std::fs::read_to_string(registry.dir.join("registry.log")).unwrap_or_default()
        );
    }

    /// `oci://127.0.0.1:PORT/<repo_and_tag>`, e.g. `reference("voice/intent:live")`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("oci://{}/{repo_and_tag}", self.addr)
    }

    /// Where the registry keeps the bytes of blob `digest` (`sha256:<hex>`).
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Overwrites the stored bytes of blob `digest` with different bytes of the same length
    /// (every byte inverted). The registry keeps serving them under `digest`, and pushing the
    /// good bytes again does not repair them (an existing blob is never rewritten).
    pub fn corrupt_blob(&self, digest: &str) {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let corrupt: Vec<u8> = bytes.iter().map(|b| !b).collect();
        std::fs::write(&path, &corrupt).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        assert_ne!(sha256_digest(&corrupt), digest, "the bytes changed");
    }

    /// The bytes the registry serves for blob `digest` of `repo` (`GET /v2/<repo>/blobs/<digest>`).
    pub async fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let resp = reqwest::get(format!("http://{}/v2/{repo}/blobs/{digest}", self.addr))
            .await
            .expect("blob request");
        assert_eq!(resp.status().as_u16(), 200, "GET blob {digest} of {repo}");
        resp.bytes().await.expect("blob body").to_vec()
    }

    /// `METHOD /v2/<repo>/manifests/<tag>` accepting OCI manifests (the registry answers 404 to
    /// a request that does not).
    async fn manifest_request(
        &self,
        method: reqwest::Method,
        repo: &str,
        tag: &str,
    ) -> reqwest::Response {
        reqwest::Client::new()
            .request(
                method,
                format!("http://{}/v2/{repo}/manifests/{tag}", self.addr),
            )
            .header(reqwest::header::ACCEPT, OCI_MANIFEST)
            .send()
            .await
            .expect("manifest request")
    }

    /// The manifest of `repo:tag`, or `None` when the registry has no such tag.
    pub async fn manifest(&self, repo: &str, tag: &str) -> Option<serde_json::Value> {
        let resp = self.manifest_request(reqwest::Method::GET, repo, tag).await;
        match resp.status().as_u16() {
            200 => Some(resp.json().await.expect("a JSON manifest")),
            404 => None,
            other => panic!("GET manifest {repo}:{tag}: status {other}"),
        }
    }

    /// The digest (`sha256:<hex>`) of the manifest `repo:tag` points at, as the registry
    /// reports it (`Docker-Content-Digest`).
    pub async fn manifest_digest(&self, repo: &str, tag: &str) -> String {
        let resp = self
            .manifest_request(reqwest::Method::HEAD, repo, tag)
            .await;
        assert_eq!(resp.status().as_u16(), 200, "HEAD manifest {repo}:{tag}");
        resp.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .expect("Docker-Content-Digest")
            .to_string()
    }

    /// `layers[0].digest` of the manifest of `repo:tag` (the component's blob).
    pub async fn manifest_layer_digest(&self, repo: &str, tag: &str) -> String {
        let manifest = self
            .manifest(repo, tag)
            .await
            .unwrap_or_else(|| panic!("no manifest {repo}:{tag}"));
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("no layer in {manifest}"))
            .to_string()
    }

    /// The registry's own temporary directory (removed when it is dropped).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
