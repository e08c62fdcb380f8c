//! Sync of NixOS generations and the Kinoite side onto the EFI system partition.
//!
//! Order of work, so a crash at any moment leaves a bootable ESP: copy every
//! new kernel and initrd (temp name, fsync, rename), then replace refind.conf
//! atomically, then delete what no entry needs. Free space is checked before
//! anything is written. refind.conf carries one comment line (`# bifrost-state
//! {json}`) recording each file bifrost put on the ESP with its size and
//! SHA-256: it is replaced in the same atomic rename as the menu, so the
//! record and the menu can never disagree, and `status` checks against it.

pub mod bootjson;
pub mod choices;
pub mod fallback;
pub mod generations;
pub mod kinoite;
pub mod last_booted;
pub mod lock;
pub mod menu_check;
pub mod nvram;
pub mod refresh;
pub mod request;
pub mod sign;
pub mod status;
pub mod steps;
pub mod text;
pub mod volume;
pub mod world;
mod write;

pub use status::{status, ConfigStatus, FileStatus, Status};
pub use write::apply;

use crate::confine;
use crate::fsutil;
use crate::fsutil::io_err;
use crate::refind;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum EspError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{0}: no `system-N-link` generations found; pass the NixOS profiles folder (usually /nix/var/nix/profiles)")]
    NoGenerations(String),
    #[error("generation {path}: {msg}")]
    Generation { path: String, msg: String },
    #[error("{0} is not a folder; pass the mount point of the EFI system partition with --esp")]
    NotAFolder(String),
    #[error("rEFInd binary {0} does not exist; pass rEFInd's refind_x64.efi with --refind-efi")]
    MissingRefind(String),
    #[error("rEFInd driver {0} is missing (the Kinoite side needs it); it ships beside refind_x64.efi in drivers_x64/")]
    MissingDriver(String),
    #[error("{0} changed while it was being copied; run the install again")]
    Changed(String),
    #[error("--default-entry kinoite needs the Kinoite side: --kinoite-mode chainload, or --kinoite-entries and --kinoite-volume")]
    DefaultWithoutKinoite,
    #[error("--limit must be at least 1")]
    ZeroLimit,
    #[error("not enough space on the ESP {esp}: this install writes {needed} bytes but only {available} are free; {missing} bytes ({missing_mib:.1} MiB) are missing — {advice}. Nothing was changed.")]
    NoSpace {
        esp: String,
        needed: u64,
        available: u64,
        missing: u64,
        missing_mib: f64,
        advice: String,
    },
    #[error("Kinoite entries: {0}")]
    Kinoite(#[source] refind::RefindError),
    #[error("refind.conf: {0}")]
    Render(#[source] refind::RefindError),
    #[error("{0}: {nofix}", nofix = kinoite::NO_LOADER_FIX)]
    NoFedoraLoader(String),
    #[error("{0} is locked by another bifrost run that has not finished within {secs} s; wait for it, or check that no `bifrost esp` process is stuck", secs = lock::WAIT.as_secs())]
    Locked(String),
    #[error("{config} does not match its state line ({why}); it was changed by hand or by another tool. Run `bifrost esp install` from NixOS to rewrite it; nothing was changed")]
    KinoiteMismatch { config: String, why: String },
    #[error("{0}: no Kinoite side installed by bifrost; run `bifrost esp install` from NixOS with the Kinoite side first")]
    NoKinoiteSide(String),
    #[error("--kinoite-volume {0:?}: must be a non-empty file-system label, partition label or GUID without quotes or newlines")]
    BadVolume(String),
    #[error(transparent)]
    Fs(#[from] fsutil::FsError),
    #[error(transparent)]
    Fallback(#[from] fallback::FallbackError),
    #[error(transparent)]
    Volume(#[from] volume::VolumeError),
    #[error(transparent)]
    Confine(#[from] confine::ConfineError),
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    #[error("--extra-config {path}: {err}")]
    ExtraConfig { path: String, err: std::io::Error },
    #[error(transparent)]
    Settings(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Choices(#[from] choices::ChoicesError),
    #[error(transparent)]
    Nvram(#[from] nvram::NvramError),
}

impl EspError {
    /// The ESP lacks room: `needed` bytes to write, `available` free.
    pub fn no_space(esp: &Utf8Path, needed: u64, available: u64, advice: String) -> EspError {
        let missing = needed.saturating_sub(available);
        EspError::NoSpace {
            esp: esp.to_string(),
            needed,
            available,
            missing,
            missing_mib: missing as f64 / (1024.0 * 1024.0),
            advice,
        }
    }
}

/// Where bifrost copies kernels and initrds, relative to the ESP.
pub const NIXOS_DIR: &str = "EFI/nixos";
/// Marker of the state line in refind.conf.
pub const STATE_MARKER: &str = "bifrost-state ";
/// rEFInd's folders and binaries, relative to the ESP.
pub const REFIND_DIRS: [(&str, &str); 2] = [
    ("EFI/refind", "EFI/refind/refind_x64.efi"),
    ("EFI/BOOT", "EFI/BOOT/BOOTX64.EFI"),
];
/// Drivers the Kinoite side needs (its `/boot` is ext4 by default, btrfs possible).
pub const KINOITE_DRIVERS: [&str; 2] = ["ext4_x64.efi", "btrfs_x64.efi"];

/// Everything `bifrost esp install` takes.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub esp: Utf8PathBuf,
    pub profiles: Utf8PathBuf,
    /// The system's root when it is not `/` (installing into `/mnt`): store
    /// paths of the generations are read below it.
    pub root: Option<Utf8PathBuf>,
    pub refind_efi: Utf8PathBuf,
    /// Install at the fallback path even over another system's loader.
    pub force_removable: bool,
    /// Trusted lines for refind.conf's global section.
    pub extra_config: String,
    /// The menu, signing and NVRAM, as settings and flags say ([`choices`]).
    pub choices: choices::Choices,
}

/// One file bifrost keeps on the ESP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// ESP-relative, `/`-separated.
    pub path: String,
    pub size: u64,
    /// SHA-256 of rEFInd's files; store-named kernels and initrds carry
    /// their identity in their name and record only the size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What refind.conf's state line records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Title of the default entry.
    pub default: String,
    /// Generation numbers with an entry, newest first.
    pub generations: Vec<u64>,
    pub files: Vec<FileRecord>,
    /// The Kinoite side, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinoite: Option<kinoite::KinoiteState>,
}

/// Where a planned file's bytes come from.
#[derive(Debug, Clone, Serialize)]
pub struct Copy {
    pub source: Utf8PathBuf,
    /// ESP-relative destination.
    pub dest: String,
    pub size: u64,
    /// SHA-256 of rEFInd's files (as the state line records it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The plan of one install; `apply` carries it out.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub esp: Utf8PathBuf,
    /// ESP-relative path of refind.conf.
    pub config_path: String,
    pub copies: Vec<Copy>,
    /// ESP-relative paths to delete after the new refind.conf is in place.
    pub deletes: Vec<String>,
    pub old_config: Option<String>,
    pub new_config: String,
    pub bytes_needed: u64,
    pub bytes_available: u64,
    pub generations: Vec<u64>,
    pub default: String,
    pub kinoite: Option<kinoite::KinoiteState>,
    /// Old generations left out of the menu because they are broken.
    pub warnings: Vec<String>,
    /// Bytes the deletes free (after the copies: they do not make room for them).
    pub bytes_freed: u64,
    /// Signed copies waiting to be copied (removed with the plan).
    #[serde(skip)]
    _staging: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Plan {
    pub fn config_changed(&self) -> bool {
        self.old_config.as_deref() != Some(self.new_config.as_str())
    }

    /// Unified diff of refind.conf, old to new.
    pub fn config_diff(&self) -> String {
        let old = self.old_config.as_deref().unwrap_or("");
        similar::TextDiff::from_lines(old, &self.new_config)
            .unified_diff()
            .header(
                &format!("{} (on the ESP)", self.config_path),
                &format!("{} (new)", self.config_path),
            )
            .to_string()
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub copied: usize,
    pub deleted: usize,
    pub bytes_written: u64,
    pub config_written: bool,
}

/// The ESP file name for a store file: `<hash>-<name>-<file>.efi`, like
/// systemd-boot, so generations sharing a kernel share the copy; files
/// outside a Nix store are named by content hash.
pub fn esp_name(source: &Utf8Path) -> Result<String, EspError> {
    let comps: Vec<&str> = source.iter().collect();
    for (i, c) in comps.iter().enumerate() {
        let is_store = i > 0 && comps[i - 1] == "store" && is_store_component(c);
        if is_store {
            let mut name = comps[i..].join("-");
            name.retain(|ch| ch.is_ascii_alphanumeric() || "-._+".contains(ch));
            return Ok(format!("{name}.efi"));
        }
    }
    let bytes = std::fs::read(source).map_err(io_err(source, "read"))?;
    let h = hex::encode(Sha256::digest(&bytes));
    Ok(format!(
        "{}-{}.efi",
        &h[..32],
        source.file_name().unwrap_or("file")
    ))
}

fn is_store_component(c: &str) -> bool {
    c.len() > 33
        && c.as_bytes()[32] == b'-'
        && c[..32]
            .chars()
            .all(|ch| ch.is_ascii_digit() || ch.is_ascii_lowercase())
}

impl State {
    /// The state line as refind.conf carries it (without the leading `# `).
    pub fn comment(&self) -> String {
        format!(
            "{STATE_MARKER}{}",
            serde_json::to_string(self).expect("state serialises")
        )
    }
}

/// Read the state line of a refind.conf.
pub fn parse_state(conf: &str) -> Option<State> {
    conf.lines()
        .find_map(|l| l.strip_prefix("# ")?.strip_prefix(STATE_MARKER))
        .and_then(|j| serde_json::from_str(j).ok())
}

/// Free bytes and block size of the file system holding `dir`.
pub fn statvfs(dir: &Utf8Path) -> Result<(u64, u64, u64), EspError> {
    if dir.as_str().contains('\0') {
        return Err(EspError::NotAFolder(dir.to_string()));
    }
    let s = rustix::fs::statvfs(dir.as_std_path()).map_err(|e| io_err(dir, "statvfs")(e.into()))?;
    let frsize = s.f_frsize;
    Ok((s.f_bavail * frsize, s.f_blocks * frsize, frsize.max(1)))
}

/// Work out what an install would do, reading but writing nothing (signed
/// copies are staged in a private temp folder the plan owns): read the
/// world once, then decide in the pure steps of [`steps`]. The plan's
/// refind.conf, state line included, is byte for byte what [`apply`] writes.
pub fn plan(o: &InstallOptions) -> Result<Plan, EspError> {
    let w = world::read(o)?;
    let old = steps::old_records(w.old_config.as_deref());
    let entries = steps::menu_entries(&w, o.choices.last_booted);
    let default = steps::default_title(
        &entries,
        w.generations.len(),
        o.choices.default_kinoite,
        w.kinoite.is_some(),
    )?;
    let mut wanted =
        steps::wanted_files(&w.refind_bin, &o.refind_efi, &w.names, w.kinoite.as_ref());
    if let Some(s) = &w.signer {
        let sizes = old.iter().map(|(k, r)| (k.clone(), r.size)).collect();
        s.stage(&o.esp, &w.refind_bin, &mut wanted, &sizes)?;
    }
    // Shim and MokManager go on as they are: never signed again.
    wanted.extend(w.loader_files.iter().cloned());
    let facts = world::read_files(&o.esp, &wanted, w.signer.as_ref())?;
    let (copies, files) = steps::copies_and_records(&wanted, &facts, &old);
    let state = State {
        version: 1,
        default,
        generations: w.generations.iter().map(|g| g.number).collect(),
        files,
        kinoite: w.kinoite.as_ref().map(|k| k.state.clone()),
    };
    let config = steps::menu(o, entries, &state);
    let new_config = refind::render(&config).map_err(EspError::Render)?;
    let deletes = steps::deletes(&w, &wanted, &old);
    let changed = w.old_config.as_deref() != Some(new_config.as_str());
    let bytes_needed =
        steps::bytes_needed(&w, &copies, changed.then_some(new_config.len()), &deletes);
    let bytes_freed = steps::bytes_freed(&w, &deletes);
    Ok(Plan {
        esp: o.esp.clone(),
        config_path: w.config_path,
        copies,
        bytes_freed,
        deletes,
        old_config: w.old_config,
        new_config,
        bytes_needed,
        bytes_available: w.space.available,
        generations: state.generations,
        default: state.default,
        kinoite: state.kinoite,
        warnings: w.skipped,
        _staging: w.signer.map(|s| s.staging()),
    })
}

/// ESP-relative path of the journal: files an install is about to copy,
/// so a run interrupted before refind.conf names them can collect them.
pub const JOURNAL: &str = "EFI/nixos/.bifrost-pending";

fn read_journal(esp: &Utf8Path) -> Result<Vec<String>, EspError> {
    Ok(std::fs::read_to_string(confine::checked(esp, JOURNAL)?)
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default())
}

/// Size and SHA-256 of a file, read in chunks.
fn hash_file(p: &Utf8Path) -> Result<(u64, String), EspError> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).map_err(io_err(p, "open"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io_err(p, "read"))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_files_are_named_by_store_path() {
        let p = Utf8Path::new("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-6.6.1/bzImage");
        assert_eq!(
            esp_name(p).unwrap(),
            "0123456789abcdfghijklmnpqrsvwxyz-linux-6.6.1-bzImage.efi"
        );
    }

    /// The choices of `esp install` without settings or flags.
    fn no_flags() -> choices::Choices {
        choices::resolve(None, choices::Flags::default()).unwrap()
    }

    fn fake_generation(root: &Utf8Path, n: u64, kernel: &str, specs: &[&str]) {
        let store = root.join("nix/store");
        let k = store.join(format!("{:0>32}-{kernel}", n % 2));
        std::fs::create_dir_all(&k).unwrap();
        std::fs::write(k.join("bzImage"), b"kernel").unwrap();
        std::fs::write(k.join("initrd"), b"initrd").unwrap();
        let bs = |top: &Utf8Path, label: &str, params: &[&str]| {
            serde_json::json!({
                "label": label, "kernel": k.join("bzImage"), "initrd": k.join("initrd"),
                "kernelParams": params, "init": top.join("init"), "system": "x86_64-linux",
                "toplevel": top,
            })
        };
        let top = store.join(format!("{:a>32}-nixos-system-{n}", n));
        std::fs::create_dir_all(&top).unwrap();
        let mut sp = serde_json::Map::new();
        for name in specs {
            let st = store.join(format!("{:b>32}-nixos-system-{n}-{name}", n));
            sp.insert(
                name.to_string(),
                serde_json::json!({"org.nixos.bootspec.v1": bs(&st, "NixOS (special)", &["quiet", &format!("spec={name}")])}),
            );
        }
        let doc = serde_json::json!({
            "org.nixos.bootspec.v1": bs(&top, &format!("NixOS 26.05.{n} (Linux 6.6)"), &["quiet", "msg=\"hi there\""]),
            "org.nixos.specialisation.v1": sp,
        });
        std::fs::write(top.join("boot.json"), doc.to_string()).unwrap();
        let profiles = root.join("profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        std::os::unix::fs::symlink(&top, profiles.join(format!("system-{n}-link"))).unwrap();
    }

    #[test]
    fn refind_conf_from_generations() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap();
        fake_generation(root, 1, "linux-6.6", &[]);
        fake_generation(root, 2, "linux-6.6", &["gaming", "battery"]);
        fake_generation(root, 3, "linux-6.7", &[]);
        let bls = root.join("bls");
        std::fs::create_dir_all(&bls).unwrap();
        std::fs::write(
            bls.join("ostree-1-fedora.conf"),
            "title Fedora Linux 40 (Kinoite)\nversion 1\nlinux /ostree/f/vmlinuz\ninitrd /ostree/f/initramfs.img\noptions rw quiet\n",
        )
        .unwrap();
        let refind = root.join("refind/refind_x64.efi");
        std::fs::create_dir_all(root.join("refind/drivers_x64")).unwrap();
        std::fs::write(&refind, b"MZ").unwrap();
        std::fs::write(root.join("refind/drivers_x64/ext4_x64.efi"), b"MZ").unwrap();
        std::fs::create_dir_all(root.join("esp")).unwrap();
        let o = InstallOptions {
            esp: root.join("esp"),
            profiles: root.join("profiles"),
            root: None,
            refind_efi: refind,
            force_removable: false,
            extra_config: String::new(),
            choices: choices::Choices {
                limit: Some(2),
                kinoite: Some((bls, "KINOITE".into())),
                text_only: true,
                ..no_flags()
            },
        };
        let p = plan(&o).unwrap();
        assert_eq!(p.generations, vec![3, 2]);
        // Generations 2 and 3 use two kernels; each has a kernel and an initrd; plus rEFInd and its driver.
        assert_eq!(p.copies.len(), 6);
        apply(&p, &mut |_| {}).unwrap();
        let conf = std::fs::read_to_string(root.join("esp/EFI/refind/refind.conf")).unwrap();
        insta::assert_snapshot!(conf.replace(root.as_str(), "[TMP]"));
        // Nothing changed: nothing to copy, the same refind.conf.
        let again = plan(&o).unwrap();
        assert!(again.copies.is_empty() && !again.config_changed());
        // Kinoite as the default entry, and refused without the Kinoite side.
        let mut k = o.clone();
        k.choices.default_kinoite = true;
        assert_eq!(plan(&k).unwrap().default, "Fedora Linux 40 (Kinoite)");
        k.choices.kinoite = None;
        assert!(matches!(plan(&k), Err(EspError::DefaultWithoutKinoite)));
        // The entry booted last: rEFInd's `+`, the newest generation under a
        // title that a rebuild does not change, as the fallback.
        let mut l = o.clone();
        l.choices.last_booted = true;
        let lp = plan(&l).unwrap();
        assert!(
            lp.new_config
                .contains("\ndefault_selection \"+,NixOS (newest generation)\"\n"),
            "{}",
            lp.new_config
        );
        assert!(lp
            .new_config
            .contains("menuentry \"NixOS (newest generation)\" {"));
        assert!(lp
            .new_config
            .contains("menuentry \"Generation 2: NixOS 26.05.2 (Linux 6.6)\" {"));
        apply(&lp, &mut |_| {}).unwrap();
        let st = status(&root.join("esp")).unwrap();
        assert_eq!(st.installs[0].default_generation, Some(3));
    }

    /// The dry run's refind.conf, state line included, is what apply writes:
    /// on a new ESP, after a new rEFInd and a new generation, and with the
    /// last-booted default.
    #[test]
    fn plan_shows_exactly_what_apply_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap();
        fake_generation(root, 1, "linux-6.6", &[]);
        let refind = root.join("refind/refind_x64.efi");
        std::fs::create_dir_all(root.join("refind")).unwrap();
        std::fs::write(&refind, b"MZ rEFInd 0.14").unwrap();
        let esp = root.join("esp");
        std::fs::create_dir_all(&esp).unwrap();
        let mut o = InstallOptions {
            esp: esp.clone(),
            profiles: root.join("profiles"),
            root: None,
            refind_efi: refind.clone(),
            force_removable: false,
            extra_config: String::new(),
            choices: no_flags(),
        };
        let conf = esp.join("EFI/refind/refind.conf");
        let round = |o: &InstallOptions| {
            let p = plan(o).unwrap();
            let st = parse_state(&p.new_config).unwrap();
            let r = apply(&p, &mut |_| {}).unwrap();
            assert_eq!(std::fs::read_to_string(&conf).unwrap(), p.new_config);
            assert_eq!(r.config_written, p.config_changed());
            (p, st)
        };
        let (p, st) = round(&o);
        assert_eq!(p.copies.len(), 3);
        let refind_rec = st.files.iter().find(|f| f.path.ends_with("refind_x64.efi"));
        assert_eq!(
            refind_rec.unwrap().sha256.as_deref(),
            Some(hex::encode(Sha256::digest(b"MZ rEFInd 0.14")).as_str())
        );
        // A new rEFInd and a new generation: the plan's hash is the new one.
        std::fs::write(&refind, b"MZ rEFInd 0.15").unwrap();
        fake_generation(root, 2, "linux-6.7", &["gaming"]);
        let (p, st) = round(&o);
        assert_eq!(st.generations, vec![2, 1]);
        assert!(p.copies.iter().any(|c| c.dest.ends_with("refind_x64.efi")));
        assert!(st
            .files
            .iter()
            .any(|f| f.sha256 == Some(hex::encode(Sha256::digest(b"MZ rEFInd 0.15")))));
        // The last-booted default, and a limit that deletes generation 1's files.
        o.choices.last_booted = true;
        o.choices.limit = Some(1);
        let (p, st) = round(&o);
        assert_eq!(st.default, last_booted::NEWEST_TITLE);
        assert!(!p.deletes.is_empty());
        // Nothing left to do: the same text, nothing written.
        let (p, _) = round(&o);
        assert!(p.copies.is_empty() && p.deletes.is_empty() && !p.config_changed());
        // A source that changes between plan and apply is refused.
        std::fs::write(&refind, b"MZ rEFInd 0.16").unwrap();
        let p = plan(&o).unwrap();
        std::fs::write(&refind, b"MZ rEFInd 0.17").unwrap();
        assert!(matches!(apply(&p, &mut |_| {}), Err(EspError::Changed(_))));
    }

    #[test]
    fn state_line_round_trips() {
        let s = State {
            version: 1,
            default: "Generation 3: NixOS".into(),
            generations: vec![3, 2],
            files: vec![FileRecord {
                path: "EFI/nixos/a.efi".into(),
                size: 4,
                sha256: Some("ab".into()),
            }],
            kinoite: None,
        };
        let conf = format!(
            "x\n# {STATE_MARKER}{}\n",
            serde_json::to_string(&s).unwrap()
        );
        assert_eq!(parse_state(&conf), Some(s));
    }
}
