//! Reading one generation's `boot.json` with messages that name what is wrong.

/// The bytes of `path`, a regular file; the message says why not.
pub fn read(path: &camino::Utf8Path) -> Result<Vec<u8>, String> {
    let name = bootspec::JSON_FILENAME;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "has no {name}; generations built before NixOS 23.05 have no bootspec — delete them or rebuild"
        )),
        Err(e) => Err(format!("cannot read {path}: {e}")),
        // A folder or a FIFO would fail or block the read: name it instead.
        Ok(m) if !m.is_file() => Err(format!(
            "{path} is not a regular file ({}); the generation's store path is damaged — delete the generation or repair the store (`nix-store --verify --repair`)",
            kind(&m)
        )),
        Ok(_) => std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}")),
    }
}

/// The bootspec document in `bytes`. bootspec's own type is an untagged
/// enum whose error ("did not match any variant") names no field, so a
/// failure is explained by parsing the v1 part on its own.
pub fn parse(bytes: &[u8]) -> Result<bootspec::BootJson, String> {
    let bad = |e: String| format!("boot.json is not a valid bootspec v1 document: {e}");
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(bad("it starts with a UTF-8 byte-order mark".into()));
    }
    serde_json::from_slice::<bootspec::BootJson>(bytes).map_err(|e| {
        let v: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => return bad(e.to_string()),
        };
        match v.get(V1) {
            None => bad(format!("no `{}` object", V1)),
            Some(v1) => match bootspec::v1::BootSpecV1::deserialize(v1) {
                Err(e) => bad(format!("`{}`: {e}", V1)),
                Ok(_) => bad(e.to_string()),
            },
        }
    })
}

use serde::Deserialize;

const V1: &str = "org.nixos.bootspec.v1";

/// What a non-regular file is, in words.
pub fn kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_kernel_is_named() {
        let doc = r#"{"org.nixos.bootspec.v1":{"label":"x","init":"/i","initrd":"/r","kernelParams":[],"system":"x86_64-linux","toplevel":"/t"}}"#;
        let e = parse(doc.as_bytes()).unwrap_err();
        assert!(e.contains("missing field `kernel`"), "{e}");
        assert!(!e.contains("untagged"), "{e}");
    }

    #[test]
    fn byte_order_mark_is_named() {
        let e = parse(b"\xEF\xBB\xBF{}").unwrap_err();
        assert!(e.contains("byte-order mark"), "{e}");
    }

    #[test]
    fn a_folder_named_boot_json_is_not_blamed_on_old_nixos() {
        let d = tempfile::tempdir().unwrap();
        let p = camino::Utf8Path::from_path(d.path()).unwrap();
        let e = read(p).unwrap_err();
        assert!(e.contains("not a regular file (a folder)"), "{e}");
        assert!(!e.contains("23.05"), "{e}");
        let e = read(&p.join("boot.json")).unwrap_err();
        assert!(e.contains("23.05"), "{e}");
    }
}
