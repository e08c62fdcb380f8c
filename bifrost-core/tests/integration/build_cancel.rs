//! SIGINT while `bifrost build` computes an artifact's SHA-256 stops the
//! hashing (the docs promise exit status 130 on interrupt).
//!
//! The interrupt flag is process-wide: raised here, it would stop the build
//! steps of every other test in this binary. So the test runs itself again
//! in a child process, filtered to this one test, and raises SIGINT there.

use bifrost_core::build::{cancel, manifest, BuildError};
use camino::Utf8Path;

/// Set in the child process that runs the test body.
const IN_OWN_PROCESS: &str = "BIFROST_TEST_IN_OWN_PROCESS";

#[test]
fn sigint_stops_the_sha256_step() {
    if std::env::var_os(IN_OWN_PROCESS).is_none() {
        return in_own_process("build_cancel::sigint_stops_the_sha256_step");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = Utf8Path::from_path(dir.path()).unwrap().join("image.raw");
    std::fs::write(&file, vec![1u8; 3 << 20]).unwrap();
    assert!(manifest::sha256_file(&file).is_ok());

    cancel::install().unwrap();
    // SAFETY: raising a signal whose handler was just installed.
    assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
    assert!(cancel::requested());
    let e = manifest::sha256_file(&file).unwrap_err();
    assert!(matches!(e, manifest::ManifestError::Interrupted(_)), "{e}");
    assert_eq!(BuildError::Manifest(e).exit_code(), 130);
}

/// Run the test `name` of this binary in a child process and require that
/// exactly it ran and passed.
fn in_own_process(name: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1"])
        .env(IN_OWN_PROCESS, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
