//! The LUKS version of a device, read from the first bytes of its header
//! (the `LUKS\xba\xbe` magic and a big-endian version, in both LUKS1 and
//! LUKS2 on-disk formats).

/// Bytes read from the start of a device: enough for magic and version.
pub const HEADER_PREFIX: usize = 8;

const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";

/// The LUKS version stored in `prefix`, or `None` when it is not a LUKS header.
pub fn luks_version(prefix: &[u8]) -> Option<u16> {
    if prefix.len() < HEADER_PREFIX || &prefix[..6] != MAGIC {
        return None;
    }
    Some(u16::from_be_bytes([prefix[6], prefix[7]]))
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
}
