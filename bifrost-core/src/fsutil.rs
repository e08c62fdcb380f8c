//! The one seam for file-system writes that must never be half done.

use camino::Utf8Path;
use std::io::Write;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(path: &'a Utf8Path, op: &'static str) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError::Io {
        path: path.to_string(),
        op,
        source,
    }
}

/// Write `contents` to `path` atomically: a temp file in the same folder,
/// fsync, rename over the target, fsync the folder. Readers see the old file
/// or the new one, never a mix, even after a crash.
pub fn write_atomic(path: &Utf8Path, contents: &[u8]) -> Result<(), FsError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_str().is_empty())
        .unwrap_or(Utf8Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".bifrost-tmp-")
        .tempfile_in(dir)
        .map_err(io(path, "create temp file"))?;
    tmp.write_all(contents).map_err(io(path, "write"))?;
    tmp.as_file().sync_all().map_err(io(path, "fsync"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io(path, "rename"))?;
    sync_dir(dir)
}

/// fsync a folder so a rename inside it is durable.
pub fn sync_dir(dir: &Utf8Path) -> Result<(), FsError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir, "fsync folder"))
}
