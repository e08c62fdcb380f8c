//! `bifrost vm --headless` boots a test ESP (rEFInd + kernel + busybox
//! initrd, built by the harness) under OVMF and shows the guest's marker on
//! the serial console of its own terminal; the guest powers off and QEMU exits.

use bifrost_e2e::{bifrost_bin, BootTools};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str = "BIFROST-VM-MARKER";

const INIT: &str = r#"#!/bin/busybox sh
echo "BIFROST-VM-MARKER reached"
/bin/busybox poweroff -f
"#;

const CONF: &str = r#"timeout 1
scanfor manual
textonly
default_selection "Test"
menuentry "Test" {
  loader /EFI/test/kernel
  initrd /EFI/test/initrd
  options "console=ttyS0 quiet"
}
"#;

#[test]
fn vm_headless_boots_test_esp_and_shows_marker() {
    let Some(t) = BootTools::find("vm_headless_boots_test_esp_and_shows_marker") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // A folder name that would add QEMU options if commas were not doubled
    // (issue 13 item 10): the image, and the NVRAM copy, live below it.
    let dir = tmp.path().join("x,file=other.img,format=raw,y");
    std::fs::create_dir(&dir).unwrap();
    let img = t.refind_test_esp(&dir, CONF, INIT);
    let state = dir.join("state");

    let mut child = Command::new(bifrost_bin())
        .args(["vm", "--headless", "--memory", "512", "--cpus", "1"])
        .arg(&img)
        // KVM is no proof of working KVM (nested virtualisation): force TCG.
        .env("BIFROST_QEMU_ACCEL", "tcg")
        .env("BIFROST_QEMU", &t.qemu)
        .env("BIFROST_OVMF_CODE", &t.ovmf_code)
        .env("BIFROST_OVMF_VARS", &t.ovmf_vars)
        .env("BIFROST_STATE_DIR", &state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so a timeout kills QEMU too.
        .process_group(0)
        .spawn()
        .expect("start bifrost vm");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(180) {
            // SAFETY: signals the process group we created for bifrost and QEMU.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let out = reader.join().unwrap();
    let tail: String = out
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.contains(MARKER),
        "marker not on the serial console (status {status:?}); stderr:\n{err}\nserial tail:\n{tail}"
    );
    let status = status.expect("the guest powers off, so QEMU exits");
    assert!(
        status.success(),
        "bifrost vm exited {status}; stderr:\n{err}"
    );
    assert!(err.contains("Tcg"), "accelerator not reported: {err}");
    // The VM got its private NVRAM copy; the template stayed untouched.
    let vm_dirs: Vec<_> = std::fs::read_dir(state.join("vm")).unwrap().collect();
    assert_eq!(vm_dirs.len(), 1);
    let nvram = vm_dirs[0].as_ref().unwrap().path().join("OVMF_VARS.fd");
    assert!(nvram.is_file());
}

/// `--host` runs the runner `bifrost build vm` placed at OUT/2_raw/nixos-vm,
/// passing memory and headless mode through the runner's environment, and
/// hands back its exit status.
#[test]
fn vm_host_runs_the_placed_runner() {
    use std::os::unix::fs::PermissionsExt;
    let out = tempfile::tempdir().unwrap();
    let bin = out.path().join("2_raw/nixos-vm/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("run-testhost-vm");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"opts=$QEMU_OPTS params=$QEMU_KERNEL_PARAMS\"\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(bifrost_bin())
        .args([
            "vm",
            "--host",
            "testhost",
            "--memory",
            "1024",
            "--headless",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("opts=-m 1024 -nographic params=console=ttyS0"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(3));

    // No runner and no flake: a clear error naming the fix.
    let o = Command::new(bifrost_bin())
        .args(["vm", "--host", "other", "--out"])
        .arg(out.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bifrost build vm --host other"), "{err}");
}
