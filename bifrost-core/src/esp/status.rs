//! `esp status` (without the Kinoite side's checks, which
//! [`super::kinoite::status`] adds): the ESP is read once into a
//! [`Snapshot`] — free space, each rEFInd folder's refind.conf, and what is
//! at each path its state line records — then judged by pure steps, one per
//! finding. Everything under the ESP is read through [`confine::checked`]: a
//! state line naming a path outside the ESP or through a link is refused,
//! never read.

use super::{
    confine, hash_file, kinoite, last_booted, menu_check, parse_state, statvfs, EspError,
    FileRecord, State, REFIND_DIRS, STATE_MARKER,
};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeSet;

/// State of one file bifrost recorded.
#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub path: String,
    pub size: u64,
    pub ok: bool,
}

/// One installed refind.conf and what it needs.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    pub config: String,
    pub entries: Vec<String>,
    pub default: Option<String>,
    pub default_generation: Option<u64>,
    pub generations: Vec<u64>,
    pub files: Vec<FileStatus>,
    /// The Kinoite side this menu boots.
    pub kinoite: Option<kinoite::KinoiteState>,
}

/// What `bifrost esp status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub esp: Utf8PathBuf,
    pub installs: Vec<ConfigStatus>,
    pub bytes_total: u64,
    pub bytes_free: u64,
    pub bytes_used: u64,
    /// Bytes of the files bifrost recorded.
    pub bytes_bifrost: u64,
    pub problems: Vec<String>,
}

impl Status {
    pub fn consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What is at a path a state line records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The path leaves the ESP or runs through a link (why); not read.
    Refused(String),
    /// No regular file there.
    Missing,
    /// A regular file of `size` bytes. `sha256` is read only when the record
    /// has a hash and the sizes agree (a size that differs already says it
    /// changed); `None` there means it could not be read.
    File { size: u64, sha256: Option<String> },
}

/// One rEFInd folder's refind.conf as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// Its path leaves the ESP or runs through a link (why).
    Refused(String),
    /// No readable refind.conf there.
    Absent,
    /// Its text (invalid UTF-8 replaced), without a state line.
    Foreign,
    /// A bifrost menu: its text, its state line, and what is at each path
    /// the state line records, in the record's order.
    Bifrost {
        text: String,
        state: Box<State>,
        seen: Vec<Seen>,
    },
}

/// Everything `esp status` judges, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub esp: Utf8PathBuf,
    pub bytes_total: u64,
    pub bytes_free: u64,
    /// ESP-relative path of each refind.conf (in [`REFIND_DIRS`] order) and what is there.
    pub configs: Vec<(String, Config)>,
}

/// Read the ESP for `esp status`.
pub fn read(esp: &Utf8Path) -> Result<Snapshot, EspError> {
    if !esp.is_dir() {
        return Err(EspError::NotAFolder(esp.to_string()));
    }
    let (free, total, _) = statvfs(esp)?;
    let configs = REFIND_DIRS
        .iter()
        .map(|(dir, _)| {
            let rel = format!("{dir}/refind.conf");
            let config = read_config(esp, &rel);
            (rel, config)
        })
        .collect();
    Ok(Snapshot {
        esp: esp.to_owned(),
        bytes_total: total,
        bytes_free: free,
        configs,
    })
}

fn read_config(esp: &Utf8Path, rel: &str) -> Config {
    let path = match confine::checked(esp, rel) {
        Ok(p) => p,
        Err(e) => return Config::Refused(e.to_string()),
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return Config::Absent;
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let Some(state) = parse_state(&text) else {
        return Config::Foreign;
    };
    let seen = state.files.iter().map(|f| read_file(esp, f)).collect();
    Config::Bifrost {
        text,
        state: Box::new(state),
        seen,
    }
}

fn read_file(esp: &Utf8Path, record: &FileRecord) -> Seen {
    let p = match confine::checked(esp, &record.path) {
        Ok(p) => p,
        Err(e) => return Seen::Refused(e.to_string()),
    };
    let size = std::fs::metadata(&p)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    match size {
        None => Seen::Missing,
        Some(size) => Seen::File {
            size,
            sha256: (size == record.size && record.sha256.is_some())
                .then(|| hash_file(&p).ok().map(|(_, h)| h))
                .flatten(),
        },
    }
}

/// Whether a recorded file is as bifrost wrote it, and if not, why
/// (`rel`: the refind.conf that needs it).
pub fn file_problem(rel: &str, record: &FileRecord, seen: &Seen) -> Option<String> {
    let path = &record.path;
    match seen {
        Seen::Refused(why) => Some(format!("{rel}: state line: {why}")),
        Seen::Missing => Some(format!("{path}: missing (needed by {rel})")),
        Seen::File { size, .. } if *size != record.size => Some(format!(
            "{path}: {size} bytes, expected {} (truncated or changed)",
            record.size
        )),
        Seen::File { sha256, .. } => match &record.sha256 {
            Some(h) if sha256.as_ref() != Some(h) => {
                Some(format!("{path}: content differs from what bifrost wrote"))
            }
            _ => None,
        },
    }
}

/// ESP paths the menu loads that bifrost did not record: every one must be
/// a recorded file, or Fedora's loader the chainload entry starts (checked
/// in [`kinoite`]).
pub fn unrecorded_loads(rel: &str, menu: &menu_check::Menu, state: &State) -> Vec<String> {
    let mut recorded: BTreeSet<&str> = state.files.iter().map(|f| f.path.as_str()).collect();
    recorded.extend(state.kinoite.as_ref().and_then(|k| k.loader.as_deref()));
    menu.loaded
        .iter()
        .filter(|p| !recorded.contains(p.as_str()))
        .map(|p| format!("{rel}: references /{p}, which bifrost did not record"))
        .collect()
}

/// The generation the default entry boots: the newest under the
/// last-booted default's stable title, else the number in its title.
pub fn default_generation(state: &State) -> Option<u64> {
    if state.default == last_booted::NEWEST_TITLE {
        return state.generations.first().copied();
    }
    state
        .default
        .strip_prefix("Generation ")
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
}

/// One bifrost menu judged: its report, its problems, and the bytes of the
/// files it records (a refused path counts none: it is not on the ESP).
pub fn judge_menu(
    rel: &str,
    text: &str,
    state: &State,
    seen: &[Seen],
) -> (ConfigStatus, Vec<String>, u64) {
    let mut problems = vec![];
    let mut bytes = 0;
    let mut files = vec![];
    for (f, s) in state.files.iter().zip(seen) {
        let problem = file_problem(rel, f, s);
        if !matches!(s, Seen::Refused(_)) {
            bytes += f.size;
        }
        files.push(FileStatus {
            path: f.path.clone(),
            size: f.size,
            ok: problem.is_none(),
        });
        problems.extend(problem);
    }
    let menu = menu_check::read(text);
    problems.extend(menu_check::problems(rel, &menu, state));
    problems.extend(unrecorded_loads(rel, &menu, state));
    let install = ConfigStatus {
        config: rel.to_owned(),
        entries: menu.titles,
        default: Some(state.default.clone()),
        default_generation: default_generation(state),
        generations: state.generations.clone(),
        files,
        kinoite: state.kinoite.clone(),
    };
    (install, problems, bytes)
}

/// The whole report over a snapshot.
pub fn judge(s: &Snapshot) -> Status {
    let mut st = Status {
        esp: s.esp.clone(),
        installs: vec![],
        bytes_total: s.bytes_total,
        bytes_free: s.bytes_free,
        bytes_used: s.bytes_total.saturating_sub(s.bytes_free),
        bytes_bifrost: 0,
        problems: vec![],
    };
    for (rel, config) in &s.configs {
        match config {
            Config::Refused(why) => st.problems.push(why.clone()),
            Config::Absent => {}
            Config::Foreign => st.problems.push(format!(
                "{rel}: not written by bifrost (no `# {STATE_MARKER}` line)"
            )),
            Config::Bifrost { text, state, seen } => {
                let (install, problems, bytes) = judge_menu(rel, text, state, seen);
                st.installs.push(install);
                st.problems.extend(problems);
                st.bytes_bifrost += bytes;
            }
        }
    }
    let found = s
        .configs
        .iter()
        .any(|(_, c)| !matches!(c, Config::Refused(_) | Config::Absent));
    if !found {
        st.problems.push(format!(
            "no refind.conf in {} or {}: nothing boots from this ESP through bifrost; run `bifrost esp install`",
            REFIND_DIRS[0].0, REFIND_DIRS[1].0
        ));
    }
    st
}

/// Inspect the ESP: installed configurations, their files, free space, problems.
pub fn status(esp: &Utf8Path) -> Result<Status, EspError> {
    Ok(judge(&read(esp)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, size: u64, sha256: Option<&str>) -> FileRecord {
        FileRecord {
            path: path.into(),
            size,
            sha256: sha256.map(String::from),
        }
    }

    fn state(default: &str) -> State {
        State {
            version: 1,
            default: default.into(),
            generations: vec![2, 1],
            files: vec![
                record("EFI/nixos/k2.efi", 10, None),
                record("EFI/refind/refind_x64.efi", 4, Some("aa")),
            ],
            kinoite: None,
        }
    }

    const MENU: &str = "# bifrost-state {}\nmenuentry \"Generation 2: NixOS\" {\n    loader /EFI/nixos/k2.efi\n}\n\nmenuentry \"Generation 1: NixOS\" {\n    loader /EFI/nixos/k2.efi\n}\n";

    fn file(size: u64, sha256: Option<&str>) -> Seen {
        Seen::File {
            size,
            sha256: sha256.map(String::from),
        }
    }

    fn snapshot(configs: Vec<Config>) -> Snapshot {
        Snapshot {
            esp: "/esp".into(),
            bytes_total: 100,
            bytes_free: 30,
            configs: REFIND_DIRS
                .iter()
                .map(|(d, _)| format!("{d}/refind.conf"))
                .zip(configs)
                .collect(),
        }
    }

    #[test]
    fn each_file_finding_names_the_file_and_why() {
        let k = record("EFI/nixos/k.efi", 10, None);
        let r = record("EFI/refind/refind_x64.efi", 4, Some("aa"));
        assert_eq!(file_problem("c", &k, &file(10, None)), None);
        assert_eq!(file_problem("c", &r, &file(4, Some("aa"))), None);
        assert_eq!(
            file_problem("c", &k, &Seen::Missing).unwrap(),
            "EFI/nixos/k.efi: missing (needed by c)"
        );
        assert_eq!(
            file_problem("c", &k, &file(3, None)).unwrap(),
            "EFI/nixos/k.efi: 3 bytes, expected 10 (truncated or changed)"
        );
        // Another hash, or none because it could not be read.
        for seen in [file(4, Some("bb")), file(4, None)] {
            assert_eq!(
                file_problem("c", &r, &seen).unwrap(),
                "EFI/refind/refind_x64.efi: content differs from what bifrost wrote"
            );
        }
        assert_eq!(
            file_problem("c", &k, &Seen::Refused("why".into())).unwrap(),
            "c: state line: why"
        );
    }

    #[test]
    fn the_default_generation_follows_the_title() {
        assert_eq!(default_generation(&state("Generation 1: NixOS")), Some(1));
        assert_eq!(
            default_generation(&state(last_booted::NEWEST_TITLE)),
            Some(2)
        );
        assert_eq!(default_generation(&state("Fedora Linux 41")), None);
    }

    #[test]
    fn a_load_bifrost_did_not_record_is_named() {
        let mut st = state("Generation 2: NixOS");
        let menu = menu_check::read(&format!(
            "{MENU}\nmenuentry \"x\" {{\n    loader /EFI/fedora/shimx64.efi\n}}\n"
        ));
        assert_eq!(
            unrecorded_loads("c", &menu, &st),
            ["c: references /EFI/fedora/shimx64.efi, which bifrost did not record"]
        );
        // Fedora's loader that the chainload entry starts is expected.
        st.kinoite = Some(kinoite::KinoiteState {
            mode: crate::spec::KinoiteMode::Chainload,
            loader: Some("EFI/fedora/shimx64.efi".into()),
            volume: None,
            icon: None,
            entries: vec![],
            default: false,
        });
        assert!(unrecorded_loads("c", &menu, &st).is_empty());
    }

    #[test]
    fn a_whole_esp_is_judged_from_its_snapshot() {
        let good = Config::Bifrost {
            text: MENU.into(),
            state: Box::new(state("Generation 2: NixOS")),
            seen: vec![file(10, None), file(4, Some("aa"))],
        };
        let st = judge(&snapshot(vec![good.clone(), Config::Absent]));
        assert!(st.consistent(), "{:?}", st.problems);
        assert_eq!((st.bytes_used, st.bytes_bifrost), (70, 14));
        let i = &st.installs[0];
        assert_eq!(i.config, "EFI/refind/refind.conf");
        assert_eq!(i.entries, ["Generation 2: NixOS", "Generation 1: NixOS"]);
        assert_eq!(i.default_generation, Some(2));
        assert!(i.files.iter().all(|f| f.ok));

        // A refused file counts no bytes; a foreign menu is named.
        let bad = Config::Bifrost {
            text: MENU.into(),
            state: Box::new(state("Generation 2: NixOS")),
            seen: vec![Seen::Refused("link".into()), file(4, Some("aa"))],
        };
        let st = judge(&snapshot(vec![bad, Config::Foreign]));
        assert_eq!(st.bytes_bifrost, 4);
        assert!(!st.installs[0].files[0].ok);
        assert_eq!(
            st.problems,
            [
                "EFI/refind/refind.conf: state line: link",
                "EFI/BOOT/refind.conf: not written by bifrost (no `# bifrost-state ` line)",
            ]
        );

        // No menu at all, or only refused ones: nothing boots through bifrost.
        for configs in [
            vec![Config::Absent, Config::Absent],
            vec![Config::Refused("link".into()), Config::Absent],
        ] {
            let st = judge(&snapshot(configs));
            assert!(st.installs.is_empty());
            assert!(
                st.problems.last().unwrap().starts_with("no refind.conf in"),
                "{:?}",
                st.problems
            );
        }
    }
}
