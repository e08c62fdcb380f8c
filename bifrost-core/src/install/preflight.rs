//! Checks before anything is written: the tools are there, the disk is a
//! whole disk that nothing uses, the partitions named for a dual boot belong
//! to it. Reading `/proc` and `/sys` happens here; the decisions are pure.

use super::plan::{Action, Mode, Plan};
use camino::{Utf8Path, Utf8PathBuf};

/// One mounted file system, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `major:minor` of the mounted device (anonymous for btrfs).
    pub dev: String,
    pub mount_point: Utf8PathBuf,
    /// The mount source (`/dev/mapper/cryptroot`, `tmpfs`, …).
    pub source: String,
}

/// The block devices that make up a disk: itself, its partitions, and what
/// is stacked on them (dm-crypt mappings), by kernel name and `major:minor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskDevices {
    pub disk: String,
    pub names: Vec<String>,
    pub devs: Vec<String>,
    pub partitions: Vec<String>,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("{dir} does not exist: the installer was not booted through UEFI, so rEFInd cannot be registered in the firmware's boot menu; boot it in UEFI mode, or pass --no-nvram (and set boot.removable so the firmware finds EFI/BOOT/BOOTX64.EFI)")]
    NoEfivars { dir: String },
    #[error(
        "{disk}: no such block device; give the whole disk, such as /dev/nvme0n1 (see `lsblk`)"
    )]
    NoDisk { disk: String },
    #[error("{disk} is {what}, not a block device; give the whole disk, such as /dev/nvme0n1 (see `lsblk`); to install into an image file, attach it first with `losetup --find --show --partscan {disk}`")]
    NotBlock { disk: String, what: &'static str },
    #[error("{disk} is a partition; give the whole disk ({parent}) — bifrost picks the partitions itself")]
    IsPartition { disk: String, parent: String },
    #[error("{disk} holds the running system ({source_dev} is mounted at {mount_point}); boot the installer from a USB stick and install from there")]
    RunningSystem {
        disk: String,
        source_dev: String,
        mount_point: String,
    },
    #[error("{disk} is in use: {source_dev} is mounted at {mount_point}; unmount it first (`umount -R {mount_point}`)")]
    Mounted {
        disk: String,
        source_dev: String,
        mount_point: String,
    },
    #[error("{disk} is in use as swap ({device}); run `swapoff {device}` first")]
    Swap { disk: String, device: String },
    #[error("{device} ({what}) is not a partition of {disk}; pass the right one with {flag}")]
    ForeignPartition {
        device: String,
        what: &'static str,
        disk: String,
        flag: &'static str,
    },
    #[error("missing programs: {}\n  on NixOS or the bifrost installer: nix-shell -p {}\n  on Debian/Ubuntu: apt-get install {}", .missing.join(", "), .nix.join(" "), .debian.join(" "))]
    Programs {
        missing: Vec<String>,
        nix: Vec<String>,
        debian: Vec<String>,
    },
    #[error("{path}: no such rEFInd binary ({flag}); point it at refind_x64.efi (nixpkgs: `${{pkgs.refind}}/share/refind/refind_x64.efi`)")]
    NoRefind { path: String, flag: &'static str },
    #[error("{device}: Kinoite's /boot is not there; pass it with --kinoite-boot-device (see `lsblk -o NAME,LABEL,PARTLABEL,FSTYPE`)")]
    NoKinoiteBoot { device: String },
    #[error("--sb-keys {dir}: {problem}; give the folder that holds {}", .files.join(" and "))]
    SbKeys {
        dir: String,
        problem: String,
        files: Vec<String>,
    },
    #[error("installing needs root: run it with sudo (or as root on the installer)")]
    NotRoot,
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
}

/// Parse `/proc/self/mountinfo` (the one parser lives in [`crate::mounts`]).
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    entries(crate::mounts::parse(text))
}

fn entries(mounts: Vec<crate::mounts::Mount>) -> Vec<MountEntry> {
    mounts
        .into_iter()
        .map(|m| MountEntry {
            dev: m.dev.to_string(),
            mount_point: m.mount_point.into(),
            source: m.source,
        })
        .collect()
}

/// Mount points whose loss would take the running system down.
fn is_system_mount(p: &Utf8Path) -> bool {
    [
        "/",
        "/nix",
        "/nix/store",
        "/boot",
        "/boot/efi",
        "/usr",
        "/home",
    ]
    .iter()
    .any(|s| p == Utf8Path::new(s))
}

/// Is `disk` free to install to? `source_names` gives, for each mount, the
/// kernel name its source resolves to (`/dev/mapper/x` → `dm-0`). Mounts at
/// or under an `allowed` path are the install's own (a resumed run).
pub fn check_free(
    devices: &DiskDevices,
    mounts: &[MountEntry],
    source_names: &[Option<String>],
    swaps: &[String],
    allowed: &[Utf8PathBuf],
) -> Result<(), PreflightError> {
    for (m, name) in mounts.iter().zip(source_names) {
        let on_disk = devices.devs.contains(&m.dev)
            || name.as_ref().is_some_and(|n| devices.names.contains(n));
        if !on_disk {
            continue;
        }
        if is_system_mount(&m.mount_point) {
            return Err(PreflightError::RunningSystem {
                disk: devices.disk.clone(),
                source_dev: m.source.clone(),
                mount_point: m.mount_point.to_string(),
            });
        }
        if allowed.iter().any(|a| m.mount_point.starts_with(a)) {
            continue;
        }
        return Err(PreflightError::Mounted {
            disk: devices.disk.clone(),
            source_dev: m.source.clone(),
            mount_point: m.mount_point.to_string(),
        });
    }
    for s in swaps {
        let name = Utf8Path::new(s).file_name().unwrap_or(s);
        if devices.names.iter().any(|n| n == name) {
            return Err(PreflightError::Swap {
                disk: devices.disk.clone(),
                device: s.clone(),
            });
        }
    }
    Ok(())
}

fn read(path: &Utf8Path) -> Result<String, PreflightError> {
    Ok(std::fs::read_to_string(path).map_err(crate::fsutil::io_err(path, "read"))?)
}

/// Kernel name of a device path (`/dev/disk/by-partlabel/pool` → `nvme0n1p2`,
/// `/dev/mapper/cryptroot` → `dm-0`), found through the node's device number
/// so that it works whether `/dev/mapper` holds symlinks (udev) or nodes.
pub fn kernel_name(dev: &Utf8Path) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(dev).ok()?;
    if meta.file_type().is_block_device() {
        let rdev = meta.rdev();
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
        let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
        if let Ok(p) = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")) {
            if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
                return Some(n.to_string());
            }
        }
    }
    let real = std::fs::canonicalize(dev).ok()?;
    Some(real.file_name()?.to_str()?.to_string())
}

/// Find the disk, its partitions and what sits on them in `/sys`.
pub fn disk_devices(sys: &Utf8Path, disk: &Utf8Path) -> Result<DiskDevices, PreflightError> {
    let no_disk = || PreflightError::NoDisk {
        disk: disk.to_string(),
    };
    if let Ok(m) = std::fs::metadata(disk) {
        use std::os::unix::fs::FileTypeExt;
        if !m.file_type().is_block_device() {
            return Err(PreflightError::NotBlock {
                disk: disk.to_string(),
                what: if m.is_file() {
                    "a regular file"
                } else {
                    crate::esp::bootjson::kind(&m)
                },
            });
        }
    }
    let name = kernel_name(disk).ok_or_else(no_disk)?;
    let class = sys.join("class/block");
    let node = class.join(&name);
    if !node.exists() {
        return Err(no_disk());
    }
    if node.join("partition").exists() {
        let parent = std::fs::canonicalize(&node)
            .ok()
            .and_then(|p| {
                p.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        return Err(PreflightError::IsPartition {
            disk: disk.to_string(),
            parent: format!("/dev/{parent}"),
        });
    }
    let mut out = DiskDevices {
        disk: disk.to_string(),
        ..Default::default()
    };
    let mut queue = vec![name.clone()];
    if let Ok(rd) = std::fs::read_dir(&node) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if node.join(&n).join("partition").exists() {
                out.partitions.push(n.clone());
                queue.push(n);
            }
        }
    }
    out.partitions.sort();
    while let Some(n) = queue.pop() {
        if out.names.contains(&n) {
            continue;
        }
        if let Ok(dev) = read(&class.join(&n).join("dev")) {
            out.devs.push(dev.trim().to_string());
        }
        if let Ok(rd) = std::fs::read_dir(class.join(&n).join("holders")) {
            queue.extend(
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        out.names.push(n);
    }
    Ok(out)
}

/// Refuse a disk that is mounted, is swap, or holds the running system.
pub fn check_disk(plan: &Plan, allowed: &[Utf8PathBuf]) -> Result<DiskDevices, PreflightError> {
    let devices = disk_devices(Utf8Path::new("/sys"), &plan.disk)?;
    let root = Utf8Path::new("/");
    let mounts = entries(
        crate::mounts::read(root)
            .map_err(crate::fsutil::io_err(crate::mounts::path(root), "read"))?,
    );
    let names: Vec<Option<String>> = mounts
        .iter()
        .map(|m| {
            m.source
                .starts_with('/')
                .then(|| kernel_name(Utf8Path::new(&m.source)))
                .flatten()
        })
        .collect();
    let swaps: Vec<String> = read(Utf8Path::new("/proc/swaps"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    check_free(&devices, &mounts, &names, &swaps, allowed)?;
    if plan.mode == Mode::DualBoot {
        for (dev, what, flag) in [
            (&plan.esp_device, "the ESP", "--esp-device"),
            (&plan.luks_device, "the LUKS2 pool", "--luks-device"),
        ] {
            let ok = kernel_name(dev).is_some_and(|n| devices.partitions.contains(&n));
            if !ok {
                return Err(PreflightError::ForeignPartition {
                    device: dev.to_string(),
                    what,
                    disk: plan.disk.to_string(),
                    flag,
                });
            }
        }
        if let Some(dev) = plan.kinoite_boot_device.as_ref().filter(|d| !d.exists()) {
            return Err(PreflightError::NoKinoiteBoot {
                device: dev.to_string(),
            });
        }
    }
    Ok(devices)
}

/// The folder `--sb-keys` names is a folder (not a link out of it) holding
/// `files` as regular files: checked before the first step, since the keys
/// are copied only after `nixos-install`.
pub fn check_sb_keys(dir: &Utf8Path, files: &[String]) -> Result<(), PreflightError> {
    let refuse = |problem: String| PreflightError::SbKeys {
        dir: dir.to_string(),
        problem,
        files: files.to_vec(),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refuse("not a folder".into())),
        Err(e) => return Err(refuse(format!("cannot open it ({e})"))),
    }
    let missing: Vec<&str> = files
        .iter()
        .filter(|f| !std::fs::metadata(dir.join(f)).is_ok_and(|m| m.is_file()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!("no file {}", missing.join(", no file "))));
    }
    Ok(())
}

/// Partitioning, cryptsetup and mounting need root; say so before anything else fails.
pub fn check_root() -> Result<(), PreflightError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(PreflightError::NotRoot)
    }
}

/// nixpkgs attribute and Debian package of each program a plan runs.
fn package_of(program: &str) -> (&'static str, &'static str) {
    match program {
        "sgdisk" => ("gptfdisk", "gdisk"),
        "cryptsetup" => ("cryptsetup", "cryptsetup-bin"),
        "mkfs.btrfs" | "btrfs" => ("btrfs-progs", "btrfs-progs"),
        "mkfs.vfat" => ("dosfstools", "dosfstools"),
        "nixos-install" => (
            "nixos-install-tools",
            "(NixOS only: boot the bifrost installer)",
        ),
        "mount" | "umount" => ("util-linux", "mount"),
        "efibootmgr" => ("efibootmgr", "efibootmgr"),
        // The shared-subvolume and flake-copy steps are small POSIX scripts.
        "sh" => ("bash", "dash"),
        _ => ("coreutils", "coreutils"),
    }
}

/// Find `program` on `PATH`.
pub fn which(program: &str) -> Option<Utf8PathBuf> {
    let path = std::env::var("PATH").ok()?;
    path.split(':')
        .map(|d| Utf8Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// The NVRAM registration comes last, after the long nixos-install: a plan
/// that registers needs a UEFI boot (efivarfs), checked before the first step.
pub fn check_nvram(plan: &Plan) -> Result<(), PreflightError> {
    let registers = plan.steps.iter().any(|s| {
        matches!(&s.action, Action::Run { argv, .. } if argv[0] == "bifrost" && argv.iter().any(|a| a == "--nvram"))
    });
    let dir = crate::esp::nvram::EFIVARS;
    if !registers {
        return Ok(());
    }
    if !Utf8Path::new(dir).is_dir() {
        return Err(PreflightError::NoEfivars { dir: dir.into() });
    }
    if which("efibootmgr").is_none() {
        let (nix, debian) = package_of("efibootmgr");
        return Err(PreflightError::Programs {
            missing: vec!["efibootmgr".into()],
            nix: vec![nix.into()],
            debian: vec![debian.into()],
        });
    }
    Ok(())
}

/// Every program the plan runs that is not on `PATH` (bifrost itself excepted).
pub fn check_programs(plan: &Plan) -> Result<(), PreflightError> {
    let mut missing: Vec<String> = Vec::new();
    for s in &plan.steps {
        if let Action::Run { argv, .. } = &s.action {
            if let Some(w) = argv.windows(2).find(|w| w[0] == "--refind-efi") {
                if !Utf8Path::new(&w[1]).is_file() {
                    return Err(PreflightError::NoRefind {
                        path: w[1].clone(),
                        flag: "--refind-efi",
                    });
                }
            }
            let p = argv[0].as_str();
            if p != "bifrost" && which(p).is_none() && !missing.iter().any(|m| m == p) {
                missing.push(p.to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut nix: Vec<String> = missing
        .iter()
        .map(|m| package_of(m).0.to_string())
        .collect();
    let mut debian: Vec<String> = missing
        .iter()
        .map(|m| package_of(m).1.to_string())
        .collect();
    nix.dedup();
    debian.dedup();
    Err(PreflightError::Programs {
        missing,
        nix,
        debian,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_not_called_missing() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let p = Utf8Path::from_path(f.path()).unwrap();
        let e = disk_devices(Utf8Path::new("/sys"), p).unwrap_err();
        assert!(matches!(e, PreflightError::NotBlock { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("is a regular file, not a block device"),
            "{msg}"
        );
        assert!(!msg.contains("no such"), "{msg}");
        let e = disk_devices(Utf8Path::new("/sys"), Utf8Path::new("/nonexistent/sdq")).unwrap_err();
        assert!(matches!(e, PreflightError::NoDisk { .. }), "{e}");
    }

    const MOUNTINFO: &str = "\
22 1 259:3 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p3 rw
30 22 0:27 / /mnt rw,relatime shared:5 - btrfs /dev/mapper/cryptroot rw,subvol=/@
31 22 8:17 / /media/usb\\040stick rw - vfat /dev/sdb1 rw
";

    fn disk(names: &[&str], devs: &[&str]) -> DiskDevices {
        DiskDevices {
            disk: "/dev/x".into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            devs: devs.iter().map(|s| s.to_string()).collect(),
            partitions: vec![],
        }
    }

    #[test]
    fn parses_mountinfo_with_escapes() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 3);
        assert_eq!(m[2].mount_point, "/media/usb stick");
        assert_eq!(m[1].source, "/dev/mapper/cryptroot");
        assert_eq!(m[0].dev, "259:3");
    }

    #[test]
    fn refuses_the_disk_of_the_running_system() {
        let m = parse_mountinfo(MOUNTINFO);
        let names = vec![
            Some("nvme0n1p3".into()),
            Some("dm-0".into()),
            Some("sdb1".into()),
        ];
        let d = disk(&["nvme0n1", "nvme0n1p3"], &["259:0", "259:3"]);
        let e = check_free(&d, &m, &names, &[], &[]).unwrap_err();
        assert!(matches!(e, PreflightError::RunningSystem { .. }), "{e}");
        assert!(e.to_string().contains("holds the running system"));
    }

    #[test]
    fn refuses_a_mounted_disk_unless_the_mount_is_our_own_resume() {
        let m = parse_mountinfo(MOUNTINFO);
        let names = vec![
            Some("nvme0n1p3".into()),
            Some("dm-0".into()),
            Some("sdb1".into()),
        ];
        // The btrfs mount has an anonymous dev: only the source name finds it.
        let d = disk(&["sda", "sda2", "dm-0"], &["8:0", "8:2", "254:0"]);
        let e = check_free(&d, &m, &names, &[], &[]).unwrap_err();
        assert!(matches!(e, PreflightError::Mounted { .. }), "{e}");
        assert!(e.to_string().contains("umount -R /mnt"), "{e}");
        check_free(&d, &m, &names, &[], &["/mnt".into()]).unwrap();
        let usb = disk(&["sdb", "sdb1"], &["8:16", "8:17"]);
        let e = check_free(&usb, &m, &names, &[], &[]).unwrap_err();
        assert!(e.to_string().contains("/media/usb stick"), "{e}");
    }

    #[test]
    fn refuses_swap_and_accepts_a_free_disk() {
        let m = parse_mountinfo(MOUNTINFO);
        let names = vec![None, None, None];
        let d = disk(&["sdc", "sdc1"], &["8:32", "8:33"]);
        check_free(&d, &m, &names, &[], &[]).unwrap();
        let e = check_free(&d, &m, &names, &["/dev/sdc1".into()], &[]).unwrap_err();
        assert!(matches!(e, PreflightError::Swap { .. }), "{e}");
    }
}
