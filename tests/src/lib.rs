//! Shared harness of the end-to-end tests: where the real tools are, and
//! what happens when one is missing.
//!
//! Tools are found through environment variables with Debian defaults;
//! `nix develop` sets the same variables from nixpkgs. A test whose tool is
//! missing prints `SKIPPED` and passes, except when `BIFROST_REQUIRE_TOOLS=1`
//! (set by `.ci/run`), where it fails: CI never skips a real-tool test.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The `bifrost` binary under test.
///
/// `BIFROST_BIN` overrides; otherwise the binary next to this test's
/// target folder (`tests/run.sh` builds it before the tests run).
pub fn bifrost_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BIFROST_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/bifrost
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("bifrost");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p bifrost-cli`), or run tests/run.sh",
        bin.display()
    );
    bin
}

/// A path from environment variable `var`, else `default`; `None` when it does not exist.
pub fn tool_path(var: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    p.exists().then_some(p)
}

/// A program on `PATH`.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether real-tool tests must run (CI) rather than skip.
pub fn tools_required() -> bool {
    std::env::var("BIFROST_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// Record that `test` cannot run because `missing` is absent; the caller
/// returns. Panics under `BIFROST_REQUIRE_TOOLS=1`.
pub fn skip(test: &str, missing: &str) {
    let line = format!("SKIPPED {test}: needs {missing}");
    if tools_required() {
        panic!("{line}, and BIFROST_REQUIRE_TOOLS=1 forbids skipping (install it, or run tests/run.sh which does)");
    }
    eprintln!("{line}");
    append_skip_log(&line);
}

/// Like [`skip`], for tests that CI may skip (they need something no CI
/// machine here can have, such as a local copy of nixpkgs' lib).
pub fn skip_optional(test: &str, missing: &str) {
    let line = format!("SKIPPED (optional) {test}: needs {missing}");
    eprintln!("{line}");
    append_skip_log(&line);
}

/// Append one line to `BIFROST_SKIP_LOG`. One `write` call per line, so
/// tests running in parallel never interleave their lines.
fn append_skip_log(line: &str) {
    if let Some(log) = std::env::var_os("BIFROST_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// What a UEFI boot test needs, all present.
#[derive(Debug, Clone)]
pub struct BootTools {
    pub qemu: PathBuf,
    pub ovmf_code: PathBuf,
    pub ovmf_vars: PathBuf,
    pub refind_dir: PathBuf,
    pub kernel: PathBuf,
    pub busybox: PathBuf,
}

impl BootTools {
    /// The boot tools, or `None` after [`skip`] names what is missing.
    pub fn find(test: &str) -> Option<BootTools> {
        let t = Tools::find();
        match (
            t.qemu,
            t.ovmf_code,
            t.ovmf_vars,
            t.refind_dir,
            t.kernel,
            t.busybox,
        ) {
            (
                Some(qemu),
                Some(ovmf_code),
                Some(ovmf_vars),
                Some(refind_dir),
                Some(kernel),
                Some(busybox),
            ) => Some(BootTools {
                qemu,
                ovmf_code,
                ovmf_vars,
                refind_dir,
                kernel,
                busybox,
            }),
            _ => {
                skip(
                    test,
                    "qemu-system-x86_64, OVMF, rEFInd, a kernel and busybox",
                );
                None
            }
        }
    }

    /// A FAT image at `dir/esp.img` with rEFInd at the firmware's fallback
    /// path, `conf` as its refind.conf, and the kernel and an initrd running
    /// `init` under `EFI/test/` (so `conf` loads `/EFI/test/kernel` and
    /// `/EFI/test/initrd`).
    pub fn refind_test_esp(&self, dir: &Path, conf: &str, init: &str) -> PathBuf {
        let esp = dir.join("esp");
        std::fs::create_dir_all(esp.join("EFI/BOOT")).unwrap();
        std::fs::create_dir_all(esp.join("EFI/test")).unwrap();
        std::fs::copy(
            self.refind_dir.join("refind_x64.efi"),
            esp.join("EFI/BOOT/BOOTX64.EFI"),
        )
        .unwrap();
        std::fs::write(esp.join("EFI/BOOT/refind.conf"), conf).unwrap();
        std::fs::copy(&self.kernel, esp.join("EFI/test/kernel")).unwrap();
        initrd::Initrd::new(&self.busybox, init).write(&esp.join("EFI/test/initrd"));
        let img = dir.join("esp.img");
        image::fat_image(&esp, &img, 64, "ESP");
        img
    }

    /// Boot `disk` under OVMF, press `keys` once rEFInd's menu shows, and
    /// return the kernel command line the initrd printed (without rEFInd's
    /// `initrd=`); panics with the serial log's tail when none was printed.
    pub fn boot_menu(&self, disk: &Path, keys: &[&str]) -> String {
        use std::time::Duration;
        let mut vm = qemu::QemuBuilder::new(&self.qemu, 512)
            .uefi(&self.ovmf_code, &self.ovmf_vars)
            .disk(disk)
            .spawn();
        vm.wait_for("Main Menu", Duration::from_secs(120));
        vm.keys(keys);
        let log = vm.wait_exit(Duration::from_secs(120));
        qemu::printed_cmdline(&log)
            .unwrap_or_else(|| panic!("no command line printed; serial:\n{}", qemu::tail(&log)))
    }
}

/// Every `.nix` file of the repository (outside `target/` and hidden folders).
pub fn repo_nix_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&p, out);
                }
            } else if name.ends_with(".nix") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    walk(root, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("flake.nix")),
        "flake.nix not found under {}",
        root.display()
    );
    files
}

/// Run `cmd`; the test fails with the command and its stderr unless it
/// succeeds. Returns its stdout.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every tool the tests use, located once.
#[derive(Debug, Clone)]
pub struct Tools {
    pub qemu: Option<PathBuf>,
    pub ovmf_code: Option<PathBuf>,
    pub ovmf_vars: Option<PathBuf>,
    pub refind_dir: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub busybox: Option<PathBuf>,
    pub nix_instantiate: Option<PathBuf>,
    pub nix: Option<PathBuf>,
}

impl Tools {
    pub fn find() -> Tools {
        Tools {
            qemu: std::env::var_os("BIFROST_QEMU")
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .or_else(|| program("qemu-system-x86_64")),
            ovmf_code: tool_path("BIFROST_OVMF_CODE", "/usr/share/OVMF/OVMF_CODE_4M.fd"),
            ovmf_vars: tool_path("BIFROST_OVMF_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
            refind_dir: tool_path("BIFROST_REFIND_DIR", "/usr/share/refind/refind"),
            kernel: std::env::var_os("BIFROST_KERNEL")
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .or_else(newest_boot_kernel),
            busybox: tool_path("BIFROST_BUSYBOX", "/bin/busybox"),
            nix_instantiate: program("nix-instantiate"),
            nix: program("nix"),
        }
    }
}

/// The newest `/boot/vmlinuz-*` (Debian's kernel).
fn newest_boot_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}

pub mod dualboot;
pub mod esp_install;
pub mod fakenix;
pub mod guest;
pub mod image;
pub mod initrd;
pub mod nixeval;
pub mod nixrun;
pub mod qemu;
