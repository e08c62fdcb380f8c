//! modules/boot.nix evaluated with nixpkgs' lib (`BIFROST_NIXPKGS_LIB`: a
//! folder holding nixpkgs' `lib/`), the nixpkgs options it touches stubbed:
//! its defaults follow the host settings, the install hook runs
//! `bifrost esp install` with them, and other boot loaders are refused.

use bifrost_e2e::{nixeval, skip_optional};
use std::path::Path;

fn eval(settings: &str, extra: &str) -> Option<serde_json::Value> {
    let lib = nixeval::nixpkgs_lib()?;
    let nix = bifrost_e2e::program("nix-instantiate")?;
    let expr = Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/boot-module-eval.nix");
    Some(nixeval::json(
        nixeval::eval(&nix)
            .arg(&expr)
            .arg("--arg")
            .arg("libPath")
            .arg(lib)
            .args([
                "--argstr",
                "settingsJson",
                settings,
                "--argstr",
                "extraJson",
                extra,
            ]),
    ))
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
        // canTouchEfiVariables is off by default: NVRAM is left alone.
        "--no-nvram",
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
        "--nvram ",
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
    // May touch NVRAM: bifrost registers rEFInd, labelled, as the settings
    // say (esp::choices); the hook adds nothing.
    let hook = v["hook"].as_str().unwrap();
    assert!(!hook.contains("--no-nvram"), "{hook}");
    assert!(!hook.contains("--nvram"), "{hook}");
}

/// Fedora leaves Kinoite's /boot unlabelled: named by file-system UUID (as in
/// its fstab), the hook mounts /dev/disk/by-uuid/<uuid> and hands the same
/// volume to `bifrost esp install`, which looks up the partition GUID for rEFInd.
#[test]
fn hook_mounts_kinoite_boot_by_uuid_or_partuuid() {
    for (volume, device) in [
        (
            "UUID=3F2A5C1E-8D4B-4E6F-9A7C-0B1D2E3F4A5B",
            "/dev/disk/by-uuid/3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b",
        ),
        (
            "PARTUUID=8c1f0e2a-4b3d-4c5e-9f6a-7b8c9d0e1f2a",
            "/dev/disk/by-partuuid/8c1f0e2a-4b3d-4c5e-9f6a-7b8c9d0e1f2a",
        ),
        ("LABEL=kb", "/dev/disk/by-label/kb"),
    ] {
        let settings = SETTINGS.replace(
            "\"bootVolume\":\"kinoite-boot\"",
            &format!("\"bootVolume\":\"{volume}\""),
        );
        let Some(v) = eval(
            &settings,
            r#"{"bifrost":{"boot":{"refind":{"enable":true}}}}"#,
        ) else {
            return skip_optional(
                "hook_mounts_kinoite_boot_by_uuid_or_partuuid",
                "BIFROST_NIXPKGS_LIB (a nixpkgs lib checkout) and nix-instantiate",
            );
        };
        let hook = v["hook"].as_str().unwrap();
        assert!(
            hook.contains(&format!("mount -o ro {device}")),
            "{volume}:\n{hook}"
        );
        // The volume itself reaches bifrost through the settings file
        // (esp::choices), as written there.
        assert!(hook.contains("--kinoite-boot"), "{volume}:\n{hook}");
        assert!(!hook.contains("--kinoite-volume"), "{volume}:\n{hook}");
        assert!(!hook.contains("by-label/UUID"), "{hook}");
    }
}

#[test]
fn hook_signs_with_keys_read_at_install_time() {
    let with_sb = |sb: &str| {
        let mut s: serde_json::Value = serde_json::from_str(SETTINGS).unwrap();
        s["security"] = serde_json::json!({ "secureBoot": serde_json::from_str::<serde_json::Value>(sb).unwrap() });
        eval(
            &s.to_string(),
            r#"{"bifrost":{"boot":{"refind":{"enable":true}}},"boot":{"loader":{"efi":{"canTouchEfiVariables":true}}}}"#,
        )
    };
    let Some(v) = with_sb(r#"{"enable":true,"keysPath":"/etc/secureboot"}"#) else {
        return skip_optional(
            "hook_signs_with_keys_read_at_install_time",
            "BIFROST_NIXPKGS_LIB (a nixpkgs lib checkout) and nix-instantiate",
        );
    };
    let hook = v["hook"].as_str().unwrap();
    // The keys, the route and the shim are the settings file's: bifrost
    // derives the signing flags from it (esp::choices, tested there and in
    // sb_cli::settings_sign_and_register_without_flags), so the hook names
    // no key, no shim and no store path of either.
    let settings_file = v["settingsFile"].as_str().unwrap();
    assert!(
        hook.contains(&format!("--settings {settings_file}")),
        "{hook}"
    );
    for unwanted in [
        "--sign-key",
        "--sign-cert",
        "--shim",
        "/etc/secureboot",
        "--nvram ",
    ] {
        assert!(!hook.contains(unwanted), "hook has {unwanted:?}:\n{hook}");
    }
    let v = with_sb(r#"{"enable":true,"keysPath":"/etc/secureboot","route":"own-keys"}"#).unwrap();
    assert!(!v["hook"].as_str().unwrap().contains("--sign-key"));
    // Off: no signing flags.
    let v = with_sb(r#"{"enable":false}"#).unwrap();
    assert!(!v["hook"].as_str().unwrap().contains("--sign-key"));
}

/// The firmware entry's label is a host setting (boot.nvramLabel, read by
/// bifrost); the module's old option fails with the setting to use.
#[test]
fn nvram_label_is_a_host_setting() {
    let Some(v) = eval(
        SETTINGS,
        r#"{"bifrost":{"boot":{"refind":{"enable":true,"nvramLabel":"rEFInd"}}}}"#,
    ) else {
        return skip_optional(
            "nvram_label_is_a_host_setting",
            "BIFROST_NIXPKGS_LIB (a nixpkgs lib checkout) and nix-instantiate",
        );
    };
    let failed = v["failed"].to_string();
    assert!(
        failed.contains("bifrost.settings.boot.nvramLabel"),
        "{failed}"
    );
    assert!(!v["hook"].as_str().unwrap().contains("rEFInd'"));
}
