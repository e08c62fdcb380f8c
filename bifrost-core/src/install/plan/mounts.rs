//! The new system's tree under the target: each subvolume NixOS mounts,
//! parents before children, then the ESP. Beside Kinoite, the shared
//! subvolumes are mounted read-only and no mount point may be created inside
//! data NixOS must not write.

use super::layout::Layout;
use super::step::{mkdir, mount, under};
use super::{DataOwner, KinoiteAccess, Mode, PlanError, Step};
use crate::spec::{Subvolume, SubvolumeOwner};
use camino::{Utf8Path, Utf8PathBuf};

/// The subvolumes mounted on the new system, parents before children.
fn in_mount_order(subvolumes: &[Subvolume]) -> Vec<(&Subvolume, &Utf8Path)> {
    let mut mounted: Vec<(&Subvolume, &Utf8Path)> = subvolumes
        .iter()
        .filter(|s| s.owner != SubvolumeOwner::Kinoite)
        .filter_map(|s| Some((s, s.mount_point.as_deref()?)))
        .collect();
    mounted.sort_by_key(|(_, mp)| (mp.components().count(), mp.to_string()));
    mounted
}

/// Whose data a directory at `p` lands in: the deepest mount above it.
fn owner_of(mounts: &[(Utf8PathBuf, DataOwner)], p: &Utf8Path) -> DataOwner {
    mounts
        .iter()
        .filter(|(m, _)| p.starts_with(m))
        .max_by_key(|(m, _)| m.components().count())
        .map(|(_, o)| *o)
        .unwrap_or(DataOwner::Installer)
}

/// Create each mount point and mount each subvolume, then the ESP.
pub(super) fn steps(l: &Layout) -> Result<Vec<Step>, PlanError> {
    let target = l.target();
    let dual = l.req.mode == Mode::DualBoot;
    let mut steps = Vec::new();
    let mut mounts: Vec<(Utf8PathBuf, DataOwner)> = Vec::new();
    for (s, mp) in in_mount_order(&l.settings.storage.subvolumes) {
        let at = under(target, mp);
        let data = owner_of(&mounts, &at);
        if dual && matches!(data, DataOwner::Shared | DataOwner::Kinoite) {
            return Err(super::settings_err(
                "storage.subvolumes",
                format!(
                    "the mount point {mp} of {} lies inside a subvolume NixOS must not write to; move it out",
                    s.name
                ),
            ));
        }
        steps.push(mkdir(format!("mkdir:{mp}"), &at, data));
        let mut opts = vec![format!("subvol={}", s.name)];
        opts.extend(s.mount_options.iter().cloned());
        // Beside Kinoite the shared data stays read-only for the whole
        // install: the kernel, not just the plan, keeps it unchanged.
        let shared_ro = dual && s.owner == SubvolumeOwner::Shared;
        if shared_ro && !opts.iter().any(|o| o == "ro") {
            opts.push("ro".into());
        }
        let step = mount(
            format!("mount:{mp}"),
            format!("Mount {} at {at}", s.name),
            "btrfs",
            &opts.join(","),
            &l.mapper,
            &at,
        );
        steps.push(if shared_ro {
            step.kinoite(KinoiteAccess::ReadOnly)
        } else {
            step
        });
        mounts.push((at, s.owner.into()));
    }
    let esp_at = &l.esp_at;
    steps.push(mkdir("mkdir-esp", esp_at, owner_of(&mounts, esp_at)));
    steps.push(mount(
        "mount-esp",
        format!("Mount the ESP {} at {esp_at}", l.esp_device),
        "vfat",
        &crate::hardware::layout::ESP_OPTIONS.join(","),
        &l.esp_device,
        esp_at,
    ));
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{argv, changed, ids, request, settings};
    use super::*;

    #[test]
    fn parents_are_mounted_before_children_and_kinoites_never() {
        let s = settings();
        let r = request(Mode::Fresh);
        let steps = steps(&Layout::new(&s, &r).unwrap()).unwrap();
        assert_eq!(
            ids(&steps),
            [
                "mkdir:/",
                "mount:/",
                "mkdir:/.snapshots",
                "mount:/.snapshots",
                "mkdir:/home",
                "mount:/home",
                "mkdir:/nix",
                "mount:/nix",
                "mkdir:/shared",
                "mount:/shared",
                "mkdir-esp",
                "mount-esp"
            ]
        );
        // The ESP's mount point is made inside the root subvolume.
        let esp_dir = steps.iter().find(|s| s.id == "mkdir-esp").unwrap();
        assert_eq!(esp_dir.writes[0].data, DataOwner::Nixos);
        assert_eq!(esp_dir.writes[0].path, "/mnt/boot/efi");
        assert_eq!(steps[0].writes[0].data, DataOwner::Installer);
        // Fresh: the shared subvolume is NixOS's to write.
        assert!(!argv(&steps, "mount:/shared")[4].ends_with(",ro"));
    }

    #[test]
    fn beside_kinoite_shared_data_is_read_only_and_never_a_parent() {
        let s = settings();
        let r = request(Mode::DualBoot);
        let steps = steps(&Layout::new(&s, &r).unwrap()).unwrap();
        let shared = steps.iter().find(|s| s.id == "mount:/shared").unwrap();
        assert_eq!(shared.kinoite, KinoiteAccess::ReadOnly);
        assert_eq!(
            argv(&steps, "mount:/shared")[4],
            "subvol=@shared,compress=zstd,noatime,ro"
        );
        let s = changed(|s| s.storage.subvolumes[1].mount_point = Some("/shared/home".into()));
        let e = super::steps(&Layout::new(&s, &r).unwrap()).unwrap_err();
        assert!(e.to_string().contains("/shared/home of @home"), "{e}");
        // On a fresh disk the same layout is NixOS's own.
        let f = request(Mode::Fresh);
        super::steps(&Layout::new(&s, &f).unwrap()).unwrap();
    }
}
