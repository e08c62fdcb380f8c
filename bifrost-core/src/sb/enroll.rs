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

/// The variables `enroll` writes, in the order it writes them, each with
/// its GUID and the key that signs its update: db is signed by KEK, KEK and
/// PK by PK, the order a firmware leaving setup mode would check them in.
pub const VARS: [Var; 3] = [
    Var::new("db", DB_GUID, "KEK"),
    Var::new("KEK", GLOBAL_GUID, "PK"),
    Var::new("PK", GLOBAL_GUID, "PK"),
];

/// A Secure Boot variable `enroll` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    pub guid: &'static str,
    /// The key (of `bifrost sb keys --firmware`) that signs its update.
    pub signer: &'static str,
}

impl Var {
    const fn new(name: &'static str, guid: &'static str, signer: &'static str) -> Var {
        Var { name, guid, signer }
    }
}

/// What is checked before any list is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preconditions {
    /// SetupMode's data; None when there is no such variable.
    pub setup_mode: Option<Vec<u8>>,
    /// The files of [`key_files`] that are not regular files, in its order.
    pub absent: Vec<Utf8PathBuf>,
}

/// One variable's signature lists as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub var: Var,
    /// The list `bifrost sb keys --firmware` made (`VAR.esl`).
    pub ours: Vec<u8>,
    /// What the firmware holds now (empty when absent); read only with
    /// `--microsoft`, and never for PK.
    pub current: Option<Vec<u8>>,
}

/// One update to sign: the list the variable will hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub var: Var,
    pub esl: Vec<u8>,
}

/// The files of `bifrost sb keys --firmware` that enrolling needs.
pub fn key_files(keys: &Utf8Path) -> Vec<Utf8PathBuf> {
    ["PK", "KEK", "db"]
        .iter()
        .flat_map(|n| ["key", "crt", "esl"].map(|e| keys.join(format!("{n}.{e}"))))
        .collect()
}

/// Read SetupMode and which key files are missing.
pub fn read_preconditions(o: &EnrollOptions) -> Preconditions {
    Preconditions {
        setup_mode: efivars::read(&o.efivars, "SetupMode", GLOBAL_GUID).map(|(_, d)| d),
        absent: key_files(&o.keys)
            .into_iter()
            .filter(|p| !p.is_file())
            .collect(),
    }
}

/// Only firmware in setup mode takes new keys, and only a complete key set
/// is enrolled.
pub fn check_preconditions(efivars: &Utf8Path, p: &Preconditions) -> Result<(), SbError> {
    let Some(mode) = &p.setup_mode else {
        return Err(SbError::Refused(format!(
            "{efivars}: no SetupMode variable: not a UEFI system, or efivarfs is not mounted there (mount -t efivarfs efivarfs /sys/firmware/efi/efivars); nothing was written"
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
    match p.absent.first() {
        Some(path) => Err(SbError::Missing {
            what: "key file (made by `bifrost sb keys --firmware`)",
            path: path.to_string(),
        }),
        None => Ok(()),
    }
}

/// Read our list of each variable, and with `--microsoft` what the
/// firmware's db and KEK hold now.
pub fn read_lists(o: &EnrollOptions) -> Result<Vec<List>, SbError> {
    VARS.iter()
        .map(|&var| {
            let ours = std::fs::read(o.keys.join(format!("{}.esl", var.name)))
                .map_err(io_err(&o.keys, "read"))?;
            let current = (o.microsoft && var.name != "PK").then(|| {
                efivars::read(&o.efivars, var.name, var.guid)
                    .map(|(_, d)| d)
                    .unwrap_or_default()
            });
            Ok(List { var, ours, current })
        })
        .collect()
}

/// What the firmware's `var` holds that `--microsoft` keeps: how many
/// certificates, refused when none is Microsoft's.
pub fn kept_certificates(var: &str, current: &[u8]) -> Result<usize, SbError> {
    if !current.windows(9).any(|w| w == b"Microsoft") {
        return Err(SbError::Refused(format!(
            "--microsoft: the firmware's {var} holds no Microsoft certificate to keep (setup mode cleared it); \
restore the factory keys in the firmware setup first, or enroll without --microsoft (then other systems' shims and option ROMs will not start). Nothing was written."
        )));
    }
    Ok(efivars::x509_fingerprints(current).len())
}

/// Each variable's new list (ours, then the firmware's kept entries) and
/// how many entries were kept.
pub fn updates(lists: &[List]) -> Result<(Vec<Update>, usize), SbError> {
    let mut kept = 0;
    let mut out = vec![];
    for l in lists {
        let mut esl = l.ours.clone();
        if let Some(current) = &l.current {
            kept += kept_certificates(l.var.name, current)?;
            esl.extend_from_slice(current);
        }
        out.push(Update { var: l.var, esl });
    }
    Ok((out, kept))
}

/// Sign each update with its signer's key (`sign-efi-sig-list`): the
/// authenticated variable data to write.
fn sign(keys: &Utf8Path, updates: &[Update]) -> Result<Vec<Vec<u8>>, SbError> {
    let work = tempfile::tempdir().map_err(io_err(keys, "create temp folder"))?;
    let w = Utf8Path::from_path(work.path()).expect("UTF-8 temp path");
    updates
        .iter()
        .map(|u| {
            let (var, signer) = (u.var.name, u.var.signer);
            let esl = w.join(format!("{var}.esl"));
            std::fs::write(&esl, &u.esl).map_err(io_err(&esl, "write"))?;
            let auth = w.join(format!("{var}.auth"));
            run(
                "sign-efi-sig-list",
                &[
                    "-k",
                    keys.join(format!("{signer}.key")).as_str(),
                    "-c",
                    keys.join(format!("{signer}.crt")).as_str(),
                    var,
                    esl.as_str(),
                    auth.as_str(),
                ],
            )?;
            Ok(std::fs::read(&auth).map_err(io_err(&auth, "read"))?)
        })
        .collect()
}

/// Write db, KEK, then PK (which ends setup mode), each a signed update made
/// with the keys in `o.keys`. Refuses unless the firmware is in setup mode.
pub fn enroll(o: &EnrollOptions) -> Result<EnrollReport, SbError> {
    check_preconditions(&o.efivars, &read_preconditions(o))?;
    let (updates, kept) = updates(&read_lists(o)?)?;
    // Everything is signed before the first write: a failure before here
    // leaves the firmware untouched.
    let signed = sign(&o.keys, &updates)?;
    let mut written = vec![];
    for (u, data) in updates.iter().zip(signed) {
        efivars::write(
            &o.efivars,
            u.var.name,
            u.var.guid,
            efivars::AUTH_ATTRS,
            &data,
        )?;
        written.push(u.var.name.to_string());
    }
    Ok(EnrollReport { written, kept })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sb::efivars::tests::esl;

    fn ready() -> Preconditions {
        Preconditions {
            setup_mode: Some(vec![1]),
            absent: vec![],
        }
    }

    #[test]
    fn key_files_are_each_keys_key_cert_and_list() {
        let files = key_files(Utf8Path::new("k"));
        assert_eq!(files.len(), 9);
        assert_eq!(files[0], "k/PK.key");
        assert_eq!(files[5], "k/KEK.esl");
        assert_eq!(files[8], "k/db.esl");
    }

    #[test]
    fn only_setup_mode_with_every_key_file_goes_on() {
        let efivars = Utf8Path::new("/vars");
        assert!(check_preconditions(efivars, &ready()).is_ok());
        let none = Preconditions {
            setup_mode: None,
            ..ready()
        };
        let err = check_preconditions(efivars, &none).unwrap_err().to_string();
        assert!(err.starts_with("/vars: no SetupMode variable"), "{err}");
        // A set SetupMode wins over missing key files: the firmware's refusal
        // is what the user must fix first.
        let user = Preconditions {
            setup_mode: Some(vec![0]),
            absent: vec!["k/PK.key".into()],
        };
        let err = check_preconditions(efivars, &user).unwrap_err().to_string();
        assert!(
            err.contains("not in setup mode") && err.contains("enroll-mok"),
            "{err}"
        );
        let empty = Preconditions {
            setup_mode: Some(vec![]),
            ..ready()
        };
        assert!(check_preconditions(efivars, &empty).is_err());
        let missing = Preconditions {
            absent: vec!["k/KEK.crt".into(), "k/db.esl".into()],
            ..ready()
        };
        let err = check_preconditions(efivars, &missing).unwrap_err();
        assert!(
            matches!(&err, SbError::Missing { path, .. } if path == "k/KEK.crt"),
            "{err}"
        );
    }

    #[test]
    fn microsoft_is_kept_only_when_the_firmware_holds_it() {
        let theirs = esl(&[b"CN=Microsoft Corporation KEK CA", b"CN=other"]);
        assert_eq!(kept_certificates("KEK", &theirs).unwrap(), 2);
        let err = kept_certificates("KEK", &esl(&[b"CN=vendor"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--microsoft: the firmware's KEK holds no Microsoft certificate"),
            "{err}"
        );
        assert!(kept_certificates("db", &[]).is_err());
    }

    fn lists(current: Option<Vec<u8>>) -> Vec<List> {
        VARS.iter()
            .map(|&var| List {
                var,
                ours: var.name.as_bytes().to_vec(),
                current: (var.name != "PK").then(|| current.clone()).flatten(),
            })
            .collect()
    }

    #[test]
    fn updates_are_ours_then_the_kept_lists_in_write_order() {
        let (u, kept) = updates(&lists(None)).unwrap();
        assert_eq!(kept, 0);
        let order: Vec<_> = u.iter().map(|u| (u.var.name, u.var.signer)).collect();
        assert_eq!(order, vec![("db", "KEK"), ("KEK", "PK"), ("PK", "PK")]);
        assert!(u.iter().all(|u| u.esl == u.var.name.as_bytes()));

        let ms = esl(&[b"Microsoft Corporation UEFI CA"]);
        let (u, kept) = updates(&lists(Some(ms.clone()))).unwrap();
        assert_eq!(kept, 2);
        assert_eq!(u[0].esl, [b"db".as_slice(), &ms].concat());
        assert_eq!(u[1].esl, [b"KEK".as_slice(), &ms].concat());
        assert_eq!(u[2].esl, b"PK");

        // One list without Microsoft's certificate refuses the whole set.
        let mut l = lists(Some(ms));
        l[1].current = Some(vec![]);
        assert!(updates(&l).is_err());
    }
}
