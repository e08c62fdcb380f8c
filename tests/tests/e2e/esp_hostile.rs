//! `bifrost esp install` / `status` against a hostile ESP folder: links that
//! lead out of it, state lines naming paths outside it, and two runs at once
//! (issue 13, items 2 and 4).

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{bifrost, tree_hash, EspFixture};
use std::path::Path;

/// The shared fixture, with this file's helpers.
struct Fx(EspFixture);

impl std::ops::Deref for Fx {
    type Target = EspFixture;
    fn deref(&self) -> &EspFixture {
        &self.0
    }
}

fn fx() -> Fx {
    Fx(EspFixture::new())
}

impl Fx {
    /// Generation `n` in `profiles/` with its own kernel and initrd.
    fn generation(&self, n: u64) {
        let k = self
            .nix
            .store_file(&format!("linux-{n}"), "bzImage", &vec![n as u8; 4096]);
        let i = self
            .nix
            .store_file(&format!("initrd-{n}"), "initrd", &vec![7u8; 2048]);
        self.nix.generation(
            &self.path("profiles"),
            n,
            &format!("system-{n}"),
            &format!("NixOS {n}"),
            k,
            i,
        );
    }
    fn install_args(&self, esp: &Path, extra: &[&str]) -> EspInstall {
        EspInstall::new(esp, &self.path("profiles"), &self.refind).args(extra)
    }
    fn install(&self, esp: &Path, extra: &[&str]) -> (bool, String, String) {
        self.install_args(esp, extra).run()
    }
}

fn status(esp: &Path) -> (bool, String) {
    let (ok, out, err) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap()]);
    (ok, out + &err)
}

/// Item 4: `EFI/nixos` (then `EFI/refind`) is a link to a folder outside the
/// ESP. Before the fix, install wrote the new kernels there and deleted the
/// old ones there.
#[test]
fn links_out_of_the_esp_are_never_followed() {
    let f = fx();
    let esp = f.path("esp");
    std::fs::create_dir_all(&esp).unwrap();
    for n in 1..=3 {
        f.generation(n);
    }
    let (ok, out, err) = f.install(&esp, &[]);
    assert!(ok, "{out}{err}");

    // install refuses to go through a link and changes nothing outside.
    let outside = f.path("outside");
    let refused_through_link = || {
        let before = tree_hash(&outside);
        let (ok, out, err) = f.install(&esp, &["--limit", "1"]);
        assert!(!ok, "install followed a link out of the ESP: {out}{err}");
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(
            before,
            tree_hash(&outside),
            "something outside the ESP changed"
        );
    };

    // EFI/nixos moves outside the ESP; a link takes its place.
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(esp.join("EFI/nixos"), outside.join("nixos")).unwrap();
    std::os::unix::fs::symlink(outside.join("nixos"), esp.join("EFI/nixos")).unwrap();
    f.generation(4);
    refused_through_link();

    // The same for EFI/refind: refind.conf is not written through the link.
    std::fs::remove_file(esp.join("EFI/nixos")).unwrap();
    std::fs::rename(outside.join("nixos"), esp.join("EFI/nixos")).unwrap();
    std::fs::rename(esp.join("EFI/refind"), outside.join("refind")).unwrap();
    std::os::unix::fs::symlink(outside.join("refind"), esp.join("EFI/refind")).unwrap();
    refused_through_link();
    // status does not read through it either.
    let (ok, out) = status(&esp);
    assert!(!ok && out.contains("symbolic link"), "{out}");
}

/// Item 4: a state line naming a file outside the ESP (absolute, or with
/// `..`) is refused by `status`, never read. Before the fix status hashed
/// the outside file and called the ESP consistent.
#[test]
fn state_lines_naming_paths_outside_the_esp_are_refused() {
    let f = fx();
    let esp = f.path("esp");
    std::fs::create_dir_all(esp.join("EFI/refind")).unwrap();
    let secret = f.path("secret");
    std::fs::write(&secret, b"outside").unwrap();
    // The right size and hash: read, the file would pass as intact.
    let real: String = {
        use sha2::{Digest, Sha256};
        Sha256::digest(b"outside")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    for path in [
        secret.to_str().unwrap().to_string(),
        "../secret".to_string(),
    ] {
        let state = serde_json::json!({
            "version": 1, "default": "x", "generations": [],
            "files": [{"path": path, "size": 7, "sha256": real}],
        });
        std::fs::write(
            esp.join("EFI/refind/refind.conf"),
            format!("# bifrost-state {state}\ntimeout 5\nscanfor manual\n"),
        )
        .unwrap();
        let (ok, out) = status(&esp);
        assert!(!ok, "{path}: status accepted a path outside the ESP: {out}");
        assert!(out.contains("not a plain relative path"), "{path}: {out}");
    }
}

/// Hold the exclusive lock on `dir` the way another bifrost run would.
fn hold_lock(dir: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

/// Item 2: while another run holds the ESP, install waits (saying so) and
/// writes nothing until the other run is done. Before the fix install wrote
/// at once beside the other run.
#[test]
fn a_second_install_waits_for_the_first() {
    use std::io::BufRead;
    let f = fx();
    let esp = f.path("esp");
    std::fs::create_dir_all(&esp).unwrap();
    f.generation(1);
    let held = hold_lock(&esp);

    let mut child = f
        .install_args(&esp, &[])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a line on stderr").unwrap();
    assert!(first.contains("waiting up to"), "{first}");
    // It waits: nothing is on the ESP while the lock is held.
    assert_eq!(std::fs::read_dir(&esp).unwrap().count(), 0, "ESP written");
    drop(held);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{}", rest.join("\n"));
    assert!(esp.join("EFI/refind/refind.conf").is_file());
    let (ok, out) = status(&esp);
    assert!(ok, "{out}");
}

/// Item 2: two installs at once (a `--limit 1` one beside a full one), many
/// rounds: both succeed and the menu always names files that exist. Before
/// the fix some rounds left refind.conf naming kernels the other run had
/// deleted, or failed on each other's temp files.
#[test]
fn concurrent_installs_leave_a_consistent_esp() {
    let f = fx();
    let esp = f.path("esp");
    std::fs::create_dir_all(&esp).unwrap();
    for n in 1..=4 {
        f.generation(n);
    }
    for round in 0..25 {
        let spawn = |extra: &[&str]| {
            f.install_args(&esp, extra)
                .command()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = if round % 2 == 0 {
            (spawn(&["--limit", "1"]), spawn(&[]))
        } else {
            (spawn(&[]), spawn(&["--limit", "1"]))
        };
        for c in [a, b] {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let (ok, out) = status(&esp);
        assert!(ok, "round {round}: {out}");
        let conf = std::fs::read_to_string(esp.join("EFI/refind/refind.conf")).unwrap();
        for l in conf.lines() {
            let l = l.trim();
            if let Some(p) = l.strip_prefix("loader ").or(l.strip_prefix("initrd ")) {
                let p = esp.join(p.trim_matches('"').trim_start_matches('/'));
                assert!(
                    p.is_file(),
                    "round {round}: {} missing\n{conf}",
                    p.display()
                );
            }
        }
        let tmp: Vec<_> = std::fs::read_dir(esp.join("EFI/nixos"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".bifrost-tmp-") || n == ".bifrost-pending")
            .collect();
        assert!(tmp.is_empty(), "round {round}: left behind {tmp:?}");
    }
}
