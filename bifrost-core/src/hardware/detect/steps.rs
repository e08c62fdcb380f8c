//! The decisions of detection: pure functions over what [`Snapshot::read`]
//! read, each one step, each adding to the notes what it proposed rather
//! than found. [`super::decide`] runs them in order.
//!
//! [`Snapshot::read`]: super::Snapshot::read

use super::lsblk::{flatten, Dev, ESP_PARTTYPE};
use super::machine::SwapArea;
use crate::hardware::Profile;
use crate::mounts::Mount;
use crate::spec::{self, Esp, Kinoite, Luks, Subvolume, SubvolumeOwner, Swap, SwapKind, User};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeSet;

/// What was proposed rather than found, in the order the steps ran.
pub(super) type Notes = Vec<String>;

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

/// File systems rEFInd has drivers for, as Kinoite's /boot may use.
const KINOITE_BOOT_FS: &[&str] = &["ext4", "ext3", "ext2", "btrfs", "vfat"];

/// Where `bifrost install` creates the pool when the machine has none.
const DEFAULT_POOL_DEVICE: &str = "/dev/disk/by-partlabel/pool";

/// The device profile of the DMI identity.
pub(super) fn profile(vendor: &str, product: &str, notes: &mut Notes) -> &'static Profile {
    if product.is_empty() {
        notes.push(
            "no DMI product name (sys/class/dmi/id/product_name): the profile is generic-x86_64-uefi"
                .into(),
        );
    }
    Profile::from_dmi(vendor, product)
}

/// What the machine calls itself, made a valid host name.
pub(super) fn host_name(hostname: &str, notes: &mut Notes) -> String {
    let name: String = hostname
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
    if name.is_empty() {
        notes.push("no etc/hostname: hostName is \"nixos\"".into());
        return "nixos".into();
    }
    name
}

/// The EFI system partition by GPT type, preferring a mounted one.
pub(super) fn esp(devs: &[&Dev], notes: &mut Notes) -> Esp {
    let mut esps: Vec<&Dev> = devs
        .iter()
        .copied()
        .filter(|d| {
            d.parttype
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(ESP_PARTTYPE))
        })
        .collect();
    esps.sort_by_key(|d| d.mounts().next().is_none());
    let Some(d) = esps.first() else {
        notes.push("no EFI system partition found: boot.esp keeps bifrost's defaults".into());
        return Esp::default();
    };
    Esp {
        mount_point: d
            .mounts()
            .map(|(mp, _)| mp)
            .find(|mp| usable_mount_point(mp))
            .map(Utf8PathBuf::from)
            .unwrap_or_else(spec::defaults::esp_mount_point),
        device: d.stable_path().into(),
        fs_type: spec::defaults::esp_fs_type(),
        size_mib: spec::defaults::esp_size_mib(),
    }
}

/// The first LUKS container, and its opened mapping if that holds btrfs.
fn crypt<'a>(devs: &[&'a Dev]) -> Option<(&'a Dev, Option<&'a Dev>)> {
    devs.iter().copied().find_map(|d| {
        (d.fstype() == "crypto_LUKS").then(|| {
            let inner = d
                .children
                .iter()
                .find(|c| c.is("crypt") && c.fstype() == "btrfs");
            (d, inner)
        })
    })
}

/// The opened btrfs pool of the LUKS container, if any.
pub(super) fn open_pool(devices: &[Dev]) -> Option<&Dev> {
    crypt(&flatten(devices)).and_then(|(_, inner)| inner)
}

/// `storage.luks` and the opened pool it holds.
pub(super) fn luks<'a>(devs: &[&'a Dev], notes: &mut Notes) -> (Luks, Option<&'a Dev>) {
    let luks = |name: String, device: String| Luks {
        name,
        device: device.into(),
        allow_discards: true,
        argon2id: Default::default(),
        unlock: Default::default(),
    };
    match crypt(devs) {
        Some((outer, Some(inner))) => (luks(inner.name.clone(), outer.stable_path()), Some(inner)),
        Some((outer, None)) => {
            notes.push(format!(
                "{} is LUKS but not open (or holds no btrfs): open it and run detect again to see its subvolumes",
                outer.dev_path()
            ));
            (luks(spec::defaults::luks_name(), outer.stable_path()), None)
        }
        None => {
            notes.push(
                "no LUKS2 container found: storage.luks is bifrost's default (/dev/disk/by-partlabel/pool), which `bifrost install` creates; point storage.luks.device at the partition to encrypt".into(),
            );
            (
                luks(spec::defaults::luks_name(), DEFAULT_POOL_DEVICE.into()),
                None,
            )
        }
    }
}

/// The pool's label, else bifrost's default.
pub(super) fn btrfs_label(pool: Option<&Dev>) -> String {
    pool.and_then(|p| p.label.clone())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(spec::defaults::btrfs_label)
}

/// Who owns a subvolume found on the machine.
fn owner(name: &str, mounted: bool, running_nixos: bool) -> SubvolumeOwner {
    if name == "@shared" {
        SubvolumeOwner::Shared
    } else if mounted && running_nixos {
        SubvolumeOwner::Nixos
    } else {
        SubvolumeOwner::Kinoite
    }
}

/// The pool's subvolumes: mounted ones (with their mount options) then the
/// other top-level ones from `btrfs subvolume list`, and a note for each
/// the settings cannot hold.
pub(super) fn pool_subvolumes(
    pool: &Dev,
    mounts: &[Mount],
    listed: Option<&[String]>,
    running_nixos: bool,
    notes: &mut Notes,
) -> Vec<Subvolume> {
    let mut left_out = BTreeSet::new();
    let mut subvolumes = mounted_subvolumes(pool, mounts, running_nixos, &mut left_out, notes);
    match listed {
        Some(names) => unmounted_subvolumes(names, &mut subvolumes, &mut left_out),
        None => notes.push(
            "no `btrfs subvolume list` output: only mounted subvolumes are listed (run as root with btrfs-progs)".into(),
        ),
    }
    for name in left_out.iter().filter(|n| !usable_subvolume_name(n)) {
        notes.push(format!(
            "subvolume {name:?} is left out: bifrost's settings cannot hold that name; bifrost never touches it"
        ));
    }
    subvolumes
}

/// Subvolumes mounted from the pool, in lsblk's order, each once.
fn mounted_subvolumes(
    pool: &Dev,
    mounts: &[Mount],
    running_nixos: bool,
    left_out: &mut BTreeSet<String>,
    notes: &mut Notes,
) -> Vec<Subvolume> {
    let mapper = format!("/dev/mapper/{}", pool.name);
    let pool_path = pool.dev_path();
    let mut subvolumes: Vec<Subvolume> = Vec::new();
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
            left_out.insert(name);
            continue;
        }
        let owner = owner(&name, true, running_nixos);
        if owner != SubvolumeOwner::Kinoite && !usable_mount_point(&mp) {
            notes.push(format!(
                "subvolume {name} mounted at {mp:?} is left out: bifrost's settings cannot hold that mount point; move it or add the subvolume by hand"
            ));
            left_out.insert(name);
            continue;
        }
        let mount_options = mounts
            .iter()
            .find(|m| m.mount_point == mp && (m.source == mapper || m.source == pool_path))
            .map(|m| kept_options(&m.options))
            .unwrap_or_else(spec::defaults::mount_options);
        subvolumes.push(Subvolume {
            name,
            mount_point: (owner != SubvolumeOwner::Kinoite).then(|| mp.into()),
            mount_options,
            owner,
        });
    }
    subvolumes
}

/// Top-level subvolumes nothing mounts: the other system's (never touched).
fn unmounted_subvolumes(
    names: &[String],
    subvolumes: &mut Vec<Subvolume>,
    left_out: &mut BTreeSet<String>,
) {
    for name in names {
        if subvolumes.iter().any(|s| &s.name == name) || left_out.contains(name) {
            continue;
        }
        if !usable_subvolume_name(name) {
            left_out.insert(name.clone());
            continue;
        }
        subvolumes.push(Subvolume {
            name: name.clone(),
            mount_point: None,
            mount_options: spec::defaults::mount_options(),
            owner: owner(name, false, false),
        });
    }
}

/// A swap file in a mounted pool subvolume (other than `/`) becomes
/// `storage.swap`; the last one the kernel lists wins.
pub(super) fn swap_file(swaps: &[SwapArea], subvolumes: &[Subvolume]) -> Swap {
    swaps
        .iter()
        .rev()
        .filter(|s| s.kind == "file")
        .find(|s| {
            subvolumes.iter().any(|v| {
                v.mount_point
                    .as_deref()
                    .is_some_and(|mp| mp != "/" && Utf8Path::new(&s.path).starts_with(mp))
            })
        })
        .map(|s| Swap {
            kind: SwapKind::File,
            size_mib: u32::try_from(s.size_kib.div_ceil(1024)).unwrap_or(u32::MAX),
        })
        .unwrap_or_default()
}

/// zram in use is not carried over (its size is a choice): say how to keep it.
pub(super) fn note_zram(swap: &Swap, swaps: &[SwapArea], notes: &mut Notes) {
    if swap.kind == SwapKind::None && swaps.iter().any(|s| s.path.starts_with("/dev/zram")) {
        notes.push("zram swap in use: set storage.swap to { \"kind\": \"zram\", \"sizeMib\": … } to keep it".into());
    }
}

/// bifrost boots NixOS from the pool: with no subvolume mounted at `/`,
/// propose `@`, `@home` and `@nix`, under names of NixOS's own where the
/// other system (as Fedora, openSUSE and Ubuntu do) uses those names.
pub(super) fn propose_nixos_subvolumes(subvolumes: &mut Vec<Subvolume>, notes: &mut Notes) {
    let mounted_at = |subs: &[Subvolume], mp: &str| {
        subs.iter()
            .any(|s| s.mount_point.as_deref() == Some(Utf8Path::new(mp)))
    };
    if mounted_at(subvolumes, "/") {
        return;
    }
    let mut added = Vec::new();
    for (name, mp) in [("@", "/"), ("@home", "/home"), ("@nix", "/nix")] {
        let taken = |n: &str| subvolumes.iter().find(|s| s.name == n).map(|s| s.owner);
        let name = match taken(name) {
            None => name.to_string(),
            Some(SubvolumeOwner::Nixos) => continue,
            Some(_) => {
                let own = own_name(name);
                if taken(&own).is_some() {
                    continue;
                }
                notes.push(format!(
                    "{name} belongs to the system running now: NixOS gets {own} for {mp}"
                ));
                own
            }
        };
        if mounted_at(subvolumes, mp) {
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

/// NixOS's own name for a subvolume name another system uses: `@` →
/// `@nixos`, `@home` → `@nixos-home`.
fn own_name(name: &str) -> String {
    let rest = name.trim_start_matches('@').replace('@', "");
    if rest.is_empty() {
        "@nixos".into()
    } else {
        format!("@nixos-{rest}")
    }
}

/// Kinoite beside NixOS: its /boot is a partition outside the pool. Run on
/// Kinoite (`on_kinoite`) it is the one mounted at /boot, which Fedora's
/// installer leaves unlabelled; run from NixOS or the installer, an
/// unmounted labelled ext4 partition, looked for only when the pool holds
/// Kinoite's subvolumes.
pub(super) fn kinoite(
    devs: &[&Dev],
    on_kinoite: bool,
    subvolumes: &[Subvolume],
    notes: &mut Notes,
) -> Option<Kinoite> {
    let kinoite_pool = subvolumes
        .iter()
        .any(|s| s.owner == SubvolumeOwner::Kinoite);
    let boot = if on_kinoite {
        devs.iter().copied().find(|d| {
            d.is("part")
                && KINOITE_BOOT_FS.contains(&d.fstype())
                && d.mounts().any(|(mp, _)| mp == "/boot")
        })
    } else if kinoite_pool {
        devs.iter().copied().find(|d| {
            d.is("part")
                && d.fstype() == "ext4"
                && d.mounts().next().is_none()
                && (d.label.is_some() || d.partlabel.is_some())
        })
    } else {
        None
    }?;
    let volume = boot.boot_volume()?;
    if on_kinoite {
        notes.push(format!(
            "Kinoite's ostree /boot ({}) is dualBoot.kinoite.bootVolume {volume}",
            boot.dev_path()
        ));
    }
    Some(Kinoite {
        boot_volume: volume,
        entries_dir: spec::defaults::bls_entries(),
        boot_fs_type: boot.fstype().to_owned(),
        title: spec::defaults::kinoite_title(),
        mode: Default::default(),
    })
}

/// Booted by ostree (`ostree=` on the kernel command line) and not NixOS.
pub(super) fn on_kinoite(cmdline: &[String], running_nixos: bool) -> bool {
    !running_nixos && cmdline.iter().any(|a| a.starts_with("ostree="))
}

/// Data both systems share: proposed when the pool lacks it; `bifrost
/// install` creates it (never formats or overwrites one that exists).
pub(super) fn propose_shared(subvolumes: &mut Vec<Subvolume>, notes: &mut Notes) {
    if subvolumes.iter().any(|s| s.owner == SubvolumeOwner::Shared) {
        return;
    }
    subvolumes.push(Subvolume {
        name: "@shared".into(),
        mount_point: Some("/shared".into()),
        mount_options: spec::defaults::mount_options(),
        owner: SubvolumeOwner::Shared,
    });
    notes.push("no @shared subvolume: proposed @shared at /shared for data both systems use (created by `bifrost install`)".into());
}

/// A virtio disk needs the virtio drivers in the initrd.
pub(super) fn extra_initrd_modules(devs: &[&Dev]) -> Vec<String> {
    if devs
        .iter()
        .any(|d| d.is("disk") && d.name.starts_with("vd"))
    {
        vec!["virtio_pci".into(), "virtio_blk".into()]
    } else {
        Vec::new()
    }
}

/// The people in `passwd` (uids in [`spec::USER_UIDS`]), the first one an
/// administrator: on a Kinoite machine that is its owner, uid 1000, whose
/// files on the shared subvolume NixOS must give to the same person.
pub(super) fn users(passwd: &str, notes: &mut Notes) -> Vec<User> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::DevNum;
    use crate::spec::HardwareProfile;

    fn dev(name: &str, kind: &str, fstype: &str) -> Dev {
        Dev {
            name: name.into(),
            kind: Some(kind.into()),
            fstype: (!fstype.is_empty()).then(|| fstype.into()),
            ..Dev::default()
        }
    }

    fn mounted(mut d: Dev, at: &[(&str, &str)]) -> Dev {
        d.mountpoints = at.iter().map(|(mp, _)| Some(mp.to_string())).collect();
        d.fsroots = at.iter().map(|(_, r)| Some(r.to_string())).collect();
        d
    }

    fn mount(mp: &str, source: &str, options: &[&str]) -> Mount {
        Mount {
            dev: DevNum {
                major: 0,
                minor: 40,
            },
            mount_point: mp.into(),
            fs_type: "btrfs".into(),
            source: source.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    fn sub(name: &str, mp: Option<&str>, owner: SubvolumeOwner) -> Subvolume {
        Subvolume {
            name: name.into(),
            mount_point: mp.map(Into::into),
            mount_options: spec::defaults::mount_options(),
            owner,
        }
    }

    fn names(subs: &[Subvolume]) -> Vec<(&str, Option<&str>, SubvolumeOwner)> {
        subs.iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.mount_point.as_deref().map(|p| p.as_str()),
                    s.owner,
                )
            })
            .collect()
    }

    #[test]
    fn profile_from_dmi_notes_a_missing_product() {
        let mut notes = Notes::new();
        let p = profile("Microsoft Corporation", "Surface Pro 8", &mut notes);
        assert_eq!((p.id, notes.len()), (HardwareProfile::SurfacePro8, 0));
        let p = profile("", "", &mut notes);
        assert_eq!(p.id, HardwareProfile::GenericX86_64Uefi);
        assert!(notes[0].contains("no DMI product name"), "{notes:?}");
    }

    #[test]
    fn host_name_is_made_valid() {
        let mut notes = Notes::new();
        assert_eq!(host_name("My_Laptop.local", &mut notes), "my-laptop-local");
        assert_eq!(host_name(&"a".repeat(80), &mut notes).len(), 63);
        assert!(notes.is_empty());
        assert_eq!(host_name("--", &mut notes), "nixos");
        assert_eq!(notes, ["no etc/hostname: hostName is \"nixos\""]);
    }

    #[test]
    fn esp_prefers_the_mounted_one_and_a_usable_mount_point() {
        let esp_part = |name: &str, label: &str| Dev {
            parttype: Some(ESP_PARTTYPE.to_uppercase()),
            partlabel: Some(label.into()),
            ..dev(name, "part", "vfat")
        };
        let unmounted = esp_part("sda1", "OLD");
        let used = mounted(esp_part("nvme0n1p1", "ESP"), &[("/efi", "/")]);
        let mut notes = Notes::new();
        let e = esp(&[&unmounted, &used], &mut notes);
        assert_eq!(e.device, "/dev/disk/by-partlabel/ESP");
        assert_eq!(e.mount_point, "/efi");
        let odd = mounted(esp_part("sda1", "ESP"), &[("/my\\040efi", "/")]);
        let e = esp(&[&odd], &mut notes);
        assert_eq!(e.mount_point, spec::defaults::esp_mount_point());
        assert!(notes.is_empty());
        assert_eq!(esp(&[], &mut notes), Esp::default());
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn luks_names_the_open_mapping_or_proposes_the_default() {
        let inner = dev("cryptroot", "crypt", "btrfs");
        let outer = Dev {
            partlabel: Some("pool".into()),
            children: vec![inner],
            ..dev("nvme0n1p2", "part", "crypto_LUKS")
        };
        let mut notes = Notes::new();
        let all = flatten(std::slice::from_ref(&outer));
        let (l, pool) = luks(&all, &mut notes);
        assert_eq!(
            (l.name.as_str(), l.device.as_str()),
            ("cryptroot", "/dev/disk/by-partlabel/pool")
        );
        assert_eq!(pool.map(|p| p.name.as_str()), Some("cryptroot"));
        assert!(notes.is_empty());
        assert_eq!(
            open_pool(std::slice::from_ref(&outer)).unwrap().name,
            "cryptroot"
        );

        let closed = Dev {
            children: vec![],
            ..outer.clone()
        };
        let (l, pool) = luks(&[&closed], &mut notes);
        assert_eq!(l.name, spec::defaults::luks_name());
        assert!(pool.is_none() && notes[0].contains("is LUKS but not open"));

        let (l, pool) = luks(&[], &mut notes);
        assert_eq!(l.device, DEFAULT_POOL_DEVICE);
        assert!(pool.is_none() && notes[1].contains("no LUKS2 container"));
        assert_eq!(btrfs_label(None), spec::defaults::btrfs_label());
    }

    #[test]
    fn pool_subvolumes_owners_options_and_left_out() {
        let pool = mounted(
            dev("cryptroot", "crypt", "btrfs"),
            &[
                ("/", "/@"),
                ("/home", "/@home"),
                ("/data", "/old backup"),
                ("/my\\040share", "/@shared"),
                ("/.snapshots/1/snapshot", "/@snapshots/1/snapshot"),
            ],
        );
        let mounts = [mount(
            "/",
            "/dev/mapper/cryptroot",
            &["rw", "noatime", "compress=zstd:1", "space_cache=v2"],
        )];
        let listed = [
            "@".to_string(),
            "@root".into(),
            "old backup".into(),
            "@shared".into(),
        ];
        let mut notes = Notes::new();
        let subs = pool_subvolumes(&pool, &mounts, Some(&listed), true, &mut notes);
        assert_eq!(
            names(&subs),
            [
                ("@", Some("/"), SubvolumeOwner::Nixos),
                ("@home", Some("/home"), SubvolumeOwner::Nixos),
                ("@root", None, SubvolumeOwner::Kinoite),
            ]
        );
        assert_eq!(subs[0].mount_options, ["noatime", "compress=zstd:1"]);
        assert_eq!(subs[1].mount_options, spec::defaults::mount_options());
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("@shared mounted at \"/my share\" is left out"));
        assert!(notes[1].contains("\"old backup\" is left out"));

        // Not NixOS: what is mounted belongs to the running system; no list.
        let mut notes = Notes::new();
        let subs = pool_subvolumes(&pool, &mounts, None, false, &mut notes);
        assert_eq!(subs[0].owner, SubvolumeOwner::Kinoite);
        assert_eq!(subs[0].mount_point, None);
        assert!(notes
            .iter()
            .any(|n| n.contains("no `btrfs subvolume list`")));
    }

    #[test]
    fn swap_file_only_inside_a_pool_subvolume() {
        let subs = [
            sub("@", Some("/"), SubvolumeOwner::Nixos),
            sub("@swap", Some("/swap"), SubvolumeOwner::Nixos),
        ];
        let area = |path: &str, kind: &str, kib| SwapArea {
            path: path.into(),
            kind: kind.into(),
            size_kib: kib,
        };
        let s = swap_file(&[area("/swap/swapfile", "file", 2097148)], &subs);
        assert_eq!((s.kind, s.size_mib), (SwapKind::File, 2048));
        // In `/` only (not a subvolume of its own) or a partition: none.
        let none = swap_file(
            &[
                area("/swapfile", "file", 1024),
                area("/dev/sda3", "partition", 1024),
            ],
            &subs,
        );
        assert_eq!(none, Swap::default());
        let mut notes = Notes::new();
        note_zram(&none, &[area("/dev/zram0", "partition", 4096)], &mut notes);
        assert!(notes[0].contains("zram swap in use"));
        note_zram(&s, &[area("/dev/zram0", "partition", 4096)], &mut notes);
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn nixos_gets_subvolumes_of_its_own() {
        let mut notes = Notes::new();
        let mut subs = vec![
            sub("@", None, SubvolumeOwner::Kinoite),
            sub("@home", None, SubvolumeOwner::Kinoite),
            sub("@nixos-home", None, SubvolumeOwner::Kinoite),
        ];
        propose_nixos_subvolumes(&mut subs, &mut notes);
        assert_eq!(
            names(&subs[3..]),
            [
                ("@nixos", Some("/"), SubvolumeOwner::Nixos),
                ("@nix", Some("/nix"), SubvolumeOwner::Nixos),
            ]
        );
        assert_eq!(
            notes,
            [
                "@ belongs to the system running now: NixOS gets @nixos for /",
                "no NixOS root subvolume mounted: proposed @nixos, @nix (created by `bifrost install`)"
            ]
        );
        // A root mounted already: nothing proposed.
        let mut notes = Notes::new();
        let mut subs = vec![sub("@", Some("/"), SubvolumeOwner::Nixos)];
        propose_nixos_subvolumes(&mut subs, &mut notes);
        assert_eq!((subs.len(), notes.len()), (1, 0));
        assert_eq!(own_name("@nix"), "@nixos-nix");
    }

    #[test]
    fn kinoite_boot_from_kinoite_itself_or_beside_it() {
        let boot = Dev {
            uuid: Some("3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b".into()),
            ..mounted(dev("nvme0n1p2", "part", "ext4"), &[("/boot", "/")])
        };
        let mut notes = Notes::new();
        let k = kinoite(&[&boot], true, &[], &mut notes).unwrap();
        assert_eq!(
            k.boot_volume.to_string(),
            "UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b"
        );
        assert!(notes[0].contains("Kinoite's ostree /boot (/dev/nvme0n1p2)"));
        // From NixOS: only an unmounted, labelled ext4, and only with a Kinoite pool.
        let labelled = Dev {
            label: Some("fedora-boot".into()),
            ..dev("nvme0n1p2", "part", "ext4")
        };
        let theirs = [sub("root", None, SubvolumeOwner::Kinoite)];
        assert!(kinoite(&[&labelled], false, &[], &mut notes).is_none());
        assert!(kinoite(&[&boot], false, &theirs, &mut notes).is_none());
        let k = kinoite(&[&labelled], false, &theirs, &mut notes).unwrap();
        assert_eq!(k.boot_volume.to_string(), "LABEL=fedora-boot");
        assert_eq!(notes.len(), 1);

        let cmd = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(on_kinoite(
            &cmd("quiet ostree=/ostree/boot.1/fedora/x/0"),
            false
        ));
        assert!(!on_kinoite(&cmd("quiet ostree=/x"), true));
        assert!(!on_kinoite(&cmd("quiet"), false));
    }

    #[test]
    fn shared_is_proposed_once() {
        let mut notes = Notes::new();
        let mut subs = vec![sub("@", Some("/"), SubvolumeOwner::Nixos)];
        propose_shared(&mut subs, &mut notes);
        propose_shared(&mut subs, &mut notes);
        assert_eq!(
            names(&subs[1..]),
            [("@shared", Some("/shared"), SubvolumeOwner::Shared)]
        );
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn virtio_disks_add_virtio_drivers() {
        assert_eq!(
            extra_initrd_modules(&[&dev("vda", "disk", "")]),
            ["virtio_pci", "virtio_blk"]
        );
        assert!(extra_initrd_modules(&[&dev("nvme0n1", "disk", "")]).is_empty());
        assert!(extra_initrd_modules(&[&dev("vda1", "part", "")]).is_empty());
    }

    #[test]
    fn users_come_from_passwd_first_is_admin() {
        let mut notes = Notes::new();
        let passwd = "root:x:0:0::/root:/bin/bash\nnobody:x:65534:65534::/:/sbin/nologin\nbob:x:1001:1001::/home/bob:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nsvc:x:1002:1002::/:/usr/sbin/nologin\n";
        let u = users(passwd, &mut notes);
        let got: Vec<(&str, u32, bool)> = u
            .iter()
            .map(|u| (u.name.as_str(), u.uid, u.admin))
            .collect();
        assert_eq!(got, [("alice", 1000, true), ("bob", 1001, false)]);
        assert!(notes.is_empty());
        let u = users("", &mut notes);
        assert_eq!(
            (u[0].name.as_str(), u[0].uid, u[0].admin),
            ("user", 1000, true)
        );
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn mount_options_kept_from_mountinfo() {
        let m =
            crate::mounts::parse("21 20 8:1 / /mnt/my\\040disk rw,noatime - vfat /dev/sda1 rw\n");
        assert_eq!(m[0].mount_point, "/mnt/my disk");
        assert_eq!(kept_options(&m[0].options), vec!["noatime"]);
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
}
