//! Unlock the LUKS2 pool with the TPM: enroll a TPM2 key slot through
//! `systemd-cryptenroll`, keeping the passphrase, and show what each slot is.
//!
//! - [`slots`]: pure; the key slots of a LUKS2 header and what opens each.
//! - [`header`]: pure; LUKS1, LUKS2 or not LUKS, from the first bytes.
//! - [`record`]: which TPM2 slots bifrost enrolled on this system; only
//!   those are replaced on re-enrollment (another OS's slot stays).
//! - [`run`]: the one place that touches the machine ([`RealMachine`]).
//!
//! The passphrase that unlocks the container reaches systemd-cryptenroll
//! as its `--unlock-key-file` `/proc/self/fd/N`, an anonymous memory file
//! (memfd, mode 0600) it inherits, and cryptsetup on standard input: never
//! on a command line, in the environment, in a file system, in a log or in
//! the Nix store.
//!
//! The new PIN (`--pin`) is asked by bifrost (twice, no echo) or read from
//! `--pin-file`, and reaches systemd-cryptenroll in its environment as
//! `$NEWPIN`, the one way systemd 252 takes it without a terminal
//! (`get_pin()` in src/cryptenroll/cryptenroll-tpm2.c, which erases the
//! variable once read): never on a command line or in a file bifrost writes.

pub mod binding;
pub mod header;
pub mod machine;
pub mod record;
pub mod request;
pub mod slots;

pub use binding::{Binding, HOST_SETTINGS};
pub use machine::RealMachine;
pub use slots::{Slot, SlotKind};

use crate::install::secret::{Secret, SecretError};
use crate::spec::{SpecError, MAX_PCR, SECURE_BOOT_PCR};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// Where the kernel lists TPM 2.0 resource managers; systemd's
/// `--tpm2-device=auto` picks the one device listed here.
pub const TPMRM_CLASS: &str = "/sys/class/tpmrm";

/// Errors of this module. None carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("{0}; give the LUKS2 partition, such as /dev/nvme0n1p2")]
    Read(crate::fsutil::IoError),
    #[error("{device}: is not a LUKS container (no LUKS header at its start); give the encrypted partition, such as /dev/disk/by-partlabel/pool")]
    NotLuks { device: Utf8PathBuf },
    #[error("{device}: is LUKS{version}; a TPM2 key slot needs LUKS2 (its tokens record the PCRs). Back up the header (`cryptsetup luksHeaderBackup {device} --header-backup-file FILE`), then convert it with `cryptsetup convert --type luks2 {device}`; nothing was changed")]
    NotLuks2 { device: Utf8PathBuf, version: u16 },
    #[error("no TPM 2.0 found ({TPMRM_CLASS} is empty): turn the TPM on in the firmware settings (on a Surface: UEFI > Security > TPM); nothing was changed")]
    NoTpm,
    #[error("{device}: no passphrase or recovery-key slot (slots: {slots}): a TPM slot alone would leave nothing to open the pool with when the TPM refuses after a firmware or key change. Add a passphrase first (`cryptsetup luksAddKey {device}`); nothing was changed")]
    NoFallback { device: Utf8PathBuf, slots: String },
    #[error("{device}: the passphrase does not open it (no key slot matches); nothing was changed, run again with the right passphrase or recovery key")]
    WrongPassphrase { device: Utf8PathBuf },
    #[error("--pcrs {given:?}: {reason}; give PCR numbers 0 to {MAX_PCR} separated by ',' or '+', such as \"7\" (the Secure Boot state)")]
    BadPcrs { given: String, reason: String },
    #[error("more than one TPM found ({found}): bifrost cannot tell which one the firmware measures the boot into; enroll with systemd-cryptenroll --tpm2-device=/dev/tpmrmN yourself; nothing was changed")]
    ManyTpms { found: String },
    #[error("a PIN (--pin, or storage.luks.unlock.method \"tpm2-pin\" in the host settings) is asked on the terminal, and standard input is not one: run bifrost tpm enroll from a terminal, or give --pin-file FILE; nothing was changed")]
    PinNeedsTerminal,
    #[error("the new PIN {reason}; choose another; nothing was changed")]
    BadPin { reason: &'static str },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("no --pcrs given and the host settings {path} cannot tell the PCRs; fix the file, name another with --settings FILE, or give --pcrs LIST")]
    Settings {
        path: Utf8PathBuf,
        #[source]
        source: Box<SpecError>,
    },
    #[error("{device}: {detail}")]
    Metadata { device: Utf8PathBuf, detail: String },
    #[error("{program} failed on {device}: {detail}")]
    Tool {
        program: &'static str,
        device: Utf8PathBuf,
        detail: String,
    },
    #[error("{device}: systemd-cryptenroll succeeded but the header shows no TPM2 slot bound to PCR {pcrs}; check `bifrost tpm status --device {device}`")]
    NotEnrolled { device: Utf8PathBuf, pcrs: String },
    #[error("{device}: the LUKS header has no UUID, which the record of bifrost's TPM2 slots is keyed by; nothing was changed")]
    NoUuid { device: Utf8PathBuf },
    #[error(transparent)]
    Record(#[from] record::RecordError),
    #[error("{device}: the TPM2 slot {slots} is enrolled and opens the pool, but bifrost could not record it as its own, so a later `bifrost tpm enroll` keeps it (remove it then with `systemd-cryptenroll --wipe-slot=N {device}`): {source}")]
    NotRecorded {
        device: Utf8PathBuf,
        slots: String,
        #[source]
        source: record::RecordError,
    },
}

/// What `bifrost tpm enroll` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollOptions {
    /// The LUKS2 partition.
    pub device: Utf8PathBuf,
    /// PCRs to seal the key to.
    pub pcrs: Vec<u8>,
    /// Whether the TPM also asks for a PIN.
    pub pin: bool,
    /// Read the new PIN from this file (one trailing newline dropped)
    /// instead of asking on the terminal.
    pub pin_file: Option<Utf8PathBuf>,
    /// Also enroll a recovery key, shown once by systemd-cryptenroll.
    pub recovery_key: bool,
}

/// What the enrollment needs from the machine.
pub trait Machine {
    /// The first [`header::HEADER_PREFIX`] bytes of `device` (fewer when it is shorter).
    fn header_prefix(&mut self, device: &Utf8Path) -> std::io::Result<Vec<u8>>;
    /// TPM 2.0 resource managers the kernel knows (names under [`TPMRM_CLASS`]).
    fn tpm_devices(&mut self) -> Vec<String>;
    /// `cryptsetup luksDump --dump-json-metadata device`.
    fn luks_json(&mut self, device: &Utf8Path) -> Result<String, String>;
    /// Whether `secret` opens a key slot of `device` (nothing is activated).
    fn passphrase_opens(&mut self, device: &Utf8Path, secret: &Secret) -> Result<bool, String>;
    /// Run `systemd-cryptenroll --unlock-key-file=<secret> args…`, its
    /// standard streams those of bifrost (recovery key), `$NEWPIN` set to
    /// `new_pin` (and removed when `None`).
    fn cryptenroll(
        &mut self,
        args: &[String],
        secret: &Secret,
        new_pin: Option<&Secret>,
    ) -> Result<(), String>;
    /// Ask for the new PIN on the terminal, twice, without echo.
    fn ask_new_pin(&mut self) -> Result<Secret, SecretError>;
    /// Whether standard input is a terminal.
    fn stdin_is_terminal(&mut self) -> bool;
    /// Where the record of bifrost's TPM2 slots is ([`record::RECORD_PATH`]).
    fn record_path(&self) -> Utf8PathBuf;
}

/// `bifrost tpm status`: the container's slots and whether a TPM is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub device: Utf8PathBuf,
    /// TPM 2.0 resource managers found (such as `tpmrm0`).
    pub tpm_devices: Vec<String>,
    pub slots: Vec<Slot>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: LUKS2, {} key slot(s)",
            self.device,
            self.slots.len()
        )?;
        for s in &self.slots {
            writeln!(f, "  {s}")?;
        }
        match self.tpm_devices.as_slice() {
            [] => writeln!(f, "TPM: none found ({TPMRM_CLASS} is empty)"),
            list => writeln!(f, "TPM: {}", list.join(", ")),
        }
    }
}

/// Parse a PCR list such as `7`, `7,11` or `0+7` (systemd's own form).
pub fn parse_pcrs(given: &str) -> Result<Vec<u8>, TpmError> {
    let bad = |reason: String| TpmError::BadPcrs {
        given: given.to_string(),
        reason,
    };
    let mut pcrs = Vec::new();
    for part in given.split([',', '+']).map(str::trim) {
        if part.is_empty() {
            return Err(bad("an empty entry".into()));
        }
        let n: u8 = part
            .parse()
            .ok()
            .filter(|n| *n <= MAX_PCR)
            .ok_or_else(|| bad(format!("{part:?} is not a PCR number")))?;
        if pcrs.contains(&n) {
            return Err(bad(format!("PCR {n} is listed twice")));
        }
        pcrs.push(n);
    }
    pcrs.sort_unstable();
    Ok(pcrs)
}

fn pcr_list(pcrs: &[u8]) -> String {
    pcrs.iter().map(u8::to_string).collect::<Vec<_>>().join("+")
}

/// The LUKS2 check every command starts with; the container's UUID.
fn require_luks2(m: &mut dyn Machine, device: &Utf8Path) -> Result<String, TpmError> {
    let prefix = m
        .header_prefix(device)
        .map_err(|e| TpmError::Read(crate::fsutil::IoError::new(device, "read", e)))?;
    match header::luks_version(&prefix) {
        None => Err(TpmError::NotLuks {
            device: device.to_owned(),
        }),
        Some(2) => header::luks_uuid(&prefix).ok_or_else(|| TpmError::NoUuid {
            device: device.to_owned(),
        }),
        Some(version) => Err(TpmError::NotLuks2 {
            device: device.to_owned(),
            version,
        }),
    }
}

fn read_slots(m: &mut dyn Machine, device: &Utf8Path) -> Result<Vec<Slot>, TpmError> {
    let json = m.luks_json(device).map_err(|detail| TpmError::Tool {
        program: "cryptsetup luksDump",
        device: device.to_owned(),
        detail,
    })?;
    slots::parse(&json).map_err(|detail| TpmError::Metadata {
        device: device.to_owned(),
        detail,
    })
}

/// The slots of `device` (those bifrost enrolled marked) and the TPMs present.
pub fn status(m: &mut dyn Machine, device: &Utf8Path) -> Result<Status, TpmError> {
    let uuid = require_luks2(m, device)?;
    let mut slots = read_slots(m, device)?;
    let rec = record::load(&m.record_path())?;
    record::mark(&mut slots, rec.slots(&uuid));
    Ok(Status {
        device: device.to_owned(),
        tpm_devices: m.tpm_devices(),
        slots,
    })
}

/// The systemd-cryptenroll arguments (after `--unlock-key-file`) of one
/// enrollment, refusing one that would leave no passphrase or recovery slot.
///
/// The slots in `wipe` (bifrost's own earlier TPM2 slots, see
/// [`record::decide`]) are replaced (`--wipe-slot=N,M`, acted on after the
/// new slot is made, sparing it): re-enrolling after a firmware or key
/// change must not pile up slots sealed to PCR values that will never come
/// back, nor remove another system's slot.
///
/// `tpm` is the resource manager to use (such as `tpmrm0`): named, not
/// `auto`, so the slot goes to the device bifrost checked.
pub fn plan(
    opts: &EnrollOptions,
    current: &[Slot],
    wipe: &[u32],
    tpm: &str,
) -> Result<Vec<Vec<String>>, TpmError> {
    let wiped = |s: &Slot| wipe.contains(&s.keyslot);
    if !current.iter().any(|s| !wiped(s) && s.is_fallback()) && !opts.recovery_key {
        return Err(TpmError::NoFallback {
            device: opts.device.clone(),
            slots: if current.is_empty() {
                "none".into()
            } else {
                current
                    .iter()
                    .map(Slot::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        });
    }
    let mut tpm = vec![
        format!("--tpm2-device=/dev/{tpm}"),
        format!("--tpm2-pcrs={}", pcr_list(&opts.pcrs)),
        format!("--tpm2-with-pin={}", if opts.pin { "yes" } else { "no" }),
    ];
    let wiped: Vec<String> = current
        .iter()
        .filter(|s| wiped(s))
        .map(|s| s.keyslot.to_string())
        .collect();
    if !wiped.is_empty() {
        tpm.push(format!("--wipe-slot={}", wiped.join(",")));
    }
    tpm.push(opts.device.to_string());
    // The recovery key first: should the TPM step fail, the key is there.
    let mut runs = Vec::new();
    if opts.recovery_key {
        runs.push(vec!["--recovery-key".into(), opts.device.to_string()]);
    }
    runs.push(tpm);
    Ok(runs)
}

/// Enroll a TPM2 key slot (and a recovery key) into `opts.device`, unlocking
/// with the passphrase `secret` gives. Every refusal comes before the header
/// is written, and those that need no passphrase before it is asked for.
pub fn enroll(
    m: &mut dyn Machine,
    opts: &EnrollOptions,
    secret: &mut dyn FnMut() -> Result<Secret, SecretError>,
    progress: &mut dyn FnMut(&str),
) -> Result<Status, TpmError> {
    let device = opts.device.as_path();
    let (uuid, tpm_devices) = preconditions(m, opts)?;
    let record_path = m.record_path();
    let _lock = record::lock(&record_path, &mut |l| progress(l))?;
    let before = read_slots(m, device)?;
    let mut rec = record::load(&record_path)?;
    let decision = record::decide(&before, rec.slots(&uuid));
    let runs = plan(opts, &before, &decision.wipe, &tpm_devices[0])?;
    let secret = secret()?;
    progress(&format!("checking the passphrase of {device}"));
    check_passphrase(m, device, &secret)?;
    let new_pin = new_pin(m, opts)?;
    for args in &runs {
        progress(&run_line(opts, args, &tpm_devices, &decision.wipe));
        let pin = new_pin.as_ref().filter(|_| args[0] != "--recovery-key");
        m.cryptenroll(args, &secret, pin)
            .map_err(|detail| TpmError::Tool {
                program: "systemd-cryptenroll",
                device: device.to_owned(),
                detail,
            })?;
    }
    let mut after = read_slots(m, device)?;
    let mine = record::updated(rec.slots(&uuid), &before, &after);
    save_record(&record_path, &mut rec, &uuid, &mine, device)?;
    record::mark(&mut after, &mine);
    check_enrolled(opts, &after)?;
    Ok(Status {
        device: device.to_owned(),
        tpm_devices,
        slots: after,
    })
}

/// The refusals that need neither the passphrase nor a change: no PCR, not
/// LUKS2, no TPM or more than one, a PIN to ask without a terminal. The
/// container's UUID and the TPMs found.
fn preconditions(
    m: &mut dyn Machine,
    opts: &EnrollOptions,
) -> Result<(String, Vec<String>), TpmError> {
    if opts.pcrs.is_empty() {
        return Err(TpmError::BadPcrs {
            given: String::new(),
            reason: "no PCR given: the key would be released to any boot chain".into(),
        });
    }
    let uuid = require_luks2(m, &opts.device)?;
    let tpm_devices = m.tpm_devices();
    match tpm_devices.len() {
        0 => return Err(TpmError::NoTpm),
        1 => {}
        _ => {
            return Err(TpmError::ManyTpms {
                found: tpm_devices.join(", "),
            })
        }
    }
    if opts.pin && opts.pin_file.is_none() && !m.stdin_is_terminal() {
        return Err(TpmError::PinNeedsTerminal);
    }
    Ok((uuid, tpm_devices))
}

/// A wrong passphrase is refused before anything is written.
fn check_passphrase(
    m: &mut dyn Machine,
    device: &Utf8Path,
    secret: &Secret,
) -> Result<(), TpmError> {
    match m.passphrase_opens(device, secret) {
        Ok(true) => Ok(()),
        Ok(false) => Err(TpmError::WrongPassphrase {
            device: device.to_owned(),
        }),
        Err(detail) => Err(TpmError::Tool {
            program: "cryptsetup",
            device: device.to_owned(),
            detail,
        }),
    }
}

/// The new PIN (from `--pin-file` or asked), checked; none without `--pin`.
fn new_pin(m: &mut dyn Machine, opts: &EnrollOptions) -> Result<Option<Secret>, TpmError> {
    if !opts.pin {
        return Ok(None);
    }
    let pin = match &opts.pin_file {
        Some(f) => Secret::from_key_file(f)?,
        None => m.ask_new_pin()?,
    };
    check_pin(&pin)?;
    Ok(Some(pin))
}

/// The progress line of one systemd-cryptenroll run.
fn run_line(opts: &EnrollOptions, args: &[String], tpm_devices: &[String], wipe: &[u32]) -> String {
    if args[0] == "--recovery-key" {
        return "enrolling a recovery key: write it down now, it is shown only this once".into();
    }
    format!(
        "enrolling the TPM ({}) into {}, bound to PCR {}{}{}",
        tpm_devices.join(", "),
        opts.device,
        pcr_list(&opts.pcrs),
        if opts.pin { ", with a PIN" } else { "" },
        match wipe {
            [] => String::new(),
            w => format!(
                ", replacing slot {} that bifrost enrolled on this system",
                w.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        }
    )
}

/// Write bifrost's slots of `uuid` into the record when they changed; a
/// failure after a new slot was made names it, so it can be removed.
fn save_record(
    path: &Utf8Path,
    rec: &mut record::Record,
    uuid: &str,
    mine: &[record::RecordedSlot],
    device: &Utf8Path,
) -> Result<(), TpmError> {
    if rec.slots(uuid) == mine {
        return Ok(());
    }
    rec.devices.remove(uuid);
    if !mine.is_empty() {
        rec.devices.insert(uuid.to_owned(), mine.to_vec());
    }
    record::save(path, rec).map_err(|source| match mine {
        [] => TpmError::Record(source),
        _ => TpmError::NotRecorded {
            device: device.to_owned(),
            slots: mine
                .iter()
                .map(|r| r.keyslot.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            source,
        },
    })
}

/// The header read back holds a TPM2 slot with the PCRs and PIN asked for.
fn check_enrolled(opts: &EnrollOptions, after: &[Slot]) -> Result<(), TpmError> {
    let enrolled = after.iter().any(|s| {
        matches!(&s.kind, SlotKind::Tpm2 { pcrs, pin, .. } if *pcrs == opts.pcrs && *pin == opts.pin)
    });
    if enrolled {
        Ok(())
    } else {
        Err(TpmError::NotEnrolled {
            device: opts.device.clone(),
            pcrs: pcr_list(&opts.pcrs),
        })
    }
}

/// A PIN the environment can carry and a keyboard can type at boot.
fn check_pin(pin: &Secret) -> Result<(), TpmError> {
    let bytes = pin.expose();
    if bytes.is_empty() {
        return Err(TpmError::BadPin { reason: "is empty" });
    }
    if bytes.iter().any(|b| matches!(b, 0 | b'\n' | b'\r')) {
        return Err(TpmError::BadPin {
            reason: "contains a NUL or line break, which cannot be typed at boot",
        });
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(TpmError::BadPin {
            reason: "is not valid UTF-8",
        });
    }
    Ok(())
}

/// Whether `pcrs` bind the key to the Secure Boot state (PCR 7); `bifrost tpm
/// enroll` prints a note when they do not.
pub fn binds_secure_boot(pcrs: &[u8]) -> bool {
    pcrs.contains(&SECURE_BOOT_PCR)
}

#[cfg(test)]
mod tests;
