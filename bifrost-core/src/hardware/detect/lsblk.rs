//! Block devices as `lsblk --json -O` describes them, and the names bifrost
//! gives them in host settings.

use crate::spec;
use serde::Deserialize;

/// GPT partition type of an EFI system partition.
pub(super) const ESP_PARTTYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

#[derive(Debug, Deserialize)]
struct LsblkOutput {
    blockdevices: Vec<Dev>,
}

/// Parse `lsblk --json -O` output into its device trees.
pub(super) fn parse(text: &str) -> Result<Vec<Dev>, serde_json::Error> {
    Ok(serde_json::from_str::<LsblkOutput>(text)?.blockdevices)
}

/// One block device (disk, partition, opened LUKS mapping…) and the ones on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Dev {
    pub name: String,
    pub path: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub fstype: Option<String>,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub partlabel: Option<String>,
    pub partuuid: Option<String>,
    pub parttype: Option<String>,
    pub mountpoints: Vec<Option<String>>,
    pub fsroots: Vec<Option<String>>,
    pub children: Vec<Dev>,
}

/// Every device of the trees, parents before their children.
pub(super) fn flatten(devices: &[Dev]) -> Vec<&Dev> {
    fn walk<'a>(d: &'a Dev, out: &mut Vec<&'a Dev>) {
        out.push(d);
        for c in &d.children {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    for d in devices {
        walk(d, &mut out);
    }
    out
}

impl Dev {
    pub(super) fn fstype(&self) -> &str {
        self.fstype.as_deref().unwrap_or("")
    }

    pub(super) fn is(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }

    /// Mount points and the subvolume (file-system root) mounted at each,
    /// with escapes undone: lsblk passes on what mountinfo wrote (`\040`
    /// for a space), and older lsblk writes `\x20`.
    pub(super) fn mounts(&self) -> impl Iterator<Item = (String, Option<String>)> + '_ {
        self.mountpoints.iter().enumerate().filter_map(|(i, mp)| {
            let mp = crate::mounts::unescape_octal_or_hex(mp.as_deref()?);
            let root = self
                .fsroots
                .get(i)
                .and_then(|r| r.as_deref())
                .map(crate::mounts::unescape_octal_or_hex);
            Some((mp, root))
        })
    }

    pub(super) fn dev_path(&self) -> String {
        self.path
            .clone()
            .unwrap_or_else(|| format!("/dev/{}", self.name))
    }

    /// The most stable `/dev/disk/by-*` name: the partition label when udev
    /// can spell it plainly, else the file-system UUID, else the partition UUID.
    pub(super) fn stable_path(&self) -> String {
        if let Some(l) = self.partlabel.as_deref().filter(|l| plain_name(l)) {
            return format!("/dev/disk/by-partlabel/{l}");
        }
        if let Some(u) = self.uuid.as_deref().filter(|u| plain_name(u)) {
            return format!("/dev/disk/by-uuid/{u}");
        }
        if let Some(u) = self.partuuid.as_deref().filter(|u| plain_name(u)) {
            return format!("/dev/disk/by-partuuid/{u}");
        }
        self.dev_path()
    }

    /// How the settings name Kinoite's /boot: file-system UUID first (what
    /// Fedora's fstab uses and what survives relabelling), then file-system
    /// label, then partition GUID (a partition label is no `/dev/disk/by-label`
    /// name, so it is not offered).
    pub(super) fn boot_volume(&self) -> Option<spec::BootVolume> {
        let forms = [
            self.uuid.as_ref().map(|u| format!("UUID={u}")),
            self.label.as_ref().map(|l| format!("LABEL={l}")),
            self.partuuid.as_ref().map(|u| format!("PARTUUID={u}")),
        ];
        forms
            .into_iter()
            .flatten()
            .find_map(|f| spec::BootVolume::parse(&f).ok())
    }
}

/// udev escapes anything else in `/dev/disk/by-*` names (`\x20` for a space).
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_only_in_by_paths() {
        let d = Dev {
            name: "sda1".into(),
            partlabel: Some("EFI System Partition".into()),
            uuid: Some("ABCD-1234".into()),
            ..Dev::default()
        };
        assert_eq!(d.stable_path(), "/dev/disk/by-uuid/ABCD-1234");
        let d = Dev {
            name: "vda2".into(),
            ..Dev::default()
        };
        assert_eq!(d.stable_path(), "/dev/vda2");
    }

    #[test]
    fn boot_volume_prefers_the_file_system_uuid() {
        let mut d = Dev {
            uuid: Some("0d6e2b9c-4a1f-4c3e-9b7d-8e5f1a2c3d4e".into()),
            label: Some("fedora-boot".into()),
            ..Dev::default()
        };
        assert_eq!(
            d.boot_volume().unwrap().to_string(),
            "UUID=0d6e2b9c-4a1f-4c3e-9b7d-8e5f1a2c3d4e"
        );
        d.uuid = None;
        assert_eq!(d.boot_volume().unwrap().to_string(), "LABEL=fedora-boot");
    }

    #[test]
    fn mounts_pair_mount_points_with_subvolumes() {
        let d = Dev {
            mountpoints: vec![Some("/my\\x20home".into()), None, Some("/".into())],
            fsroots: vec![Some("/@home".into()), None, Some("/@".into())],
            ..Dev::default()
        };
        let m: Vec<_> = d.mounts().collect();
        assert_eq!(
            m,
            [
                ("/my home".to_string(), Some("/@home".to_string())),
                ("/".to_string(), Some("/@".to_string()))
            ]
        );
    }

    #[test]
    fn trees_flatten_parents_first() {
        let text = r#"{"blockdevices":[{"name":"vda","type":"disk","children":[
            {"name":"vda1","type":"part"},
            {"name":"vda2","type":"part","children":[{"name":"pool","type":"crypt"}]}]}]}"#;
        let devs = parse(text).unwrap();
        let names: Vec<_> = flatten(&devs).iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["vda", "vda1", "vda2", "pool"]);
    }
}
