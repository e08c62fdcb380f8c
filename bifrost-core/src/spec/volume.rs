//! How the Kinoite side's `/boot` is named: by file-system UUID (what Fedora's
//! own fstab uses; its installer gives `/boot` no label), by GPT partition
//! UUID, or by file-system label.
//!
//! Written as fstab writes it: `UUID=…`, `PARTUUID=…`, `LABEL=…`; a bare word
//! is a label (the earlier form of this setting). One value serves three
//! readers, each needing its own form:
//! - Linux mounts it by `/dev/disk/by-uuid/…`, `by-partuuid/…` or `by-label/…`
//!   ([`BootVolume::device`]; udev writes UUIDs in lower case);
//! - rEFInd's `volume` takes "a filesystem label, partition label, or
//!   partition GUID (but NOT yet by filesystem UUID number)"
//!   (refind.conf-sample, rEFInd 0.13/0.14): a label and a PARTUUID go as
//!   they are, a file-system UUID is looked up as its partition's GUID where
//!   the disk is attached ([`crate::esp::volume`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Kinoite's `/boot`: `UUID=<file-system UUID>`, `PARTUUID=<GPT partition GUID>`,
/// `LABEL=<file-system label>`, or a bare label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BootVolume {
    /// File-system UUID (lower case), as in Fedora's `/etc/fstab`.
    Uuid(String),
    /// GPT partition GUID (lower case).
    PartUuid(String),
    /// File-system label (rEFInd also matches a partition label by it).
    Label(String),
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// File-system UUIDs come in the shapes mkfs writes: a GUID (ext4, btrfs,
/// xfs) or `XXXX-XXXX` (FAT volume serial).
fn is_fs_uuid(s: &str) -> bool {
    is_guid(s)
        || (s.len() == 9
            && s.as_bytes()[4] == b'-'
            && s.chars()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_hexdigit()))
}

/// A label udev spells plainly under `/dev/disk/by-label/` and rEFInd reads
/// unquoted-safe: letters, digits, `-`, `_`, `.`, `+`.
fn is_plain_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

impl BootVolume {
    /// Parse `UUID=…`, `PARTUUID=…`, `LABEL=…` or a bare label.
    pub fn parse(s: &str) -> Result<BootVolume, String> {
        let hint = "write UUID=<uuid> (as in Kinoite's /etc/fstab line for /boot, or `lsblk -no UUID <device>`), PARTUUID=<partition GUID> or LABEL=<label>";
        if let Some(u) = s.strip_prefix("UUID=") {
            if !is_fs_uuid(u) {
                return Err(format!(
                    "{s:?} is not a file-system UUID (such as 3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b); {hint}"
                ));
            }
            return Ok(BootVolume::Uuid(u.to_ascii_lowercase()));
        }
        if let Some(u) = s.strip_prefix("PARTUUID=") {
            if !is_guid(u) {
                return Err(format!(
                    "{s:?} is not a GPT partition GUID (such as 8c1f0e2a-4b3d-4c5e-9f6a-7b8c9d0e1f2a; rEFInd cannot find MBR partitions by PARTUUID); {hint}"
                ));
            }
            return Ok(BootVolume::PartUuid(u.to_ascii_lowercase()));
        }
        let label = s.strip_prefix("LABEL=").unwrap_or(s);
        if !is_plain_label(label) {
            return Err(format!(
                "{s:?} is not a usable label (1–255 letters, digits, `-`, `_`, `.`, `+`; a label needs no quotes in refind.conf or /dev/disk/by-label); {hint}"
            ));
        }
        Ok(BootVolume::Label(label.to_owned()))
    }

    /// The device node udev makes for it.
    pub fn device(&self) -> String {
        match self {
            BootVolume::Uuid(u) => format!("/dev/disk/by-uuid/{u}"),
            BootVolume::PartUuid(u) => format!("/dev/disk/by-partuuid/{u}"),
            BootVolume::Label(l) => format!("/dev/disk/by-label/{l}"),
        }
    }

    /// rEFInd's `volume` value when it needs no lookup (label, partition GUID).
    pub fn refind_volume(&self) -> Option<&str> {
        match self {
            BootVolume::Uuid(_) => None,
            BootVolume::PartUuid(u) | BootVolume::Label(u) => Some(u),
        }
    }
}

impl fmt::Display for BootVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootVolume::Uuid(u) => write!(f, "UUID={u}"),
            BootVolume::PartUuid(u) => write!(f, "PARTUUID={u}"),
            BootVolume::Label(l) => write!(f, "LABEL={l}"),
        }
    }
}

impl std::str::FromStr for BootVolume {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        BootVolume::parse(s)
    }
}

impl TryFrom<String> for BootVolume {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        BootVolume::parse(&s)
    }
}

impl Serialize for BootVolume {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BootVolume {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BootVolume::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for BootVolume {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BootVolume".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`UUID=<file-system UUID>` (as in Fedora's /etc/fstab), `PARTUUID=<GPT partition GUID>`, `LABEL=<label>`, or a bare label.",
            "examples": ["UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b", "LABEL=kinoite-boot"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_parses_and_prints_back() {
        let u = BootVolume::parse("UUID=3F2A5C1E-8D4B-4E6F-9A7C-0B1D2E3F4A5B").unwrap();
        assert_eq!(u.to_string(), "UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b");
        assert_eq!(
            u.device(),
            "/dev/disk/by-uuid/3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b"
        );
        assert_eq!(u.refind_volume(), None);
        let p = BootVolume::parse("PARTUUID=8c1f0e2a-4b3d-4c5e-9f6a-7b8c9d0e1f2a").unwrap();
        assert_eq!(
            p.device(),
            "/dev/disk/by-partuuid/8c1f0e2a-4b3d-4c5e-9f6a-7b8c9d0e1f2a"
        );
        assert_eq!(
            p.refind_volume(),
            Some("8c1f0e2a-4b3d-4c5e-9f6a-7b8c9d0e1f2a")
        );
        let l = BootVolume::parse("kinoite-boot").unwrap();
        assert_eq!(l, BootVolume::parse("LABEL=kinoite-boot").unwrap());
        assert_eq!(l.device(), "/dev/disk/by-label/kinoite-boot");
        assert_eq!(l.refind_volume(), Some("kinoite-boot"));
        assert!(BootVolume::parse("UUID=7A3B-1C2D").is_ok());
    }

    #[test]
    fn bad_values_say_what_to_write() {
        for bad in [
            "UUID=nope",
            "PARTUUID=7A3B-1C2D",
            "",
            "my boot",
            "a\"b",
            "LABEL=",
        ] {
            let e = BootVolume::parse(bad).unwrap_err();
            assert!(e.contains("UUID=<uuid>"), "{bad}: {e}");
        }
    }
}
