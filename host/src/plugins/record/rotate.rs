//! The recording file, bounded in size: `plugin-calls.jsonl` in the recording directory, moved
//! to `plugin-calls.jsonl.1` (and older ones one number up, the oldest deleted) when the next
//! line would take it past the size limit. A restarted host appends to the current file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::writer::LineSink;

/// Name of the current recording file in the recording directory.
pub const FILE_NAME: &str = "plugin-calls.jsonl";

/// The current recording file and its rotation.
pub(crate) struct RotatingFile {
    dir: PathBuf,
    /// Size past which the file is rotated, in bytes.
    max_bytes: u64,
    /// Rotated files kept.
    keep: u32,
    file: BufWriter<File>,
    /// Bytes in the current file, including those still buffered.
    size: u64,
}

impl RotatingFile {
    /// Opens (creating the directory and the file if needed) the recording in `dir`.
    pub fn open(dir: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join(FILE_NAME);
        let file = open_append(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
        })?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1),
            keep,
            file: BufWriter::new(file),
            size,
        })
    }

    /// The current file (`n == 0`) or the `n`th rotated one.
    fn path(&self, n: u32) -> PathBuf {
        match n {
            0 => self.dir.join(FILE_NAME),
            n => self.dir.join(format!("{FILE_NAME}.{n}")),
        }
    }

    /// Moves every file one number up (dropping the oldest) and starts an empty current file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            remove_if_present(&self.path(0))?;
        } else {
            remove_if_present(&self.path(self.keep))?;
            for n in (0..self.keep).rev() {
                match std::fs::rename(self.path(n), self.path(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        self.file = BufWriter::new(open_append(&self.path(0))?);
        self.size = 0;
        Ok(())
    }
}

impl LineSink for RotatingFile {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        // A line longer than the limit still goes whole into a file of its own.
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        self.size += len;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens `path` for appending; a new file is readable by its owner only (it holds transcripts).
fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("voice-record-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn files_rotate_at_the_limit_and_only_the_newest_are_kept() {
        let dir = scratch("rotate");
        // Lines of 9 bytes with their newline: three fit in 30 bytes, a fourth does not.
        let mut file = RotatingFile::open(&dir, 30, 2).unwrap();
        for i in 0..20 {
            file.write_line(format!("line {i:03}").as_bytes()).unwrap();
        }
        file.flush().unwrap();
        let current = dir.join(FILE_NAME);
        assert_eq!(lines(&current), ["line 018", "line 019"]);
        assert_eq!(
            lines(&dir.join(format!("{FILE_NAME}.1"))),
            ["line 015", "line 016", "line 017"]
        );
        assert_eq!(
            lines(&dir.join(format!("{FILE_NAME}.2"))),
            ["line 012", "line 013", "line 014"]
        );
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(files, 3, "the current file and two rotated ones");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let len = entry.unwrap().metadata().unwrap().len();
            assert!(len <= 30, "a file grew past the limit: {len}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&current).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_restart_appends_and_no_rotated_files_means_starting_over() {
        let dir = scratch("append");
        let mut file = RotatingFile::open(&dir, 20, 0).unwrap();
        file.write_line(b"first").unwrap();
        file.flush().unwrap();
        drop(file);
        let mut file = RotatingFile::open(&dir, 20, 0).unwrap();
        file.write_line(b"second").unwrap();
        file.flush().unwrap();
        assert_eq!(lines(&dir.join(FILE_NAME)), ["first", "second"]);
        file.write_line(b"third one").unwrap();
        file.flush().unwrap();
        assert_eq!(lines(&dir.join(FILE_NAME)), ["third one"]);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
