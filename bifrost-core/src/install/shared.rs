//! The shared subvolume (`@shared`): created when missing, never formatted,
//! never overwritten, and owned so both systems can write it.
//!
//! A stock Kinoite has no `@shared`. bifrost creates it under a temporary
//! name, gives its top folder the shared group (the same gid on NixOS and on
//! Kinoite), mode 2775 (group-writable; setgid so new files and folders
//! inherit the group), and only then renames it into place. The step's probe
//! is "the subvolume exists": an existing `@shared` is never touched, and a
//! run killed halfway leaves at most the temporary subvolume, which the next
//! run deletes and makes again.

use crate::spec::SharedGroup;
use camino::Utf8Path;

/// Mode of the shared subvolume's top folder: rwxrwsr-x.
pub const MODE: &str = "2775";

/// The script `sh -c` runs; arguments: top-level mount, subvolume name, gid.
const SCRIPT: &str = r#"set -eu
top=$1 name=$2 gid=$3
new="$top/.$name.bifrost-new"
if [ -e "$new" ]; then btrfs subvolume delete "$new" > /dev/null; fi
btrfs subvolume create "$new" > /dev/null
chown "0:$gid" "$new"
chmod 2775 "$new"
if [ -e "$top/$name" ]; then echo "$top/$name appeared meanwhile; left as it is" >&2; btrfs subvolume delete "$new" > /dev/null; exit 1; fi
mv "$new" "$top/$name"
"#;

/// The command that creates `top/name` with the shared group and mode.
pub fn create_argv(top: &Utf8Path, name: &str, group: &SharedGroup) -> Vec<String> {
    super::script::argv(SCRIPT, &[top.as_str(), name, &group.gid.to_string()])
}

#[cfg(test)]
mod tests {
    use super::super::script::stubs::Stubs;
    use super::*;

    /// The script, run for real against a folder with stand-ins for btrfs and
    /// chown on PATH, makes the folder with mode 2775 and renames it into
    /// place; an existing target is left alone.
    #[test]
    fn script_creates_under_a_temp_name_then_renames() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(t.path()).unwrap();
        let stubs = Stubs::new(
            root,
            &[
                (
                    "btrfs",
                    "case $2 in create) mkdir \"$3\";; delete) rm -r \"$3\";; esac",
                ),
                ("chown", ""),
            ],
        );
        let top = root.join("top");
        std::fs::create_dir(&top).unwrap();
        let group = SharedGroup {
            name: "shared".into(),
            gid: 2000,
        };
        let argv = create_argv(&top, "@shared", &group);
        assert!(stubs.run(&argv).success());
        let meta = std::fs::metadata(top.join("@shared")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o2775);
        assert!(!top.join(".@shared.bifrost-new").exists());
        assert!(stubs
            .logged()
            .contains(&format!("chown 0:2000 {top}/.@shared.bifrost-new")));
        // A second run with the target present refuses and leaves it alone.
        std::fs::write(top.join("@shared/keep"), b"data").unwrap();
        assert!(!stubs.run(&argv).success());
        assert_eq!(std::fs::read(top.join("@shared/keep")).unwrap(), b"data");
        assert!(!top.join(".@shared.bifrost-new").exists());
    }
}
