//! Which PCRs the TPM2 key is sealed to, and whether it asks for a PIN:
//! `--pcrs`/`--pin` when given, else the host settings the system was built
//! from (`storage.luks.unlock`), so the enrolled slot matches what the boot
//! expects.

use super::{parse_pcrs, pcr_list, TpmError};
use crate::spec::{self, Settings, UnlockMethod};
use camino::Utf8Path;

/// Where an installed system's effective host settings are linked
/// (`environment.etc."bifrost/host.json"` in modules/default.nix).
pub const HOST_SETTINGS: &str = "/etc/bifrost/host.json";

/// The PCRs and PIN of one enrollment, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub pcrs: Vec<u8>,
    pub pin: bool,
    /// Says which PCRs were used and why, for the user.
    pub source: String,
    /// Things worth knowing about the settings (never a refusal).
    pub notes: Vec<String>,
}

/// The binding from the flags, reading the host settings (`settings`, or
/// [`HOST_SETTINGS`]) only when `--pcrs` is not given.
///
/// A `--settings` that cannot be read or is invalid is an error. A missing
/// [`HOST_SETTINGS`] (not an installed bifrost system, such as the
/// installer) falls back to the settings' own default PCR list, and says so.
pub fn resolve(
    pcrs: Option<&str>,
    pin: bool,
    settings: Option<&Utf8Path>,
) -> Result<Binding, TpmError> {
    resolve_with_default(pcrs, pin, settings, Utf8Path::new(HOST_SETTINGS))
}

fn resolve_with_default(
    pcrs: Option<&str>,
    pin: bool,
    settings: Option<&Utf8Path>,
    default: &Utf8Path,
) -> Result<Binding, TpmError> {
    if let Some(given) = pcrs {
        let pcrs = parse_pcrs(given)?;
        return Ok(Binding {
            source: format!("PCR {} (from --pcrs)", pcr_list(&pcrs)),
            pcrs,
            pin,
            notes: Vec::new(),
        });
    }
    let path = settings.unwrap_or(default);
    if settings.is_none() && std::fs::symlink_metadata(path).is_err() {
        let pcrs = spec::Unlock::default().tpm2_pcrs;
        return Ok(Binding {
            source: format!(
                "PCR {} (the default of storage.luks.unlock.tpm2Pcrs: no --pcrs, and no host settings at {path})",
                pcr_list(&pcrs)
            ),
            pcrs,
            pin,
            notes: Vec::new(),
        });
    }
    let loaded = spec::load_file(path).map_err(|e| TpmError::Settings {
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    from_settings(&loaded, path, pin)
}

/// The binding `storage.luks.unlock` of `settings` (read from `path`) asks
/// for; `pin` is `--pin`, which a method of `"tpm2-pin"` implies.
pub fn from_settings(settings: &Settings, path: &Utf8Path, pin: bool) -> Result<Binding, TpmError> {
    let unlock = &settings.storage.luks.unlock;
    // Validation leaves PCRs in range and listed once; it lets the list be
    // empty only for the method "passphrase", and sealing to no PCR would
    // release the key to any boot chain.
    if unlock.tpm2_pcrs.is_empty() {
        return Err(TpmError::BadPcrs {
            given: String::new(),
            reason: format!("storage.luks.unlock.tpm2Pcrs of {path} is empty"),
        });
    }
    let mut pcrs = unlock.tpm2_pcrs.clone();
    pcrs.sort_unstable();
    let mut notes = Vec::new();
    let pin = match unlock.method {
        UnlockMethod::Tpm2Pin => true,
        UnlockMethod::Tpm2 => {
            if pin {
                notes.push(format!("--pin given, but storage.luks.unlock.method in {path} is \"tpm2\": the boot asks for the PIN all the same (systemd-cryptsetup reads it from the slot); set the method to \"tpm2-pin\" to match"));
            }
            pin
        }
        UnlockMethod::Passphrase => {
            notes.push(format!("storage.luks.unlock.method in {path} is \"passphrase\": the boot does not try the TPM until it is \"tpm2\" or \"tpm2-pin\" (then rebuild)"));
            pin
        }
    };
    Ok(Binding {
        source: format!(
            "PCR {} (storage.luks.unlock.tpm2Pcrs of {path}){}",
            pcr_list(&pcrs),
            if unlock.method == UnlockMethod::Tpm2Pin {
                ", with a PIN (storage.luks.unlock.method \"tpm2-pin\")"
            } else {
                ""
            }
        ),
        pcrs,
        pin,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    fn host(unlock: &str) -> String {
        format!(
            r#"{{"hostName": "h", "hardware": {{"profile": "generic-x86_64-uefi"}},
                "storage": {{"luks": {{"device": "/dev/vda2", "unlock": {unlock}}},
                             "subvolumes": [{{"name": "@", "mountPoint": "/"}}]}},
                "users": [{{"name": "alice", "admin": true}}],
                "security": {{"secureBoot": {{"enable": true, "keysPath": "/etc/secureboot", "route": "own-keys"}}}}}}"#
        )
    }

    fn file(dir: &tempfile::TempDir, text: &str) -> Utf8PathBuf {
        let p = Utf8PathBuf::from_path_buf(dir.path().join("host.json")).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn pcrs_flag_wins_and_the_settings_are_not_read() {
        let b = resolve(
            Some("11,7"),
            false,
            Some(Utf8Path::new("/nonexistent/host.json")),
        )
        .unwrap();
        assert_eq!((b.pcrs, b.pin), (vec![7, 11], false));
        assert!(b.source.contains("--pcrs"), "{}", b.source);
        assert!(matches!(
            resolve(Some("7,99"), false, None),
            Err(TpmError::BadPcrs { .. })
        ));
    }

    #[test]
    fn tpm2_pin_method_gives_its_pcrs_and_implies_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(
            &dir,
            &host(r#"{"method": "tpm2-pin", "tpm2Pcrs": [11, 7]}"#),
        );
        let b = resolve(None, false, Some(&p)).unwrap();
        assert_eq!((b.pcrs.clone(), b.pin), (vec![7, 11], true));
        assert!(b.source.contains("PCR 7+11"), "{}", b.source);
        assert!(b.source.contains(p.as_str()), "{}", b.source);
        assert!(b.source.contains("tpm2-pin"), "{}", b.source);
        assert!(b.notes.is_empty(), "{:?}", b.notes);
    }

    #[test]
    fn tpm2_method_has_no_pin_unless_asked_and_then_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(&dir, &host(r#"{"method": "tpm2", "tpm2Pcrs": [0, 7]}"#));
        let b = resolve(None, false, Some(&p)).unwrap();
        assert_eq!((b.pcrs, b.pin, b.notes.len()), (vec![0, 7], false, 0));
        let b = resolve(None, true, Some(&p)).unwrap();
        assert!(b.pin);
        assert_eq!(b.notes.len(), 1, "{:?}", b.notes);
        assert!(b.notes[0].contains("tpm2-pin"), "{}", b.notes[0]);
    }

    #[test]
    fn passphrase_method_still_enrolls_its_pcrs_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(&dir, &host(r#"{"method": "passphrase"}"#));
        let b = resolve(None, false, Some(&p)).unwrap();
        assert_eq!((b.pcrs, b.pin), (vec![7], false));
        assert_eq!(b.notes.len(), 1, "{:?}", b.notes);
        assert!(b.notes[0].contains("\"passphrase\""), "{}", b.notes[0]);
    }

    #[test]
    fn passphrase_method_without_pcrs_is_not_sealed_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(&dir, &host(r#"{"method": "passphrase", "tpm2Pcrs": []}"#));
        let e = resolve(None, false, Some(&p)).unwrap_err();
        assert!(matches!(e, TpmError::BadPcrs { .. }), "{e}");
        assert!(e.to_string().contains("tpm2Pcrs"), "{e}");
    }

    #[test]
    fn missing_or_invalid_settings_named_by_flag_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Utf8PathBuf::from_path_buf(dir.path().join("none.json")).unwrap();
        let e = resolve(None, false, Some(&missing)).unwrap_err();
        assert!(
            matches!(&e, TpmError::Settings { path, .. } if *path == missing),
            "{e}"
        );
        assert!(e.to_string().contains("--pcrs"), "{e}");
        let bad = file(&dir, &host(r#"{"method": "tpm2", "tpm2Pcrs": [7, 24]}"#));
        let e = resolve(None, false, Some(&bad)).unwrap_err();
        let TpmError::Settings { source, .. } = &e else {
            panic!("{e}")
        };
        assert!(source.to_string().contains("tpm2Pcrs"), "{source}");
    }

    #[test]
    fn the_default_file_is_read_when_present_and_pcr_7_said_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let absent = Utf8PathBuf::from_path_buf(dir.path().join("host.json")).unwrap();
        let b = resolve_with_default(None, false, None, &absent).unwrap();
        assert_eq!((b.pcrs, b.pin), (vec![7], false));
        assert!(b.source.contains(absent.as_str()), "{}", b.source);
        let p = file(
            &dir,
            &host(r#"{"method": "tpm2-pin", "tpm2Pcrs": [0, 2, 7]}"#),
        );
        let b = resolve_with_default(None, false, None, &p).unwrap();
        assert_eq!((b.pcrs, b.pin), (vec![0, 2, 7], true));
    }
}
