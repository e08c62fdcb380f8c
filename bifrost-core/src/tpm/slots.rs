//! What each key slot of a LUKS2 container is: read from the header's JSON
//! metadata (`cryptsetup luksDump --dump-json-metadata`, cryptsetup ≥ 2.4),
//! where systemd-cryptenroll records a token per enrolled slot.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One key slot and what opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// Key-slot number in the LUKS2 header.
    pub keyslot: u32,
    #[serde(flatten)]
    pub kind: SlotKind,
}

/// What opens a key slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SlotKind {
    /// A passphrase or key file (a slot no token claims).
    Passphrase,
    /// A recovery key made by `systemd-cryptenroll --recovery-key`.
    Recovery,
    /// A key sealed by the TPM.
    #[serde(rename_all = "camelCase")]
    Tpm2 {
        /// PCRs the key is sealed to.
        pcrs: Vec<u8>,
        /// PCR bank (hash algorithm), such as `sha256`.
        pcr_bank: Option<String>,
        /// Whether the TPM also asks for a PIN.
        pin: bool,
        /// The token's `tpm2-policy-hash` (hex): what the TPM must see to
        /// release the key; tells one enrollment from another.
        #[serde(skip)]
        policy_hash: Option<String>,
        /// Whether `bifrost tpm enroll` made this slot on this system
        /// (its record, [`super::record`], names it with this policy hash).
        enrolled_by_bifrost: bool,
    },
    /// A FIDO2 security key.
    Fido2,
    /// A PKCS#11 token (smart card).
    Pkcs11,
    /// A token of another kind.
    #[serde(rename_all = "camelCase")]
    Other { token_type: String },
}

impl Slot {
    /// Whether a person can open the container with this slot when the TPM
    /// refuses: a passphrase or a recovery key.
    pub fn is_fallback(&self) -> bool {
        matches!(self.kind, SlotKind::Passphrase | SlotKind::Recovery)
    }

    /// The `tpm2-policy-hash` of a TPM2 slot's token (`None` for other kinds).
    pub fn tpm2_policy_hash(&self) -> Option<&str> {
        match &self.kind {
            SlotKind::Tpm2 { policy_hash, .. } => policy_hash.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "slot {}: ", self.keyslot)?;
        match &self.kind {
            SlotKind::Passphrase => write!(f, "passphrase (or key file)"),
            SlotKind::Recovery => write!(f, "recovery key"),
            SlotKind::Tpm2 {
                pcrs,
                pcr_bank,
                pin,
                enrolled_by_bifrost,
                ..
            } => {
                let list = pcrs.iter().map(u8::to_string).collect::<Vec<_>>().join("+");
                write!(
                    f,
                    "TPM2, bound to PCR {}",
                    if list.is_empty() { "none" } else { &list }
                )?;
                if let Some(bank) = pcr_bank {
                    write!(f, " ({bank})")?;
                }
                write!(f, ", {}", if *pin { "with PIN" } else { "no PIN" })?;
                if *enrolled_by_bifrost {
                    write!(f, ", enrolled by bifrost on this system")?;
                }
                Ok(())
            }
            SlotKind::Fido2 => write!(f, "FIDO2 security key"),
            SlotKind::Pkcs11 => write!(f, "PKCS#11 token"),
            SlotKind::Other { token_type } => write!(f, "token of type {token_type:?}"),
        }
    }
}

#[derive(Deserialize)]
struct Metadata {
    keyslots: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    tokens: BTreeMap<String, Token>,
}

#[derive(Deserialize)]
struct Token {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    keyslots: Vec<String>,
    #[serde(rename = "tpm2-pcrs", default)]
    tpm2_pcrs: Vec<u8>,
    #[serde(rename = "tpm2-pcr-bank")]
    tpm2_pcr_bank: Option<String>,
    #[serde(rename = "tpm2-pin", default)]
    tpm2_pin: bool,
    /// Hex, written by every systemd since the token exists
    /// (`tpm2_make_luks2_json()` in src/shared/tpm2-util.c).
    #[serde(rename = "tpm2-policy-hash")]
    tpm2_policy_hash: Option<String>,
}

/// The key slots described by LUKS2 JSON metadata, in slot order.
pub fn parse(json: &str) -> Result<Vec<Slot>, String> {
    let meta: Metadata =
        serde_json::from_str(json).map_err(|e| format!("unreadable LUKS2 metadata: {e}"))?;
    let mut claimed: BTreeMap<u32, SlotKind> = BTreeMap::new();
    for token in meta.tokens.values() {
        let kind = match token.kind.as_str() {
            "systemd-tpm2" => SlotKind::Tpm2 {
                pcrs: token.tpm2_pcrs.clone(),
                pcr_bank: token.tpm2_pcr_bank.clone(),
                pin: token.tpm2_pin,
                policy_hash: token.tpm2_policy_hash.clone(),
                enrolled_by_bifrost: false,
            },
            "systemd-recovery" => SlotKind::Recovery,
            "systemd-fido2" => SlotKind::Fido2,
            "systemd-pkcs11" => SlotKind::Pkcs11,
            other => SlotKind::Other {
                token_type: other.to_string(),
            },
        };
        for k in &token.keyslots {
            let n = k
                .parse()
                .map_err(|_| format!("token names key slot {k:?}, not a number"))?;
            claimed.insert(n, kind.clone());
        }
    }
    let mut slots = Vec::new();
    for k in meta.keyslots.keys() {
        let keyslot: u32 = k
            .parse()
            .map_err(|_| format!("key slot {k:?} is not a number"))?;
        let kind = claimed.remove(&keyslot).unwrap_or(SlotKind::Passphrase);
        slots.push(Slot { keyslot, kind });
    }
    slots.sort_by_key(|s| s.keyslot);
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like cryptsetup 2.6's output after systemd 252's
    /// `systemd-cryptenroll --tpm2-device=auto --tpm2-pcrs=7` and `--recovery-key`.
    const DUMP: &str = r#"{
      "keyslots": {
        "0": {"type": "luks2", "key_size": 64, "kdf": {"type": "argon2id"}},
        "1": {"type": "luks2", "key_size": 64, "kdf": {"type": "pbkdf2"}},
        "2": {"type": "luks2", "key_size": 64, "kdf": {"type": "argon2id"}}
      },
      "tokens": {
        "0": {"type": "systemd-tpm2", "keyslots": ["1"], "tpm2-blob": "AJ4A",
              "tpm2-pcrs": [7], "tpm2-pcr-bank": "sha256", "tpm2-primary-alg": "ecc",
              "tpm2-policy-hash": "7ccb", "tpm2-pin": false},
        "1": {"type": "systemd-recovery", "keyslots": ["2"]}
      },
      "segments": {}, "digests": {}, "config": {"json_size": "12288"}
    }"#;

    #[test]
    fn tokens_name_their_slots() {
        let slots = parse(DUMP).unwrap();
        assert_eq!(
            slots,
            vec![
                Slot {
                    keyslot: 0,
                    kind: SlotKind::Passphrase
                },
                Slot {
                    keyslot: 1,
                    kind: SlotKind::Tpm2 {
                        pcrs: vec![7],
                        pcr_bank: Some("sha256".into()),
                        pin: false,
                        policy_hash: Some("7ccb".into()),
                        enrolled_by_bifrost: false,
                    }
                },
                Slot {
                    keyslot: 2,
                    kind: SlotKind::Recovery
                },
            ]
        );
        assert_eq!(
            slots[1].to_string(),
            "slot 1: TPM2, bound to PCR 7 (sha256), no PIN"
        );
        assert!(slots[0].is_fallback() && !slots[1].is_fallback() && slots[2].is_fallback());
        let json = serde_json::to_value(&slots[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"keyslot": 1, "kind": "tpm2", "pcrs": [7], "pcrBank": "sha256", "pin": false, "enrolledByBifrost": false})
        );
    }

    #[test]
    fn slots_sort_numerically_and_bad_metadata_is_an_error() {
        let json = r#"{"keyslots": {"10": {}, "2": {}}, "tokens": {"0": {"type": "x-custom", "keyslots": ["10"]}}}"#;
        let slots = parse(json).unwrap();
        assert_eq!(slots[0].keyslot, 2);
        assert_eq!(
            slots[1].kind,
            SlotKind::Other {
                token_type: "x-custom".into()
            }
        );
        assert!(parse("not json").unwrap_err().contains("unreadable"));
        assert!(parse(r#"{"keyslots": {"a": {}}}"#).is_err());
    }
}
