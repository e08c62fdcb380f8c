//! `bifrost install` refusals on this machine, before anything is written.
//!
//! Every run here gets a `PATH` of stub programs that fail loudly, so even a
//! broken refusal could not partition or format anything.

use bifrost_e2e::{bifrost_bin, program, skip};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const HOST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/install-host.json");

/// A folder of stubs for every program an install runs.
fn stubs() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for p in [
        "sgdisk",
        "cryptsetup",
        "mkfs.vfat",
        "mkfs.btrfs",
        "btrfs",
        "mkdir",
        "mount",
        "umount",
        "sh",
        "nixos-install",
    ] {
        let f = dir.path().join(p);
        std::fs::write(&f, "#!/bin/sh\necho \"STUB-CALLED $0\" >&2\nexit 99\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn install(path: &Path, args: &[&str]) -> Output {
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), "not-a-real-passphrase\n").unwrap();
    let out = Command::new(bifrost_bin())
        .args([
            "install",
            "--host",
            "install-test",
            "--settings",
            HOST,
            "--storage-only",
        ])
        .arg("--key-file")
        .arg(key.path())
        .args(args)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("STUB-CALLED"), "a step ran:\n{err}");
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The whole disk under `/`, when `/` is on a block device.
fn root_disk() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = info.lines().find(|l| l.split(' ').nth(4) == Some("/"))?;
    let dev = line.split(' ').nth(2)?;
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{dev}")).ok()?;
    let disk = if sys.join("partition").exists() {
        sys.parent()?.to_path_buf()
    } else {
        sys
    };
    let name = disk.file_name()?.to_str()?.to_string();
    let p = PathBuf::from(format!("/dev/{name}"));
    p.exists().then_some(p)
}

#[test]
fn refuses_the_disk_of_the_running_system() {
    let Some(disk) = root_disk() else {
        // Containers often run `/` on overlayfs: nothing to refuse here.
        return bifrost_e2e::skip_optional(
            "refuses_the_disk_of_the_running_system",
            "`/` on a block device",
        );
    };
    let s = stubs();
    let out = install(s.path(), &["--disk", disk.to_str().unwrap(), "--yes"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("holds the running system"), "{e}");
    assert!(e.contains("boot the installer"), "{e}");
}

/// A loop device backed by a sparse file, detached on drop.
struct Loop {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn new() -> Option<Loop> {
        let file = tempfile::NamedTempFile::new().ok()?;
        file.as_file().set_len(64 << 20).ok()?;
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file.path())
            .output()
            .ok()?;
        out.status.success().then(|| Loop {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            _file: file,
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
fn refuses_a_mounted_disk_and_asks_for_a_terminal_without_yes() {
    let (Some(_), Some(_)) = (program("losetup"), program("mke2fs")) else {
        return skip(
            "refuses_a_mounted_disk",
            "losetup (mount) and mke2fs (e2fsprogs)",
        );
    };
    let Some(lo) = Loop::new() else {
        return skip("refuses_a_mounted_disk", "a free loop device (run as root)");
    };
    let s = stubs();

    // Not mounted, no --yes, no terminal: refused before the passphrase is even read.
    let out = install(s.path(), &["--disk", &lo.dev]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no terminal to confirm on"),
        "{}",
        stderr(&out)
    );
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("ERASES EVERYTHING"),
        "the plan is shown first:\n{plan}"
    );

    // Mounted: refused with the mount point and how to free it.
    assert!(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", &lo.dev])
        .status()
        .unwrap()
        .success());
    let mnt = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .arg(&lo.dev)
        .arg(mnt.path())
        .status()
        .unwrap()
        .success();
    if !mounted {
        return skip(
            "refuses_a_mounted_disk",
            "permission to mount a loop device",
        );
    }
    let out = install(s.path(), &["--disk", &lo.dev, "--yes"]);
    let _ = Command::new("umount").arg(mnt.path()).status();
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains(&format!("{} is in use", lo.dev)), "{e}");
    assert!(
        e.contains(&format!("umount -R {}", mnt.path().display())),
        "{e}"
    );
}

#[test]
fn refuses_what_is_not_a_whole_disk_and_names_missing_tools() {
    let s = stubs();
    let out = install(s.path(), &["--disk", "/dev/bifrost-no-such-disk", "--yes"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no such block device"),
        "{}",
        stderr(&out)
    );

    let empty = tempfile::tempdir().unwrap();
    let out = install(empty.path(), &["--disk", "/dev/null", "--yes"]);
    let e = stderr(&out);
    assert!(!out.status.success());
    assert!(
        e.contains("missing programs: sgdisk, mkfs.vfat, cryptsetup"),
        "{e}"
    );
    assert!(
        e.contains("nix-shell -p gptfdisk dosfstools cryptsetup"),
        "{e}"
    );
    assert!(
        e.contains("apt-get install gdisk dosfstools cryptsetup-bin btrfs-progs"),
        "{e}"
    );
}

#[test]
fn plan_json_lists_every_step_and_needs_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bifrost_bin())
        .args(["install", "--host", "install-test", "--settings", HOST])
        .args(["--disk", "/dev/sdz", "--dual-boot", "--plan", "--json"])
        .args(["--refind-efi", "/x/refind_x64.efi"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mode"], "dual-boot");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps[0]["id"], "luks-open");
    assert_eq!(steps[0]["action"]["stdin"], "passphrase");
    let last = steps.last().unwrap();
    assert_eq!(last["id"], "umount-kinoite-boot");
    assert!(steps.iter().any(|s| s["id"] == "nixos-install"));
}

#[test]
fn refuses_to_run_without_root() {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return bifrost_e2e::skip_optional(
            "refuses_to_run_without_root",
            "root, to drop to another user",
        );
    }
    let s = stubs();
    let run = Command::new(bifrost_bin())
        .args([
            "install",
            "--host",
            "install-test",
            "--settings",
            HOST,
            "--storage-only",
        ])
        .args(["--disk", "/dev/null", "--yes", "--key-file", "/nonexistent"])
        .env("PATH", s.path())
        .uid(65534)
        .gid(65534)
        .output();
    // A checkout in a folder only its owner may enter (`mktemp -d` makes
    // one) leaves the binary out of the other user's reach: exec fails.
    let out = match run {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return bifrost_e2e::skip_optional(
                "refuses_to_run_without_root",
                "a bifrost binary other users can run",
            )
        }
        r => r.unwrap(),
    };
    let e = stderr(&out);
    if e.contains("Permission denied") && !e.contains("needs root") {
        return bifrost_e2e::skip_optional(
            "refuses_to_run_without_root",
            "a bifrost binary other users can run",
        );
    }
    assert!(!out.status.success());
    assert!(e.contains("installing needs root"), "{e}");
    assert!(!e.contains("STUB-CALLED"), "{e}");
}

/// `--plan --json` of a full install: one password step per user before
/// nixos-install, `--nvram` on the ESP step unless `--no-nvram`.
#[test]
fn plan_stores_each_users_hash_and_registers_unless_told_not_to() {
    let plan = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(bifrost_bin())
            .args(["install", "--host", "install-test", "--settings", HOST])
            .args(["--disk", "/dev/sdz", "--refind-efi", "/x/refind_x64.efi"])
            .args(["--plan", "--json"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let p = plan(&[]);
    let steps = p["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let at = |id: &str| ids.iter().position(|i| *i == id).unwrap();
    assert!(at("password:alice") < at("nixos-install"), "{ids:?}");
    assert!(at("password:bob") < at("nixos-install"), "{ids:?}");
    let hash = &steps[at("password:alice")]["action"];
    assert_eq!(hash["kind"], "writePasswordHash");
    assert_eq!(hash["path"], "/mnt/var/lib/bifrost/passwords/alice");
    let esp = |p: &serde_json::Value| {
        p["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "esp-install")
            .unwrap()["action"]["argv"]
            .to_string()
    };
    assert!(esp(&p).contains("\"--nvram\""), "{}", esp(&p));
    assert!(!esp(&plan(&["--no-nvram"])).contains("--nvram"));
}

/// Planning needs no rEFInd binary: without --refind-efi the plan uses
/// rEFInd's usual install location and says which binary that is.
#[test]
fn plan_without_a_refind_binary_names_the_one_it_would_use() {
    let out = Command::new(bifrost_bin())
        .args(["install", "--host", "install-test", "--settings", HOST])
        .args(["--disk", "/dev/sdz", "--plan"])
        .env_remove("BIFROST_REFIND_EFI")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rEFInd binary: "), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refind_x64.efi"), "{stdout}");
}

/// On bifrost's installer ISO (`BIFROST_INSTALL_*`), `bifrost install`
/// installs the carried host from the carried flake by default and says so;
/// another host is announced as not carried.
#[test]
fn installs_the_installers_own_host_by_default_and_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(bifrost_bin())
            .arg("install")
            .args(args)
            .args(["--disk", "/dev/sdz", "--plan"])
            .args(["--refind-efi", "/x/refind_x64.efi"])
            .env("PATH", empty.path())
            .env("BIFROST_INSTALL_HOST", "install-test")
            .env("BIFROST_INSTALL_FLAKE", "/etc/bifrost/flake")
            .env(
                "BIFROST_INSTALL_SYSTEM",
                "/nix/store/00000000000000000000000000000000-nixos-system-install-test",
            )
            .env("BIFROST_INSTALL_SETTINGS", HOST)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "Installing host install-test from flake /etc/bifrost/flake (settings {HOST})\n  this installer carries its system, /nix/store/00000000000000000000000000000000-nixos-system-install-test"
        )),
        "{text}"
    );
    assert!(text.contains("nixos-install"), "{text}");
    assert!(text.contains("/etc/bifrost/flake#install-test"), "{text}");

    let out = run(&["--host", "other", "--settings", HOST]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Installing host other from flake . "),
        "{text}"
    );
    assert!(
        text.contains("not the system this installer carries"),
        "{text}"
    );
}

/// `--sb-keys DIR` is checked before the first step (its keys are copied
/// only after nixos-install): a folder without the route's key and
/// certificate stops the install before the disk is even looked at.
#[test]
fn sb_keys_without_the_signing_key_are_refused_before_anything_runs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return bifrost_e2e::skip_optional(
            "sb_keys_without_the_signing_key_are_refused_before_anything_runs",
            "root (the root check comes first)",
        );
    }
    let s = stubs();
    let dir = tempfile::tempdir().unwrap();
    let mut host: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(HOST).unwrap()).unwrap();
    host["security"] = serde_json::json!({
        "secureBoot": { "enable": true, "keysPath": "/etc/secureboot", "route": "own-keys" }
    });
    let settings = dir.path().join("host.json");
    std::fs::write(&settings, host.to_string()).unwrap();
    let refind = dir.path().join("refind_x64.efi");
    std::fs::write(&refind, "").unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("db.key"), "").unwrap();
    let out = Command::new(bifrost_bin())
        .args(["install", "--host", "install-test", "--yes"])
        .arg("--settings")
        .arg(&settings)
        .arg("--refind-efi")
        .arg(&refind)
        .arg("--sb-keys")
        .arg(&keys)
        .args([
            "--disk",
            "/dev/bifrost-no-such-disk",
            "--key-file",
            "/nonexistent",
        ])
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .env("PATH", s.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let e = stderr(&out);
    assert!(!out.status.success());
    assert!(!e.contains("STUB-CALLED"), "{e}");
    assert!(
        e.contains(&format!(
            "--sb-keys {}: no file db.crt; give the folder that holds db.key and db.crt",
            keys.display()
        )),
        "{e}"
    );
}
