//! `bifrost install` for real, inside a QEMU guest booted from the Debian
//! kernel: one boot formats a fresh virtual disk (LUKS2 + btrfs, with a
//! failure and a resume on the way), then adds NixOS beside a "Kinoite" pool
//! on a second disk and checks that Kinoite's and the shared data did not
//! change, then exercises the refusals. The guest prints `@@` lines that this
//! side asserts on.

use bifrost_e2e::guest::{
    all, assert_secret_unseen, blank_disks, finished, init_script, insmod_lines, kernel_version,
    one, resolve_modules, RUN_TEST_SH,
};
use bifrost_e2e::{initrd::Initrd, program, qemu, skip, Tools};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TEST: &str = "install_fresh_and_beside_kinoite_in_qemu";
/// The test passphrase: it must show up nowhere but in the key file.
const PASS: &str = "Bifrost-test-passphrase-9d41";

/// Kernel modules the guest loads, dependencies first (the Debian kernel
/// builds virtio, dm-crypt and btrfs as modules; without modprobe the crypto
/// templates dm-crypt and libcrc32c ask for must be loaded up front).
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "ecb",
    "xts",
    "crc32c_generic",
    "algif_skcipher",
    "dm-crypt",
    "btrfs",
];
/// Loaded only after the first install attempt, which therefore fails at the
/// ESP mount: a real interruption after the subvolume step.
const LATE_MODULES: &[&str] = &["vfat", "nls_cp437", "nls_ascii"];

const TEST_SH: &str = r#"
set -o pipefail
say() { sed "s/^/@@$1 /"; }
key=/key
install() { bifrost install --host install-test --settings /host.json --storage-only --yes --key-file "$key" "$@" 2>&1; }
umount_under() { grep " $1" /proc/mounts | cut -d' ' -f2 | sort -r | while read m; do umount "$m"; done; }
digest() { # contents, owners, modes and generation of subvolume $3 of pool $1, read-only
  mkdir -p /tmp/ro; mount -t btrfs -o ro,subvolid=5 "$1" /tmp/ro
  (cd /tmp/ro && find "$3" | sort | while read f; do
     if [ -f "$f" ]; then echo "$f $(sha256sum < "$f")"; else echo "$f dir"; fi
     stat -c '%u %g %a' "$f"; done) | sha256sum | cut -d' ' -f1
  btrfs subvolume list /tmp/ro | grep -E " path $3\$" | say "$2-gen" >&2
  umount /tmp/ro
}

# Watch every process's command line and environment while bifrost runs.
( while [ ! -e /tmp/stop-watch ]; do
    ps -o args >> /tmp/procs
    cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ >> /tmp/procs 2>/dev/null
    usleep 20000
  done ) &

# 1. Fresh install; the ESP cannot mount yet (no vfat driver): it must stop there.
install --disk /dev/vda --target /mnt/fresh | say fresh1
echo "@@fresh1-exit $?"
@LATE@
# The resume: the container is made and open, so no passphrase is read (a
# key file that does not exist proves it).
key=/nonexistent
install --disk /dev/vda --target /mnt/fresh | say fresh2
echo "@@fresh2-exit $?"
key=/key
cryptsetup luksDump /dev/vda2 | say dump
btrfs subvolume list /mnt/fresh | say fresh-subvol
stat -c '%g %a' /mnt/fresh/shared | say fresh-shared-stat
grep ' /mnt/fresh' /proc/mounts | say fresh-mount
sgdisk -p /dev/vda | say gpt
cat /run/bifrost/install-vda.json | say state
umount_under /mnt/fresh
cryptsetup close cryptroot

# 2. A stock "Kinoite" disk: ESP, LUKS2 pool with @root holding data and no @shared.
sgdisk --new=1:0:+64M --typecode=1:ef00 --change-name=1:ESP --new=2:0:0 --typecode=2:8309 --change-name=2:pool /dev/vdb > /dev/null
mkfs.vfat -F 32 -n ESP /dev/vdb1 > /dev/null
mkdir -p /tmp/esp && mount -t vfat /dev/vdb1 /tmp/esp && mkdir -p /tmp/esp/EFI/fedora && echo kinoite-shim > /tmp/esp/EFI/fedora/marker && umount /tmp/esp
cryptsetup luksFormat --batch-mode --type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1 --key-file /key /dev/vdb2
cryptsetup open --key-file /key /dev/vdb2 kinoite
mkfs.btrfs --label pool /dev/mapper/kinoite > /dev/null
mkdir -p /tmp/k && mount -t btrfs /dev/mapper/kinoite /tmp/k
btrfs subvolume create /tmp/k/@root > /dev/null
mkdir -p /tmp/k/@root/etc
echo "Fedora Kinoite marker" > /tmp/k/@root/etc/kinoite-marker
dd if=/dev/urandom of=/tmp/k/@root/blob bs=64k count=4 2> /dev/null
umount /tmp/k
echo "@@kinoite-before $(digest /dev/mapper/kinoite before @root)"
cryptsetup close kinoite

# 3. NixOS beside Kinoite.
install --disk /dev/vdb --dual-boot --esp-device /dev/vdb1 --luks-device /dev/vdb2 --target /mnt/dual | say dual
echo "@@dual-exit $?"
btrfs subvolume list /mnt/dual | say dual-subvol
grep ' /mnt/dual' /proc/mounts | say dual-mount
if touch /mnt/dual/shared/probe 2> /dev/null; then echo "@@shared-writable"; else echo "@@shared-read-only"; fi
stat -c '%g %a' /mnt/dual/shared | say dual-shared-stat
cat /mnt/dual/boot/efi/EFI/fedora/marker | say esp-marker

# 4. Refusals: the disk is mounted (a run that is not a resume; btrfs mounts only) ...
umount /mnt/dual/boot/efi
install --disk /dev/vdb --dual-boot --esp-device /dev/vdb1 --luks-device /dev/vdb2 --target /mnt/dual --state /tmp/other.json | say refuse-mounted
echo "@@refuse-mounted-exit $?"
umount_under /mnt/dual
# The shared data a user then writes (as Kinoite's user would) ...
mkdir -p /tmp/sh && mount -t btrfs -o subvol=@shared /dev/mapper/cryptroot /tmp/sh
mkdir /tmp/sh/docs && echo "shared notes" > /tmp/sh/docs/notes.txt && chown -R 1000:2000 /tmp/sh/docs
umount /tmp/sh
echo "@@shared-before $(digest /dev/mapper/cryptroot shared-before @shared)"
cryptsetup close cryptroot
# ... NixOS's subvolumes exist already (a second install) ...
install --disk /dev/vdb --dual-boot --esp-device /dev/vdb1 --luks-device /dev/vdb2 --target /mnt/again --state /tmp/again.json | say refuse-exists
echo "@@refuse-exists-exit $?"
# ... unless --force, which uses them as they are.
install --disk /dev/vdb --dual-boot --esp-device /dev/vdb1 --luks-device /dev/vdb2 --target /mnt/again --state /tmp/again.json --force | say forced
echo "@@forced-exit $?"
umount_under /mnt/again
umount /run/bifrost/pool-cryptroot 2> /dev/null
echo "@@kinoite-after $(digest /dev/mapper/cryptroot after @root)"
echo "@@shared-after $(digest /dev/mapper/cryptroot shared-after @shared)"
cryptsetup close cryptroot

# ... a partition instead of the disk, a dual-boot partition of another disk, swap.
install --disk /dev/vda2 | say refuse-partition
install --disk /dev/vda --dual-boot --esp-device /dev/vdb1 --luks-device /dev/vda2 | say refuse-foreign
bifrost install --host install-test --settings /host.json --yes --key-file /key --disk /dev/vdb --dual-boot \
  --esp-device /dev/vdb1 --luks-device /dev/vdb2 --refind-efi /host.json --state /tmp/kb.json 2>&1 | say refuse-kinoite-boot
mkswap /dev/vda1 > /dev/null && swapon /dev/vda1
install --disk /dev/vda | say refuse-swap
swapoff /dev/vda1

touch /tmp/stop-watch
sleep 0.2
echo "@@watched-lines $(wc -l < /tmp/procs)"
echo "@@watched-bifrost $(grep -c 'bifrost install' /tmp/procs)"
echo "@@watched-cryptsetup $(grep -c 'cryptsetup' /tmp/procs)"
echo "@@watched-secret $(grep -c -F -f /key /tmp/procs)"
"#;

fn subvolume_paths(list: &str) -> Vec<String> {
    let mut v: Vec<String> = list
        .lines()
        .filter_map(|l| l.split(" path ").nth(1).map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn install_fresh_and_beside_kinoite_in_qemu() {
    let t = Tools::find();
    let tools = (
        t.qemu,
        t.kernel,
        t.busybox,
        program("cryptsetup"),
        program("mkfs.btrfs"),
        program("btrfs"),
        program("sgdisk"),
        program("mkfs.fat"),
        program("modinfo"),
    );
    let (
        Some(qemu_bin),
        Some(kernel),
        Some(busybox),
        Some(cryptsetup),
        Some(mkfs_btrfs),
        Some(btrfs),
        Some(sgdisk),
        Some(mkfs_fat),
        Some(_),
    ) = tools
    else {
        return skip(
            TEST,
            "qemu-system-x86_64, a kernel, busybox, cryptsetup (cryptsetup-bin), btrfs-progs, sgdisk (gdisk), mkfs.fat (dosfstools) and modinfo (kmod)",
        );
    };
    let Some(kver) = kernel_version(&kernel) else {
        return skip(
            TEST,
            "the kernel's modules in /lib/modules/<version> (or BIFROST_KERNEL_MODULES)",
        );
    };

    let mut early = Vec::new();
    resolve_modules(&kver, MODULES, &mut early);
    let mut late = early.clone();
    resolve_modules(&kver, LATE_MODULES, &mut late);
    let late: Vec<PathBuf> = late[early.len()..].to_vec();

    let init = init_script(&insmod_lines(&early), RUN_TEST_SH);
    let initrd = Initrd::new(&busybox, &init);
    initrd
        .file(
            "test.sh",
            TEST_SH.replace("@LATE@", &insmod_lines(&late)).as_bytes(),
            0o755,
        )
        .file("key", PASS.as_bytes(), 0o600)
        // Never reached: the refusal it is there for comes first.
        .file(
            "bin/nixos-install",
            b"#!/bin/sh\necho '@@nixos-install-ran'\nexit 1\n",
            0o755,
        )
        .file(
            "host.json",
            &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/install-host.json"))
                .unwrap(),
            0o644,
        );
    initrd.modules(&early).modules(&late);
    for p in [&cryptsetup, &mkfs_btrfs, &btrfs, &sgdisk, &mkfs_fat] {
        initrd.program(p);
    }
    let mkfs_dir = mkfs_fat.parent().unwrap().strip_prefix("/").unwrap();
    std::os::unix::fs::symlink("mkfs.fat", initrd.root().join(mkfs_dir).join("mkfs.vfat")).unwrap();
    initrd.bifrost();

    let dir = tempfile::tempdir().unwrap();
    let initrd_path = dir.path().join("initrd");
    initrd.write(&initrd_path);
    let disks = blank_disks(dir.path(), &["vda.img", "vdb.img"], 384 << 20);

    let mut vm = qemu::QemuBuilder::new(&qemu_bin, 1024)
        .kernel(&kernel, &initrd_path, "console=ttyS0 panic=-1 loglevel=3")
        .disk(&disks[0])
        .disk(&disks[1])
        .spawn();
    let log = vm.wait_exit(Duration::from_secs(600));
    let m = finished(&log);

    // No secret anywhere: console (all of bifrost's output, the state file), process listings.
    assert_secret_unseen(&log, &m, PASS);
    assert_ne!(
        one(&m, "watched-cryptsetup"),
        "0",
        "the watcher never saw cryptsetup run"
    );

    // Fresh: stopped at the ESP mount after the subvolumes, then resumed there.
    let fresh1 = all(&m, "fresh1");
    assert_ne!(one(&m, "fresh1-exit"), "0", "{fresh1}");
    assert!(fresh1.contains("[mount-esp] failed"), "{fresh1}");
    assert!(fresh1.contains("to resume"), "{fresh1}");
    // Resumed with a key file that does not exist: the passphrase is not
    // asked for when no remaining step reads it.
    let fresh2 = all(&m, "fresh2");
    assert_eq!(one(&m, "fresh2-exit"), "0", "{fresh2}");
    for id in [
        "zap",
        "luks-format",
        "mkfs-btrfs",
        "subvolume:@home",
        "mount:/nix",
    ] {
        assert!(
            fresh2.contains(&format!("skip {id}: done in an earlier run")),
            "{id}:\n{fresh2}"
        );
    }
    assert!(!fresh2.contains("Create the LUKS2 container"), "{fresh2}");
    assert!(fresh2.contains("Mount the ESP"), "{fresh2}");

    // LUKS2 with the host's Argon2id cost.
    let dump = all(&m, "dump");
    for (field, want) in [
        ("Version:", "2"),
        ("PBKDF:", "argon2id"),
        ("Time cost:", "4"),
        ("Memory:", "32768"),
        ("Threads:", "1"),
    ] {
        let got = dump
            .lines()
            .find_map(|l| l.trim().strip_prefix(field))
            .map(str::trim);
        assert_eq!(got, Some(want), "{field} in luksDump:\n{dump}");
    }
    assert_eq!(one(&m, "fresh-shared-stat"), "2000 2775");
    // The host's NixOS and shared subvolumes, mounted with their options.
    assert_eq!(
        subvolume_paths(&all(&m, "fresh-subvol")),
        ["@", "@home", "@nix", "@shared", "@snapshots"],
        "{}",
        all(&m, "fresh-subvol")
    );
    let mounts = all(&m, "fresh-mount");
    for (at, subvol) in [
        ("/mnt/fresh ", "/@"),
        ("/mnt/fresh/home ", "/@home"),
        ("/mnt/fresh/shared ", "/@shared"),
    ] {
        let line = mounts
            .lines()
            .find(|l| l.contains(at))
            .unwrap_or_else(|| panic!("{at} not mounted:\n{mounts}"));
        assert!(
            line.contains("compress=zstd") && line.contains("noatime"),
            "{line}"
        );
        assert!(
            line.contains(&format!("subvol={subvol},"))
                || line.ends_with(&format!("subvol={subvol} 0 0")),
            "{line}"
        );
    }
    assert!(
        mounts
            .lines()
            .any(|l| l.contains("/mnt/fresh/boot/efi vfat")),
        "{mounts}"
    );
    let gpt = all(&m, "gpt");
    assert!(
        gpt.contains("EF00") && gpt.contains("ESP") && gpt.contains("8309") && gpt.contains("pool"),
        "{gpt}"
    );
    assert!(
        all(&m, "state").contains("\"finished\": true"),
        "{}",
        all(&m, "state")
    );

    // Beside Kinoite: NixOS's subvolumes added, Kinoite's and the shared data unchanged.
    let dual = all(&m, "dual");
    assert_eq!(one(&m, "dual-exit"), "0", "{dual}");
    assert!(
        !dual.contains("luksFormat") && !dual.contains("mkfs"),
        "{dual}"
    );
    assert_eq!(
        subvolume_paths(&all(&m, "dual-subvol")),
        ["@", "@home", "@nix", "@root", "@shared", "@snapshots"]
    );
    assert!(
        m.contains_key("shared-read-only"),
        "the shared subvolume was writable during the install"
    );
    // A stock Kinoite has no @shared: the install made it, owned by the
    // shared group (same gid on both systems), group-writable and setgid.
    assert_eq!(one(&m, "dual-shared-stat"), "2000 2775");
    assert_eq!(
        one(&m, "esp-marker"),
        "kinoite-shim",
        "the existing ESP lost Kinoite's files"
    );
    assert_eq!(
        one(&m, "kinoite-before"),
        one(&m, "kinoite-after"),
        "Kinoite's data changed"
    );
    assert_eq!(
        m["before-gen"], m["after-gen"],
        "a Kinoite subvolume got a new generation"
    );
    assert_eq!(m["before-gen"].len(), 1);
    // An existing @shared, with data in it, is left exactly as it is.
    assert_eq!(
        one(&m, "shared-before"),
        one(&m, "shared-after"),
        "the shared data changed"
    );
    assert_eq!(m["shared-before-gen"], m["shared-after-gen"]);
    assert_eq!(m["shared-before-gen"].len(), 1);

    // Refusals, each with its message.
    let r = all(&m, "refuse-mounted");
    assert_ne!(one(&m, "refuse-mounted-exit"), "0");
    assert!(
        r.contains("/dev/vdb is in use: /dev/mapper/cryptroot is mounted at /mnt/dual"),
        "{r}"
    );
    let r = all(&m, "refuse-exists");
    assert_ne!(one(&m, "refuse-exists-exit"), "0");
    assert!(
        r.contains("/@ already exists") && r.contains("--force"),
        "{r}"
    );
    let r = all(&m, "refuse-partition");
    assert!(
        r.contains("/dev/vda2 is a partition; give the whole disk (/dev/vda)"),
        "{r}"
    );
    let r = all(&m, "refuse-foreign");
    assert!(
        r.contains("/dev/vdb1 (the ESP) is not a partition of /dev/vda"),
        "{r}"
    );
    assert!(r.contains("--esp-device"), "{r}");
    let r = all(&m, "refuse-kinoite-boot");
    assert!(
        r.contains("/dev/disk/by-label/kinoite-boot: Kinoite's /boot is not there"),
        "{r}"
    );
    assert!(!m.contains_key("nixos-install-ran"));
    let r = all(&m, "refuse-swap");
    assert!(r.contains("/dev/vda is in use as swap (/dev/vda1)"), "{r}");
    let r = all(&m, "forced");
    assert_eq!(one(&m, "forced-exit"), "0", "{r}");
    assert!(r.contains("used as it is (--force)"), "{r}");
}
