//! The boot menu: rEFInd and the NixOS entries on the ESP, with Kinoite's
//! `/boot` mounted read-only meanwhile when Kinoite is beside us.

use super::layout::Layout;
use super::step::{mkdir, mount, run, umount};
use super::{DataOwner, KinoiteAccess, Step, WriteKind};
use crate::spec::KinoiteMode;
use camino::Utf8Path;

/// Mount options that keep Kinoite's `/boot` unchanged: `noload` keeps ext4
/// from replaying its journal, read-only for real.
fn kinoite_boot_options(fs_type: &str) -> &'static str {
    if matches!(fs_type, "ext4" | "ext3") {
        "ro,noload"
    } else {
        "ro"
    }
}

/// `bifrost esp install` as the NixOS boot hook runs it, against the target.
fn esp_install_argv(l: &Layout) -> Vec<String> {
    let target = l.target();
    let mut esp = vec![
        "bifrost".to_string(),
        "esp".into(),
        "install".into(),
        "--esp".into(),
        l.esp_at.to_string(),
        "--profiles".into(),
        target.join("nix/var/nix/profiles").to_string(),
        // The target's generations link into its own /nix/store, which
        // the installer sees below the target root.
        "--root".into(),
        target.to_string(),
        "--refind-efi".into(),
        l.refind_efi.to_string(),
        // Timeout, generations kept, removable, text-only, default entry
        // and the Kinoite side: the settings say them (esp::choices).
        "--settings".into(),
        l.req.settings_file.to_string(),
    ];
    // Explicit either way: with --settings, esp install registers by default.
    esp.push(if l.req.nvram { "--nvram" } else { "--no-nvram" }.into());
    // Signed as the boot hook signed it: unsigned files would replace them.
    esp.extend(crate::install::sb_keys::esp_sign_args(l.settings, target));
    if l.kinoite.is_some_and(|k| k.mode == KinoiteMode::Direct) {
        esp.extend(["--kinoite-boot".into(), l.kinoite_boot.to_string()]);
    }
    esp
}

/// Kinoite's `/boot` mounted (when beside it), the ESP install, the unmount.
pub(super) fn steps(l: &Layout) -> Vec<Step> {
    let kinoite_boot: &Utf8Path = &l.kinoite_boot;
    let mut steps = Vec::new();
    if let (Some(k), Some(dev)) = (l.kinoite, l.kinoite_boot_device()) {
        steps.push(mkdir(
            "mkdir-kinoite-boot",
            kinoite_boot,
            DataOwner::Installer,
        ));
        steps.push(
            mount(
                "mount-kinoite-boot",
                format!("Mount Kinoite's /boot {dev} read-only at {kinoite_boot}"),
                &k.boot_fs_type,
                kinoite_boot_options(&k.boot_fs_type),
                &dev,
                kinoite_boot,
            )
            .kinoite(KinoiteAccess::ReadOnly),
        );
    }
    let (title, access) = if l.kinoite.is_some() {
        (
            "Add NixOS to rEFInd on the ESP, keeping the Kinoite entries",
            KinoiteAccess::ReadOnly,
        )
    } else {
        (
            "Install rEFInd and the NixOS entries on the ESP",
            KinoiteAccess::None,
        )
    };
    steps.push(
        Step::new("esp-install", title, run(esp_install_argv(l)))
            .writes(WriteKind::Files, l.esp_at.clone(), DataOwner::Esp)
            .kinoite(access),
    );
    if l.kinoite.is_some() {
        steps.push(umount(
            "umount-kinoite-boot",
            "Unmount Kinoite's /boot",
            kinoite_boot,
        ));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::super::testing::{argv, changed, ids, request, settings};
    use super::super::Mode;
    use super::*;

    #[test]
    fn fresh_installs_refind_alone_and_registers_it_unless_told_not_to() {
        let s = settings();
        let mut r = request(Mode::Fresh);
        let steps = steps(&Layout::new(&s, &r).unwrap());
        assert_eq!(ids(&steps), ["esp-install"]);
        let a = argv(&steps, "esp-install");
        assert!(a.contains(&"--nvram".to_string()));
        assert!(!a.contains(&"--kinoite-boot".to_string()));
        assert!(a.windows(2).any(|w| w == ["--root", "/mnt"]));
        r.nvram = false;
        let steps = super::steps(&Layout::new(&s, &r).unwrap());
        let a = argv(&steps, "esp-install");
        assert!(!a.contains(&"--nvram".to_string()));
        assert!(a.contains(&"--no-nvram".to_string()));
    }

    #[test]
    fn beside_kinoite_its_boot_is_mounted_read_only() {
        let s = settings();
        let r = request(Mode::DualBoot);
        let steps = steps(&Layout::new(&s, &r).unwrap());
        assert_eq!(
            ids(&steps),
            [
                "mkdir-kinoite-boot",
                "mount-kinoite-boot",
                "esp-install",
                "umount-kinoite-boot"
            ]
        );
        assert_eq!(argv(&steps, "mount-kinoite-boot")[4], "ro,noload");
        assert!(argv(&steps, "esp-install")
            .windows(2)
            .any(|w| w == ["--kinoite-boot", "/run/bifrost/kinoite-boot"]));
        let s = changed(|s| {
            let k = s.dual_boot.kinoite.as_mut().unwrap();
            k.mode = KinoiteMode::Chainload;
            k.boot_fs_type = "btrfs".into();
        });
        let steps = super::steps(&Layout::new(&s, &r).unwrap());
        assert_eq!(argv(&steps, "mount-kinoite-boot")[4], "ro");
        assert!(!argv(&steps, "esp-install").contains(&"--kinoite-boot".to_string()));
    }
}
