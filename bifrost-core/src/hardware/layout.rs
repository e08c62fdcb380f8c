//! bifrost's fixed facts about a machine's storage and devices, which host
//! settings do not carry: the ESP's mount options, where a swap file lives,
//! and the device profiles ([`super::PROFILES`]). Rust owns them; Nix reads
//! them as `modules/generated/facts.json` ([`crate::nixdata`]) and
//! `bifrost gen hardware` writes them into the module it renders.
//!
//! How host settings become NixOS configuration with these facts is written
//! once, in Nix: `modules/lib/hardware-config.nix` ([`HARDWARE_CONFIG_NIX`]).

use super::Profile;
use crate::spec::HostSettings;
use serde_json::{json, Map, Value};

/// Where the swap file lives when `storage.swap.kind` is `file`.
pub const SWAP_MOUNT_POINT: &str = "/swap";
/// The subvolume mounted there unless the settings mount one themselves.
pub const SWAP_SUBVOLUME: &str = "@swap";
/// Its mount options: no compression (btrfs refuses swap files in
/// compressed subvolumes).
pub const SWAP_MOUNT_OPTIONS: &[&str] = &["noatime"];
/// The swap file.
pub const SWAP_FILE: &str = "/swap/swapfile";
/// What nixos-generate-config writes for a FAT ESP: only root may read it.
pub const ESP_OPTIONS: &[&str] = &["fmask=0077", "dmask=0077"];

/// The Nix function from host settings and [`facts`] to the NixOS
/// configuration of the hardware and storage (`modules/lib/hardware-config.nix`,
/// which the bifrost NixOS module applies to `bifrost.settings`).
pub const HARDWARE_CONFIG_NIX: &str = include_str!("../../../modules/lib/hardware-config.nix");

/// Exactly the settings [`HARDWARE_CONFIG_NIX`] reads, each field present
/// (the JSON form of the settings leaves out empty lists and unmounted
/// subvolumes' mount points). `bifrost gen hardware` writes these and no
/// others; `storage_layout::gen_hardware_writes_exactly_the_settings_the_layout_reads`
/// evaluates the Nix function on them with each field in turn made to fail,
/// so a field it does not read, or one it reads that is missing here, fails.
pub fn settings(s: &HostSettings) -> Value {
    let esp = &s.boot.esp;
    let luks = &s.storage.luks;
    let subvolumes: Vec<Value> = s
        .storage
        .subvolumes
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "mountPoint": v.mount_point,
                "mountOptions": v.mount_options,
            })
        })
        .collect();
    json!({
        "hardware": {
            "profile": s.hardware.profile,
            "extraInitrdModules": s.hardware.extra_initrd_modules,
        },
        "kernel": {
            "source": s.kernel.source,
            "surfaceVersion": s.kernel.surface_version,
            "params": s.kernel.params,
        },
        "boot": { "esp": {
            "mountPoint": esp.mount_point,
            "device": esp.device,
            "fsType": esp.fs_type,
        } },
        "storage": {
            "luks": {
                "name": luks.name,
                "device": luks.device,
                "allowDiscards": luks.allow_discards,
            },
            "subvolumes": subvolumes,
            "swap": {
                "kind": s.storage.swap.kind,
                "sizeMib": s.storage.swap.size_mib,
            },
        },
    })
}

/// The facts as the Nix side reads them, with the given device profiles.
pub fn facts<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> Value {
    let profiles: Map<String, Value> = profiles
        .into_iter()
        .map(|p| {
            let value = json!({
                "name": p.name,
                "nixosHardwareModule": p.nixos_hardware_module,
                "initrdAvailable": p.initrd_available,
                "initrdForced": p.initrd_forced,
            });
            (p.key(), value)
        })
        .collect();
    json!({
        "profiles": profiles,
        "esp": { "mountOptions": ESP_OPTIONS },
        "swap": {
            "mountPoint": SWAP_MOUNT_POINT,
            "subvolume": SWAP_SUBVOLUME,
            "mountOptions": SWAP_MOUNT_OPTIONS,
            "file": SWAP_FILE,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_key_profiles_by_their_settings_name() {
        let f = facts(super::super::PROFILES);
        assert_eq!(
            f["profiles"]["surface-pro-8"]["nixosHardwareModule"],
            "microsoft-surface-pro-intel"
        );
        assert_eq!(
            f["profiles"]["generic-x86_64-uefi"]["initrdForced"],
            json!([])
        );
        assert_eq!(f["swap"]["file"], "/swap/swapfile");
    }

    /// The function's arguments are what render.rs passes and what the
    /// modules pass (checked for real by the module tests in tests/).
    #[test]
    fn the_nix_function_takes_settings_and_facts() {
        for arg in ["lib,", "pkgs,", "settings,", "facts,"] {
            assert!(HARDWARE_CONFIG_NIX.contains(&format!("\n  {arg}")), "{arg}");
        }
    }
}
