//! The dual-boot machine the QEMU boot tests start: one NixOS generation
//! for bifrost's ESP, beside Kinoite's ext4 `/boot` holding one ostree
//! deployment, on one GPT disk.

use crate::fakenix::{Boot, FakeNix};
use crate::image;
use std::path::{Path, PathBuf};

/// The BLS entry of Kinoite's one deployment (`ostree-1-fedora.conf`).
pub const KINOITE_BLS: &str = "title Fedora Linux 40.20240601.0 (Kinoite) (ostree:0)
version 1
options console=ttyS0 root=UUID=1234 rw ostree=/ostree/boot.1/fedora/abc/0 side=kinoite
linux /ostree/fedora-abc/vmlinuz-6.1.0
initrd /ostree/fedora-abc/initramfs-6.1.0.img
";

/// Kinoite's `/boot` at `dir/kinoite-boot` with [`KINOITE_BLS`] in
/// `loader/entries/`. Returns (that `/boot`, the deployment folder where the
/// test puts `vmlinuz-6.1.0` and `initramfs-6.1.0.img`).
pub fn kinoite_boot(dir: &Path) -> (PathBuf, PathBuf) {
    let kboot = dir.join("kinoite-boot");
    let deploy = kboot.join("ostree/fedora-abc");
    std::fs::create_dir_all(kboot.join("loader/entries")).unwrap();
    std::fs::create_dir_all(&deploy).unwrap();
    std::fs::write(
        kboot.join("loader/entries/ostree-1-fedora.conf"),
        KINOITE_BLS,
    )
    .unwrap();
    (kboot, deploy)
}

/// One NixOS generation ("NixOS 26.05", `console=ttyS0 side=nixos`) of
/// `kernel` and `initrd` in `dir/profiles`, its store under `dir/root`;
/// returns the profiles folder.
pub fn nixos_generation(dir: &Path, kernel: &Path, initrd: &Path) -> PathBuf {
    let nix = FakeNix::new(&dir.join("root"));
    let k = nix.store_copy("linux-6.1.0", "bzImage", kernel);
    let i = nix.store_copy("initrd-6.1.0", "initrd", initrd);
    let top = nix.toplevel(
        "nixos-system-1",
        &Boot {
            label: "NixOS 26.05".into(),
            kernel: k,
            initrd: i,
            params: vec!["console=ttyS0".into(), "side=nixos".into()],
        },
        &[],
    );
    let profiles = dir.join("profiles");
    nix.link(&profiles, 1, &top);
    profiles
}

/// A GPT disk `dir/disk.img`: the folder `esp` as the FAT ESP and, when
/// given, the folder `kinoite_boot` as Kinoite's ext4 `/boot` (partition
/// `kinoite-boot`, label `KINOITEBOOT`).
pub fn boot_disk(dir: &Path, esp: &Path, kinoite_boot: Option<&Path>) -> PathBuf {
    let esp_img = dir.join("esp.img");
    image::fat_image(esp, &esp_img, 64, "ESP");
    let mut parts = vec![image::Partition {
        image: &esp_img,
        type_code: "ef00",
        name: "ESP",
    }];
    let ext4 = dir.join("kinoite.img");
    if let Some(k) = kinoite_boot {
        image::ext4_image(k, &ext4, 64, "KINOITEBOOT");
        parts.push(image::Partition {
            image: &ext4,
            type_code: "8300",
            name: "kinoite-boot",
        });
    }
    let disk = dir.join("disk.img");
    image::gpt_disk(&disk, &parts);
    disk
}
