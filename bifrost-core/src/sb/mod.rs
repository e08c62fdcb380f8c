//! Secure Boot: the user's keys, signatures of what rEFInd loads, and their
//! enrollment (shim's MOK list, or the firmware's own db/KEK/PK).
//!
//! Every cryptographic step runs a well-known tool (openssl, sbsigntool,
//! efitools, mokutil) through [`crate::process::Cmd`], the
//! process seam; this module decides what to run and checks the results.

pub mod efivars;
pub mod enroll;
pub mod keys;
pub mod pe;
pub mod place;
pub mod text;
pub mod verify;

use crate::fsutil::io_err;
use crate::process::{Cmd, ProcessError as CommandError};
use camino::Utf8Path;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SbError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{0} already exists; bifrost never overwrites keys (move it away or choose another --dir/--name)")]
    Exists(String),
    #[error("{what} {path} does not exist")]
    Missing { what: &'static str, path: String },
    #[error("{what} {path} is not {expected}: {detail}")]
    BadFormat {
        what: &'static str,
        path: String,
        expected: &'static str,
        detail: String,
    },
    #[error("certificate {cert} does not belong to key {key} (their public keys differ); pass the certificate made with that key")]
    Mismatch { key: String, cert: String },
    #[error("{0}: not a PE/EFI binary")]
    NotPe(String),
    #[error("--name {0:?}: use letters, digits, `-` and `_` only")]
    BadName(String),
    #[error("{0}")]
    Refused(String),
    #[error("could not run `{program}`: {detail} (install {package})")]
    ToolMissing {
        program: String,
        package: &'static str,
        detail: String,
    },
    #[error(transparent)]
    Tool(#[from] CommandError),
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, SbError> {
    Cmd::new(program, args)
        .cancellable()
        .read()
        .map_err(|e| match e {
            CommandError::Spawn { source, .. } => SbError::ToolMissing {
                program: program.into(),
                package: package_of(program),
                detail: source.to_string(),
            },
            e => SbError::Tool(e),
        })
}

/// The Debian package that ships each tool bifrost runs.
fn package_of(program: &str) -> &'static str {
    match program {
        "openssl" => "openssl",
        "sbsign" | "sbverify" => "sbsigntool",
        "objcopy" => "binutils",
        "cert-to-efi-sig-list" | "sign-efi-sig-list" => "efitools",
        "mokutil" => "mokutil",
        _ => "it",
    }
}

/// GUID shim keeps its MOK list under (and `virt-fw-vars --add-mok` takes).
pub const SHIM_GUID: &str = "605dab50-e046-4300-abb6-3dd810dd8b23";
/// EFI_GLOBAL_VARIABLE: PK, KEK, SecureBoot, SetupMode.
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx.
pub const DB_GUID: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";

/// A signing key and its certificate, checked to be readable PEM and to
/// belong together.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub key: camino::Utf8PathBuf,
    pub cert: camino::Utf8PathBuf,
    /// SHA-256 of the certificate (DER), lower-case hex.
    pub fingerprint: String,
}

impl KeyPair {
    /// Check `key` and `cert` before anything is signed with them.
    pub fn load(key: &Utf8Path, cert: &Utf8Path) -> Result<KeyPair, SbError> {
        for (what, p) in [("signing key", key), ("certificate", cert)] {
            if !p.is_file() {
                return Err(SbError::Missing {
                    what,
                    path: p.to_string(),
                });
            }
            // Readable by us at all (a clear message instead of openssl's).
            std::fs::File::open(p).map_err(io_err(p, "open"))?;
        }
        let key_pub = pem_public_key(
            "pkey",
            key,
            &["-passin", "pass:", "-pubout"],
            "signing key",
            "an unencrypted PEM private key",
        )?;
        let cert_pub = pem_public_key(
            "x509",
            cert,
            &["-noout", "-pubkey"],
            "certificate",
            "a PEM X.509 certificate",
        )?;
        if key_pub.trim() != cert_pub.trim() {
            return Err(SbError::Mismatch {
                key: key.to_string(),
                cert: cert.to_string(),
            });
        }
        Ok(KeyPair {
            key: key.to_owned(),
            cert: cert.to_owned(),
            fingerprint: fingerprint(cert)?,
        })
    }

    /// Sign `input` (a PE/EFI binary) into `output`, as `sbsign` does.
    pub fn sign(&self, input: &Utf8Path, output: &Utf8Path) -> Result<(), SbError> {
        run(
            "sbsign",
            &[
                "--key",
                self.key.as_str(),
                "--cert",
                self.cert.as_str(),
                "--output",
                output.as_str(),
                input.as_str(),
            ],
        )?;
        Ok(())
    }
}

/// The public key openssl reads from the PEM file `path`
/// (`openssl TOOL -inform PEM -in PATH EXTRA…`); a file it cannot read is
/// [`SbError::BadFormat`], naming `what` it should have been.
fn pem_public_key(
    tool: &str,
    path: &Utf8Path,
    extra: &[&str],
    what: &'static str,
    expected: &'static str,
) -> Result<String, SbError> {
    let args: Vec<&str> = [tool, "-inform", "PEM", "-in", path.as_str()]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    run("openssl", &args).map_err(|e| SbError::BadFormat {
        what,
        path: path.to_string(),
        expected,
        detail: short(&e),
    })
}

/// SHA-256 fingerprint of a PEM certificate, lower-case hex without colons.
pub fn fingerprint(cert: &Utf8Path) -> Result<String, SbError> {
    let out = run(
        "openssl",
        &[
            "x509",
            "-in",
            cert.as_str(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    )?;
    let hexs: String = out
        .split_once('=')
        .map(|(_, h)| h)
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    if hexs.len() != 64 {
        return Err(SbError::BadFormat {
            what: "certificate",
            path: cert.to_string(),
            expected: "a PEM X.509 certificate",
            detail: format!("openssl printed no SHA-256 fingerprint: {}", out.trim()),
        });
    }
    Ok(hexs.to_ascii_lowercase())
}

/// The first line of a tool's complaint, enough to say what was wrong.
fn short(e: &SbError) -> String {
    match e {
        SbError::Tool(CommandError::Failed { stderr, .. }) => stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("openssl refused it")
            .to_string(),
        other => other.to_string(),
    }
}
