//! The LUKS2 pool and its btrfs subvolumes: unlock it, make the file system
//! (fresh disk only), mount the top level, create the subvolumes NixOS owns
//! and the shared ones that are missing, unmount the top level.

use super::layout::Layout;
use super::step::{argv, mkdir, mount, run, umount};
use super::{Action, DataOwner, Mode, Probe, Stdin, Step, WriteKind};
use crate::spec::{Subvolume, SubvolumeOwner};

/// `cryptsetup open`, the passphrase on standard input; skipped when the
/// mapping is already open on this very device.
pub(super) fn open(l: &Layout) -> Step {
    let luks = &l.settings.storage.luks;
    let mut open = argv(&["cryptsetup", "open", "--type", "luks2"]);
    if luks.allow_discards {
        open.push("--allow-discards".into());
    }
    open.extend([
        "--key-file".into(),
        "-".into(),
        l.luks_device.to_string(),
        luks.name.clone(),
    ]);
    Step::new(
        "luks-open",
        format!("Unlock {} as {}", l.luks_device, l.mapper),
        Action::Run {
            argv: open,
            stdin: Stdin::Passphrase,
        },
    )
    .probe(Probe::MapperOpen {
        name: luks.name.clone(),
        device: l.luks_device.clone(),
    })
    .kinoite(l.pool_access())
    .undo(argv(&["cryptsetup", "close", &luks.name]))
}

/// The btrfs file system inside the container: a fresh disk only.
pub(super) fn mkfs(l: &Layout) -> Option<Step> {
    (l.req.mode == Mode::Fresh).then(|| {
        let label = &l.settings.storage.btrfs_label;
        Step::new(
            "mkfs-btrfs",
            format!("Create the btrfs file system {label:?} in {}", l.mapper),
            run(argv(&[
                "mkfs.btrfs",
                "--force",
                "--label",
                label,
                l.mapper.as_str(),
            ])),
        )
        .writes(WriteKind::Filesystem, l.mapper.clone(), DataOwner::Disk)
        .destructive()
    })
}

/// The step creating subvolume `s` below the pool's top level; none for
/// Kinoite's, which are never created or touched.
fn subvolume(l: &Layout, s: &Subvolume) -> Option<Step> {
    let group = &l.settings.storage.shared_group;
    let path = l.top.join(&s.name);
    let (title, action) = match s.owner {
        SubvolumeOwner::Kinoite => return None,
        SubvolumeOwner::Nixos => (
            format!("Create subvolume {}", s.name),
            run(argv(&["btrfs", "subvolume", "create", path.as_str()])),
        ),
        SubvolumeOwner::Shared => (
            format!(
                "Create the shared subvolume {} if it is missing (group {} gid {}, mode {})",
                s.name,
                group.name,
                group.gid,
                crate::install::shared::MODE
            ),
            run(crate::install::shared::create_argv(&l.top, &s.name, group)),
        ),
    };
    let step = Step::new(format!("subvolume:{}", s.name), title, action)
        .writes(WriteKind::Subvolume, path.clone(), s.owner.into())
        .probe(Probe::Subvolume { path: path.clone() })
        .kinoite(l.pool_access());
    Some(match s.owner {
        // NixOS's own: one already there is someone else's (refused unless
        // --force), and an undo deletes what this install made.
        SubvolumeOwner::Nixos => step
            .undo(argv(&["btrfs", "subvolume", "delete", path.as_str()]))
            .conflict_if_present(),
        // Shared, on both layouts: created when missing (a stock Kinoite
        // has no @shared), never formatted or overwritten — the probe skips
        // one that exists — and never deleted by an undo.
        SubvolumeOwner::Shared | SubvolumeOwner::Kinoite => step,
    })
}

/// Mount the top level, create the subvolumes, unmount it again.
pub(super) fn subvolumes(l: &Layout) -> Vec<Step> {
    let storage = &l.settings.storage;
    let top = &l.top;
    let mut steps = vec![
        mkdir("mkdir-pool-top", top, DataOwner::Installer),
        mount(
            "mount-pool-top",
            format!("Mount the pool's top level at {top} to manage subvolumes"),
            "btrfs",
            "subvolid=5",
            &l.mapper,
            top,
        )
        .kinoite(l.pool_access()),
    ];
    // NixOS's own first, then the shared ones; Kinoite's never.
    for owner in [SubvolumeOwner::Nixos, SubvolumeOwner::Shared] {
        steps.extend(
            storage
                .subvolumes
                .iter()
                .filter(|s| s.owner == owner)
                .filter_map(|s| subvolume(l, s)),
        );
    }
    steps.push(umount(
        "umount-pool-top",
        format!("Unmount the pool's top level {top}"),
        top,
    ));
    steps
}

#[cfg(test)]
mod tests {
    use super::super::testing::{argv as argv_of, changed, ids, request, settings};
    use super::super::KinoiteAccess;
    use super::*;

    #[test]
    fn open_passes_discards_and_is_skipped_when_open_on_this_device() {
        let s = settings();
        let r = request(Mode::DualBoot);
        let step = open(&Layout::new(&s, &r).unwrap());
        let Action::Run { argv, stdin } = &step.action else {
            panic!()
        };
        assert!(argv.contains(&"--allow-discards".to_string()));
        assert_eq!(*stdin, Stdin::Passphrase);
        assert_eq!(step.kinoite, KinoiteAccess::Pool);
        assert_eq!(
            step.probe,
            Some(Probe::MapperOpen {
                name: "cryptroot".into(),
                device: "/dev/disk/by-partlabel/pool".into()
            })
        );
        let s = changed(|s| s.storage.luks.allow_discards = false);
        let step = open(&Layout::new(&s, &r).unwrap());
        assert!(!format!("{:?}", step.action).contains("--allow-discards"));
    }

    #[test]
    fn only_a_fresh_disk_gets_a_file_system() {
        let s = settings();
        let (f, d) = (request(Mode::Fresh), request(Mode::DualBoot));
        assert!(mkfs(&Layout::new(&s, &f).unwrap()).is_some_and(|s| s.destructive));
        assert!(mkfs(&Layout::new(&s, &d).unwrap()).is_none());
    }

    #[test]
    fn nixos_subvolumes_conflict_shared_ones_are_kept_kinoites_untouched() {
        let s = settings();
        let r = request(Mode::DualBoot);
        let steps = subvolumes(&Layout::new(&s, &r).unwrap());
        assert_eq!(
            ids(&steps),
            [
                "mkdir-pool-top",
                "mount-pool-top",
                "subvolume:@",
                "subvolume:@home",
                "subvolume:@nix",
                "subvolume:@snapshots",
                "subvolume:@shared",
                "umount-pool-top"
            ]
        );
        let get = |id: &str| steps.iter().find(|s| s.id == id).unwrap();
        assert!(get("subvolume:@home").conflict_if_present);
        assert!(get("subvolume:@home").undo.is_some());
        assert!(!get("subvolume:@shared").conflict_if_present);
        assert!(
            get("subvolume:@shared").undo.is_none(),
            "shared data is never deleted"
        );
        assert_eq!(argv_of(&steps, "subvolume:@shared")[0], "sh");
        assert!(steps.iter().all(|s| !format!("{s:?}").contains("@root")));
    }
}
