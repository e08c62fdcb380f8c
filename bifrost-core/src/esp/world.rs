//! What an install reads before it decides: the ESP, the generations, the
//! Kinoite side and the free space, each read once into a [`World`]; then,
//! once the pure steps ([`super::steps`]) know which files the menu needs
//! and signing has staged its copies, the facts of exactly those files
//! ([`read_files`]). Everything under the ESP is read through
//! [`confine::checked`]: a link there is refused, never followed.

use super::generations::{self, Generation};
use super::kinoite::{self, Side};
use super::{
    confine, fallback, parse_state, sign, statvfs, EspError, InstallOptions, NIXOS_DIR, REFIND_DIRS,
};
use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Icons rEFInd's folder holds (ESP paths as the menu names them); none in
/// a text-only menu.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Icons {
    pub nixos: Option<String>,
    pub fedora: Option<String>,
}

/// One entry of a folder bifrost collects in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    /// `None` for anything that is not a regular file.
    pub size: Option<u64>,
}

/// Free space of the ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub available: u64,
    /// Allocation unit: every file and new folder takes whole ones.
    pub block: u64,
}

/// Everything an install decides over, read once.
#[derive(Debug)]
pub struct World {
    /// rEFInd's folder for this install (`EFI/refind` or `EFI/BOOT`).
    pub refind_dir: &'static str,
    /// ESP path of rEFInd's binary (`grubx64.efi` behind shim).
    pub refind_bin: String,
    /// Shim and MokManager on the shim route: (ESP path, source); copied as they are.
    pub loader_files: Vec<(String, Utf8PathBuf)>,
    /// ESP-relative path of this install's refind.conf.
    pub config_path: String,
    pub old_config: Option<String>,
    /// Files the other rEFInd folder's bifrost menu records.
    pub other_menu_files: BTreeSet<String>,
    /// Files an interrupted run listed in the journal.
    pub journal: Vec<String>,
    /// `EFI/nixos`, `None` when there is no such folder.
    pub nixos_dir: Option<Vec<DirEntry>>,
    /// rEFInd's folder, `None` when there is no such folder.
    pub refind_dir_entries: Option<Vec<DirEntry>>,
    /// The generations with a menu entry, newest first.
    pub generations: Vec<Generation>,
    /// Old generations left out because they are broken.
    pub skipped: Vec<String>,
    /// ESP path (`EFI/nixos/…`) of every kernel and initrd of those generations.
    pub names: BTreeMap<Utf8PathBuf, String>,
    pub icons: Icons,
    pub kinoite: Option<Side>,
    pub space: Space,
    pub signer: Option<sign::Signer>,
}

/// Check the options against the world and read it.
pub fn read(o: &InstallOptions) -> Result<World, EspError> {
    if !o.esp.is_dir() {
        return Err(EspError::NotAFolder(o.esp.to_string()));
    }
    if o.choices.limit == Some(0) {
        return Err(EspError::ZeroLimit);
    }
    if !o.refind_efi.is_file() {
        return Err(EspError::MissingRefind(o.refind_efi.to_string()));
    }
    if o.choices.removable {
        fallback::check(&o.esp, &o.refind_efi, o.force_removable)?;
    }
    let signer = o.choices.sign.as_ref().map(sign::Signer::new).transpose()?;
    let generations::Read {
        generations,
        skipped,
    } = generations::read(&o.profiles, o.choices.limit, o.root.as_deref())?;
    let (refind_dir, refind_bin) = REFIND_DIRS[o.choices.removable as usize];
    let (refind_bin, loader_files) = sign::loader_files(o, refind_dir, refind_bin)?;
    let config_path = format!("{refind_dir}/refind.conf");
    let old_config = read_text(&o.esp, &config_path)?;
    let mut names = BTreeMap::new();
    for b in generations.iter().flat_map(|g| g.targets()) {
        for src in std::iter::once(&b.kernel).chain(&b.initrd) {
            if !names.contains_key(src) {
                let name = sign::esp_name(src, signer.as_ref())?;
                names.insert(src.clone(), format!("{NIXOS_DIR}/{name}"));
            }
        }
    }
    let icon = |name: &str| {
        let rel = format!("{refind_dir}/icons/{name}");
        let here = confine::checked(&o.esp, &rel).is_ok_and(|p| p.is_file());
        (!o.choices.text_only && here).then(|| format!("/{rel}"))
    };
    let icons = Icons {
        nixos: icon("os_nixos.png"),
        fedora: icon("os_fedora.png"),
    };
    let kinoite = kinoite::side(o, refind_dir, icons.fedora.clone())?;
    let other_dir = REFIND_DIRS[!o.choices.removable as usize].0;
    let other_menu_files = confine::checked(&o.esp, &format!("{other_dir}/refind.conf"))
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .as_deref()
        .and_then(parse_state)
        .map(|s| s.files.into_iter().map(|f| f.path).collect())
        .unwrap_or_default();
    let journal = super::read_journal(&o.esp)?;
    let nixos_dir = list(&o.esp, NIXOS_DIR)?;
    let refind_dir_entries = list(&o.esp, refind_dir)?;
    let (available, _total, block) = statvfs(&o.esp)?;
    Ok(World {
        refind_dir,
        refind_bin,
        loader_files,
        config_path,
        old_config,
        other_menu_files,
        journal,
        nixos_dir,
        refind_dir_entries,
        generations,
        skipped,
        names,
        icons,
        kinoite,
        space: Space { available, block },
        signer,
    })
}

/// A text file on the ESP, `None` when it does not exist.
fn read_text(esp: &Utf8Path, rel: &str) -> Result<Option<String>, EspError> {
    let path = confine::checked(esp, rel)?;
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, "read")(e).into()),
    }
}

/// The entries of an ESP folder, `None` when it is not a folder.
fn list(esp: &Utf8Path, rel: &str) -> Result<Option<Vec<DirEntry>>, EspError> {
    let dir = confine::checked(esp, rel)?;
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut out = vec![];
    for ent in dir.read_dir_utf8().map_err(io_err(&dir, "read folder"))? {
        let ent = ent.map_err(io_err(&dir, "read folder"))?;
        let size = ent
            .metadata()
            .ok()
            .filter(|m| m.file_type().is_file())
            .map(|m| m.len());
        out.push(DirEntry {
            name: ent.file_name().to_owned(),
            size,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(out))
}

/// What is known of one file the menu needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Size of the source (the signed copy when signing).
    pub size: u64,
    /// Size of the file at its ESP path, if there is one.
    pub on_esp: Option<u64>,
    /// rEFInd's side only (files outside `EFI/nixos`): SHA-256 of the source.
    pub sha256: Option<String>,
    /// rEFInd's side only: SHA-256 of the ESP copy when it is the same image
    /// as the source (byte for byte, or the same image validly signed by
    /// this key: sbsign stamps the time into each signature).
    pub same_on_esp: Option<String>,
}

/// The facts of every file the menu needs (ESP path → source). Store-named
/// kernels and initrds carry their identity in their name: only their sizes
/// are read. rEFInd's small files are read and hashed.
pub fn read_files(
    esp: &Utf8Path,
    wanted: &BTreeMap<String, Utf8PathBuf>,
    signer: Option<&sign::Signer>,
) -> Result<BTreeMap<String, FileFacts>, EspError> {
    let mut out = BTreeMap::new();
    for (dest, src) in wanted {
        let size = std::fs::metadata(src).map_err(io_err(src, "stat"))?.len();
        let target = confine::checked(esp, dest)?;
        let on_esp = std::fs::metadata(&target).ok().map(|m| m.len());
        let (mut sha256, mut same_on_esp) = (None, None);
        if !dest.starts_with(NIXOS_DIR) {
            let new = std::fs::read(src).map_err(io_err(src, "read"))?;
            sha256 = Some(hex::encode(Sha256::digest(&new)));
            let old = std::fs::read(&target).ok().filter(|_| on_esp == Some(size));
            same_on_esp = old
                .filter(|b| *b == new || signer.is_some_and(|s| s.same_signed(b, &new, &target)))
                .map(|b| hex::encode(Sha256::digest(&b)));
        }
        out.insert(
            dest.clone(),
            FileFacts {
                size,
                on_esp,
                sha256,
                same_on_esp,
            },
        );
    }
    Ok(out)
}
