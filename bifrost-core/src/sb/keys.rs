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

/// What is at the target before anything is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The first of [`planned_files`] that exists (a link counts).
    pub taken: Option<Utf8PathBuf>,
    /// Whether `--dir` is absent, a folder (or a link to one), or anything else.
    pub dir: DirKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    Absent,
    Folder,
    Other,
}

/// One command line that makes a key file: program and arguments.
pub type Line = (&'static str, Vec<String>);

/// Read what is at the target.
pub fn read(o: &KeysOptions, files: &[Utf8PathBuf]) -> Target {
    Target {
        taken: files.iter().find(|f| f.symlink_metadata().is_ok()).cloned(),
        dir: if o.dir.is_dir() {
            DirKind::Folder
        } else if o.dir.symlink_metadata().is_ok() {
            DirKind::Other
        } else {
            DirKind::Absent
        },
    }
}

/// Nothing is overwritten, and `--dir` is a folder or made one.
pub fn check_target(o: &KeysOptions, t: &Target) -> Result<(), SbError> {
    if let Some(f) = &t.taken {
        return Err(SbError::Exists(f.to_string()));
    }
    if t.dir == DirKind::Other {
        return Err(SbError::Refused(format!("--dir {} is not a folder", o.dir)));
    }
    Ok(())
}

/// The commands that make every planned file in the work folder `w`, in
/// order: the signing key pair, then with `--firmware` the PK/KEK/db pairs
/// and their signature lists (`owner` GUID) and signed updates.
pub fn commands(o: &KeysOptions, w: &Utf8Path, owner: Option<&str>) -> Vec<Line> {
    let mut v = pair(w, &o.name, &o.common_name).to_vec();
    let (true, Some(owner)) = (o.firmware, owner) else {
        return v;
    };
    for n in ["PK", "KEK", "db"] {
        v.extend(pair(w, n, &format!("{} {n}", o.common_name)));
    }
    let file = |n: &str, e: &str| w.join(format!("{n}.{e}")).to_string();
    for (n, signer) in [("PK", "PK"), ("KEK", "PK"), ("db", "KEK")] {
        let (crt, esl, auth) = (file(n, "crt"), file(n, "esl"), file(n, "auth"));
        let (key, by) = (file(signer, "key"), file(signer, "crt"));
        v.push(("cert-to-efi-sig-list", strings(&["-g", owner, &crt, &esl])));
        let update = ["-g", owner, "-k", &key, "-c", &by, n, &esl, &auth];
        v.push(("sign-efi-sig-list", strings(&update)));
    }
    v
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A key and its self-signed certificate in PEM (`NAME.key`, `NAME.crt`),
/// and the certificate in DER (`NAME.cer`).
fn pair(dir: &Utf8Path, name: &str, cn: &str) -> [Line; 2] {
    let file = |e: &str| dir.join(format!("{name}.{e}")).to_string();
    let (key, crt, cer) = (file("key"), file("crt"), file("cer"));
    let subject = format!("/CN={cn}/");
    let req = [
        "req", "-new", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-days", DAYS, "-subj",
        &subject, "-keyout", &key, "-out", &crt,
    ];
    let der = ["x509", "-in", &crt, "-outform", "DER", "-out", &cer];
    [("openssl", strings(&req)), ("openssl", strings(&der))]
}

/// Private keys are the owner's alone; certificates and lists are public.
pub fn mode(file_name: &str) -> u32 {
    if file_name.ends_with(".key") {
        0o600
    } else {
        0o644
    }
}

/// Move each finished file from `w` into place with its [`mode`]. A file
/// that appeared meanwhile is not replaced: link fails on it.
fn install(w: &Utf8Path, files: &[Utf8PathBuf]) -> Result<(), SbError> {
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        let name = f.file_name().expect("planned files have names");
        let src = w.join(name);
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(mode(name)))
            .map_err(io_err(&src, "chmod"))?;
        std::fs::hard_link(&src, f).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SbError::Exists(f.to_string())
            } else {
                io_err(f, "create")(e).into()
            }
        })?;
    }
    Ok(())
}

/// Create the keys; refuses when any file exists, writes nothing then.
pub fn create(o: &KeysOptions) -> Result<KeysReport, SbError> {
    use std::os::unix::fs::PermissionsExt;
    check_name(&o.name)?;
    let files = planned_files(o);
    check_target(o, &read(o, &files))?;
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
    // A random owner GUID for the signature lists, as sbctl does.
    let owner = if o.firmware { Some(uuid_v4()?) } else { None };
    for (program, args) in commands(o, w, owner.as_deref()) {
        run(
            program,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
    }
    install(w, &files)?;
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

fn uuid_v4() -> Result<String, SbError> {
    let p = Utf8Path::new("/proc/sys/kernel/random/uuid");
    Ok(std::fs::read_to_string(p)
        .map_err(io_err(p, "read"))?
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(firmware: bool) -> KeysOptions {
        KeysOptions {
            dir: "/k".into(),
            name: "mok".into(),
            common_name: "CN".into(),
            firmware,
        }
    }

    #[test]
    fn refuses_a_taken_file_first_then_a_dir_that_is_no_folder() {
        let o = opts(false);
        let t = |taken: Option<&str>, dir| Target {
            taken: taken.map(Utf8PathBuf::from),
            dir,
        };
        assert!(check_target(&o, &t(None, DirKind::Absent)).is_ok());
        assert!(check_target(&o, &t(None, DirKind::Folder)).is_ok());
        let err = check_target(&o, &t(Some("/k/mok.crt"), DirKind::Other)).unwrap_err();
        assert!(
            matches!(&err, SbError::Exists(f) if f == "/k/mok.crt"),
            "{err}"
        );
        let err = check_target(&o, &t(None, DirKind::Other)).unwrap_err();
        assert_eq!(err.to_string(), "--dir /k is not a folder");
    }

    fn line(l: &Line) -> String {
        format!("{} {}", l.0, l.1.join(" "))
    }

    #[test]
    fn the_signing_pair_is_rsa_2048_sha256_pem_then_der() {
        let v = commands(&opts(false), Utf8Path::new("/w"), None);
        let v: Vec<String> = v.iter().map(line).collect();
        assert_eq!(
            v,
            [
                "openssl req -new -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 -subj /CN=CN/ -keyout /w/mok.key -out /w/mok.crt",
                "openssl x509 -in /w/mok.crt -outform DER -out /w/mok.cer",
            ]
        );
        // An owner GUID alone does not make the firmware set.
        assert_eq!(
            commands(&opts(false), Utf8Path::new("/w"), Some("g")).len(),
            2
        );
    }

    #[test]
    fn firmware_keys_make_each_pair_then_lists_signed_pk_pk_kek() {
        let v = commands(&opts(true), Utf8Path::new("/w"), Some("g"));
        let v: Vec<String> = v.iter().map(line).collect();
        assert_eq!(v.len(), 14);
        for (i, n) in [(2, "PK"), (4, "KEK"), (6, "db")] {
            let made = format!("-subj /CN=CN {n}/ -keyout /w/{n}.key -out /w/{n}.crt");
            assert!(v[i].ends_with(&made), "{}", v[i]);
        }
        assert_eq!(
            v[8..],
            [
                "cert-to-efi-sig-list -g g /w/PK.crt /w/PK.esl",
                "sign-efi-sig-list -g g -k /w/PK.key -c /w/PK.crt PK /w/PK.esl /w/PK.auth",
                "cert-to-efi-sig-list -g g /w/KEK.crt /w/KEK.esl",
                "sign-efi-sig-list -g g -k /w/PK.key -c /w/PK.crt KEK /w/KEK.esl /w/KEK.auth",
                "cert-to-efi-sig-list -g g /w/db.crt /w/db.esl",
                "sign-efi-sig-list -g g -k /w/KEK.key -c /w/KEK.crt db /w/db.esl /w/db.auth",
            ]
        );
    }

    #[test]
    fn only_private_keys_are_the_owners_alone() {
        assert_eq!(mode("mok.key"), 0o600);
        assert_eq!(mode("PK.key"), 0o600);
        assert_eq!(mode("mok.crt"), 0o644);
        assert_eq!(mode("db.auth"), 0o644);
    }
}
