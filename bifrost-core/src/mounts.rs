//! The running system's mounts: the one reader of `/proc/self/mountinfo`.
//!
//! `install` (is the disk in use?), `deploy` (which device holds a mount
//! point?) and `hardware detect` (which options does a subvolume mount with?)
//! all read this list, so they agree on what is mounted.

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// `major:minor` of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    /// Parse `8:16`.
    pub fn parse(s: &str) -> Option<DevNum> {
        let (a, b) = s.trim().split_once(':')?;
        Some(DevNum {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }
}

impl std::fmt::Display for DevNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One mounted file system (one line of `/proc/self/mountinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the mounted device (anonymous `0:N` for btrfs).
    pub dev: DevNum,
    pub mount_point: String,
    pub fs_type: String,
    /// The mount source (`/dev/mapper/cryptroot`, `tmpfs`, …).
    pub source: String,
    /// Per-mount options, then the file system's own (as `/proc/mounts`
    /// lists them), each once.
    pub options: Vec<String>,
}

/// Parse one line (`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`).
pub fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let dev = DevNum::parse(l.nth(2)?)?;
    let mount_point = unescape_octal(l.nth(1)?);
    let mount_options = l.next().unwrap_or("");
    let mut r = right.split(' ');
    let fs_type = r.next()?.to_string();
    let source = unescape_octal(r.next().unwrap_or(""));
    let super_options = r.next().unwrap_or("");
    let mut options: Vec<String> = Vec::new();
    for o in mount_options.split(',').chain(super_options.split(',')) {
        if !o.is_empty() && !options.iter().any(|x| x == o) {
            options.push(o.to_string());
        }
    }
    Some(Mount {
        dev,
        mount_point,
        fs_type,
        source,
        options,
    })
}

/// Every well-formed line of a mountinfo text.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// Where the list lives under `root` (`/` on the running system; a fixture
/// folder in tests).
pub fn path(root: &Utf8Path) -> Utf8PathBuf {
    root.join("proc/self/mountinfo")
}

/// The mounts of the system whose `/proc` is under `root`.
pub fn read(root: &Utf8Path) -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string(path(root))?))
}

/// The kernel escapes space, tab, newline and backslash as `\ooo` (in
/// mountinfo and in `/proc/swaps`).
pub fn unescape_octal(s: &str) -> String {
    unescape(s, false)
}

/// [`unescape_octal`], and `\xHH` too: lsblk passes on mountinfo's escapes,
/// and lsblk before util-linux 2.37 wrote `\x20`.
pub fn unescape_octal_or_hex(s: &str) -> String {
    unescape(s, true)
}

/// Undo `\ooo` (and with `hex`, `\xHH`) escapes; anything else, such as
/// `\999` or a value above 255, stays as written. Bytes are decoded as
/// UTF-8 once all escapes are undone.
fn unescape(s: &str, hex: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let (digits, radix) = if hex && b[i + 1] == b'x' {
                (&b[i + 2..i + 4], 16)
            } else {
                (&b[i + 1..i + 4], 8)
            };
            let value = std::str::from_utf8(digits)
                .ok()
                .filter(|d| d.bytes().all(|c| (c as char).is_digit(radix)))
                .and_then(|d| u8::from_str_radix(d, radix).ok());
            if let Some(v) = value {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_escapes_and_merged_options() {
        let m = parse_line(
            "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!(
            m.dev,
            DevNum {
                major: 98,
                minor: 0
            }
        );
        assert_eq!(m.mount_point, "/mnt two");
        assert_eq!(m.fs_type, "ext3");
        assert_eq!(m.source, "/dev/root");
        assert_eq!(m.options, ["rw", "noatime", "errors=continue"]);
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn non_ascii_names_survive_unescaping() {
        let m = parse_line("1 1 8:1 / /mnt/gr\u{fc}n\\011x rw - vfat /dev/sda1 rw").unwrap();
        assert_eq!(m.mount_point, "/mnt/gr\u{fc}n\tx");
    }

    #[test]
    fn no_optional_fields_is_fine() {
        let m = parse_line("22 1 259:3 / / rw,relatime - ext4 /dev/nvme0n1p3 rw").unwrap();
        assert_eq!(m.mount_point, "/");
        assert_eq!(m.options, ["rw", "relatime"]);
    }

    #[test]
    fn octal_and_hex_escapes_are_undone() {
        assert_eq!(unescape_octal_or_hex("/srv/my\\040data"), "/srv/my data");
        assert_eq!(unescape_octal_or_hex("/srv/my\\x20data"), "/srv/my data");
        assert_eq!(unescape_octal_or_hex("/@odd\\042name"), "/@odd\"name");
        assert_eq!(unescape_octal_or_hex("/a\\999b\\"), "/a\\999b\\");
        // The kernel writes octal only; above 255 is no escape.
        assert_eq!(unescape_octal("/my\\x20data"), "/my\\x20data");
        assert_eq!(unescape_octal("/a\\777b"), "/a\\777b");
    }
}
