//! Real boots of an ESP built by `bifrost esp install --removable` from fake
//! generations: rEFInd (Debian's) under OVMF boots the newest generation by
//! default, an older one and a specialisation chosen by key presses, each
//! with exactly its `init=` and kernel parameters.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{Boot, FakeNix};
use bifrost_e2e::{image, initrd, BootTools};
use std::path::Path;

struct Setup {
    _dir: tempfile::TempDir,
    img: std::path::PathBuf,
    tops: Vec<std::path::PathBuf>,
    spec_top: std::path::PathBuf,
}

fn setup(t: &BootTools) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let kernel_src = &t.kernel;
    let rd = dir.path().join("initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&rd);
    // Two kernels (same bytes, two store paths) and one initrd shared by all.
    let k1 = nix.store_copy("linux-6.1.0", "bzImage", kernel_src);
    let k2 = nix.store_copy("linux-6.1.1", "bzImage", kernel_src);
    let i1 = nix.store_copy("initrd-linux-6.1", "initrd", &rd);
    let profiles = dir.path().join("profiles");
    let boot = |label: &str, k: &Path, params: &[&str]| Boot {
        label: label.into(),
        kernel: k.into(),
        initrd: i1.clone(),
        params: params.iter().map(|s| s.to_string()).collect(),
    };
    let g1 = nix.toplevel(
        "nixos-system-1",
        &boot("NixOS 26.05 one", &k1, &["console=ttyS0", "gen=1"]),
        &[],
    );
    let g2 = nix.toplevel(
        "nixos-system-2",
        &boot("NixOS 26.05 two", &k1, &["console=ttyS0", "gen=2"]),
        &[(
            "rescue",
            boot("NixOS rescue", &k2, &["console=ttyS0", "spec=rescue"]),
        )],
    );
    let g3 = nix.toplevel(
        "nixos-system-3",
        &boot(
            "NixOS 26.05 three",
            &k2,
            &["console=ttyS0", "gen=3", "quoted=\"a b\""],
        ),
        &[],
    );
    for (n, g) in [(1, &g1), (2, &g2), (3, &g3)] {
        nix.link(&profiles, n, g);
    }
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let refind = t.refind_dir.join("refind_x64.efi");
    let (ok, out, err) = EspInstall::new(&esp, &profiles, &refind).boot_menu().run();
    assert!(ok, "install failed:\n{out}\n{err}");
    let conf = std::fs::read_to_string(esp.join("EFI/BOOT/refind.conf")).unwrap();
    assert!(esp.join("EFI/BOOT/BOOTX64.EFI").is_file(), "{conf}");
    // Three generations share two kernel copies and one initrd copy.
    let files = std::fs::read_dir(esp.join("EFI/nixos")).unwrap().count();
    assert_eq!(files, 3, "{conf}");
    let img = dir.path().join("esp.img");
    image::fat_image(&esp, &img, 64, "ESP");
    let spec_top = nix.store_path("nixos-system-2-rescue");
    Setup {
        _dir: dir,
        img,
        tops: vec![g1, g2, g3],
        spec_top,
    }
}

#[test]
fn refind_boots_newest_older_and_specialisation() {
    let Some(t) = BootTools::find("refind_boots_newest_older_and_specialisation") else {
        return;
    };
    let s = setup(&t);
    let init = |p: &Path| format!("init={}", p.join("init").display());

    // Default entry: the newest generation, quotes in its parameters intact.
    assert_eq!(
        t.boot_menu(&s.img, &["ret"]),
        format!("{} console=ttyS0 gen=3 quoted=\"a b\"", init(&s.tops[2]))
    );
    // Two down: generation 1.
    assert_eq!(
        t.boot_menu(&s.img, &["down", "down", "ret"]),
        format!("{} console=ttyS0 gen=1", init(&s.tops[0]))
    );
    // Generation 2's submenu (Tab), then its specialisation.
    assert_eq!(
        t.boot_menu(&s.img, &["down", "tab", "down", "ret"]),
        format!("{} console=ttyS0 spec=rescue", init(&s.spec_top))
    );
}
