//! Paths that must stay inside a folder bifrost owns (the ESP, an output
//! root, a `--root`): relative paths from state lines and plans are checked
//! for `..` and absolute forms, and every existing component below the root
//! is checked not to be a symbolic link before anything is read, written or
//! deleted through it. An ESP that is a plain folder (not vfat) or a bind
//! mount can hold links; FAT cannot, so a real ESP never trips this.

use camino::{Utf8Path, Utf8PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("{path:?} is not a plain relative path inside {root} (it is empty, absolute or has `..`/`.`); refused")]
    NotInside { root: String, path: String },
    #[error("{path} is a symbolic link; bifrost never follows links inside {root}, since they can lead out of it — replace it with a real folder or file")]
    Symlink { root: String, path: String },
    #[error("{path} resolves to {resolved}, outside {root}; refused")]
    Escapes {
        root: String,
        path: String,
        resolved: String,
    },
    #[error("{path} has a `..` component or is not absolute; a store path is absolute and never climbs out of the store")]
    NotAStorePath { path: String },
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
}

/// Whether `rel` is a plain relative path: not empty, not absolute, only
/// normal components (no `..`, no `.`, no empty `//` segments, no backslash
/// which FAT treats as a separator).
pub fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// `root/rel`, after checking that `rel` stays inside `root` and that no
/// existing component of it below `root` is a symbolic link. Components that
/// do not exist yet are fine (they will be created as real folders/files).
pub fn checked(root: &Utf8Path, rel: &str) -> Result<Utf8PathBuf, ConfineError> {
    if !is_plain_relative(rel) {
        return Err(ConfineError::NotInside {
            root: root.to_string(),
            path: rel.to_owned(),
        });
    }
    let mut cur = root.to_owned();
    for c in rel.split('/') {
        cur.push(c);
        match cur.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ConfineError::Symlink {
                    root: root.to_string(),
                    path: cur.to_string(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => break,
            Err(source) => {
                return Err(ConfineError::Io(crate::fsutil::IoError::new(
                    cur.to_string(),
                    "stat",
                    source,
                )))
            }
        }
    }
    Ok(root.join(rel))
}

/// A store path from a bootspec: absolute, without `..` (which would climb
/// out of the store, and out of `--root`).
pub fn store_file(p: &Utf8Path) -> Result<(), ConfineError> {
    // Split the text: `components()` would quietly drop a `.`.
    let bad = p.as_str().split('/').any(|c| c == ".." || c == ".");
    if bad || !p.is_absolute() {
        return Err(ConfineError::NotAStorePath {
            path: p.to_string(),
        });
    }
    Ok(())
}

/// Check that `p`, with every link resolved, is still inside `root`.
pub fn inside(root: &Utf8Path, p: &Utf8Path) -> Result<(), ConfineError> {
    let canon = |x: &Utf8Path| {
        x.canonicalize_utf8().map_err(|source| {
            ConfineError::Io(crate::fsutil::IoError::new(
                x.to_string(),
                "resolve",
                source,
            ))
        })
    };
    let (r, q) = (canon(root)?, canon(p)?);
    if q.starts_with(&r) {
        Ok(())
    } else {
        Err(ConfineError::Escapes {
            root: root.to_string(),
            path: p.to_string(),
            resolved: q.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_only() {
        for ok in ["EFI/nixos/a.efi", "a", "EFI/refind/refind.conf"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "EFI/../../x",
            "EFI/./x",
            "EFI//x",
            "EFI/",
            "EFI\\..\\x",
            "..",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }

    #[test]
    fn links_below_the_root_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let base = Utf8Path::from_path(d.path()).unwrap();
        let (root, outside) = (base.join("esp"), base.join("outside"));
        std::fs::create_dir_all(root.join("EFI")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("EFI/nixos")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), root.join("EFI/file")).unwrap();
        assert!(matches!(
            checked(&root, "EFI/nixos/k.efi"),
            Err(ConfineError::Symlink { .. })
        ));
        assert!(matches!(
            checked(&root, "EFI/file"),
            Err(ConfineError::Symlink { .. })
        ));
        assert!(matches!(
            checked(&root, "../outside/f"),
            Err(ConfineError::NotInside { .. })
        ));
        assert_eq!(
            checked(&root, "EFI/refind/refind.conf").unwrap(),
            root.join("EFI/refind/refind.conf")
        );
    }

    #[test]
    fn store_paths_never_climb() {
        assert!(store_file(Utf8Path::new("/nix/store/abc-linux/bzImage")).is_ok());
        for bad in [
            "/nix/store/abc-linux/../../../etc/shadow",
            "nix/store/x",
            "/nix/store/./x",
        ] {
            assert!(store_file(Utf8Path::new(bad)).is_err(), "{bad}");
        }
        let d = tempfile::tempdir().unwrap();
        let base = Utf8Path::from_path(d.path()).unwrap();
        std::fs::create_dir_all(base.join("root/nix")).unwrap();
        std::fs::write(base.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), base.join("root/nix/k")).unwrap();
        std::fs::write(base.join("root/nix/real"), b"k").unwrap();
        assert!(inside(&base.join("root"), &base.join("root/nix/real")).is_ok());
        assert!(matches!(
            inside(&base.join("root"), &base.join("root/nix/k")),
            Err(ConfineError::Escapes { .. })
        ));
    }
}
