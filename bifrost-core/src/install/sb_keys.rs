//! The Secure Boot keys step of the install plan: `bifrost sb keys` puts
//! the signing keys at the settings' `keysPath` on the target before
//! `nixos-install`, whose boot-loader hook signs rEFInd and the kernels with
//! them. Only key *paths* are on the command line; the keys themselves are
//! made or copied by that process (never into the Nix store or a log).

use super::plan::{PlanError, PlanRequest};
use crate::esp::choices::join_below as on_target;
use crate::esp::choices::signing_key_name as signing_name;
use crate::spec::{SecureBootRoute, Settings};
use camino::{Utf8Path, Utf8PathBuf};

/// What the plan's `sb-keys` step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysStep {
    pub title: String,
    pub argv: Vec<String>,
    /// The key folder on the target.
    pub dir: Utf8PathBuf,
}

/// The step, when the settings turn Secure Boot on.
pub fn step(settings: &Settings, req: &PlanRequest) -> Result<Option<KeysStep>, PlanError> {
    let sb = &settings.security.secure_boot;
    // Validation makes keysPath an absolute folder outside the Nix store
    // whenever Secure Boot is on.
    let Some(keys_path) = sb.keys_path.as_ref().filter(|_| sb.enable) else {
        if let Some(from) = &req.sb_keys {
            return Err(PlanError::Settings {
                field: "security.secureBoot.enable".into(),
                message: format!(
                    "is false, so --sb-keys {from} would not be used; set it to true or leave out --sb-keys"
                ),
            });
        }
        return Ok(None);
    };
    let dir = on_target(&req.target, keys_path);
    let mut argv: Vec<String> = ["bifrost", "sb", "keys", "--dir", dir.as_str()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Resumable: a set an earlier run of this install put there is kept;
    // any other file there is refused, never overwritten.
    argv.push("--keep-existing".into());
    let title = match (&req.sb_keys, sb.route) {
        (Some(from), route) => {
            if !from.is_absolute() {
                return Err(PlanError::NotAbsolute {
                    arg: "--sb-keys",
                    value: from.to_string(),
                });
            }
            argv.extend(["--from".into(), from.to_string()]);
            argv.extend(["--name".into(), signing_name(route).into()]);
            format!(
                "Copy the Secure Boot keys {from}/{0}.key and {0}.crt to {keys_path} on the new system (private key 0600, folder 0700)",
                signing_name(route)
            )
        }
        (None, route @ SecureBootRoute::Shim) => {
            let name = signing_name(route);
            argv.extend(["--name".into(), name.into()]);
            format!("Create the Secure Boot signing key {name}.key/{name}.crt in {keys_path} on the new system (private key 0600, folder 0700)")
        }
        (None, SecureBootRoute::OwnKeys) => {
            argv.push("--firmware".into());
            format!("Create the Secure Boot keys (PK, KEK, db and the signing key) in {keys_path} on the new system (private keys 0600, folder 0700)")
        }
    };
    Ok(Some(KeysStep { title, argv, dir }))
}

/// The files `--sb-keys DIR` must hold for the settings' route: the
/// signing key and its certificate (`bifrost sb keys --from` copies the
/// rest when present).
pub fn source_files(settings: &Settings) -> [String; 2] {
    let name = signing_name(settings.security.secure_boot.route);
    [format!("{name}.key"), format!("{name}.crt")]
}

/// `bifrost esp install` flags that sign as the settings say (esp::choices
/// derives them; the plan shows them), with the keys on the target.
pub fn esp_sign_args(settings: &Settings, target: &Utf8Path) -> Vec<String> {
    let (sign, shim) = crate::esp::choices::secure_boot(settings, Some(target));
    let mut v = vec![];
    if let Some(k) = sign {
        v.extend(["--sign-key".into(), k.key.to_string()]);
        v.extend(["--sign-cert".into(), k.cert.to_string()]);
    }
    match shim {
        Some(crate::esp::sign::ShimSource::File(f)) => v.extend(["--shim".into(), f.to_string()]),
        Some(crate::esp::sign::ShimSource::Fedora) => v.push("--shim".into()),
        None => {}
    }
    v
}
