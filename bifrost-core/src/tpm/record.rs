//! Which TPM2 key slots `bifrost tpm enroll` made on this system, so a
//! re-enrollment replaces those and no other.
//!
//! One LUKS2 pool can carry a TPM2 slot per operating system: NixOS and
//! Fedora Kinoite boot through different signed chains, so their PCR 7
//! values differ and each needs its own slot. systemd-cryptenroll's
//! `--wipe-slot=tpm2` removes them all; bifrost instead records, on the
//! running system ([`RECORD_PATH`], root-only), the key slot and the token's
//! `tpm2-policy-hash` of each slot it enrolled, keyed by the LUKS UUID, and
//! wipes exactly the recorded slots that still carry the recorded hash. A
//! recorded number now used by another token (the slot was removed by hand
//! and the number reused) no longer matches and is left alone.
//!
//! [`decide`] and [`updated`] are pure; [`load`] and [`save`] touch only the
//! record file.

use super::slots::{Slot, SlotKind};
use crate::fsutil::{io_err, FsError, IoError};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the record lives on the running system (NixOS keeps `/var/lib`).
pub const RECORD_PATH: &str = "/var/lib/bifrost/tpm-slots.json";

/// The record format this bifrost writes and reads.
const VERSION: u32 = 1;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Write(#[from] FsError),
    #[error("{path}: {detail}; it lists the TPM2 slots bifrost enrolled. Fix it, or move it away: bifrost then counts no slot as its own and keeps every TPM2 slot")]
    Invalid { path: Utf8PathBuf, detail: String },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
}

/// One slot bifrost enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordedSlot {
    pub keyslot: u32,
    /// The token's `tpm2-policy-hash` when bifrost enrolled it.
    pub policy_hash: String,
    /// The PCRs it was sealed to (for people reading the file).
    pub pcrs: Vec<u8>,
}

/// The record: per LUKS UUID, the slots bifrost enrolled there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    pub version: u32,
    pub devices: BTreeMap<String, Vec<RecordedSlot>>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            version: VERSION,
            devices: BTreeMap::new(),
        }
    }
}

impl Record {
    /// The slots recorded for the LUKS container with this UUID.
    pub fn slots(&self, uuid: &str) -> &[RecordedSlot] {
        self.devices.get(uuid).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// What an enrollment does with the TPM2 slots already there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Recorded slots that still carry the recorded policy hash: wiped once
    /// the new slot is made.
    pub wipe: Vec<u32>,
    /// TPM2 slots bifrost did not enroll on this system: kept, and named.
    pub kept: Vec<Slot>,
}

fn recorded(slot: &Slot, record: &[RecordedSlot]) -> bool {
    slot.tpm2_policy_hash().is_some_and(|h| {
        record
            .iter()
            .any(|r| r.keyslot == slot.keyslot && r.policy_hash == h)
    })
}

/// Which TPM2 slots of `current` to wipe and which to keep.
pub fn decide(current: &[Slot], record: &[RecordedSlot]) -> Decision {
    let mut d = Decision::default();
    for s in current
        .iter()
        .filter(|s| matches!(s.kind, SlotKind::Tpm2 { .. }))
    {
        if recorded(s, record) {
            d.wipe.push(s.keyslot);
        } else {
            d.kept.push(s.clone());
        }
    }
    d
}

/// Set `enrolled_by_bifrost` on each TPM2 slot the record names.
pub fn mark(slots: &mut [Slot], record: &[RecordedSlot]) {
    for s in slots.iter_mut() {
        let ours = recorded(s, record);
        if let SlotKind::Tpm2 {
            enrolled_by_bifrost,
            ..
        } = &mut s.kind
        {
            *enrolled_by_bifrost = ours;
        }
    }
}

/// The record of one container after an enrollment: every TPM2 slot of
/// `after` that is new (not in `before` with this policy hash) or was
/// recorded already and survived (systemd-cryptenroll keeps the slot that
/// already seals to these PCR values: "This PCR set is already enrolled").
/// Wiped slots and entries whose slot is gone or changed drop out.
pub fn updated(record: &[RecordedSlot], before: &[Slot], after: &[Slot]) -> Vec<RecordedSlot> {
    let same = |a: &Slot, b: &Slot| {
        a.keyslot == b.keyslot
            && a.tpm2_policy_hash().is_some()
            && a.tpm2_policy_hash() == b.tpm2_policy_hash()
    };
    after
        .iter()
        .filter_map(|s| match &s.kind {
            SlotKind::Tpm2 {
                pcrs,
                policy_hash: Some(hash),
                ..
            } if recorded(s, record) || !before.iter().any(|b| same(b, s)) => Some(RecordedSlot {
                keyslot: s.keyslot,
                policy_hash: hash.clone(),
                pcrs: pcrs.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The note `bifrost tpm enroll` prints for a TPM2 slot it keeps.
pub fn kept_note(slot: &Slot, device: &Utf8Path) -> String {
    let what = match &slot.kind {
        SlotKind::Tpm2 { pcrs, pin, .. } => format!(
            "TPM2, PCR {}, {}",
            pcrs.iter().map(u8::to_string).collect::<Vec<_>>().join("+"),
            if *pin { "with PIN" } else { "no PIN" }
        ),
        _ => slot.to_string(),
    };
    format!(
        "slot {n} ({what}) was not enrolled by bifrost on this system (Kinoite's, for example, or made by hand): kept. Once it is stale, remove it with `systemd-cryptenroll --wipe-slot={n} {device}`",
        n = slot.keyslot
    )
}

/// What `bifrost tpm enroll` tells about the TPM2 slots it left alone, from
/// the status after it: each one kept, and, when none is bifrost's, that one
/// of them already sealed the key to these PCR values (systemd-cryptenroll
/// then makes no new slot) and opens this boot.
pub fn notes(status: &super::Status) -> Vec<String> {
    let tpm2 = |s: &&Slot| matches!(s.kind, SlotKind::Tpm2 { .. });
    let ours = |s: &&Slot| {
        matches!(
            s.kind,
            SlotKind::Tpm2 {
                enrolled_by_bifrost: true,
                ..
            }
        )
    };
    let mut notes: Vec<String> = status
        .slots
        .iter()
        .filter(|s| tpm2(s) && !ours(s))
        .map(|s| kept_note(s, &status.device))
        .collect();
    if !status.slots.iter().any(|s| ours(&s)) {
        notes.push("systemd-cryptenroll made no new slot: a TPM2 slot above, not enrolled by bifrost, already seals the key to these PCR values and opens this boot (bifrost does not count it as its own, so it stays on re-enrollment too)".into());
    }
    notes
}

/// The record at `path`; none there is an empty record.
pub fn load(path: &Utf8Path) -> Result<Record, RecordError> {
    let invalid = |detail: String| RecordError::Invalid {
        path: path.to_owned(),
        detail,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
        Err(e) => return Err(io_err(path, "inspect")(e).into()),
        Ok(m) if !m.is_file() => return Err(invalid("not a regular file".into())),
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(path).map_err(io_err(path, "read"))?;
    let record: Record =
        serde_json::from_str(&text).map_err(|e| invalid(format!("unreadable: {e}")))?;
    if record.version != VERSION {
        return Err(invalid(format!(
            "version {} is not {VERSION}, the one this bifrost knows",
            record.version
        )));
    }
    Ok(record)
}

/// The record's folder, created root-only (0700) when missing; one that is
/// a link (or not a folder) is refused, never followed.
fn folder(path: &Utf8Path) -> Result<&Utf8Path, RecordError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_str().is_empty())
        .unwrap_or(Utf8Path::new("."));
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(RecordError::Invalid {
            path: path.to_owned(),
            detail: format!("its folder {dir} is not a folder (a link?)"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir, "create folder"))?;
            Ok(dir)
        }
        Err(e) => Err(io_err(dir, "inspect")(e).into()),
    }
}

/// Hold the record's folder (`flock`, see [`crate::lock`]) from reading
/// the slots to writing the record, so two enrollments never record over
/// each other; `notice` hears once that this run waits for another.
pub fn lock(
    path: &Utf8Path,
    notice: &mut dyn FnMut(&str),
) -> Result<crate::lock::DirLock, RecordError> {
    let dir = folder(path)?;
    Ok(crate::lock::acquire(
        dir,
        "TPM slot record folder",
        crate::lock::DEFAULT_WAIT,
        notice,
    )?)
}

/// Write `record` to `path` atomically, readable by root only (0600, its
/// folder created 0700). A folder on the way that is a link is refused.
pub fn save(path: &Utf8Path, record: &Record) -> Result<(), RecordError> {
    folder(path)?;
    let mut text = serde_json::to_string_pretty(record).expect("a record serializes");
    text.push('\n');
    crate::fsutil::write_atomic_mode(path, text.as_bytes(), 0o600)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpm(keyslot: u32, pcrs: &[u8], hash: &str) -> Slot {
        Slot {
            keyslot,
            kind: SlotKind::Tpm2 {
                pcrs: pcrs.to_vec(),
                pcr_bank: Some("sha256".into()),
                pin: false,
                policy_hash: Some(hash.into()),
                enrolled_by_bifrost: false,
            },
        }
    }

    fn pass(keyslot: u32) -> Slot {
        Slot {
            keyslot,
            kind: SlotKind::Passphrase,
        }
    }

    fn rec(keyslot: u32, hash: &str) -> RecordedSlot {
        RecordedSlot {
            keyslot,
            policy_hash: hash.into(),
            pcrs: vec![7],
        }
    }

    #[test]
    fn only_recorded_slots_with_their_hash_are_wiped() {
        // Slot 1 is bifrost's, slot 2 Kinoite's (another PCR 7 value).
        let current = [pass(0), tpm(1, &[7], "aa"), tpm(2, &[7], "bb")];
        let d = decide(&current, &[rec(1, "aa")]);
        assert_eq!(d.wipe, [1]);
        assert_eq!(d.kept, [current[2].clone()]);
    }

    #[test]
    fn a_recorded_number_reused_by_another_token_is_kept() {
        // bifrost enrolled slot 2 ("aa"); it was wiped by hand and Kinoite's
        // enrollment took the number.
        let current = [pass(0), tpm(2, &[7], "cc")];
        let d = decide(&current, &[rec(2, "aa")]);
        assert!(d.wipe.is_empty());
        assert_eq!(d.kept, [current[1].clone()]);
        // A recorded number that is now a passphrase slot is neither.
        let d = decide(&[pass(0), pass(2)], &[rec(2, "aa")]);
        assert_eq!(d, Decision::default());
    }

    #[test]
    fn without_a_record_every_tpm2_slot_is_kept() {
        let current = [pass(0), tpm(1, &[7], "aa"), tpm(3, &[0, 7], "dd")];
        let d = decide(&current, &[]);
        assert!(d.wipe.is_empty());
        assert_eq!(d.kept.iter().map(|s| s.keyslot).collect::<Vec<_>>(), [1, 3]);
        let note = kept_note(&d.kept[1], Utf8Path::new("/dev/vda2"));
        assert_eq!(
            note,
            "slot 3 (TPM2, PCR 0+7, no PIN) was not enrolled by bifrost on this system (Kinoite's, for example, or made by hand): kept. Once it is stale, remove it with `systemd-cryptenroll --wipe-slot=3 /dev/vda2`"
        );
        // A token without a policy hash can never match a record.
        let mut odd = tpm(1, &[7], "aa");
        if let SlotKind::Tpm2 { policy_hash, .. } = &mut odd.kind {
            *policy_hash = None;
        }
        assert!(decide(&[odd], &[rec(1, "aa")]).wipe.is_empty());
    }

    #[test]
    fn the_record_follows_the_enrollment() {
        let before = [pass(0), tpm(1, &[7], "aa"), tpm(2, &[7], "bb")];
        // Slot 1 wiped, slot 3 new; Kinoite's slot 2 stays unrecorded.
        let after = [pass(0), tpm(2, &[7], "bb"), tpm(3, &[7], "ee")];
        assert_eq!(
            updated(&[rec(1, "aa")], &before, &after),
            [RecordedSlot {
                keyslot: 3,
                policy_hash: "ee".into(),
                pcrs: vec![7]
            }]
        );
        // "Already enrolled": the recorded slot survives and stays recorded.
        assert_eq!(updated(&[rec(1, "aa")], &before, &before), [rec(1, "aa")]);
        // Served by an unrecorded slot: nothing of it is claimed.
        assert!(updated(&[], &before, &before).is_empty());
    }

    #[test]
    fn marks_name_only_recorded_slots() {
        let mut slots = [pass(0), tpm(1, &[7], "aa"), tpm(2, &[7], "bb")];
        mark(&mut slots, &[rec(1, "aa"), rec(2, "zz")]);
        let marks: Vec<bool> = slots
            .iter()
            .filter_map(|s| match s.kind {
                SlotKind::Tpm2 {
                    enrolled_by_bifrost,
                    ..
                } => Some(enrolled_by_bifrost),
                _ => None,
            })
            .collect();
        assert_eq!(marks, [true, false]);
        assert!(slots[1]
            .to_string()
            .ends_with(", enrolled by bifrost on this system"));
        assert!(slots[2].to_string().ends_with("no PIN"));
    }

    #[test]
    fn the_record_is_written_root_only_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let path = root.join("var/lib/bifrost/tpm-slots.json");
        assert_eq!(load(&path).unwrap(), Record::default(), "none yet");
        let mut r = Record::default();
        r.devices.insert("0f1e-uuid".into(), vec![rec(1, "aa")]);
        save(&path, &r).unwrap();
        assert_eq!(load(&path).unwrap(), r);
        assert_eq!(load(&path).unwrap().slots("0f1e-uuid"), [rec(1, "aa")]);
        assert!(load(&path).unwrap().slots("other").is_empty());
        let mode = |p: &Utf8Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // Replaced whole: no temp file left beside it.
        r.devices.clear();
        save(&path, &r).unwrap();
        assert_eq!(load(&path).unwrap(), r);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["tpm-slots.json"]);
    }

    #[test]
    fn a_bad_record_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let path = root.join("tpm-slots.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.contains("tpm-slots.json: unreadable") && e.contains("move it away"),
            "{e}"
        );
        std::fs::write(&path, r#"{"version": 9, "devices": {}}"#).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("version 9"));
        // A link in place of the folder is not followed for writing.
        let target = root.join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, root.join("linked")).unwrap();
        let e = save(&root.join("linked/tpm-slots.json"), &Record::default()).unwrap_err();
        assert!(matches!(e, RecordError::Invalid { .. }), "{e}");
        assert!(std::fs::read_dir(&target).unwrap().next().is_none());
        assert!(matches!(
            lock(&root.join("linked/tpm-slots.json"), &mut |_| {}),
            Err(RecordError::Invalid { .. })
        ));
    }

    #[test]
    fn a_second_run_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let path = root.join("var/lib/bifrost/tpm-slots.json");
        let held = lock(&path, &mut |_| {}).unwrap();
        assert_eq!(held.dir(), path.parent().unwrap());
        let e = crate::lock::acquire(
            path.parent().unwrap(),
            "TPM slot record folder",
            std::time::Duration::ZERO,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("another bifrost run"), "{e}");
        drop(held);
        lock(&path, &mut |_| {}).unwrap();
    }
}
