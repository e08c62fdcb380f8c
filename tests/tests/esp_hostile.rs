//! `bifrost esp install` / `status` against a hostile ESP folder: links that
//! lead out of it, state lines naming paths outside it, and two runs at once
//! (issue 13, items 2 and 4).

use bifrost_e2e::fakenix::{bifrost, tree_hash, Boot, FakeNix};
use std::path::{Path, PathBuf};

struct Fx {
    dir: tempfile::TempDir,
    nix: FakeNix,
    refind: PathBuf,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let refind = dir.path().join("refind/refind_x64.efi");
    std::fs::create_dir_all(dir.path().join("refind/drivers_x64")).unwrap();
    std::fs::write(&refind, b"MZ fake refind").unwrap();
    Fx { dir, nix, refind }
}

impl Fx {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// Generation `n` in `profiles/` with its own kernel and initrd.
    fn generation(&self, n: u64) {
        let k = self
            .nix
            .store_file(&format!("linux-{n}"), "bzImage", &vec![n as u8; 4096]);
        let i = self
            .nix
            .store_file(&format!("initrd-{n}"), "initrd", &vec![7u8; 2048]);
        let top = self.nix.toplevel(
            &format!("system-{n}"),
            &Boot {
                label: format!("NixOS {n}"),
                kernel: k,
                initrd: i,
                params: vec!["quiet".into()],
            },
            &[],
        );
        self.nix.link(&self.path("profiles"), n, &top);
    }
    fn install_args(&self, esp: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = ["esp", "install", "--esp"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(esp.to_str().unwrap().into());
        a.push("--refind-efi".into());
        a.push(self.refind.to_str().unwrap().into());
        a.push("--profiles".into());
        a.push(self.path("profiles").to_str().unwrap().into());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }
    fn install(&self, esp: &Path, extra: &[&str]) -> (bool, String, String) {
        let a = self.install_args(esp, extra);
        bifrost(&a.iter().map(String::as_str).collect::<Vec<_>>())
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

    // EFI/nixos moves outside the ESP; a link takes its place.
    let outside = f.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::rename(esp.join("EFI/nixos"), outside.join("nixos")).unwrap();
    std::os::unix::fs::symlink(outside.join("nixos"), esp.join("EFI/nixos")).unwrap();
    f.generation(4);
    let before = tree_hash(&outside);
    let (ok, out, err) = f.install(&esp, &["--limit", "1"]);
    assert!(!ok, "install followed a link out of the ESP: {out}{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        before,
        tree_hash(&outside),
        "something outside the ESP changed"
    );

    // The same for EFI/refind: refind.conf is not written through the link.
    std::fs::remove_file(esp.join("EFI/nixos")).unwrap();
    std::fs::rename(outside.join("nixos"), esp.join("EFI/nixos")).unwrap();
    std::fs::rename(esp.join("EFI/refind"), outside.join("refind")).unwrap();
    std::os::unix::fs::symlink(outside.join("refind"), esp.join("EFI/refind")).unwrap();
    let before = tree_hash(&outside);
    let (ok, out, err) = f.install(&esp, &["--limit", "1"]);
    assert!(!ok, "install followed a link out of the ESP: {out}{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        before,
        tree_hash(&outside),
        "something outside the ESP changed"
    );
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
