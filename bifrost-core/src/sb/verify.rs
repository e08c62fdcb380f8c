//! `bifrost sb verify`: is every EFI binary rEFInd may load signed by the
//! user's certificate, and does the rEFInd shim starts carry SBAT data?

use super::{pe, run, SbError};
use crate::esp::REFIND_DIRS;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// What a checked file is to the boot chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Microsoft-signed shim: checked by the firmware, not by this certificate.
    Shim,
    MokManager,
    Refind,
    Driver,
    Kernel,
}

/// One checked file.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    /// ESP-relative path.
    pub path: String,
    pub role: Role,
    /// Signed by the certificate (None for shim and MokManager, which are
    /// not the user's to sign).
    pub signed: Option<bool>,
    /// Carries a `.sbat` section (checked for rEFInd only).
    pub sbat: Option<bool>,
    pub ok: bool,
    pub problem: Option<String>,
}

/// The result of `bifrost sb verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub esp: Utf8PathBuf,
    pub cert: Utf8PathBuf,
    pub files: Vec<FileCheck>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|f| f.ok)
    }
}

/// Does `sbverify` accept `file` as signed by `cert`?
pub fn signed_by(file: &Utf8Path, cert: &Utf8Path) -> Result<bool, SbError> {
    match run("sbverify", &["--cert", cert.as_str(), file.as_str()]) {
        Ok(_) => Ok(true),
        Err(SbError::Tool(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Paths the menu loads from this ESP (not from another volume).
fn loaders(conf: &str) -> Vec<String> {
    let mut out = vec![];
    let mut on_volume = false;
    for line in conf.lines() {
        let l = line.trim();
        if l.starts_with("menuentry ") {
            on_volume = false;
        } else if l.starts_with("volume ") {
            on_volume = true;
        } else if let Some(p) = l.strip_prefix("loader ") {
            if !on_volume {
                out.push(
                    p.trim()
                        .trim_matches('"')
                        .trim_start_matches('/')
                        .to_string(),
                );
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Check every EFI binary of each rEFInd install on the ESP.
pub fn verify(esp: &Utf8Path, cert: &Utf8Path) -> Result<Verification, SbError> {
    if !esp.is_dir() {
        return Err(SbError::Refused(format!(
            "{esp} is not a folder; pass the mount point of the EFI system partition with --esp"
        )));
    }
    super::fingerprint(cert)?;
    let mut files: Vec<(String, Role)> = vec![];
    for (dir, bin) in REFIND_DIRS {
        let conf_path = esp.join(dir).join("refind.conf");
        let Ok(conf) = std::fs::read_to_string(&conf_path) else {
            continue;
        };
        // Under shim, rEFInd is the second stage shim loads: grubx64.efi.
        let second = format!("{dir}/grubx64.efi");
        if esp.join(&second).is_file() {
            files.push((second, Role::Refind));
            for shim in [bin.to_string(), format!("{dir}/shimx64.efi")] {
                if esp.join(&shim).is_file() {
                    files.push((shim, Role::Shim));
                }
            }
            let mm = format!("{dir}/mmx64.efi");
            if esp.join(&mm).is_file() {
                files.push((mm, Role::MokManager));
            }
        } else {
            files.push((bin.to_string(), Role::Refind));
        }
        let drivers = esp.join(dir).join("drivers_x64");
        if let Ok(rd) = drivers.read_dir_utf8() {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string())
                .filter(|n| n.to_ascii_lowercase().ends_with(".efi"))
                .collect();
            names.sort();
            files.extend(
                names
                    .into_iter()
                    .map(|n| (format!("{dir}/drivers_x64/{n}"), Role::Driver)),
            );
        }
        // Fedora's shim (Kinoite's chainload entry) is Microsoft's and
        // Fedora's to sign, never the user's.
        files.extend(loaders(&conf).into_iter().map(|l| {
            let role = if l.to_ascii_lowercase().starts_with("efi/fedora/") {
                Role::Shim
            } else {
                Role::Kernel
            };
            (l, role)
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|(p, _)| seen.insert(p.clone()));
    let mut checks = vec![];
    for (path, role) in files {
        let abs = esp.join(&path);
        let mut c = FileCheck {
            path: path.clone(),
            role,
            signed: None,
            sbat: None,
            ok: true,
            problem: None,
        };
        if !abs.is_file() {
            c.ok = false;
            c.problem = Some("missing".into());
        } else if matches!(role, Role::Shim | Role::MokManager) {
            // Signed by Microsoft; the firmware checks it.
        } else {
            let signed = pe::is_pe(&abs) && signed_by(&abs, cert)?;
            c.signed = Some(signed);
            if !signed {
                c.ok = false;
                c.problem = Some("not signed by this certificate".into());
            }
            if role == Role::Refind {
                let sbat = pe::has_sbat(&abs).unwrap_or(false);
                c.sbat = Some(sbat);
                if !sbat {
                    c.ok = false;
                    let p = "no .sbat section (shim refuses it)";
                    c.problem = Some(match c.problem {
                        Some(q) => format!("{q}; {p}"),
                        None => p.into(),
                    });
                }
            }
        }
        checks.push(c);
    }
    Ok(Verification {
        esp: esp.to_owned(),
        cert: cert.to_owned(),
        files: checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaders_on_this_esp_only() {
        let conf = "timeout 5\nmenuentry \"A\" {\n  loader /EFI/nixos/k.efi\n  initrd /EFI/nixos/i.efi\n}\nmenuentry \"Fedora\" {\n  volume KINOITE\n  loader /ostree/vmlinuz\n}\nmenuentry \"B\" {\n  loader \"/EFI/nixos/k.efi\"\n  submenuentry \"s\" {\n    loader /EFI/nixos/s.efi\n  }\n}\n";
        assert_eq!(loaders(conf), vec!["EFI/nixos/k.efi", "EFI/nixos/s.efi"]);
    }
}
