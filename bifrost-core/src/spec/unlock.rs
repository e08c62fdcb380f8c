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
