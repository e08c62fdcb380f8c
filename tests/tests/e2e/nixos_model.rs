//! The flake's NixOS configurations and every image variant, evaluated
//! against the strict model of nixpkgs and nixos-hardware
//! (tests/nix/nixpkgs-model.nix through tests/nix/model-eval.nix): what
//! `nix flake check` and `bifrost build` would meet with real nixpkgs.
//! Each test below names the defect of issue #10 it guards against; each
//! failed on the modules before the fix (see the commit that added it).
//!
//! Needs a local nixpkgs lib (BIFROST_NIXPKGS_LIB), like module_eval.rs.

use bifrost_e2e::nixeval::{self, NixLib};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const HOSTS: &[&str] = &["example-vm", "surface-pro-8"];
const DISK_IMAGES: &[&str] = &["raw-efi", "qemu-efi"];
const ALL_MEDIA: &[&str] = &["raw-efi", "qemu-efi", "iso", "iso-installer"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// nix-instantiate and nixpkgs' lib, for the model harness.
struct Model(NixLib);

fn model(test: &str) -> Option<Model> {
    NixLib::find(test).map(Model)
}

impl Model {
    /// Evaluates `attr` of model-eval.nix for `flake` (a folder of this
    /// repository); `extra` is a Nix function from bifrost's flake to a list
    /// of modules added to every configuration.
    fn eval(&self, flake: &str, extra: &str, attr: &str) -> Result<Value, String> {
        nixeval::try_json(
            nixeval::eval(&self.0.nix)
                .arg(repo().join("tests/nix/model-eval.nix"))
                .arg("--argstr")
                .arg("libPath")
                .arg(&self.0.lib)
                .arg("--arg")
                .arg("flakeDir")
                .arg(repo().join(flake))
                .arg("--arg")
                .arg("bifrostDir")
                .arg(repo())
                .args(["--arg", "extra", extra, "-A", attr]),
        )
    }

    fn host(&self, host: &str, extra: &str) -> Value {
        self.eval(".", extra, &format!("configurations.{host}"))
            .unwrap_or_else(|e| panic!("{host} does not evaluate:\n{e}"))
    }
}

const NONE: &str = "_: []";

/// Every host × every image variant × the VM evaluates, and no image medium
/// depends on the host's disk: no LUKS pool, no swap, no /dev/mapper mount.
#[test]
fn every_host_and_image_variant_evaluates_without_the_host_disk() {
    let Some(m) = model("every_host_and_image_variant_evaluates_without_the_host_disk") else {
        return;
    };
    for host in HOSTS {
        let v = m.host(host, NONE);
        assert_eq!(v["toplevel"], json!(format!("nixos-system-{host}")));
        let media: Vec<(&str, &Value)> = ALL_MEDIA
            .iter()
            .map(|i| (*i, &v["images"][i]))
            .chain([("vm", &v["vm"])])
            .collect();
        for (name, image) in media {
            assert_eq!(
                image["luks"],
                json!({}),
                "{host} {name} waits for a LUKS device"
            );
            assert_eq!(image["swapDevices"], json!([]), "{host} {name} has swap");
            for (mp, fs) in image["fileSystems"].as_object().unwrap() {
                let dev = fs["device"].as_str().unwrap_or("");
                assert!(
                    !dev.starts_with("/dev/mapper/") && !dev.contains("by-partlabel"),
                    "{host} {name}: {mp} on the host's disk ({dev})"
                );
            }
        }
        assert!(v["images"]["raw-efi"]["filePath"]
            .as_str()
            .unwrap()
            .ends_with(".raw"));
        assert!(v["images"]["qemu-efi"]["filePath"]
            .as_str()
            .unwrap()
            .ends_with(".qcow2"));
        assert!(v["images"]["iso-installer"]["filePath"]
            .as_str()
            .unwrap()
            .ends_with(".iso"));
    }
}

/// The model refuses an option nixpkgs does not declare, like nixpkgs.
/// Each host's system build depends on `bifrost check` of the settings
/// file its boot hook hands to `bifrost esp install` (modules/check.nix).
#[test]
fn every_host_is_built_only_with_settings_bifrost_accepts() {
    let Some(m) = model("every_host_is_built_only_with_settings_bifrost_accepts") else {
        return;
    };
    for host in HOSTS {
        let v = m.host(host, NONE);
        assert_eq!(v["checks"], json!(["bifrost-check-settings"]), "{host}");
        let file = v["settingsFile"].as_str().unwrap();
        assert!(file.ends_with("-bifrost-host.json"), "{host}: {file}");
        let command = v["settingsCheck"].as_str().unwrap();
        assert!(
            command.contains(&format!("/bin/bifrost check {file};")),
            "{host}: {command}"
        );
        assert!(
            v["installHook"]
                .as_str()
                .unwrap()
                .contains(&format!("--settings {file}")),
            "{host}: the hook reads another file than the check"
        );
        assert!(
            v["passedChecks"]
                .as_str()
                .unwrap()
                .ends_with("-bifrost-check-settings"),
            "{host}: {}",
            v["passedChecks"]
        );
    }
}

#[test]
fn model_refuses_undeclared_options() {
    let Some(m) = model("model_refuses_undeclared_options") else {
        return;
    };
    let err = m
        .eval(
            ".",
            "_: [{ boot.loader.refind.extraThing = true; }]",
            "configurations.example-vm.toplevel",
        )
        .unwrap_err();
    assert!(
        err.contains("boot.loader.refind.extraThing") && err.contains("does not exist"),
        "{err}"
    );
}

/// #10 item 1: `boot.loader.external` and disk-image.nix both set
/// systemd-boot with mkDefault ("conflicting definition values").
#[test]
fn raw_and_qcow_images_evaluate_beside_the_external_loader() {
    let Some(m) = model("raw_and_qcow_images_evaluate_beside_the_external_loader") else {
        return;
    };
    for host in HOSTS {
        for image in DISK_IMAGES {
            let r = m.eval(".", NONE, &format!("configurations.{host}.images.{image}"));
            assert!(r.is_ok(), "{host} {image}: {}", r.unwrap_err());
        }
    }
}

/// #10 item 1: make-disk-image runs the install hook in its build VM, with
/// the ESP at /boot, no EFI variables and no Kinoite disk.
#[test]
fn image_install_hook_is_safe_inside_the_image_build() {
    let Some(m) = model("image_install_hook_is_safe_inside_the_image_build") else {
        return;
    };
    let v = m.host("surface-pro-8", NONE);
    // The host itself adds the Kinoite entries: its hook hands bifrost the
    // settings file, which names the Kinoite side.
    let own = v["installHook"].as_str().unwrap();
    assert!(own.contains("esp install --settings "), "{own}");
    assert!(own.contains("--esp /boot/efi"), "{own}");
    assert!(v["hookSettings"]["dualBoot"]["kinoite"].is_object());
    for image in DISK_IMAGES {
        let hook = v["images"][image]["installHook"].as_str().unwrap();
        assert!(hook.contains(" --esp /boot "), "{image}: {hook}");
        let settings = &v["images"][image]["hookSettings"];
        assert_eq!(settings["boot"]["removable"], json!(true), "{image}");
        assert_eq!(settings["boot"]["defaultEntry"], json!("nixos"), "{image}");
        assert!(
            settings["dualBoot"].get("kinoite").is_none(),
            "{image}: {settings}"
        );
        for bad in ["kinoite", "mount ", "efibootmgr --", "--nvram "] {
            assert!(!hook.contains(bad), "{image} hook has {bad:?}: {hook}");
        }
        // An image build has no NVRAM of the machine: bifrost is told so
        // (it would otherwise register rEFInd as the settings say).
        assert!(hook.contains(" --no-nvram "), "{image}: {hook}");
    }
}

/// #10 item 2: the installer profile's ZFS builds the ZFS module of the
/// configured kernel, broken for linux-surface and the newest kernel.
#[test]
fn installer_evaluates_without_zfs() {
    let Some(m) = model("installer_evaluates_without_zfs") else {
        return;
    };
    for host in HOSTS {
        let r = m.eval(
            ".",
            NONE,
            &format!("configurations.{host}.images.iso-installer"),
        );
        let v = r.unwrap_or_else(|e| panic!("{host} installer: {e}"));
        assert_eq!(v["kernelModules"], json!([]), "{host}");
    }
}

/// #10 item 2: the installer installs with no network: the host's system
/// and the flake with every input it locks are in the ISO's store, and
/// `bifrost install` defaults to that flake and host.
#[test]
fn installer_carries_the_host_system_and_flake_inputs() {
    let Some(m) = model("installer_carries_the_host_system_and_flake_inputs") else {
        return;
    };
    for host in HOSTS {
        let iso = &m.host(host, NONE)["images"]["iso-installer"];
        let store: Vec<&str> = iso["storeContents"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let system = format!("nixos-system-{host}");
        assert!(store.contains(&system.as_str()), "{host}: {store:?}");
        let root = repo();
        let root = root.to_str().unwrap();
        for source in [
            root,
            // the model's nixpkgs and nixos-hardware inputs
            "/nix/store/11111111111111111111111111111111-source",
            "/nix/store/22222222222222222222222222222222-source",
        ] {
            assert!(store.contains(&source), "{host}: {source} not in {store:?}");
        }
        assert_eq!(iso["etc"]["bifrost/flake"], json!(root));
        assert_eq!(iso["env"]["BIFROST_INSTALL_FLAKE"], "/etc/bifrost/flake");
        assert_eq!(iso["env"]["BIFROST_INSTALL_HOST"], json!(host));
        assert_eq!(
            iso["env"]["BIFROST_INSTALL_SETTINGS"],
            "/etc/bifrost/host.json"
        );
        assert!(iso["etc"]["bifrost/host.json"].is_string());
        assert!(iso["env"]["BIFROST_INSTALL_SYSTEM"]
            .as_str()
            .unwrap()
            .ends_with(&system));
    }
}

/// #10 item 2: a flake that imports bifrost gets an installer for its own
/// host and its own flake; without `bifrost.installer.flake` it is refused.
#[test]
fn user_flake_gets_an_installer_for_its_own_host() {
    let Some(m) = model("user_flake_gets_an_installer_for_its_own_host") else {
        return;
    };
    let flake = "tests/fixtures/user-flake";
    let iso = m
        .eval(flake, NONE, "configurations.my-tablet.images.iso-installer")
        .unwrap();
    let own = repo().join(flake);
    assert_eq!(iso["etc"]["bifrost/flake"], json!(own.to_str().unwrap()));
    assert_eq!(iso["env"]["BIFROST_INSTALL_HOST"], "my-tablet");
    let store = iso["storeContents"].as_array().unwrap();
    assert!(store.contains(&json!("nixos-system-my-tablet")));
    // Its inputs: bifrost and, through it, nixpkgs.
    assert!(
        store.contains(&json!(repo().to_str().unwrap())),
        "{store:?}"
    );
    let err = m
        .eval(
            flake,
            NONE,
            "configurations.no-installer-flake.images.iso-installer",
        )
        .unwrap_err();
    assert!(err.contains("bifrost.installer.flake is not set"), "{err}");
}

/// #10 item 5: nixpkgs' flatpak.nix asserts XDG portals; only Plasma
/// turned them on.
#[test]
fn flatpak_without_plasma_evaluates() {
    let Some(m) = model("flatpak_without_plasma_evaluates") else {
        return;
    };
    let v = m.host(
        "example-vm",
        "_: [({lib, ...}: { bifrost.settings.packages.flatpak = lib.mkForce true; })]",
    );
    assert_eq!(v["xdgPortal"], json!(true));
    assert!(v["packages"]
        .as_array()
        .unwrap()
        .contains(&json!("flatpak")));
}

/// #10 item 5: `boot.maxGenerations: 0` is "keep all": no --limit.
#[test]
fn max_generations_zero_keeps_all() {
    let Some(m) = model("max_generations_zero_keeps_all") else {
        return;
    };
    let v = m.host(
        "example-vm",
        "_: [({lib, ...}: { bifrost.settings.boot.maxGenerations = lib.mkForce 0; })]",
    );
    // The hook's settings file says 0, which esp::choices reads as no limit
    // (tested there); the hook passes no --limit of its own.
    assert_eq!(v["hookSettings"]["boot"]["maxGenerations"], json!(0));
    assert!(!v["installHook"].as_str().unwrap().contains("--limit"));
    let v = m.host("example-vm", NONE);
    assert_eq!(v["hookSettings"]["boot"]["maxGenerations"], json!(10));
}

/// #10 item 5: nixos-hardware's `mem_sleep_default=deep` survives host
/// kernel parameters and the image modules' own.
#[test]
fn surface_kernel_params_keep_mem_sleep_deep() {
    let Some(m) = model("surface_kernel_params_keep_mem_sleep_deep") else {
        return;
    };
    let v = m.host("surface-pro-8", NONE);
    assert_eq!(v["kernelParams"], json!(["mem_sleep_default=deep"]));
    let v = m.host(
        "surface-pro-8",
        r#"_: [({lib, ...}: { bifrost.settings.kernel.params = lib.mkForce ["quiet"]; })]"#,
    );
    let params = v["kernelParams"].as_array().unwrap();
    assert!(
        params.contains(&json!("mem_sleep_default=deep")),
        "{params:?}"
    );
    assert!(params.contains(&json!("quiet")), "{params:?}");
}

/// #10 item 5: importing nixosModules.default and .surface-pro-8 together
/// declares nothing twice.
#[test]
fn default_and_surface_modules_import_together() {
    let Some(m) = model("default_and_surface_modules_import_together") else {
        return;
    };
    let v = m.host(
        "surface-pro-8",
        "b: [b.nixosModules.default b.nixosModules.bifrost]",
    );
    assert_eq!(v["toplevel"], "nixos-system-surface-pro-8");
}

/// #12 items 6 and 7: NetworkManager with the desktop (Plasma's applet
/// comes with it) and on the installer, flakes on the installed system.
#[test]
fn networkmanager_and_flakes() {
    let Some(m) = model("networkmanager_and_flakes") else {
        return;
    };
    let surface = m.host("surface-pro-8", NONE);
    assert_eq!(surface["networkmanager"], json!(true));
    assert!(surface["packages"]
        .as_array()
        .unwrap()
        .contains(&json!("plasma-nm")));
    let vm = m.host("example-vm", NONE);
    assert_eq!(
        vm["networkmanager"],
        json!(false),
        "no desktop, no NetworkManager"
    );
    for v in [&surface, &vm] {
        assert_eq!(v["images"]["iso-installer"]["networkmanager"], json!(true));
        let features = v["experimentalFeatures"].as_array().unwrap();
        assert!(features.contains(&json!("flakes")), "{features:?}");
        assert!(features.contains(&json!("nix-command")), "{features:?}");
    }
}

/// The flake's `checks.x86_64-linux.nixos-eval` forces every configuration,
/// its VM and every image variant, and fails when one does not evaluate.
#[test]
fn flake_check_forces_every_configuration_and_image() {
    let Some(m) = model("flake_check_forces_every_configuration_and_image") else {
        return;
    };
    let listing = m.eval(".", NONE, "nixosEvalCheck").unwrap();
    let lines: Vec<&str> = listing.as_str().unwrap().lines().collect();
    for host in HOSTS {
        for what in [
            "toplevel",
            "vm",
            "raw-efi",
            "qemu-efi",
            "iso",
            "iso-installer",
        ] {
            let prefix = format!("{host} {what} /nix/store/");
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&prefix) && l.ends_with(".drv")),
                "no {prefix}…drv in {lines:?}"
            );
        }
    }
    let err = m
        .eval(
            ".",
            r#"_: [{ assertions = [{ assertion = false; message = "broken on purpose"; }]; }]"#,
            "nixosEvalCheck",
        )
        .unwrap_err();
    assert!(err.contains("broken on purpose"), "{err}");
}
