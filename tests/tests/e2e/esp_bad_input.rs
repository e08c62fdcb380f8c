//! `bifrost esp` against bad input it must survive: a cut-off or missing
//! refind.conf (`status`), broken old generations and odd Kinoite entries
//! (`install` goes on), and an ESP too small even for one generation.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{bifrost, tree_hash, EspFixture};
use std::path::{Path, PathBuf};

/// The shared fixture, with this file's helpers.
struct Fx(EspFixture);

impl std::ops::Deref for Fx {
    type Target = EspFixture;
    fn deref(&self) -> &EspFixture {
        &self.0
    }
}

fn fx() -> Fx {
    let f = Fx(EspFixture::new());
    std::fs::create_dir_all(f.esp()).unwrap();
    f
}

impl Fx {
    fn esp(&self) -> PathBuf {
        self.path("esp")
    }
    /// Generation `n` of profiles folder `p`; returns its toplevel.
    fn generation(&self, n: u64, kname: &str, ksize: usize) -> PathBuf {
        let k = self.nix.store_file(kname, "bzImage", &vec![n as u8; ksize]);
        let i = self
            .nix
            .store_file(&format!("initrd-{kname}"), "initrd", &vec![7u8; ksize / 2]);
        self.nix.generation(
            &self.path("p"),
            n,
            &format!("system-{n}"),
            &format!("NixOS {n}"),
            k,
            i,
        )
    }
    fn install(&self, extra: &[&str]) -> (bool, String, String) {
        EspInstall::new(&self.esp(), &self.path("p"), &self.refind)
            .args(extra)
            .run()
    }
    fn status(&self) -> (bool, String) {
        let (ok, out, err) = bifrost(&["esp", "status", "--esp", self.esp().to_str().unwrap()]);
        (ok, format!("{out}{err}"))
    }
    fn generations(&self) -> serde_json::Value {
        let (ok, out, err) = bifrost(&[
            "esp",
            "status",
            "--esp",
            self.esp().to_str().unwrap(),
            "--json",
        ]);
        assert!(ok, "{out}{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["installs"][0]["generations"]
            .clone()
    }
}

#[test]
fn status_checks_the_menu_against_the_state_line() {
    let f = fx();
    // No refind.conf at all: nothing boots through bifrost.
    let (ok, out) = f.status();
    assert!(!ok && out.contains("no refind.conf"), "{out}");

    f.generation(1, "linux-a", 64);
    f.generation(2, "linux-b", 64);
    let (ok, out, err) = f.install(&[]);
    assert!(ok, "{out}{err}");
    let (ok, out) = f.status();
    assert!(ok && out.contains("consistent"), "{out}");

    // refind.conf cut off after the first entry: the state line (at the
    // top) still records generation 1 and its files.
    let conf = f.esp().join("EFI/refind/refind.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let cut = text.find("\nmenuentry \"Generation 1").unwrap();
    std::fs::write(&conf, &text[..cut]).unwrap();
    let (ok, out) = f.status();
    assert!(
        !ok && out.contains("generation 1 is recorded but has no menu entry"),
        "{out}"
    );
    assert!(!out.contains("consistent:"), "{out}");
    // Cut inside an entry.
    let cut = text.find("    initrd").unwrap();
    std::fs::write(&conf, &text[..cut]).unwrap();
    let (ok, out) = f.status();
    assert!(!ok && out.contains("not closed"), "{out}");
}

#[test]
fn broken_old_generations_are_skipped_never_the_newest() {
    let f = fx();
    f.generation(1, "linux-a", 64);
    let top2 = f.generation(2, "linux-b", 64);
    f.generation(3, "linux-c", 64);
    f.generation(4, "linux-d", 64);
    // Generation 2: malformed boot.json; generation 3: a dangling link.
    let bj = top2.join("boot.json");
    std::fs::write(&bj, "{ not json").unwrap();
    let link3 = f.path("p/system-3-link");
    std::fs::remove_file(&link3).unwrap();
    std::os::unix::fs::symlink(f.path("gone"), &link3).unwrap();

    let (ok, out, err) = f.install(&[]);
    assert!(ok, "one bad old generation blocked the update:\n{out}{err}");
    assert!(
        err.contains("warning: skipped old generation 3") && err.contains("dangling"),
        "{err}"
    );
    assert!(
        err.contains("warning: skipped old generation 2") && err.contains("boot.json"),
        "{err}"
    );
    assert_eq!(f.generations(), serde_json::json!([4, 1]));
    // --limit counts good generations: 4 and the next readable one.
    let (ok, out, err) = f.install(&["--limit", "2"]);
    assert!(ok, "{out}{err}");
    assert_eq!(f.generations(), serde_json::json!([4, 1]));

    // The newest generation broken: refused, the ESP untouched.
    let before = tree_hash(&f.esp());
    let link5 = f.path("p/system-5-link");
    std::os::unix::fs::symlink(f.path("gone"), &link5).unwrap();
    let (ok, _, err) = f.install(&[]);
    assert!(!ok && err.contains("system-5-link"), "{err}");
    assert_eq!(before, tree_hash(&f.esp()));
}

#[test]
fn kinoite_entries_with_unknown_keys_or_odd_files_install() {
    let f = fx();
    f.generation(1, "linux-a", 64);
    let bls = f.path("bls");
    std::fs::create_dir_all(&bls).unwrap();
    std::fs::write(
        bls.join("ostree-1-fedora.conf"),
        "title Fedora\nversion 1\nlinux /ostree/k\ninitrd /ostree/i\noptions rw\nx-future-key\nuki-url.v2 http://x\n",
    )
    .unwrap();
    // A FIFO named like an entry must not block the install.
    let fifo = std::ffi::CString::new(bls.join("stuck.conf").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let (ok, out, err) = f.install(&[
        "--kinoite-entries",
        bls.to_str().unwrap(),
        "--kinoite-volume",
        "KB",
    ]);
    assert!(ok, "{out}{err}");
    let conf = std::fs::read_to_string(f.esp().join("EFI/refind/refind.conf")).unwrap();
    assert!(conf.contains("menuentry \"Fedora\""), "{conf}");
    assert!(!conf.contains("uki-url"), "{conf}");
}

struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "bifrost-test-esp",
        ])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
        .then(|| Mount(dir.to_path_buf()))
}

#[test]
fn tiny_esp_with_limit_one_says_what_room_is_needed() {
    const TEST: &str = "tiny_esp_with_limit_one_says_what_room_is_needed";
    let f = fx();
    let Some(_m) = tmpfs(&f.esp(), "4m") else {
        return bifrost_e2e::skip(TEST, "root (mount -t tmpfs) for a size-limited ESP");
    };
    f.generation(1, "linux-a", 3 << 19);
    let (ok, out, err) = f.install(&["--limit", "1"]);
    assert!(ok, "{out}{err}");
    // 1.5 MiB + 0.75 MiB on the ESP; the next generation's 2.25 MiB do not
    // fit beside them, though they would once the old ones are gone.
    f.generation(2, "linux-b", 3 << 19);
    let (ok, out, err) = f.install(&["--limit", "1"]);
    assert!(!ok, "{out}");
    assert!(!err.contains("lower --limit,"), "{err}");
    assert!(
        err.contains("room for both") && err.contains("missing"),
        "{err}"
    );
}
