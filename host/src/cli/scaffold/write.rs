//! Putting a rendered project on disk: all of it or nothing.
//!
//! The project directory is created with `create_dir`, which fails when anything exists at that
//! path, so an existing project (or file) is never written into, even by a command racing this
//! one. If a later write fails, the directory this command created is removed again, so a
//! retry does not meet a half-written project.

use std::io::Write;
use std::path::Path;

use super::project::ProjectFile;

/// Writes `files` under the new directory `dir`; `Err` is the reason as one line.
pub fn write_project(dir: &Path, files: &[ProjectFile]) -> Result<(), String> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!("{} already exists", dir.display()));
        }
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let written = files.iter().try_for_each(|f| write_file(dir, f));
    if written.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    written
}

fn write_file(dir: &Path, file: &ProjectFile) -> Result<(), String> {
    let path = dir.join(file.path);
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // rwxr-xr-x for scripts, rw-r--r-- otherwise (before the umask), as `cargo new` does.
        options.mode(if file.executable { 0o755 } else { 0o644 });
    }
    let mut out = options.open(&path).map_err(fail)?;
    out.write_all(file.contents.as_bytes()).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("voice-scaffold-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn file(path: &'static str, executable: bool) -> ProjectFile {
        ProjectFile {
            path,
            contents: format!("{path}\n"),
            executable,
        }
    }

    #[test]
    fn files_are_written_and_an_existing_directory_refused() {
        let parent = scratch("write");
        let dir = parent.join("proj");
        write_project(&dir, &[file("a/b.txt", false), file("run.sh", true)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a/b.txt")).unwrap(),
            "a/b.txt\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("run.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_ne!(mode & 0o100, 0, "{mode:o}");
        }
        let reason = write_project(&dir, &[file("c.txt", false)]).unwrap_err();
        assert!(reason.ends_with("already exists"), "{reason}");
        assert!(!dir.join("c.txt").exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let parent = scratch("partial");
        let dir = parent.join("proj");
        // The second file's path is taken by the first, a file, so it cannot be created.
        let reason = write_project(&dir, &[file("x", false), file("x/y", false)]).unwrap_err();
        assert!(reason.starts_with("cannot write"), "{reason}");
        assert!(!dir.exists());
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
