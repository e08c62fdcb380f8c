//! `bifrost flash`: sparse images onto regular files and real loop devices,
//! read back byte for byte; verification catches a corrupted byte; every
//! refusal (mounted, system disk, fixed disk, too small, partition, no
//! terminal) with fake sysfs trees and real loop devices.

use bifrost_core::deploy::blockdev::{self, BlockdevError, Target};
use bifrost_core::deploy::flash::{self, FlashError};
use bifrost_e2e::{bifrost_bin, program, skip};
use camino::{Utf8Path, Utf8PathBuf};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;

const MIB: u64 = 1 << 20;

fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
    let d = tempfile::Builder::new()
        .prefix("bifrost-deploy-")
        .tempdir()
        .unwrap();
    let p = Utf8PathBuf::from_path_buf(d.path().to_path_buf()).unwrap();
    (d, p)
}

/// A sparse image of `size_mib` with a few MiB of patterned data scattered in it.
fn sparse_image(path: &Utf8Path, size_mib: u64) -> Vec<(u64, Vec<u8>)> {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size_mib * MIB).unwrap();
    let pieces: Vec<(u64, Vec<u8>)> = vec![
        (0, (0..MIB).map(|i| (i % 253) as u8 | 1).collect()),
        (
            5 * MIB + 4096,
            (0..2 * MIB).map(|i| (i % 241) as u8 | 2).collect(),
        ),
        (size_mib * MIB - 8192, vec![0x5a; 8192]),
    ];
    for (off, data) in &pieces {
        f.write_all_at(data, *off).unwrap();
    }
    pieces
}

fn bifrost(args: &[&str]) -> Output {
    Command::new(bifrost_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run bifrost")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run(cmd: &mut Command) -> String {
    bifrost_e2e::run_ok(cmd).trim().to_string()
}

/// A loop device over a backing file, detached (and unmounted) when dropped.
struct Loop {
    dev: String,
    mounted: Option<Utf8PathBuf>,
}

impl Loop {
    /// `None` when loop devices are not available (not root, no losetup).
    fn new(backing: &Utf8Path, partscan: bool) -> Option<Loop> {
        program("losetup")?;
        let mut cmd = Command::new("losetup");
        cmd.args(["-f", "--show"]);
        if partscan {
            cmd.arg("-P");
        }
        let out = cmd.arg(backing.as_str()).output().ok()?;
        if !out.status.success() {
            eprintln!("losetup: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Some(Loop {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            mounted: None,
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Some(m) = &self.mounted {
            let _ = Command::new("umount").arg(m.as_str()).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn backing(path: &Utf8Path, size_mib: u64, fill: u8) {
    std::fs::write(path, vec![fill; (size_mib * MIB) as usize]).unwrap();
}

#[test]
fn flash_sparse_image_to_regular_file() {
    let (_d, dir) = tmp();
    let img = dir.join("nixos.raw");
    sparse_image(&img, 256);
    let out = dir.join("copy.raw");
    // An existing, longer, non-sparse file: it must end identical and sparse.
    backing(&out, 300, 0xee);
    let o = bifrost(&["flash", img.as_str(), out.as_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("verified"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(&out).unwrap());
    let allocated = std::fs::metadata(&out).unwrap().blocks() * 512;
    assert!(
        allocated < 16 * MIB,
        "copy allocates {allocated} bytes: not sparse"
    );
    // Progress lines (not a terminal) carry throughput and ETA.
    assert!(stderr(&o).contains("/s, ETA"), "{}", stderr(&o));
}

#[test]
fn flash_to_loop_device_reads_back_identical_and_verify_catches_corruption() {
    let (_d, dir) = tmp();
    let img = dir.join("nixos.raw");
    sparse_image(&img, 64);
    let back = dir.join("disk");
    // Stale bytes everywhere: the image's holes must come out as zeros.
    backing(&back, 80, 0xaa);
    let Some(lo) = Loop::new(&back, false) else {
        return skip("flash_to_loop_device", "loop devices (root, losetup)");
    };
    let o = bifrost(&["flash", img.as_str(), &lo.dev, "--yes", "--allow-fixed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("verified"), "{}", stderr(&o));
    let want = std::fs::read(&img).unwrap();
    let mut got = vec![0u8; want.len()];
    std::fs::File::open(&lo.dev)
        .unwrap()
        .read_exact_at(&mut got, 0)
        .unwrap();
    assert!(want == got, "device differs from the image");
    // Beyond the image, the device is untouched.
    let mut tail = [0u8; 16];
    std::fs::File::open(&lo.dev)
        .unwrap()
        .read_exact_at(&mut tail, 70 * MIB)
        .unwrap();
    assert_eq!(tail, [0xaa; 16]);

    // Corrupt one byte on the device, behind bifrost's back.
    let at = 5 * MIB + 4096 + 12345;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&lo.dev)
        .unwrap();
    f.write_all_at(&[!want[at as usize]], at).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let target = Utf8PathBuf::from(lo.dev.clone());
    match flash::verify(&img, &target, &AtomicBool::new(false), &mut |_| {}) {
        Err(FlashError::Mismatch { offset, .. }) => assert_eq!(offset, at),
        other => panic!("corruption not caught: {other:?}"),
    }
    // And in a hole.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&lo.dev)
        .unwrap();
    f.write_all_at(&[want[at as usize]], at).unwrap();
    f.write_all_at(&[1], 40 * MIB + 7).unwrap();
    f.sync_all().unwrap();
    match flash::verify(&img, &target, &AtomicBool::new(false), &mut |_| {}) {
        Err(FlashError::Mismatch { offset, .. }) => assert_eq!(offset, 40 * MIB + 7),
        other => panic!("corruption in a hole not caught: {other:?}"),
    }
}

#[test]
fn loop_device_refusals_fixed_small_mounted_no_terminal() {
    let (_d, dir) = tmp();
    let img = dir.join("nixos.raw");
    sparse_image(&img, 32);
    let back = dir.join("disk");
    backing(&back, 48, 0);
    let Some(mut lo) = Loop::new(&back, true) else {
        return skip("loop_device_refusals", "loop devices (root, losetup)");
    };
    let untouched = || {
        let mut b = [1u8; 4];
        std::fs::File::open(&back)
            .unwrap()
            .read_exact_at(&mut b, 0)
            .unwrap();
        assert_eq!(b, [0; 4], "the device was written to");
    };

    // A loop device is neither removable nor USB: fixed.
    let o = bifrost(&["flash", img.as_str(), &lo.dev, "--yes"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("fixed") && stderr(&o).contains("--allow-fixed"),
        "{}",
        stderr(&o)
    );
    untouched();

    // No --yes and no terminal: refuse rather than guess.
    let o = bifrost(&["flash", img.as_str(), &lo.dev, "--allow-fixed"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a terminal") && stderr(&o).contains("--yes"),
        "{}",
        stderr(&o)
    );
    untouched();

    // Too small.
    let big = dir.join("big.raw");
    sparse_image(&big, 64);
    let o = bifrost(&["flash", big.as_str(), &lo.dev, "--yes", "--allow-fixed"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("larger device"), "{}", stderr(&o));
    untouched();

    // Mounted: a partition of the device carries a mounted ext4.
    if program("sgdisk").is_none() || program("mkfs.ext4").is_none() {
        return skip("loop_device_refusals (mounted)", "sgdisk, mkfs.ext4");
    }
    run(Command::new("sgdisk")
        .args(["-o", "-n1:2048:0", "-t1:8300"])
        .arg(&lo.dev));
    run(Command::new("partx").args(["-u", &lo.dev]));
    let part = format!("{}p1", lo.dev);
    for _ in 0..50 {
        if Utf8Path::new(&part).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    run(Command::new("mkfs.ext4").args(["-q", "-F", &part]));
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run(Command::new("mount").args([&part, mnt.as_str()]));
    lo.mounted = Some(mnt.clone());
    let name = lo.dev.trim_start_matches("/dev/").to_string();
    let o = bifrost(&["flash", img.as_str(), &lo.dev, "--yes", "--allow-fixed"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("in use") && e.contains(&format!("{name}p1 mounted at {mnt}")),
        "{e}"
    );
    // The partition table survived.
    let mut sig = [0u8; 8];
    std::fs::File::open(&back)
        .unwrap()
        .read_exact_at(&mut sig, 512)
        .unwrap();
    assert_eq!(&sig, b"EFI PART");
}

// ---- fake sysfs trees -------------------------------------------------------

/// A machine with one disk `sdb` (8:16) holding sdb1 (8:17) and sdb2 (8:18);
/// sdb2 is held by dm-0 (254:0, `cryptroot`). The device nodes are real
/// (mknod) inside the tree; sysfs, mountinfo and swaps are files.
struct Fake {
    _d: tempfile::TempDir,
    root: Utf8PathBuf,
    sdb: Utf8PathBuf,
}

fn symlink(target: &str, link: &Utf8Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn write(p: &Utf8Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

fn mknod(p: &Utf8Path, major: u32, minor: u32) -> bool {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let c = std::ffi::CString::new(p.as_str()).unwrap();
    // SAFETY: mknod with a NUL-terminated path.
    unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFBLK | 0o600,
            libc::makedev(major, minor),
        ) == 0
    }
}

impl Fake {
    fn new(usb: bool, removable: bool, size_mib: u64) -> Option<Fake> {
        let (d, root) = tmp();
        let dev_path = if usb {
            "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb"
        } else {
            "devices/pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0/block/sdb"
        };
        let sys = root.join("sys");
        let sdb = sys.join(dev_path);
        write(&sdb.join("dev"), "8:16\n");
        write(&sdb.join("size"), &format!("{}\n", size_mib * MIB / 512));
        write(
            &sdb.join("removable"),
            if removable { "1\n" } else { "0\n" },
        );
        write(&sdb.join("device/vendor"), "SanDisk \n");
        write(&sdb.join("device/model"), "Ultra           \n");
        for (n, minor) in [("sdb1", 17), ("sdb2", 18)] {
            write(&sdb.join(n).join("dev"), &format!("8:{minor}\n"));
            write(&sdb.join(n).join("size"), "2048\n");
            write(&sdb.join(n).join("partition"), &format!("{}\n", minor - 16));
            symlink(
                &format!("../../{dev_path}/{n}"),
                &sys.join("class/block").join(n),
            );
            symlink(
                &format!("../../{dev_path}/{n}"),
                &sys.join("dev/block").join(format!("8:{minor}")),
            );
        }
        symlink(&format!("../../{dev_path}"), &sys.join("class/block/sdb"));
        symlink(&format!("../../{dev_path}"), &sys.join("dev/block/8:16"));
        let dm = sys.join("devices/virtual/block/dm-0");
        write(&dm.join("dev"), "254:0\n");
        write(&dm.join("dm/name"), "cryptroot\n");
        symlink(
            "../../devices/virtual/block/dm-0",
            &sys.join("class/block/dm-0"),
        );
        symlink(
            "../../../../../devices/virtual/block/dm-0",
            &sdb.join("sdb2/holders/dm-0"),
        );
        write(
            &root.join("proc/self/mountinfo"),
            "22 1 0:21 / /proc rw - proc proc rw\n23 1 0:30 / / rw - btrfs /dev/vda2 rw\n",
        );
        write(
            &root.join("proc/swaps"),
            "Filename\tType\tSize\tUsed\tPriority\n",
        );
        let node = root.join("dev/sdb");
        if !mknod(&node, 8, 16) || !mknod(&root.join("dev/sdb1"), 8, 17) {
            return None;
        }
        Some(Fake {
            _d: d,
            root,
            sdb: node,
        })
    }

    fn mountinfo(&self, extra: &str) {
        let p = self.root.join("proc/self/mountinfo");
        let mut s = std::fs::read_to_string(&p).unwrap();
        s.push_str(extra);
        std::fs::write(p, s).unwrap();
    }

    fn check(&self, image: u64, allow_fixed: bool) -> Result<Target, BlockdevError> {
        let t = blockdev::inspect(&self.sdb, &self.root)?;
        blockdev::check(&t, image, allow_fixed, &self.root)?;
        Ok(t)
    }
}

macro_rules! fake_or_skip {
    ($name:expr, $usb:expr, $rem:expr, $size:expr) => {
        match Fake::new($usb, $rem, $size) {
            Some(f) => f,
            None => return skip($name, "mknod of block device nodes (root)"),
        }
    };
}

#[test]
fn fake_usb_stick_is_accepted_and_described() {
    let f = fake_or_skip!("fake_usb_stick_is_accepted", true, false, 1024);
    let Target::Disk(d) = f.check(512 * MIB, false).unwrap() else {
        panic!("not a disk")
    };
    assert_eq!(d.name, "sdb");
    assert_eq!(d.size, 1024 * MIB);
    assert!(d.usb && d.is_removable());
    assert_eq!(d.model.as_deref(), Some("SanDisk Ultra"));
    let parts: Vec<&str> = d.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(parts, ["sdb1", "sdb2"]);
}

#[test]
fn fake_system_disk_is_refused_via_holders_partitions_and_swap() {
    // Root on LUKS (dm-0) over sdb2: reported by major:minor.
    let f = fake_or_skip!("fake_system_disk", true, true, 1024);
    f.mountinfo("40 1 254:0 / /nix/store ro - ext4 /dev/mapper/cryptroot rw\n");
    match f.check(MIB, true) {
        Err(BlockdevError::SystemDisk { what, .. }) => {
            assert!(what.contains("dm-0 mounted at /nix/store"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    // btrfs reports an anonymous 0:N device: found by its source instead.
    let f = fake_or_skip!("fake_system_disk", true, true, 1024);
    f.mountinfo("41 1 0:33 /@ / rw - btrfs /dev/mapper/cryptroot rw\n");
    assert!(matches!(
        f.check(MIB, true),
        Err(BlockdevError::SystemDisk { .. })
    ));
    // /boot on a partition.
    let f = fake_or_skip!("fake_system_disk", true, true, 1024);
    f.mountinfo("42 1 8:17 / /boot rw - vfat /dev/sdb1 rw\n");
    match f.check(MIB, true) {
        Err(e @ BlockdevError::SystemDisk { .. }) => {
            assert!(e.to_string().contains("sdb1 mounted at /boot"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // Swap on a partition.
    let f = fake_or_skip!("fake_system_disk", true, true, 1024);
    write(
        &f.root.join("proc/swaps"),
        "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb1 partition 1048572 0 -2\n",
    );
    match f.check(MIB, true) {
        Err(e @ BlockdevError::SystemDisk { .. }) => {
            assert!(e.to_string().contains("sdb1 used as swap"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fake_mounted_fixed_small_and_partition_are_refused() {
    let f = fake_or_skip!("fake_refusals", true, true, 1024);
    f.mountinfo("50 1 8:18 / /run/media/me/DATA rw - ext4 /dev/sdb2 rw\n");
    match f.check(MIB, false) {
        Err(e @ BlockdevError::Mounted { .. }) => assert!(
            e.to_string().contains("sdb2 mounted at /run/media/me/DATA"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // An internal SATA disk: fixed, unless allowed.
    let f = fake_or_skip!("fake_refusals", false, false, 1024);
    assert!(matches!(
        f.check(MIB, false),
        Err(BlockdevError::FixedDisk { .. })
    ));
    f.check(MIB, true).unwrap();
    // An SD card in a built-in reader says removable 0 but type SD.
    let f = fake_or_skip!("fake_refusals", false, false, 1024);
    let sys = std::fs::canonicalize(f.root.join("sys/dev/block/8:16")).unwrap();
    std::fs::write(sys.join("device/type"), "SD\n").unwrap();
    f.check(MIB, false).unwrap();
    // A removable flag alone is enough.
    let f = fake_or_skip!("fake_refusals", false, true, 1024);
    f.check(MIB, false).unwrap();
    // Too small.
    let f = fake_or_skip!("fake_refusals", true, true, 64);
    match f.check(65 * MIB, false) {
        Err(BlockdevError::TooSmall { device, image, .. }) => {
            assert_eq!((device, image), (64 * MIB, 65 * MIB))
        }
        other => panic!("{other:?}"),
    }
    // A partition instead of the whole disk.
    match blockdev::inspect(&f.root.join("dev/sdb1"), &f.root) {
        Err(e @ BlockdevError::Partition { .. }) => {
            assert!(e.to_string().contains("/dev/sdb"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_says_incomplete() {
    use std::io::BufRead;
    let (_d, dir) = tmp();
    let img = dir.join("big.raw");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(2048 * MIB).unwrap();
    let block: Vec<u8> = (0..16 * MIB).map(|i| (i % 249) as u8 | 1).collect();
    for i in 0..32 {
        f.write_all_at(&block, i * 64 * MIB).unwrap();
    }
    drop(f);
    let out = dir.join("out.raw");
    let mut child = Command::new(bifrost_bin())
        .args(["flash", img.as_str(), out.as_str()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // The first progress line says the write began; interrupt then.
    for l in lines.by_ref() {
        let l = l.unwrap();
        let started = l.starts_with("writing:");
        seen.push(l);
        if started {
            break;
        }
    }
    // SAFETY: signals the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let log = seen.join("\n");
    assert!(
        !status.success(),
        "flash finished before Ctrl-C arrived:\n{log}"
    );
    assert!(
        log.contains("interrupted") && log.contains("INCOMPLETE"),
        "{log}"
    );
}

/// Issue 13 item 1: an IMAGE that is not a regular non-empty file is refused
/// before DEVICE is opened. Before the fix, swapped arguments truncated the
/// image file to nothing and said "verified"; a FIFO wrote nothing and said
/// "verified"; a folder zeroed the target's first 4 KiB before failing.
#[test]
fn non_file_image_is_refused_before_the_target_is_touched() {
    let (_d, dir) = tmp();
    let built = dir.join("built.raw");
    sparse_image(&built, 8);
    let built_bytes = std::fs::read(&built).unwrap();
    let target = dir.join("target.raw");
    backing(&target, 8, 0xcc);
    let target_bytes = std::fs::read(&target).unwrap();
    let unchanged = |why: &str| {
        assert!(
            std::fs::read(&built).unwrap() == built_bytes,
            "{why}: built.raw changed"
        );
        assert!(
            std::fs::read(&target).unwrap() == target_bytes,
            "{why}: target changed"
        );
    };

    // A folder as IMAGE.
    let folder = dir.join("folder");
    std::fs::create_dir(&folder).unwrap();
    let o = bifrost(&["flash", folder.as_str(), target.as_str(), "--yes"]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a folder"), "{}", stderr(&o));
    unchanged("folder");

    // A pipe as IMAGE: refused without opening it (opening would block).
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.as_str()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let o = bifrost(&["flash", fifo.as_str(), target.as_str(), "--yes"]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("pipe"), "{}", stderr(&o));
    unchanged("fifo");

    // An empty file as IMAGE.
    let empty = dir.join("empty.raw");
    std::fs::write(&empty, b"").unwrap();
    let o = bifrost(&["flash", empty.as_str(), target.as_str(), "--yes"]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("is empty"), "{}", stderr(&o));
    unchanged("empty");

    // Swapped arguments: a device as IMAGE, the built image as DEVICE.
    let back = dir.join("disk");
    backing(&back, 16, 0xaa);
    let Some(lo) = Loop::new(&back, false) else {
        return skip("non_file_image_is_refused", "loop devices (root, losetup)");
    };
    let o = bifrost(&["flash", &lo.dev, built.as_str(), "--yes"]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--image-is-device"), "{}", stderr(&o));
    unchanged("swapped");
    // Given on purpose, a device copies byte for byte.
    let copy = dir.join("copy.raw");
    let o = bifrost(&["flash", &lo.dev, copy.as_str(), "--image-is-device"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&copy).unwrap() == std::fs::read(&back).unwrap());
}
