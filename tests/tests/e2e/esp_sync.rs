//! `bifrost esp install` / `status` without booting: re-runs write nothing,
//! limits and garbage collection, dry runs, bad input leaving the ESP
//! untouched, and a size-limited tmpfs ESP that is too small.

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
    Fx(EspFixture::new())
}

impl Fx {
    /// Generation `n` in `profiles` whose kernel `kname` has `ksize` bytes.
    fn generation(
        &self,
        profiles: &str,
        n: u64,
        kname: &str,
        ksize: usize,
        label: &str,
    ) -> PathBuf {
        let k = self.nix.store_file(kname, "bzImage", &vec![n as u8; ksize]);
        let i = self
            .nix
            .store_file(&format!("initrd-{kname}"), "initrd", &vec![7u8; ksize / 2]);
        self.nix.generation(
            &self.path(profiles),
            n,
            &format!("system-{profiles}-{n}"),
            label,
            k,
            i,
        )
    }
    fn install(&self, esp: &Path, profiles: &str, extra: &[&str]) -> (bool, String, String) {
        EspInstall::new(esp, &self.path(profiles), &self.refind)
            .args(extra)
            .run()
    }
}

fn status_ok(esp: &Path) -> serde_json::Value {
    let (ok, out, err) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap(), "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert!(ok, "status reports problems: {out}{err}");
    v
}

#[test]
fn install_rerun_limit_gc_and_status() {
    let f = fx();
    let esp = f.path("esp");
    std::fs::create_dir_all(&esp).unwrap();
    for n in 1..=4 {
        // Generations 1-2 share kernel a, 3-4 share kernel b.
        let k = if n <= 2 { "linux-a" } else { "linux-b" };
        f.generation("p", n, k, 4096, &format!("NixOS {n}"));
    }
    // A file another tool put in EFI/nixos (systemd-boot uses it too).
    std::fs::create_dir_all(esp.join("EFI/nixos")).unwrap();
    let foreign = esp.join("EFI/nixos/0000000000000000000000000000000a-linux-bzImage.efi");
    std::fs::write(&foreign, b"systemd-boot's kernel").unwrap();
    let (ok, out, err) = f.install(&esp, "p", &[]);
    assert!(ok, "{out}{err}");
    assert!(!esp.join("EFI/nixos/.bifrost-pending").exists());
    let conf = std::fs::read_to_string(esp.join("EFI/refind/refind.conf")).unwrap();
    assert!(
        conf.contains("default_selection \"Generation 4: NixOS 4\""),
        "{conf}"
    );
    assert!(esp.join("EFI/refind/refind_x64.efi").is_file());
    assert_eq!(std::fs::read_dir(esp.join("EFI/nixos")).unwrap().count(), 5);
    let st = status_ok(&esp);
    assert_eq!(st["installs"][0]["default_generation"], 4);

    // Nothing changed: nothing written.
    let before = tree_hash(&esp);
    let (ok, out, err) = f.install(&esp, "p", &[]);
    assert!(ok && out.contains(" 0 bytes written"), "{out}{err}");
    assert_eq!(before, tree_hash(&esp));

    // Dry run with a limit: prints the plan, changes nothing.
    let (ok, out, err) = f.install(&esp, "p", &["--limit", "2", "--dry-run"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("delete EFI/nixos/"), "{out}");
    assert!(
        out.contains("-menuentry \"Generation 1: NixOS 1\""),
        "{out}"
    );
    assert_eq!(before, tree_hash(&esp));

    // The limit for real: kernel a's files are collected, the foreign file kept.
    let (ok, out, err) = f.install(&esp, "p", &["--limit", "2"]);
    assert!(ok, "{out}{err}");
    assert_eq!(std::fs::read_dir(esp.join("EFI/nixos")).unwrap().count(), 3);
    assert!(foreign.is_file());
    std::fs::remove_file(&foreign).unwrap();
    let st = status_ok(&esp);
    assert_eq!(st["installs"][0]["generations"], serde_json::json!([4, 3]));

    // A truncated kernel is reported.
    let victim = std::fs::read_dir(esp.join("EFI/nixos"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&victim, b"short").unwrap();
    let (ok, out, _) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap()]);
    assert!(!ok && out.contains("truncated"), "{out}");
}

#[test]
fn bad_input_leaves_the_esp_unchanged() {
    let f = fx();
    let esp = f.path("esp");
    std::fs::create_dir_all(&esp).unwrap();
    f.generation("good", 1, "linux-a", 1000, "NixOS 1");
    let (ok, out, err) = f.install(&esp, "good", &[]);
    assert!(ok, "{out}{err}");
    let before = tree_hash(&esp);

    type Make = Box<dyn Fn(&Fx)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "broken-json",
            Box::new(|f: &Fx| {
                let t = f.generation("broken-json", 2, "linux-b", 1000, "NixOS 2");
                std::fs::write(t.join("boot.json"), "{ not json").unwrap();
            }),
            "not a valid bootspec",
        ),
        (
            "missing-json",
            Box::new(|f: &Fx| {
                let t = f.generation("missing-json", 2, "linux-b", 1000, "NixOS 2");
                std::fs::remove_file(t.join("boot.json")).unwrap();
            }),
            "has no boot.json",
        ),
        (
            "dangling",
            Box::new(|f: &Fx| {
                f.nix.link(
                    &f.path("dangling"),
                    2,
                    Path::new("/nonexistent/nix/store/x"),
                );
            }),
            "dangling link",
        ),
        (
            "quote-label",
            Box::new(|f: &Fx| {
                f.generation("quote-label", 2, "linux-b", 1000, "NixOS \"best\"");
            }),
            "double quote",
        ),
        (
            "newline-label",
            Box::new(|f: &Fx| {
                f.generation("newline-label", 2, "linux-b", 1000, "NixOS\nsecond line");
            }),
            "newline",
        ),
        (
            "no-generations",
            Box::new(|f: &Fx| std::fs::create_dir_all(f.path("no-generations")).unwrap()),
            "no `system-N-link`",
        ),
    ];
    for (name, make, expect) in cases {
        make(&f);
        let (ok, out, err) = f.install(&esp, name, &[]);
        assert!(!ok, "{name}: install should fail:\n{out}");
        assert!(
            err.contains(expect),
            "{name}: expected {expect:?} in:\n{err}"
        );
        assert_eq!(before, tree_hash(&esp), "{name}: ESP changed");
    }

    // Malformed BLS on the Kinoite side.
    let bls = f.path("bls");
    std::fs::create_dir_all(&bls).unwrap();
    std::fs::write(
        bls.join("ostree-1-fedora.conf"),
        "title Fedora\noptions rw\n",
    )
    .unwrap();
    let (ok, _, err) = f.install(
        &esp,
        "good",
        &[
            "--kinoite-entries",
            bls.to_str().unwrap(),
            "--kinoite-volume",
            "KB",
        ],
    );
    assert!(
        !ok && err.contains("ostree-1-fedora.conf") && err.contains("linux"),
        "{err}"
    );
    assert_eq!(before, tree_hash(&esp), "malformed BLS: ESP changed");
}

struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_esp_fails_before_touching_anything() {
    let f = fx();
    let esp = f.path("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "bifrost-test-esp"])
        .arg(&esp)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        return bifrost_e2e::skip(
            "full_esp_fails_before_touching_anything",
            "root (mount -t tmpfs) for a size-limited ESP",
        );
    }
    let _m = Mount(esp.clone());
    f.generation("p", 1, "linux-a", 1 << 20, "NixOS 1");
    let (ok, out, err) = f.install(&esp, "p", &[]);
    assert!(ok, "{out}{err}");
    let before = tree_hash(&esp);
    // 3 MiB kernel + 1.5 MiB initrd do not fit beside the 1.5 MiB already there.
    f.generation("p", 2, "linux-b", 3 << 20, "NixOS 2");
    let (ok, out, err) = f.install(&esp, "p", &[]);
    assert!(!ok, "install should fail: {out}");
    assert!(
        err.contains("not enough space") && err.contains("missing"),
        "{err}"
    );
    assert_eq!(before, tree_hash(&esp), "ESP changed");
    status_ok(&esp);
}

/// From an installer the target's generations link to `/nix/store/…`, which
/// exists only below the target root (`/mnt`): `--root` reads them there,
/// while the menu keeps the paths the installed system will see.
#[test]
fn install_reads_a_target_root() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mnt");
    let hash = "0123456789abcdfghijklmnpqrsvwxyz";
    let store = |name: &str| format!("/nix/store/{hash}-{name}");
    let on_target = |p: &str| target.join(p.trim_start_matches('/'));
    let kernel = format!("{}/bzImage", store("linux-6.12"));
    let initrd = format!("{}/initrd", store("initrd-linux-6.12"));
    let top = store("nixos-system-mnt-26.05");
    for (p, contents) in [(&kernel, "KERNEL BYTES"), (&initrd, "INITRD BYTES")] {
        std::fs::create_dir_all(on_target(p).parent().unwrap()).unwrap();
        std::fs::write(on_target(p), contents).unwrap();
    }
    std::fs::create_dir_all(on_target(&top)).unwrap();
    let doc = serde_json::json!({
        "org.nixos.bootspec.v1": {
            "label": "NixOS 26.05", "kernel": kernel, "initrd": initrd,
            "kernelParams": ["quiet"], "init": format!("{top}/init"),
            "system": "x86_64-linux", "toplevel": top,
        },
        "org.nixos.specialisation.v1": {}
    });
    std::fs::write(on_target(&top).join("boot.json"), doc.to_string()).unwrap();
    let profiles = target.join("nix/var/nix/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    // Absolute, as nix writes it: dangling when read from outside the target.
    std::os::unix::fs::symlink(&top, profiles.join("system-1-link")).unwrap();
    let refind = dir.path().join("refind_x64.efi");
    std::fs::write(&refind, b"MZ fake refind").unwrap();
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let install = EspInstall::new(&esp, &profiles, &refind);

    let (ok, _, err) = install.run();
    assert!(!ok, "the dangling link must be refused without --root");
    assert!(err.contains("dangling"), "{err}");

    let (ok, out, err) = install.clone().path("--root", &target).run();
    assert!(ok, "esp install --root failed: {out}{err}");
    let conf = std::fs::read_to_string(esp.join("EFI/refind/refind.conf")).unwrap();
    assert!(
        conf.contains(&format!("options \"init={top}/init quiet\"")),
        "menu must keep the target's own paths:\n{conf}"
    );
    let loader = format!("EFI/nixos/{hash}-linux-6.12-bzImage.efi");
    assert!(conf.contains(&format!("loader /{loader}")), "{conf}");
    assert_eq!(std::fs::read(esp.join(&loader)).unwrap(), b"KERNEL BYTES");
}

/// `--settings FILE` (what the NixOS hook and `bifrost install` pass) gives
/// the menu the same flags would; a flag still wins over the file.
#[test]
fn settings_file_gives_the_menu_the_flags_give() {
    let f = fx();
    for n in 1..=3 {
        f.generation("p", n, &format!("linux-{n}"), 2048, &format!("NixOS {n}"));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut host: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("hosts/example-vm/host.json")).unwrap())
            .unwrap();
    host["boot"]["timeout"] = 2.into();
    host["boot"]["maxGenerations"] = 2.into();
    host["boot"]["textOnly"] = true.into();
    host["boot"]["removable"] = true.into();
    let settings = f.path("host.json");
    std::fs::write(&settings, serde_json::to_vec(&host).unwrap()).unwrap();

    let (by_file, by_flags) = (f.path("esp-file"), f.path("esp-flags"));
    for esp in [&by_file, &by_flags] {
        std::fs::create_dir_all(esp).unwrap();
    }
    let (ok, out, err) = f.install(&by_file, "p", &["--settings", settings.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let flags = [
        "--timeout",
        "2",
        "--limit",
        "2",
        "--text-only",
        "--removable",
    ];
    let (ok, out, err) = f.install(&by_flags, "p", &flags);
    assert!(ok, "{out}{err}");
    let conf = |esp: &Path| std::fs::read_to_string(esp.join("EFI/BOOT/refind.conf")).unwrap();
    let from_file = conf(&by_file);
    assert!(from_file.contains("timeout 2"), "{from_file}");
    assert!(!from_file.contains("Generation 1:"), "{from_file}");
    assert_eq!(from_file, conf(&by_flags));

    let (ok, out, err) = f.install(
        &by_file,
        "p",
        &["--settings", settings.to_str().unwrap(), "--timeout", "9"],
    );
    assert!(ok, "{out}{err}");
    assert!(conf(&by_file).contains("timeout 9"));

    // A settings file that is not valid is refused with its path, ESP untouched.
    std::fs::write(&settings, b"{\"hostName\": 1}").unwrap();
    let before = tree_hash(&by_file);
    let (ok, _, err) = f.install(&by_file, "p", &["--settings", settings.to_str().unwrap()]);
    assert!(!ok && err.contains("host.json"), "{err}");
    assert_eq!(before, tree_hash(&by_file));
}
