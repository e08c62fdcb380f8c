//! What `bifrost install` installs: the host, the flake it comes from, its
//! settings file, and whether this installer already carries its system.
//!
//! bifrost's installer ISO (modules/installer.nix) carries one host's system
//! closure and the flake it was built from, and names them in the
//! environment (`BIFROST_INSTALL_HOST`, `_FLAKE`, `_SYSTEM`, `_SETTINGS`).
//! Those are the defaults; a host or flake given on the command line wins,
//! and then the carried system and settings no longer apply.

use camino::Utf8PathBuf;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("no host to install: pass --host NAME (the flake's nixosConfigurations.NAME); only bifrost's installer ISO knows its host")]
    NoHost,
    #[error(transparent)]
    Settings(#[from] super::InstallError),
}

/// What the installer ISO carries, read from its environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Carried {
    pub host: Option<String>,
    pub flake: Option<String>,
    /// The host's system (its toplevel) in this installer's store.
    pub system: Option<String>,
    /// The host's effective settings (`/etc/bifrost/host.json`).
    pub settings: Option<Utf8PathBuf>,
}

impl Carried {
    /// Reads `BIFROST_INSTALL_*` (unset or empty: not carried).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Carried {
            host: var("BIFROST_INSTALL_HOST"),
            flake: var("BIFROST_INSTALL_FLAKE"),
            system: var("BIFROST_INSTALL_SYSTEM"),
            settings: var("BIFROST_INSTALL_SETTINGS").map(Utf8PathBuf::from),
        }
    }
}

/// The resolved source of an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub host: String,
    pub flake: String,
    pub settings: Utf8PathBuf,
    /// Set when the installer carries this very system.
    pub carried_system: Option<String>,
}

/// Command-line host, flake and settings over what the installer carries;
/// the carried system and settings count only for the carried host and flake.
pub fn resolve(
    host: Option<&str>,
    flake: Option<&str>,
    settings: Option<&Utf8PathBuf>,
    carried: &Carried,
) -> Result<Source, SourceError> {
    let host = host
        .map(str::to_string)
        .or_else(|| carried.host.clone())
        .ok_or(SourceError::NoHost)?;
    let same_host = carried.host.as_deref() == Some(host.as_str());
    let flake = match flake {
        Some(f) => f.to_string(),
        None => carried
            .flake
            .clone()
            .filter(|_| same_host)
            .unwrap_or_else(|| ".".into()),
    };
    let is_carried = same_host && carried.flake.as_deref() == Some(flake.as_str());
    let settings = match settings {
        Some(s) => s.clone(),
        None => match carried.settings.clone().filter(|_| is_carried) {
            Some(s) => s,
            None => super::host_file(&flake, &host)?,
        },
    };
    Ok(Source {
        carried_system: carried.system.clone().filter(|_| is_carried),
        host,
        flake,
        settings,
    })
}

/// The line `bifrost install` prints before its plan.
pub fn announce(s: &Source) -> String {
    let mut out = format!(
        "Installing host {} from flake {} (settings {})\n",
        s.host, s.flake, s.settings
    );
    match &s.carried_system {
        Some(system) => out.push_str(&format!(
            "  this installer carries its system, {system}: nothing to download\n"
        )),
        None => out.push_str(
            "  not the system this installer carries: nixos-install builds or downloads it\n",
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso() -> Carried {
        Carried {
            host: Some("surface-pro-8".into()),
            flake: Some("/etc/bifrost/flake".into()),
            system: Some("/nix/store/aaaa-nixos-system-surface-pro-8".into()),
            settings: Some("/etc/bifrost/host.json".into()),
        }
    }

    #[test]
    fn the_installer_installs_what_it_carries() {
        let s = resolve(None, None, None, &iso()).unwrap();
        assert_eq!(s.host, "surface-pro-8");
        assert_eq!(s.flake, "/etc/bifrost/flake");
        assert_eq!(s.settings, "/etc/bifrost/host.json");
        let text = announce(&s);
        assert!(text.contains("Installing host surface-pro-8 from flake /etc/bifrost/flake"));
        assert!(text.contains("carries its system, /nix/store/aaaa-nixos-system-surface-pro-8"));
    }

    #[test]
    fn another_host_or_flake_is_not_the_carried_system() {
        let dir = tempfile::tempdir().unwrap();
        let d = camino::Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(d.join("hosts/other")).unwrap();
        std::fs::write(d.join("hosts/other/host.json"), "{}").unwrap();
        let s = resolve(Some("other"), Some(d.as_str()), None, &iso()).unwrap();
        assert_eq!(s.settings, d.join("hosts/other/host.json"));
        assert_eq!(s.carried_system, None);
        assert!(announce(&s).contains("not the system this installer carries"));
        // Same host from another flake: not the carried one either.
        let err = resolve(Some("surface-pro-8"), Some(d.as_str()), None, &iso()).unwrap_err();
        assert!(err.to_string().contains("no such host file"), "{err}");
    }

    #[test]
    fn without_an_installer_the_host_is_required() {
        let err = resolve(None, None, None, &Carried::default()).unwrap_err();
        assert!(err.to_string().contains("--host NAME"), "{err}");
        let settings = Utf8PathBuf::from("/x/host.json");
        let s = resolve(Some("h"), None, Some(&settings), &Carried::default()).unwrap();
        assert_eq!(s.flake, ".");
        assert_eq!(s.settings, "/x/host.json");
    }
}
