//! Signing on the ESP: rEFInd (given a `.sbat` section when it has none),
//! its drivers and every kernel are signed on their way to the ESP, never in
//! the Nix store; the shim route puts a Microsoft-signed shim in front.
//!
//! Signed files are made in a private staging folder while planning, so the
//! plan knows their exact sizes (free-space check) and can compare rEFInd's
//! signed bytes with what is on the ESP (a re-run writes nothing); `apply`
//! then copies them like any other file, with the same crash safety.

use super::{EspError, InstallOptions, NIXOS_DIR};
use crate::sb::{pe, KeyPair, SbError};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Errors of signing on the ESP.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("--sign-key/--sign-cert: {0}; nothing was changed")]
    Keys(SbError),
    #[error("signing {file}: {err}; nothing was changed")]
    Sign { file: String, err: SbError },
    #[error("--shim needs --sign-key and --sign-cert: shim starts only a rEFInd signed with the key enrolled in its MOK list")]
    ShimWithoutKey,
    #[error("shim {0} does not exist{1}")]
    MissingShim(String, &'static str),
    #[error("shim {0} is not a PE/EFI binary")]
    ShimNotPe(String),
    #[error("staging folder: {0}")]
    Staging(#[source] std::io::Error),
    #[error(transparent)]
    Confine(#[from] crate::confine::ConfineError),
}

/// Keys to sign with, as given on the command line or by the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    pub key: Utf8PathBuf,
    pub cert: Utf8PathBuf,
}

/// Where the shim comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShimSource {
    /// A Microsoft-signed shim binary (MokManager taken from beside it).
    File(Utf8PathBuf),
    /// Fedora's `EFI/fedora/shimx64.efi` on this ESP (dual boot).
    Fedora,
}

/// Fedora's shim and MokManager on a dual-boot ESP (read, never written).
pub const FEDORA_SHIM: &str = "EFI/fedora/shimx64.efi";
/// The second stage shim loads from its own folder: there, rEFInd.
pub const SHIM_SECOND_STAGE: &str = "grubx64.efi";
/// shim's name in rEFInd's own folder (the firmware fallback path keeps BOOTX64.EFI).
pub const SHIM_NAME: &str = "shimx64.efi";
/// MokManager's name beside shim (where shim looks for it).
pub const MOKMANAGER_NAME: &str = "mmx64.efi";

/// Keys checked and a staging folder for the signed copies.
#[derive(Debug, Clone)]
pub struct Signer {
    keys: KeyPair,
    staging: Arc<tempfile::TempDir>,
}

impl Signer {
    /// Check the keys (present, PEM, belonging together) before anything is planned.
    pub fn new(o: &SignOptions) -> Result<Signer, SignError> {
        let keys = KeyPair::load(&o.key, &o.cert).map_err(SignError::Keys)?;
        let staging = tempfile::Builder::new()
            .prefix("bifrost-sign-")
            .tempdir()
            .map_err(SignError::Staging)?;
        Ok(Signer {
            keys,
            staging: Arc::new(staging),
        })
    }

    /// Keeps the staged files alive as long as a plan needs them.
    pub fn staging(&self) -> Arc<tempfile::TempDir> {
        self.staging.clone()
    }

    fn dir(&self) -> &Utf8Path {
        Utf8Path::from_path(self.staging.path()).expect("temp folder path is UTF-8")
    }

    /// Sign every PE file of `wanted` into the staging folder and point
    /// `wanted` at the signed copy. A kernel already on the ESP as this
    /// run's signed name (whose size matches bifrost's record) is kept as it
    /// is: its name already says which kernel and key it holds.
    pub fn stage(
        &self,
        esp: &Utf8Path,
        refind_dest: &str,
        wanted: &mut BTreeMap<String, Utf8PathBuf>,
        old_sizes: &BTreeMap<String, u64>,
    ) -> Result<(), SignError> {
        for (i, (dest, src)) in wanted.iter_mut().enumerate() {
            if !pe::is_pe(src) {
                continue;
            }
            // Never through a link out of the ESP: such a path is refused
            // when the plan reads it, and not kept here.
            if let (true, Ok(on_esp)) = (
                dest.starts_with(NIXOS_DIR),
                crate::confine::checked(esp, dest),
            ) {
                let size = std::fs::metadata(&on_esp).ok().map(|m| m.len());
                if size.is_some() && old_sizes.get(dest.as_str()).copied() == size {
                    *src = on_esp;
                    continue;
                }
            }
            let fail = |err| SignError::Sign {
                file: src.to_string(),
                err,
            };
            let mut input = src.clone();
            if dest == refind_dest && !pe::has_sbat(src).map_err(fail)? {
                let with_sbat = self.dir().join(format!("{i}-sbat.efi"));
                pe::add_sbat(src, &with_sbat, pe::REFIND_SBAT).map_err(fail)?;
                input = with_sbat;
            }
            let out = self.dir().join(format!("{i}.efi"));
            self.keys.sign(&input, &out).map_err(fail)?;
            *src = out;
        }
        Ok(())
    }

    /// Is `on_esp` (the bytes at `path`) the same image as the freshly
    /// signed `staged`, validly signed by this key? sbsign puts the signing
    /// time into each signature, so two signings of one image never agree
    /// byte for byte; what they sign does.
    pub fn same_signed(&self, on_esp: &[u8], staged: &[u8], path: &Utf8Path) -> bool {
        match (pe::unsigned_view(on_esp), pe::unsigned_view(staged)) {
            (Some(a), Some(b)) if a == b => {
                crate::sb::verify::signed_by(path, &self.keys.cert).unwrap_or(false)
            }
            _ => false,
        }
    }

    /// The ESP name of a store file signed with this key: the store name
    /// plus the certificate's fingerprint, so another key or another kernel
    /// gives another file.
    pub fn name(&self, unsigned: &str) -> String {
        let stem = unsigned.strip_suffix(".efi").unwrap_or(unsigned);
        format!("{stem}-signed-{}.efi", &self.keys.fingerprint[..16])
    }
}

/// The ESP name of `src`: as unsigned, or with the key's mark when it is a
/// PE binary that will be signed (initrds are not signed: not PE, and the
/// kernel's own signature does not cover them).
pub fn esp_name(src: &Utf8Path, signer: Option<&Signer>) -> Result<String, EspError> {
    let name = super::esp_name(src)?;
    Ok(match signer {
        Some(s) if pe::is_pe(src) => s.name(&name),
        _ => name,
    })
}

/// The loader files of an install: (ESP path, source) of rEFInd and, on the
/// shim route, shim and MokManager. Returns rEFInd's ESP path too.
pub fn loader_files(
    o: &InstallOptions,
    refind_dir: &str,
    refind_bin: &str,
) -> Result<(String, Vec<(String, Utf8PathBuf)>), SignError> {
    let Some(shim) = &o.choices.shim else {
        return Ok((refind_bin.into(), vec![]));
    };
    if o.choices.sign.is_none() {
        return Err(SignError::ShimWithoutKey);
    }
    let src = match shim {
        ShimSource::File(f) => f.clone(),
        ShimSource::Fedora => crate::confine::checked(&o.esp, FEDORA_SHIM)?,
    };
    if !src.is_file() {
        let hint = match shim {
            ShimSource::Fedora => " (no Fedora shim on this ESP: pass a Microsoft-signed shimx64.efi with --shim FILE)",
            ShimSource::File(_) => "",
        };
        return Err(SignError::MissingShim(src.to_string(), hint));
    }
    if !pe::is_pe(&src) {
        return Err(SignError::ShimNotPe(src.to_string()));
    }
    // On the firmware fallback path shim is BOOTX64.EFI; in EFI/refind/ it
    // keeps its own name.
    let shim_dest = if o.choices.removable {
        refind_bin.to_string()
    } else {
        format!("{refind_dir}/{SHIM_NAME}")
    };
    let mut files = vec![(shim_dest, src.clone())];
    // MokManager beside the shim: Debian ships `mmx64.efi.signed` beside
    // `shimx64.efi.signed`, Fedora `mmx64.efi` beside `shimx64.efi`.
    let suffix = if src.as_str().ends_with(".signed") {
        ".signed"
    } else {
        ""
    };
    if let Some(dir) = src.parent() {
        let mm = dir.join(format!("{MOKMANAGER_NAME}{suffix}"));
        if mm.is_file() {
            files.push((format!("{refind_dir}/{MOKMANAGER_NAME}"), mm));
        }
    }
    Ok((format!("{refind_dir}/{SHIM_SECOND_STAGE}"), files))
}

/// The ESP path the firmware's boot entry starts: shim on the shim route.
pub fn boot_loader(o: &InstallOptions) -> String {
    let (dir, bin) = super::REFIND_DIRS[o.choices.removable as usize];
    match (&o.choices.shim, o.choices.removable) {
        (Some(_), false) => format!("{dir}/{SHIM_NAME}"),
        _ => bin.to_string(),
    }
}
