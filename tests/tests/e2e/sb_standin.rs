//! tests/nix/sb-standin.sh, which makes the Nix dev shell's Secure Boot
//! material (test keys standing in for Debian's snakeoil keys, VARS that
//! trust them, shim signed with them), run here against Debian's files: the
//! key opens with Debian's passphrase, the VARS hold the certificate where
//! sb_boot needs it, shim and MokManager verify against it. The boots
//! themselves are sb_boot's (run it with the `BIFROST_*` Secure Boot
//! variables pointing into the output to boot through the stand-in).

use bifrost_e2e::{program, skip, tool_path};
use std::path::{Path, PathBuf};
use std::process::Command;

const TEST: &str = "standin_material_trusts_its_own_key";
const CN: &str = "subject CN=bifrost dev shell Secure Boot test key";

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How often the test certificate is in `vars` (PK, KEK, db each count).
fn cert_count(vars: &Path) -> usize {
    let out = Command::new("virt-fw-vars")
        .arg("-i")
        .arg(vars)
        .arg("-pv")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.matches(CN).count()
}

#[test]
fn standin_material_trusts_its_own_key() {
    let found = (
        tool_path("BIFROST_OVMF_SETUP_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
        tool_path("BIFROST_OVMF_MS_VARS", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"),
        tool_path("BIFROST_SHIM_UNSIGNED_DIR", "/usr/lib/shim"),
        program("virt-fw-vars"),
        program("sbsign").and(program("sbverify")),
        program("openssl"),
    );
    let (Some(vars), Some(ms), Some(shim_dir), Some(_), Some(_), Some(_)) = found else {
        return skip(
            TEST,
            "ovmf, shim-unsigned, sbsigntool, openssl and virt-fw-vars (PyPI virt-firmware)",
        );
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/sb-standin.sh");
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("out");
    ok(Command::new("bash")
        .arg(&script)
        .arg(&out)
        .arg(&vars)
        .arg(&ms)
        .arg(&shim_dir));

    let cert = out.join("PkKek-1-snakeoil.pem");
    // The key is encrypted like Debian's and belongs to the certificate.
    let key = out.join("PkKek-1-snakeoil.key");
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));
    let from_key = ok(Command::new("openssl")
        .args(["pkey", "-pubout", "-passin", "pass:snakeoil", "-in"])
        .arg(&key));
    let from_cert = ok(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&cert));
    assert_eq!(from_key, from_cert);

    // PK, KEK and db of the snakeoil stand-in; db of the ms stand-in, on
    // top of what the input held.
    assert_eq!(cert_count(&out.join("OVMF_VARS_4M.snakeoil.fd")), 3);
    assert_eq!(
        cert_count(&out.join("OVMF_VARS_4M.ms.fd")),
        cert_count(&ms) + 1
    );

    for f in ["shimx64.efi.signed", "mmx64.efi.signed"] {
        ok(Command::new("sbverify")
            .arg("--cert")
            .arg(&cert)
            .arg(out.join("shim").join(f)));
    }
    // The unsigned input does not verify: the signature is the script's.
    let unsigned = Command::new("sbverify")
        .arg("--cert")
        .arg(&cert)
        .arg(shim_dir.join("shimx64.efi"))
        .output()
        .unwrap();
    assert!(!unsigned.status.success());
}
