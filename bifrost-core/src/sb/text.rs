//! What `bifrost sb` prints for people: each report's text form (their JSON
//! form is their `Serialize`).

use super::enroll::{EnrollReport, MOK_NEXT_BOOT};
use super::keys::{KeysReport, MadeKeys};
use super::place::Placed;
use super::verify::{Role, Verification};
use camino::Utf8Path;
use std::fmt;

impl fmt::Display for KeysReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key:         {} (private: keep it secret, off the ESP)",
            self.key
        )?;
        writeln!(
            f,
            "certificate: {} (PEM), {} (DER)",
            self.cert, self.cert_der
        )?;
        writeln!(f, "SHA-256:     {}", self.fingerprint)?;
        for file in &self.firmware {
            writeln!(f, "firmware:    {file}")?;
        }
        writeln!(
            f,
            "next: sign with `bifrost esp install … --sign-key {} --sign-cert {}`, then enroll with `bifrost sb enroll-mok --cert {}`",
            self.key, self.cert, self.cert_der
        )
    }
}

impl fmt::Display for Placed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self {
            Placed::Created { .. } => "created",
            Placed::Copied { .. } => "copied",
            Placed::Kept { .. } => "kept (already there)",
        };
        for file in self.files() {
            writeln!(f, "{verb}: {file}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MadeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MadeKeys::Created(r) => r.fmt(f),
            MadeKeys::Placed(p) => p.fmt(f),
        }
    }
}

impl Role {
    /// The role's name in `bifrost sb verify`'s text.
    pub fn label(self) -> &'static str {
        match self {
            Role::Shim => "shim",
            Role::MokManager => "mokmanager",
            Role::Refind => "refind",
            Role::Driver => "driver",
            Role::Kernel => "kernel",
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            let state = match (&file.problem, file.signed) {
                (Some(p), _) => format!("FAIL: {p}"),
                (None, None) => "ok (not signed by you: checked by the firmware)".into(),
                (None, Some(_)) => "ok: signed".into(),
            };
            let sbat = match file.sbat {
                Some(true) => ", has .sbat",
                _ => "",
            };
            writeln!(f, "{:<11} {}: {state}{sbat}", file.role.label(), file.path)?;
        }
        if self.files.is_empty() {
            writeln!(f, "no rEFInd install found on {}", self.esp)?;
        } else if self.ok() {
            writeln!(f, "every file is signed by {}", self.cert)?;
        }
        Ok(())
    }
}

impl fmt::Display for EnrollReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {} (kept {} certificates of the firmware's own)",
            self.written.join(", "),
            self.kept
        )?;
        writeln!(
            f,
            "the firmware has left setup mode; turn Secure Boot on in its setup"
        )
    }
}

/// What `bifrost sb enroll-mok` prints once `cert` is queued.
pub fn mok_queued(cert: &Utf8Path) -> String {
    format!("{cert} is queued for enrollment.\n{MOK_NEXT_BOOT}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sb::verify::FileCheck;

    fn check(path: &str, role: Role, signed: Option<bool>, problem: Option<&str>) -> FileCheck {
        FileCheck {
            path: path.into(),
            role,
            signed,
            sbat: (role == Role::Refind).then_some(true),
            ok: problem.is_none(),
            problem: problem.map(str::to_owned),
        }
    }

    #[test]
    fn verification_lists_each_file_then_the_verdict() {
        let mut v = Verification {
            esp: "/boot".into(),
            cert: "/k/mok.crt".into(),
            files: vec![
                check("EFI/BOOT/BOOTX64.EFI", Role::Shim, None, None),
                check("EFI/BOOT/grubx64.efi", Role::Refind, Some(true), None),
                check("EFI/BOOT/mmx64.efi", Role::MokManager, None, None),
            ],
        };
        insta::assert_snapshot!(v.to_string());
        v.files.push(check(
            "EFI/nixos/k.efi",
            Role::Kernel,
            Some(false),
            Some("not signed"),
        ));
        let text = v.to_string();
        assert!(
            text.ends_with("kernel      EFI/nixos/k.efi: FAIL: not signed\n"),
            "{text}"
        );
        assert!(!text.contains("every file is signed"));
        v.files.clear();
        assert_eq!(v.to_string(), "no rEFInd install found on /boot\n");
    }

    #[test]
    fn keys_and_placed_name_every_file() {
        let r = KeysReport {
            key: "/k/mok.key".into(),
            cert: "/k/mok.crt".into(),
            cert_der: "/k/mok.cer".into(),
            fingerprint: "AB:CD".into(),
            firmware: vec!["/k/PK.key".into()],
        };
        insta::assert_snapshot!(MadeKeys::Created(r).to_string());
        let p = Placed::Kept {
            files: vec!["/k/mok.key".into(), "/k/mok.crt".into()],
        };
        assert_eq!(
            MadeKeys::Placed(p).to_string(),
            "kept (already there): /k/mok.key\nkept (already there): /k/mok.crt\n"
        );
    }

    #[test]
    fn enrollment_reports() {
        let r = EnrollReport {
            written: vec!["db".into(), "KEK".into(), "PK".into()],
            kept: 2,
        };
        assert_eq!(
            r.to_string(),
            "wrote db, KEK, PK (kept 2 certificates of the firmware's own)\n\
             the firmware has left setup mode; turn Secure Boot on in its setup\n"
        );
        let q = mok_queued(Utf8Path::new("/k/mok.cer"));
        assert!(q.starts_with("/k/mok.cer is queued for enrollment.\nAt the next boot"));
        assert!(q.ends_with("\"Reboot\".\n"));
    }
}
