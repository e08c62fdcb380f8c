//! The flake a system was installed from, copied onto the installed system.
//!
//! The installer's copy (a clone in the live system's `/root`, or the ISO's
//! store) is gone after the reboot, and "update in your flake" then has no
//! flake. bifrost copies it to `/etc/nixos` of the target — where
//! `nixos-rebuild` looks for `flake.nix` when given no `--flake` — and gives
//! it to the host's first administrator (their uid and their private group,
//! whose gid is the uid: `modules/users.nix` declares it so), so
//! `nix flake update` and `git` work there without root. An existing
//! `/etc/nixos/flake.nix` (a second install, a resumed one) is kept as it is.

use crate::spec::{Settings, User};
use camino::{Utf8Path, Utf8PathBuf};

/// Where the flake lands on the installed system.
pub const DEST: &str = "/etc/nixos";

/// Who owns the copy: the first administrator of the host settings
/// (validation guarantees one).
pub fn admin(settings: &Settings) -> Option<&User> {
    settings.users.iter().find(|u| u.admin)
}

/// `uid:gid` of `admin`, numeric because the target's user database is not
/// the installer's.
pub fn owner(admin: &User) -> String {
    format!("{0}:{0}", admin.uid)
}

const SCRIPT: &str = r#"set -eu
src=$1 dest=$2 owner=$3
if [ -e "$dest/flake.nix" ]; then echo "$dest/flake.nix exists: kept as it is" >&2; exit 0; fi
mkdir -p "$dest"
cp -a "$src"/. "$dest"/
chmod -R u+w "$dest"
chown -R "$owner" "$dest"
"#;

/// `sh -c` command copying `src` to `DEST` below `target`, owned by `owner`.
pub fn argv(src: &Utf8Path, target: &Utf8Path, owner: &str) -> Vec<String> {
    super::script::argv(SCRIPT, &[src.as_str(), dest_under(target).as_str(), owner])
}

/// `DEST` as the installer sees it, below the target root.
pub fn dest_under(target: &Utf8Path) -> Utf8PathBuf {
    target.join(DEST.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::super::script::stubs::Stubs;
    use super::*;

    /// The script run for real (with a stand-in `chown` that records):
    /// copies the tree including `.git`, makes it writable, keeps an existing flake.
    #[test]
    fn copies_once_and_keeps_an_existing_flake() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(t.path()).unwrap();
        let src = root.join("src");
        std::fs::create_dir_all(src.join(".git")).unwrap();
        std::fs::write(src.join("flake.nix"), b"{ }").unwrap();
        std::fs::write(src.join(".git/HEAD"), b"ref: refs/heads/main\n").unwrap();
        std::fs::set_permissions(
            src.join("flake.nix"),
            std::fs::Permissions::from_mode(0o444),
        )
        .unwrap();
        let stubs = Stubs::new(root, &[("chown", "")]);
        let target = root.join("mnt");
        let argv = argv(&src, &target, "1001:1001");
        assert!(stubs.run(&argv).success());
        let dest = target.join("etc/nixos");
        assert_eq!(std::fs::read(dest.join("flake.nix")).unwrap(), b"{ }");
        assert!(dest.join(".git/HEAD").is_file());
        let mode = std::fs::metadata(dest.join("flake.nix"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o200, 0, "copy stays read-only");
        assert!(stubs
            .logged()
            .contains(&format!("chown -R 1001:1001 {dest}")));
        // The user's own edits survive a second run.
        std::fs::write(dest.join("flake.nix"), b"{ edited }").unwrap();
        assert!(stubs.run(&argv).success());
        assert_eq!(
            std::fs::read(dest.join("flake.nix")).unwrap(),
            b"{ edited }"
        );
    }
}
