//! `bifrost sb verify`: is every EFI binary rEFInd may load signed by the
//! user's certificate, and does the rEFInd shim starts carry SBAT data?

use super::{pe, run, SbError};
use crate::esp::REFIND_DIRS;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::collections::BTreeSet;

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

/// One rEFInd folder on the ESP that holds a refind.conf, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// ESP-relative folder (`EFI/refind`, `EFI/BOOT`).
    pub dir: String,
    /// ESP-relative path of the binary the firmware starts there.
    pub bin: String,
    /// The refind.conf text.
    pub conf: String,
    /// Which of the boot chain's possible files are regular files there
    /// (ESP-relative: `bin`, and `DIR/grubx64.efi`, `shimx64.efi`, `mmx64.efi`).
    pub present: BTreeSet<String>,
    /// Names in `DIR/drivers_x64`, as listed.
    pub drivers: Vec<String>,
}

/// What is at one path to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// No regular file there.
    Missing,
    /// A file: whether it is a PE binary `sbverify` accepts as signed by the
    /// certificate, and whether it has a `.sbat` section — each read only
    /// when [`wants`] says the role needs it.
    File {
        signed: Option<bool>,
        sbat: Option<bool>,
    },
}

/// The ESP is a folder and the certificate is one: checked before anything
/// on the ESP is read.
fn preconditions(esp: &Utf8Path, cert: &Utf8Path) -> Result<(), SbError> {
    if !esp.is_dir() {
        return Err(SbError::Refused(format!(
            "{esp} is not a folder; pass the mount point of the EFI system partition with --esp"
        )));
    }
    super::fingerprint(cert)?;
    Ok(())
}

/// Read each rEFInd folder with a readable refind.conf.
pub fn read(esp: &Utf8Path) -> Vec<Install> {
    REFIND_DIRS
        .iter()
        .filter_map(|(dir, bin)| {
            let conf = std::fs::read_to_string(esp.join(dir).join("refind.conf")).ok()?;
            let present = [
                bin.to_string(),
                format!("{dir}/grubx64.efi"),
                format!("{dir}/shimx64.efi"),
                format!("{dir}/mmx64.efi"),
            ]
            .into_iter()
            .filter(|p| esp.join(p).is_file())
            .collect();
            let drivers = match esp.join(dir).join("drivers_x64").read_dir_utf8() {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string())
                    .collect(),
                Err(_) => vec![],
            };
            Some(Install {
                dir: dir.to_string(),
                bin: bin.to_string(),
                conf,
                present,
                drivers,
            })
        })
        .collect()
}

/// The binaries the firmware starts from this folder. Under shim, rEFInd
/// is the second stage shim loads (`grubx64.efi`), beside shim and
/// MokManager; without it, the folder's binary is rEFInd itself.
pub fn chain(i: &Install) -> Vec<(String, Role)> {
    let second = format!("{}/grubx64.efi", i.dir);
    if !i.present.contains(&second) {
        return vec![(i.bin.clone(), Role::Refind)];
    }
    let others = [
        (i.bin.clone(), Role::Shim),
        (format!("{}/shimx64.efi", i.dir), Role::Shim),
        (format!("{}/mmx64.efi", i.dir), Role::MokManager),
    ];
    std::iter::once((second, Role::Refind))
        .chain(others.into_iter().filter(|(p, _)| i.present.contains(p)))
        .collect()
}

/// The folder's drivers (`.efi` in any case), by name.
pub fn drivers(i: &Install) -> Vec<(String, Role)> {
    let mut names: Vec<&String> = i
        .drivers
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".efi"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (format!("{}/drivers_x64/{n}", i.dir), Role::Driver))
        .collect()
}

/// What the menu loads from this ESP. Fedora's shim (Kinoite's chainload
/// entry) is Microsoft's and Fedora's to sign, never the user's.
pub fn menu_loads(conf: &str) -> Vec<(String, Role)> {
    loaders(conf)
        .into_iter()
        .map(|l| {
            let role = if l.to_ascii_lowercase().starts_with("efi/fedora/") {
                Role::Shim
            } else {
                Role::Kernel
            };
            (l, role)
        })
        .collect()
}

/// Every file to check, each once (the first role found for it), folder
/// by folder: its boot chain, drivers, then what its menu loads.
pub fn candidates(installs: &[Install]) -> Vec<(String, Role)> {
    let mut seen = BTreeSet::new();
    installs
        .iter()
        .flat_map(|i| [chain(i), drivers(i), menu_loads(&i.conf)].concat())
        .filter(|(p, _)| seen.insert(p.clone()))
        .collect()
}

/// What to read of a file in `role`: (its signature, its `.sbat` section).
/// Shim and MokManager are Microsoft's to sign; the firmware checks them.
pub fn wants(role: Role) -> (bool, bool) {
    match role {
        Role::Shim | Role::MokManager => (false, false),
        Role::Refind => (true, true),
        Role::Driver | Role::Kernel => (true, false),
    }
}

/// Read what [`wants`] asks of the file at ESP-relative `path`.
fn inspect(esp: &Utf8Path, cert: &Utf8Path, path: &str, role: Role) -> Result<Seen, SbError> {
    let abs = esp.join(path);
    if !abs.is_file() {
        return Ok(Seen::Missing);
    }
    let (signature, sbat) = wants(role);
    let signed = match signature {
        true => Some(pe::is_pe(&abs) && signed_by(&abs, cert)?),
        false => None,
    };
    let sbat = sbat.then(|| pe::has_sbat(&abs).unwrap_or(false));
    Ok(Seen::File { signed, sbat })
}

/// Judge one file from what was seen there.
pub fn check(path: &str, role: Role, seen: Seen) -> FileCheck {
    let (signed, sbat) = match seen {
        Seen::Missing => (None, None),
        Seen::File { signed, sbat } => (signed, sbat),
    };
    let problems: Vec<&str> = [
        (seen == Seen::Missing, "missing"),
        (signed == Some(false), "not signed by this certificate"),
        (sbat == Some(false), "no .sbat section (shim refuses it)"),
    ]
    .into_iter()
    .filter_map(|(bad, why)| bad.then_some(why))
    .collect();
    FileCheck {
        path: path.to_string(),
        role,
        signed,
        sbat,
        ok: problems.is_empty(),
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// Check every EFI binary of each rEFInd install on the ESP.
pub fn verify(esp: &Utf8Path, cert: &Utf8Path) -> Result<Verification, SbError> {
    preconditions(esp, cert)?;
    let files = candidates(&read(esp))
        .into_iter()
        .map(|(path, role)| Ok(check(&path, role, inspect(esp, cert, &path, role)?)))
        .collect::<Result<_, SbError>>()?;
    Ok(Verification {
        esp: esp.to_owned(),
        cert: cert.to_owned(),
        files,
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

    fn install(dir: &str, bin: &str, present: &[&str], drivers: &[&str], conf: &str) -> Install {
        Install {
            dir: dir.into(),
            bin: bin.into(),
            conf: conf.into(),
            present: present.iter().map(|p| p.to_string()).collect(),
            drivers: drivers.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn paths(v: &[(String, Role)]) -> Vec<(&str, Role)> {
        v.iter().map(|(p, r)| (p.as_str(), *r)).collect()
    }

    #[test]
    fn chain_without_shim_is_refind_itself() {
        let i = install("EFI/refind", "EFI/refind/refind_x64.efi", &[], &[], "");
        assert_eq!(
            paths(&chain(&i)),
            vec![("EFI/refind/refind_x64.efi", Role::Refind)]
        );
    }

    #[test]
    fn chain_under_shim_is_grubx64_then_the_shims_and_mokmanager_present() {
        let i = install(
            "EFI/BOOT",
            "EFI/BOOT/BOOTX64.EFI",
            &[
                "EFI/BOOT/grubx64.efi",
                "EFI/BOOT/BOOTX64.EFI",
                "EFI/BOOT/mmx64.efi",
            ],
            &[],
            "",
        );
        assert_eq!(
            paths(&chain(&i)),
            vec![
                ("EFI/BOOT/grubx64.efi", Role::Refind),
                ("EFI/BOOT/BOOTX64.EFI", Role::Shim),
                ("EFI/BOOT/mmx64.efi", Role::MokManager),
            ]
        );
    }

    #[test]
    fn drivers_are_efi_files_by_name() {
        let i = install(
            "EFI/refind",
            "EFI/refind/refind_x64.efi",
            &[],
            &["ext4_x64.efi", "README", "BTRFS_X64.EFI"],
            "",
        );
        assert_eq!(
            paths(&drivers(&i)),
            vec![
                ("EFI/refind/drivers_x64/BTRFS_X64.EFI", Role::Driver),
                ("EFI/refind/drivers_x64/ext4_x64.efi", Role::Driver),
            ]
        );
    }

    #[test]
    fn fedoras_shim_in_the_menu_is_not_the_users_to_sign() {
        let conf = "menuentry \"K\" {\n loader /EFI/fedora/shimx64.efi\n}\nmenuentry \"N\" {\n loader /EFI/nixos/k.efi\n}\n";
        assert_eq!(
            paths(&menu_loads(conf)),
            vec![
                ("EFI/fedora/shimx64.efi", Role::Shim),
                ("EFI/nixos/k.efi", Role::Kernel),
            ]
        );
    }

    #[test]
    fn candidates_go_folder_by_folder_and_name_each_file_once() {
        let conf = "menuentry \"N\" {\n loader /EFI/nixos/k.efi\n}\n";
        let a = install(
            "EFI/refind",
            "EFI/refind/refind_x64.efi",
            &[],
            &["ext4_x64.efi"],
            conf,
        );
        let b = install("EFI/BOOT", "EFI/BOOT/BOOTX64.EFI", &[], &[], conf);
        assert_eq!(
            paths(&candidates(&[a, b])),
            vec![
                ("EFI/refind/refind_x64.efi", Role::Refind),
                ("EFI/refind/drivers_x64/ext4_x64.efi", Role::Driver),
                ("EFI/nixos/k.efi", Role::Kernel),
                ("EFI/BOOT/BOOTX64.EFI", Role::Refind),
            ]
        );
    }

    #[test]
    fn only_refind_needs_sbat_and_microsofts_binaries_nothing() {
        assert_eq!(wants(Role::Refind), (true, true));
        assert_eq!(wants(Role::Kernel), (true, false));
        assert_eq!(wants(Role::Driver), (true, false));
        assert_eq!(wants(Role::Shim), (false, false));
        assert_eq!(wants(Role::MokManager), (false, false));
    }

    #[test]
    fn check_names_every_problem() {
        let file = |signed, sbat| Seen::File { signed, sbat };
        let cases = [
            (Role::Kernel, Seen::Missing, Some("missing")),
            (Role::Shim, file(None, None), None),
            (
                Role::Refind,
                file(Some(false), Some(false)),
                Some("not signed by this certificate; no .sbat section (shim refuses it)"),
            ),
            (
                Role::Refind,
                file(Some(true), Some(false)),
                Some("no .sbat section (shim refuses it)"),
            ),
            (
                Role::Kernel,
                file(Some(false), None),
                Some("not signed by this certificate"),
            ),
            (Role::Refind, file(Some(true), Some(true)), None),
        ];
        for (role, seen, problem) in cases {
            let c = check("EFI/x.efi", role, seen);
            assert_eq!(c.problem.as_deref(), problem, "{role:?} {seen:?}");
            assert_eq!(c.ok, problem.is_none());
            let (signed, sbat) = match seen {
                Seen::File { signed, sbat } => (signed, sbat),
                Seen::Missing => (None, None),
            };
            assert_eq!((c.role, c.signed, c.sbat), (role, signed, sbat));
        }
    }
}
