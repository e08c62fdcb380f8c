//! The output root is checked before anything is built: an hour-long build
//! that then cannot create `OUT/2_raw` (a normal user and the seed's default
//! `/mnt/kinoite/@images/...`) wastes the hour.

use super::place;
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
}

/// A folder the caller can surely write: `$HOME/bifrost-images`, else
/// `./bifrost-images`.
pub fn suggested_out(home: Option<&str>) -> String {
    match home.filter(|h| h.starts_with('/')) {
        Some(h) => format!("{}/bifrost-images", h.trim_end_matches('/')),
        None => "./bifrost-images".to_owned(),
    }
}

/// Create the output layout (`OUT/{0_podman,1_oci,2_raw,3_deploy}`) and
/// prove `OUT/2_raw` takes a file, before any build starts. Returns `OUT/2_raw`.
pub fn prepare(out: &Utf8Path) -> Result<Utf8PathBuf, OutDirError> {
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
    for d in place::LAYOUT {
        let p = out.join(d);
        std::fs::create_dir_all(&p).map_err(|e| fail("create", p.clone(), e))?;
    }
    let raw = out.join("2_raw");
    // Root ignores permission bits, so asking access(2) would lie; a real
    // file proves it (removed again at once).
    tempfile::Builder::new()
        .prefix(".bifrost-write-test-")
        .tempfile_in(&raw)
        .map_err(|e| fail("write a file in", raw.clone(), e))?;
    Ok(raw)
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
    fn a_writable_out_gets_the_layout_and_no_leftover() {
        let tmp = tempfile::tempdir().unwrap();
        let out = Utf8Path::from_path(tmp.path()).unwrap().join("out");
        assert_eq!(prepare(&out).unwrap(), out.join("2_raw"));
        for d in place::LAYOUT {
            assert!(out.join(d).is_dir());
        }
        assert_eq!(std::fs::read_dir(out.join("2_raw")).unwrap().count(), 0);
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
