//! rEFInd's `volume` for Kinoite's `/boot`, from the settings' form.
//!
//! rEFInd finds a volume by file-system label, partition label or partition
//! GUID, not by file-system UUID (refind.conf-sample: "but NOT yet by
//! filesystem UUID number"). A `UUID=` volume is therefore looked up where
//! the disk is attached: udev's `/dev/disk/by-uuid/<uuid>` and
//! `/dev/disk/by-partuuid/<guid>` links name the same partition, and that
//! partition's GUID is what rEFInd gets.

use crate::spec::BootVolume;
use camino::{Utf8Path, Utf8PathBuf};

/// Errors of the volume lookup.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("--kinoite-volume: {0}")]
    Parse(String),
    #[error("--kinoite-volume {spec}: no file system with that UUID is attached ({link} does not exist); run this where Kinoite's disk is, or give PARTUUID=<partition GUID> (`lsblk -no PARTUUID <device>`)")]
    NoSuchUuid { spec: String, link: Utf8PathBuf },
    #[error("--kinoite-volume {spec}: {device} has no GPT partition GUID in {dir} (rEFInd finds volumes by label or partition GUID, not by file-system UUID); label it (`e2label {device} kinoite-boot`) and use LABEL=kinoite-boot")]
    NoPartUuid {
        spec: String,
        device: Utf8PathBuf,
        dir: Utf8PathBuf,
    },
}

/// The value for rEFInd's `volume`, looking a file-system UUID up below
/// `dev_disk` (`/dev/disk` on a real machine).
pub fn refind_volume(spec: &str, dev_disk: &Utf8Path) -> Result<String, VolumeError> {
    let v = BootVolume::parse(spec).map_err(VolumeError::Parse)?;
    if let Some(direct) = v.refind_volume() {
        return Ok(direct.to_owned());
    }
    let BootVolume::Uuid(uuid) = &v else {
        unreachable!("only a file-system UUID needs a lookup")
    };
    let link = dev_disk.join("by-uuid").join(uuid);
    let device = canonical(&link).ok_or_else(|| VolumeError::NoSuchUuid {
        spec: spec.to_owned(),
        link: link.clone(),
    })?;
    let dir = dev_disk.join("by-partuuid");
    let found = dir.read_dir_utf8().ok().and_then(|entries| {
        entries.flatten().find_map(|e| {
            (canonical(e.path()).as_ref() == Some(&device)).then(|| e.file_name().to_owned())
        })
    });
    found.ok_or(VolumeError::NoPartUuid {
        spec: spec.to_owned(),
        device,
        dir,
    })
}

fn canonical(p: &Utf8Path) -> Option<Utf8PathBuf> {
    p.canonicalize_utf8().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_filesystem_uuid_becomes_its_partition_guid() {
        let t = tempfile::tempdir().unwrap();
        let dev = Utf8Path::from_path(t.path()).unwrap();
        std::fs::create_dir_all(dev.join("disk/by-uuid")).unwrap();
        std::fs::create_dir_all(dev.join("disk/by-partuuid")).unwrap();
        std::fs::write(dev.join("nvme0n1p2"), b"").unwrap();
        std::fs::write(dev.join("nvme0n1p1"), b"").unwrap();
        let uuid = "3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b";
        let guid = "8c1f0e2a-4b3d-4c5e-9f6a-7b8c9d0e1f2a";
        symlink("../../nvme0n1p2", dev.join("disk/by-uuid").join(uuid)).unwrap();
        symlink(
            "../../nvme0n1p1",
            dev.join("disk/by-partuuid/11111111-2222-3333-4444-555555555555"),
        )
        .unwrap();
        symlink("../../nvme0n1p2", dev.join("disk/by-partuuid").join(guid)).unwrap();
        let disk = dev.join("disk");
        assert_eq!(
            refind_volume(&format!("UUID={}", uuid.to_uppercase()), &disk).unwrap(),
            guid
        );
        assert_eq!(
            refind_volume("kinoite-boot", &disk).unwrap(),
            "kinoite-boot"
        );
        assert_eq!(
            refind_volume(&format!("PARTUUID={guid}"), &disk).unwrap(),
            guid
        );
        let e = refind_volume("UUID=00000000-0000-0000-0000-000000000000", &disk)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PARTUUID="), "{e}");
        std::fs::remove_file(dev.join("disk/by-partuuid").join(guid)).unwrap();
        let e = refind_volume(&format!("UUID={uuid}"), &disk)
            .unwrap_err()
            .to_string();
        assert!(e.contains("LABEL=kinoite-boot"), "{e}");
    }
}
