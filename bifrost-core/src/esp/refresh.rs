//! `bifrost esp refresh-kinoite`: under the ESP lock, read once — Kinoite's
//! current BLS entries, each rEFInd folder's refind.conf and the ESP's free
//! space — into a [`Snapshot`]; decide every refind.conf's new text in pure
//! steps ([`plan`], over [`super::kinoite`]'s re-rendering); then write only
//! the menus that changed, each in one atomic replace ([`apply`]). A failure
//! in any menu is found before anything is written.

use super::kinoite::{self, RefreshOptions, RefreshReport, Refreshed};
use super::world::Space;
use super::{confine, lock, parse_state, statvfs, EspError, REFIND_DIRS};
use crate::fsutil;
use crate::refind::bls::BlsEntry;
use camino::{Utf8Path, Utf8PathBuf};

/// One rEFInd folder's refind.conf as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// ESP-relative path.
    pub rel: String,
    /// Where it is (checked to stay inside the ESP).
    pub path: Utf8PathBuf,
    /// Its bytes, `None` when there is no such file.
    pub bytes: Option<Vec<u8>>,
}

/// Everything a refresh decides over, read once under the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub esp: Utf8PathBuf,
    /// rEFInd volume of Kinoite's `/boot`, in the form rEFInd finds.
    pub volume: String,
    /// Kinoite's current BLS entries (at least one).
    pub bls: Vec<BlsEntry>,
    /// Each rEFInd folder's refind.conf, in [`REFIND_DIRS`] order.
    pub menus: Vec<Menu>,
    pub space: Space,
}

/// A new refind.conf to put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// ESP-relative path, as progress names it.
    pub rel: String,
    pub path: Utf8PathBuf,
    pub text: String,
}

/// What a refresh will do: the report (`bytes_written` is counted by
/// [`apply`]) and the writes it needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub report: RefreshReport,
    pub writes: Vec<Write>,
}

/// The refresh's own argument: a volume that can stand in refind.conf
/// between quotes.
pub fn check_volume(volume: &str) -> Result<(), EspError> {
    if volume.trim().is_empty() || volume.contains(['"', '\n', '\r']) {
        return Err(EspError::BadVolume(volume.to_owned()));
    }
    Ok(())
}

/// Temp files of a run that was killed: under the lock no other run is
/// writing, so every one of them in rEFInd's folders is garbage.
fn remove_stale_temps(esp: &Utf8Path) -> Result<(), EspError> {
    for (dir, _) in REFIND_DIRS {
        // Never through a link out of the ESP (crate::confine).
        let d = confine::checked(esp, dir)?;
        let Ok(list) = d.read_dir_utf8() else {
            continue;
        };
        for ent in list.flatten() {
            let is_file = ent.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && ent.file_name().starts_with(fsutil::TEMP_PREFIX) {
                let _ = std::fs::remove_file(ent.path());
            }
        }
    }
    Ok(())
}

/// Read the world of a refresh (under the lock).
pub fn read(o: &RefreshOptions, volume: String) -> Result<Snapshot, EspError> {
    let bls = kinoite::read_entries(&o.entries)?;
    remove_stale_temps(&o.esp)?;
    let mut menus = vec![];
    for (dir, _) in REFIND_DIRS {
        let rel = format!("{dir}/refind.conf");
        let path = confine::checked(&o.esp, &rel)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(fsutil::io_err(&path, "read")(e).into()),
        };
        menus.push(Menu { rel, path, bytes });
    }
    let (available, _, block) = statvfs(&o.esp)?;
    Ok(Snapshot {
        esp: o.esp.clone(),
        volume,
        bls,
        menus,
        space: Space { available, block },
    })
}

/// A refind.conf's text; one that is not UTF-8 was not written by bifrost.
pub fn text_of(rel: &str, bytes: &[u8]) -> Result<String, EspError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| EspError::KinoiteMismatch {
        config: rel.to_owned(),
        why: "it is not UTF-8".into(),
    })
}

/// The refreshed form of one refind.conf and its new text when that differs.
/// A menu without direct Kinoite entries stays as it is, reported under its
/// Kinoite mode; one without a Kinoite side is an error.
pub fn refresh_menu(
    rel: &str,
    old: &str,
    bls: &[BlsEntry],
    volume: &str,
) -> Result<(Refreshed, Option<String>), EspError> {
    let Some((new, k)) = kinoite::refreshed_text(rel, old, bls, volume)? else {
        let mode = parse_state(old)
            .and_then(|s| s.kinoite)
            .map(|k| k.mode)
            .ok_or_else(|| EspError::NoKinoiteSide(rel.to_owned()))?;
        let same = Refreshed {
            config: rel.to_owned(),
            mode,
            entries: vec![],
            written: false,
        };
        return Ok((same, None));
    };
    let written = new != old;
    let refreshed = Refreshed {
        config: rel.to_owned(),
        mode: k.mode,
        entries: k.entries.into_iter().map(|e| e.title).collect(),
        written,
    };
    Ok((refreshed, written.then_some(new)))
}

/// A new refind.conf of `len` bytes takes whole blocks; they must be free.
pub fn check_space(esp: &Utf8Path, len: usize, space: Space) -> Result<(), EspError> {
    let needed = (len as u64).div_ceil(space.block) * space.block;
    if needed > space.available {
        return Err(EspError::no_space(
            esp,
            needed,
            space.available,
            "delete old generations (`bifrost esp install --limit`), or grow the ESP".into(),
        ));
    }
    Ok(())
}

/// Decide the whole refresh over a snapshot.
pub fn plan(s: &Snapshot) -> Result<Plan, EspError> {
    let mut report = RefreshReport::default();
    let mut writes = vec![];
    let present = s
        .menus
        .iter()
        .filter_map(|m| Some((m, m.bytes.as_deref()?)));
    for (m, bytes) in present {
        let old = text_of(&m.rel, bytes)?;
        let (refreshed, new) = refresh_menu(&m.rel, &old, &s.bls, &s.volume)?;
        if let Some(text) = new {
            check_space(&s.esp, text.len(), s.space)?;
            writes.push(Write {
                rel: m.rel.clone(),
                path: m.path.clone(),
                text,
            });
        }
        report.configs.push(refreshed);
    }
    if report.configs.is_empty() {
        return Err(EspError::NoKinoiteSide(format!(
            "{} (no refind.conf in EFI/refind/ or EFI/BOOT/)",
            s.esp
        )));
    }
    Ok(Plan { report, writes })
}

/// Write the plan's menus, each in one atomic replace.
pub fn apply(p: Plan, progress: &mut dyn FnMut(&str)) -> Result<RefreshReport, EspError> {
    let mut report = p.report;
    for w in &p.writes {
        progress(&format!("write {}", w.rel));
        fsutil::write_atomic(&w.path, w.text.as_bytes())?;
        report.bytes_written += w.text.len() as u64;
    }
    Ok(report)
}

/// Re-render the Kinoite part of every bifrost refind.conf on the ESP from
/// Kinoite's current BLS entries: one atomic replace of each refind.conf
/// under the ESP lock, nothing else touched, nothing written when nothing
/// changed.
pub fn refresh(
    o: &RefreshOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<RefreshReport, EspError> {
    if !o.esp.is_dir() {
        return Err(EspError::NotAFolder(o.esp.to_string()));
    }
    check_volume(&o.volume)?;
    // The same volume forms as `esp install` (UUID=, PARTUUID=, LABEL=).
    let volume = super::volume::refind_volume(&o.volume, Utf8Path::new("/dev/disk"))?;
    let _lock = lock::lock(&o.esp, progress)?;
    let snapshot = read(o, volume)?;
    apply(plan(&snapshot)?, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::kinoite::KinoiteState;
    use crate::esp::State;
    use crate::refind::bls;
    use crate::spec::KinoiteMode;

    fn bls_entries(csum: &str) -> Vec<BlsEntry> {
        let text = format!(
            "title Fedora Linux 41 (Kinoite)\nversion 1\noptions rw ostree=/ostree/boot.1/fedora/{csum}/0\nlinux /ostree/fedora-{csum}/vmlinuz\ninitrd /ostree/fedora-{csum}/initramfs.img\n"
        );
        vec![bls::parse("x.conf", "ostree-1-fedora", &text).unwrap()]
    }

    /// A direct-mode menu recording no Kinoite entries yet (the last zero stanzas).
    fn direct_menu() -> String {
        let mut line = state_line(Some(KinoiteMode::Direct));
        line.push_str("timeout 5\n");
        line
    }

    fn state_line(mode: Option<KinoiteMode>) -> String {
        let st = State {
            version: 1,
            default: "Generation 1: NixOS".into(),
            generations: vec![1],
            files: vec![],
            kinoite: mode.map(|mode| KinoiteState {
                mode,
                loader: Some("EFI/fedora/shimx64.efi".into()),
                volume: None,
                icon: None,
                entries: vec![],
                default: false,
            }),
        };
        format!("# {}\n", st.comment())
    }

    fn snapshot(menus: [Option<&str>; 2], available: u64) -> Snapshot {
        Snapshot {
            esp: "/esp".into(),
            volume: "KB".into(),
            bls: bls_entries("aaa"),
            menus: REFIND_DIRS
                .iter()
                .zip(menus)
                .map(|((d, _), text)| Menu {
                    rel: format!("{d}/refind.conf"),
                    path: format!("/esp/{d}/refind.conf").into(),
                    bytes: text.map(|t| t.as_bytes().to_vec()),
                })
                .collect(),
            space: Space {
                available,
                block: 512,
            },
        }
    }

    #[test]
    fn a_volume_that_cannot_stand_between_quotes_is_refused() {
        assert!(check_volume("KINOITE").is_ok());
        for bad in ["", "  ", "a\"b", "a\nb"] {
            assert!(matches!(check_volume(bad), Err(EspError::BadVolume(_))));
        }
    }

    #[test]
    fn a_chainload_menu_is_reported_and_left_alone() {
        let chain = state_line(Some(KinoiteMode::Chainload));
        let p = plan(&snapshot([None, Some(&chain)], 0)).unwrap();
        assert!(p.writes.is_empty());
        assert_eq!(p.report.configs.len(), 1);
        let c = &p.report.configs[0];
        assert_eq!(
            (c.config.as_str(), c.mode, c.written),
            ("EFI/BOOT/refind.conf", KinoiteMode::Chainload, false)
        );
        // Nothing to write: apply writes nothing.
        let r = apply(p, &mut |l| panic!("{l}")).unwrap();
        assert_eq!(r.bytes_written, 0);
    }

    #[test]
    fn every_menu_is_checked_before_anything_is_written() {
        let chain = state_line(Some(KinoiteMode::Chainload));
        let none = state_line(None);
        // A menu without a Kinoite side, one not UTF-8, or no menu at all.
        for menus in [[Some(chain.as_str()), Some(none.as_str())], [None, None]] {
            assert!(matches!(
                plan(&snapshot(menus, 0)),
                Err(EspError::NoKinoiteSide(_))
            ));
        }
        let mut s = snapshot([Some(&chain), None], 0);
        s.menus[1].bytes = Some(vec![0xff, 0xfe]);
        let err = plan(&s).unwrap_err();
        assert!(
            matches!(&err, EspError::KinoiteMismatch { why, .. } if why == "it is not UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn a_direct_menu_is_written_only_when_its_text_changes() {
        let old = direct_menu();
        let p = plan(&snapshot([Some(&old), None], 1 << 20)).unwrap();
        assert_eq!(p.writes.len(), 1);
        let w = &p.writes[0];
        assert_eq!(w.path, "/esp/EFI/refind/refind.conf");
        assert!(w.text.starts_with("# bifrost-state "), "{}", w.text);
        assert!(
            w.text
                .contains("menuentry \"Fedora Linux 41 (Kinoite)\" {\n    volume \"KB\"\n"),
            "{}",
            w.text
        );
        let c = &p.report.configs[0];
        assert_eq!(c.entries, ["Fedora Linux 41 (Kinoite)"]);
        assert!(c.written);
        // The written text, refreshed from the same entries: nothing to write.
        let again = plan(&snapshot([Some(&w.text), None], 0)).unwrap();
        assert!(again.writes.is_empty() && !again.report.configs[0].written);
        // No room for the new text: refused before anything is written.
        assert!(matches!(
            plan(&snapshot([Some(&old), None], 512)),
            Err(EspError::NoSpace { .. })
        ));
    }

    #[test]
    fn a_new_menu_needs_its_whole_blocks_free() {
        let esp = Utf8Path::new("/esp");
        let space = |available| Space {
            available,
            block: 512,
        };
        assert!(check_space(esp, 513, space(1024)).is_ok());
        let err = check_space(esp, 513, space(1023)).unwrap_err();
        assert!(
            matches!(
                err,
                EspError::NoSpace {
                    needed: 1024,
                    available: 1023,
                    ..
                }
            ),
            "{err}"
        );
    }
}
