//! Checks of `storage.luks.unlock`: errors for settings that cannot work,
//! warnings for settings that work but do not protect what they seem to.

use super::{HostSettings, Problem, UnlockMethod};

/// A TPM 2.0 (PC Client profile) has PCRs 0 to 23.
pub const MAX_PCR: u8 = 23;
/// The PCR that holds the Secure Boot state (policy, PK, KEK, db, dbx).
pub const SECURE_BOOT_PCR: u8 = 7;

const PCRS: &str = "storage.luks.unlock.tpm2Pcrs";

/// Settings of the unlock method that cannot work.
pub(super) fn problems(s: &HostSettings) -> Vec<Problem> {
    let unlock = &s.storage.luks.unlock;
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (i, &pcr) in unlock.tpm2_pcrs.iter().enumerate() {
        let path = format!("{PCRS}[{i}]");
        if pcr > MAX_PCR {
            out.push(Problem {
                path,
                message: format!(
                    "PCR {pcr} does not exist; a TPM 2.0 has PCRs 0 to {MAX_PCR} (7 is the Secure Boot state)"
                ),
            });
        } else if seen.contains(&pcr) {
            out.push(Problem {
                path,
                message: format!("PCR {pcr} is listed more than once; keep one"),
            });
        } else {
            seen.push(pcr);
        }
    }
    if unlock.method.uses_tpm2() && unlock.tpm2_pcrs.is_empty() {
        out.push(Problem {
            path: PCRS.into(),
            message: format!(
                "must name at least one PCR when storage.luks.unlock.method is {}: with none the TPM releases the key to any boot chain; use [7] (the Secure Boot state)",
                method_name(unlock.method)
            ),
        });
    }
    out
}

/// Settings that work but give less protection than they appear to.
pub(super) fn warnings(s: &HostSettings) -> Vec<Problem> {
    let unlock = &s.storage.luks.unlock;
    let mut out = Vec::new();
    if !unlock.method.uses_tpm2() {
        return out;
    }
    if unlock.tpm2_pcrs.contains(&SECURE_BOOT_PCR) && !s.security.secure_boot.enable {
        out.push(Problem {
            path: "security.secureBoot.enable".into(),
            message: format!(
                "is false while storage.luks.unlock.method is {} bound to PCR 7: without Secure Boot, PCR 7 stays the same when the boot chain changes, so the TPM releases the key to any kernel or initrd; set security.secureBoot.enable to true (then run `bifrost tpm enroll` again), or use method \"tpm2-pin\"",
                method_name(unlock.method)
            ),
        });
    } else if !unlock.tpm2_pcrs.contains(&SECURE_BOOT_PCR) {
        out.push(Problem {
            path: PCRS.into(),
            message: format!(
                "does not include PCR 7 (the Secure Boot state): the TPM key is not bound to Secure Boot; add 7 unless another PCR binds the boot chain, got {:?}",
                unlock.tpm2_pcrs
            ),
        });
    }
    out
}

fn method_name(m: UnlockMethod) -> &'static str {
    match m {
        UnlockMethod::Passphrase => "\"passphrase\"",
        UnlockMethod::Tpm2 => "\"tpm2\"",
        UnlockMethod::Tpm2Pin => "\"tpm2-pin\"",
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{from_slice, warnings};

    fn doc(unlock: &str, secure_boot: bool) -> Vec<u8> {
        format!(
            r#"{{"hostName": "h", "hardware": {{"profile": "generic-x86_64-uefi"}},
                "storage": {{"luks": {{"device": "/dev/vda2", "unlock": {unlock}}},
                             "subvolumes": [{{"name": "@", "mountPoint": "/"}}]}},
                "users": [{{"name": "alice", "admin": true}}],
                "security": {{"secureBoot": {{"enable": {secure_boot}, "keysPath": "/etc/secureboot", "route": "own-keys"}}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn pcr_7_without_secure_boot_is_a_warning_naming_the_field() {
        let s = from_slice(&doc(r#"{"method": "tpm2"}"#, false)).unwrap();
        let w = warnings(&s);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "security.secureBoot.enable");
        assert!(w[0].message.contains("PCR 7"), "{}", w[0].message);
        let s = from_slice(&doc(r#"{"method": "tpm2-pin", "tpm2Pcrs": [7]}"#, true)).unwrap();
        assert!(warnings(&s).is_empty());
        // Passphrase only: nothing to warn about, whatever the PCRs say.
        let s = from_slice(&doc(r#"{"tpm2Pcrs": [0]}"#, false)).unwrap();
        assert!(warnings(&s).is_empty());
        // A TPM key bound to no Secure Boot state at all.
        let s = from_slice(&doc(r#"{"method": "tpm2", "tpm2Pcrs": [0, 2]}"#, true)).unwrap();
        let w = warnings(&s);
        assert_eq!(w[0].path, "storage.luks.unlock.tpm2Pcrs");
    }

    #[test]
    fn impossible_pcr_lists_are_errors() {
        let e =
            from_slice(&doc(r#"{"method": "tpm2", "tpm2Pcrs": [7, 24, 7]}"#, true)).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "storage.luks.unlock.tpm2Pcrs[1]",
                "storage.luks.unlock.tpm2Pcrs[2]"
            ]
        );
        let e = from_slice(&doc(r#"{"method": "tpm2", "tpm2Pcrs": []}"#, true)).unwrap_err();
        assert_eq!(e[0].path, "storage.luks.unlock.tpm2Pcrs");
        assert!(e[0].message.contains("[7]"));
        let e = from_slice(&doc(r#"{"method": "tpm3"}"#, true)).unwrap_err();
        assert_eq!(e[0].path, "storage.luks.unlock.method", "{e:?}");
    }
}
