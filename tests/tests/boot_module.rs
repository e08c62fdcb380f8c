//! modules/boot.nix evaluated with nixpkgs' lib (`BIFROST_NIXPKGS_LIB`: a
//! folder holding nixpkgs' `lib/`), the nixpkgs options it touches stubbed:
//! its defaults follow the host settings, the install hook runs
//! `bifrost esp install` with them, and other boot loaders are refused.

use bifrost_e2e::skip_optional;
use std::path::{Path, PathBuf};

fn eval(settings: &str, extra: &str) -> Option<serde_json::Value> {
    let lib = std::env::var_os("BIFROST_NIXPKGS_LIB").map(PathBuf::from)?;
    let nix = bifrost_e2e::program("nix-instantiate")?;
    let expr = Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/boot-module-eval.nix");
    let out = std::process::Command::new(nix)
        .args(["--eval", "--strict", "--json"])
        .arg(&expr)
        .arg("--arg")
        .arg("libPath")
        .arg(lib.join("lib"))
        .args([
            "--argstr",
            "settingsJson",
            settings,
            "--argstr",
            "extraJson",
            extra,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

const SETTINGS: &str = r#"{"boot":{"timeout":3,"maxGenerations":7,"removable":false,"textOnly":true,"esp":{"mountPoint":"/boot/efi"}},"dualBoot":{"kinoite":{"bootVolume":"kinoite-boot","entriesDir":"/loader/entries","mode":"direct"}}}"#;

#[test]
fn kinoite_is_chainloaded_by_default() {
    let settings = SETTINGS.replace(r#","mode":"direct""#, "");
    let Some(v) = eval(
        &settings,
        r#"{"bifrost":{"boot":{"refind":{"enable":true}}}}"#,
    ) else {
        return skip_optional(
            "kinoite_is_chainloaded_by_default",
            "BIFROST_NIXPKGS_LIB (a nixpkgs lib checkout) and nix-instantiate",
        );
    };
    assert_eq!(v["failed"], serde_json::json!([]));
    let hook = v["hook"].as_str().unwrap();
    // bifrost takes the mode (chainload unless the settings say direct)
    // from the settings file; esp::choices' tests cover that reading.
    let settings_file = v["settingsFile"].as_str().unwrap();
    assert!(
        hook.contains(&format!("esp install --settings {settings_file} ")),
        "{hook}"
    );
    // Nothing of Kinoite's /boot is mounted or read in chainload mode.
    assert!(
        !hook.contains("--kinoite-boot") && !hook.contains("/dev/disk/by-label"),
        "{hook}"
    );
}

#[test]
fn hook_follows_host_settings_and_other_loaders_are_refused() {
    let Some(v) = eval(
        SETTINGS,
        r#"{"bifrost":{"boot":{"refind":{"enable":true}}}}"#,
    ) else {
        return skip_optional(
            "hook_follows_host_settings_and_other_loaders_are_refused",
            "BIFROST_NIXPKGS_LIB (a nixpkgs lib checkout) and nix-instantiate",
        );
    };
    assert_eq!(v["externalEnable"], true);
    assert_eq!(v["esp"], "/boot/efi");
    assert_eq!(v["failed"], serde_json::json!([]));
    let hook = v["hook"].as_str().unwrap();
    let settings_file = v["settingsFile"].as_str().unwrap();
    for want in [
        "bifrost-0.1.0/bin/bifrost esp install",
        &format!("--settings {settings_file}"),
        "--esp /boot/efi",
        "--profiles /nix/var/nix/profiles",
        "refind-0.14.2/share/refind/refind_x64.efi",
        // Direct mode: Kinoite's /boot mounted by its label, handed over.
        "/dev/disk/by-label/kinoite-boot",
        "set -- \"$@\" --kinoite-boot \"$kinoite_boot\"",
    ] {
        assert!(hook.contains(want), "hook lacks {want:?}:\n{hook}");
    }
    // The menu settings are the settings file's, never flags written again.
    for unwanted in [
        "--timeout",
        "--limit",
        "--text-only",
        "--default-entry",
        "--removable",
        "efibootmgr --quiet",
    ] {
        assert!(!hook.contains(unwanted), "hook has {unwanted:?}:\n{hook}");
    }

    let v = eval(
        SETTINGS,
        r#"{"bifrost":{"boot":{"refind":{"enable":true}}},"boot":{"loader":{"systemd-boot":{"enable":true},"refind":{"enable":true},"efi":{"canTouchEfiVariables":true}}}}"#,
    )
    .unwrap();
    let failed = v["failed"].to_string();
    assert!(
        failed.contains("boot.loader.systemd-boot.enable = false"),
        "{failed}"
    );
    assert!(
        failed.contains("boot.loader.refind.enable = false"),
        "{failed}"
    );
    assert!(v["hook"]
        .as_str()
        .unwrap()
        .contains("efibootmgr --quiet --create"));
}
