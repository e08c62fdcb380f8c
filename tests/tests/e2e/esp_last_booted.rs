//! `--default-entry last-booted` in a real boot: rEFInd (Debian's, under
//! OVMF) starts the newest generation while nothing was booted yet, and after
//! an older entry was picked once, starts that entry again by itself.
//! `use_nvram false` keeps rEFInd's `PreviousBoot` in `EFI/BOOT/vars/` on the
//! ESP image, which outlives each VM (OVMF's variables are fresh every boot here).

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{Boot, FakeNix};
use bifrost_e2e::{image, initrd, BootTools};

#[test]
fn refind_starts_the_entry_booted_last() {
    let Some(t) = BootTools::find("refind_starts_the_entry_booted_last") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let rd = dir.path().join("initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&rd);
    let k = nix.store_copy("linux-6.1.0", "bzImage", &t.kernel);
    let i = nix.store_copy("initrd-linux-6.1", "initrd", &rd);
    let profiles = dir.path().join("profiles");
    let mut tops = vec![];
    for n in 1..=2u64 {
        let top = nix.toplevel(
            &format!("nixos-system-{n}"),
            &Boot {
                label: format!("NixOS 26.05 gen{n}"),
                kernel: k.clone(),
                initrd: i.clone(),
                params: vec!["console=ttyS0".into(), format!("gen={n}")],
            },
            &[],
        );
        nix.link(&profiles, n, &top);
        tops.push(top);
    }
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let extra = dir.path().join("extra.conf");
    std::fs::write(&extra, "use_nvram false\n").unwrap();
    let (ok, out, err) = EspInstall::new(&esp, &profiles, &t.refind_dir.join("refind_x64.efi"))
        .args(["--removable", "--timeout", "3", "--text-only"])
        .args(["--default-entry", "last-booted"])
        .path("--extra-config", &extra)
        .run();
    assert!(ok, "install failed:\n{out}\n{err}");
    let conf = std::fs::read_to_string(esp.join("EFI/BOOT/refind.conf")).unwrap();
    assert!(
        conf.contains("default_selection \"+,NixOS (newest generation)\""),
        "{conf}"
    );
    let img = dir.path().join("esp.img");
    image::fat_image(&esp, &img, 64, "ESP");
    let cmdline = |n: usize| {
        format!(
            "init={} console=ttyS0 gen={}",
            tops[n - 1].join("init").display(),
            n
        )
    };

    // Nothing booted yet: the newest generation, by timeout.
    assert_eq!(t.boot_menu(&img, &[]), cmdline(2));
    // Generation 1 picked by hand once ...
    assert_eq!(t.boot_menu(&img, &["down", "ret"]), cmdline(1));
    // ... is what rEFInd starts by itself next time.
    assert_eq!(t.boot_menu(&img, &[]), cmdline(1));
}
