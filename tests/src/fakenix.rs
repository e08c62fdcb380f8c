//! Fake NixOS systems for ESP tests: store-like folders in a temp dir, each
//! generation a toplevel with a bootspec `boot.json`, linked from a profiles
//! folder as `system-N-link`, as in `/nix/var/nix/profiles`.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A fake `/nix` under a temp dir.
pub struct FakeNix {
    pub root: PathBuf,
}

/// Kernel parameters and files of one bootable system.
#[derive(Clone)]
pub struct Boot {
    pub label: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub params: Vec<String>,
}

impl FakeNix {
    pub fn new(root: &Path) -> FakeNix {
        std::fs::create_dir_all(root.join("nix/store")).unwrap();
        FakeNix {
            root: root.to_path_buf(),
        }
    }

    /// `<root>/nix/store/<hash>-<name>`, the hash derived from `name`.
    pub fn store_path(&self, name: &str) -> PathBuf {
        let h = hex_of(name);
        self.root.join(format!("nix/store/{}-{name}", &h[..32]))
    }

    /// A store path `name` holding `file` with `contents` (written once).
    pub fn store_file(&self, name: &str, file: &str, contents: &[u8]) -> PathBuf {
        let dir = self.store_path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(file);
        if !p.exists() {
            std::fs::write(&p, contents).unwrap();
        }
        p
    }

    /// A store path `name` whose `file` is a copy of `src`.
    pub fn store_copy(&self, name: &str, file: &str, src: &Path) -> PathBuf {
        let dir = self.store_path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(file);
        if !p.exists() {
            std::fs::copy(src, &p).unwrap();
        }
        p
    }

    /// A system toplevel with its boot.json; `specs` become specialisations.
    pub fn toplevel(&self, name: &str, boot: &Boot, specs: &[(&str, Boot)]) -> PathBuf {
        let top = self.store_path(name);
        std::fs::create_dir_all(&top).unwrap();
        let mut doc = bootspec_json(&top, boot);
        let mut sp = serde_json::Map::new();
        for (sname, b) in specs {
            let st = self.store_path(&format!("{name}-{sname}"));
            std::fs::create_dir_all(&st).unwrap();
            sp.insert(sname.to_string(), bootspec_json(&st, b));
        }
        doc["org.nixos.specialisation.v1"] = serde_json::Value::Object(sp);
        std::fs::write(
            top.join("boot.json"),
            serde_json::to_vec_pretty(&doc).unwrap(),
        )
        .unwrap();
        top
    }

    /// Generation `n` in `profiles`: toplevel `system` booting `kernel` and
    /// `initrd` (store files) with the parameter `quiet`; returns the toplevel.
    pub fn generation(
        &self,
        profiles: &Path,
        n: u64,
        system: &str,
        label: &str,
        kernel: PathBuf,
        initrd: PathBuf,
    ) -> PathBuf {
        let top = self.toplevel(
            system,
            &Boot {
                label: label.into(),
                kernel,
                initrd,
                params: vec!["quiet".into()],
            },
            &[],
        );
        self.link(profiles, n, &top);
        top
    }

    /// Link `profiles/system-<n>-link` to `target`.
    pub fn link(&self, profiles: &Path, n: u64, target: &Path) {
        std::fs::create_dir_all(profiles).unwrap();
        let l = profiles.join(format!("system-{n}-link"));
        let _ = std::fs::remove_file(&l);
        std::os::unix::fs::symlink(target, l).unwrap();
    }
}

fn hex_of(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bootspec_json(top: &Path, b: &Boot) -> serde_json::Value {
    serde_json::json!({
        "org.nixos.bootspec.v1": {
            "label": b.label,
            "kernel": b.kernel,
            "kernelParams": b.params,
            "init": top.join("init"),
            "initrd": b.initrd,
            "system": "x86_64-linux",
            "toplevel": top,
        }
    })
}

/// A hash of every path, content and mtime under `dir`: equal before and
/// after means nothing was written.
pub fn tree_hash(dir: &Path) -> String {
    fn walk(d: &Path, base: &Path, h: &mut Sha256) {
        let mut ents: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        ents.sort();
        for p in ents {
            let md = std::fs::symlink_metadata(&p).unwrap();
            h.update(p.strip_prefix(base).unwrap().to_string_lossy().as_bytes());
            if md.is_dir() {
                walk(&p, base, h);
            } else {
                use std::os::unix::fs::MetadataExt;
                h.update(md.mtime_nsec().to_le_bytes());
                h.update(md.mtime().to_le_bytes());
                h.update(std::fs::read(&p).unwrap());
            }
        }
    }
    let mut h = Sha256::new();
    walk(dir, dir, &mut h);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The ESP tests' world: a temporary folder holding a fake Nix store
/// (`root/`) and a fake rEFInd ([`fake_refind`]).
pub struct EspFixture {
    pub dir: tempfile::TempDir,
    pub nix: FakeNix,
    pub refind: PathBuf,
}

impl EspFixture {
    pub fn new() -> EspFixture {
        let dir = tempfile::tempdir().unwrap();
        let nix = FakeNix::new(&dir.path().join("root"));
        let refind = fake_refind(dir.path());
        EspFixture { dir, nix, refind }
    }

    /// `p` inside the fixture's folder.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

impl Default for EspFixture {
    fn default() -> Self {
        Self::new()
    }
}

/// A stand-in for rEFInd at `dir/refind/refind_x64.efi`, with the ext4
/// driver the Kinoite side needs in `drivers_x64/` beside it (as Debian's
/// refind package lays them out); returns the loader's path.
pub fn fake_refind(dir: &Path) -> PathBuf {
    let refind = dir.join("refind/refind_x64.efi");
    std::fs::create_dir_all(dir.join("refind/drivers_x64")).unwrap();
    std::fs::write(&refind, b"MZ fake refind").unwrap();
    std::fs::write(dir.join("refind/drivers_x64/ext4_x64.efi"), b"MZ ext4").unwrap();
    refind
}

/// `bifrost sb verify --esp ESP --cert CERT` and `extra`; returns (success,
/// stdout, stderr).
pub fn sb_verify(esp: &Path, cert: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "sb",
        "verify",
        "--esp",
        esp.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    bifrost(&args)
}

/// Run `bifrost` with `args`; returns (success, stdout, stderr).
pub fn bifrost(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(crate::bifrost_bin())
        .args(args)
        .output()
        .expect("run bifrost");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
