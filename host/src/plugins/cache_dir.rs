//! The compiled-plug-in cache holds native code the host maps and runs, so its directory must be
//! writable by the service user only, and each artifact is authenticated with a MAC under a
//! per-host key kept in that directory (readable by the service user only). A directory that
//! fails these checks is not used: plug-ins are compiled at every start instead.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;

/// Name of the key file inside the cache directory.
pub(crate) const KEY_FILE: &str = "cache.key";
/// Bytes of the key and of each MAC (HMAC-SHA256).
pub(crate) const KEY_LEN: usize = 32;
pub(crate) const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A cache directory that passed the checks, and its key.
pub(crate) struct TrustedDir {
    pub path: PathBuf,
    key: [u8; KEY_LEN],
}

impl TrustedDir {
    /// Creates `dir` (mode 0700) if missing, checks its owner and mode, and reads or creates the
    /// key. The error is a one-line reason.
    pub fn open(dir: &Path) -> Result<Self, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create it: {e}"))?;
        check_private(dir, 0o022, "a directory")?;
        let key = load_or_create_key(&dir.join(KEY_FILE))?;
        Ok(Self {
            path: dir.to_path_buf(),
            key,
        })
    }

    /// MAC of the artifact stored under file name `name`: binding the name stops a valid
    /// artifact from being passed off as another component's.
    pub fn mac(&self, name: &str, artifact: &[u8]) -> [u8; MAC_LEN] {
        self.hmac(name, artifact).finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `artifact` under `name` (compared in constant time).
    pub fn verify(&self, name: &str, artifact: &[u8], tag: &[u8]) -> bool {
        self.hmac(name, artifact).verify_slice(tag).is_ok()
    }

    fn hmac(&self, name: &str, artifact: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(artifact);
        mac
    }
}

/// Refuses `path` unless this process's user owns it and none of the `forbidden` mode bits are
/// set.
fn check_private(path: &Path, forbidden: u32, what: &str) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {what}'s metadata: {e}"))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not by this process's user (uid {me})",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(format!(
            "{} has mode {mode:03o}; other users must not be able to {}",
            path.display(),
            if forbidden == 0o022 {
                "write it"
            } else {
                "read or write it"
            }
        ));
    }
    Ok(())
}

fn load_or_create_key(path: &Path) -> Result<[u8; KEY_LEN], String> {
    if !path.exists() {
        create_key(path)?;
    }
    check_private(path, 0o077, "the key file")?;
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    bytes
        .try_into()
        .map_err(|_| format!("{} is not a {KEY_LEN}-byte key", path.display()))
}

/// Writes a fresh random key next to `path` and links it into place, so a concurrent start
/// never sees a half-written key (the loser of a race reads the winner's).
fn create_key(path: &Path) -> Result<(), String> {
    let mut key = [0u8; KEY_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut key)
        .map_err(|e| format!("no randomness for the cache key: {e}"))?;
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&key).and_then(|_| f.sync_all()));
    let linked = written.and_then(|_| match fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = fs::remove_file(&tmp);
    linked.map_err(|e| format!("cannot create {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("voice-host-cache-dir-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn creates_a_private_directory_and_key() {
        let dir = temp("fresh").join("nested");
        let trusted = TrustedDir::open(&dir).expect("a fresh directory is trusted");
        let dir_mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let key_mode = fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(key_mode, 0o600);
        let again = TrustedDir::open(&dir).expect("reopened");
        assert_eq!(trusted.key, again.key, "the key persists");
        let tag = trusted.mac("a", b"code");
        assert!(again.verify("a", b"code", &tag));
        assert!(!again.verify("b", b"code", &tag), "bound to the name");
        assert!(!again.verify("a", b"codf", &tag));
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn world_writable_directory_is_refused() {
        let dir = temp("open");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = TrustedDir::open(&dir).err().expect("refused");
        assert!(err.contains("mode 777"), "{err}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(
            TrustedDir::open(&dir).is_err(),
            "group-writable is refused too"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn readable_key_is_refused() {
        let dir = temp("key");
        TrustedDir::open(&dir).unwrap();
        fs::set_permissions(dir.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        let err = TrustedDir::open(&dir).err().expect("refused");
        assert!(err.contains("read or write"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
