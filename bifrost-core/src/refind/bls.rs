//! Boot Loader Specification entries (`loader/entries/*.conf`), as ostree
//! writes them on Fedora Kinoite's `/boot`, turned into rEFInd menu entries.

use super::{MenuEntry, RefindError};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// One BLS type #1 entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlsEntry {
    /// File name without `.conf`.
    pub id: String,
    pub title: Option<String>,
    pub version: Option<String>,
    pub linux: String,
    pub initrd: Vec<String>,
    pub options: Vec<String>,
    pub sort_key: Option<String>,
}

fn bad(path: &str, msg: impl Into<String>) -> RefindError {
    RefindError::Bls {
        path: path.into(),
        msg: msg.into(),
    }
}

/// Parse one entry; `path` names it in errors.
pub fn parse(path: &str, id: &str, text: &str) -> Result<BlsEntry, RefindError> {
    let mut e = BlsEntry {
        id: id.into(),
        title: None,
        version: None,
        linux: String::new(),
        initrd: vec![],
        options: vec![],
        sort_key: None,
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => (k, v.trim()),
            None => (line, ""),
        };
        let at = || format!("{path}:{}", n + 1);
        // The Boot Loader Specification: "unknown keys are ignored".
        let known = ["title", "version", "sort-key", "linux", "initrd", "options"];
        if !known.contains(&key) {
            continue;
        }
        if value.is_empty() {
            return Err(bad(&at(), format!("key `{key}` has no value")));
        }
        if value.contains('\0') {
            return Err(bad(&at(), "contains a NUL byte"));
        }
        match key {
            "title" => e.title = Some(value.into()),
            "version" => e.version = Some(value.into()),
            "sort-key" => e.sort_key = Some(value.into()),
            "linux" => {
                if !e.linux.is_empty() {
                    return Err(bad(&at(), "`linux` given twice"));
                }
                e.linux = value.into();
            }
            "initrd" => e.initrd.extend(value.split_whitespace().map(String::from)),
            "options" => e.options.push(value.into()),
            _ => {}
        }
    }
    if e.linux.is_empty() {
        return Err(bad(
            path,
            "has no `linux` line (the kernel to boot); fix or remove the file",
        ));
    }
    for p in std::iter::once(&e.linux).chain(&e.initrd) {
        if !p.starts_with('/') {
            return Err(bad(
                path,
                format!("path {p:?} must be absolute on the boot volume (start with /)"),
            ));
        }
    }
    Ok(e)
}

/// Read every `*.conf` in `dir`, newest first (BLS order: sort-key, then
/// version descending, then id descending).
pub fn read_dir(dir: &Utf8Path) -> Result<Vec<BlsEntry>, RefindError> {
    let io = |op: &'static str, p: &Utf8Path| {
        let path = p.to_string();
        move |source| RefindError::Io(crate::fsutil::IoError::new(path, op, source))
    };
    let mut out = vec![];
    for ent in dir.read_dir_utf8().map_err(io("read folder", dir))? {
        let ent = ent.map_err(io("read folder", dir))?;
        let name = ent.file_name();
        let Some(id) = name.strip_suffix(".conf") else {
            continue;
        };
        let p: Utf8PathBuf = ent.path().into();
        // Only regular files are entries: opening a FIFO would block.
        if !std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let bytes = std::fs::read(&p).map_err(io("read", &p))?;
        let text = String::from_utf8(bytes).map_err(|_| bad(p.as_str(), "is not UTF-8"))?;
        out.push(parse(p.as_str(), id, &text)?);
    }
    if out.is_empty() {
        return Err(bad(
            dir.as_str(),
            "holds no *.conf entries; point --kinoite-entries at Kinoite's loader/entries folder",
        ));
    }
    out.sort_by(|a, b| {
        a.sort_key
            .cmp(&b.sort_key)
            .then_with(|| version_cmp(b.version.as_deref(), a.version.as_deref()))
            .then_with(|| version_cmp(Some(&b.id), Some(&a.id)))
    });
    Ok(out)
}

/// Compare versions with digit runs compared as numbers.
fn version_cmp(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, String)> {
        let mut v: Vec<(bool, String)> = vec![];
        for c in s.chars() {
            let d = c.is_ascii_digit();
            match v.last_mut() {
                Some((ld, buf)) if *ld == d => buf.push(c),
                _ => v.push((d, c.to_string())),
            }
        }
        v
    }
    match (a, b) {
        (Some(a), Some(b)) => {
            let (ca, cb) = (chunks(a), chunks(b));
            for (x, y) in ca.iter().zip(&cb) {
                let o = if x.0 && y.0 {
                    let (xs, ys) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                    xs.len().cmp(&ys.len()).then_with(|| xs.cmp(ys))
                } else {
                    x.1.cmp(&y.1)
                };
                if o.is_ne() {
                    return o;
                }
            }
            ca.len().cmp(&cb.len())
        }
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

/// A menu entry booting `e` from `volume`.
pub fn menu_entry(e: &BlsEntry, volume: &str, icon: Option<String>) -> MenuEntry {
    let title = e.title.clone().unwrap_or_else(|| match &e.version {
        Some(v) => format!("{} {v}", e.id),
        None => e.id.clone(),
    });
    MenuEntry {
        title,
        volume: Some(volume.into()),
        loader: e.linux.clone(),
        initrd: e.initrd.clone(),
        options: (!e.options.is_empty()).then(|| e.options.join(" ")),
        icon,
        submenus: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OSTREE: &str = "title Fedora Linux 40.20240601.0 (Kinoite) (ostree:0)
version 2
options rhgb quiet root=UUID=abcd rootflags=subvol=@root rw ostree=/ostree/boot.1/fedora/1f3/0
linux /ostree/fedora-1f3/vmlinuz-6.8.11-300.fc40.x86_64
initrd /ostree/fedora-1f3/initramfs-6.8.11-300.fc40.x86_64.img
aboot /ostree/deploy/fedora/deploy/1f3.0/usr/lib/ostree-boot/aboot.img
";

    #[test]
    fn parses_an_ostree_entry() {
        let e = parse("ostree-2-fedora.conf", "ostree-2-fedora", OSTREE).unwrap();
        insta::assert_json_snapshot!(e);
        let m = menu_entry(&e, "kinoite-boot", None);
        assert_eq!(m.volume.as_deref(), Some("kinoite-boot"));
        assert!(m.options.unwrap().starts_with("rhgb quiet root=UUID=abcd"));
    }

    #[test]
    fn missing_linux_is_an_error() {
        let err = parse("x.conf", "x", "title X\n").unwrap_err().to_string();
        assert!(err.contains("x.conf") && err.contains("linux"), "{err}");
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse("x.conf", "x", "linux /k\ntitle\n").is_err());
        assert!(parse("x.conf", "x", "linux relative/k\n").is_err());
        assert!(parse("x.conf", "x", "linux /k\nlinux /j\n").is_err());
    }

    #[test]
    fn unknown_keys_are_ignored() {
        // Keys of newer specs or other loaders, with odd names or no value.
        let text = "linux /k\nx-vendor.flag\n{garbage}\nfoo:bar 1\nextra-key\ntitle T\n";
        let e = parse("x.conf", "x", text).unwrap();
        assert_eq!((e.linux.as_str(), e.title.as_deref()), ("/k", Some("T")));
    }

    #[test]
    fn only_regular_files_are_read() {
        let d = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(d.path()).unwrap();
        std::fs::write(dir.join("a.conf"), "linux /k\n").unwrap();
        let fifo = std::ffi::CString::new(dir.join("fifo.conf").as_str()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::create_dir(dir.join("folder.conf")).unwrap();
        let ids: Vec<String> = read_dir(dir).unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a"]);
    }

    #[test]
    fn newest_version_first() {
        assert!(version_cmp(Some("10"), Some("9")).is_gt());
        assert!(version_cmp(Some("6.8.11"), Some("6.8.9")).is_gt());
        assert!(version_cmp(Some("1"), Some("1")).is_eq());
    }
}
