//! Host settings → a NixOS module in the spirit of `hardware-configuration.nix`.
//!
//! The module sets exactly what `modules/storage.nix` and `modules/hardware.nix`
//! set for the same settings, so a host that imports `nixosModules.default`
//! and one that imports this file get the same file systems, LUKS device,
//! swap, initrd modules and kernel. Every value goes through [`nixexpr`].

use super::{HardwareError, Profile};
use crate::nixexpr::{self, Value};
use crate::spec::{HardwareProfile, HostSettings, KernelSource, Settings, SwapKind};
use std::collections::BTreeMap;

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

struct Attrs(BTreeMap<String, Value>);

impl Attrs {
    fn new() -> Self {
        Attrs(BTreeMap::new())
    }
    /// Set `value` at the dotted `path`, creating the sets on the way.
    fn set(&mut self, path: &[&str], value: Value) {
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut map = &mut self.0;
        for key in parents {
            let entry = map
                .entry((*key).to_string())
                .or_insert_with(|| Value::Attrs(BTreeMap::new()));
            map = match entry {
                Value::Attrs(m) => m,
                _ => unreachable!("renderer never sets a value and a set at one path"),
            };
        }
        map.insert((*last).to_string(), value);
    }
}

fn strs<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    Value::list(items.into_iter().map(Value::str))
}

/// The module's body (an attribute set) for `settings`.
pub fn module_value(settings: &Settings) -> Value {
    let profile = Profile::of(settings.hardware.profile);
    let storage = &settings.storage;
    let mut m = Attrs::new();

    // initrd: the profile's drivers, then the host's extras (deduplicated,
    // order kept, so the output is stable).
    let mut available: Vec<&str> = Vec::new();
    for name in profile.initrd_available.iter().copied().chain(
        settings
            .hardware
            .extra_initrd_modules
            .iter()
            .map(String::as_str),
    ) {
        if !available.contains(&name) {
            available.push(name);
        }
    }
    m.set(
        &["boot", "initrd", "availableKernelModules"],
        strs(available),
    );
    if !profile.initrd_forced.is_empty() {
        m.set(
            &["boot", "initrd", "kernelModules"],
            strs(profile.initrd_forced.iter().copied()),
        );
    }

    let luks = &storage.luks;
    m.set(
        &["boot", "initrd", "luks", "devices", &luks.name],
        Value::attrs([
            ("device", Value::str(luks.device.as_str())),
            ("allowDiscards", Value::Bool(luks.allow_discards)),
        ]),
    );

    match settings.kernel.source {
        KernelSource::LinuxSurface => m.set(
            &["hardware", "microsoft-surface", "kernelVersion"],
            Value::str(surface_version(settings)),
        ),
        KernelSource::NixosLatest => m.set(
            &["boot", "kernelPackages"],
            Value::Expr(kernel_expr(
                settings.hardware.profile,
                "linuxPackages_latest",
            )),
        ),
        KernelSource::NixosDefault => {
            if settings.hardware.profile == HardwareProfile::SurfacePro8 {
                m.set(
                    &["boot", "kernelPackages"],
                    Value::Expr(kernel_expr(settings.hardware.profile, "linuxPackages")),
                );
            }
        }
    }
    if !settings.kernel.params.is_empty() {
        m.set(
            &["boot", "kernelParams"],
            strs(settings.kernel.params.iter().map(String::as_str)),
        );
    }

    let pool = format!("/dev/mapper/{}", luks.name);
    let mut swap_mounted = false;
    for sv in &storage.subvolumes {
        let Some(mp) = &sv.mount_point else { continue };
        swap_mounted |= mp.as_str() == SWAP_MOUNT_POINT;
        let mut options = vec![format!("subvol={}", sv.name)];
        options.extend(sv.mount_options.iter().cloned());
        m.set(
            &["fileSystems", mp.as_str()],
            Value::attrs([
                ("device", Value::str(&pool)),
                ("fsType", Value::str("btrfs")),
                ("options", strs(options.iter().map(String::as_str))),
            ]),
        );
    }

    let esp = &settings.boot.esp;
    m.set(
        &["fileSystems", esp.mount_point.as_str()],
        Value::attrs([
            ("device", Value::str(esp.device.as_str())),
            ("fsType", Value::str(&esp.fs_type)),
            ("options", strs(ESP_OPTIONS.iter().copied())),
        ]),
    );

    match storage.swap.kind {
        SwapKind::None => m.set(&["swapDevices"], Value::list([])),
        SwapKind::File => {
            if !swap_mounted {
                // No compression and no snapshots: btrfs refuses swap files
                // in compressed or snapshotted subvolumes.
                let subvol = format!("subvol={SWAP_SUBVOLUME}");
                let options =
                    std::iter::once(subvol.as_str()).chain(SWAP_MOUNT_OPTIONS.iter().copied());
                m.set(
                    &["fileSystems", SWAP_MOUNT_POINT],
                    Value::attrs([
                        ("device", Value::str(&pool)),
                        ("fsType", Value::str("btrfs")),
                        ("options", strs(options)),
                    ]),
                );
            }
            m.set(
                &["swapDevices"],
                Value::list([Value::attrs([
                    ("device", Value::str(SWAP_FILE)),
                    ("size", Value::Int(i64::from(storage.swap.size_mib))),
                ])]),
            );
        }
        SwapKind::Zram => {
            m.set(&["swapDevices"], Value::list([]));
            m.set(&["zramSwap", "enable"], Value::Bool(true));
            m.set(
                &["zramSwap", "memoryMax"],
                Value::Int(i64::from(storage.swap.size_mib) * 1024 * 1024),
            );
        }
    }

    Value::Attrs(m.0)
}

fn surface_version(settings: &HostSettings) -> &'static str {
    match settings.kernel.surface_version {
        crate::spec::SurfaceKernelVersion::Longterm => "longterm",
        crate::spec::SurfaceKernelVersion::Stable => "stable",
    }
}

/// nixos-hardware's Surface module sets `boot.kernelPackages` at normal
/// priority; a nixpkgs kernel on a Surface must win over it.
fn kernel_expr(profile: HardwareProfile, attr: &str) -> String {
    if profile == HardwareProfile::SurfacePro8 {
        format!("lib.mkForce pkgs.{attr}")
    } else {
        format!("pkgs.{attr}")
    }
}

/// The whole generated file. `source` names the host file in the header.
pub fn render_module(settings: &Settings, source: &str) -> Result<String, HardwareError> {
    let profile = Profile::of(settings.hardware.profile);
    let body = nixexpr::render(&module_value(settings))?;
    let mut out = String::new();
    out.push_str("# Hardware configuration of ");
    // The header is a comment: keep it on one line whatever the names hold.
    out.push_str(&one_line(&settings.host_name));
    out.push_str(" (");
    out.push_str(profile.name);
    out.push_str("), generated by `bifrost gen hardware` from ");
    out.push_str(&one_line(source));
    out.push_str(".\n# Do not edit: change the host settings and generate again.\n");
    if let Some(module) = profile.nixos_hardware_module {
        out.push_str("# Needs nixos-hardware.nixosModules.");
        out.push_str(module);
        out.push_str(" (bifrost's nixosModules.surface-pro-8 imports it).\n");
    }
    out.push_str("{\n  lib,\n  pkgs,\n  ...\n}: ");
    out.push_str(&body);
    out.push('\n');
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
