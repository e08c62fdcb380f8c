//! `bifrost esp install --nvram` for real: a guest booted through OVMF (a
//! writable copy of its variable store, efivarfs mounted) installs rEFInd on
//! the ESP of its disk and registers it; a second run changes nothing, a run
//! after BootOrder was shuffled reuses the entry and moves it first — never a
//! second entry. Then the same VARS boot again with no kernel on the QEMU
//! command line: the firmware starts rEFInd from the NVRAM entry alone (the
//! ESP has no EFI/BOOT/BOOTX64.EFI fallback) and rEFInd boots its default
//! entry, whose initrd prints its kernel command line.

use bifrost_e2e::guest::{
    all, finished, init_script, insmod_lines, kernel_version, one, resolve_modules,
};
use bifrost_e2e::{bifrost_bin, image, initrd, program, qemu, skip, BootTools};
use std::process::Command;
use std::time::Duration;

const TEST: &str = "firmware_boots_refind_from_the_nvram_entry_bifrost_registered";
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "efivarfs",
];
/// A Nix store hash (32 characters of Nix's base-32 alphabet).
const HASH: &str = "0123456789abcdfghijklmnpqrsvwxyz";

/// What the guest runs after [`init_script`]'s setup.
const BODY: &str = r#"mkdir -p /esp
mount -t efivarfs efivarfs /sys/firmware/efi/efivars || echo "@@no-efivarfs"
mount -t vfat /dev/vda1 /esp || echo "@@no-esp"
count() { efibootmgr -v | grep -ci 'refind_x64'; }
install() { bifrost esp install --esp /esp --profiles /nix/var/nix/profiles \
  --refind-efi /refind/refind_x64.efi --timeout 1 --text-only --nvram 2>&1; }
install | sed 's/^/@@run1 /'
echo "@@count1 $(count)"
install | sed 's/^/@@run2 /'
echo "@@count2 $(count)"
# Something else first, as a firmware update or another OS would leave it.
order=$(efibootmgr | sed -n 's/^BootOrder: //p')
efibootmgr -q -o "${order#*,},${order%%,*}"
echo "@@shuffled $(efibootmgr | sed -n 's/^BootOrder: //p')"
install | sed 's/^/@@run3 /'
echo "@@count3 $(count)"
echo "@@order $(efibootmgr | sed -n 's/^BootOrder: //p')"
efibootmgr -v | sed 's/^/@@entry /'
ls /esp/EFI | sed 's/^/@@esp /'
umount /esp
sync
echo "@@end""#;

#[test]
fn firmware_boots_refind_from_the_nvram_entry_bifrost_registered() {
    let Some(t) = BootTools::find(TEST) else {
        return;
    };
    let (Some(efibootmgr), Some(strip), Some(_), Some(_), Some(_)) = (
        program("efibootmgr"),
        program("strip"),
        program("modinfo"),
        program("sgdisk"),
        program("mkfs.vfat"),
    ) else {
        return skip(
            TEST,
            "efibootmgr, strip (binutils), modinfo (kmod), sgdisk (gdisk) and mkfs.vfat (dosfstools)",
        );
    };
    let Some(kver) = kernel_version(&t.kernel) else {
        return skip(TEST, "the kernel's modules in /lib/modules/<version>");
    };
    let mut mods = Vec::new();
    resolve_modules(&kver, MODULES, &mut mods);
    // A module built into the kernel has no file to load.
    mods.retain(|f| f.is_absolute());
    let insmod = insmod_lines(&mods);

    let dir = tempfile::tempdir().unwrap();
    // The generation rEFInd boots on the second start: kernel + an initrd
    // that prints its command line, as a store-shaped system profile.
    let gen_initrd = dir.path().join("gen-initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&gen_initrd);
    let rd = initrd::Initrd::new(&t.busybox, &init_script(&insmod, BODY));
    let store = |name: &str| format!("/nix/store/{HASH}-{name}");
    let top = store("nixos-system-nvram-1");
    rd.file(
        &format!("{}/bzImage", &store("linux")[1..]),
        &std::fs::read(&t.kernel).unwrap(),
        0o644,
    )
    .file(
        &format!("{}/initrd", &store("initrd")[1..]),
        &std::fs::read(&gen_initrd).unwrap(),
        0o644,
    )
    .file(
        &format!("{}/boot.json", &top[1..]),
        serde_json::to_string(&serde_json::json!({
            "org.nixos.bootspec.v1": {
                "label": "NixOS nvram test",
                "kernel": format!("{}/bzImage", store("linux")),
                "initrd": format!("{}/initrd", store("initrd")),
                "kernelParams": ["console=ttyS0", "booted-by=nvram-entry"],
                "init": format!("{top}/init"),
                "system": "x86_64-linux",
                "toplevel": top,
            }
        }))
        .unwrap()
        .as_bytes(),
        0o644,
    )
    .file(
        "refind/refind_x64.efi",
        &std::fs::read(t.refind_dir.join("refind_x64.efi")).unwrap(),
        0o644,
    );
    std::fs::create_dir_all(rd.root().join("nix/var/nix/profiles")).unwrap();
    std::os::unix::fs::symlink(&top, rd.root().join("nix/var/nix/profiles/system-1-link")).unwrap();
    rd.modules(&mods);
    rd.program(&efibootmgr);
    // The firmware loads the initrd through fw_cfg; a debug build with its
    // symbols (over 100 MiB) would not fit, so the guest gets it stripped.
    let bin = bifrost_bin();
    rd.program(&bin);
    std::fs::remove_file(rd.root().join(bin.strip_prefix("/").unwrap())).unwrap();
    let stripped = Command::new(&strip)
        .arg("-o")
        .arg(rd.root().join("bin/bifrost"))
        .arg(&bin)
        .status()
        .expect("run strip");
    assert!(stripped.success(), "strip {}", bin.display());
    let rd_path = dir.path().join("initrd");
    rd.write(&rd_path);

    // An empty ESP on a GPT disk: the firmware's boot entry needs a partition.
    let esp_dir = dir.path().join("esp");
    std::fs::create_dir_all(&esp_dir).unwrap();
    let esp_img = dir.path().join("esp.img");
    image::fat_image(&esp_dir, &esp_img, 96, "ESP");
    let disk = dir.path().join("disk.img");
    image::gpt_disk(
        &disk,
        &[image::Partition {
            image: &esp_img,
            type_code: "ef00",
            name: "ESP",
        }],
    );
    let vars = dir.path().join("OVMF_VARS.fd");
    std::fs::copy(&t.ovmf_vars, &vars).unwrap();

    // First start: OVMF boots the kernel from the QEMU command line (EFI
    // stub, so the kernel has EFI runtime services) and the guest registers.
    let mut vm = qemu::QemuBuilder::new(&t.qemu, 1024)
        .uefi_vars(&t.ovmf_code, &vars)
        .disk(&disk)
        .kernel(&t.kernel, &rd_path, "console=ttyS0 panic=-1 loglevel=3")
        .spawn();
    let log = vm.wait_exit(Duration::from_secs(600));
    drop(vm);
    let m = finished(&log);
    let ctx = || qemu::tail(&log);
    for k in ["no-efivarfs", "no-esp"] {
        assert!(!m.contains_key(k), "{k}: {:?}\n{}", m.get(k), ctx());
    }
    let runs = |k: &str| all(&m, k);
    let one = |k: &str| one(&m, k).to_string();
    assert!(
        runs("run1").contains("created and put first"),
        "{}",
        runs("run1")
    );
    assert_eq!(one("count1"), "1", "{}", ctx());
    assert!(
        runs("run2").contains("already first, unchanged"),
        "{}",
        runs("run2")
    );
    assert_eq!(
        one("count2"),
        "1",
        "a second run made another entry:\n{}",
        ctx()
    );
    assert!(
        runs("run3").contains("reused and moved first"),
        "{}",
        runs("run3")
    );
    assert_eq!(one("count3"), "1", "{}", ctx());
    // The registered entry is first again, the others follow in their order.
    let entry = runs("run3")
        .split("Boot")
        .nth(1)
        .map(|s| s[..4].to_string())
        .unwrap();
    assert!(
        one("order").starts_with(&entry),
        "{} / {entry}",
        one("order")
    );
    let shuffled = one("shuffled");
    assert!(!shuffled.starts_with(&entry), "{shuffled}");
    let esp_dirs = m.get("esp").cloned().unwrap_or_default();
    assert!(
        !esp_dirs.iter().any(|d| d.eq_ignore_ascii_case("BOOT")),
        "a fallback loader would hide what NVRAM does: {esp_dirs:?}"
    );

    // Second start: no kernel on the command line, the same VARS.
    let mut vm = qemu::QemuBuilder::new(&t.qemu, 512)
        .uefi_vars(&t.ovmf_code, &vars)
        .disk(&disk)
        .spawn();
    let log = vm.wait_exit(Duration::from_secs(300));
    let cmdline = qemu::printed_cmdline(&log).unwrap_or_else(|| {
        panic!(
            "the firmware did not boot rEFInd's default entry; serial:\n{}",
            qemu::tail(&log)
        )
    });
    assert_eq!(
        cmdline,
        format!("init={top}/init console=ttyS0 booted-by=nvram-entry")
    );
}
