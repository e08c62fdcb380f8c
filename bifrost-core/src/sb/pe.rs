//! Just enough of the PE/COFF format to tell an EFI binary from other files
//! and to list its sections (shim wants a `.sbat` one).

use super::{run, SbError};
use crate::fsutil::io_err;
use camino::Utf8Path;

/// Does the file start like a PE image (`MZ` and a `PE\0\0` header)?
pub fn is_pe(path: &Utf8Path) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    pe_offset(&head[..n]).is_some()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn pe_offset(b: &[u8]) -> Option<usize> {
    if b.get(..2)? != b"MZ" {
        return None;
    }
    let off = u32::from_le_bytes(b.get(0x3c..0x40)?.try_into().ok()?) as usize;
    (b.get(off..off + 4)? == b"PE\0\0").then_some(off)
}

/// Section names of a PE image (`.text`, `.sbat`, …).
pub fn sections(bytes: &[u8]) -> Option<Vec<String>> {
    let pe = pe_offset(bytes)?;
    let coff = pe + 4;
    let count = u16_at(bytes, coff + 2)? as usize;
    let opt_size = u16_at(bytes, coff + 16)? as usize;
    let table = coff + 20 + opt_size;
    (0..count)
        .map(|i| {
            let raw = bytes.get(table + i * 40..table + i * 40 + 8)?;
            let end = raw.iter().position(|&c| c == 0).unwrap_or(8);
            Some(String::from_utf8_lossy(&raw[..end]).into_owned())
        })
        .collect()
}

/// The bytes an Authenticode signature covers, in file order: the image
/// without its checksum, its certificate-table entry and the certificate
/// table (the signatures) at its end. Two signed copies of the same image
/// agree here even though each signature carries its own signing time.
pub fn unsigned_view(b: &[u8]) -> Option<Vec<u8>> {
    let pe = pe_offset(b)?;
    let opt = pe + 24;
    let dirs = match u16_at(b, opt)? {
        0x10b => opt + 96,
        0x20b => opt + 112,
        _ => return None,
    };
    let cert_entry = dirs + 4 * 8;
    let cert_off = u32::from_le_bytes(b.get(cert_entry..cert_entry + 4)?.try_into().ok()?) as usize;
    let end = if cert_off == 0 || cert_off > b.len() {
        b.len()
    } else {
        cert_off
    };
    let mut v = b.get(..end)?.to_vec();
    for range in [opt + 64..opt + 68, cert_entry..cert_entry + 8] {
        if let Some(bytes) = v.get_mut(range) {
            bytes.fill(0);
        }
    }
    Some(v)
}

/// Does the PE file at `path` carry a `.sbat` section?
pub fn has_sbat(path: &Utf8Path) -> Result<bool, SbError> {
    let bytes = std::fs::read(path).map_err(io_err(path, "read"))?;
    let names = sections(&bytes).ok_or_else(|| SbError::NotPe(path.to_string()))?;
    Ok(names.iter().any(|n| n == ".sbat"))
}

/// SBAT metadata bifrost gives a rEFInd that ships without any: the SBAT
/// format line and one line for rEFInd (generation 1, as upstream rEFInd's
/// own SBAT data starts). Shim refuses a second stage without `.sbat`.
pub const REFIND_SBAT: &str = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nrefind,1,Roderick W. Smith,refind,0,https://www.rodsbooks.com/refind/\n";

/// Copy `input` to `output` with a `.sbat` section holding `csv`, placed
/// past the image's last section as shim's SBAT.md shows for objcopy.
pub fn add_sbat(input: &Utf8Path, output: &Utf8Path, csv: &str) -> Result<(), SbError> {
    let csv_path = output.with_extension("sbat.csv");
    std::fs::write(&csv_path, csv).map_err(io_err(&csv_path, "write"))?;
    run(
        "objcopy",
        &[
            "--add-section",
            &format!(".sbat={csv_path}"),
            "--set-section-flags",
            ".sbat=contents,alloc,load,readonly,data",
            "--adjust-section-vma",
            ".sbat+0x100000",
            input.as_str(),
            output.as_str(),
        ],
    )?;
    if !has_sbat(output)? {
        return Err(SbError::Refused(format!(
            "objcopy did not add a .sbat section to {input}"
        )));
    }
    // objcopy stamps the PE header with the current time (and checksums
    // it): restore the input's stamp so the same rEFInd always gives the
    // same bytes, and a re-run writes nothing.
    let old = std::fs::read(input).map_err(io_err(input, "read"))?;
    let mut new = std::fs::read(output).map_err(io_err(output, "read"))?;
    if restore_timestamp(&old, &mut new) {
        std::fs::write(output, &new).map_err(io_err(output, "write"))?;
    }
    Ok(())
}

/// Copy `from`'s COFF TimeDateStamp into `to` and recompute `to`'s PE
/// checksum. Returns whether `to` changed.
fn restore_timestamp(from: &[u8], to: &mut [u8]) -> bool {
    let (Some(a), Some(b)) = (pe_offset(from), pe_offset(to)) else {
        return false;
    };
    let (Some(stamp), Some(_)) = (from.get(a + 8..a + 12), to.get(b + 8..b + 12)) else {
        return false;
    };
    if to[b + 8..b + 12] == *stamp {
        return false;
    }
    to[b + 8..b + 12].copy_from_slice(stamp);
    // CheckSum sits 64 bytes into the optional header (PE32 and PE32+).
    let sum_at = b + 24 + 64;
    if to.len() >= sum_at + 4 {
        let sum = pe_checksum(to, sum_at);
        to[sum_at..sum_at + 4].copy_from_slice(&sum.to_le_bytes());
    }
    true
}

/// The PE image checksum (as IMAGEHLP's CheckSumMappedFile): 16-bit
/// one's-complement-style sum of the file without the checksum field, plus
/// the file's length.
fn pe_checksum(b: &[u8], sum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in b.chunks(2).enumerate() {
        let off = i * 2;
        if off >= sum_at && off < sum_at + 4 {
            continue;
        }
        let w = u16::from_le_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]) as u64;
        sum += w;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(b.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE header: MZ, e_lfanew, PE signature, COFF header with
    /// `names.len()` sections and no optional header.
    fn fake_pe(names: &[&str]) -> Vec<u8> {
        let mut b = vec![0u8; 0x80];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b[0x46..0x48].copy_from_slice(&(names.len() as u16).to_le_bytes());
        b.truncate(0x44 + 20);
        for n in names {
            let mut s = [0u8; 40];
            s[..n.len()].copy_from_slice(n.as_bytes());
            b.extend_from_slice(&s);
        }
        b
    }

    #[test]
    fn checksum_matches_objcopys() {
        // objcopy writes a valid checksum; recomputing it must agree.
        let Ok(bin) = std::fs::read("/usr/share/refind/refind/refind_x64.efi") else {
            return;
        };
        let pe = pe_offset(&bin).unwrap();
        let at = pe + 24 + 64;
        let stored = u32::from_le_bytes(bin[at..at + 4].try_into().unwrap());
        if stored != 0 {
            assert_eq!(pe_checksum(&bin, at), stored);
        }
        let mut changed = bin.clone();
        changed[pe + 8] ^= 1;
        assert!(restore_timestamp(&bin, &mut changed));
        assert_eq!(changed[pe + 8], bin[pe + 8]);
        assert!(!restore_timestamp(&bin, &mut changed));
    }

    #[test]
    fn lists_sections() {
        assert_eq!(
            sections(&fake_pe(&[".text", ".sbat"])).unwrap(),
            vec![".text", ".sbat"]
        );
        assert_eq!(sections(b"MZ but nothing else"), None);
        assert_eq!(sections(b"\x7fELF"), None);
        // Truncated section table: not a PE we can read.
        let mut t = fake_pe(&[".text", ".data"]);
        t.truncate(t.len() - 36);
        assert_eq!(sections(&t), None);
    }
}
