//! UEFI variables through efivarfs (`/sys/firmware/efi/efivars`): each file
//! `Name-GUID` holds 4 bytes of attributes, then the variable's data. Writes
//! must come in one `write` call; the kernel marks existing files immutable.

use super::{SbError, GLOBAL_GUID, SHIM_GUID};
use crate::fsutil::io_err;
use camino::Utf8Path;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS |
/// TIME_BASED_AUTHENTICATED_WRITE_ACCESS: what PK, KEK and db updates carry.
pub const AUTH_ATTRS: u32 = 0x27;
/// EFI_CERT_X509_GUID in its byte order inside a signature list.
const CERT_X509: [u8; 16] = [
    0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72,
];

/// linux/fs.h FS_IMMUTABLE_FL (not exported by the libc crate).
const FS_IMMUTABLE_FL: libc::c_long = 0x10;

/// Read `Name-GUID`: (attributes, data), None when it does not exist.
pub fn read(dir: &Utf8Path, name: &str, guid: &str) -> Option<(u32, Vec<u8>)> {
    let b = std::fs::read(dir.join(format!("{name}-{guid}"))).ok()?;
    let attrs = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    Some((attrs, b[4..].to_vec()))
}

/// Write `Name-GUID` in one call (efivarfs takes nothing else), clearing
/// the immutable flag efivarfs sets on existing variables.
pub fn write(
    dir: &Utf8Path,
    name: &str,
    guid: &str,
    attrs: u32,
    data: &[u8],
) -> Result<(), SbError> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let path = dir.join(format!("{name}-{guid}"));
    if let Ok(f) = std::fs::File::open(&path) {
        let mut flags: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one long through a valid pointer.
        unsafe {
            if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0
                && flags & FS_IMMUTABLE_FL != 0
            {
                flags &= !(FS_IMMUTABLE_FL);
                libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
            }
        }
    }
    let mut buf = attrs.to_le_bytes().to_vec();
    buf.extend_from_slice(data);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path, "open"))?;
    let n = f.write(&buf).map_err(io_err(&path, "write"))?;
    if n != buf.len() {
        return Err(SbError::Refused(format!(
            "{path}: the firmware took {n} of {} bytes",
            buf.len()
        )));
    }
    Ok(())
}

/// SHA-256 fingerprints (hex) of the X.509 certificates in a list of
/// EFI_SIGNATURE_LISTs (db, KEK, MokListRT).
pub fn x509_fingerprints(mut b: &[u8]) -> Vec<String> {
    let mut out = vec![];
    while b.len() >= 28 {
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
        let (list, header, size) = (u32_at(16), u32_at(20), u32_at(24));
        if list < 28 + header || list > b.len() || size <= 16 {
            break;
        }
        if b[..16] == CERT_X509 {
            let mut sigs = &b[28 + header..list];
            while sigs.len() >= size {
                out.push(hex::encode(Sha256::digest(&sigs[16..size])));
                sigs = &sigs[size..];
            }
        }
        b = &b[list..];
    }
    out
}

/// Secure Boot as the firmware reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SbState {
    pub secure_boot: bool,
    pub setup_mode: bool,
    /// SHA-256 fingerprints of the certificates in shim's MOK list
    /// (`MokListRT`, visible once shim has started this boot).
    pub mok: Vec<String>,
}

/// The state, or None when there are no UEFI variables to read.
pub fn state(dir: &Utf8Path) -> Option<SbState> {
    let flag = |name: &str| read(dir, name, GLOBAL_GUID).map(|(_, d)| d.first() == Some(&1));
    let secure_boot = flag("SecureBoot")?;
    Some(SbState {
        secure_boot,
        setup_mode: flag("SetupMode").unwrap_or(false),
        mok: read(dir, "MokListRT", SHIM_GUID)
            .map(|(_, d)| x509_fingerprints(&d))
            .unwrap_or_default(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One EFI_SIGNATURE_LIST of X.509 certificates (each padded to one size).
    pub fn esl(certs: &[&[u8]]) -> Vec<u8> {
        let size = 16 + certs.iter().map(|c| c.len()).max().unwrap();
        let mut b = CERT_X509.to_vec();
        b.extend(((28 + size * certs.len()) as u32).to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend((size as u32).to_le_bytes());
        for c in certs {
            b.extend([7u8; 16]);
            let mut d = c.to_vec();
            d.resize(size - 16, 0);
            b.extend(d);
        }
        b
    }

    #[test]
    fn fingerprints_of_signature_lists() {
        let mut two = esl(&[b"cert-a"]);
        two.extend(esl(&[b"cert-b"]));
        assert_eq!(
            x509_fingerprints(&two),
            vec![
                hex::encode(Sha256::digest(b"cert-a")),
                hex::encode(Sha256::digest(b"cert-b"))
            ]
        );
        // A truncated list yields what is complete, no panic.
        assert_eq!(x509_fingerprints(&two[..two.len() - 3]).len(), 1);
        assert!(x509_fingerprints(b"short").is_empty());
    }

    #[test]
    fn state_from_a_variables_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(tmp.path()).unwrap();
        assert_eq!(state(dir), None);
        write(dir, "SecureBoot", GLOBAL_GUID, 6, &[1]).unwrap();
        write(dir, "SetupMode", GLOBAL_GUID, 6, &[0]).unwrap();
        write(dir, "MokListRT", SHIM_GUID, 6, &esl(&[b"mine"])).unwrap();
        assert_eq!(
            state(dir),
            Some(SbState {
                secure_boot: true,
                setup_mode: false,
                mok: vec![hex::encode(Sha256::digest(b"mine"))],
            })
        );
    }
}
