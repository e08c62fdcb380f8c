//! The NixOS system itself: what its first activation reads (the users'
//! password hashes, the Secure Boot signing keys), `nixos-install`, and the
//! flake kept on the installed system.

use super::layout::Layout;
use super::step::run;
use super::{Action, DataOwner, FlakeOwner, PlanError, Step, WriteKind};
use crate::install::{flake_copy, local_flake_dir, sb_keys, users};
use camino::Utf8PathBuf;

/// One hash file per user. Before nixos-install: its activation reads these
/// files (`hashedPasswordFile`) when it creates the accounts.
pub(super) fn passwords(l: &Layout) -> Vec<Step> {
    l.settings
        .users
        .iter()
        .map(|u| {
            let path = users::hash_path(l.target(), &u.name);
            Step::new(
                format!("password:{}", u.name),
                format!("Store the hash of {}'s password on the new system", u.name),
                Action::WritePasswordHash {
                    user: u.name.clone(),
                    path: path.clone(),
                },
            )
            .writes(WriteKind::PasswordHash, path, DataOwner::Nixos)
        })
        .collect()
}

/// The signing keys, when Secure Boot is on. Before nixos-install: its
/// boot-loader hook signs with them.
pub(super) fn secure_boot_keys(l: &Layout) -> Result<Option<Step>, PlanError> {
    Ok(sb_keys::step(l.settings, l.req)?.map(|sb| {
        Step::new("sb-keys", sb.title, run(sb.argv)).writes(
            WriteKind::Keys,
            sb.dir,
            DataOwner::Nixos,
        )
    }))
}

pub(super) fn nixos_install(l: &Layout) -> Step {
    let (req, target) = (l.req, l.target());
    Step::new(
        "nixos-install",
        format!(
            "Install NixOS from {}#{} into {target}",
            req.flake, req.host
        ),
        run(vec![
            "nixos-install".into(),
            "--flake".into(),
            format!("{}#{}", req.flake, req.host),
            "--root".into(),
            target.to_string(),
            "--no-root-passwd".into(),
        ]),
    )
    .writes(WriteKind::Files, target, DataOwner::Nixos)
}

/// The copy of the flake kept on the installed system, when the flake is a
/// local folder and the host has an administrator to own it.
pub(super) struct FlakeCopy {
    pub step: Step,
    /// Where it lands, as the installed system sees it.
    pub path: Utf8PathBuf,
    pub owner: FlakeOwner,
}

/// The installer's copy of the flake is gone after the reboot: keep one.
pub(super) fn flake(l: &Layout) -> Option<FlakeCopy> {
    let src = local_flake_dir(&l.req.flake)?;
    let admin = flake_copy::admin(l.settings)?;
    let owner = flake_copy::owner(admin);
    let step = Step::new(
        "copy-flake",
        format!(
            "Copy the flake {src} to {} on the installed system (owner {owner}), unless one is there",
            flake_copy::DEST,
        ),
        run(flake_copy::argv(&src, l.target(), &owner)),
    )
    .writes(
        WriteKind::Files,
        flake_copy::dest_under(l.target()),
        DataOwner::Nixos,
    );
    Some(FlakeCopy {
        step,
        path: flake_copy::DEST.into(),
        owner: FlakeOwner {
            user: admin.name.clone(),
            uid: admin.uid,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{changed, ids, request, settings};
    use super::super::Mode;
    use super::*;

    #[test]
    fn each_user_gets_a_hash_file_on_the_target() {
        let s = settings();
        let r = request(Mode::Fresh);
        let steps = passwords(&Layout::new(&s, &r).unwrap());
        assert_eq!(ids(&steps), ["password:alice", "password:bob"]);
        assert_eq!(
            steps[1].action,
            Action::WritePasswordHash {
                user: "bob".into(),
                path: "/mnt/var/lib/bifrost/passwords/bob".into()
            }
        );
    }

    #[test]
    fn the_flake_copy_belongs_to_the_first_administrator() {
        let s = changed(|s| {
            s.users[0].admin = false;
            s.users[1].admin = true;
        });
        let r = request(Mode::Fresh);
        let c = flake(&Layout::new(&s, &r).unwrap()).unwrap();
        assert_eq!(
            c.owner,
            FlakeOwner {
                user: "bob".into(),
                uid: 1001
            }
        );
        assert_eq!(c.path, "/etc/nixos");
        assert!(
            c.step.title.contains("(owner 1001:1001)"),
            "{}",
            c.step.title
        );
        // A flake that is not a local folder: no copy (validation makes
        // sure there is an administrator).
        let mut remote = request(Mode::Fresh);
        remote.flake = "github:someone/flake".into();
        assert!(flake(&Layout::new(&s, &remote).unwrap()).is_none());
    }

    #[test]
    fn secure_boot_keys_only_when_enabled() {
        let s = settings();
        let r = request(Mode::Fresh);
        assert!(secure_boot_keys(&Layout::new(&s, &r).unwrap())
            .unwrap()
            .is_none());
        let s = changed(|s| {
            s.security.secure_boot.enable = true;
            s.security.secure_boot.keys_path = Some("/etc/secureboot".into());
        });
        let step = secure_boot_keys(&Layout::new(&s, &r).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(step.writes[0].path, "/mnt/etc/secureboot");
        assert_eq!(step.writes[0].kind, WriteKind::Keys);
    }
}
