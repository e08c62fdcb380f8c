//! `bifrost esp install --removable` on a dual-boot ESP: Fedora's shim at the
//! fallback path `EFI/BOOT/BOOTX64.EFI` is another system's loader, owned by
//! Fedora's bootupd; bifrost refuses to replace it unless forced, and
//! changes nothing on the ESP when it refuses.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{fake_refind, tree_hash, FakeNix};

#[test]
fn removable_refuses_another_systems_fallback_loader() {
    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let refind = fake_refind(dir.path());
    let k = nix.store_file("linux-6.6", "bzImage", b"kernel");
    let i = nix.store_file("initrd-6.6", "initrd", b"initrd");
    let profiles = dir.path().join("profiles");
    nix.generation(&profiles, 1, "nixos-system-1", "NixOS 26.05", k, i);

    // The ESP as Fedora leaves it: its shim at the fallback path and in EFI/fedora/.
    let esp = dir.path().join("esp");
    for d in ["EFI/BOOT", "EFI/fedora"] {
        std::fs::create_dir_all(esp.join(d)).unwrap();
    }
    std::fs::write(esp.join("EFI/BOOT/BOOTX64.EFI"), b"MZ fedora shim").unwrap();
    std::fs::write(esp.join("EFI/BOOT/fbx64.efi"), b"MZ fedora fallback").unwrap();
    std::fs::write(esp.join("EFI/fedora/shimx64.efi"), b"MZ fedora shim").unwrap();
    let before = tree_hash(&esp);

    let install = |extra: &[&str]| EspInstall::new(&esp, &profiles, &refind).args(extra).run();

    let (ok, out, err) = install(&["--removable"]);
    assert!(!ok, "replaced Fedora's shim:\n{out}\n{err}");
    assert!(err.contains("EFI/BOOT/BOOTX64.EFI"), "{err}");
    assert!(err.contains("--force-removable"), "{err}");
    assert_eq!(tree_hash(&esp), before, "a refused install changed the ESP");

    // The ordinary install leaves EFI/BOOT alone.
    let (ok, out, err) = install(&[]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        std::fs::read(esp.join("EFI/BOOT/BOOTX64.EFI")).unwrap(),
        b"MZ fedora shim"
    );
    assert!(esp.join("EFI/refind/refind.conf").is_file());

    // Forced, it replaces the loader; from then on the file is bifrost's own
    // and a plain --removable run is accepted.
    let (ok, out, err) = install(&["--removable", "--force-removable"]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(
        std::fs::read(esp.join("EFI/BOOT/BOOTX64.EFI")).unwrap(),
        b"MZ fake refind"
    );
    let (ok, out, err) = install(&["--removable"]);
    assert!(ok, "{out}\n{err}");
}
