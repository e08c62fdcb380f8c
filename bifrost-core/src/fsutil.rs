//! The one seam for file-system writes that must never be half done.

use camino::{Utf8Path, Utf8PathBuf};
use std::io::Write;

/// A file-system (or device) operation that failed: the one I/O error every
/// module's error enum carries (`#[error(transparent)] Io(#[from] IoError)`),
/// so the wording "PATH: OP: CAUSE" is written once.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {op}: {source}")]
pub struct IoError {
    pub path: Utf8PathBuf,
    /// What was being done, as a verb phrase ("read", "create folder").
    pub op: &'static str,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub fn new(path: impl Into<Utf8PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        IoError {
            path: path.into(),
            op,
            source,
        }
    }
}

/// The one way to build an [`IoError`]: `std::fs::read(p).map_err(io_err(p, "read"))?`.
pub fn io_err(
    path: impl AsRef<Utf8Path>,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.as_ref().to_owned();
    move |source| IoError { path, op, source }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0:?} is not a file to write: {1}")]
    NotAFile(String, &'static str),
}

/// Refuse a target that cannot be a file before anything is created.
fn check_target(path: &Utf8Path) -> Result<(), FsError> {
    let not = |why| Err(FsError::NotAFile(path.to_string(), why));
    if path.as_str().is_empty() {
        return not("the path is empty; give the file's name");
    }
    if path.file_name().is_none() || path.as_str().ends_with('/') {
        return not("it names a folder; give the file's name inside it");
    }
    if path.is_dir() {
        return not("it is a folder; give the file's name inside it");
    }
    Ok(())
}

/// A temp file in `path`'s folder (so the final rename stays on one file
/// system), readable by all as an ordinary file would be (mode 0644 less the
/// umask, where tempfile's default is 0600), and that folder.
fn temp_beside(path: &Utf8Path) -> Result<(tempfile::NamedTempFile, &Utf8Path), FsError> {
    temp_beside_mode(path, 0o644)
}

/// [`temp_beside`] with the temp file created with `mode` (before any byte is written).
/// Name prefix of the temp files written beside their final name: a run
/// that was killed leaves them, the next one collects them.
pub const TEMP_PREFIX: &str = ".bifrost-tmp-";

fn temp_beside_mode(
    path: &Utf8Path,
    mode: u32,
) -> Result<(tempfile::NamedTempFile, &Utf8Path), FsError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_str().is_empty())
        .unwrap_or(Utf8Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(io_err(path, "create temp file"))?;
    Ok((tmp, dir))
}

/// Write `contents` to `path` atomically: a temp file in the same folder,
/// fsync, rename over the target, fsync the folder. Readers see the old file
/// or the new one, never a mix, even after a crash.
pub fn write_atomic(path: &Utf8Path, contents: &[u8]) -> Result<(), FsError> {
    write_atomic_mode(path, contents, 0o644)
}

/// [`write_atomic`] for a file only its owner may read (`mode` 0600 for
/// secrets): the mode is set when the temp file is created, so the contents
/// are never readable by others, not even for a moment.
pub fn write_atomic_mode(path: &Utf8Path, contents: &[u8], mode: u32) -> Result<(), FsError> {
    check_target(path)?;
    let (mut tmp, dir) = temp_beside_mode(path, mode)?;
    tmp.write_all(contents).map_err(io_err(path, "write"))?;
    tmp.as_file().sync_all().map_err(io_err(path, "fsync"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io_err(path, "rename"))?;
    sync_dir(dir)
}

/// fsync a folder so a rename inside it is durable.
pub fn sync_dir(dir: &Utf8Path) -> Result<(), FsError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, "fsync folder")(e).into())
}

/// Many atomic writes whose fsyncs overlap: each file goes to a temp file in
/// its target folder and its write-back starts at once (`sync_file_range`);
/// [`AtomicBatch::commit`] then waits for every file (fsync), renames each
/// over its target and fsyncs the folders. Same guarantee per file as
/// [`write_atomic`], at close to the disk's streaming speed instead of one
/// flush round-trip per file. Dropped uncommitted, the temp files are removed.
#[derive(Default)]
pub struct AtomicBatch {
    pending: Vec<(tempfile::NamedTempFile, camino::Utf8PathBuf)>,
}

impl AtomicBatch {
    pub fn new() -> AtomicBatch {
        AtomicBatch::default()
    }

    /// Stage `contents` for `path`.
    pub fn add(&mut self, path: &Utf8Path, contents: &[u8]) -> Result<(), FsError> {
        let (mut tmp, _) = temp_beside(path)?;
        tmp.write_all(contents).map_err(io_err(path, "write"))?;
        self.kick(&tmp);
        self.pending.push((tmp, path.to_owned()));
        Ok(())
    }

    /// Stage a copy of the file `source` for `path` (in-kernel copy where
    /// the file system offers one, as `cp` does). Returns the bytes copied.
    pub fn add_copy(&mut self, path: &Utf8Path, source: &Utf8Path) -> Result<u64, FsError> {
        let mut src = std::fs::File::open(source).map_err(io_err(source, "open"))?;
        let (mut tmp, _) = temp_beside(path)?;
        let n = std::io::copy(&mut src, tmp.as_file_mut()).map_err(io_err(path, "copy"))?;
        self.kick(&tmp);
        self.pending.push((tmp, path.to_owned()));
        Ok(n)
    }

    fn kick(&self, tmp: &tempfile::NamedTempFile) {
        use std::os::fd::AsRawFd;
        // Start write-back now; failure here only loses the head start.
        // SAFETY: a valid open fd; the call only schedules I/O.
        unsafe {
            libc::sync_file_range(tmp.as_file().as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }

    /// fsync every staged file, rename each into place, fsync the folders.
    pub fn commit(self) -> Result<(), FsError> {
        for (tmp, path) in &self.pending {
            tmp.as_file().sync_all().map_err(io_err(path, "fsync"))?;
        }
        let mut dirs = std::collections::BTreeSet::new();
        for (tmp, path) in self.pending {
            tmp.persist(&path)
                .map_err(|e| e.error)
                .map_err(io_err(&path, "rename"))?;
            if let Some(d) = path.parent().filter(|p| !p.as_str().is_empty()) {
                dirs.insert(d.to_owned());
            }
        }
        for d in dirs {
            sync_dir(&d)?;
        }
        Ok(())
    }
}

/// A fresh temporary folder for a test, and its path (gone when the guard drops).
#[cfg(test)]
pub(crate) fn test_dir() -> (tempfile::TempDir, Utf8PathBuf) {
    let d = tempfile::tempdir().expect("temporary folder");
    let p = Utf8PathBuf::from_path_buf(d.path().to_path_buf()).expect("UTF-8 temporary path");
    (d, p)
}
