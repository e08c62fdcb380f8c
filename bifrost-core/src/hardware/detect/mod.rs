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

mod lsblk;
mod machine;
mod report;
mod steps;

pub use lsblk::Dev;
pub use machine::{
    LsblkSource, Machine, RootMachine, Snapshot, SwapArea, LSBLK_FILE, SUBVOLUME_LIST_FILE,
};

use super::HardwareError;
use crate::spec::{self, Boot, DualBoot, Hardware, HostSettings, Kernel, Storage};
use serde::Serialize;

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

/// Detect the machine seen by `machine`: read it once, then decide.
pub fn detect(machine: &dyn Machine) -> Result<Detection, HardwareError> {
    decide(&Snapshot::read(machine)?)
}

/// Host settings for the machine `s` describes. Each step is a function of
/// [`steps`]; the notes come in the order the steps run. The settings are
/// validated before they are returned: invalid ones would be a bug in a
/// step ([`HardwareError::Invalid`]).
pub fn decide(s: &Snapshot) -> Result<Detection, HardwareError> {
    let mut notes = Vec::new();
    let profile = steps::profile(&s.vendor, &s.product, &mut notes);
    let host_name = steps::host_name(&s.hostname, &mut notes);
    let devs = lsblk::flatten(&s.devices);
    let esp = steps::esp(&devs, &mut notes);
    let (luks, pool) = steps::luks(&devs, &mut notes);
    let running_nixos = s.os_id == "nixos";

    let (mut subvolumes, swap) = match pool {
        Some(pool) => {
            let subvolumes = steps::pool_subvolumes(
                pool,
                &s.mounts,
                s.subvolume_list.as_deref(),
                running_nixos,
                &mut notes,
            );
            let swap = steps::swap_file(&s.swaps, &subvolumes);
            (subvolumes, swap)
        }
        None => (Vec::new(), Default::default()),
    };
    steps::note_zram(&swap, &s.swaps, &mut notes);
    steps::propose_nixos_subvolumes(&mut subvolumes, &mut notes);

    let kinoite = steps::kinoite(
        &devs,
        steps::on_kinoite(&s.cmdline, running_nixos),
        &subvolumes,
        &mut notes,
    );
    if kinoite.is_some() {
        steps::propose_shared(&mut subvolumes, &mut notes);
    }
    let users = steps::users(&s.passwd, &mut notes);

    let settings = HostSettings {
        schema: None,
        host_name,
        hardware: Hardware {
            profile: profile.id,
            extra_initrd_modules: steps::extra_initrd_modules(&devs),
        },
        kernel: Kernel {
            source: profile.default_kernel,
            ..Kernel::default()
        },
        boot: Boot {
            esp,
            ..Boot::default()
        },
        storage: Storage {
            luks,
            btrfs_label: steps::btrfs_label(pool),
            subvolumes,
            swap,
            shared_group: Default::default(),
        },
        dual_boot: DualBoot { kinoite },
        desktop: Default::default(),
        security: Default::default(),
        packages: Default::default(),
        nix: Default::default(),
        output: Default::default(),
        users,
    };
    Ok(Detection {
        vendor: s.vendor.clone(),
        product: s.product.clone(),
        settings: spec::validated(settings)
            .map_err(|problems| HardwareError::Invalid { problems })?,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SubvolumeOwner;

    /// A machine that says nothing still gets valid settings, and every
    /// proposal is named, in the order the steps run.
    #[test]
    fn an_empty_machine_gets_bifrost_defaults_with_notes() {
        // decide validates what it proposes: Ok means `bifrost check` passes.
        let d = decide(&Snapshot::default()).unwrap();
        let starts: Vec<&str> = d.notes.iter().map(|n| &n[..12]).collect();
        assert_eq!(
            starts,
            [
                "no DMI produ",
                "no etc/hostn",
                "no EFI syste",
                "no LUKS2 con",
                "no NixOS roo",
                "no person in"
            ]
        );
        let subs: Vec<_> = d
            .settings
            .storage
            .subvolumes
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(subs, ["@", "@home", "@nix"]);
    }

    /// Kinoite running, its pool open: its subvolumes stay its own, NixOS
    /// gets the default layout, Kinoite's /boot and `@shared` are proposed.
    #[test]
    fn kinoite_running_with_its_pool_open() {
        let pool = Dev {
            name: "luks-1234".into(),
            kind: Some("crypt".into()),
            fstype: Some("btrfs".into()),
            label: Some("fedora".into()),
            mountpoints: vec![Some("/sysroot".into()), Some("/var/home".into())],
            fsroots: vec![Some("/root".into()), Some("/home".into())],
            ..Dev::default()
        };
        let disk = Dev {
            name: "nvme0n1".into(),
            kind: Some("disk".into()),
            children: vec![
                Dev {
                    name: "nvme0n1p2".into(),
                    kind: Some("part".into()),
                    fstype: Some("ext4".into()),
                    uuid: Some("3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b".into()),
                    mountpoints: vec![Some("/boot".into())],
                    ..Dev::default()
                },
                Dev {
                    name: "nvme0n1p3".into(),
                    kind: Some("part".into()),
                    fstype: Some("crypto_LUKS".into()),
                    uuid: Some("1234".into()),
                    children: vec![pool],
                    ..Dev::default()
                },
            ],
            ..Dev::default()
        };
        let s = Snapshot {
            vendor: "Microsoft Corporation".into(),
            product: "Surface Pro 8".into(),
            hostname: "fedora".into(),
            os_id: "fedora".into(),
            cmdline: vec!["ostree=/ostree/boot.1/fedora/abc/0".into()],
            devices: vec![disk],
            passwd: "kim:x:1000:1000::/var/home/kim:/bin/bash\n".into(),
            subvolume_list: Some(vec!["root".into(), "home".into()]),
            ..Snapshot::default()
        };
        let d = decide(&s).unwrap();
        let st = &d.settings.storage;
        assert_eq!(
            (st.luks.name.as_str(), st.btrfs_label.as_str()),
            ("luks-1234", "fedora")
        );
        let subs: Vec<_> = st
            .subvolumes
            .iter()
            .map(|v| (v.name.as_str(), v.owner))
            .collect();
        assert_eq!(
            subs,
            [
                ("root", SubvolumeOwner::Kinoite),
                ("home", SubvolumeOwner::Kinoite),
                ("@", SubvolumeOwner::Nixos),
                ("@home", SubvolumeOwner::Nixos),
                ("@nix", SubvolumeOwner::Nixos),
                ("@shared", SubvolumeOwner::Shared),
            ]
        );
        let k = d.settings.dual_boot.kinoite.as_ref().unwrap();
        assert_eq!(
            k.boot_volume.to_string(),
            "UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b"
        );
        assert_eq!(d.settings.users[0].name, "kim");
        // No ESP in this snapshot; the rest proposed: NixOS, /boot, @shared.
        assert_eq!(d.notes.len(), 4, "{:?}", d.notes);
    }
}
