//! Tiny initrds for boot tests: busybox, an `/init` script, and optionally
//! more programs with the shared libraries they load.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `/init` most boot tests use: silence the kernel's console log, print
/// the kernel command line on the serial console behind a marker, then power off.
pub const PRINT_CMDLINE_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
# Kernel messages still due (such as the TSC calibration, seconds into boot)
# would land in the middle of the marker line on the shared serial console.
echo 1 > /proc/sys/kernel/printk
echo "BIFROST-CMDLINE: $(/bin/busybox cat /proc/cmdline)"
/bin/busybox poweroff -f
"#;

/// Marker that precedes the kernel command line printed by [`PRINT_CMDLINE_INIT`].
pub const CMDLINE_MARKER: &str = "BIFROST-CMDLINE: ";

/// Builder of a newc cpio initrd.
pub struct Initrd {
    root: tempfile::TempDir,
}

impl Initrd {
    /// An initrd with `busybox` at `/bin/busybox` and `init` as `/init`.
    pub fn new(busybox: &Path, init: &str) -> Initrd {
        let root = tempfile::tempdir().expect("tempdir");
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
        let initrd = Initrd { root };
        initrd.file("init", init.as_bytes(), 0o755);
        initrd
    }

    /// Add a file at `rel` (relative to the initrd's root).
    pub fn file(&self, rel: &str, contents: &[u8], mode: u32) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let p = self.root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// Add a dynamically linked program at the same absolute path, with every
    /// shared library `ldd` lists for it (at their own paths).
    pub fn program(&self, program: &Path) -> &Self {
        let mut files = vec![program.to_path_buf()];
        let out = Command::new("ldd").arg(program).output().expect("run ldd");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let path = match line.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(p) = path.filter(|p| p.starts_with('/')) {
                files.push(PathBuf::from(p));
            }
        }
        for f in files {
            let dest = self.root.path().join(f.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            // Follow symlinks: the initrd gets the real bytes under the linked name.
            std::fs::copy(&f, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", f.display()));
        }
        self
    }

    /// Add kernel module files (from `guest::resolve_modules`) under
    /// `/modules/`, where `guest::insmod_lines` loads them from.
    pub fn modules(&self, files: &[PathBuf]) -> &Self {
        for m in files {
            self.file(
                &format!("modules/{}", m.file_name().unwrap().to_string_lossy()),
                &std::fs::read(m).unwrap(),
                0o644,
            );
        }
        self
    }

    /// Add the bifrost binary under test as `/bin/bifrost`, with its libraries.
    pub fn bifrost(&self) -> &Self {
        let bin = crate::bifrost_bin();
        self.program(&bin);
        std::fs::copy(&bin, self.root.path().join("bin/bifrost")).unwrap();
        self
    }

    /// Root folder of the initrd, to add anything else.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Write the initrd (uncompressed newc cpio) to `dest`.
    pub fn write(&self, dest: &Path) {
        let list = Command::new("find")
            .arg(".")
            .current_dir(self.root.path())
            .output()
            .expect("find");
        let out = std::fs::File::create(dest).expect("create initrd");
        let mut child = Command::new("cpio")
            .args(["-o", "-H", "newc", "--quiet", "--owner", "0:0"])
            .current_dir(self.root.path())
            .stdin(std::process::Stdio::piped())
            .stdout(out)
            .spawn()
            .expect("run cpio (Debian package cpio)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&list.stdout).unwrap();
        assert!(child.wait().unwrap().success(), "cpio failed");
    }
}
