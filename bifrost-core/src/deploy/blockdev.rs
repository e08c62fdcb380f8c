//! Facts about a flash target: a regular file, or a whole-disk block device
//! with its size, removability, model, partitions and users (mounts, swap,
//! device-mapper holders).
//!
//! Everything is read from sysfs and `/proc` under a root folder (`/` in
//! production) so tests can describe a machine with a fake tree; only the
//! device node itself is `stat`ed where it is.

use crate::fsutil::io_err;
use crate::mounts::Mount;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Errors of this module: the reasons a target is refused, and I/O.
#[derive(Debug, thiserror::Error)]
pub enum BlockdevError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{path} does not exist; list the disks with `lsblk -d -o NAME,SIZE,MODEL,TRAN,RM` and give one of them")]
    NoSuchDevice { path: String },
    #[error("{path} is neither a block device nor a regular file; give a whole disk such as /dev/sdX, or a file")]
    NotADevice { path: String },
    #[error(
        "{path} is partition {name} of /dev/{disk}; flash the whole disk (/dev/{disk}) instead"
    )]
    Partition {
        path: String,
        name: String,
        disk: String,
    },
    #[error("{path} ({name}) holds the running system: {what}; refusing to overwrite it")]
    SystemDisk {
        path: String,
        name: String,
        what: String,
    },
    #[error("{path} ({name}) is in use: {what}; unmount it (`umount`, `swapoff`, close LUKS mappings) and try again")]
    Mounted {
        path: String,
        name: String,
        what: String,
    },
    #[error(
        "{path} ({name}) holds {device} bytes but the image needs {image}; use a larger device"
    )]
    TooSmall {
        path: String,
        name: String,
        device: u64,
        image: u64,
    },
    #[error("{path} ({name}) is a fixed (non-removable, non-USB) disk; pass --allow-fixed if you really mean to overwrite it")]
    FixedDisk { path: String, name: String },
}

pub use crate::mounts::DevNum;

fn dev_from_rdev(rdev: u64) -> DevNum {
    DevNum {
        major: libc::major(rdev as libc::dev_t),
        minor: libc::minor(rdev as libc::dev_t),
    }
}

/// One partition of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Kernel name, such as `sdb1`.
    pub name: String,
    pub dev: DevNum,
    pub size: u64,
}

/// A whole-disk block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// The path the user gave.
    pub path: Utf8PathBuf,
    /// Kernel name, such as `sdb`.
    pub name: String,
    pub dev: DevNum,
    /// Size in bytes.
    pub size: u64,
    /// sysfs `removable` is 1.
    pub removable: bool,
    /// Attached through USB (the sysfs device path runs through a USB controller).
    pub usb: bool,
    /// An SD card (MMC device of type `SD`); built-in readers report
    /// `removable` 0, while soldered eMMC reports type `MMC`.
    pub sd_card: bool,
    /// Vendor and model, as sysfs reports them.
    pub model: Option<String>,
    pub partitions: Vec<Partition>,
}

impl Disk {
    /// Removable media or a USB disk: what a flash target normally is.
    pub fn is_removable(&self) -> bool {
        self.removable || self.usb || self.sd_card
    }
}

/// What a flash target is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Target {
    /// A regular file (or a path that does not exist yet).
    File { path: Utf8PathBuf },
    /// A whole disk.
    Disk(Disk),
}

/// A user of a disk: a mount or swap on it, its partitions or its holders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Use {
    /// The kernel name of the device in use (`sdb1`, `dm-0`, …).
    pub device: String,
    /// `mounted at /boot` or `swap`.
    pub what: String,
    /// Whether this is the running system (root, /boot, the store, swap).
    pub system: bool,
}

/// Mount points that make a disk "the running system".
const SYSTEM_MOUNTS: &[&str] = &[
    "/",
    "/boot",
    "/boot/efi",
    "/efi",
    "/nix",
    "/nix/store",
    "/usr",
];

/// Inspect `path` with sysfs and `/proc` read under `root`.
pub fn inspect(path: &Utf8Path, root: &Utf8Path) -> Result<Target, BlockdevError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        // A typo such as /dev/sdz must not become a new file in /dev.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.starts_with("/dev") => {
            return Err(BlockdevError::NoSuchDevice {
                path: path.to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Target::File {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(io_err(path, "stat")(e).into()),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(Target::File {
            path: path.to_owned(),
        });
    }
    if !ft.is_block_device() {
        return Err(BlockdevError::NotADevice {
            path: path.to_string(),
        });
    }
    let dev = dev_from_rdev(meta.rdev());
    let link = root.join(format!("sys/dev/block/{dev}"));
    let sys = canonical(&link)?;
    let name = sys.file_name().unwrap_or_default().to_string();
    if sys.join("partition").exists() {
        let disk = sys
            .parent()
            .and_then(|p| p.file_name())
            .unwrap_or("?")
            .to_string();
        return Err(BlockdevError::Partition {
            path: path.to_string(),
            name,
            disk,
        });
    }
    let size = read_u64(&sys.join("size"))?.unwrap_or(0) * 512;
    let removable = read_u64(&sys.join("removable"))?.unwrap_or(0) == 1;
    let usb = sys.components().any(|c| c.as_str().starts_with("usb"));
    let sd_card = read_str(&sys.join("device/type")).as_deref() == Some("SD");
    let vendor = read_str(&sys.join("device/vendor"));
    let model_name = read_str(&sys.join("device/model"));
    let model = match (vendor, model_name) {
        (Some(v), Some(m)) => Some(format!("{v} {m}")),
        (v, m) => v.or(m),
    };
    let mut partitions = Vec::new();
    for entry in read_dir_sorted(&sys)? {
        let p = sys.join(&entry);
        if p.join("partition").exists() {
            partitions.push(Partition {
                name: entry.clone(),
                dev: read_dev(&p)?,
                size: read_u64(&p.join("size"))?.unwrap_or(0) * 512,
            });
        }
    }
    Ok(Target::Disk(Disk {
        path: path.to_owned(),
        name,
        dev,
        size,
        removable,
        usb,
        sd_card,
        model,
        partitions,
    }))
}

/// Everything that uses `disk`: mounts and swap on the disk itself, on its
/// partitions, or on any device stacked on them (LUKS, LVM: sysfs `holders`).
pub fn users(disk: &Disk, root: &Utf8Path) -> Result<Vec<Use>, BlockdevError> {
    // Kernel names and device numbers of the disk, its partitions and their holders.
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut devs: Vec<(DevNum, String)> = vec![(disk.dev, disk.name.clone())];
    names.insert(disk.name.clone());
    for p in &disk.partitions {
        names.insert(p.name.clone());
        devs.push((p.dev, p.name.clone()));
    }
    let mut queue: Vec<String> = names.iter().cloned().collect();
    while let Some(n) = queue.pop() {
        let class = root.join("sys/class/block").join(&n);
        for h in read_dir_sorted(&class.join("holders"))? {
            if names.insert(h.clone()) {
                let hs = root.join("sys/class/block").join(&h);
                if let Ok(d) = read_dev(&hs) {
                    devs.push((d, h.clone()));
                }
                // device-mapper devices are mounted by their /dev/mapper name.
                if let Some(dm) = read_str(&hs.join("dm/name")) {
                    names.insert(dm);
                }
                queue.push(h);
            }
        }
    }
    let owner_of = |dev: Option<DevNum>, source: &str| -> Option<String> {
        if let Some(d) = dev {
            if let Some((_, n)) = devs.iter().find(|(x, _)| *x == d) {
                return Some(n.clone());
            }
        }
        // btrfs and some others report an anonymous 0:N; fall back to the source path.
        let base = source.rsplit('/').next()?;
        (source.starts_with("/dev/") && names.contains(base)).then(|| base.to_string())
    };

    let mut out = Vec::new();
    for m in mounts(root)? {
        let source_dev = source_dev(root, &m.source);
        let dev = if m.dev.major == 0 {
            source_dev
        } else {
            Some(m.dev)
        };
        if let Some(device) = owner_of(dev, &m.source).or_else(|| owner_of(source_dev, "")) {
            out.push(Use {
                device,
                system: SYSTEM_MOUNTS.contains(&m.mount_point.as_str()),
                what: format!("mounted at {}", m.mount_point),
            });
        }
    }
    let swaps = root.join("proc/swaps");
    if let Ok(text) = std::fs::read_to_string(&swaps) {
        for line in text.lines().skip(1) {
            let Some(file) = line.split_whitespace().next() else {
                continue;
            };
            let file = crate::mounts::unescape_octal(file);
            if let Some(device) = owner_of(source_dev(root, &file), &file) {
                out.push(Use {
                    device,
                    system: true,
                    what: "used as swap".into(),
                });
            }
        }
    }
    Ok(out)
}

/// Refuse a target the user almost certainly does not mean, in order of
/// danger: the running system, anything mounted, too small, fixed disks.
pub fn check(
    target: &Target,
    image_size: u64,
    allow_fixed: bool,
    root: &Utf8Path,
) -> Result<(), BlockdevError> {
    let Target::Disk(disk) = target else {
        return Ok(());
    };
    let path = disk.path.to_string();
    let name = disk.name.clone();
    let users = users(disk, root)?;
    let describe = |u: &[&Use]| {
        u.iter()
            .map(|u| format!("{} {}", u.device, u.what))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let system: Vec<&Use> = users.iter().filter(|u| u.system).collect();
    if !system.is_empty() {
        return Err(BlockdevError::SystemDisk {
            path,
            name,
            what: describe(&system),
        });
    }
    if !users.is_empty() {
        let all: Vec<&Use> = users.iter().collect();
        return Err(BlockdevError::Mounted {
            path,
            name,
            what: describe(&all),
        });
    }
    if disk.size < image_size {
        return Err(BlockdevError::TooSmall {
            path,
            name,
            device: disk.size,
            image: image_size,
        });
    }
    if !allow_fixed && !disk.is_removable() {
        return Err(BlockdevError::FixedDisk { path, name });
    }
    Ok(())
}

/// The running system's mounts under `root` (see [`crate::mounts`]).
pub fn mounts(root: &Utf8Path) -> Result<Vec<Mount>, BlockdevError> {
    let p = crate::mounts::path(root);
    Ok(crate::mounts::read(root).map_err(io_err(&p, "read"))?)
}

/// The device number behind a `/dev/…` source, when it is a block device under `root`.
fn source_dev(root: &Utf8Path, source: &str) -> Option<DevNum> {
    let rel = source.strip_prefix('/')?;
    if !source.starts_with("/dev/") {
        return None;
    }
    let meta = std::fs::metadata(root.join(rel)).ok()?;
    meta.file_type()
        .is_block_device()
        .then(|| dev_from_rdev(meta.rdev()))
}

fn canonical(p: &Utf8Path) -> Result<Utf8PathBuf, BlockdevError> {
    let c = std::fs::canonicalize(p).map_err(io_err(p, "resolve sysfs link"))?;
    Utf8PathBuf::from_path_buf(c).map_err(|c| {
        BlockdevError::Io(crate::fsutil::IoError::new(
            c.display().to_string(),
            "resolve sysfs link",
            std::io::Error::other("path is not UTF-8"),
        ))
    })
}

fn read_str(p: &Utf8Path) -> Option<String> {
    let s = std::fs::read_to_string(p).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn read_u64(p: &Utf8Path) -> Result<Option<u64>, BlockdevError> {
    match std::fs::read_to_string(p) {
        Ok(s) => Ok(s.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(p, "read")(e).into()),
    }
}

fn read_dev(sys: &Utf8Path) -> Result<DevNum, BlockdevError> {
    let p = sys.join("dev");
    let s = std::fs::read_to_string(&p).map_err(io_err(&p, "read"))?;
    DevNum::parse(&s).ok_or_else(|| {
        BlockdevError::Io(crate::fsutil::IoError::new(
            p.clone(),
            "parse major:minor",
            std::io::Error::other(format!("unexpected contents {s:?}")),
        ))
    })
}

fn read_dir_sorted(p: &Utf8Path) -> Result<Vec<String>, BlockdevError> {
    let rd = match std::fs::read_dir(p) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(p, "list")(e).into()),
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    Ok(v)
}

/// Human-readable size (binary units), for prompts and reports.
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dev_paths_are_not_files() {
        let e = inspect(
            Utf8Path::new("/dev/bifrost-no-such-disk"),
            Utf8Path::new("/"),
        )
        .unwrap_err();
        assert!(matches!(e, BlockdevError::NoSuchDevice { .. }), "{e}");
        let t = inspect(
            Utf8Path::new("/nonexistent-dir/new.img"),
            Utf8Path::new("/"),
        )
        .unwrap();
        assert!(matches!(t, Target::File { .. }));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(8 * 1024 * 1024 * 1024), "8.0 GiB");
    }
}
