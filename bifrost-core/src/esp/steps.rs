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
        timeout: o.choices.timeout,
        default_selection: Some(if o.choices.last_booted {
            last_booted::selection(&state.default)
        } else {
            state.default.clone()
        }),
        text_only: o.choices.text_only,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::world::{DirEntry, Icons, Space};

    fn file(name: &str, size: Option<u64>) -> DirEntry {
        DirEntry {
            name: name.into(),
            size,
        }
    }

    fn target(n: u64) -> BootTarget {
        BootTarget {
            label: format!("NixOS {n}"),
            kernel: format!("/nix/store/k{n}/bzImage").into(),
            initrd: Some(format!("/nix/store/k{n}/initrd").into()),
            toplevel: format!("/nix/store/s{n}").into(),
            kernel_params: vec!["quiet".into()],
        }
    }

    /// Two generations on an ESP with 4 KiB clusters, nothing installed yet.
    fn world() -> World {
        let generations: Vec<Generation> = [2, 1]
            .into_iter()
            .map(|n| Generation {
                number: n,
                link: format!("/p/system-{n}-link").into(),
                boot: target(n),
                specialisations: if n == 2 {
                    vec![("gaming".into(), target(3))]
                } else {
                    vec![]
                },
            })
            .collect();
        let names = (1..=3)
            .flat_map(|n| {
                let t = target(n);
                [
                    (t.kernel, format!("{NIXOS_DIR}/k{n}-bzImage.efi")),
                    (t.initrd.unwrap(), format!("{NIXOS_DIR}/k{n}-initrd.efi")),
                ]
            })
            .collect();
        World {
            refind_dir: "EFI/refind",
            refind_bin: "EFI/refind/refind_x64.efi".into(),
            loader_files: vec![],
            config_path: "EFI/refind/refind.conf".into(),
            old_config: None,
            other_menu_files: BTreeSet::new(),
            journal: vec![],
            nixos_dir: None,
            refind_dir_entries: None,
            generations,
            skipped: vec![],
            names,
            icons: Icons::default(),
            kinoite: None,
            space: Space {
                available: 1 << 20,
                block: 4096,
            },
            signer: None,
        }
    }

    fn record(path: &str, size: u64, sha256: Option<&str>) -> FileRecord {
        FileRecord {
            path: path.into(),
            size,
            sha256: sha256.map(String::from),
        }
    }

    #[test]
    fn entries_load_what_the_names_say_and_specialisations_are_submenus() {
        let w = world();
        let e = menu_entries(&w, false);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].title, "Generation 2: NixOS 2");
        assert_eq!(e[0].loader, "/EFI/nixos/k2-bzImage.efi");
        assert_eq!(e[0].initrd, vec!["/EFI/nixos/k2-initrd.efi".to_string()]);
        assert_eq!(e[0].submenus[0].title, "Specialisation gaming");
        assert_eq!(
            e[0].submenus[0].initrd.as_deref(),
            Some("/EFI/nixos/k3-initrd.efi")
        );
        let last = menu_entries(&w, true);
        assert_eq!(last[0].title, last_booted::NEWEST_TITLE);
        assert_eq!(last[1].title, "Generation 1: NixOS 1");
        let wanted = wanted_files(&w.refind_bin, "/r/refind_x64.efi".into(), &w.names, None);
        assert_eq!(wanted.len(), 7);
        assert_eq!(wanted["EFI/refind/refind_x64.efi"], "/r/refind_x64.efi");
    }

    #[test]
    fn the_default_is_kinoite_only_when_there_is_a_kinoite_side() {
        let mut e = menu_entries(&world(), false);
        e.push(MenuEntry {
            title: "Fedora".into(),
            ..MenuEntry::default()
        });
        assert_eq!(default_title(&e, 2, false, true).unwrap(), e[0].title);
        assert_eq!(default_title(&e, 2, true, true).unwrap(), "Fedora");
        assert!(matches!(
            default_title(&e, 2, true, false),
            Err(EspError::DefaultWithoutKinoite)
        ));
    }

    #[test]
    fn kept_files_keep_their_record_and_copies_record_the_source() {
        let wanted: BTreeMap<String, Utf8PathBuf> = [
            ("EFI/nixos/same.efi", "/s/same"),
            ("EFI/nixos/truncated.efi", "/s/truncated"),
            ("EFI/nixos/new.efi", "/s/new"),
            ("EFI/refind/refind_x64.efi", "/s/refind"),
            ("EFI/refind/drivers_x64/ext4_x64.efi", "/s/ext4"),
        ]
        .into_iter()
        .map(|(d, s)| (d.to_string(), s.into()))
        .collect();
        let facts = |size, on_esp, sha256: Option<&str>, same: Option<&str>| FileFacts {
            size,
            on_esp,
            sha256: sha256.map(String::from),
            same_on_esp: same.map(String::from),
        };
        let facts: BTreeMap<String, FileFacts> = [
            ("EFI/nixos/same.efi", facts(10, Some(10), None, None)),
            ("EFI/nixos/truncated.efi", facts(10, Some(4), None, None)),
            ("EFI/nixos/new.efi", facts(7, None, None, None)),
            (
                "EFI/refind/refind_x64.efi",
                facts(5, Some(5), Some("new"), Some("esp")),
            ),
            (
                "EFI/refind/drivers_x64/ext4_x64.efi",
                facts(3, Some(3), Some("drv"), None),
            ),
        ]
        .into_iter()
        .map(|(d, f)| (d.to_string(), f))
        .collect();
        let old: BTreeMap<String, FileRecord> = [
            record("EFI/nixos/same.efi", 10, None),
            record("EFI/nixos/truncated.efi", 10, None),
        ]
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
        let (copies, records) = copies_and_records(&wanted, &facts, &old);
        let copied: Vec<&str> = copies.iter().map(|c| c.dest.as_str()).collect();
        assert_eq!(
            copied,
            [
                "EFI/nixos/new.efi",
                "EFI/nixos/truncated.efi",
                "EFI/refind/drivers_x64/ext4_x64.efi"
            ]
        );
        assert_eq!(copies[2].sha256.as_deref(), Some("drv"));
        // In ESP-path order, each as it will be on the ESP.
        assert_eq!(
            records,
            vec![
                record("EFI/nixos/new.efi", 7, None),
                record("EFI/nixos/same.efi", 10, None),
                record("EFI/nixos/truncated.efi", 10, None),
                record("EFI/refind/drivers_x64/ext4_x64.efi", 3, Some("drv")),
                record("EFI/refind/refind_x64.efi", 5, Some("esp")),
            ]
        );
    }

    #[test]
    fn only_bifrosts_unneeded_files_are_deleted() {
        let mut w = world();
        w.nixos_dir = Some(vec![
            file("k2-bzImage.efi", Some(1)),   // wanted
            file("old-kernel.efi", Some(100)), // recorded, not wanted
            file("journaled.efi", Some(20)),   // an interrupted run's copy
            file(".bifrost-tmp-x", Some(3)),   // a killed run's temp file
            file("systemd-boot.efi", Some(9)), // another tool's
            file("other-menu.efi", Some(9)),   // the other folder's menu loads it
            file("old-folder", None),          // recorded, but not a file
        ]);
        w.refind_dir_entries = Some(vec![
            file(".bifrost-tmp-y", Some(2)),
            file("x.efi", Some(1)),
        ]);
        w.journal = vec!["EFI/nixos/journaled.efi".into()];
        w.other_menu_files = ["EFI/nixos/other-menu.efi".to_string()].into();
        let old: BTreeMap<String, FileRecord> = [
            "old-kernel.efi",
            "other-menu.efi",
            "old-folder",
            "k2-bzImage.efi",
        ]
        .map(|n| record(&format!("EFI/nixos/{n}"), 1, None))
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
        let wanted = wanted_files(&w.refind_bin, "/r".into(), &w.names, None);
        let d = deletes(&w, &wanted, &old);
        assert_eq!(
            d,
            [
                "EFI/nixos/.bifrost-tmp-x",
                "EFI/nixos/journaled.efi",
                "EFI/nixos/old-kernel.efi",
                "EFI/refind/.bifrost-tmp-y"
            ]
        );
        assert_eq!(bytes_freed(&w, &d), 3 + 20 + 100 + 2);
    }

    #[test]
    fn space_counts_whole_clusters_the_journal_and_new_folders() {
        let mut w = world();
        let copy = |dest: &str, size| Copy {
            source: "/s".into(),
            dest: dest.into(),
            size,
            sha256: None,
        };
        let copies = [
            copy("EFI/nixos/a.efi", 1),
            copy("EFI/refind/refind_x64.efi", 4097),
        ];
        // 1 + 2 clusters of files, 1 of refind.conf, 1 of journal, 2 new folders.
        assert_eq!(bytes_needed(&w, &copies, Some(10), &[]), 7 * 4096);
        w.nixos_dir = Some(vec![]);
        w.refind_dir_entries = Some(vec![]);
        assert_eq!(bytes_needed(&w, &copies[1..], None, &[]), 2 * 4096);
        // Deleting alone writes the journal.
        assert_eq!(bytes_needed(&w, &[], None, &["EFI/nixos/x".into()]), 4096);
        assert_eq!(bytes_needed(&w, &[], None, &[]), 0);
    }

    #[test]
    fn no_space_says_what_helps() {
        let esp = Utf8Path::new("/boot");
        assert!(check_space(esp, 10, 10, 1, 0).is_ok());
        let many = check_space(esp, 11, 10, 3, 0).unwrap_err().to_string();
        assert!(many.contains("lower --limit"), "{many}");
        assert!(many.contains("1 bytes (0.0 MiB) are missing"), "{many}");
        let one = check_space(esp, 30, 10, 1, 500).unwrap_err().to_string();
        assert!(one.contains("a lower --limit cannot help"), "{one}");
        assert!(one.contains("old files (500 bytes)"), "{one}");
        assert!(one.contains("free 20 bytes"), "{one}");
    }
}
