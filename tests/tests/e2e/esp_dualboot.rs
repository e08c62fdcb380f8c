//! Real dual boot: a GPT disk with the ESP bifrost filled and an ext4
//! partition holding Kinoite's BLS entries, kernel and initrd; rEFInd loads
//! the ext4 driver bifrost installed and boots the Kinoite entry.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{Boot, FakeNix};
use bifrost_e2e::{image, initrd, BootTools};

const BLS: &str = "title Fedora Linux 40.20240601.0 (Kinoite) (ostree:0)
version 1
options console=ttyS0 root=UUID=1234 rw ostree=/ostree/boot.1/fedora/abc/0 side=kinoite
linux /ostree/fedora-abc/vmlinuz-6.1.0
initrd /ostree/fedora-abc/initramfs-6.1.0.img
";

#[test]
fn refind_boots_kinoite_from_ext4() {
    let Some(t) = BootTools::find("refind_boots_kinoite_from_ext4") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rd = dir.path().join("initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&rd);

    // Kinoite's /boot.
    let kboot = dir.path().join("kinoite-boot");
    std::fs::create_dir_all(kboot.join("loader/entries")).unwrap();
    std::fs::create_dir_all(kboot.join("ostree/fedora-abc")).unwrap();
    std::fs::copy(&t.kernel, kboot.join("ostree/fedora-abc/vmlinuz-6.1.0")).unwrap();
    std::fs::copy(&rd, kboot.join("ostree/fedora-abc/initramfs-6.1.0.img")).unwrap();
    std::fs::write(kboot.join("loader/entries/ostree-1-fedora.conf"), BLS).unwrap();
    let ext4 = dir.path().join("kinoite.img");
    image::ext4_image(&kboot, &ext4, 64, "KINOITEBOOT");

    // One NixOS generation beside it.
    let nix = FakeNix::new(&dir.path().join("root"));
    let k = nix.store_copy("linux-6.1.0", "bzImage", &t.kernel);
    let i = nix.store_copy("initrd-6.1.0", "initrd", &rd);
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
    let profiles = dir.path().join("profiles");
    nix.link(&profiles, 1, &top);
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let (ok, out, err) = EspInstall::new(&esp, &profiles, &t.refind_dir.join("refind_x64.efi"))
        .boot_menu()
        .path("--kinoite-entries", &kboot.join("loader/entries"))
        .args(["--kinoite-volume", "KINOITEBOOT"])
        .run();
    assert!(ok, "install failed:\n{out}\n{err}");
    assert!(esp.join("EFI/BOOT/drivers_x64/ext4_x64.efi").is_file());
    let conf = std::fs::read_to_string(esp.join("EFI/BOOT/refind.conf")).unwrap();
    assert!(conf.contains("volume \"KINOITEBOOT\""), "{conf}");

    let esp_img = dir.path().join("esp.img");
    image::fat_image(&esp, &esp_img, 64, "ESP");
    let disk = dir.path().join("disk.img");
    image::gpt_disk(
        &disk,
        &[
            image::Partition {
                image: &esp_img,
                type_code: "ef00",
                name: "ESP",
            },
            image::Partition {
                image: &ext4,
                type_code: "8300",
                name: "kinoite-boot",
            },
        ],
    );
    assert_eq!(
        t.boot_menu(&disk, &["down", "ret"]),
        "console=ttyS0 root=UUID=1234 rw ostree=/ostree/boot.1/fedora/abc/0 side=kinoite"
    );
}
