//! The LUKS version of a device, read from the first bytes of its header
//! (the `LUKS\xba\xbe` magic and a big-endian version, in both LUKS1 and
//! LUKS2 on-disk formats), and its UUID.

/// Bytes read from the start of a device: magic, version and UUID.
pub const HEADER_PREFIX: usize = UUID_END;

/// Magic and version.
const VERSION_END: usize = 8;
/// The UUID, 40 bytes NUL-padded at offset 168 in both formats
/// (`struct luks2_hdr_disk` in cryptsetup's lib/luks2/luks2.h: magic 6,
/// version 2, hdr_size 8, seqid 8, label 48, checksum_alg 32, salt 64;
/// `struct luks_phdr` in lib/luks1/luks.h: magic 6, version 2, cipher
/// name 32, mode 32, hash 32, payload offset 4, key bytes 4, digest 20,
/// salt 32, iterations 4).
const UUID_AT: usize = 168;
const UUID_END: usize = UUID_AT + 40;

const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";

/// The LUKS version stored in `prefix`, or `None` when it is not a LUKS header.
pub fn luks_version(prefix: &[u8]) -> Option<u16> {
    if prefix.len() < VERSION_END || &prefix[..6] != MAGIC {
        return None;
    }
    Some(u16::from_be_bytes([prefix[6], prefix[7]]))
}

/// The UUID in a LUKS header's first bytes (as `cryptsetup luksUUID`
/// prints it), or `None` when there is none.
pub fn luks_uuid(prefix: &[u8]) -> Option<String> {
    luks_version(prefix)?;
    let field = prefix.get(UUID_AT..UUID_END)?;
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    let uuid = std::str::from_utf8(&field[..end]).ok()?;
    let ok = !uuid.is_empty() && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then(|| uuid.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_magic_and_version() {
        assert_eq!(luks_version(b"LUKS\xba\xbe\x00\x02rest"), Some(2));
        assert_eq!(luks_version(b"LUKS\xba\xbe\x00\x01"), Some(1));
        assert_eq!(luks_version(b"LUKS\xba\xbe\x00"), None);
        assert_eq!(luks_version(b"SKUL\xba\xbe\x00\x02"), None);
        assert_eq!(luks_version(&[0; 4096]), None);
    }

    #[test]
    fn reads_the_uuid() {
        let mut h = b"LUKS\xba\xbe\x00\x02".to_vec();
        h.resize(HEADER_PREFIX, 0);
        assert_eq!(luks_uuid(&h), None, "no UUID written");
        h[168..168 + 36].copy_from_slice(b"0F1E2D3C-0000-4000-8000-00000000beef");
        assert_eq!(
            luks_uuid(&h).as_deref(),
            Some("0f1e2d3c-0000-4000-8000-00000000beef")
        );
        h[170] = b'/';
        assert_eq!(luks_uuid(&h), None, "not a UUID");
        assert_eq!(luks_uuid(&h[..100]), None, "too short");
    }
}
