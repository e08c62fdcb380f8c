//! The firmware fallback path `EFI/BOOT/BOOTX64.EFI` on a shared ESP.
//!
//! On a dual-boot ESP that path belongs to another system: Fedora's bootupd
//! installs its shim there and updates it. `esp install --removable` puts
//! rEFInd there *instead of* `EFI/refind/`, so it would replace Fedora's
//! loader and fight every Fedora update. It is refused unless the file is
//! already bifrost's (recorded in `EFI/BOOT/refind.conf`'s state line with
//! the same SHA-256) or rEFInd itself, or the user forces it.

use super::{parse_state, REFIND_DIRS};
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

/// Errors of the fallback-path check.
#[derive(Debug, thiserror::Error)]
pub enum FallbackError {
    #[error(
        "{path} is another system's boot loader (not one bifrost installed); --removable would \
         replace it, and on a dual-boot ESP that is Fedora's shim, which Fedora's bootupd owns and \
         updates. Leave out --removable (rEFInd goes to EFI/refind/ and its NVRAM entry boots it), \
         or pass --force-removable to replace it anyway (Fedora boots through EFI/fedora/ as before)."
    )]
    Foreign { path: Utf8PathBuf },
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
}

/// Who owns the file at the fallback path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Nothing there.
    Nobody,
    /// bifrost put it there, or it is the very rEFInd being installed.
    Bifrost,
    /// Anything else: another system's loader.
    Other,
}

fn read(p: &Utf8Path) -> Result<Option<Vec<u8>>, FallbackError> {
    match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::fsutil::io_err(p, "read")(e).into()),
    }
}

/// Who owns `EFI/BOOT/BOOTX64.EFI` on `esp`.
pub fn owner(esp: &Utf8Path, refind_efi: &Utf8Path) -> Result<Owner, FallbackError> {
    let (dir, bin) = REFIND_DIRS[1];
    let path = esp.join(bin);
    let Some(current) = read(&path)? else {
        return Ok(Owner::Nobody);
    };
    if read(refind_efi)?.as_deref() == Some(current.as_slice()) {
        return Ok(Owner::Bifrost);
    }
    let hash = hex::encode(Sha256::digest(&current));
    let conf = read(&esp.join(format!("{dir}/refind.conf")))?;
    let recorded = conf
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .as_deref()
        .and_then(parse_state)
        .is_some_and(|s| {
            s.files
                .iter()
                .any(|f| f.path == bin && f.sha256.as_deref() == Some(hash.as_str()))
        });
    Ok(if recorded {
        Owner::Bifrost
    } else {
        Owner::Other
    })
}

/// Refuse to install at the fallback path over another system's loader, unless forced.
pub fn check(esp: &Utf8Path, refind_efi: &Utf8Path, force: bool) -> Result<(), FallbackError> {
    if !force && owner(esp, refind_efi)? == Owner::Other {
        return Err(FallbackError::Foreign {
            path: esp.join(REFIND_DIRS[1].1),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp() -> (tempfile::TempDir, Utf8PathBuf, Utf8PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(t.path()).unwrap().to_owned();
        std::fs::create_dir_all(root.join("esp/EFI/BOOT")).unwrap();
        std::fs::write(root.join("refind_x64.efi"), b"MZ refind").unwrap();
        (t, root.join("esp"), root.join("refind_x64.efi"))
    }

    #[test]
    fn fedora_shim_at_the_fallback_path_is_refused_unless_forced() {
        let (_t, esp, refind) = esp();
        assert_eq!(owner(&esp, &refind).unwrap(), Owner::Nobody);
        std::fs::write(esp.join("EFI/BOOT/BOOTX64.EFI"), b"MZ fedora shim").unwrap();
        assert_eq!(owner(&esp, &refind).unwrap(), Owner::Other);
        let err = check(&esp, &refind, false).unwrap_err().to_string();
        assert!(err.contains("--force-removable"), "{err}");
        check(&esp, &refind, true).unwrap();
        // rEFInd itself is not another system's loader.
        std::fs::write(esp.join("EFI/BOOT/BOOTX64.EFI"), b"MZ refind").unwrap();
        assert_eq!(owner(&esp, &refind).unwrap(), Owner::Bifrost);
    }
}
