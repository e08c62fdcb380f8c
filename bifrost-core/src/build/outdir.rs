//! The output root is checked before anything is built: an hour-long build
//! that then cannot create `OUT/2_raw` (a normal user and the seed's default
//! `/mnt/kinoite/@images/...`) wastes the hour.

use camino::{Utf8Path, Utf8PathBuf};

/// Errors of the output-root check.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    #[error(
        "--out {out}: cannot {op} {path}: {source}\n\
         Nothing was built. Pass an output folder you can write, for example \
         `--out {suggestion}`{after}, or create {out} and give your user write access to it \
         (`sudo mkdir -p {out} && sudo chown $USER {out}`)."
    )]
    NotWritable {
        out: Utf8PathBuf,
        op: &'static str,
        path: Utf8PathBuf,
        suggestion: String,
        /// How to pass it through a flake app.
        after: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("output folder: {0}")]
    Confine(#[from] crate::confine::ConfineError),
}

/// A folder the caller can surely write: `$HOME/bifrost-images`, else
/// `./bifrost-images`.
pub fn suggested_out(home: Option<&str>) -> String {
    match home.filter(|h| h.starts_with('/')) {
        Some(h) => format!("{}/bifrost-images", h.trim_end_matches('/')),
        None => "./bifrost-images".to_owned(),
    }
}

/// Prove, before any build, that `OUT/2_raw` can be created and written,
/// leaving nothing behind: the nearest existing folder on the way to it must
/// be a folder that takes a file (a temp file, removed at once). The layout
/// itself is made when the artifact is placed (`output::open`).
pub fn prepare(out: &Utf8Path) -> Result<(), OutDirError> {
    let fail = |op: &'static str, path: Utf8PathBuf, source: std::io::Error| {
        let home = std::env::var("HOME").ok();
        OutDirError::NotWritable {
            out: out.to_owned(),
            op,
            path,
            suggestion: suggested_out(home.as_deref()),
            after: " (through a flake app: `nix run .#build-iso -- --out DIR`)",
            source,
        }
    };
    // Never follow a link out of OUT (as placing does, see `output`).
    let raw = crate::confine::checked(out, "2_raw")?;
    let mut existing = raw.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(p) if !p.as_str().is_empty() => existing = p,
            _ => {
                existing = Utf8Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(fail(
            "create",
            raw.clone(),
            std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{existing} is not a folder"),
            ),
        ));
    }
    // Root ignores permission bits, so asking access(2) would lie; a real
    // file proves it (removed again at once).
    let op = if existing == raw {
        "write a file in"
    } else {
        "create"
    };
    tempfile::Builder::new()
        .prefix(".bifrost-write-test-")
        .tempfile_in(existing)
        .map_err(|e| fail(op, raw.clone(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_below_a_file_is_refused_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        let err = prepare(&root.join("file/out")).unwrap_err().to_string();
        assert!(err.contains("--out"), "{err}");
        assert!(err.contains("cannot create"), "{err}");
        assert!(err.contains("bifrost-images"), "{err}");
        assert!(!root.join("file/out").exists());
    }

    #[test]
    fn a_writable_out_is_accepted_and_left_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap();
        prepare(&root.join("out/deeper")).unwrap();
        assert!(!root.join("out").exists());
        std::fs::create_dir_all(root.join("have/2_raw")).unwrap();
        prepare(&root.join("have")).unwrap();
        assert_eq!(
            std::fs::read_dir(root.join("have/2_raw")).unwrap().count(),
            0
        );
        assert_eq!(std::fs::read_dir(root).unwrap().count(), 1);
    }

    #[test]
    fn suggestion_prefers_home() {
        assert_eq!(
            suggested_out(Some("/home/ann/")),
            "/home/ann/bifrost-images"
        );
        assert_eq!(suggested_out(None), "./bifrost-images");
        assert_eq!(suggested_out(Some("relative")), "./bifrost-images");
    }
}
