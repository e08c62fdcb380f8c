//! The flake's apps (`nix run .#build-iso` …): each runs `bifrost build
//! <format>` for the default host with the flake itself as `--flake` and
//! passes extra arguments through. Evaluated by real Nix with stand-in
//! packages (tests/nix/apps-eval.nix), then each script is run against a
//! stand-in `bifrost` that prints its arguments.

use bifrost_e2e::{skip, Tools};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn apps_run_bifrost_build_with_the_flake_and_pass_arguments() {
    let Some(nix) = Tools::find().nix_instantiate else {
        return skip(
            "apps_run_bifrost_build_with_the_flake_and_pass_arguments",
            "nix-instantiate (Debian package nix-bin)",
        );
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let stub = tmp.path().join("bifrost");
    std::fs::create_dir_all(stub.join("bin")).unwrap();
    let exe = stub.join("bin/bifrost");
    std::fs::write(
        &exe,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\necho \"rev=$BIFROST_FLAKE_REVISION dirty=$BIFROST_FLAKE_DIRTY\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = Command::new(nix);
    cmd.args(["--eval", "--strict", "--json"])
        .arg(root.join("tests/nix/apps-eval.nix"))
        .arg("--arg")
        .arg("flake")
        .arg(root.join("flake.nix"))
        .args(["--argstr", "bifrost"])
        .arg(&stub);
    // With a local nixpkgs lib, check against the real escapeShellArg too.
    if let Some(lib) = std::env::var_os("BIFROST_NIXPKGS_LIB") {
        cmd.args(["--argstr", "libPath"])
            .arg(Path::new(&lib).join("lib"));
    }
    let out = bifrost_e2e::nixrun::output(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let apps: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        apps.keys().collect::<Vec<_>>(),
        [
            "build-iso",
            "build-qcow",
            "build-raw",
            "build-vm",
            "default"
        ]
    );
    assert_eq!(apps["default"], apps["build-iso"]);
    for (app, format) in [
        ("build-raw", "raw"),
        ("build-iso", "iso"),
        ("build-qcow", "qcow"),
        ("build-vm", "vm"),
    ] {
        let script = tmp.path().join(app);
        std::fs::write(&script, &apps[app]).unwrap();
        let o = bifrost_e2e::nixrun::output(Command::new("sh").arg(&script).args([
            "--out",
            "/images with space",
            "--",
            "--max-jobs",
            "0",
        ]));
        assert!(
            o.status.success(),
            "{app}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let expected = format!(
            "[build]\n[{format}]\n[--flake]\n[path:/flake-source]\n[--host]\n[surface-pro-8]\n\
             [--out]\n[/images with space]\n[--]\n[--max-jobs]\n[0]\n\
             rev=0123456789abcdef0123456789abcdef01234567 dirty=0\n"
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout), expected, "{app}");
    }
}
