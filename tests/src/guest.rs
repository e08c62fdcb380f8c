//! Test guests that run a shell script in a busybox initrd under the Debian
//! kernel: which kernel modules to load, and the `@@key value` lines the
//! script prints on the serial console for the host side to assert on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder holding `<kernel version>/` with the kernel's modules:
/// `BIFROST_KERNEL_MODULES` (the Nix dev shell sets `<kernel>/lib/modules`;
/// the version folder itself is taken too), else Debian's /lib/modules.
pub fn modules_root() -> PathBuf {
    match std::env::var_os("BIFROST_KERNEL_MODULES").map(PathBuf::from) {
        Some(d) if d.join("modules.order").is_file() || d.join("modules.dep").is_file() => {
            d.parent().map(Path::to_path_buf).unwrap_or(d)
        }
        Some(d) => d,
        None => PathBuf::from("/lib/modules"),
    }
}

fn modinfo(kver: &str, field: &str, module: &str) -> String {
    let mut cmd = Command::new("modinfo");
    let root = modules_root();
    if root != Path::new("/lib/modules") {
        // modinfo -b BASE reads BASE/lib/modules/<version>.
        if let Some(base) = root.parent().and_then(Path::parent) {
            cmd.arg("-b").arg(base);
        }
    }
    let out = cmd
        .args(["-k", kver, "-F", field, module])
        .output()
        .expect("run modinfo (Debian package kmod)");
    assert!(
        out.status.success(),
        "modinfo {module}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `.ko` files of `modules` and their dependencies, in load order, appended
/// to `out`. A module built into the kernel (`modinfo` names its file
/// `(builtin)`, as Debian's cloud kernel does for crc32c_generic) needs no
/// loading.
pub fn resolve_modules(kver: &str, modules: &[&str], out: &mut Vec<PathBuf>) {
    for m in modules {
        if modinfo(kver, "filename", m) == "(builtin)" {
            continue;
        }
        let deps = modinfo(kver, "depends", m);
        let deps: Vec<&str> = deps.split(',').filter(|d| !d.is_empty()).collect();
        resolve_modules(kver, &deps, out);
        let file = PathBuf::from(modinfo(kver, "filename", m));
        if !out.contains(&file) {
            out.push(file);
        }
    }
}

/// Shell lines loading `files` from the initrd's `/modules/`; a failure
/// prints `@@insmod-failed NAME`.
pub fn insmod_lines(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy();
            format!("insmod /modules/{name} || echo \"@@insmod-failed {name}\"\n")
        })
        .collect()
}

/// A test guest's `/init`: busybox's applets on PATH, /proc, /sys and /dev
/// mounted, kernel messages kept off the serial console (a late one would
/// land inside an `@@` line), the kernel modules loaded (`insmod`, from
/// [`insmod_lines`]), then `body`, then power off.
pub fn init_script(insmod: &str, body: &str) -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin /proc /sys /dev /run /tmp /mnt
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 > /proc/sys/kernel/printk
{insmod}{body}
sync
poweroff -f
"#
    )
}

/// The body of a guest that runs the initrd's `/test.sh` with cryptsetup
/// usable (no udev here: device-mapper makes its own /dev/mapper nodes),
/// between `@@ready` and `@@end`.
pub const RUN_TEST_SH: &str = r#"mkdir -p /run/cryptsetup
export DM_DISABLE_UDEV=1
echo "@@ready"
sh /test.sh
echo "@@end""#;

/// The version folder of `kernel` under [`modules_root`]: from Debian's
/// `vmlinuz-<version>` name, or the only folder there (a Nix kernel is
/// named `bzImage`).
pub fn kernel_version(kernel: &Path) -> Option<String> {
    let root = modules_root();
    let named = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .map(str::to_string);
    if let Some(v) = named.filter(|v| root.join(v).is_dir()) {
        return Some(v);
    }
    let dirs: Vec<String> = std::fs::read_dir(&root)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    match dirs.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
}

/// Empty sparse disk images `names` of `size` bytes in `dir`.
pub fn blank_disks(dir: &Path, names: &[&str], size: u64) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| {
            let d = dir.join(n);
            std::fs::File::create(&d).unwrap().set_len(size).unwrap();
            d
        })
        .collect()
}

/// The `@@key value` lines of a guest run that got to `@@end` with every
/// kernel module loaded; the test fails with the console's tail otherwise.
/// `BIFROST_KEEP_SERIAL=FILE` keeps the whole console log.
pub fn finished(log: &str) -> BTreeMap<String, Vec<String>> {
    if let Some(keep) = std::env::var_os("BIFROST_KEEP_SERIAL") {
        std::fs::write(keep, log).unwrap();
    }
    let m = lines_by_key(log);
    assert!(
        log.contains("@@end"),
        "the guest did not finish:\n{}",
        crate::qemu::tail(log)
    );
    assert!(
        !m.contains_key("insmod-failed"),
        "{}",
        all(&m, "insmod-failed")
    );
    m
}

/// `secret` never showed on the console, nor (by the guest's process
/// watcher: `@@watched-secret`, `@@watched-bifrost`) in a command line or
/// environment while bifrost ran.
pub fn assert_secret_unseen(log: &str, m: &BTreeMap<String, Vec<String>>, secret: &str) {
    assert!(
        !log.contains(secret),
        "the passphrase appeared on the console"
    );
    assert_eq!(
        one(m, "watched-secret"),
        "0",
        "the passphrase appeared in a command line or environment"
    );
    assert_ne!(
        one(m, "watched-bifrost"),
        "0",
        "the watcher never saw bifrost run"
    );
}

/// The `@@key value` lines of the guest, grouped by key.
pub fn lines_by_key(log: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in log.lines() {
        let Some(rest) = line.trim_end_matches('\r').split_once("@@").map(|(_, r)| r) else {
            continue;
        };
        let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
        map.entry(k.to_string()).or_default().push(v.to_string());
    }
    map
}

/// The first value of `key`; panics when the guest never printed it.
pub fn one<'a>(m: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    m.get(key)
        .and_then(|v| v.first())
        .map(String::as_str)
        .unwrap_or_else(|| panic!("guest printed no @@{key}"))
}

/// Every value of `key`, one per line.
pub fn all(m: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    m.get(key).map(|v| v.join("\n")).unwrap_or_default()
}

/// A software TPM 2.0 (`swtpm socket`) for one QEMU guest; stopped on drop.
pub struct Swtpm {
    child: std::process::Child,
    socket: PathBuf,
    _state: tempfile::TempDir,
}

impl Swtpm {
    /// Start `swtpm` with a fresh state and wait for its control socket.
    pub fn start(swtpm: &Path) -> Swtpm {
        let state = tempfile::tempdir().expect("tempdir");
        // swtpm resolves relative paths against its own working folder: absolute only.
        let dir = std::fs::canonicalize(state.path()).unwrap();
        let socket = dir.join("swtpm.sock");
        let child = Command::new(swtpm)
            .arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", socket.display()))
            .arg("--log")
            .arg(format!("file={},level=1", dir.join("swtpm.log").display()))
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start swtpm");
        let mut s = Swtpm {
            child,
            socket,
            _state: state,
        };
        for _ in 0..1000 {
            if s.socket.exists() {
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("swtpm exited before listening: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("swtpm did not create {}", s.socket.display());
    }

    /// QEMU arguments attaching this TPM as a TIS device (`/dev/tpm0`, `/dev/tpmrm0`).
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=chrtpm,path={}", self.socket.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            "tpm-tis,tpmdev=tpm0".into(),
        ]
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
