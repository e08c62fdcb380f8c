//! What `esp install` puts in the menu, how it signs and whether it
//! registers rEFInd in the firmware's boot menu, from the host settings and
//! the command line: the host settings file (`--settings`) says it once for
//! the NixOS boot hook and for `bifrost install`; a flag given on the
//! command line wins over the settings (for scripts and tests).

use super::nvram::DEFAULT_LABEL;
use super::sign::{ShimSource, SignOptions};
use crate::spec::{DefaultEntry, HostSettings, KinoiteMode, SecureBootRoute, Settings};
use camino::{Utf8Path, Utf8PathBuf};

/// The menu flags as given on the command line (`None`/`false`: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub removable: bool,
    pub limit: Option<u32>,
    pub timeout: Option<i32>,
    pub text_only: bool,
    pub default_entry: Option<DefaultEntry>,
    pub kinoite_mode: Option<KinoiteMode>,
    pub kinoite_title: Option<String>,
    pub kinoite_entries: Option<Utf8PathBuf>,
    pub kinoite_volume: Option<String>,
    /// Where Kinoite's `/boot` is mounted: with settings, its entries are
    /// `<this>/<dualBoot.kinoite.entriesDir>`.
    pub kinoite_boot: Option<Utf8PathBuf>,
    /// `--sign-key` and `--sign-cert` (clap requires both together).
    pub sign: Option<SignOptions>,
    pub shim: Option<ShimSource>,
    /// `--nvram`: register rEFInd in the firmware's boot menu.
    pub nvram: bool,
    /// `--no-nvram`: leave the firmware's boot menu alone (the NixOS hook
    /// passes it when `boot.loader.efi.canTouchEfiVariables` is off).
    pub no_nvram: bool,
    pub nvram_label: Option<String>,
    /// `--root`: the keys and the shim the settings name are read below it.
    pub root: Option<Utf8PathBuf>,
}

/// What `esp install` chose: the menu `esp::plan` builds, the signing,
/// and the firmware boot entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choices {
    pub removable: bool,
    pub limit: Option<u32>,
    pub kinoite: Option<(Utf8PathBuf, String)>,
    pub kinoite_chainload: Option<String>,
    pub timeout: i32,
    pub text_only: bool,
    pub default_kinoite: bool,
    pub last_booted: bool,
    pub sign: Option<SignOptions>,
    pub shim: Option<ShimSource>,
    /// Label of the firmware boot entry to register; `None`: leave NVRAM alone.
    pub nvram: Option<String>,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChoicesError {
    #[error("the Kinoite side boots in direct mode but its entries are unknown; pass --kinoite-boot DIR (where Kinoite's /boot is mounted) or --kinoite-entries DIR")]
    NoKinoiteEntries,
    #[error("the Kinoite side boots in direct mode but its rEFInd volume is unknown; pass --kinoite-volume or set dualBoot.kinoite.bootVolume")]
    NoKinoiteVolume,
    #[error("--kinoite-boot needs the host settings (--settings FILE), which say where the entries are below it; or pass --kinoite-entries")]
    KinoiteBootWithoutSettings,
}

/// Menu title of the chainload entry when nothing names one.
pub const DEFAULT_KINOITE_TITLE: &str = "Fedora Kinoite";
/// rEFInd's timeout when nothing names one.
pub const DEFAULT_TIMEOUT: i32 = 5;

/// Combine the host settings (if given) and the flags.
pub fn resolve(settings: Option<&Settings>, f: Flags) -> Result<Choices, ChoicesError> {
    let boot = settings.map(|s| &s.boot);
    let kinoite = settings.and_then(|s| s.dual_boot.kinoite.as_ref());
    let default_entry = f
        .default_entry
        .or(boot.map(|b| b.default_entry))
        .unwrap_or_default();
    // Without settings, entries and a volume alone mean direct mode.
    let mode = f
        .kinoite_mode
        .or(kinoite.map(|k| k.mode))
        .or(f.kinoite_entries.as_ref().map(|_| KinoiteMode::Direct));
    let title = f
        .kinoite_title
        .or(kinoite.map(|k| k.title.clone()))
        .unwrap_or_else(|| DEFAULT_KINOITE_TITLE.to_string());
    let (direct, chainload) = match mode {
        None => (None, None),
        Some(KinoiteMode::Chainload) => (None, Some(title)),
        Some(KinoiteMode::Direct) => {
            let entries = match (f.kinoite_entries, f.kinoite_boot) {
                (Some(e), _) => e,
                (None, Some(b)) => {
                    let k = kinoite.ok_or(ChoicesError::KinoiteBootWithoutSettings)?;
                    join_below(&b, &k.entries_dir)
                }
                (None, None) => return Err(ChoicesError::NoKinoiteEntries),
            };
            let volume = f
                .kinoite_volume
                .or(kinoite.map(|k| k.boot_volume.to_string()))
                .ok_or(ChoicesError::NoKinoiteVolume)?;
            (Some((entries, volume)), None)
        }
    };
    let removable = f.removable || boot.is_some_and(|b| b.removable);
    // Flags win; the settings sign only when no key is named here.
    let (sb_sign, sb_shim) = settings
        .map(|s| secure_boot(s, f.root.as_deref()))
        .unwrap_or_default();
    let (sign, shim) = (f.sign.or(sb_sign), f.shim.or(sb_shim));
    // A removable install is found by the firmware at its fallback path:
    // with settings rEFInd is registered otherwise, unless told not to.
    let register = f.nvram || (settings.is_some() && !removable && !f.no_nvram);
    let label = f.nvram_label.or(boot.map(|b| b.nvram_label.clone()));
    let nvram = register.then(|| label.unwrap_or_else(|| DEFAULT_LABEL.to_string()));
    Ok(Choices {
        removable,
        // In the settings 0 keeps every generation.
        limit: f
            .limit
            .or(boot.map(|b| b.max_generations).filter(|n| *n > 0)),
        kinoite: direct,
        kinoite_chainload: chainload,
        timeout: f
            .timeout
            .or(boot.map(|b| b.timeout))
            .unwrap_or(DEFAULT_TIMEOUT),
        text_only: f.text_only || boot.is_some_and(|b| b.text_only),
        default_kinoite: default_entry == DefaultEntry::Kinoite,
        last_booted: default_entry == DefaultEntry::LastBooted,
        sign,
        shim,
        nvram,
    })
}

/// The key the settings sign with (`mok` on the shim route, `db` with own
/// keys, in `keysPath`) and the shim they put in front, both below `root`;
/// nothing unless Secure Boot is on with a key folder.
pub fn secure_boot(
    settings: &HostSettings,
    root: Option<&Utf8Path>,
) -> (Option<SignOptions>, Option<ShimSource>) {
    let sb = &settings.security.secure_boot;
    let Some(keys) = sb.keys_path.as_ref().filter(|_| sb.enable) else {
        return (None, None);
    };
    let on_root = |p: &Utf8Path| match root {
        Some(r) => join_below(r, p),
        None => p.to_owned(),
    };
    let base = on_root(keys).join(signing_key_name(sb.route));
    let sign = SignOptions {
        key: format!("{base}.key").into(),
        cert: format!("{base}.crt").into(),
    };
    let shim = (sb.route == SecureBootRoute::Shim).then(|| match &sb.shim {
        Some(f) => ShimSource::File(on_root(f)),
        None => ShimSource::Fedora,
    });
    (Some(sign), shim)
}

/// The name of the key pair the boot loader is signed with, in `keysPath`:
/// shim trusts `mok` (enrolled in its MOK list), the firmware `db`.
pub fn signing_key_name(route: SecureBootRoute) -> &'static str {
    match route {
        SecureBootRoute::Shim => crate::sb::keys::DEFAULT_NAME,
        SecureBootRoute::OwnKeys => "db",
    }
}

/// `rel` (absolute in Kinoite's `/boot`, such as `/loader/entries`) below
/// the folder where that `/boot` is mounted.
pub fn join_below(mounted: &Utf8Path, rel: &Utf8Path) -> Utf8PathBuf {
    mounted.join(rel.as_str().trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kinoite: Option<&str>) -> Settings {
        valid(plain(kinoite))
    }

    fn valid(s: crate::spec::HostSettings) -> Settings {
        crate::spec::validated(s).expect("valid test settings")
    }

    fn plain(kinoite: Option<&str>) -> crate::spec::HostSettings {
        let mut v = serde_json::json!({
            "hostName": "h",
            "hardware": { "profile": "generic-x86_64-uefi" },
            "boot": { "timeout": 3, "maxGenerations": 7, "removable": true, "textOnly": true },
            "storage": { "luks": { "device": "/dev/vda2" }, "subvolumes": [{ "name": "@", "mountPoint": "/" }] },
            "users": [{ "name": "alice", "admin": true }],
        });
        if let Some(mode) = kinoite {
            v["dualBoot"] = serde_json::json!({ "kinoite": { "bootVolume": "kboot", "mode": mode, "title": "K" } });
            v["boot"]["defaultEntry"] = "kinoite".into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn without_settings_the_flags_and_old_defaults_decide() {
        let c = resolve(None, Flags::default()).unwrap();
        assert_eq!(
            c,
            Choices {
                removable: false,
                limit: None,
                kinoite: None,
                kinoite_chainload: None,
                timeout: 5,
                text_only: false,
                default_kinoite: false,
                last_booted: false,
                sign: None,
                shim: None,
                nvram: None,
            }
        );
        let c = resolve(
            None,
            Flags {
                kinoite_entries: Some("/k/loader/entries".into()),
                kinoite_volume: Some("kb".into()),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(c.kinoite, Some(("/k/loader/entries".into(), "kb".into())));
        let c = resolve(
            None,
            Flags {
                kinoite_mode: Some(KinoiteMode::Chainload),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(c.kinoite_chainload.as_deref(), Some("Fedora Kinoite"));
    }

    #[test]
    fn settings_say_the_menu_and_flags_override() {
        let s = settings(Some("chainload"));
        let c = resolve(Some(&s), Flags::default()).unwrap();
        assert_eq!(
            c,
            Choices {
                removable: true,
                limit: Some(7),
                kinoite: None,
                kinoite_chainload: Some("K".into()),
                timeout: 3,
                text_only: true,
                default_kinoite: true,
                last_booted: false,
                sign: None,
                shim: None,
                // Removable: the firmware finds it at the fallback path.
                nvram: None,
            }
        );
        let c = resolve(
            Some(&s),
            Flags {
                timeout: Some(0),
                limit: Some(2),
                default_entry: Some(DefaultEntry::Nixos),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!((c.timeout, c.limit, c.default_kinoite), (0, Some(2), false));
    }

    #[test]
    fn direct_mode_finds_the_entries_below_the_mounted_boot() {
        let s = settings(Some("direct"));
        let c = resolve(
            Some(&s),
            Flags {
                kinoite_boot: Some("/run/kboot".into()),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.kinoite,
            // As `bifrost install` passed it: the volume's canonical spelling.
            Some(("/run/kboot/loader/entries".into(), "LABEL=kboot".into()))
        );
        // A volume named by UUID goes on as written (esp::volume resolves it).
        let mut by_uuid = s.clone().into_inner();
        by_uuid.dual_boot.kinoite.as_mut().unwrap().boot_volume =
            crate::spec::BootVolume::parse("UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b").unwrap();
        let c = resolve(
            Some(&valid(by_uuid)),
            Flags {
                kinoite_boot: Some("/b".into()),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.kinoite.unwrap().1,
            "UUID=3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b"
        );
        assert_eq!(
            resolve(Some(&s), Flags::default()),
            Err(ChoicesError::NoKinoiteEntries)
        );
        assert_eq!(
            resolve(
                None,
                Flags {
                    kinoite_mode: Some(KinoiteMode::Direct),
                    kinoite_boot: Some("/b".into()),
                    ..Flags::default()
                }
            ),
            Err(ChoicesError::KinoiteBootWithoutSettings)
        );
    }

    #[test]
    fn zero_generations_in_the_settings_keeps_all() {
        let mut s = plain(None);
        s.boot.max_generations = 0;
        assert_eq!(
            resolve(Some(&valid(s)), Flags::default()).unwrap().limit,
            None
        );
    }

    #[test]
    fn settings_register_refind_unless_removable_or_told_not_to() {
        let mut s = plain(None);
        s.boot.removable = false;
        let mut labelled = s.clone();
        labelled.boot.nvram_label = "Mine".into();
        let labelled = valid(labelled);
        let s = valid(s);
        let label = |s: Option<&Settings>, f: Flags| resolve(s, f).unwrap().nvram;
        assert_eq!(
            label(Some(&s), Flags::default()).as_deref(),
            Some(DEFAULT_LABEL)
        );
        assert_eq!(
            label(Some(&labelled), Flags::default()).as_deref(),
            Some("Mine")
        );
        let no = Flags {
            no_nvram: true,
            ..Flags::default()
        };
        assert_eq!(label(Some(&s), no), None);
        let removable = Flags {
            removable: true,
            ..Flags::default()
        };
        assert_eq!(label(Some(&s), removable), None);
        // Without settings only --nvram registers; a label flag names it.
        assert_eq!(label(None, Flags::default()), None);
        let named = Flags {
            nvram: true,
            nvram_label: Some("rEFInd".into()),
            ..Flags::default()
        };
        assert_eq!(label(None, named.clone()).as_deref(), Some("rEFInd"));
        // --nvram wins over removable settings.
        assert_eq!(
            label(Some(&settings(None)), named).as_deref(),
            Some("rEFInd")
        );
    }

    #[test]
    fn secure_boot_settings_sign_below_the_root_and_flags_win() {
        // Fedora's shim (no shim named) needs the Kinoite side.
        let mut s = plain(Some("chainload"));
        let sb = &mut s.security.secure_boot;
        sb.keys_path = Some("/etc/secureboot".into());
        let resolve = |s: &crate::spec::HostSettings, f| resolve(Some(&valid(s.clone())), f);
        // Off: nothing signs.
        let c = resolve(&s, Flags::default()).unwrap();
        assert_eq!((c.sign, c.shim), (None, None));
        s.security.secure_boot.enable = true;
        let c = resolve(&s, Flags::default()).unwrap();
        assert_eq!(
            c.sign,
            Some(SignOptions {
                key: "/etc/secureboot/mok.key".into(),
                cert: "/etc/secureboot/mok.crt".into(),
            })
        );
        assert_eq!(c.shim, Some(ShimSource::Fedora));
        // From an installer: the target's keys and shim, below --root.
        s.security.secure_boot.shim = Some("/run/shim/shimx64.efi".into());
        let c = resolve(
            &s,
            Flags {
                root: Some("/mnt".into()),
                ..Flags::default()
            },
        )
        .unwrap();
        assert_eq!(c.sign.unwrap().key, "/mnt/etc/secureboot/mok.key");
        assert_eq!(
            c.shim,
            Some(ShimSource::File("/mnt/run/shim/shimx64.efi".into()))
        );
        // Own keys: the db key, no shim.
        s.security.secure_boot.route = SecureBootRoute::OwnKeys;
        let c = resolve(&s, Flags::default()).unwrap();
        assert_eq!(c.sign.unwrap().cert, "/etc/secureboot/db.crt");
        assert_eq!(c.shim, None);
        // Flags name the keys and the shim over the settings.
        let flags = Flags {
            sign: Some(SignOptions {
                key: "/k.key".into(),
                cert: "/k.crt".into(),
            }),
            shim: Some(ShimSource::File("/shim.efi".into())),
            ..Flags::default()
        };
        let c = resolve(&s, flags).unwrap();
        assert_eq!(c.sign.unwrap().key, "/k.key");
        assert_eq!(c.shim, Some(ShimSource::File("/shim.efi".into())));
        // Enabled without a key folder signs nothing (validation reports it).
        s.security.secure_boot.enable = false;
        assert_eq!(secure_boot(&s, None), (None, None));
        s.security.secure_boot.enable = true;
        s.security.secure_boot.keys_path = None;
        assert_eq!(secure_boot(&s, None), (None, None));
    }
}
