//! Messages a user hits with odd input: each names the problem instead of
//! blocking, echoing an OS error with an empty path, or passing it on.

use bifrost_e2e::bifrost_bin;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run with a deadline: a command that blocks fails the test instead of hanging it.
fn run_bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    let t = Instant::now();
    loop {
        if let Ok(o) = rx.try_recv() {
            return o;
        }
        if t.elapsed() > Duration::from_secs(60) {
            // SAFETY: killing our own child.
            unsafe { libc::kill(id as libc::pid_t, libc::SIGKILL) };
            panic!("{cmd:?} blocked");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn check_refuses_a_fifo_and_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("host.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let o = run_bounded(Command::new(bifrost_bin()).arg("check").arg(&fifo));
    assert!(!o.status.success());
    assert!(text(&o).contains("named pipe"), "{}", text(&o));

    let bom = dir.path().join("bom.json");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::fs::read(repo().join("hosts/example-vm/host.json")).unwrap());
    std::fs::write(&bom, bytes).unwrap();
    let o = run_bounded(Command::new(bifrost_bin()).arg("check").arg(&bom));
    assert!(!o.status.success());
    assert!(text(&o).contains("byte-order mark"), "{}", text(&o));
}

#[test]
fn gen_hardware_refuses_an_empty_output_path() {
    let o = run_bounded(
        Command::new(bifrost_bin())
            .args(["gen", "hardware"])
            .arg(repo().join("hosts/example-vm/host.json"))
            .args(["-o", ""]),
    );
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("the path is empty"), "{t}");
    assert!(!t.contains("error: : "), "{t}");
}

#[test]
fn esp_install_refuses_a_timeout_below_minus_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run_bounded(Command::new(bifrost_bin()).args([
        "esp",
        "install",
        "--esp",
        d,
        "--profiles",
        d,
        "--refind-efi",
        "/x.efi",
        "--timeout",
        "-7",
    ]));
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("--timeout") && t.contains("-7"), "{t}");
    assert!(t.contains("-1"), "{t}");
}
