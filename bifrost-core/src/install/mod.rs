//! Install to disk: the plan (fresh or beside Kinoite) and its execution.
//!
//! - [`plan`]: pure; host settings + disk + mode → ordered steps, each with
//!   its exact command, what it writes, whether it reaches Kinoite's side,
//!   and how a re-run recognises it as done.
//! - [`preflight`]: refuses a disk that is mounted, swapped on or holds the
//!   running system; finds missing tools.
//! - [`run`]: executes the steps, recording progress for resume.
//! - [`secret`]: the passphrase, kept off every command line and log.
//! - [`source`]: which host and flake to install (the installer's own by
//!   default) and whether the installer carries that system.

pub mod flake_copy;
pub mod plan;
pub mod preflight;
pub mod refind_bin;
pub mod run;
pub mod sb_keys;
pub mod script;
pub mod secret;
pub mod session;
pub mod shared;
pub mod source;
pub mod terminal;
pub mod undo;
pub mod users;

use camino::{Utf8Path, Utf8PathBuf};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot find the settings of host {host:?}: flake {flake:?} is not a local folder; pass the host file with --settings FILE")]
    RemoteFlake { host: String, flake: String },
    #[error("{path}: no such host file; hosts live in <flake>/hosts/<name>/host.json (pass --settings FILE for another place)")]
    NoHostFile { path: String },
}

/// The local folder of a flake reference, when it has one
/// (`.`, `/path`, `path:/path`, `git+file:///path`, each without `?…`).
pub fn local_flake_dir(flake: &str) -> Option<Utf8PathBuf> {
    let s = flake.split(['?', '#']).next().unwrap_or(flake);
    let p = if let Some(rest) = s.strip_prefix("path:") {
        rest
    } else if let Some(rest) = s.strip_prefix("git+file://") {
        rest
    } else if s.starts_with('/') || s.starts_with('.') {
        s
    } else {
        return None;
    };
    Some(Utf8PathBuf::from(p))
}

/// Where `--host NAME` finds its settings: `<flake dir>/hosts/NAME/host.json`.
pub fn host_file(flake: &str, host: &str) -> Result<Utf8PathBuf, InstallError> {
    let dir = local_flake_dir(flake).ok_or_else(|| InstallError::RemoteFlake {
        host: host.into(),
        flake: flake.into(),
    })?;
    let path = dir.join("hosts").join(host).join("host.json");
    if !Utf8Path::new(&path).is_file() {
        return Err(InstallError::NoHostFile {
            path: path.to_string(),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flake_dirs() {
        assert_eq!(local_flake_dir(".").unwrap(), ".");
        assert_eq!(local_flake_dir("/src/bifrost").unwrap(), "/src/bifrost");
        assert_eq!(local_flake_dir("path:/x?dir=y").unwrap(), "/x");
        assert_eq!(local_flake_dir("git+file:///x").unwrap(), "/x");
        assert!(local_flake_dir("github:bifrost-nix/bifrost").is_none());
    }
}
