//! The harness itself boots: rEFInd from a FAT ESP under OVMF picks the
//! default entry and then, by key presses, the second one.

use bifrost_e2e::{image, initrd, qemu, skip, Tools};
use std::time::Duration;

const CONF: &str = r#"timeout 20
scanfor manual
textonly
default_selection "First"
menuentry "First" {
  loader /EFI/test/kernel
  initrd /EFI/test/initrd
  options "console=ttyS0 which=first"
}
menuentry "Second" {
  loader /EFI/test/kernel
  initrd /EFI/test/initrd
  options "console=ttyS0 which=second"
}
"#;

#[test]
fn refind_boots_an_entry_chosen_by_keys() {
    let t = Tools::find();
    let (Some(qemu_bin), Some(code), Some(vars), Some(refind), Some(kernel), Some(busybox)) = (
        t.qemu,
        t.ovmf_code,
        t.ovmf_vars,
        t.refind_dir,
        t.kernel,
        t.busybox,
    ) else {
        return skip(
            "refind_boots_an_entry_chosen_by_keys",
            "qemu-system-x86_64, OVMF, rEFInd, a kernel and busybox",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(esp.join("EFI/BOOT")).unwrap();
    std::fs::create_dir_all(esp.join("EFI/test")).unwrap();
    std::fs::copy(
        refind.join("refind_x64.efi"),
        esp.join("EFI/BOOT/BOOTX64.EFI"),
    )
    .unwrap();
    std::fs::write(esp.join("EFI/BOOT/refind.conf"), CONF).unwrap();
    std::fs::copy(&kernel, esp.join("EFI/test/kernel")).unwrap();
    initrd::Initrd::new(&busybox, initrd::PRINT_CMDLINE_INIT).write(&esp.join("EFI/test/initrd"));
    let img = dir.path().join("esp.img");
    image::fat_image(&esp, &img, 64, "ESP");

    let mut vm = qemu::QemuBuilder::new(&qemu_bin, 512)
        .uefi(&code, &vars)
        .disk(&img)
        .spawn();
    vm.wait_for("Main Menu", Duration::from_secs(120));
    vm.keys(&["down", "ret"]);
    let log = vm.wait_exit(Duration::from_secs(120));
    assert_eq!(
        qemu::printed_cmdline(&log).as_deref(),
        Some("console=ttyS0 which=second"),
        "serial:\n{}",
        qemu::tail(&log)
    );
}
