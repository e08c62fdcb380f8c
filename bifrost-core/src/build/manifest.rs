//! `2_raw/SHA256SUMS` and `2_raw/manifest.json`: what was built, from what, and its checksum.
//!
//! Both files describe every artifact in `2_raw`, not only the last build:
//! building the ISO keeps the raw image's line. Entries follow kept artifacts
//! when they rotate (`nixos.raw` → `nixos.raw.1`) and disappear with them.

use super::place::Shift;
use crate::fsutil;
use camino::Utf8Path;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{path}: not a bifrost manifest ({source}); move it away and build again")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Fs(#[from] fsutil::FsError),
    #[error("{0}: interrupted while computing its SHA-256")]
    Interrupted(String),
}

/// The flake the artifact was built from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlakeInfo {
    /// The flake reference as given.
    pub url: String,
    /// The locked URL nix resolved it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_url: Option<String>,
    /// Git revision, when the flake is a clean git tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `true`: uncommitted changes; `false`: clean; absent: not a git flake
    /// (a `path:` flake has no revision to be dirty against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<u64>,
}

/// One artifact's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub host: String,
    pub format: String,
    /// The nix installable that was built.
    pub installable: String,
    pub store_path: String,
    /// The artifact inside the store path (`passthru.filePath`, or the VM runner).
    pub file_path: String,
    /// Apparent size in bytes.
    pub size: u64,
    pub sha256: String,
    pub flake: FlakeInfo,
    /// `nodes.nixpkgs.locked.rev` of the flake's lock file, if it has nixpkgs.
    pub nixpkgs_revision: Option<String>,
    /// `config.system.nixos.version`, if it evaluates.
    pub nixos_version: Option<String>,
    pub bifrost_version: String,
    /// UTC, RFC 3339.
    pub built_at: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of this file.
    pub version: u32,
    /// By file name in `2_raw` (`nixos.raw`, `nixos.raw.1`, `nixos-vm`, …).
    pub artifacts: BTreeMap<String, Entry>,
}

/// SHA-256 of a file, hex. Reads in 1 MiB blocks (holes read as zeros).
pub fn sha256_file(path: &Utf8Path) -> Result<String, ManifestError> {
    let io = |op| {
        move |source| ManifestError::Io(crate::fsutil::IoError::new(path.to_string(), op, source))
    };
    let mut f = std::fs::File::open(path).map_err(io("open"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // Hashing a multi-GiB image takes a while: SIGINT must stop it.
        if super::cancel::requested() {
            return Err(ManifestError::Interrupted(path.to_string()));
        }
        let n = f.read(&mut buf).map_err(io("read"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Parse SHA256SUMS (`<hex>  <path>`, also `<hex> *<path>`) into path → hash.
pub fn parse_sums(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (hash, rest) = l.split_once(' ')?;
            let path = rest.trim_start_matches([' ', '*']);
            (hash.len() == 64 && !path.is_empty()).then(|| (path.to_owned(), hash.to_owned()))
        })
        .collect()
}

/// Render SHA256SUMS in `sha256sum` format, sorted by path.
pub fn render_sums(sums: &BTreeMap<String, String>) -> String {
    sums.iter().map(|(p, h)| format!("{h}  {p}\n")).collect()
}

/// Rename the first path component of `path` if a shift applies to it.
fn shifted(path: &str, shifts: &[Shift]) -> String {
    let (head, tail) = match path.split_once('/') {
        Some((h, t)) => (h, Some(t)),
        None => (path, None),
    };
    match shifts.iter().find(|s| s.from == head) {
        Some(s) => match tail {
            Some(t) => format!("{}/{t}", s.to),
            None => s.to.clone(),
        },
        None => path.to_owned(),
    }
}

/// Rename keys by the shifts, all at once (they form a chain). A key that is
/// a shift's target but not its source fell off the end, or was replaced by
/// the shifted one: it goes.
fn apply_shifts<V>(map: BTreeMap<String, V>, shifts: &[Shift]) -> BTreeMap<String, V> {
    let head = |p: &str| p.split('/').next().unwrap_or(p).to_owned();
    map.into_iter()
        .filter_map(|(k, v)| {
            let h = head(&k);
            if shifts.iter().any(|s| s.from == h) {
                Some((shifted(&k, shifts), v))
            } else if shifts.iter().any(|s| s.to == h) {
                None
            } else {
                Some((k, v))
            }
        })
        .collect()
}

/// Apply shifts (all at once, they form a chain), then set `name`'s entry,
/// then drop entries whose file is gone from `dir`.
pub fn update(
    dir: &Utf8Path,
    name: &str,
    sums_path_of_name: &str,
    entry: Entry,
    shifts: &[Shift],
) -> Result<(), ManifestError> {
    let exists = |p: &str| dir.join(p).symlink_metadata().is_ok();

    let sums_file = dir.join("SHA256SUMS");
    let old = match std::fs::read_to_string(&sums_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ManifestError::Io(crate::fsutil::IoError::new(
                sums_file.to_string(),
                "read",
                source,
            )))
        }
    };
    let mut sums = apply_shifts(parse_sums(&old), shifts);
    sums.retain(|p, _| !(p == name || p.starts_with(&format!("{name}/"))));
    sums.insert(sums_path_of_name.to_owned(), entry.sha256.clone());
    sums.retain(|p, _| exists(p));

    let man_file = dir.join("manifest.json");
    let mut man = match std::fs::read_to_string(&man_file) {
        Ok(t) => serde_json::from_str::<Manifest>(&t).map_err(|source| ManifestError::Parse {
            path: man_file.to_string(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(source) => {
            return Err(ManifestError::Io(crate::fsutil::IoError::new(
                man_file.to_string(),
                "read",
                source,
            )))
        }
    };
    man.version = 1;
    man.artifacts = apply_shifts(std::mem::take(&mut man.artifacts), shifts);
    man.artifacts.insert(name.to_owned(), entry);
    man.artifacts.retain(|k, _| exists(k));

    fsutil::write_atomic(&sums_file, render_sums(&sums).as_bytes())?;
    let mut json = serde_json::to_string_pretty(&man).expect("manifest serializes");
    json.push('\n');
    fsutil::write_atomic(&man_file, json.as_bytes())?;
    Ok(())
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-29T01:23:15Z`).
pub fn rfc3339(secs: u64) -> String {
    // Howard Hinnant's civil-from-days.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_915_395), "2026-11-29T01:23:15Z");
    }

    #[test]
    fn sums_round_trip_and_shift() {
        let h = "a".repeat(64);
        let text = format!("{h}  nixos.raw\n{h} *nixos-vm/bin/run-x-vm\ngarbage\n");
        let s = parse_sums(&text);
        assert_eq!(s.len(), 2);
        let shifts = [Shift {
            from: "nixos-vm".into(),
            to: "nixos-vm.1".into(),
        }];
        assert_eq!(
            shifted("nixos-vm/bin/run-x-vm", &shifts),
            "nixos-vm.1/bin/run-x-vm"
        );
        assert_eq!(shifted("nixos.raw", &shifts), "nixos.raw");
        assert_eq!(render_sums(&s).lines().count(), 2);
    }

    #[test]
    fn shifted_entries_replace_the_ones_that_fell_off() {
        let map: BTreeMap<String, u8> = [
            ("nixos.raw", 3),
            ("nixos.raw.1", 2),
            ("nixos.raw.2", 1),
            ("nixos.iso", 9),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
        // --keep 1: nixos.raw -> .1; the old .1 is gone.
        let one = [Shift {
            from: "nixos.raw".into(),
            to: "nixos.raw.1".into(),
        }];
        let m = apply_shifts(map.clone(), &one);
        assert_eq!(m.get("nixos.raw.1"), Some(&3));
        assert_eq!(m.get("nixos.raw"), None);
        assert_eq!(m.get("nixos.iso"), Some(&9));
        // --keep 2: .1 -> .2, then nixos.raw -> .1.
        let two = [
            Shift {
                from: "nixos.raw.1".into(),
                to: "nixos.raw.2".into(),
            },
            Shift {
                from: "nixos.raw".into(),
                to: "nixos.raw.1".into(),
            },
        ];
        let m = apply_shifts(map, &two);
        assert_eq!(
            (m.get("nixos.raw.1"), m.get("nixos.raw.2")),
            (Some(&3), Some(&2))
        );
    }
}
