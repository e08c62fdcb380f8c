//! `bifrost sb keys`: the user's signing key and certificate, and on request
//! the PK/KEK/db set for firmware that takes its owner's keys.
//!
//! RSA 2048 with SHA-256: the key size and digest shim verifies with
//! (its OpenSSL build and MokManager accept RSA 2048 certificates; many
//! firmware implementations support RSA 2048 only, as the UEFI spec's
//! EFI_CERT_RSA2048 type suggests). Larger keys are refused by some
//! firmware, so 2048 is the one size that works everywhere.

use super::{run, SbError};
use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// File stem of the signing key unless `--name` says otherwise (the key of
/// the shim route, `mok.key`/`mok.crt`/`mok.cer`).
pub const DEFAULT_NAME: &str = "mok";
/// Common name of the certificates unless `--common-name` says otherwise.
pub const DEFAULT_COMMON_NAME: &str = "bifrost Secure Boot signing key";

/// Options of `bifrost sb keys`.
#[derive(Debug, Clone)]
pub struct KeysOptions {
    pub dir: Utf8PathBuf,
    /// File stem of the signing key (`NAME.key`, `NAME.crt`, `NAME.cer`).
    pub name: String,
    /// Common name in the certificates.
    pub common_name: String,
    /// Also PK, KEK and db with their signature lists and signed updates.
    pub firmware: bool,
}

/// Files `keys` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct KeysReport {
    pub key: Utf8PathBuf,
    pub cert: Utf8PathBuf,
    pub cert_der: Utf8PathBuf,
    pub fingerprint: String,
    /// PK/KEK/db files when asked for.
    pub firmware: Vec<Utf8PathBuf>,
}

/// Certificate validity: long enough not to expire under a running machine
/// (firmware does not check expiry; shim neither).
const DAYS: &str = "3650";

fn check_name(name: &str) -> Result<(), SbError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SbError::BadName(name.into()))
    }
}

/// Every file `keys` would write, so it can refuse before writing any.
pub fn planned_files(o: &KeysOptions) -> Vec<Utf8PathBuf> {
    let mut v: Vec<Utf8PathBuf> = ["key", "crt", "cer"]
        .iter()
        .map(|e| o.dir.join(format!("{}.{e}", o.name)))
        .collect();
    if o.firmware {
        for n in ["PK", "KEK", "db"] {
            for e in ["key", "crt", "cer", "esl", "auth"] {
                v.push(o.dir.join(format!("{n}.{e}")));
            }
        }
    }
    v
}

/// What `bifrost sb keys` made: new keys in an empty place, or (with
/// `--from` or `--keep-existing`) keys put in place by [`super::place::place`].
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MadeKeys {
    Created(KeysReport),
    Placed(super::place::Placed),
}

/// `bifrost sb keys`: copy or keep keys when asked to (`from`,
/// `keep_existing`), else create them where none are.
pub fn make(
    o: &KeysOptions,
    from: Option<&Utf8Path>,
    keep_existing: bool,
) -> Result<MadeKeys, SbError> {
    if from.is_some() || keep_existing {
        super::place::place(o, from, keep_existing).map(MadeKeys::Placed)
    } else {
        create(o).map(MadeKeys::Created)
    }
}

/// Create the keys; refuses when any file exists, writes nothing then.
pub fn create(o: &KeysOptions) -> Result<KeysReport, SbError> {
    use std::os::unix::fs::PermissionsExt;
    check_name(&o.name)?;
    let files = planned_files(o);
    if let Some(f) = files.iter().find(|f| f.symlink_metadata().is_ok()) {
        return Err(SbError::Exists(f.to_string()));
    }
    if o.dir.symlink_metadata().is_ok() && !o.dir.is_dir() {
        return Err(SbError::Refused(format!("--dir {} is not a folder", o.dir)));
    }
    std::fs::create_dir_all(&o.dir).map_err(io_err(&o.dir, "create folder"))?;
    // Work in a private folder beside the target and move the finished files
    // in: an interrupted run leaves no half set behind.
    let work = tempfile::Builder::new()
        .prefix(".bifrost-keys-")
        .tempdir_in(&o.dir)
        .map_err(io_err(&o.dir, "create temp folder"))?;
    let w = Utf8Path::from_path(work.path()).expect("temp path under a UTF-8 dir");
    std::fs::set_permissions(w, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(w, "chmod"))?;
    make_pair(w, &o.name, &o.common_name)?;
    if o.firmware {
        for n in ["PK", "KEK", "db"] {
            make_pair(w, n, &format!("{} {n}", o.common_name))?;
        }
        // A random owner GUID for the signature lists, as sbctl does.
        let owner = uuid_v4()?;
        for (n, signer) in [("PK", "PK"), ("KEK", "PK"), ("db", "KEK")] {
            let esl = w.join(format!("{n}.esl"));
            run(
                "cert-to-efi-sig-list",
                &[
                    "-g",
                    &owner,
                    w.join(format!("{n}.crt")).as_str(),
                    esl.as_str(),
                ],
            )?;
            run(
                "sign-efi-sig-list",
                &[
                    "-g",
                    &owner,
                    "-k",
                    w.join(format!("{signer}.key")).as_str(),
                    "-c",
                    w.join(format!("{signer}.crt")).as_str(),
                    n,
                    esl.as_str(),
                    w.join(format!("{n}.auth")).as_str(),
                ],
            )?;
        }
    }
    for f in &files {
        let name = f.file_name().expect("planned files have names");
        let src = w.join(name);
        let mode = if name.ends_with(".key") { 0o600 } else { 0o644 };
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(&src, "chmod"))?;
        // A file that appeared meanwhile is not replaced: link fails on it.
        std::fs::hard_link(&src, f).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SbError::Exists(f.to_string())
            } else {
                io_err(f, "create")(e).into()
            }
        })?;
    }
    crate::fsutil::sync_dir(&o.dir).map_err(|e| SbError::Refused(e.to_string()))?;
    let cert = o.dir.join(format!("{}.crt", o.name));
    Ok(KeysReport {
        key: o.dir.join(format!("{}.key", o.name)),
        fingerprint: super::fingerprint(&cert)?,
        cert_der: o.dir.join(format!("{}.cer", o.name)),
        cert,
        firmware: files.into_iter().skip(3).collect(),
    })
}

fn make_pair(dir: &Utf8Path, name: &str, cn: &str) -> Result<(), SbError> {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    let cer = dir.join(format!("{name}.cer"));
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-sha256",
            "-nodes",
            "-days",
            DAYS,
            "-subj",
            &format!("/CN={cn}/"),
            "-keyout",
            key.as_str(),
            "-out",
            crt.as_str(),
        ],
    )?;
    run(
        "openssl",
        &[
            "x509",
            "-in",
            crt.as_str(),
            "-outform",
            "DER",
            "-out",
            cer.as_str(),
        ],
    )?;
    Ok(())
}

fn uuid_v4() -> Result<String, SbError> {
    let p = Utf8Path::new("/proc/sys/kernel/random/uuid");
    Ok(std::fs::read_to_string(p)
        .map_err(io_err(p, "read"))?
        .trim()
        .to_string())
}
