//! The output folder before anything is placed in it: its layout made
//! without following a link out of it, locked against another build
//! placing into the same `OUT` (see [`crate::lock`]), and its records
//! (`2_raw/manifest.json`, `2_raw/SHA256SUMS`) checked readable and
//! well-formed, so a build that could not record its artifact fails before
//! it replaces or rotates anything.

use super::manifest::Manifest;
use super::place;
use crate::confine;
use crate::lock::{self, DirLock};
use camino::{Utf8Path, Utf8PathBuf};
use std::time::Duration;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output folder: {0}")]
    Confine(#[from] confine::ConfineError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Place(#[from] place::PlaceError),
    #[error("{0}; nothing was replaced — fix or move it away and build again")]
    Io(#[from] crate::fsutil::IoError),
    #[error("{path} is not a regular file; nothing was replaced — move it away and build again")]
    NotAFile { path: Utf8PathBuf },
    #[error("{path}: not a bifrost manifest ({source}); nothing was replaced — move it away and build again")]
    Parse {
        path: Utf8PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// An output folder ready for placing, held locked until dropped.
#[derive(Debug)]
pub struct Output {
    /// `OUT/2_raw`.
    pub dir: Utf8PathBuf,
    _lock: DirLock,
}

/// Make `out`'s layout, lock `out` (waiting up to `wait`, telling `notice`
/// once when it waits) and check its records.
pub fn open(
    out: &Utf8Path,
    wait: Duration,
    notice: &mut dyn FnMut(&str),
) -> Result<Output, OutputError> {
    precheck(out)?;
    let dir = place::ensure_layout(out)?;
    let lock = lock::acquire(out, "output folder", wait, notice)?;
    // Again under the lock: another build may have changed them meanwhile.
    check_records(&dir)?;
    Ok(Output { dir, _lock: lock })
}

/// Check `out` before a build starts, so a bad output folder fails before
/// hours of building rather than after: the layout folders must be real
/// folders inside `out` (not links out of it), and existing records readable.
pub fn precheck(out: &Utf8Path) -> Result<(), OutputError> {
    for d in place::LAYOUT {
        confine::checked(out, d)?;
    }
    let dir = out.join("2_raw");
    if dir.is_dir() {
        check_records(&dir)?;
    }
    Ok(())
}

/// Read `dir/name`: absent is fine (`None`); a link, a folder, an
/// unreadable file or one that is not UTF-8 is an error.
fn read_record(dir: &Utf8Path, name: &str) -> Result<Option<String>, OutputError> {
    let path = confine::checked(dir, name)?;
    match path.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(crate::fsutil::IoError::new(path, "stat", source).into()),
        Ok(m) if !m.is_file() => return Err(OutputError::NotAFile { path }),
        Ok(_) => {}
    }
    std::fs::read_to_string(&path)
        .map(Some)
        .map_err(|source| crate::fsutil::IoError::new(path, "read", source).into())
}

/// Check that the manifest and the checksums can be read and updated.
pub fn check_records(dir: &Utf8Path) -> Result<(), OutputError> {
    read_record(dir, "SHA256SUMS")?;
    if let Some(text) = read_record(dir, "manifest.json")? {
        serde_json::from_str::<Manifest>(&text).map_err(|source| OutputError::Parse {
            path: dir.join("manifest.json"),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(d.path().to_path_buf()).unwrap();
        (d, p)
    }

    #[test]
    fn bad_records_are_found_before_placing() {
        let (_d, base) = tmp();
        let out = base.join("out");
        let o = open(&out, Duration::ZERO, &mut |_| {}).unwrap();
        drop(o);
        std::fs::write(out.join("2_raw/manifest.json"), b"{ not json").unwrap();
        let e = open(&out, Duration::ZERO, &mut |_| {}).unwrap_err();
        assert!(matches!(e, OutputError::Parse { .. }), "{e}");
        std::fs::remove_file(out.join("2_raw/manifest.json")).unwrap();
        std::fs::create_dir(out.join("2_raw/manifest.json")).unwrap();
        let e = open(&out, Duration::ZERO, &mut |_| {}).unwrap_err();
        assert!(matches!(e, OutputError::NotAFile { .. }), "{e}");
        std::fs::remove_dir(out.join("2_raw/manifest.json")).unwrap();
        std::fs::write(base.join("elsewhere"), b"{}").unwrap();
        std::os::unix::fs::symlink(base.join("elsewhere"), out.join("2_raw/SHA256SUMS")).unwrap();
        let e = open(&out, Duration::ZERO, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    #[test]
    fn layout_links_out_of_the_output_are_refused() {
        let (_d, base) = tmp();
        let out = base.join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(base.join("victim")).unwrap();
        std::os::unix::fs::symlink(base.join("victim"), out.join("2_raw")).unwrap();
        let e = open(&out, Duration::ZERO, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(base.join("victim")).unwrap().count(), 0);
    }

    /// Several placements into one OUT at once, each the way `build::run`
    /// does it under the lock: SHA256SUMS and the manifest always describe
    /// the files that are there.
    #[test]
    fn concurrent_placements_keep_checksums_right() {
        use super::super::manifest::{self, Entry};
        let (_d, base) = tmp();
        let out = base.join("out");
        let srcs: Vec<Utf8PathBuf> = (0..6u8)
            .map(|i| {
                let p = base.join(format!("src{i}"));
                std::fs::write(&p, vec![i; 1000 + i as usize]).unwrap();
                p
            })
            .collect();
        for round in 0..3 {
            std::thread::scope(|s| {
                for src in &srcs {
                    let out = out.clone();
                    s.spawn(move || {
                        let o = open(&out, Duration::from_secs(600), &mut |_| {}).unwrap();
                        let placed = place::place_file(src, &o.dir, "nixos.raw", 2).unwrap();
                        let sha256 = manifest::sha256_file(&placed.path).unwrap();
                        let entry = Entry {
                            host: "h".into(),
                            format: "raw".into(),
                            installable: "i".into(),
                            store_path: src.to_string(),
                            file_path: "f".into(),
                            size: 0,
                            sha256,
                            flake: Default::default(),
                            nixpkgs_revision: None,
                            nixos_version: None,
                            bifrost_version: "0".into(),
                            built_at: "t".into(),
                        };
                        manifest::update(&o.dir, "nixos.raw", "nixos.raw", entry, &placed.shifts)
                            .unwrap();
                    });
                }
            });
            let dir = out.join("2_raw");
            let sums =
                manifest::parse_sums(&std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap());
            let mut names: Vec<String> = sums.keys().cloned().collect();
            names.sort();
            assert_eq!(
                names,
                ["nixos.raw", "nixos.raw.1", "nixos.raw.2"],
                "round {round}"
            );
            for (name, h) in &sums {
                assert_eq!(
                    &manifest::sha256_file(&dir.join(name)).unwrap(),
                    h,
                    "round {round}: {name}"
                );
            }
        }
    }

    #[test]
    fn one_build_places_at_a_time() {
        let (_d, base) = tmp();
        let out = base.join("out");
        let first = open(&out, Duration::ZERO, &mut |_| {}).unwrap();
        let e = open(&out, Duration::ZERO, &mut |_| {}).unwrap_err();
        assert!(matches!(e, OutputError::Lock(_)), "{e}");
        drop(first);
        open(&out, Duration::ZERO, &mut |_| {}).unwrap();
    }
}
