//! Enrollment: the user's certificate into shim's MOK list (through
//! MokManager at the next boot, as `mokutil --import` queues it), or the
//! user's own PK/KEK/db into firmware in setup mode.

use super::{efivars, run, SbError, DB_GUID, GLOBAL_GUID};
use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// What the next boot asks after `enroll-mok`, for the user.
pub const MOK_NEXT_BOOT: &str =
    "At the next boot shim's MokManager shows a blue \"Perform MOK management\" screen \
(press a key within 10 seconds, or it boots on without enrolling): choose \"Enroll MOK\", \
\"Continue\", \"Yes\", type the password you just set, then \"Reboot\".";

/// Queue `cert` (PEM or DER) for MokManager through `mokutil --import`,
/// which asks for a one-time password on this terminal.
pub fn enroll_mok(cert: &Utf8Path) -> Result<(), SbError> {
    if !cert.is_file() {
        return Err(SbError::Missing {
            what: "certificate",
            path: cert.to_string(),
        });
    }
    // mokutil takes DER only: convert whichever form was given.
    let tmp = tempfile::tempdir().map_err(io_err(cert, "create temp folder"))?;
    let der = Utf8PathBuf::from_path_buf(tmp.path().join("mok.cer")).expect("UTF-8 temp path");
    let converted = ["PEM", "DER"].iter().any(|inform| {
        run(
            "openssl",
            &[
                "x509",
                "-inform",
                inform,
                "-in",
                cert.as_str(),
                "-outform",
                "DER",
                "-out",
                der.as_str(),
            ],
        )
        .is_ok()
    });
    if !converted {
        return Err(SbError::BadFormat {
            what: "certificate",
            path: cert.to_string(),
            expected: "an X.509 certificate (PEM or DER)",
            detail: "openssl cannot read it".into(),
        });
    }
    // Interactive: mokutil reads the password from this terminal.
    let status = crate::process::Cmd::new("mokutil", ["--import", der.as_str()])
        .interactive()
        .output()
        .map_err(|e| SbError::ToolMissing {
            program: "mokutil".into(),
            package: "mokutil",
            detail: e.into_io().to_string(),
        })?
        .status;
    if !status.success() {
        return Err(SbError::Refused(format!(
            "`mokutil --import {cert}` failed ({status}); its message is above"
        )));
    }
    Ok(())
}

/// Options of `bifrost sb enroll`.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// Folder of `bifrost sb keys --firmware`: PK/KEK/db .key, .crt, .esl.
    pub keys: Utf8PathBuf,
    /// Keep the Microsoft certificates the firmware's db and KEK hold.
    pub microsoft: bool,
    /// efivarfs (or a folder standing in for it).
    pub efivars: Utf8PathBuf,
}

/// What `enroll` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollReport {
    /// Variables written, in order.
    pub written: Vec<String>,
    /// Entries kept from the firmware's own lists (--microsoft).
    pub kept: usize,
}

/// Write db, KEK, then PK (which ends setup mode), each a signed update made
/// with the keys in `o.keys`. Refuses unless the firmware is in setup mode.
pub fn enroll(o: &EnrollOptions) -> Result<EnrollReport, SbError> {
    let Some((_, mode)) = efivars::read(&o.efivars, "SetupMode", GLOBAL_GUID) else {
        return Err(SbError::Refused(format!(
            "{}: no SetupMode variable: not a UEFI system, or efivarfs is not mounted there (mount -t efivarfs efivarfs /sys/firmware/efi/efivars); nothing was written",
            o.efivars
        )));
    };
    if mode.first() != Some(&1) {
        return Err(SbError::Refused(
            "the firmware is not in setup mode: its platform key (PK) is set, so it takes no new keys. \
In the firmware setup, clear the Secure Boot keys (\"Reset to Setup Mode\" or \"Delete all keys\"), \
then run this again. Firmware without that option (such as the Surface's) takes keys only through shim: \
use `bifrost sb enroll-mok`. Nothing was written."
                .into(),
        ));
    }
    for n in ["PK", "KEK", "db"] {
        for e in ["key", "crt", "esl"] {
            let p = o.keys.join(format!("{n}.{e}"));
            if !p.is_file() {
                return Err(SbError::Missing {
                    what: "key file (made by `bifrost sb keys --firmware`)",
                    path: p.to_string(),
                });
            }
        }
    }
    let work = tempfile::tempdir().map_err(io_err(&o.keys, "create temp folder"))?;
    let w = Utf8Path::from_path(work.path()).expect("UTF-8 temp path");
    let mut kept = 0;
    let mut updates = vec![];
    // db is signed by KEK, KEK and PK by PK: the order a firmware leaving
    // setup mode would check them in.
    for (var, guid, signer) in [
        ("db", DB_GUID, "KEK"),
        ("KEK", GLOBAL_GUID, "PK"),
        ("PK", GLOBAL_GUID, "PK"),
    ] {
        let mut esl =
            std::fs::read(o.keys.join(format!("{var}.esl"))).map_err(io_err(&o.keys, "read"))?;
        if o.microsoft && var != "PK" {
            let current = efivars::read(&o.efivars, var, guid)
                .map(|(_, d)| d)
                .unwrap_or_default();
            let n = efivars::x509_fingerprints(&current).len();
            let microsoft = current.windows(9).any(|w| w == b"Microsoft");
            if !microsoft {
                return Err(SbError::Refused(format!(
                    "--microsoft: the firmware's {var} holds no Microsoft certificate to keep (setup mode cleared it); \
restore the factory keys in the firmware setup first, or enroll without --microsoft (then other systems' shims and option ROMs will not start). Nothing was written."
                )));
            }
            esl.extend_from_slice(&current);
            kept += n;
        }
        let esl_path = w.join(format!("{var}.esl"));
        std::fs::write(&esl_path, &esl).map_err(io_err(&esl_path, "write"))?;
        let auth = w.join(format!("{var}.auth"));
        run(
            "sign-efi-sig-list",
            &[
                "-k",
                o.keys.join(format!("{signer}.key")).as_str(),
                "-c",
                o.keys.join(format!("{signer}.crt")).as_str(),
                var,
                esl_path.as_str(),
                auth.as_str(),
            ],
        )?;
        updates.push((
            var,
            guid,
            std::fs::read(&auth).map_err(io_err(&auth, "read"))?,
        ));
    }
    // Everything is signed before the first write: a failure above leaves
    // the firmware untouched.
    let mut written = vec![];
    for (var, guid, data) in updates {
        efivars::write(&o.efivars, var, guid, efivars::AUTH_ATTRS, &data)?;
        written.push(var.to_string());
    }
    Ok(EnrollReport { written, kept })
}
