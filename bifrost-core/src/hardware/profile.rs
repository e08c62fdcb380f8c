//! The catalogue of device profiles.

use crate::spec::{HardwareProfile, KernelSource};

/// What bifrost knows about one kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The profile in host settings.
    pub id: HardwareProfile,
    /// Human name.
    pub name: &'static str,
    /// DMI `sys_vendor` and `product_name` that identify the device, if any.
    pub dmi: Option<(&'static str, &'static str)>,
    /// nixos-hardware flake module (`nixos-hardware.nixosModules.<name>`) the
    /// device uses. bifrost's flake imports it in the module named after the
    /// profile ([`Profile::flake_module`]).
    pub nixos_hardware_module: Option<&'static str>,
    /// The kernel detection proposes for the device.
    pub default_kernel: KernelSource,
    /// Storage and USB drivers the initrd may need to find the root disk
    /// (`boot.initrd.availableKernelModules`; loaded when udev sees the device).
    pub initrd_available: &'static [&'static str],
    /// Drivers the initrd loads unconditionally (`boot.initrd.kernelModules`).
    /// On the Surface Pro 8 the keyboard cover hangs off the Surface Aggregator
    /// Module over an LPSS UART; nothing asks for those drivers before the
    /// LUKS passphrase prompt, so they must be forced in or the cover is dead
    /// at the prompt (linux-surface's disk-encryption advice).
    pub initrd_forced: &'static [&'static str],
}

/// Every known profile.
pub const PROFILES: &[Profile] = &[
    Profile {
        id: HardwareProfile::SurfacePro8,
        name: "Microsoft Surface Pro 8",
        dmi: Some(("Microsoft Corporation", "Surface Pro 8")),
        nixos_hardware_module: Some("microsoft-surface-pro-intel"),
        default_kernel: KernelSource::LinuxSurface,
        initrd_available: &["nvme", "xhci_pci", "thunderbolt", "usb_storage", "sd_mod"],
        initrd_forced: &[
            "surface_aggregator",
            "surface_aggregator_registry",
            "surface_aggregator_hub",
            "surface_hid_core",
            "surface_hid",
            "intel_lpss",
            "intel_lpss_pci",
            "8250_dw",
            "pinctrl_tigerlake",
        ],
    },
    Profile {
        id: HardwareProfile::GenericX86_64Uefi,
        name: "generic x86_64 UEFI machine",
        dmi: None,
        nixos_hardware_module: None,
        default_kernel: KernelSource::NixosDefault,
        initrd_available: &[
            "nvme",
            "xhci_pci",
            "ahci",
            "usbhid",
            "usb_storage",
            "sd_mod",
        ],
        initrd_forced: &[],
    },
];

impl Profile {
    /// The catalogue entry of `id`.
    pub fn of(id: HardwareProfile) -> &'static Profile {
        PROFILES
            .iter()
            .find(|p| p.id == id)
            .expect("every HardwareProfile has a catalogue entry")
    }

    /// The profile's name in host settings (`surface-pro-8`).
    pub fn key(&self) -> String {
        match serde_json::to_value(self.id) {
            Ok(serde_json::Value::String(s)) => s,
            _ => unreachable!("profile ids serialize as strings"),
        }
    }

    /// bifrost's flake module that imports the profile's nixos-hardware
    /// module (`nixosModules.<profile>`, beside `default`; imports cannot
    /// depend on the settings, see flake.nix), if the profile needs one.
    pub fn flake_module(&self) -> Option<String> {
        self.nixos_hardware_module.map(|_| self.key())
    }

    /// The profile whose DMI identity matches, else the generic one.
    pub fn from_dmi(vendor: &str, product: &str) -> &'static Profile {
        PROFILES
            .iter()
            .find(|p| {
                p.dmi
                    .is_some_and(|(v, n)| v == vendor.trim() && n == product.trim())
            })
            .unwrap_or_else(|| Profile::of(HardwareProfile::GenericX86_64Uefi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_has_an_entry() {
        for id in [
            HardwareProfile::SurfacePro8,
            HardwareProfile::GenericX86_64Uefi,
        ] {
            assert_eq!(Profile::of(id).id, id);
        }
    }

    #[test]
    fn only_profiles_with_a_nixos_hardware_module_have_a_flake_module() {
        let surface = Profile::of(HardwareProfile::SurfacePro8);
        assert_eq!(surface.flake_module().as_deref(), Some("surface-pro-8"));
        let generic = Profile::of(HardwareProfile::GenericX86_64Uefi);
        assert_eq!(generic.key(), "generic-x86_64-uefi");
        assert_eq!(generic.flake_module(), None);
    }

    #[test]
    fn dmi_recognises_the_surface_pro_8_only() {
        assert_eq!(
            Profile::from_dmi("Microsoft Corporation\n", "Surface Pro 8\n").id,
            HardwareProfile::SurfacePro8
        );
        assert_eq!(
            Profile::from_dmi("Microsoft Corporation", "Surface Pro 7").id,
            HardwareProfile::GenericX86_64Uefi
        );
        assert_eq!(
            Profile::from_dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)").id,
            HardwareProfile::GenericX86_64Uefi
        );
    }
}
