//! The pure steps of an install plan, each deciding one thing over what
//! [`super::world`] read: the menu entries, the files they need, the
//! default entry, what to copy and what to keep, the state line and the
//! menu, what to delete, and whether it fits. Nothing here touches a file.

use super::generations::{BootTarget, Generation};
use super::kinoite::Side;
use super::world::{FileFacts, World};
use super::{last_booted, Copy, EspError, FileRecord, InstallOptions, State, NIXOS_DIR};
use crate::fsutil::TEMP_PREFIX;
use crate::refind::{Config, MenuEntry, SubmenuEntry};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::{BTreeMap, BTreeSet};

/// The files a menu recorded, by ESP path.
pub fn old_records(old_config: Option<&str>) -> BTreeMap<String, FileRecord> {
    old_config
        .and_then(super::parse_state)
        .map(|s| s.files.into_iter().map(|f| (f.path.clone(), f)).collect())
        .unwrap_or_default()
}

/// The menu's paths of what one target loads: kernel, initrd, command line.
fn loads(
    b: &BootTarget,
    names: &BTreeMap<Utf8PathBuf, String>,
) -> (String, Option<String>, String) {
    let at = |src: &Utf8Path| format!("/{}", names[src]);
    (at(&b.kernel), b.initrd.as_deref().map(at), b.cmdline())
}

/// Title of a generation's entry.
pub fn title_of(g: &Generation) -> String {
    format!("Generation {}: {}", g.number, g.boot.label)
}

/// One entry per generation, newest first, its specialisations as submenus.
/// `names` holds the ESP path of every kernel and initrd the generations boot.
pub fn generation_entries(
    gens: &[Generation],
    names: &BTreeMap<Utf8PathBuf, String>,
    icon: Option<&String>,
) -> Vec<MenuEntry> {
    gens.iter()
        .map(|g| {
            let (loader, initrd, options) = loads(&g.boot, names);
            let submenus = g
                .specialisations
                .iter()
                .map(|(name, b)| {
                    let (l, i, opt) = loads(b, names);
                    SubmenuEntry {
                        title: format!("Specialisation {name}"),
                        loader: Some(l),
                        initrd: i,
                        options: Some(opt),
                    }
                })
                .collect();
            MenuEntry {
                title: title_of(g),
                volume: None,
                loader,
                initrd: initrd.into_iter().collect(),
                options: Some(options),
                icon: icon.cloned(),
                submenus,
            }
        })
        .collect()
}

/// The whole menu: the generations, then the Kinoite side; with the
/// last-booted default, the newest generation under its stable title.
pub fn menu_entries(w: &World, last_booted: bool) -> Vec<MenuEntry> {
    let mut entries = generation_entries(&w.generations, &w.names, w.icons.nixos.as_ref());
    if let Some(k) = &w.kinoite {
        entries.extend(k.entries.iter().cloned());
    }
    if last_booted {
        last_booted::stable_newest_title(&mut entries);
    }
    entries
}

/// Title of the default entry: Kinoite's first (after the `generations`
/// NixOS entries) when asked for and there, else the newest generation's.
pub fn default_title(
    entries: &[MenuEntry],
    generations: usize,
    default_kinoite: bool,
    has_kinoite: bool,
) -> Result<String, EspError> {
    match (default_kinoite, has_kinoite) {
        (true, false) => Err(EspError::DefaultWithoutKinoite),
        (true, true) => Ok(entries[generations].title.clone()),
        _ => Ok(entries[0].title.clone()),
    }
}

/// Every file the menu loads that bifrost puts on the ESP (ESP path →
/// source): rEFInd, the generations' kernels and initrds, Kinoite's drivers.
pub fn wanted_files(
    refind_bin: &str,
    refind_efi: &Utf8Path,
    names: &BTreeMap<Utf8PathBuf, String>,
    kinoite: Option<&Side>,
) -> BTreeMap<String, Utf8PathBuf> {
    let mut wanted = BTreeMap::new();
    wanted.insert(refind_bin.to_owned(), refind_efi.to_owned());
    wanted.extend(names.iter().map(|(src, dest)| (dest.clone(), src.clone())));
    if let Some(k) = kinoite {
        wanted.extend(k.drivers.iter().cloned());
    }
    wanted
}

/// Which files to copy, and the record of every file the menu needs as it
/// will be once they are copied. A store-named file is kept when its
/// recorded size matches the source and the ESP; one of rEFInd's when the
/// ESP holds the same image.
pub fn copies_and_records(
    wanted: &BTreeMap<String, Utf8PathBuf>,
    facts: &BTreeMap<String, FileFacts>,
    old: &BTreeMap<String, FileRecord>,
) -> (Vec<Copy>, Vec<FileRecord>) {
    let mut copies = vec![];
    let mut records = vec![];
    for (dest, src) in wanted {
        let f = &facts[dest];
        let kept = if dest.starts_with(NIXOS_DIR) {
            old.get(dest)
                .filter(|r| r.size == f.size && f.on_esp == Some(f.size))
                .cloned()
        } else {
            f.same_on_esp.as_ref().map(|h| FileRecord {
                path: dest.clone(),
                size: f.size,
                sha256: Some(h.clone()),
            })
        };
        let record = kept.unwrap_or_else(|| {
            copies.push(Copy {
                source: src.clone(),
                dest: dest.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
            });
            FileRecord {
                path: dest.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
            }
        });
        records.push(record);
    }
    (copies, records)
}

/// refind.conf as the options, the entries and the state line say it.
pub fn menu(o: &InstallOptions, entries: Vec<MenuEntry>, state: &State) -> Config {
    Config {
        timeout: o.timeout,
        default_selection: Some(if o.last_booted {
            last_booted::selection(&state.default)
        } else {
            state.default.clone()
        }),
        text_only: o.text_only,
        also_scan_dirs: vec![],
        extra: o.extra_config.clone(),
        state_comment: Some(state.comment()),
        entries,
    }
}

/// Files to delete after the switch: bifrost's own files no entry needs —
/// recorded by the old menu, listed in the journal of an interrupted run,
/// or temp files — never files another tool put in EFI/nixos (such as
/// systemd-boot's, which share the folder and the naming). Files the other
/// rEFInd folder's bifrost menu still loads are kept: the firmware may boot
/// that one after a switch of --removable.
pub fn deletes(
    w: &World,
    wanted: &BTreeMap<String, Utf8PathBuf>,
    old: &BTreeMap<String, FileRecord>,
) -> Vec<String> {
    let ours: BTreeSet<&str> = old
        .keys()
        .map(String::as_str)
        .chain(w.journal.iter().map(String::as_str))
        .collect();
    let mut deletes = vec![];
    for e in w.nixos_dir.iter().flatten() {
        let rel = format!("{NIXOS_DIR}/{}", e.name);
        let collectable = e.name.starts_with(TEMP_PREFIX) || ours.contains(rel.as_str());
        let needed = wanted.contains_key(&rel) || w.other_menu_files.contains(&rel);
        if e.size.is_some() && collectable && !needed {
            deletes.push(rel);
        }
    }
    for e in w.refind_dir_entries.iter().flatten() {
        if e.name.starts_with(TEMP_PREFIX) {
            deletes.push(format!("{}/{}", w.refind_dir, e.name));
        }
    }
    deletes.sort();
    deletes
}

/// Bytes the deletes free (after the new files are written).
pub fn bytes_freed(w: &World, deletes: &[String]) -> u64 {
    let in_dir = |dir: &str, list: &Option<Vec<super::world::DirEntry>>| -> u64 {
        list.iter()
            .flatten()
            .filter(|e| deletes.contains(&format!("{dir}/{}", e.name)))
            .filter_map(|e| e.size)
            .sum()
    };
    in_dir(NIXOS_DIR, &w.nixos_dir) + in_dir(w.refind_dir, &w.refind_dir_entries)
}

/// Bytes the install writes, in whole allocation units: the copies, the
/// new refind.conf (`None`: unchanged), the journal when EFI/nixos changes,
/// and a cluster for each folder it creates.
pub fn bytes_needed(
    w: &World,
    copies: &[Copy],
    new_config: Option<usize>,
    deletes: &[String],
) -> u64 {
    let block = w.space.block;
    let round = |n: u64| n.div_ceil(block) * block;
    let mut needed: u64 = copies.iter().map(|c| round(c.size)).sum();
    needed += new_config.map_or(0, |n| round(n as u64));
    if copies.iter().any(|c| c.dest.starts_with(NIXOS_DIR)) || !deletes.is_empty() {
        needed += block;
    }
    if !copies.is_empty() {
        let missing = [w.nixos_dir.is_none(), w.refind_dir_entries.is_none()];
        needed += block * missing.iter().filter(|m| **m).count() as u64;
    }
    needed
}

/// Refuse an install that does not fit, saying what would help. New files
/// are written before the old ones go (so a crash leaves a bootable ESP):
/// what the deletes free does not help this run.
pub fn check_space(
    esp: &Utf8Path,
    needed: u64,
    available: u64,
    generations: usize,
    freed: u64,
) -> Result<(), EspError> {
    if needed <= available {
        return Ok(());
    }
    let missing = needed - available;
    let advice = if generations > 1 {
        "lower --limit, delete old generations, or grow the ESP".to_string()
    } else {
        format!(
            "the menu already has one generation, so a lower --limit cannot help: the new kernel and initrd are copied before the old files ({freed} bytes) are deleted, so the ESP needs room for both at once; free {missing} bytes on the ESP (files other tools put there) or grow it"
        )
    };
    Err(EspError::no_space(esp, needed, available, advice))
}
