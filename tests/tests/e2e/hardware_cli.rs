//! `bifrost gen hardware` and `bifrost detect` as a user runs them.

use bifrost_e2e::bifrost_bin;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn gen_hardware_prints_or_writes_the_same_module() {
    let host = repo().join("hosts/surface-pro-8/host.json");
    let printed = Command::new(bifrost_bin())
        .args(["gen", "hardware"])
        .arg(&host)
        .output()
        .unwrap();
    assert!(printed.status.success());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hardware-configuration.nix");
    std::fs::write(&out, "old").unwrap();
    let st = Command::new(bifrost_bin())
        .args(["gen", "hardware"])
        .arg(&host)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read(&out).unwrap(), printed.stdout);
    // Only the target is left: no temp file beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn gen_hardware_refuses_bad_settings_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("host.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("hosts/example-vm/host.json")).unwrap())
            .unwrap();
    v["storage"]["subvolumes"][1]["mountPoint"] = serde_json::json!("/");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = dir.path().join("hw.nix");
    let r = Command::new(bifrost_bin())
        .args(["gen", "hardware"])
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("storage.subvolumes"), "{err}");
    assert!(!out.exists());
}

#[test]
fn detect_json_is_accepted_by_check() {
    let dir = tempfile::tempdir().unwrap();
    for m in [
        "surface-pro-8",
        "generic-desktop",
        "qemu-vm",
        "kinoite",
        "fedora-btrfs",
    ] {
        let root = repo().join("tests/fixtures/detect").join(m).join("root");
        let r = Command::new(bifrost_bin())
            .args(["detect", "--json", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let file = dir.path().join(format!("{m}.json"));
        std::fs::write(&file, &r.stdout).unwrap();
        let c = Command::new(bifrost_bin())
            .arg("check")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            c.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&c.stderr)
        );
        let human = Command::new(bifrost_bin())
            .args(["detect", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&human.stdout).contains("profile:"));
    }
}

#[test]
fn detect_on_an_empty_root_says_what_to_record() {
    let dir = tempfile::tempdir().unwrap();
    let r = Command::new(bifrost_bin())
        .args(["detect", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("lsblk --json -O"));
}

/// docs/hardware.md's profile table, row for row, is `PROFILES` (the table
/// is written once, in profile.rs; the page keeps a copy for readers).
#[test]
fn docs_profile_table_is_profiles() {
    let words = |list: &[&str]| {
        if list.is_empty() {
            "—".to_string()
        } else {
            format!("`{}`", list.join(" "))
        }
    };
    let want: Vec<String> = bifrost_core::hardware::PROFILES
        .iter()
        .map(|p| {
            let dmi = match p.dmi {
                Some((vendor, product)) => format!("`{vendor}` / `{product}`"),
                None => "anything else".into(),
            };
            let nixos_hardware = p
                .nixos_hardware_module
                .map_or("—".into(), |m| format!("`{m}`"));
            format!(
                "| `{}` | {dmi} | {nixos_hardware} | {} | {} |",
                p.key(),
                words(p.initrd_forced),
                words(p.initrd_available)
            )
        })
        .collect();
    let doc = std::fs::read_to_string(repo().join("docs/hardware.md")).unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Profiles"))
        .expect("docs/hardware.md has a Profiles section");
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(
        rows, want,
        "docs/hardware.md's profile table differs from hardware/profile.rs's PROFILES"
    );
}
