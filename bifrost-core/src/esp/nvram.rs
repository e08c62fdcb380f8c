//! rEFInd in the firmware's boot menu: one `Boot####` entry for rEFInd's
//! loader on the ESP's partition, first in `BootOrder`.
//!
//! The world is read once from efivarfs (every `Boot####` load option and
//! `BootOrder`, parsed here as the UEFI spec lays them out: `EFI_LOAD_OPTION`
//! with a hard-drive and a file-path device-path node) and from sysfs (which
//! partition holds the ESP). [`decide`] is pure: an entry whose loader path
//! (case-insensitive, as FAT is) sits on the same partition is reused and
//! moved first, so a second run creates no duplicate and changes nothing when
//! it is already first. The writes go through `efibootmgr`, which handles
//! efivarfs' immutable flag and variable attributes.

use crate::fsutil::io_err;
use crate::install::preflight;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeMap;

/// Where Linux shows the UEFI variables.
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// Vendor GUID of the global variables (`BootOrder`, `Boot####`).
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// Description of the entry bifrost creates (the module's `nvramLabel` default).
pub const DEFAULT_LABEL: &str = crate::spec::defaults::NVRAM_LABEL;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum NvramError {
    #[error("{dir} does not exist: this system was not booted through UEFI (or efivarfs is not mounted: mount -t efivarfs efivarfs {dir}); the boot entry cannot be registered — boot the installer in UEFI mode, or leave NVRAM alone (--no-nvram) and rely on EFI/BOOT/BOOTX64.EFI (--removable)")]
    NoEfivars { dir: String },
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{esp} is not a mount point; mount the ESP there first")]
    NotMounted { esp: String },
    #[error("{what}; the ESP must be a partition of a disk (GPT) for the firmware to find it")]
    Partition { what: String },
    #[error(
        "efibootmgr: {0}; install efibootmgr (Debian and nixpkgs: efibootmgr), or pass --no-nvram"
    )]
    Efibootmgr(String),
    #[error("efibootmgr reported success but no entry for {loader} on partition {part} appeared in {dir}")]
    NotCreated {
        loader: String,
        part: u32,
        dir: String,
    },
}

/// A GPT partition as a hard-drive device-path node names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Partition number (1-based).
    pub number: u32,
    /// First sector (LBA) and length in sectors.
    pub start: u64,
    pub size: u64,
    /// Unique partition GUID, lowercase, when known.
    pub guid: Option<String>,
}

impl Partition {
    /// Same partition: by GUID when both sides know it, else by place and size.
    pub fn same(&self, other: &Partition) -> bool {
        match (&self.guid, &other.guid) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => (self.number, self.start, self.size) == (other.number, other.start, other.size),
        }
    }
}

/// One `Boot####` load option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadOption {
    pub attributes: u32,
    pub description: String,
    /// The hard-drive node, if the entry points into a partition.
    pub partition: Option<Partition>,
    /// The file-path node (`\EFI\refind\refind_x64.efi`).
    pub path: Option<String>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

/// UCS-2 up to a NUL (or the end).
fn ucs2(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// A GUID in its mixed-endian on-disk form as text.
fn guid(b: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    )
}

/// Parse an `EFI_LOAD_OPTION` (UEFI 2.10, 3.1.3); `None` when malformed.
pub fn parse_load_option(b: &[u8]) -> Option<LoadOption> {
    let attributes = u32_at(b, 0)?;
    let list_len = usize::from(u16_at(b, 4)?);
    // Description: NUL-terminated UCS-2 from byte 6.
    let mut i = 6;
    while u16_at(b, i)? != 0 {
        i += 2;
    }
    let description = ucs2(&b[6..i]);
    let list = b.get(i + 2..i + 2 + list_len)?;
    let (mut partition, mut path) = (None, None);
    let mut j = 0;
    while j + 4 <= list.len() {
        let (ty, sub) = (list[j], list[j + 1]);
        let len = usize::from(u16_at(list, j + 2)?);
        if len < 4 || j + len > list.len() {
            return None;
        }
        let node = &list[j..j + len];
        match (ty, sub) {
            // End of the whole device path.
            (0x7f, 0xff) => break,
            // Media / hard drive.
            (0x04, 0x01) if len >= 42 => {
                let sig_type = node[41];
                partition = Some(Partition {
                    number: u32_at(node, 4)?,
                    start: u64_at(node, 8)?,
                    size: u64_at(node, 16)?,
                    guid: (sig_type == 2).then(|| guid(&node[24..40])),
                });
            }
            // Media / file path.
            (0x04, 0x04) => {
                let p = ucs2(&node[4..]);
                path = Some(match path {
                    Some(prev) => format!("{prev}{p}"),
                    None => p,
                });
            }
            _ => {}
        }
        j += len;
    }
    Some(LoadOption {
        attributes,
        description,
        partition,
        path,
    })
}

/// The firmware's boot entries and their order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub order: Vec<u16>,
    pub entries: BTreeMap<u16, LoadOption>,
}

/// Read `BootOrder` and every `Boot####` from an efivarfs folder (each file
/// is 4 bytes of attributes, then the value).
pub fn read_efivars(dir: &Utf8Path) -> Result<Snapshot, NvramError> {
    if !dir.is_dir() {
        return Err(NvramError::NoEfivars {
            dir: dir.to_string(),
        });
    }
    let mut snap = Snapshot::default();
    let suffix = format!("-{GLOBAL_GUID}");
    for entry in std::fs::read_dir(dir).map_err(io_err(dir, "list"))? {
        let entry = entry.map_err(io_err(dir, "list"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(var) = name.strip_suffix(&suffix) else {
            continue;
        };
        let number = var
            .strip_prefix("Boot")
            .filter(|n| n.len() == 4)
            .and_then(|n| u16::from_str_radix(n, 16).ok());
        if var != "BootOrder" && number.is_none() {
            continue;
        }
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(io_err(&path, "read"))?;
        let value = bytes.get(4..).unwrap_or_default();
        if var == "BootOrder" {
            snap.order = value
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
        } else if let (Some(n), Some(opt)) = (number, parse_load_option(value)) {
            snap.entries.insert(n, opt);
        }
    }
    Ok(snap)
}

/// The entry to have: this loader on this partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Want {
    /// Whole disk holding the ESP (`/dev/nvme0n1`), for efibootmgr.
    pub disk: Utf8PathBuf,
    pub partition: Partition,
    /// Loader path on the ESP in firmware form (`\EFI\refind\refind_x64.efi`).
    pub loader: String,
    pub label: String,
}

/// The loader path in the firmware's form: `\`-separated, leading `\`.
pub fn firmware_path(esp_relative: &str) -> String {
    format!(
        "\\{}",
        esp_relative.trim_start_matches('/').replace('/', "\\")
    )
}

fn same_loader(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.replace('/', "\\")
            .trim_start_matches('\\')
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Decision {
    /// The entry exists and is first: nothing to write.
    Nothing { entry: u16 },
    /// The entry exists; write this `BootOrder` (it first, the rest kept).
    Reorder { entry: u16, order: Vec<u16> },
    /// No such entry: create it, then put it first.
    Create,
}

/// Boot entries that already point at `want`'s loader on its partition.
pub fn matching(snap: &Snapshot, want: &Want) -> Vec<u16> {
    let mut found: Vec<u16> = snap
        .entries
        .iter()
        .filter(|(_, e)| {
            e.path
                .as_deref()
                .is_some_and(|p| same_loader(p, &want.loader))
                && e.partition
                    .as_ref()
                    .is_some_and(|p| p.same(&want.partition))
        })
        .map(|(n, _)| *n)
        .collect();
    // Prefer the one the firmware would try first.
    let pos = |n: &u16| snap.order.iter().position(|o| o == n).unwrap_or(usize::MAX);
    found.sort_by_key(|n| (pos(n), *n));
    found
}

/// `order` with `entry` first, everything else kept in place, no repeats.
pub fn first(order: &[u16], entry: u16) -> Vec<u16> {
    let mut out = vec![entry];
    for &o in order {
        if !out.contains(&o) {
            out.push(o);
        }
    }
    out
}

/// Decide, from a snapshot, what makes `want` the first boot entry.
pub fn decide(snap: &Snapshot, want: &Want) -> Decision {
    match matching(snap, want).first() {
        None => Decision::Create,
        Some(&entry) => {
            let order = first(&snap.order, entry);
            if order == snap.order {
                Decision::Nothing { entry }
            } else {
                Decision::Reorder { entry, order }
            }
        }
    }
}

/// The disk and partition holding the file system mounted at `esp`, from
/// `/proc/self/mountinfo` and `/sys/class/block`.
pub fn esp_partition(
    esp: &Utf8Path,
    sys_block: &Utf8Path,
) -> Result<(Utf8PathBuf, Partition), NvramError> {
    let real = std::fs::canonicalize(esp)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| esp.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io_err(Utf8Path::new("/proc/self/mountinfo"), "read"))?;
    let m = preflight::parse_mountinfo(&mounts)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == real)
        .ok_or_else(|| NvramError::NotMounted {
            esp: esp.to_string(),
        })?;
    // The device number finds the partition even without /dev/disk links (no udev).
    let class = Utf8Path::new("/sys/dev/block").join(&m.dev);
    let sys_dir = std::fs::canonicalize(&class)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .or_else(|| preflight::kernel_name(Utf8Path::new(&m.source)).map(|n| sys_block.join(n)))
        .ok_or_else(|| NvramError::Partition {
            what: format!("cannot find {} ({}) in /sys", m.source, m.dev),
        })?;
    partition_from_sys(&sys_dir)
}

/// Disk and partition of a partition's sysfs folder (`…/vda/vda1`).
pub fn partition_from_sys(dir: &Utf8Path) -> Result<(Utf8PathBuf, Partition), NvramError> {
    let read = |f: &str| -> Result<String, NvramError> {
        let p = dir.join(f);
        std::fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|_| NvramError::Partition {
                what: format!("{} is not a partition (no {f})", dir),
            })
    };
    let num = |f: &str| -> Result<u64, NvramError> {
        read(f)?.parse().map_err(|_| NvramError::Partition {
            what: format!("{}/{f} is not a number", dir),
        })
    };
    let number = u32::try_from(num("partition")?).unwrap_or(0);
    let (start, size) = (num("start")?, num("size")?);
    // sysfs counts 512-byte sectors; the firmware counts logical blocks.
    let disk_dir = dir.parent().ok_or_else(|| NvramError::Partition {
        what: format!("{dir} has no disk"),
    })?;
    let lbs: u64 = std::fs::read_to_string(disk_dir.join("queue/logical_block_size"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&b: &u64| b >= 512)
        .unwrap_or(512);
    // Newer kernels put PARTUUID in the uevent; udev links it by-partuuid.
    let guid = read("uevent")
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("PARTUUID="))
                .map(str::to_string)
        })
        .or_else(|| by_partuuid(dir.file_name()?))
        .map(|g| g.to_ascii_lowercase());
    let disk = disk_dir.file_name().ok_or_else(|| NvramError::Partition {
        what: format!("{dir} has no disk"),
    })?;
    Ok((
        Utf8PathBuf::from("/dev").join(disk),
        Partition {
            number,
            start: start * 512 / lbs,
            size: size * 512 / lbs,
            guid,
        },
    ))
}

/// The partition GUID udev links to kernel device `name`, if any.
fn by_partuuid(name: &str) -> Option<String> {
    std::fs::read_dir("/dev/disk/by-partuuid")
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            std::fs::canonicalize(e.path())
                .ok()
                .is_some_and(|p| p.file_name().is_some_and(|n| n == name))
        })
        .and_then(|e| e.file_name().into_string().ok())
}

/// What [`register`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    pub entry: u16,
    pub created: bool,
    pub reordered: bool,
    pub order: Vec<u16>,
}

fn efibootmgr(args: &[String]) -> Result<(), NvramError> {
    crate::process::Cmd::new("efibootmgr", args)
        .cancellable()
        .read()
        .map(|_| ())
        .map_err(|e| NvramError::Efibootmgr(e.to_string()))
}

fn order_arg(order: &[u16]) -> String {
    order
        .iter()
        .map(|n| format!("{n:04X}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Make `want` the first boot entry: reuse a matching entry or create one
/// (efibootmgr `--create-only`), then write `BootOrder` if it is not first.
pub fn register(efivars: &Utf8Path, want: &Want) -> Result<Registered, NvramError> {
    let snap = read_efivars(efivars)?;
    let (entry, created, order_now) = match decide(&snap, want) {
        Decision::Nothing { entry } => {
            return Ok(Registered {
                entry,
                created: false,
                reordered: false,
                order: snap.order,
            })
        }
        Decision::Reorder { entry, .. } => (entry, false, snap.order),
        Decision::Create => {
            efibootmgr(&[
                "--quiet".into(),
                "--create-only".into(),
                "--disk".into(),
                want.disk.to_string(),
                "--part".into(),
                want.partition.number.to_string(),
                "--loader".into(),
                want.loader.clone(),
                "--label".into(),
                want.label.clone(),
            ])?;
            let after = read_efivars(efivars)?;
            let entry = matching(&after, want)
                .into_iter()
                .find(|n| !snap.entries.contains_key(n))
                .ok_or_else(|| NvramError::NotCreated {
                    loader: want.loader.clone(),
                    part: want.partition.number,
                    dir: efivars.to_string(),
                })?;
            (entry, true, after.order)
        }
    };
    let order = first(&order_now, entry);
    let reordered = order != order_now;
    if reordered {
        efibootmgr(&["--quiet".into(), "--bootorder".into(), order_arg(&order)])?;
    }
    Ok(Registered {
        entry,
        created,
        reordered,
        order,
    })
}

/// The entry for `loader` (ESP-relative: rEFInd, or shim in front of it on
/// the Secure Boot shim route, as [`super::sign::boot_loader`] says) on the
/// ESP mounted at `esp`.
pub fn want_for_esp(esp: &Utf8Path, loader: &str, label: &str) -> Result<Want, NvramError> {
    let (disk, partition) = esp_partition(esp, Utf8Path::new("/sys/class/block"))?;
    Ok(Want {
        disk,
        partition,
        loader: firmware_path(loader),
        label: label.to_string(),
    })
}

/// What `bifrost esp install --nvram` would do, writing nothing.
pub fn plan_for_esp(
    efivars: &Utf8Path,
    esp: &Utf8Path,
    loader: &str,
    label: &str,
) -> Result<(Want, Decision), NvramError> {
    let snap = read_efivars(efivars)?;
    let want = want_for_esp(esp, loader, label)?;
    let d = decide(&snap, &want);
    Ok((want, d))
}

/// Make `loader` on the ESP mounted at `esp` the first boot entry.
pub fn register_esp(
    efivars: &Utf8Path,
    esp: &Utf8Path,
    loader: &str,
    label: &str,
) -> Result<(Want, Registered), NvramError> {
    // Before anything is read: a BIOS boot has no efivarfs.
    read_efivars(efivars)?;
    let want = want_for_esp(esp, loader, label)?;
    let r = register(efivars, &want)?;
    Ok((want, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(|u| u.to_le_bytes())
            .collect()
    }

    /// A load option as efibootmgr writes it: HD node, file-path node, end.
    fn option(desc: &str, part: u32, start: u64, size: u64, guid: [u8; 16], path: &str) -> Vec<u8> {
        let mut hd = vec![0x04, 0x01, 42, 0];
        hd.extend(part.to_le_bytes());
        hd.extend(start.to_le_bytes());
        hd.extend(size.to_le_bytes());
        hd.extend(guid);
        hd.extend([0x02, 0x02]);
        let p = utf16z(path);
        let mut fp = vec![0x04, 0x04];
        fp.extend(u16::try_from(p.len() + 4).unwrap().to_le_bytes());
        fp.extend(p);
        let list: Vec<u8> = [hd, fp, vec![0x7f, 0xff, 4, 0]].concat();
        let mut out = 1u32.to_le_bytes().to_vec();
        out.extend(u16::try_from(list.len()).unwrap().to_le_bytes());
        out.extend(utf16z(desc));
        out.extend(list);
        out
    }

    const G: [u8; 16] = [
        0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    fn want() -> Want {
        Want {
            disk: "/dev/vda".into(),
            partition: Partition {
                number: 1,
                start: 2048,
                size: 131072,
                guid: Some("12345678-9abc-def0-0123-456789abcdef".into()),
            },
            loader: "\\EFI\\refind\\refind_x64.efi".into(),
            label: DEFAULT_LABEL.into(),
        }
    }

    #[test]
    fn parses_what_efibootmgr_writes() {
        let b = option(
            "rEFInd",
            1,
            2048,
            131072,
            G,
            "\\EFI\\refind\\refind_x64.efi",
        );
        let o = parse_load_option(&b).unwrap();
        assert_eq!(o.description, "rEFInd");
        assert_eq!(o.path.as_deref(), Some("\\EFI\\refind\\refind_x64.efi"));
        assert_eq!(o.partition, Some(want().partition));
        assert!(parse_load_option(&b[..20]).is_none());
    }

    #[test]
    fn reuse_reorder_or_create_never_duplicate() {
        let entry = |path: &str, guid: [u8; 16]| {
            parse_load_option(&option("x", 1, 2048, 131072, guid, path)).unwrap()
        };
        let mut other_guid = G;
        other_guid[0] = 0;
        let mut snap = Snapshot {
            order: vec![0, 1],
            entries: BTreeMap::from([
                (0, entry("\\EFI\\fedora\\shimx64.efi", G)),
                (1, entry("\\EFI\\refind\\refind_x64.efi", other_guid)),
            ]),
        };
        // Same path on another partition is not ours.
        assert_eq!(decide(&snap, &want()), Decision::Create);
        // Same partition and path, other case and slashes: reused, moved first.
        snap.entries
            .insert(5, entry("/efi/REFIND/refind_x64.EFI", G));
        snap.order = vec![0, 1, 5];
        assert_eq!(
            decide(&snap, &want()),
            Decision::Reorder {
                entry: 5,
                order: vec![5, 0, 1]
            }
        );
        snap.order = vec![5, 0, 1];
        assert_eq!(decide(&snap, &want()), Decision::Nothing { entry: 5 });
        // An entry missing from BootOrder is added in front.
        snap.order = vec![0, 1];
        assert_eq!(
            decide(&snap, &want()),
            Decision::Reorder {
                entry: 5,
                order: vec![5, 0, 1]
            }
        );
        // Without a GUID on one side, place and size decide.
        let mut w = want();
        w.partition.guid = None;
        assert_eq!(matching(&snap, &w), vec![1, 5]);
        w.partition.start = 4096;
        assert!(matching(&snap, &w).is_empty());
    }

    #[test]
    fn efivarfs_folder_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let mut v = 7u32.to_le_bytes().to_vec();
        v.extend(option(
            "rEFInd",
            1,
            2048,
            131072,
            G,
            "\\EFI\\refind\\refind_x64.efi",
        ));
        std::fs::write(d.join(format!("Boot000A-{GLOBAL_GUID}")), &v).unwrap();
        let mut o = 7u32.to_le_bytes().to_vec();
        o.extend([0x0a, 0, 0x01, 0]);
        std::fs::write(d.join(format!("BootOrder-{GLOBAL_GUID}")), &o).unwrap();
        std::fs::write(
            d.join(format!("BootNext-{GLOBAL_GUID}")),
            [7, 0, 0, 0, 1, 0],
        )
        .unwrap();
        std::fs::write(d.join("Boot0001-00000000-0000-0000-0000-000000000000"), [0]).unwrap();
        let s = read_efivars(&d).unwrap();
        assert_eq!(s.order, vec![10, 1]);
        assert_eq!(s.entries.keys().copied().collect::<Vec<_>>(), vec![10]);
        assert_eq!(decide(&s, &want()), Decision::Nothing { entry: 10 });
        assert!(matches!(
            read_efivars(&d.join("none")),
            Err(NvramError::NoEfivars { .. })
        ));
        assert_eq!(
            firmware_path("EFI/refind/refind_x64.efi"),
            "\\EFI\\refind\\refind_x64.efi"
        );
        assert_eq!(order_arg(&[5, 0x1a]), "0005,001A");
    }
}
