//! Real dual boot: a GPT disk with the ESP bifrost filled and an ext4
//! partition holding Kinoite's BLS entries, kernel and initrd; rEFInd loads
//! the ext4 driver bifrost installed and boots the Kinoite entry.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::{dualboot, initrd, BootTools};

#[test]
fn refind_boots_kinoite_from_ext4() {
    let Some(t) = BootTools::find("refind_boots_kinoite_from_ext4") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rd = dir.path().join("initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&rd);

    // Kinoite's /boot.
    let (kboot, deploy) = dualboot::kinoite_boot(dir.path());
    std::fs::copy(&t.kernel, deploy.join("vmlinuz-6.1.0")).unwrap();
    std::fs::copy(&rd, deploy.join("initramfs-6.1.0.img")).unwrap();

    // One NixOS generation beside it.
    let profiles = dualboot::nixos_generation(dir.path(), &t.kernel, &rd);
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

    let disk = dualboot::boot_disk(dir.path(), &esp, Some(&kboot));
    assert_eq!(
        t.boot_menu(&disk, &["down", "ret"]),
        "console=ttyS0 root=UUID=1234 rw ostree=/ostree/boot.1/fedora/abc/0 side=kinoite"
    );
}
