//! SIGINT while `bifrost build` computes an artifact's SHA-256 stops the
//! hashing (the docs promise exit status 130 on interrupt). Its own test
//! binary: the interrupt flag is process-wide.

use bifrost_core::build::{cancel, manifest, BuildError};
use camino::Utf8Path;

#[test]
fn sigint_stops_the_sha256_step() {
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
