//! `bifrost tpm enroll` as the user asked for it: the flags and host
//! settings decide the binding ([`super::binding`]), the passphrase comes
//! from `--key-file` or the terminal, then [`super::enroll`] runs.

use super::{binding, binds_secure_boot, enroll, record, EnrollOptions, Machine, Status, TpmError};
use crate::install::secret::Secret;
use camino::Utf8PathBuf;

/// The flags of `bifrost tpm enroll`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrollRequest {
    /// The LUKS2 partition.
    pub device: Utf8PathBuf,
    /// `--pcrs`: the PCR list as given; `None` takes it from the host settings.
    pub pcrs: Option<String>,
    /// `--settings`: the host settings to read when `--pcrs` is not given.
    pub settings: Option<Utf8PathBuf>,
    /// `--pin` (implied by `--pin-file`).
    pub pin: bool,
    pub pin_file: Option<Utf8PathBuf>,
    pub recovery_key: bool,
    /// `--key-file`: the current passphrase; `None` asks on the terminal.
    pub key_file: Option<Utf8PathBuf>,
}

/// A finished enrollment: the container's slots now, and what the user
/// should know about the binding chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub status: Status,
    pub notes: Vec<String>,
}

/// Resolve the binding, then enroll. `say` hears, as they happen, which
/// PCRs were chosen and why (`sealing to …`), notes about the settings
/// (`note: …`) and each step of the enrollment.
pub fn enroll_as_asked(
    m: &mut dyn Machine,
    req: &EnrollRequest,
    say: &mut dyn FnMut(&str),
) -> Result<Enrolled, TpmError> {
    let binding = binding::resolve(
        req.pcrs.as_deref(),
        req.pin || req.pin_file.is_some(),
        req.settings.as_deref(),
    )?;
    say(&format!("sealing to {}", binding.source));
    for note in &binding.notes {
        say(&format!("note: {note}"));
    }
    let prompt = format!("Passphrase of {}", req.device);
    let mut secret = || match &req.key_file {
        Some(f) => Secret::from_key_file(f),
        None => Secret::prompt(&prompt, false),
    };
    let opts = EnrollOptions {
        device: req.device.clone(),
        pcrs: binding.pcrs,
        pin: binding.pin,
        pin_file: req.pin_file.clone(),
        recovery_key: req.recovery_key,
    };
    let status = enroll(m, &opts, &mut secret, say)?;
    let mut notes = record::notes(&status);
    if !binds_secure_boot(&opts.pcrs) {
        notes.push(
            "PCR 7 (the Secure Boot state) is not bound; the key does not depend on Secure Boot"
                .to_owned(),
        );
    }
    Ok(Enrolled { status, notes })
}
