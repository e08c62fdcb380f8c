//! `./build.sh build raw|iso|qcow|vm [args…]`, the seed's orchestrator, runs
//! the flake's matching app with the same arguments: checked with a fake
//! `nix` on PATH that records the exact argv it receives. Without `nix` it
//! says how to get it on Kinoite (Podman with the store under 0_podman/).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Runs build.sh with only `bin` on PATH (from another working directory,
/// so the flake is found from the script's own place).
fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new("/bin/bash")
        .arg(repo().join("build.sh"))
        .args(args)
        .env_clear()
        .env("PATH", bin)
        .current_dir(bin)
        .output()
        .unwrap()
}

fn fake_nix(dir: &Path, log: &Path) {
    let nix = dir.join("nix");
    // Only builtins: PATH holds nothing else.
    std::fs::write(
        &nix,
        format!(
            "#!/bin/bash\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {:?}\n",
            log
        ),
    )
    .unwrap();
    std::fs::set_permissions(&nix, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn each_format_runs_its_flake_app_with_the_same_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("argv");
    fake_nix(dir.path(), &log);
    let root = repo().canonicalize().unwrap();
    for format in ["raw", "iso", "qcow", "vm"] {
        let out = run(
            dir.path(),
            &[
                "build",
                format,
                "--out",
                "/srv/out dir",
                "--",
                "--keep-going",
            ],
        );
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let argv = std::fs::read_to_string(&log).unwrap();
        let want = format!(
            "--extra-experimental-features\nnix-command flakes\nrun\n{}#build-{format}\n--\n--out\n/srv/out dir\n--\n--keep-going\n",
            root.display()
        );
        assert_eq!(argv, want, "{format}");
    }
}

#[test]
fn bad_usage_is_refused_without_running_nix() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("argv");
    fake_nix(dir.path(), &log);
    for args in [&["build", "floppy"][..], &["build"], &["flash", "raw"], &[]] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("usage: ./build.sh build raw|iso|qcow|vm"),
            "{err}"
        );
        assert!(!log.exists(), "{args:?} ran nix");
    }
}

#[test]
fn without_nix_it_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["build", "iso"]);
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    for hint in [
        "`nix` is not installed",
        "podman run",
        "0_podman/nix:/nix",
        "toolbox",
        "docs/build.md",
    ] {
        assert!(err.contains(hint), "no {hint:?} in:\n{err}");
    }
}
