//! The Kinoite side of rEFInd's menu, and keeping it bootable across
//! Kinoite's own updates.
//!
//! Kinoite updates itself without NixOS: ostree writes a new deployment with
//! new Boot Loader Specification entries whose `ostree=` argument names the
//! *new* boot version (`/ostree/boot.0` and `/ostree/boot.1` alternate), and
//! prunes older deployments with their kernels and initrds (see
//! docs/kinoite.md for where ostree does this). A copy of those entries goes
//! stale; so there are two modes:
//!
//! - **chainload** (the default): one entry that starts Fedora's own boot
//!   loader from the ESP, which reads the current entries itself.
//! - **direct**: one rEFInd entry per BLS entry. They are the *last* stanzas
//!   of refind.conf, recorded in its state line, so [`refresh`] (run on
//!   Kinoite after each update) can re-render exactly that part without
//!   touching the NixOS entries or their files.

use super::{
    parse_state, ConfigStatus, EspError, InstallOptions, State, Status, KINOITE_DRIVERS,
    STATE_MARKER,
};
use crate::refind::{self, bls, chainload, Config, MenuEntry};
use crate::spec::KinoiteMode;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

pub use super::refresh::refresh;
pub use chainload::FEDORA_LOADERS;

/// What refind.conf's state line records about the Kinoite side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KinoiteState {
    pub mode: KinoiteMode,
    /// Chainload: ESP-relative path of Fedora's loader the entry starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loader: Option<String>,
    /// Direct: rEFInd volume of Kinoite's `/boot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// Icon of the Kinoite entries (none in text-only menus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Direct: the entries, in menu order; they are refind.conf's last stanzas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryRecord>,
    /// Kinoite's first entry is the default selection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

/// One direct entry: what it loads from Kinoite's `/boot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub title: String,
    pub linux: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub initrd: Vec<String>,
    /// The `ostree=` kernel argument, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ostree: Option<String>,
}

/// The Kinoite part of one install.
#[derive(Debug, Clone)]
pub struct Side {
    pub entries: Vec<MenuEntry>,
    /// ESP-relative destination and source of the file-system drivers direct mode needs.
    pub drivers: Vec<(String, Utf8PathBuf)>,
    pub state: KinoiteState,
}

/// Fedora's boot loader on `esp` (ESP-relative), shim preferred.
pub fn find_loader(esp: &Utf8Path) -> Option<&'static str> {
    FEDORA_LOADERS
        .iter()
        .copied()
        .find(|l| esp.join(l).is_file())
}

/// What to tell a user whose ESP has no Fedora loader.
pub const NO_LOADER_FIX: &str = "Fedora's boot loader is not on this ESP (looked for EFI/fedora/shimx64.efi and EFI/fedora/grubx64.efi). Check that --esp is the ESP Kinoite uses; from Kinoite, put it back with `sudo bootupctl update` (or `sudo dnf reinstall shim-x64 grub2-efi-x64` on a package-based Fedora); or choose direct entries (`dualBoot.kinoite.mode = \"direct\"`, `--kinoite-mode direct`)";

fn ostree_arg(options: &[String]) -> Option<String> {
    options
        .iter()
        .flat_map(|o| o.split_whitespace())
        .find(|w| w.starts_with("ostree="))
        .map(String::from)
}

/// Kinoite's BLS entries in `dir`; none at all is an error (an empty menu part
/// could neither boot Kinoite nor be found again by a refresh).
pub(super) fn read_entries(dir: &Utf8Path) -> Result<Vec<bls::BlsEntry>, EspError> {
    let bls = bls::read_dir(dir).map_err(EspError::Kinoite)?;
    if bls.is_empty() {
        return Err(EspError::Kinoite(refind::RefindError::Bls {
            path: dir.to_string(),
            msg: "holds no usable entries; point --kinoite-entries at Kinoite's loader/entries folder".into(),
        }));
    }
    Ok(bls)
}

/// Menu entries and their records for BLS entries booted from `volume`.
fn direct_entries(
    bls: &[bls::BlsEntry],
    volume: &str,
    icon: Option<&String>,
) -> (Vec<MenuEntry>, Vec<EntryRecord>) {
    bls.iter()
        .map(|e| {
            let m = bls::menu_entry(e, volume, icon.cloned());
            let r = EntryRecord {
                title: m.title.clone(),
                linux: m.loader.clone(),
                initrd: m.initrd.clone(),
                ostree: ostree_arg(&e.options),
            };
            (m, r)
        })
        .unzip()
}

/// The Kinoite part of an install, or `None` without a Kinoite side.
pub(super) fn side(
    o: &InstallOptions,
    refind_dir: &str,
    icon: Option<String>,
) -> Result<Option<Side>, EspError> {
    if let Some(title) = &o.choices.kinoite_chainload {
        let loader =
            find_loader(&o.esp).ok_or_else(|| EspError::NoFedoraLoader(o.esp.to_string()))?;
        return Ok(Some(Side {
            entries: vec![chainload::menu_entry(title, loader, icon.clone())],
            drivers: vec![],
            state: KinoiteState {
                mode: KinoiteMode::Chainload,
                loader: Some(loader.into()),
                volume: None,
                icon,
                entries: vec![],
                default: o.choices.default_kinoite,
            },
        }));
    }
    let Some((dir, volume)) = &o.choices.kinoite else {
        return Ok(None);
    };
    let bls = read_entries(dir)?;
    let from = o
        .refind_efi
        .parent()
        .unwrap_or(Utf8Path::new("."))
        .join("drivers_x64");
    let mut drivers = vec![];
    for d in KINOITE_DRIVERS {
        let src = from.join(d);
        if src.is_file() {
            drivers.push((format!("{refind_dir}/drivers_x64/{d}"), src));
        } else if d == KINOITE_DRIVERS[0] {
            return Err(EspError::MissingDriver(src.to_string()));
        }
    }
    // rEFInd cannot find a file-system UUID: its partition GUID stands in.
    let volume = super::volume::refind_volume(volume, Utf8Path::new("/dev/disk"))?;
    let (entries, records) = direct_entries(&bls, &volume, icon.as_ref());
    Ok(Some(Side {
        entries,
        drivers,
        state: KinoiteState {
            mode: KinoiteMode::Direct,
            loader: None,
            volume: Some(volume),
            icon,
            entries: records,
            default: o.choices.default_kinoite,
        },
    }))
}

/// Everything `bifrost esp refresh-kinoite` takes.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub esp: Utf8PathBuf,
    /// Kinoite's current BLS entries (`/boot/loader/entries`).
    pub entries: Utf8PathBuf,
    /// rEFInd volume of Kinoite's `/boot`.
    pub volume: String,
}

/// What a refresh did to one refind.conf.
#[derive(Debug, Clone, Serialize)]
pub struct Refreshed {
    /// ESP-relative path of the refind.conf.
    pub config: String,
    pub mode: KinoiteMode,
    /// Titles of the Kinoite entries now in the menu.
    pub entries: Vec<String>,
    pub written: bool,
}

/// What `refresh` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RefreshReport {
    pub configs: Vec<Refreshed>,
    pub bytes_written: u64,
}

/// The text of refind.conf split before its last `k` stanzas.
fn split_last_stanzas(text: &str, k: usize) -> Option<(&str, &str)> {
    if k == 0 {
        return Some((text, ""));
    }
    // A stanza starts on a line of its own after a blank line; titles,
    // options and extra lines can hold no newline, so this cannot match
    // inside a value.
    let starts: Vec<usize> = text
        .match_indices("\n\nmenuentry \"")
        .map(|(i, _)| i + 1)
        .collect();
    let at = *starts.get(starts.len().checked_sub(k)?)?;
    Some(text.split_at(at))
}

fn stanza_titles(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("menuentry \""))
        .map(|t| t.trim_end_matches(" {").trim_end_matches('"'))
        .collect()
}

/// The rendered stanzas of `entries`, exactly as `esp install` writes them.
fn render_stanzas(entries: Vec<MenuEntry>) -> Result<String, EspError> {
    let text = refind::render(&Config {
        entries,
        ..Config::default()
    })
    .map_err(EspError::Render)?;
    let at = text.find("\n\nmenuentry \"").map_or(text.len(), |i| i + 1);
    Ok(text[at..].to_string())
}

/// The new text of one refind.conf with the Kinoite part re-rendered from
/// `bls`, or `None` when it holds no direct Kinoite entries.
pub(super) fn refreshed_text(
    config: &str,
    old: &str,
    bls: &[bls::BlsEntry],
    volume: &str,
) -> Result<Option<(String, KinoiteState)>, EspError> {
    let mismatch = |why: &str| EspError::KinoiteMismatch {
        config: config.to_string(),
        why: why.to_string(),
    };
    let state = parse_state(old).ok_or_else(|| mismatch("it has no bifrost state line"))?;
    let Some(k) = state.kinoite.clone() else {
        return Ok(None);
    };
    if k.mode != KinoiteMode::Direct {
        return Ok(None);
    }
    let (head, tail) = split_last_stanzas(old, k.entries.len())
        .ok_or_else(|| mismatch("it has fewer menu entries than its state line records"))?;
    let recorded: Vec<&str> = k.entries.iter().map(|e| e.title.as_str()).collect();
    if stanza_titles(tail) != recorded {
        return Err(mismatch(
            "its last menu entries are not the Kinoite entries its state line records",
        ));
    }
    let (entries, records) = direct_entries(bls, volume, k.icon.as_ref());
    let first_title = entries[0].title.clone();
    let stanzas = render_stanzas(entries)?;
    let new_k = KinoiteState {
        volume: Some(volume.to_string()),
        entries: records,
        ..k
    };
    let new_state = State {
        default: if new_k.default {
            first_title.clone()
        } else {
            state.default.clone()
        },
        kinoite: Some(new_k.clone()),
        ..state
    };
    let state_line = format!("# {}", new_state.comment());
    let mut out = String::with_capacity(old.len());
    for line in head.split_inclusive('\n') {
        if line.starts_with(&format!("# {STATE_MARKER}")) {
            out.push_str(&state_line);
            out.push('\n');
        } else if new_k.default && line.starts_with("default_selection ") {
            out.push_str(&format!("default_selection \"{first_title}\"\n"));
        } else {
            out.push_str(line);
        }
    }
    out.push_str(&stanzas);
    Ok(Some((out, new_k)))
}

/// What the checks of one installed Kinoite side read: is Fedora's loader
/// there (chainload); which deployments Kinoite's current entries name and
/// which recorded kernels and initrds exist (direct, with its `/boot`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideSeen {
    /// Chainload: Fedora's loader is a file on the ESP.
    pub loader: bool,
    /// Direct with `/boot`: the `ostree=` targets of the current entries,
    /// or why they could not be read.
    pub current: Option<Result<Vec<String>, String>>,
    /// Direct with `/boot`: the recorded kernels and initrds that exist there.
    pub present: std::collections::BTreeSet<String>,
}

/// Read what [`side_problems`] judges.
pub fn read_side(esp: &Utf8Path, k: &KinoiteState, kinoite_boot: Option<&Utf8Path>) -> SideSeen {
    if k.mode == KinoiteMode::Chainload {
        let loader = k.loader.as_deref().unwrap_or(FEDORA_LOADERS[0]);
        return SideSeen {
            loader: esp.join(loader).is_file(),
            ..SideSeen::default()
        };
    }
    let Some(boot) = kinoite_boot else {
        return SideSeen::default();
    };
    let current = bls::read_dir(&boot.join("loader/entries"))
        .map(|c| c.iter().filter_map(|e| ostree_arg(&e.options)).collect())
        .map_err(|e| e.to_string());
    let files = k
        .entries
        .iter()
        .flat_map(|e| std::iter::once(&e.linux).chain(&e.initrd));
    let present = files
        .filter(|p| boot.join(p.trim_start_matches('/')).is_file())
        .cloned()
        .collect();
    SideSeen {
        loader: false,
        current: Some(current),
        present,
    }
}

/// Problems of the Kinoite side `k` of one installed refind.conf, as
/// `seen`: Fedora's loader missing (chainload), and with Kinoite's `/boot`
/// given, direct entries whose kernel, initrd or deployment no longer exists.
pub fn side_problems(k: &KinoiteState, boot: Option<&Utf8Path>, seen: &SideSeen) -> Vec<String> {
    if k.mode == KinoiteMode::Chainload {
        let loader = k.loader.as_deref().unwrap_or(FEDORA_LOADERS[0]);
        if seen.loader {
            return vec![];
        }
        return vec![format!(
            "{loader}: missing, so the Kinoite entry cannot start. {NO_LOADER_FIX}"
        )];
    }
    let (Some(boot), Some(current)) = (boot, &seen.current) else {
        return vec![];
    };
    // ostree writes the entries of every current deployment with the
    // current boot version in one switch, so an `ostree=` target that no
    // current entry names was swapped away (`boot.N` of the other version)
    // or pruned with its deployment.
    let targets = match current {
        Ok(t) => t,
        Err(e) => {
            return vec![format!(
                "cannot read Kinoite's current entries below {boot}: {e}; pass Kinoite's /boot with --kinoite-boot"
            )]
        }
    };
    k.entries
        .iter()
        .filter_map(|e| stale_entry(e, targets, &seen.present))
        .collect()
}

/// Why one direct entry no longer boots, if it does not.
fn stale_entry(
    e: &EntryRecord,
    targets: &[String],
    present: &std::collections::BTreeSet<String>,
) -> Option<String> {
    const FIX: &str = "run `bifrost esp refresh-kinoite` on Kinoite (docs/kinoite.md has a systemd unit that does it after every update), run `bifrost esp install` from NixOS, or switch to chainload mode";
    let mut gone = vec![];
    for (what, p) in
        std::iter::once(("kernel", &e.linux)).chain(e.initrd.iter().map(|i| ("initrd", i)))
    {
        if !present.contains(p) {
            gone.push(format!("{what} {p} no longer exists"));
        }
    }
    if let Some(t) = e.ostree.as_ref().filter(|t| !targets.contains(t)) {
        let named = if targets.is_empty() {
            "none".to_string()
        } else {
            targets.join(", ")
        };
        gone.push(format!(
            "{t} is not a current deployment (Kinoite's entries now name {named})"
        ));
    }
    (!gone.is_empty()).then(|| {
        format!(
            "Kinoite entry {:?} is stale: {}; {FIX}",
            e.title,
            gone.join("; ")
        )
    })
}

/// Problems of the Kinoite side of one installed refind.conf: Fedora's
/// loader missing (chainload), and with Kinoite's `/boot` given, direct
/// entries whose kernel, initrd or deployment no longer exists.
pub fn problems(esp: &Utf8Path, k: &KinoiteState, kinoite_boot: Option<&Utf8Path>) -> Vec<String> {
    side_problems(k, kinoite_boot, &read_side(esp, k, kinoite_boot))
}

/// `bifrost esp status`: [`super::status`] plus the Kinoite side's checks.
pub fn status(esp: &Utf8Path, kinoite_boot: Option<&Utf8Path>) -> Result<Status, EspError> {
    let mut st = super::status(esp)?;
    let found: Vec<(String, KinoiteState)> = st
        .installs
        .iter()
        .filter_map(|i: &ConfigStatus| Some((i.config.clone(), i.kinoite.clone()?)))
        .collect();
    for (config, k) in found {
        for p in problems(esp, &k, kinoite_boot) {
            st.problems.push(format!("{config}: {p}"));
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bls_entry(n: u32, csum: &str, bootversion: u32) -> String {
        format!(
            "title Fedora Linux 41.{n} (Kinoite) (ostree:{})\nversion {n}\noptions root=UUID=1 rw ostree=/ostree/boot.{bootversion}/fedora/{csum}/0\nlinux /ostree/fedora-{csum}/vmlinuz\ninitrd /ostree/fedora-{csum}/initramfs.img\n",
            2 - n
        )
    }

    const NIXOS: &str = "\nmenuentry \"Generation 1: NixOS\" {\n    loader /EFI/nixos/k.efi\n    options \"init=/x menuentry\"\n}\n";

    fn installed(bls: &[bls::BlsEntry], default: bool) -> String {
        let (entries, records) = direct_entries(bls, "KB", None);
        let st = State {
            version: 1,
            default: if default {
                entries[0].title.clone()
            } else {
                "Generation 1: NixOS".into()
            },
            generations: vec![1],
            files: vec![],
            kinoite: Some(KinoiteState {
                mode: KinoiteMode::Direct,
                loader: None,
                volume: Some("KB".into()),
                icon: None,
                entries: records,
                default,
            }),
        };
        format!(
            "# Written by bifrost\n# {STATE_MARKER}{}\ntimeout 5\nscanfor manual\ndefault_selection \"{}\"\n{NIXOS}{}",
            serde_json::to_string(&st).unwrap(),
            st.default,
            render_stanzas(entries).unwrap()
        )
    }

    fn parse(entries: &[(u32, &str, u32)]) -> Vec<bls::BlsEntry> {
        entries
            .iter()
            .map(|(n, c, v)| {
                bls::parse(
                    "x.conf",
                    &format!("ostree-{n}-fedora"),
                    &bls_entry(*n, c, *v),
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn refresh_replaces_only_the_kinoite_stanzas() {
        let before = parse(&[(1, "aaa", 0)]);
        let old = installed(&before, false);
        let after = parse(&[(2, "ccc", 1), (1, "aaa", 1)]);
        let (new, k) = refreshed_text("c", &old, &after, "KB").unwrap().unwrap();
        assert_eq!(
            new,
            installed(&after, false),
            "same text as an install would write"
        );
        assert!(new.contains(NIXOS));
        assert_eq!(
            k.entries[0].ostree.as_deref(),
            Some("ostree=/ostree/boot.1/fedora/ccc/0")
        );
        // Nothing changed: the same text.
        let (again, _) = refreshed_text("c", &new, &after, "KB").unwrap().unwrap();
        assert_eq!(again, new);
    }

    #[test]
    fn refresh_follows_a_kinoite_default() {
        let old = installed(&parse(&[(1, "aaa", 0)]), true);
        let after = parse(&[(2, "ccc", 1), (1, "aaa", 1)]);
        let (new, _) = refreshed_text("c", &old, &after, "KB").unwrap().unwrap();
        assert_eq!(new, installed(&after, true));
        assert!(new.contains("default_selection \"Fedora Linux 41.2 (Kinoite) (ostree:0)\""));
    }

    #[test]
    fn hand_edited_menu_is_refused() {
        let old = installed(&parse(&[(1, "aaa", 0)]), false);
        let edited = old.replace("(ostree:1)\" {", "(mine)\" {");
        let err = refreshed_text("c", &edited, &parse(&[(1, "aaa", 0)]), "KB").unwrap_err();
        assert!(matches!(err, EspError::KinoiteMismatch { .. }), "{err}");
        let no_state = NIXOS.to_string();
        assert!(refreshed_text("c", &no_state, &parse(&[(1, "aaa", 0)]), "KB").is_err());
    }

    #[test]
    fn stale_entries_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let boot = Utf8Path::from_path(tmp.path()).unwrap();
        let (_, records) = direct_entries(&parse(&[(2, "bbb", 0), (1, "aaa", 0)]), "KB", None);
        let k = KinoiteState {
            mode: KinoiteMode::Direct,
            loader: None,
            volume: Some("KB".into()),
            icon: None,
            entries: records,
            default: false,
        };
        // After the update: ccc and bbb under boot version 1; aaa pruned.
        std::fs::create_dir_all(boot.join("loader/entries")).unwrap();
        for (n, c) in [(2, "ccc"), (1, "bbb")] {
            std::fs::create_dir_all(boot.join(format!("ostree/fedora-{c}"))).unwrap();
            std::fs::write(boot.join(format!("ostree/fedora-{c}/vmlinuz")), b"k").unwrap();
            std::fs::write(boot.join(format!("ostree/fedora-{c}/initramfs.img")), b"i").unwrap();
            std::fs::write(
                boot.join(format!("loader/entries/ostree-{n}-fedora.conf")),
                bls_entry(n, c, 1),
            )
            .unwrap();
        }
        let p = problems(boot, &k, Some(boot));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("ostree=/ostree/boot.0/fedora/bbb/0 is not a current deployment"),
            "{}",
            p[0]
        );
        assert!(!p[0].contains("kernel"), "{}", p[0]);
        assert!(
            p[1].contains("kernel /ostree/fedora-aaa/vmlinuz no longer exists"),
            "{}",
            p[1]
        );
        assert!(
            p[1].contains("initrd /ostree/fedora-aaa/initramfs.img"),
            "{}",
            p[1]
        );
        // Without Kinoite's /boot nothing can be said.
        assert!(problems(boot, &k, None).is_empty());
    }

    #[test]
    fn side_problems_are_judged_from_what_was_read() {
        let menu = installed(&parse(&[(1, "aaa", 0)]), false);
        let k = parse_state(&menu).unwrap().kinoite.unwrap();
        let boot = Some(Utf8Path::new("/kb"));
        let files = [
            "/ostree/fedora-aaa/vmlinuz",
            "/ostree/fedora-aaa/initramfs.img",
        ];
        let all_there = SideSeen {
            loader: false,
            current: Some(Ok(vec!["ostree=/ostree/boot.0/fedora/aaa/0".into()])),
            present: files.iter().map(|f| f.to_string()).collect(),
        };
        assert!(side_problems(&k, boot, &all_there).is_empty());
        // Without Kinoite's /boot nothing was read and nothing is said.
        assert!(side_problems(&k, None, &SideSeen::default()).is_empty());
        let gone = SideSeen {
            current: Some(Ok(vec![])),
            present: Default::default(),
            ..all_there.clone()
        };
        let p = side_problems(&k, boot, &gone);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("kernel /ostree/fedora-aaa/vmlinuz no longer exists; initrd /ostree/fedora-aaa/initramfs.img no longer exists; ostree=/ostree/boot.0/fedora/aaa/0 is not a current deployment (Kinoite's entries now name none)"), "{}", p[0]);
        let unreadable = SideSeen {
            current: Some(Err("no such folder".into())),
            ..all_there
        };
        assert_eq!(
            side_problems(&k, boot, &unreadable),
            ["cannot read Kinoite's current entries below /kb: no such folder; pass Kinoite's /boot with --kinoite-boot"]
        );
        let chain = KinoiteState {
            mode: KinoiteMode::Chainload,
            loader: Some("EFI/fedora/shimx64.efi".into()),
            entries: vec![],
            ..k
        };
        assert!(side_problems(
            &chain,
            None,
            &SideSeen {
                loader: true,
                ..Default::default()
            }
        )
        .is_empty());
        let p = side_problems(&chain, None, &SideSeen::default());
        assert!(p[0].starts_with("EFI/fedora/shimx64.efi: missing"), "{p:?}");
    }

    #[test]
    fn chainload_loader_missing_is_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let esp = Utf8Path::from_path(tmp.path()).unwrap();
        assert_eq!(find_loader(esp), None);
        std::fs::create_dir_all(esp.join("EFI/fedora")).unwrap();
        std::fs::write(esp.join("EFI/fedora/grubx64.efi"), b"MZ").unwrap();
        assert_eq!(find_loader(esp), Some("EFI/fedora/grubx64.efi"));
        std::fs::write(esp.join("EFI/fedora/shimx64.efi"), b"MZ").unwrap();
        assert_eq!(find_loader(esp), Some("EFI/fedora/shimx64.efi"));
        let k = KinoiteState {
            mode: KinoiteMode::Chainload,
            loader: Some("EFI/fedora/shimx64.efi".into()),
            volume: None,
            icon: None,
            entries: vec![],
            default: false,
        };
        assert!(problems(esp, &k, None).is_empty());
        std::fs::remove_file(esp.join("EFI/fedora/shimx64.efi")).unwrap();
        let p = problems(esp, &k, None);
        assert!(p[0].contains("bootupctl update"), "{p:?}");
    }
}
