//! The Kinoite entry of chainload mode: rEFInd starts Fedora's own boot
//! loader from the ESP (shim, which starts grub), and grub reads Kinoite's
//! current Boot Loader Specification entries itself. Nothing in this entry
//! names a kernel or a deployment, so Kinoite's updates never make it stale;
//! and shim is signed by Microsoft's third-party UEFI CA, so the chain keeps
//! working under Secure Boot.

use super::MenuEntry;

/// Fedora's boot loaders on the ESP, in the order they are preferred
/// (ESP-relative): shim first (Secure Boot), grub when shim is absent.
pub const FEDORA_LOADERS: [&str; 2] = ["EFI/fedora/shimx64.efi", "EFI/fedora/grubx64.efi"];

/// A menu entry that starts `loader` (ESP-relative) from rEFInd's own volume.
pub fn menu_entry(title: &str, loader: &str, icon: Option<String>) -> MenuEntry {
    MenuEntry {
        title: title.into(),
        volume: None,
        loader: format!("/{}", loader.trim_start_matches('/')),
        initrd: vec![],
        options: None,
        icon,
        submenus: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refind::{render, Config};

    #[test]
    fn chainload_entry_renders_a_bare_loader() {
        let c = Config {
            timeout: 5,
            default_selection: Some("Fedora Kinoite".into()),
            entries: vec![menu_entry(
                "Fedora Kinoite",
                FEDORA_LOADERS[0],
                Some("/EFI/refind/icons/os_fedora.png".into()),
            )],
            ..Config::default()
        };
        insta::assert_snapshot!(render(&c).unwrap());
    }
}
