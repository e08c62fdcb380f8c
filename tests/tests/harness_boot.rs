//! The harness itself boots: rEFInd from a FAT ESP under OVMF picks the
//! default entry and then, by key presses, the second one.

use bifrost_e2e::{initrd, qemu, BootTools};
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
    let Some(t) = BootTools::find("refind_boots_an_entry_chosen_by_keys") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = t.refind_test_esp(dir.path(), CONF, initrd::PRINT_CMDLINE_INIT);

    let mut vm = qemu::QemuBuilder::new(&t.qemu, 512)
        .uefi(&t.ovmf_code, &t.ovmf_vars)
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
