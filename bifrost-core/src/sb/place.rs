//! Putting the signing keys in place on an installed system
//! (`bifrost sb keys --from DIR`, `--keep-existing`): what `bifrost install`
//! runs before `nixos-install`, whose boot hook signs with them.
//!
//! Keys are never overwritten: a set already in place is kept only when it
//! is what this run would put there (the same files as `--from`, or with
//! `--keep-existing` a complete set from an earlier run), and refused
//! otherwise. Private keys end up 0600 in a 0700 folder.

use super::keys::{create, planned_files, KeysOptions};
use super::SbError;
use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::os::unix::fs::PermissionsExt;

/// What [`place`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Placed {
    /// New keys were made.
    Created { files: Vec<Utf8PathBuf> },
    /// The user's keys were copied.
    Copied { files: Vec<Utf8PathBuf> },
    /// The same set was already there (an earlier run) and is kept.
    Kept { files: Vec<Utf8PathBuf> },
}

impl Placed {
    pub fn files(&self) -> &[Utf8PathBuf] {
        match self {
            Placed::Created { files } | Placed::Copied { files } | Placed::Kept { files } => files,
        }
    }
}

/// Create the keys (`from` = None) or copy the user's from `from`, into `o.dir`.
///
/// With `from`, `NAME.key` and `NAME.crt` must be there; `NAME.cer` and,
/// with `o.firmware`, the PK/KEK/db files are copied when present.
pub fn place(
    o: &KeysOptions,
    from: Option<&Utf8Path>,
    keep_existing: bool,
) -> Result<Placed, SbError> {
    if o.dir.is_relative() {
        return Err(SbError::Refused(format!(
            "--dir {}: give an absolute path",
            o.dir
        )));
    }
    // Never follow a symlink out of the key folder.
    if let Ok(m) = o.dir.symlink_metadata() {
        if !m.is_dir() {
            return Err(SbError::Refused(format!(
                "--dir {} is not a folder (a symlink or a file); remove it or choose another",
                o.dir
            )));
        }
    }
    let files = match from {
        Some(src) => source_files(o, src)?,
        None => planned_files(o),
    };
    let present: Vec<&Utf8PathBuf> = files
        .iter()
        .filter(|f| f.symlink_metadata().is_ok())
        .collect();
    if !present.is_empty() {
        return keep(o, from, &files, &present, keep_existing);
    }
    std::fs::create_dir_all(&o.dir).map_err(io_err(&o.dir, "create folder"))?;
    std::fs::set_permissions(&o.dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(&o.dir, "chmod"))?;
    match from {
        None => {
            create(o)?;
            Ok(Placed::Created { files })
        }
        Some(src) => {
            copy(src, &o.dir, &files)?;
            Ok(Placed::Copied { files })
        }
    }
}

/// The files `from` provides, as paths in `o.dir`.
fn source_files(o: &KeysOptions, src: &Utf8Path) -> Result<Vec<Utf8PathBuf>, SbError> {
    let mut out = Vec::new();
    for (i, f) in planned_files(o).iter().enumerate() {
        let name = f.file_name().expect("planned files have names");
        let s = src.join(name);
        let required = i < 2; // NAME.key, NAME.crt
        match std::fs::metadata(&s) {
            Ok(m) if m.is_file() => out.push(f.clone()),
            Ok(_) => {
                return Err(SbError::Refused(format!(
                    "--from {s} is not a regular file"
                )));
            }
            Err(_) if required => {
                return Err(SbError::Missing {
                    what: "--from key file",
                    path: s.to_string(),
                })
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Some files are there: keep a complete, same set; refuse anything else.
fn keep(
    o: &KeysOptions,
    from: Option<&Utf8Path>,
    files: &[Utf8PathBuf],
    present: &[&Utf8PathBuf],
    keep_existing: bool,
) -> Result<Placed, SbError> {
    let refuse = |f: &Utf8Path, why: &str| {
        SbError::Refused(format!(
            "{f} already exists and {why}; bifrost never overwrites keys: move the folder {} away, or point --from at the keys that are there",
            o.dir
        ))
    };
    if !keep_existing {
        return Err(SbError::Exists(present[0].to_string()));
    }
    if let Some(missing) = files.iter().find(|f| !present.contains(f)) {
        return Err(SbError::Refused(format!(
            "{} holds an incomplete key set ({missing} is missing); bifrost never overwrites keys: move the folder away and run again",
            o.dir
        )));
    }
    for f in files {
        let m = f.symlink_metadata().map_err(io_err(f, "stat"))?;
        if !m.is_file() {
            return Err(refuse(f, "is not a regular file"));
        }
        if let Some(src) = from {
            let name = f.file_name().expect("planned files have names");
            let a = std::fs::read(src.join(name)).map_err(io_err(src.join(name), "read"))?;
            let b = std::fs::read(f).map_err(io_err(f, "read"))?;
            if a != b {
                return Err(refuse(f, &format!("differs from {}", src.join(name))));
            }
        }
    }
    Ok(Placed::Kept {
        files: files.to_vec(),
    })
}

/// Copy through a private temp folder and link the finished files in, as
/// `keys::create` does: no half-copied key, no file replaced.
fn copy(src: &Utf8Path, dir: &Utf8Path, files: &[Utf8PathBuf]) -> Result<(), SbError> {
    let work = tempfile::Builder::new()
        .prefix(".bifrost-keys-")
        .tempdir_in(dir)
        .map_err(io_err(dir, "create temp folder"))?;
    let w = Utf8Path::from_path(work.path()).expect("temp path under a UTF-8 dir");
    std::fs::set_permissions(w, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(w, "chmod"))?;
    for f in files {
        let name = f.file_name().expect("planned files have names");
        let tmp = w.join(name);
        let mode = if name.ends_with(".key") { 0o600 } else { 0o644 };
        let bytes = std::fs::read(src.join(name)).map_err(io_err(src.join(name), "read"))?;
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)
                .map_err(io_err(&tmp, "create"))?;
            out.write_all(&bytes).map_err(io_err(&tmp, "write"))?;
            out.sync_all().map_err(io_err(&tmp, "sync"))?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(&tmp, "chmod"))?;
        std::fs::hard_link(&tmp, f).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SbError::Exists(f.to_string())
            } else {
                io_err(f, "create")(e).into()
            }
        })?;
    }
    crate::fsutil::sync_dir(dir).map_err(|e| SbError::Refused(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Utf8Path, name: &str, firmware: bool) -> KeysOptions {
        KeysOptions {
            dir: dir.to_path_buf(),
            name: name.into(),
            common_name: "test".into(),
            firmware,
        }
    }

    fn mode(p: &Utf8Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// A user's folder with `db.key`, `db.crt` (and no `db.cer`).
    fn user_keys(root: &Utf8Path) -> Utf8PathBuf {
        let src = root.join("mine");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("db.key"), "PRIVATE").unwrap();
        std::fs::write(src.join("db.crt"), "CERT").unwrap();
        src
    }

    fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(t.path().to_path_buf()).unwrap();
        (t, p)
    }

    #[test]
    fn copies_the_users_keys_private_and_keeps_the_same_set_on_a_rerun() {
        let (_t, root) = tmp();
        let src = user_keys(&root);
        let dir = root.join("mnt/etc/secureboot");
        let o = opts(&dir, "db", false);
        let placed = place(&o, Some(&src), true).unwrap();
        assert_eq!(
            placed,
            Placed::Copied {
                files: vec![dir.join("db.key"), dir.join("db.crt")]
            }
        );
        assert_eq!(std::fs::read(dir.join("db.key")).unwrap(), b"PRIVATE");
        assert_eq!(mode(&dir.join("db.key")), 0o600);
        assert_eq!(mode(&dir.join("db.crt")), 0o644);
        assert_eq!(mode(&dir), 0o700);
        assert!(!dir.join("db.cer").exists());
        // No temp folder is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let again = place(&o, Some(&src), true).unwrap();
        assert!(matches!(again, Placed::Kept { .. }), "{again:?}");
    }

    #[test]
    fn refuses_to_overwrite_different_keys() {
        let (_t, root) = tmp();
        let src = user_keys(&root);
        let dir = root.join("keys");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("db.key"), "OTHER").unwrap();
        std::fs::write(dir.join("db.crt"), "CERT").unwrap();
        let err = place(&opts(&dir, "db", false), Some(&src), true).unwrap_err();
        assert!(err.to_string().contains("differs from"), "{err}");
        assert_eq!(std::fs::read(dir.join("db.key")).unwrap(), b"OTHER");
    }

    #[test]
    fn refuses_an_incomplete_set_and_any_set_without_keep_existing() {
        let (_t, root) = tmp();
        let src = user_keys(&root);
        let dir = root.join("keys");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("db.key"), "PRIVATE").unwrap();
        let err = place(&opts(&dir, "db", false), Some(&src), true).unwrap_err();
        assert!(err.to_string().contains("incomplete"), "{err}");
        assert!(!dir.join("db.crt").exists());
        std::fs::write(dir.join("db.crt"), "CERT").unwrap();
        let err = place(&opts(&dir, "db", false), Some(&src), false).unwrap_err();
        assert!(matches!(err, SbError::Exists(_)), "{err}");
    }

    #[test]
    fn refuses_a_symlinked_folder_and_a_source_without_the_key() {
        let (_t, root) = tmp();
        let src = user_keys(&root);
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = root.join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let err = place(&opts(&link, "db", false), Some(&src), true).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        std::fs::remove_file(src.join("db.key")).unwrap();
        let err = place(&opts(&root.join("k"), "db", false), Some(&src), true).unwrap_err();
        assert!(
            matches!(err, SbError::Missing { ref path, .. } if path.ends_with("db.key")),
            "{err}"
        );
        assert!(!root.join("k").exists());
    }

    #[test]
    fn creates_keys_and_keeps_them_on_a_rerun() {
        if crate::sb::run("openssl", &["version"]).is_err() {
            assert!(
                std::env::var_os("BIFROST_REQUIRE_TOOLS").is_none(),
                "openssl is missing and BIFROST_REQUIRE_TOOLS is set"
            );
            eprintln!("skipped: no openssl");
            return;
        }
        let (_t, root) = tmp();
        let dir = root.join("etc/secureboot");
        let o = opts(&dir, "mok", false);
        let placed = place(&o, None, true).unwrap();
        assert!(matches!(placed, Placed::Created { .. }), "{placed:?}");
        assert_eq!(mode(&dir.join("mok.key")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let key = std::fs::read(dir.join("mok.key")).unwrap();
        assert!(matches!(
            place(&o, None, true).unwrap(),
            Placed::Kept { .. }
        ));
        assert_eq!(std::fs::read(dir.join("mok.key")).unwrap(), key);
        assert!(matches!(place(&o, None, false), Err(SbError::Exists(_))));
    }
}
