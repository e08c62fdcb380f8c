//! Putting an artifact into the output layout: a sparse-aware copy (a reflink
//! where the file system can share blocks) to a temp name, fsync, and a rename
//! over the old one, keeping the previous N artifacts.
//!
//! The artifact is gigabytes, so this cannot go through
//! `fsutil::write_atomic` (which takes bytes); it follows the same
//! temp + fsync + rename + fsync-folder discipline with a streaming copy.

use super::cancel;
use crate::fsutil;
use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use std::fs::File;
use std::os::fd::AsRawFd;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error(transparent)]
    Fs(#[from] fsutil::FsError),
    #[error("interrupted while copying to {0}; the temp file was removed")]
    Interrupted(Utf8PathBuf),
}

/// The folders of the seed's output layout.
pub const LAYOUT: [&str; 4] = ["0_podman", "1_oci", "2_raw", "3_deploy"];

/// Create `OUT/{0_podman,1_oci,2_raw,3_deploy}`; return `OUT/2_raw`.
pub fn ensure_layout(out: &Utf8Path) -> Result<Utf8PathBuf, PlaceError> {
    for d in LAYOUT {
        let p = out.join(d);
        std::fs::create_dir_all(&p).map_err(io_err(&p, "create folder"))?;
    }
    Ok(out.join("2_raw"))
}

/// How the bytes got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyMethod {
    /// FICLONE: the copy shares the source's blocks (btrfs, XFS).
    Reflink,
    /// Only the data extents were copied (SEEK_DATA/SEEK_HOLE + copy_file_range).
    Sparse,
}

const FICLONE: libc::c_ulong = 0x4004_9409;
/// Copy in pieces this big so an interrupt is noticed within a fraction of a second.
const CHUNK: u64 = 64 << 20;

/// Copy `src` into the open, empty file `dst` keeping holes as holes.
pub fn copy_sparse(
    src: &Utf8Path,
    dst_path: &Utf8Path,
    dst: &File,
) -> Result<CopyMethod, PlaceError> {
    let s = File::open(src).map_err(io_err(src, "open"))?;
    let len = s.metadata().map_err(io_err(src, "stat"))?.len();
    // SAFETY: both fds are open for the duration of the call.
    if unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, s.as_raw_fd()) } == 0 {
        return Ok(CopyMethod::Reflink);
    }
    let (sfd, dfd) = (s.as_raw_fd(), dst.as_raw_fd());
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        // SAFETY: lseek on an open fd.
        let data = unsafe { libc::lseek(sfd, pos, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole is left
            }
            return Err(io_err(src, "seek data")(e).into());
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(sfd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io_err(src, "seek hole")(std::io::Error::last_os_error()).into());
        }
        let mut off = data;
        while off < hole {
            if cancel::requested() {
                return Err(PlaceError::Interrupted(dst_path.to_owned()));
            }
            let n = ((hole - off) as u64).min(CHUNK) as usize;
            let (mut a, mut b) = (off, off);
            // SAFETY: offsets are passed by pointer and updated by the kernel.
            let r = unsafe { libc::copy_file_range(sfd, &mut a, dfd, &mut b, n, 0) };
            let copied = if r > 0 {
                r as usize
            } else if r == 0 {
                break;
            } else {
                copy_by_hand(&s, dst, off as u64, n).map_err(io_err(dst_path, "write"))?
            };
            off += copied as i64;
        }
        pos = hole;
    }
    dst.set_len(len).map_err(io_err(dst_path, "set length"))?;
    Ok(CopyMethod::Sparse)
}

/// Where copy_file_range is refused (old kernels, some file systems).
fn copy_by_hand(s: &File, d: &File, off: u64, n: usize) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; n.min(8 << 20)];
    let got = s.read_at(&mut buf, off)?;
    d.write_all_at(&buf[..got], off)?;
    Ok(got)
}

/// `name`, `name.1`, … `name.N`: the current artifact and the kept ones.
pub fn kept_name(name: &str, k: usize) -> String {
    if k == 0 {
        name.to_owned()
    } else {
        format!("{name}.{k}")
    }
}

/// A rename of a kept artifact, so checksums and the manifest follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub from: String,
    pub to: String,
}

/// Shift `dir/name` to `name.1` … `name.keep`, dropping what falls off the
/// end. The current `name` is hard-linked to `name.1` (not renamed), so the
/// target never disappears: the following rename replaces it atomically.
pub fn rotate(dir: &Utf8Path, name: &str, keep: usize) -> Result<Vec<Shift>, PlaceError> {
    let mut shifts = Vec::new();
    // Drop everything beyond `keep` (also left over from runs with a larger --keep).
    let mut k = keep + 1;
    while dir.join(kept_name(name, k)).symlink_metadata().is_ok() {
        let p = dir.join(kept_name(name, k));
        remove_any(&p)?;
        k += 1;
    }
    if keep == 0 || dir.join(name).symlink_metadata().is_err() {
        return Ok(shifts);
    }
    // The oldest kept one falls off the end (and must not block the link below).
    let last = dir.join(kept_name(name, keep));
    if last.symlink_metadata().is_ok() {
        remove_any(&last)?;
    }
    for k in (1..keep).rev() {
        let from = dir.join(kept_name(name, k));
        if from.symlink_metadata().is_ok() {
            let to = dir.join(kept_name(name, k + 1));
            std::fs::rename(&from, &to).map_err(io_err(&from, "rename"))?;
            shifts.push(Shift {
                from: kept_name(name, k),
                to: kept_name(name, k + 1),
            });
        }
    }
    let cur = dir.join(name);
    let one = dir.join(kept_name(name, 1));
    std::fs::hard_link(&cur, &one).map_err(io_err(&one, "link previous artifact"))?;
    shifts.push(Shift {
        from: name.to_owned(),
        to: kept_name(name, 1),
    });
    Ok(shifts)
}

fn remove_any(p: &Utf8Path) -> Result<(), PlaceError> {
    let md = p.symlink_metadata().map_err(io_err(p, "stat"))?;
    if md.is_dir() {
        Ok(std::fs::remove_dir_all(p).map_err(io_err(p, "remove"))?)
    } else {
        Ok(std::fs::remove_file(p).map_err(io_err(p, "remove"))?)
    }
}

/// The result of placing one file.
#[derive(Debug, Clone)]
pub struct Placed {
    pub path: Utf8PathBuf,
    pub method: CopyMethod,
    pub shifts: Vec<Shift>,
}

/// Copy `src` to `dir/name` through a temp file in `dir`, keeping `keep`
/// previous versions. On any error (or interrupt) the temp file is removed
/// and `dir/name` is as it was.
pub fn place_file(
    src: &Utf8Path,
    dir: &Utf8Path,
    name: &str,
    keep: usize,
) -> Result<Placed, PlaceError> {
    let target = dir.join(name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.bifrost-tmp-"))
        .tempfile_in(dir)
        .map_err(io_err(&target, "create temp file"))?;
    let tmp_path =
        Utf8PathBuf::from_path_buf(tmp.path().to_owned()).unwrap_or_else(|_| target.clone());
    let method = copy_sparse(src, &tmp_path, tmp.as_file())?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err(&tmp_path, "fsync"))?;
    // Store files are read-only; the copy is the user's to write (flash, qemu -snapshot=off).
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io_err(&tmp_path, "chmod"))?;
    if cancel::requested() {
        return Err(PlaceError::Interrupted(tmp_path));
    }
    let shifts = rotate(dir, name, keep)?;
    tmp.persist(&target)
        .map_err(|e| e.error)
        .map_err(io_err(&target, "rename into place"))?;
    fsutil::sync_dir(dir)?;
    Ok(Placed {
        path: target,
        method,
        shifts,
    })
}

/// Bytes the file occupies on disk (st_blocks × 512).
pub fn allocated(path: &Utf8Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

/// Point `dir/name` at `store_path` as an indirect GC root (what `nix build
/// --out-link` makes), keeping `keep` previous links as `name.1` … . Each kept
/// link is registered again under its new name: a GC root follows the link's
/// path, so a plain rename would silently un-root it.
pub fn place_root(
    store_path: &str,
    dir: &Utf8Path,
    name: &str,
    keep: usize,
) -> Result<Vec<Shift>, PlaceError> {
    let add_root = |link: &Utf8Path, target: &str| -> Result<(), PlaceError> {
        let args = [
            "--add-root".to_owned(),
            link.to_string(),
            "--realise".to_owned(),
            target.to_owned(),
        ];
        crate::process::Cmd::new("nix-store", &args)
            .cancellable()
            .read()
            .map_err(|e| {
                PlaceError::Io(crate::fsutil::IoError::new(
                    link.to_owned(),
                    "register GC root",
                    std::io::Error::other(e.to_string()),
                ))
            })?;
        Ok(())
    };
    let target_of = |k: usize| -> Option<String> {
        std::fs::read_link(dir.join(kept_name(name, k)))
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
    };
    let mut k = keep + 1;
    while dir.join(kept_name(name, k)).symlink_metadata().is_ok() {
        remove_any(&dir.join(kept_name(name, k)))?;
        k += 1;
    }
    let mut shifts = Vec::new();
    if keep > 0 && target_of(0).is_some() {
        for k in (0..keep).rev() {
            if let Some(t) = target_of(k) {
                add_root(&dir.join(kept_name(name, k + 1)), &t)?;
                shifts.push(Shift {
                    from: kept_name(name, k),
                    to: kept_name(name, k + 1),
                });
            }
        }
    }
    add_root(&dir.join(name), store_path)?;
    fsutil::sync_dir(dir)?;
    Ok(shifts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn sparse_file(p: &Utf8Path, len: u64, data: &[(u64, usize)]) {
        let f = File::create(p).unwrap();
        f.set_len(len).unwrap();
        for (off, n) in data {
            f.write_all_at(&vec![0xA5; *n], *off).unwrap();
        }
    }

    #[test]
    fn copy_keeps_holes_and_bytes() {
        let d = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(d.path()).unwrap();
        let src = dir.join("src");
        sparse_file(
            &src,
            64 << 20,
            &[(0, 1 << 20), (32 << 20, 4096), ((63 << 20) + 5, 100)],
        );
        let out = ensure_layout(&dir.join("out")).unwrap();
        let placed = place_file(&src, &out, "nixos.raw", 1).unwrap();
        assert_eq!(
            std::fs::read(&src).unwrap(),
            std::fs::read(&placed.path).unwrap()
        );
        assert!(allocated(&placed.path).unwrap() <= allocated(&src).unwrap() + 8192);
        for l in LAYOUT {
            assert!(dir.join("out").join(l).is_dir());
        }
    }

    #[test]
    fn rotation_keeps_n_and_never_leaves_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(d.path()).unwrap();
        let out = ensure_layout(&dir.join("out")).unwrap();
        for i in 0..4u8 {
            let src = dir.join(format!("v{i}"));
            std::fs::write(&src, [i; 10]).unwrap();
            place_file(&src, &out, "nixos.iso", 2).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["nixos.iso", "nixos.iso.1", "nixos.iso.2"]);
        assert_eq!(std::fs::read(out.join("nixos.iso")).unwrap(), [3; 10]);
        assert_eq!(std::fs::read(out.join("nixos.iso.2")).unwrap(), [1; 10]);
        // --keep 1, again and again: the previous one replaces the kept one.
        for i in 4..7u8 {
            let src = dir.join(format!("v{i}"));
            std::fs::write(&src, [i; 10]).unwrap();
            place_file(&src, &out, "nixos.iso", 1).unwrap();
        }
        assert_eq!(std::fs::read(out.join("nixos.iso")).unwrap(), [6; 10]);
        assert_eq!(std::fs::read(out.join("nixos.iso.1")).unwrap(), [5; 10]);
        assert!(!out.join("nixos.iso.2").exists());
        // A smaller --keep drops the surplus.
        std::fs::write(dir.join("v9"), [9; 3]).unwrap();
        place_file(&dir.join("v9"), &out, "nixos.iso", 0).unwrap();
        assert!(!out.join("nixos.iso.1").exists());
        assert!(!out.join("nixos.iso.2").exists());
    }

    #[test]
    fn missing_source_leaves_target_alone() {
        let d = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(d.path()).unwrap();
        let out = ensure_layout(&dir.join("out")).unwrap();
        std::fs::write(out.join("nixos.raw"), b"old").unwrap();
        let err = place_file(&dir.join("nope"), &out, "nixos.raw", 1).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert_eq!(std::fs::read(out.join("nixos.raw")).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    }
}
