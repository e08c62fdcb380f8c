//! Just enough of the PE/COFF format to tell an EFI binary from other files
//! and to list its sections (shim wants a `.sbat` one).

use super::{io, run, SbError};
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

/// Does the PE file at `path` carry a `.sbat` section?
pub fn has_sbat(path: &Utf8Path) -> Result<bool, SbError> {
    let bytes = std::fs::read(path).map_err(io(path, "read"))?;
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
    std::fs::write(&csv_path, csv).map_err(io(&csv_path, "write"))?;
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
    Ok(())
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
    fn lists_sections() {
        assert_eq!(
            sections(&fake_pe(&[".text", ".sbat"])).unwrap(),
            vec![".text", ".sbat"]
        );
        assert_eq!(sections(b"MZ but nothing else"), None);
        assert_eq!(sections(b"\x7fELF"), None);
        // Truncated section table: not a PE we can read.
        let mut t = fake_pe(&[".text", ".data"]);
        t.truncate(t.len() - 10);
        assert_eq!(sections(&t), None);
    }
}
