//! `bifrost gen hardware` rendering and `bifrost detect` against recorded machines.

use bifrost_core::hardware::layout::HARDWARE_CONFIG_NIX;
use bifrost_core::hardware::{detect, detect::RootMachine, render_module};
use bifrost_core::spec::{self, HardwareProfile, KernelSource, SubvolumeOwner, SwapKind};
use camino::{Utf8Path, Utf8PathBuf};

fn repo() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// One of detection's notes mentions `needle`.
fn assert_noted(d: &detect::Detection, needle: &str) {
    assert!(
        d.notes.iter().any(|n| n.contains(needle)),
        "{needle} not noted: {:?}",
        d.notes
    );
}

/// Each subvolume's name, owner and mount point.
fn subvolumes(s: &spec::HostSettings) -> Vec<(&str, SubvolumeOwner, Option<&str>)> {
    s.storage
        .subvolumes
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.owner,
                v.mount_point.as_deref().map(|p| p.as_str()),
            )
        })
        .collect()
}

/// A host file of the repository, to change before [`valid`].
fn plain(rel: &str) -> spec::HostSettings {
    spec::load_file(&repo().join(rel)).unwrap().into_inner()
}

fn valid(s: spec::HostSettings) -> spec::Settings {
    spec::validated(s).expect("valid test settings")
}

fn render_host(rel: &str) -> String {
    let settings = spec::load_file(&repo().join(rel)).unwrap();
    render_module(&settings, rel).unwrap()
}

#[test]
fn surface_pro_8_hardware_module() {
    insta::assert_snapshot!(render_host("hosts/surface-pro-8/host.json"));
}

#[test]
fn example_vm_hardware_module() {
    insta::assert_snapshot!(render_host("hosts/example-vm/host.json"));
}

#[test]
fn rendering_is_deterministic_and_escapes_values() {
    let mut s = plain("hosts/example-vm/host.json");
    // Validation refuses '"' and '\' in a device path; `${` is allowed and
    // must not become a Nix interpolation.
    s.storage.luks.device = "/dev/disk/by-id/with${x}".into();
    let s = valid(s);
    let a = render_module(&s, "x").unwrap();
    assert_eq!(a, render_module(&s, "x").unwrap());
    assert!(
        a.contains(r#"device = "/dev/disk/by-id/with\${x}";"#),
        "{a}"
    );
}

/// The file applies bifrost's one description of the layout
/// (modules/lib/hardware-config.nix) to the host's settings: what each
/// setting configures is checked by evaluating it beside the module
/// (tests/tests/e2e/module_eval.rs, `module_configures_what_gen_hardware_writes`).
#[test]
fn the_module_applies_the_layout_function_to_the_settings() {
    let mut s = plain("hosts/surface-pro-8/host.json");
    let text = render_module(&valid(s.clone()), "x").unwrap();
    let mut rest = text.as_str();
    for line in HARDWARE_CONFIG_NIX.lines().filter(|l| !l.trim().is_empty()) {
        let line = format!("\n    {line}");
        let at = rest
            .find(&line)
            .unwrap_or_else(|| panic!("layout line missing or out of order: {line}"));
        rest = &rest[at + line.len()..];
    }
    assert!(text.contains("source = \"linux-surface\";"), "{text}");
    // Only the host's profile, with the drivers forced in on the Surface.
    assert!(text.contains("\"pinctrl_tigerlake\""));
    assert!(!text.contains("generic-x86_64-uefi"));
    s.kernel.source = KernelSource::NixosLatest;
    let text = render_module(&valid(s), "x").unwrap();
    assert!(text.contains("source = \"nixos-latest\";"), "{text}");
}

/// Every field the layout reads is written, even where the JSON form leaves
/// it out (empty lists, an unmounted subvolume's mount point).
#[test]
fn empty_lists_and_unmounted_subvolumes_are_written_out() {
    let mut s = plain("hosts/surface-pro-8/host.json");
    s.storage.swap.kind = SwapKind::Zram;
    s.storage.swap.size_mib = 4096;
    let text = render_module(&valid(s), "x").unwrap();
    assert!(text.contains("extraInitrdModules = [];"), "{text}");
    assert!(text.contains("params = [];"), "{text}");
    assert!(
        text.contains("mountPoint = null;\n          name = \"@root\";"),
        "{text}"
    );
    assert!(
        text.contains("kind = \"zram\";\n        sizeMib = 4096;"),
        "{text}"
    );
}

/// Detection of a recorded machine; it returns only settings that pass
/// validation (what `bifrost check` runs), so `unwrap` checks that too.
fn detect_fixture(name: &str) -> bifrost_core::hardware::Detection {
    let root = repo().join("tests/fixtures/detect").join(name).join("root");
    detect(&RootMachine { root }).unwrap()
}

fn expected(name: &str) -> spec::Settings {
    spec::load_file(
        &repo()
            .join("tests/fixtures/detect")
            .join(name)
            .join("expected.json"),
    )
    .unwrap()
}

#[test]
fn detects_surface_pro_8_with_luks_btrfs_and_kinoite() {
    let d = detect_fixture("surface-pro-8");
    assert_eq!(d.product, "Surface Pro 8");
    let s = &d.settings;
    assert_eq!(s.hardware.profile, HardwareProfile::SurfacePro8);
    assert_eq!(s.kernel.source, KernelSource::LinuxSurface);
    assert_eq!(s.storage.luks.name, "cryptroot");
    assert_eq!(s.storage.luks.device, "/dev/disk/by-partlabel/pool");
    assert_eq!(s.boot.esp.device, "/dev/disk/by-partlabel/ESP");
    let owners = subvolumes(s);
    assert!(owners.contains(&("@shared", SubvolumeOwner::Shared, Some("/shared"))));
    assert!(owners.contains(&("@root", SubvolumeOwner::Kinoite, None)));
    assert!(
        !owners.iter().any(|(n, _, _)| n.contains('/')),
        "nested subvolumes leak: {owners:?}"
    );
    // The file-system UUID, as Fedora's fstab names /boot.
    assert_eq!(
        s.dual_boot
            .kinoite
            .as_ref()
            .unwrap()
            .boot_volume
            .to_string(),
        "UUID=0d6e2b9c-4a1f-4c3e-9b7d-8e5f1a2c3d4e"
    );
    assert_eq!(*s, expected("surface-pro-8"));
    // Kinoite's owner (etc/passwd) becomes the administrator, with the same uid.
    let users: Vec<_> = s
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.uid, u.admin))
        .collect();
    assert_eq!(users, [("kim", 1000, true)]);
    assert!(d.notes.is_empty(), "{:?}", d.notes);
}

/// Run on Kinoite itself: its ostree /boot is mounted at /boot and has no
/// label (as Fedora's installer leaves it); its pool holds `root` and `home`
/// and no `@shared`.
#[test]
fn detects_kinoite_from_its_own_mounted_ostree_boot() {
    let d = detect_fixture("kinoite");
    let s = &d.settings;
    assert_eq!(s.hardware.profile, HardwareProfile::SurfacePro8);
    let k = s.dual_boot.kinoite.as_ref().expect("Kinoite's /boot found");
    assert_eq!(
        k.boot_volume,
        spec::BootVolume::Uuid("3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b".into())
    );
    assert_eq!(k.boot_fs_type, "ext4");
    let find = |n: &str| s.storage.subvolumes.iter().find(|v| v.name == n);
    for n in ["root", "home"] {
        assert_eq!(find(n).unwrap().owner, SubvolumeOwner::Kinoite, "{n}");
        assert_eq!(find(n).unwrap().mount_point, None, "{n}");
    }
    let shared = find("@shared").expect("@shared proposed");
    assert_eq!(shared.owner, SubvolumeOwner::Shared);
    assert_eq!(shared.mount_point.as_deref(), Some("/shared".into()));
    assert_noted(&d, "ostree /boot");
    assert_noted(&d, "@shared");
    assert_eq!(*s, expected("kinoite"));
}

#[test]
fn detects_generic_desktop_without_luks() {
    let d = detect_fixture("generic-desktop");
    let s = &d.settings;
    assert_eq!(s.hardware.profile, HardwareProfile::GenericX86_64Uefi);
    assert_eq!(s.kernel.source, KernelSource::NixosDefault);
    // "EFI system partition" has spaces: udev escapes them, so the UUID is used.
    assert_eq!(s.boot.esp.device, "/dev/disk/by-uuid/12CE-A600");
    assert_eq!(s.boot.esp.mount_point, "/boot");
    assert_noted(&d, "no LUKS2 container");
    assert!(s.dual_boot.kinoite.is_none());
    assert_eq!(*s, expected("generic-desktop"));
}

#[test]
fn detects_qemu_vm_with_unusual_layout() {
    let d = detect_fixture("qemu-vm");
    let s = &d.settings;
    assert_eq!(s.hardware.profile, HardwareProfile::GenericX86_64Uefi);
    assert_eq!(s.boot.esp.mount_point, "/efi");
    assert!(s.storage.luks.name.starts_with("luks-"));
    assert!(s
        .storage
        .luks
        .device
        .as_str()
        .starts_with("/dev/disk/by-uuid/"));
    assert_eq!(s.storage.btrfs_label, "vmpool");
    assert_eq!(s.storage.swap.kind, SwapKind::File);
    assert_eq!(s.storage.swap.size_mib, 2048);
    assert!(s
        .hardware
        .extra_initrd_modules
        .contains(&"virtio_blk".to_string()));
    let persist = s
        .storage
        .subvolumes
        .iter()
        .find(|v| v.name == "persist")
        .unwrap();
    // In the kernel's order: per-mount options (atime), then btrfs' own.
    assert_eq!(persist.mount_options, vec!["relatime", "compress=lzo"]);
    assert_eq!(*s, expected("qemu-vm"));
}

#[test]
fn detect_needs_lsblk_under_a_fake_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    let err = detect(&RootMachine { root }).unwrap_err().to_string();
    assert!(err.contains("lsblk --json -O"), "{err}");
}

/// A running system that is not NixOS, with `@`, `@home` and `@nix` of its
/// own, a mount point and a subvolume name as mountinfo escapes them, and
/// subvolume names the settings cannot hold: the result is still valid host
/// settings, NixOS gets subvolumes of its own, and the odd ones are named.
#[test]
fn detects_a_non_nixos_system_using_nixos_subvolume_names() {
    let d = detect_fixture("fedora-btrfs");
    let s = &d.settings;
    let subs = subvolumes(s);
    for other in ["@", "@home", "@nix", "@data"] {
        assert!(
            subs.contains(&(other, SubvolumeOwner::Kinoite, None)),
            "{other}: {subs:?}"
        );
    }
    assert!(subs.contains(&("@nixos", SubvolumeOwner::Nixos, Some("/"))));
    assert!(subs.contains(&("@nixos-home", SubvolumeOwner::Nixos, Some("/home"))));
    assert!(subs.contains(&("@nixos-nix", SubvolumeOwner::Nixos, Some("/nix"))));
    for odd in ["@odd\\\"name", "old backup"] {
        assert_noted(&d, odd);
    }
}
