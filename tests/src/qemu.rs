//! QEMU runs for boot tests: UEFI (OVMF) or direct kernel boots, the serial
//! console captured to a file, keys sent through the QEMU monitor.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A QEMU command line being assembled.
pub struct QemuBuilder {
    qemu: PathBuf,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

/// The accelerator: TCG unless `BIFROST_QEMU_ACCEL` names another (such as
/// `kvm`). TCG is the default because an openable `/dev/kvm` is no proof of
/// working KVM: under nested virtualisation it can fail at the first
/// instruction, and boot tests must give the same answer everywhere.
fn accel_args() -> Vec<String> {
    let accel = std::env::var("BIFROST_QEMU_ACCEL")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "tcg".into());
    vec!["-accel".into(), accel]
}

impl QemuBuilder {
    /// A q35 machine with `memory_mib` of RAM, no network, no display.
    pub fn new(qemu: &Path, memory_mib: u32) -> QemuBuilder {
        let mut args: Vec<String> = vec![
            "-machine".into(),
            "q35".into(),
            "-m".into(),
            memory_mib.to_string(),
            "-display".into(),
            "none".into(),
            "-vga".into(),
            "none".into(),
            "-no-reboot".into(),
            "-nic".into(),
            "none".into(),
        ];
        args.extend(accel_args());
        QemuBuilder {
            qemu: qemu.to_path_buf(),
            args,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// UEFI firmware: OVMF code read-only, a private copy of the variables.
    pub fn uefi(self, ovmf_code: &Path, ovmf_vars: &Path) -> Self {
        let vars = self.dir.path().join("OVMF_VARS.fd");
        std::fs::copy(ovmf_vars, &vars).expect("copy OVMF vars");
        self.uefi_vars(ovmf_code, &vars)
    }

    /// UEFI firmware with `vars` as the variable store itself (not a copy), so
    /// what one boot writes to NVRAM the next boot finds.
    pub fn uefi_vars(mut self, ovmf_code: &Path, vars: &Path) -> Self {
        self.args.extend([
            "-drive".into(),
            format!(
                "if=pflash,format=raw,readonly=on,file={}",
                ovmf_code.display()
            ),
            "-drive".into(),
            format!("if=pflash,format=raw,file={}", vars.display()),
        ]);
        self
    }

    /// A raw disk image on a virtio disk.
    pub fn disk(mut self, image: &Path) -> Self {
        self.args.extend([
            "-drive".into(),
            format!("if=virtio,format=raw,file={}", image.display()),
        ]);
        self
    }

    /// Boot a kernel directly (no firmware boot loader).
    pub fn kernel(mut self, kernel: &Path, initrd: &Path, append: &str) -> Self {
        self.args.extend([
            "-kernel".into(),
            kernel.display().to_string(),
            "-initrd".into(),
            initrd.display().to_string(),
            "-append".into(),
            append.into(),
        ]);
        self
    }

    /// Any other QEMU argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Start QEMU.
    pub fn spawn(self) -> Running {
        let serial = self.dir.path().join("serial.log");
        let monitor = self.dir.path().join("monitor.sock");
        let child = Command::new(&self.qemu)
            .args(&self.args)
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .arg("-monitor")
            .arg(format!("unix:{},server,nowait", monitor.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu");
        Running {
            child,
            serial,
            monitor,
            _dir: self.dir,
        }
    }
}

/// A running QEMU; killed when dropped.
pub struct Running {
    child: Child,
    serial: PathBuf,
    monitor: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Everything on the serial console so far (lossy UTF-8).
    pub fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// Wait until the serial console shows `needle`; panics with the log on timeout or exit.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.serial();
            if log.contains(needle) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.serial();
                if log.contains(needle) {
                    return log;
                }
                panic!(
                    "qemu exited ({status}) before {needle:?} appeared; serial:\n{}",
                    tail(&log)
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "{needle:?} did not appear within {timeout:?}; serial:\n{}",
                    tail(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for QEMU to exit (the guest powers off); returns the serial log.
    pub fn wait_exit(&mut self, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.serial();
            }
            if start.elapsed() > timeout {
                let log = self.serial();
                panic!(
                    "qemu still running after {timeout:?}; serial:\n{}",
                    tail(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Send one monitor command (such as `sendkey down`).
    pub fn monitor(&self, command: &str) {
        let start = Instant::now();
        let mut sock = loop {
            match std::os::unix::net::UnixStream::connect(&self.monitor) {
                Ok(s) => break s,
                Err(e) if start.elapsed() > Duration::from_secs(10) => panic!("monitor: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        writeln!(sock, "{command}").expect("write to monitor");
        // Give QEMU time to act before the connection closes.
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Press keys in order (QEMU key names: `down`, `ret`, `esc`, …).
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.monitor(&format!("sendkey {k}"));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a serial log, for failure messages.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The kernel command line printed after [`crate::initrd::CMDLINE_MARKER`],
/// without the `initrd=…` that rEFInd appends.
pub fn printed_cmdline(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find_map(|l| l.split_once(crate::initrd::CMDLINE_MARKER).map(|(_, r)| r))?;
    Some(
        line.trim_end_matches('\r')
            .split(' ')
            .filter(|w| !w.starts_with("initrd="))
            .collect::<Vec<_>>()
            .join(" "),
    )
}
