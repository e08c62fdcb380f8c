//! Describe the running machine as host settings.
//!
//! Sources, all read through [`Machine`] so tests replay recorded machines:
//! DMI (`sys/class/dmi/id/{sys_vendor,product_name}`), `lsblk --json -O`
//! (partitions, file-system types, UUIDs, labels, LUKS, and which btrfs
//! subvolume is mounted where), `proc/self/mountinfo` (mount options), `proc/swaps`,
//! `etc/hostname`, `etc/os-release`, and `btrfs subvolume list` (subvolumes
//! that are not mounted, such as Kinoite's).
//!
//! What the machine cannot say (desktop, packages, firewall ports) keeps the
//! settings' defaults. What bifrost needs but the machine lacks (a LUKS2
//! pool, NixOS subvolumes) is proposed with bifrost's defaults and named in
//! [`Detection::notes`], so the output is always valid host settings.

use super::{HardwareError, Profile};
use crate::spec::{
    self, Boot, DualBoot, Esp, Hardware, HostSettings, Kernel, Kinoite, Luks, Storage, Subvolume,
    SubvolumeOwner, Swap, SwapKind, User,
};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

/// GPT partition type of an EFI system partition.
const ESP_PARTTYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
/// Recorded `lsblk --json -O` output under a fake root.
pub const LSBLK_FILE: &str = "lsblk.json";
/// Recorded `btrfs subvolume list <mount point>` output under a fake root.
pub const SUBVOLUME_LIST_FILE: &str = "btrfs-subvolume-list.txt";
/// Mount options worth carrying over into the settings.
const KEPT_OPTIONS: &[&str] = &[
    "compress",
    "compress-force",
    "noatime",
    "nodiratime",
    "relatime",
    "nodatacow",
    "autodefrag",
    "discard",
    "ssd",
];

/// How detection reads the machine.
pub trait Machine {
    /// Contents of `rel` (such as `sys/class/dmi/id/product_name`) under the root; `None` if absent.
    fn read(&self, rel: &str) -> Result<Option<String>, HardwareError>;
    /// `lsblk --json -O` output.
    fn lsblk(&self) -> Result<String, HardwareError>;
    /// `btrfs subvolume list` output for the btrfs mounted at `mount_point`; `None` if unavailable.
    fn subvolume_list(&self, mount_point: &str) -> Result<Option<String>, HardwareError>;
}

/// Reads a root folder: `/` for this machine (running `lsblk` and `btrfs`),
/// or a recorded tree holding `lsblk.json` and `btrfs-subvolume-list.txt`.
#[derive(Debug, Clone)]
pub struct RootMachine {
    pub root: Utf8PathBuf,
}

impl RootMachine {
    fn live(&self) -> bool {
        self.root == "/"
    }
}

impl Machine for RootMachine {
    fn read(&self, rel: &str) -> Result<Option<String>, HardwareError> {
        let path = self.root.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(crate::fsutil::IoError::new(path, "read", source).into()),
        }
    }

    fn lsblk(&self) -> Result<String, HardwareError> {
        if let Some(text) = self.read(LSBLK_FILE)? {
            return Ok(text);
        }
        if !self.live() {
            return Err(HardwareError::NoLsblk {
                root: self.root.to_string(),
            });
        }
        crate::process::Cmd::new("lsblk", ["--json", "-O"])
            .inherit_stdin()
            .read()
            .map_err(HardwareError::LsblkFailed)
    }

    fn subvolume_list(&self, mount_point: &str) -> Result<Option<String>, HardwareError> {
        if let Some(text) = self.read(SUBVOLUME_LIST_FILE)? {
            return Ok(Some(text));
        }
        if !self.live() {
            return Ok(None);
        }
        // Needs root and btrfs-progs; without them the mounted subvolumes
        // (from lsblk) are still known, so this is not an error.
        Ok(
            crate::process::Cmd::new("btrfs", ["subvolume", "list", mount_point])
                .stderr_null()
                .inherit_stdin()
                .stdout_only()
                .ok(),
        )
    }
}

/// The result of detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    /// DMI vendor and product, as read.
    pub vendor: String,
    pub product: String,
    /// Host settings for the machine (valid per `bifrost check`).
    pub settings: spec::Settings,
    /// What was proposed rather than found, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct LsblkOutput {
    blockdevices: Vec<Dev>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Dev {
    name: String,
    path: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    fstype: Option<String>,
    uuid: Option<String>,
    label: Option<String>,
    partlabel: Option<String>,
    partuuid: Option<String>,
    parttype: Option<String>,
    mountpoints: Vec<Option<String>>,
    fsroots: Vec<Option<String>>,
    children: Vec<Dev>,
}

impl Dev {
    fn walk<'a>(&'a self, parent: Option<&'a Dev>, out: &mut Vec<(&'a Dev, Option<&'a Dev>)>) {
        out.push((self, parent));
        for c in &self.children {
            c.walk(Some(self), out);
        }
    }
    fn fstype(&self) -> &str {
        self.fstype.as_deref().unwrap_or("")
    }
    /// Mount points and the subvolume (file-system root) mounted at each,
    /// with escapes undone: lsblk passes on what mountinfo wrote (`\040`
    /// for a space), and older lsblk writes `\x20`.
    fn mounts(&self) -> impl Iterator<Item = (String, Option<String>)> + '_ {
        self.mountpoints.iter().enumerate().filter_map(|(i, mp)| {
            let mp = unescape_mount(mp.as_deref()?);
            let root = self
                .fsroots
                .get(i)
                .and_then(|r| r.as_deref())
                .map(unescape_mount);
            Some((mp, root))
        })
    }
    fn dev_path(&self) -> String {
        self.path
            .clone()
            .unwrap_or_else(|| format!("/dev/{}", self.name))
    }
    /// The most stable `/dev/disk/by-*` name: the partition label when udev
    /// can spell it plainly, else the file-system UUID, else the partition UUID.
    fn stable_path(&self) -> String {
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
}

/// File systems rEFInd has drivers for, as Kinoite's /boot may use.
const KINOITE_BOOT_FS: &[&str] = &["ext4", "ext3", "ext2", "btrfs", "vfat"];

/// How the settings name Kinoite's /boot: file-system UUID first (what
/// Fedora's fstab uses and what survives relabelling), then file-system
/// label, then partition GUID (a partition label is no `/dev/disk/by-label`
/// name, so it is not offered).
fn kinoite_boot_volume(d: &Dev) -> Option<spec::BootVolume> {
    let forms = [
        d.uuid.as_ref().map(|u| format!("UUID={u}")),
        d.label.as_ref().map(|l| format!("LABEL={l}")),
        d.partuuid.as_ref().map(|u| format!("PARTUUID={u}")),
    ];
    forms
        .into_iter()
        .flatten()
        .find_map(|f| spec::BootVolume::parse(&f).ok())
}

/// udev escapes anything else in `/dev/disk/by-*` names (`\x20` for a space).
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

/// lsblk passes on mountinfo's octal escapes (`\040`); lsblk before
/// util-linux 2.37 wrote `\x20`. Bytes are decoded as UTF-8 once all escapes
/// are undone. (`/proc/self/mountinfo` itself is read by [`crate::mounts`].)
fn unescape_mount(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let (digits, radix, len) = if b[i + 1] == b'x' {
                (&s[i + 2..i + 4], 16, 4)
            } else {
                (&s[i + 1..i + 4], 8, 4)
            };
            let ok = if radix == 16 {
                digits.bytes().all(|c| c.is_ascii_hexdigit())
            } else {
                digits.bytes().all(|c| (b'0'..=b'7').contains(&c))
            };
            if let Some(v) = ok.then(|| u8::from_str_radix(digits, radix).ok()).flatten() {
                out.push(v);
                i += len;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A name `bifrost check` takes for a subvolume (spec/validate.rs, `subvolume_name`).
fn usable_subvolume_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@_.+-".contains(c))
}

/// A mount point `bifrost check` takes (spec/validate.rs, `abs_path`):
/// absolute, normalized, one token without quotes or backslashes.
fn usable_mount_point(mp: &str) -> bool {
    let normal = mp == "/"
        || mp
            .strip_prefix('/')
            .is_some_and(|r| r.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
    normal
        && !mp
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '\\')
}

/// Top-level subvolume names from `btrfs subvolume list` (`ID n gen g top level t path p`).
fn parse_subvolume_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (head, path) = l.split_once(" path ")?;
            let top = head.split_whitespace().collect::<Vec<_>>();
            let level = top.windows(3).find(|w| w[0] == "top" && w[1] == "level")?[2];
            let path = path.trim().trim_start_matches("<FS_TREE>/");
            (level == "5" && !path.contains('/')).then(|| path.to_string())
        })
        .collect()
}

fn kept_options(options: &[String]) -> Vec<String> {
    options
        .iter()
        .filter(|o| {
            let key = o.split('=').next().unwrap_or(o);
            KEPT_OPTIONS.contains(&key)
        })
        .cloned()
        .collect()
}

fn os_release_id(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

/// Detect the machine seen by `machine`.
pub fn detect(machine: &dyn Machine) -> Result<Detection, HardwareError> {
    let read = |rel: &str| -> Result<String, HardwareError> {
        Ok(machine.read(rel)?.unwrap_or_default().trim().to_string())
    };
    let vendor = read("sys/class/dmi/id/sys_vendor")?;
    let product = read("sys/class/dmi/id/product_name")?;
    let profile = Profile::from_dmi(&vendor, &product);
    let mut notes = Vec::new();
    if product.is_empty() {
        notes.push(
            "no DMI product name (sys/class/dmi/id/product_name): the profile is generic-x86_64-uefi"
                .into(),
        );
    }

    let lsblk_text = machine.lsblk()?;
    let lsblk: LsblkOutput =
        serde_json::from_str(&lsblk_text).map_err(|source| HardwareError::Lsblk {
            path: LSBLK_FILE.into(),
            source,
        })?;
    let mut devs = Vec::new();
    for d in &lsblk.blockdevices {
        d.walk(None, &mut devs);
    }
    let mounts = crate::mounts::parse(&read("proc/self/mountinfo")?);
    let running_nixos = os_release_id(&read("etc/os-release")?) == "nixos";

    // Host name: what the machine calls itself, made valid.
    let mut host_name: String = read("etc/hostname")?
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(63)
        .collect();
    if host_name.is_empty() {
        host_name = "nixos".into();
        notes.push("no etc/hostname: hostName is \"nixos\"".into());
    }

    // ESP: by GPT type, preferring the mounted one.
    let mut esps: Vec<&Dev> = devs
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| {
            d.parttype
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(ESP_PARTTYPE))
        })
        .collect();
    esps.sort_by_key(|d| d.mounts().next().is_none());
    let esp = match esps.first() {
        Some(d) => Esp {
            mount_point: d
                .mounts()
                .map(|(mp, _)| mp)
                .find(|mp| usable_mount_point(mp))
                .map(Utf8PathBuf::from)
                .unwrap_or_else(spec::defaults::esp_mount_point),
            device: d.stable_path().into(),
            fs_type: spec::defaults::esp_fs_type(),
            size_mib: spec::defaults::esp_size_mib(),
        },
        None => {
            notes.push("no EFI system partition found: boot.esp keeps bifrost's defaults".into());
            Esp::default()
        }
    };

    // LUKS2 container whose opened mapping holds btrfs.
    let crypt = devs.iter().map(|(d, _)| *d).find_map(|d| {
        (d.fstype() == "crypto_LUKS").then(|| {
            let inner = d
                .children
                .iter()
                .find(|c| c.kind.as_deref() == Some("crypt") && c.fstype() == "btrfs");
            (d, inner)
        })
    });
    let (luks, pool) = match crypt {
        Some((outer, Some(inner))) => (
            Luks {
                name: inner.name.clone(),
                device: outer.stable_path().into(),
                allow_discards: true,
                argon2id: Default::default(),
                unlock: Default::default(),
            },
            Some(inner),
        ),
        Some((outer, None)) => {
            notes.push(format!(
                "{} is LUKS but not open (or holds no btrfs): open it and run detect again to see its subvolumes",
                outer.dev_path()
            ));
            (
                Luks {
                    name: spec::defaults::luks_name(),
                    device: outer.stable_path().into(),
                    allow_discards: true,
                    argon2id: Default::default(),
                    unlock: Default::default(),
                },
                None,
            )
        }
        None => {
            notes.push(
                "no LUKS2 container found: storage.luks is bifrost's default (/dev/disk/by-partlabel/pool), which `bifrost install` creates; point storage.luks.device at the partition to encrypt".into(),
            );
            (
                Luks {
                    name: spec::defaults::luks_name(),
                    device: "/dev/disk/by-partlabel/pool".into(),
                    allow_discards: true,
                    argon2id: Default::default(),
                    unlock: Default::default(),
                },
                None,
            )
        }
    };

    let mut subvolumes: Vec<Subvolume> = Vec::new();
    let mut btrfs_label = spec::defaults::btrfs_label();
    let mut swap = Swap::default();
    if let Some(pool) = pool {
        if let Some(l) = pool.label.clone().filter(|l| !l.is_empty()) {
            btrfs_label = l;
        }
        // Subvolumes the settings cannot describe, noted once.
        let mut left_out = std::collections::BTreeSet::new();
        let mapper = format!("/dev/mapper/{}", pool.name);
        let pool_path = pool.dev_path();
        for (mp, root) in pool.mounts() {
            let name = root
                .as_deref()
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            if name.is_empty() || name.contains('/') || subvolumes.iter().any(|s| s.name == name) {
                continue;
            }
            if !usable_subvolume_name(&name) {
                left_out.insert(name.clone());
                continue;
            }
            let options = mounts
                .iter()
                .find(|m| m.mount_point == mp && (m.source == mapper || m.source == pool_path))
                .map(|m| kept_options(&m.options))
                .unwrap_or_else(spec::defaults::mount_options);
            let owner = if name == "@shared" {
                SubvolumeOwner::Shared
            } else if running_nixos {
                SubvolumeOwner::Nixos
            } else {
                SubvolumeOwner::Kinoite
            };
            if owner != SubvolumeOwner::Kinoite && !usable_mount_point(&mp) {
                notes.push(format!(
                    "subvolume {name} mounted at {mp:?} is left out: bifrost's settings cannot hold that mount point; move it or add the subvolume by hand"
                ));
                left_out.insert(name.clone());
                continue;
            }
            subvolumes.push(Subvolume {
                name,
                mount_point: (owner != SubvolumeOwner::Kinoite).then(|| mp.into()),
                mount_options: options,
                owner,
            });
        }
        let first_mount = pool.mounts().next().map(|(mp, _)| mp);
        match machine.subvolume_list(first_mount.as_deref().unwrap_or("/"))? {
            Some(list) => {
                for name in parse_subvolume_list(&list) {
                    if subvolumes.iter().any(|s| s.name == name) {
                        continue;
                    }
                    if !usable_subvolume_name(&name) {
                        left_out.insert(name);
                        continue;
                    }
                    if left_out.contains(&name) {
                        continue;
                    }
                    let owner = if name == "@shared" {
                        SubvolumeOwner::Shared
                    } else {
                        SubvolumeOwner::Kinoite
                    };
                    subvolumes.push(Subvolume {
                        name,
                        mount_point: None,
                        mount_options: spec::defaults::mount_options(),
                        owner,
                    });
                }
            }
            None => notes.push(
                "no `btrfs subvolume list` output: only mounted subvolumes are listed (run as root with btrfs-progs)".into(),
            ),
        }
        for name in left_out.iter().filter(|n| !usable_subvolume_name(n)) {
            notes.push(format!(
                "subvolume {name:?} is left out: bifrost's settings cannot hold that name; bifrost never touches it"
            ));
        }
        // A swap file in a pool subvolume.
        for line in read("proc/swaps")?.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 3 && f[1] == "file" {
                let in_pool = subvolumes.iter().any(|s| {
                    s.mount_point
                        .as_deref()
                        .is_some_and(|mp| mp != "/" && Utf8Path::new(f[0]).starts_with(mp))
                });
                if in_pool {
                    let kib: u64 = f[2].parse().unwrap_or(0);
                    swap = Swap {
                        kind: SwapKind::File,
                        size_mib: u32::try_from(kib.div_ceil(1024)).unwrap_or(u32::MAX),
                    };
                }
            }
        }
    }
    if swap.kind == SwapKind::None
        && read("proc/swaps")?
            .lines()
            .skip(1)
            .any(|l| l.starts_with("/dev/zram"))
    {
        notes.push("zram swap in use: set storage.swap to { \"kind\": \"zram\", \"sizeMib\": … } to keep it".into());
    }

    // bifrost boots NixOS from the pool: propose its subvolumes if none is mounted at "/".
    let has_root = subvolumes
        .iter()
        .any(|s| s.mount_point.as_deref() == Some(Utf8Path::new("/")));
    if !has_root {
        let mut added = Vec::new();
        for (name, mp) in [("@", "/"), ("@home", "/home"), ("@nix", "/nix")] {
            let taken = |n: &str| subvolumes.iter().find(|s| s.name == n).map(|s| s.owner);
            // The other system (not NixOS) may use these names itself, as
            // Fedora, openSUSE and Ubuntu do: NixOS gets its own.
            let name = match taken(name) {
                None => name.to_string(),
                Some(SubvolumeOwner::Nixos) => continue,
                Some(_) => {
                    let own = format!("@nixos{}", name.trim_start_matches('@').replace('@', ""));
                    let own = if own == "@nixos" {
                        own
                    } else {
                        own.replacen("@nixos", "@nixos-", 1)
                    };
                    if taken(&own).is_some() {
                        continue;
                    }
                    notes.push(format!(
                        "{name} belongs to the system running now: NixOS gets {own} for {mp}"
                    ));
                    own
                }
            };
            if subvolumes
                .iter()
                .any(|s| s.mount_point.as_deref() == Some(Utf8Path::new(mp)))
            {
                continue;
            }
            subvolumes.push(Subvolume {
                name: name.clone(),
                mount_point: Some(mp.into()),
                mount_options: spec::defaults::mount_options(),
                owner: SubvolumeOwner::Nixos,
            });
            added.push(name);
        }
        notes.push(format!(
            "no NixOS root subvolume mounted: proposed {} (created by `bifrost install`)",
            added.join(", ")
        ));
    }

    // Kinoite beside NixOS: its /boot is an ext4 partition outside the pool.
    // Run from NixOS (or the installer) it is unmounted and found by its
    // label; run on Kinoite it is mounted at /boot of an ostree-booted system
    // (`ostree=` on the kernel command line) and, as Fedora's installer
    // leaves it, has no label: its file-system UUID names it, as in Fedora's fstab.
    let mut dual_boot = DualBoot::default();
    let ostree_booted = read("proc/cmdline")?
        .split_whitespace()
        .any(|a| a.starts_with("ostree="));
    let on_kinoite = ostree_booted && !running_nixos;
    let kinoite_pool = subvolumes
        .iter()
        .any(|s| s.owner == SubvolumeOwner::Kinoite);
    let boot = if on_kinoite {
        devs.iter().map(|(d, _)| *d).find(|d| {
            d.kind.as_deref() == Some("part")
                && KINOITE_BOOT_FS.contains(&d.fstype())
                && d.mounts().any(|(mp, _)| mp == "/boot")
        })
    } else if kinoite_pool {
        devs.iter().map(|(d, _)| *d).find(|d| {
            d.kind.as_deref() == Some("part")
                && d.fstype() == "ext4"
                && d.mounts().next().is_none()
                && (d.label.is_some() || d.partlabel.is_some())
        })
    } else {
        None
    };
    if let Some(b) = boot {
        let volume = kinoite_boot_volume(b);
        if let Some(volume) = volume {
            if on_kinoite {
                notes.push(format!(
                    "Kinoite's ostree /boot ({}) is dualBoot.kinoite.bootVolume {volume}",
                    b.dev_path()
                ));
            }
            dual_boot.kinoite = Some(Kinoite {
                boot_volume: volume,
                entries_dir: spec::defaults::bls_entries(),
                boot_fs_type: b.fstype().to_owned(),
                title: spec::defaults::kinoite_title(),
                mode: Default::default(),
            });
        }
    }
    // Data both systems share: proposed when the pool lacks it; `bifrost
    // install` creates it (never formats or overwrites one that exists).
    if dual_boot.kinoite.is_some() && !subvolumes.iter().any(|s| s.owner == SubvolumeOwner::Shared)
    {
        subvolumes.push(Subvolume {
            name: "@shared".into(),
            mount_point: Some("/shared".into()),
            mount_options: spec::defaults::mount_options(),
            owner: SubvolumeOwner::Shared,
        });
        notes.push("no @shared subvolume: proposed @shared at /shared for data both systems use (created by `bifrost install`)".into());
    }

    let mut extra_initrd_modules = Vec::new();
    if devs
        .iter()
        .any(|(d, _)| d.kind.as_deref() == Some("disk") && d.name.starts_with("vd"))
    {
        extra_initrd_modules = vec!["virtio_pci".into(), "virtio_blk".into()];
    }

    let users = detect_users(&machine.read("etc/passwd")?.unwrap_or_default(), &mut notes);

    let kernel = Kernel {
        source: profile.default_kernel,
        ..Kernel::default()
    };
    let settings = HostSettings {
        schema: None,
        host_name,
        hardware: Hardware {
            profile: profile.id,
            extra_initrd_modules,
        },
        kernel,
        boot: Boot {
            esp,
            ..Boot::default()
        },
        storage: Storage {
            luks,
            btrfs_label,
            subvolumes,
            swap,
            shared_group: Default::default(),
        },
        dual_boot,
        desktop: Default::default(),
        security: Default::default(),
        packages: Default::default(),
        nix: Default::default(),
        output: Default::default(),
        users,
    };
    Ok(Detection {
        vendor,
        product,
        settings: spec::validated(settings)
            .map_err(|problems| HardwareError::Invalid { problems })?,
        notes,
    })
}

/// The people in `passwd` (uids in [`spec::USER_UIDS`]), the first one an
/// administrator: on a Kinoite machine that is its owner, uid 1000, whose
/// files on the shared subvolume NixOS must give to the same person.
fn detect_users(passwd: &str, notes: &mut Vec<String>) -> Vec<User> {
    let mut users: Vec<User> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let uid = f.get(2)?.parse::<u32>().ok()?;
            let name = f.first()?;
            let shell = f.get(6).copied().unwrap_or("");
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
            (spec::USER_UIDS.contains(&uid) && plain && !shell.ends_with("nologin")).then(|| User {
                name: name.to_string(),
                uid,
                groups: Vec::new(),
                ssh_authorized_keys: Vec::new(),
                admin: false,
            })
        })
        .collect();
    users.sort_by_key(|u| u.uid);
    users.dedup_by_key(|u| u.uid);
    match users.first_mut() {
        Some(u) => u.admin = true,
        None => {
            notes.push(
                "no person in etc/passwd: proposed \"user\" (uid 1000) as administrator; rename it"
                    .into(),
            );
            users.push(User {
                name: "user".into(),
                uid: spec::defaults::uid(),
                groups: Vec::new(),
                ssh_authorized_keys: Vec::new(),
                admin: true,
            });
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_come_from_passwd_first_is_admin() {
        let mut notes = Vec::new();
        let passwd = "root:x:0:0::/root:/bin/bash\nnobody:x:65534:65534::/:/sbin/nologin\nbob:x:1001:1001::/home/bob:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nsvc:x:1002:1002::/:/usr/sbin/nologin\n";
        let u = detect_users(passwd, &mut notes);
        let got: Vec<(&str, u32, bool)> = u
            .iter()
            .map(|u| (u.name.as_str(), u.uid, u.admin))
            .collect();
        assert_eq!(got, [("alice", 1000, true), ("bob", 1001, false)]);
        let u = detect_users("", &mut notes);
        assert_eq!(
            (u[0].name.as_str(), u[0].uid, u[0].admin),
            ("user", 1000, true)
        );
    }

    #[test]
    fn subvolume_list_keeps_top_level_only() {
        let text = "ID 256 gen 10 top level 5 path @\nID 257 gen 9 top level 5 path <FS_TREE>/@home\nID 300 gen 8 top level 258 path @snapshots/1/snapshot\n";
        assert_eq!(parse_subvolume_list(text), vec!["@", "@home"]);
    }

    #[test]
    fn mount_escapes_are_undone() {
        let m =
            crate::mounts::parse("21 20 8:1 / /mnt/my\\040disk rw,noatime - vfat /dev/sda1 rw\n");
        assert_eq!(m[0].mount_point, "/mnt/my disk");
        assert_eq!(kept_options(&m[0].options), vec!["noatime"]);
    }

    #[test]
    fn octal_and_hex_escapes_are_undone() {
        assert_eq!(unescape_mount("/srv/my\\040data"), "/srv/my data");
        assert_eq!(unescape_mount("/srv/my\\x20data"), "/srv/my data");
        assert_eq!(unescape_mount("/@odd\\042name"), "/@odd\"name");
        assert_eq!(unescape_mount("/a\\999b\\"), "/a\\999b\\");
    }

    #[test]
    fn mount_points_and_names_bifrost_check_takes() {
        for ok in ["/", "/srv/data", "/home"] {
            assert!(usable_mount_point(ok), "{ok}");
        }
        for bad in [
            "", "rel", "/a/", "/a//b", "/a/../b", "/my data", "/q\"", "/b\\s",
        ] {
            assert!(!usable_mount_point(bad), "{bad}");
        }
        assert!(usable_subvolume_name("@nixos-home"));
        for bad in ["", ".", "..", "old backup", "a\"b", "a/b"] {
            assert!(!usable_subvolume_name(bad), "{bad}");
        }
    }

    #[test]
    fn plain_names_only_in_by_paths() {
        let d = Dev {
            name: "sda1".into(),
            partlabel: Some("EFI System Partition".into()),
            uuid: Some("ABCD-1234".into()),
            ..Dev::default()
        };
        assert_eq!(d.stable_path(), "/dev/disk/by-uuid/ABCD-1234");
    }
}
