//! Making one step: a named constructor and the few shapes every phase
//! repeats (create a mount point, mount, unmount), so each phase states only
//! what differs.

use super::{Action, DataOwner, KinoiteAccess, Probe, Stdin, Step, Write, WriteKind};
use camino::{Utf8Path, Utf8PathBuf};

impl Step {
    /// A step that writes nothing, reaches nothing of Kinoite's, has no probe
    /// and no undo; the methods below add each.
    pub(super) fn new(id: impl Into<String>, title: impl Into<String>, action: Action) -> Step {
        Step {
            id: id.into(),
            title: title.into(),
            action,
            writes: Vec::new(),
            kinoite: KinoiteAccess::None,
            probe: None,
            destructive: false,
            conflict_if_present: false,
            undo: None,
        }
    }

    pub(super) fn writes(
        mut self,
        kind: WriteKind,
        path: impl Into<Utf8PathBuf>,
        data: DataOwner,
    ) -> Self {
        self.writes.push(Write {
            kind,
            path: path.into(),
            data,
        });
        self
    }

    pub(super) fn probe(mut self, p: Probe) -> Self {
        self.probe = Some(p);
        self
    }

    pub(super) fn kinoite(mut self, k: KinoiteAccess) -> Self {
        self.kinoite = k;
        self
    }

    pub(super) fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }

    pub(super) fn conflict_if_present(mut self) -> Self {
        self.conflict_if_present = true;
        self
    }

    pub(super) fn undo(mut self, argv: Vec<String>) -> Self {
        self.undo = Some(argv);
        self
    }
}

pub(super) fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// A program with no standard input.
pub(super) fn run(argv: Vec<String>) -> Action {
    Action::Run {
        argv,
        stdin: Stdin::Null,
    }
}

/// `target` + absolute `mount_point`.
pub(super) fn under(target: &Utf8Path, mount_point: &Utf8Path) -> Utf8PathBuf {
    let rel = mount_point.as_str().trim_start_matches('/');
    if rel.is_empty() {
        target.to_path_buf()
    } else {
        target.join(rel)
    }
}

/// `mkdir -p at`, writing a directory into `data`'s file system.
pub(super) fn mkdir(id: impl Into<String>, at: &Utf8Path, data: DataOwner) -> Step {
    Step::new(
        id,
        format!("Create the mount point {at}"),
        run(argv(&["mkdir", "-p", at.as_str()])),
    )
    .writes(WriteKind::Directory, at, data)
}

/// `mount -t fs_type -o options device at`: skipped when something is
/// mounted there already, undone by unmounting.
pub(super) fn mount(
    id: impl Into<String>,
    title: impl Into<String>,
    fs_type: &str,
    options: &str,
    device: &Utf8Path,
    at: &Utf8Path,
) -> Step {
    Step::new(
        id,
        title,
        run(argv(&[
            "mount",
            "-t",
            fs_type,
            "-o",
            options,
            device.as_str(),
            at.as_str(),
        ])),
    )
    .probe(Probe::Mounted { path: at.into() })
    .undo(argv(&["umount", at.as_str()]))
}

/// `umount at`, skipped when nothing is mounted there.
pub(super) fn umount(id: impl Into<String>, title: impl Into<String>, at: &Utf8Path) -> Step {
    Step::new(id, title, run(argv(&["umount", at.as_str()])))
        .probe(Probe::NotMounted { path: at.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_below_the_target() {
        assert_eq!(under("/mnt".into(), "/".into()), "/mnt");
        assert_eq!(under("/mnt".into(), "/boot/efi".into()), "/mnt/boot/efi");
    }

    #[test]
    fn a_mount_is_skipped_when_present_and_undone_by_unmounting() {
        let s = mount("m", "Mount", "vfat", "ro", "/dev/x".into(), "/mnt/a".into());
        assert_eq!(
            s.action,
            run(argv(&[
                "mount", "-t", "vfat", "-o", "ro", "/dev/x", "/mnt/a"
            ]))
        );
        assert_eq!(
            s.probe,
            Some(Probe::Mounted {
                path: "/mnt/a".into()
            })
        );
        assert_eq!(s.undo, Some(argv(&["umount", "/mnt/a"])));
        let u = umount("u", "Unmount", "/mnt/a".into());
        assert_eq!(
            u.probe,
            Some(Probe::NotMounted {
                path: "/mnt/a".into()
            })
        );
        assert_eq!(u.undo, None);
    }
}
