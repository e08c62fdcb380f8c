//! flake.nix's outputs evaluate, with the real nixpkgs `lib` and stand-in
//! packages (tests/nix/flake-stub-eval.nix): every system has the package,
//! the checks and a dev shell that points the tests at x86_64 guest tools.
//!
//! Needs a local copy of nixpkgs' lib (for example a checkout of
//! nix-community/nixpkgs.lib) named by `BIFROST_NIXPKGS_LIB`, so CI may skip it.

use bifrost_e2e::nixeval::{self, NixLib};
use std::path::Path;

#[test]
fn flake_outputs_evaluate() {
    let Some(NixLib { nix, lib }) = NixLib::find("flake_outputs_evaluate") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let v = nixeval::json(
        nixeval::eval(&nix)
            .arg(root.join("tests/nix/flake-stub-eval.nix"))
            .arg("--arg")
            .arg("flakeDir")
            .arg(root)
            .arg("--arg")
            .arg("nixpkgsLib")
            .arg(&lib),
    );
    assert_eq!(
        v["systems"],
        serde_json::json!(["aarch64-linux", "x86_64-linux"])
    );
    for system in ["aarch64-linux", "x86_64-linux"] {
        let checks = v["checks"][system].as_object().unwrap();
        for check in [
            "bifrost",
            "clippy",
            "rustfmt",
            "nix-format",
            "hosts",
            "nixos-eval",
        ] {
            assert!(checks.contains_key(check), "{system}: no check {check}");
        }
        let shell = &v["shell"][system];
        for var in [
            "BIFROST_OVMF_CODE",
            "BIFROST_OVMF_VARS",
            "BIFROST_REFIND_DIR",
            "BIFROST_KERNEL",
            "BIFROST_BUSYBOX",
        ] {
            assert!(
                shell[var]
                    .as_str()
                    .is_some_and(|s| s.starts_with("/nix/store/")),
                "{system}: {var} = {}",
                shell[var]
            );
        }
        // The guest is x86_64 even on aarch64 hosts.
        assert!(shell["BIFROST_OVMF_CODE"]
            .as_str()
            .unwrap()
            .contains("x86_64-linux"));
    }
    for system in ["aarch64-linux", "x86_64-linux"] {
        // `nix fmt` with no arguments formats the flake instead of reading
        // standard input (Nix >= 2.25 passes none).
        let fmt = &v["formatter"][system];
        assert!(
            fmt["text"]
                .as_str()
                .unwrap()
                .contains(r#"if [ "$#" -eq 0 ]; then set -- .; fi"#),
            "{fmt}"
        );
        assert_eq!(fmt["inputs"], serde_json::json!(["alejandra"]));
        // tests/run.sh passes inside `nix develop`: the install test's tools.
        let packages = v["shellPackages"][system].as_array().unwrap();
        for p in ["cryptsetup", "btrfs-progs", "kmod", "gcc", "qemu", "nix"] {
            assert!(
                packages.contains(&serde_json::json!(p)),
                "{system}: dev shell lacks {p}"
            );
        }
        assert!(v["shell"][system]["BIFROST_KERNEL_MODULES"]
            .as_str()
            .unwrap()
            .ends_with("/lib/modules"));
    }
    assert!(v["hostsCheck"].as_str().unwrap().contains("bifrost check"));
    // The static binary for Kinoite comes from pkgsStatic's musl toolchain.
    for system in ["aarch64-linux", "x86_64-linux"] {
        assert_eq!(
            v["staticPackages"][system], "bifrost-musl-static",
            "{system}"
        );
    }
    assert_eq!(v["testFlags"], serde_json::json!(["--workspace"]));
    assert!(v["clippyBuild"].as_str().unwrap().contains("-D warnings"));
}
