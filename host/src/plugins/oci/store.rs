//! Pulled components on disk: each under the digest of its bytes (verified again whenever it is
//! read back), plus, per reference, the version it last resolved to, so that a host restarting
//! while its registry is unreachable still starts with what it ran.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::reference::OciSource;

/// `sha256:<hex>` of `bytes`, as OCI writes digests.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", super::super::cache::content_hash(bytes))
}

/// A component pulled from a registry and stored on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulled {
    /// Digest of the manifest: the version a reference names.
    pub digest: String,
    /// Digest of the component's bytes.
    pub layer: String,
    /// The plug-in's name (the file stem of `file`).
    pub name: String,
    /// The stored component.
    pub file: PathBuf,
}

/// The directory of pulled components.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn blob_path(&self, layer: &str, name: &str) -> PathBuf {
        let hex = layer.strip_prefix("sha256:").unwrap_or(layer);
        self.dir
            .join("blobs")
            .join(hex)
            .join(format!("{name}.wasm"))
    }

    fn ref_path(&self, source: &OciSource) -> PathBuf {
        let key = super::super::cache::content_hash(source.text.as_bytes());
        self.dir.join("refs").join(format!("{}.json", &key[..32]))
    }

    /// The stored component with digest `layer`, when its bytes still match.
    pub fn component(&self, layer: &str, name: &str) -> Option<PathBuf> {
        let path = self.blob_path(layer, name);
        let bytes = fs::read(&path).ok()?;
        (digest_of(&bytes) == layer).then_some(path)
    }

    /// Stores `bytes` (already verified against `layer`) and returns the file.
    pub fn put(&self, layer: &str, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.blob_path(layer, name);
        write_atomically(&path, bytes)?;
        Ok(path)
    }

    /// Remembers what `source` resolved to.
    pub fn remember(&self, source: &OciSource, pulled: &Pulled) {
        let json = serde_json::to_vec(&(&source.text, pulled)).expect("serialisable");
        if let Err(e) = write_atomically(&self.ref_path(source), &json) {
            tracing::warn!(source = %source, error = %e, "cannot record the pulled version on disk");
        }
    }

    /// Removes the stored components that no reference last resolved to, that hold none of the
    /// files in `keep` (the versions loaded now) and that were stored more than `age` ago: a
    /// tag moved every day would otherwise leave a component on disk per move. Returns how
    /// many were removed.
    pub fn prune(&self, keep: &[PathBuf], age: Duration) -> usize {
        let remembered: HashSet<PathBuf> = fs::read_dir(self.dir.join("refs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| fs::read(entry.path()).ok())
            .filter_map(|bytes| serde_json::from_slice::<(String, Pulled)>(&bytes).ok())
            .filter_map(|(_, pulled)| {
                self.blob_path(&pulled.layer, &pulled.name)
                    .parent()
                    .map(Path::to_path_buf)
            })
            .collect();
        let mut removed = 0;
        for entry in fs::read_dir(self.dir.join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = entry.path();
            if remembered.contains(&dir) || keep.iter().any(|k| k.starts_with(&dir)) {
                continue;
            }
            let stored_long_ago = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age);
            if stored_long_ago && fs::remove_dir_all(&dir).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// What `source` last resolved to, when that component is still stored intact.
    pub fn last_known(&self, source: &OciSource) -> Option<Pulled> {
        let bytes = fs::read(self.ref_path(source)).ok()?;
        let (text, pulled): (String, Pulled) = serde_json::from_slice(&bytes).ok()?;
        if text != source.text {
            return None;
        }
        let file = self.component(&pulled.layer, &pulled.name)?;
        Some(Pulled { file, ..pulled })
    }
}

/// Writes to a temporary name in the same directory and renames it: a reader (another replica
/// sharing the directory, or this one after a crash) sees the whole file or none.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("stored files live in a directory");
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("blob"),
        std::process::id()
    ));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("voice-host-oci-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_stored_component_is_found_only_while_its_bytes_match() {
        let store = Store::new(temp("blob"));
        let bytes = b"\0asm pretend component";
        let layer = digest_of(bytes);
        assert!(store.component(&layer, "intent").is_none());
        let file = store.put(&layer, "intent", bytes).unwrap();
        assert_eq!(file.file_stem().unwrap(), "intent");
        assert_eq!(store.component(&layer, "intent"), Some(file.clone()));
        fs::write(&file, b"\0asm tampered component").unwrap();
        assert_eq!(store.component(&layer, "intent"), None);
    }

    #[test]
    fn pruning_keeps_what_is_loaded_what_references_name_and_what_is_recent() {
        let store = Store::new(temp("prune"));
        let put = |bytes: &[u8]| {
            let layer = digest_of(bytes);
            let file = store.put(&layer, "intent", bytes).unwrap();
            (layer, file)
        };
        let (remembered_layer, remembered) = put(b"the version a tag names");
        let (_, loaded) = put(b"a version a canary runs");
        let (_, stale) = put(b"a version rolled past");
        let source = OciSource::parse("oci://127.0.0.1:5000/voice/intent:live").unwrap();
        store.remember(
            &source,
            &Pulled {
                digest: format!("sha256:{}", "1".repeat(64)),
                layer: remembered_layer,
                name: "intent".into(),
                file: remembered.clone(),
            },
        );
        // Recent: nothing goes.
        assert_eq!(
            store.prune(std::slice::from_ref(&loaded), Duration::from_secs(3600)),
            0
        );
        assert!(stale.exists());
        // Old enough: only the version nothing uses goes.
        assert_eq!(
            store.prune(std::slice::from_ref(&loaded), Duration::ZERO),
            1
        );
        assert!(!stale.exists());
        assert!(loaded.exists() && remembered.exists());
    }

    #[test]
    fn the_last_version_of_a_reference_is_remembered() {
        let store = Store::new(temp("refs"));
        let source = OciSource::parse("oci://127.0.0.1:5000/voice/intent:live").unwrap();
        let other = OciSource::parse("oci://127.0.0.1:5000/voice/intent:next").unwrap();
        let bytes = b"component v1";
        let layer = digest_of(bytes);
        let file = store.put(&layer, "intent", bytes).unwrap();
        let pulled = Pulled {
            digest: format!("sha256:{}", "1".repeat(64)),
            layer: layer.clone(),
            name: "intent".into(),
            file,
        };
        assert!(store.last_known(&source).is_none());
        store.remember(&source, &pulled);
        assert_eq!(store.last_known(&source), Some(pulled.clone()));
        assert!(store.last_known(&other).is_none());
        // A remembered version whose component was lost is not offered.
        fs::remove_file(&pulled.file).unwrap();
        assert!(store.last_known(&source).is_none());
    }
}
