//! The harness itself boots: rEFInd from a FAT ESP under OVMF picks the
//! default entry and then, by key presses, the second one.

use bifrost_e2e::{initrd, BootTools};

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

    assert_eq!(
        t.boot_menu(&img, &["down", "ret"]),
        "console=ttyS0 which=second"
    );
}
