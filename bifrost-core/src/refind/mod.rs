//! The refind.conf model and its renderer, and the Kinoite side's Boot Loader
//! Specification entries ([`bls`]).
//!
//! Rendering is pure: a [`Config`] in, the text of refind.conf out. Values
//! rEFInd cannot represent (a newline anywhere, a double quote in a title or
//! path) are an error rather than mangled output; double quotes inside
//! `options` are doubled, which is how rEFInd reads a literal quote.

pub mod bls;
pub mod chainload;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RefindError {
    #[error("{field} of menu entry {entry:?} contains a newline, which refind.conf cannot represent; remove it")]
    Newline { entry: String, field: &'static str },
    #[error("{field} of menu entry {entry:?} contains a double quote, which rEFInd cannot represent there; remove it")]
    Quote { entry: String, field: &'static str },
    #[error("menu entry title is empty; give the entry a title")]
    EmptyTitle,
    #[error("{field} of menu entry {entry:?} contains the control character {ch:?}, which would reach refind.conf raw; remove it")]
    Control {
        entry: String,
        field: &'static str,
        ch: char,
    },
    #[error("extra configuration contains a `menuentry`; bifrost writes the menu entries itself (use `scanfor manual` entries through bifrost instead)")]
    ExtraMenuEntry,
    #[error("extra configuration contains an `include`; rEFInd would read menu entries from another file — put the lines themselves in the extra configuration")]
    ExtraInclude,
    #[error("BLS entry {path}: {msg}")]
    Bls { path: String, msg: String },
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
}

/// The whole refind.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Seconds before the default entry boots (0: at once; -1: at once unless a key is held).
    pub timeout: i32,
    /// Title (or title substring) of the entry selected by default.
    pub default_selection: Option<String>,
    /// Text-only menu: no graphics, and no icons.
    pub text_only: bool,
    /// Folders rEFInd should also scan (rarely needed with `scanfor manual`).
    pub also_scan_dirs: Vec<String>,
    /// Lines appended verbatim to the global section (trusted, from the NixOS module).
    pub extra: String,
    /// A comment line (without `# `) recording what bifrost installed; one line.
    pub state_comment: Option<String>,
    /// The menu, in order.
    pub entries: Vec<MenuEntry>,
}

/// One `menuentry` stanza.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuEntry {
    pub title: String,
    /// File-system label, partition label or partition GUID; `None`: rEFInd's own volume.
    pub volume: Option<String>,
    pub loader: String,
    pub initrd: Vec<String>,
    pub options: Option<String>,
    pub icon: Option<String>,
    pub submenus: Vec<SubmenuEntry>,
}

/// One `submenuentry` inside a stanza; unset fields inherit the stanza's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmenuEntry {
    pub title: String,
    pub loader: Option<String>,
    pub initrd: Option<String>,
    pub options: Option<String>,
}

/// Refuse newlines and every other control character (tab, escape, NUL,
/// C1 codes…): rEFInd has no escape for them, and a terminal or rEFInd's
/// own tokenizer would read them as something else.
fn no_control(entry: &str, field: &'static str, v: &str) -> Result<(), RefindError> {
    if v.contains(['\n', '\r']) {
        return Err(RefindError::Newline {
            entry: entry.into(),
            field,
        });
    }
    match v.chars().find(|c| c.is_control()) {
        Some(ch) => Err(RefindError::Control {
            entry: entry.into(),
            field,
            ch,
        }),
        None => Ok(()),
    }
}

/// The first keyword of a refind.conf line as rEFInd reads it: keywords are
/// compared case-insensitively (`MyStriCmp` in rEFInd's config.c) and a
/// token may be quoted or end at `=`.
fn keyword(line: &str) -> String {
    line.trim_start()
        .split(|c: char| c.is_whitespace() || c == '=' || c == ',')
        .next()
        .unwrap_or("")
        .trim_matches('"')
        .to_ascii_lowercase()
}

fn plain<'a>(entry: &str, field: &'static str, v: &'a str) -> Result<&'a str, RefindError> {
    no_control(entry, field, v)?;
    if v.contains('"') {
        return Err(RefindError::Quote {
            entry: entry.into(),
            field,
        });
    }
    Ok(v)
}

/// `options` value: quotes doubled, newlines refused.
fn options(entry: &str, v: &str) -> Result<String, RefindError> {
    no_control(entry, "options", v)?;
    Ok(v.replace('"', "\"\""))
}

fn title(t: &str) -> Result<&str, RefindError> {
    if t.trim().is_empty() {
        return Err(RefindError::EmptyTitle);
    }
    plain(t, "title", t)
}

/// Render refind.conf.
pub fn render(c: &Config) -> Result<String, RefindError> {
    let mut out = String::new();
    out.push_str("# Written by bifrost (`bifrost esp install`); changes here are overwritten.\n");
    if let Some(s) = &c.state_comment {
        if s.contains(['\n', '\r']) {
            return Err(RefindError::Newline {
                entry: "(state comment)".into(),
                field: "comment",
            });
        }
        let _ = writeln!(out, "# {s}");
    }
    let _ = writeln!(out, "timeout {}", c.timeout);
    out.push_str("scanfor manual\n");
    if c.text_only {
        out.push_str("textonly\n");
    }
    if let Some(d) = &c.default_selection {
        let _ = writeln!(
            out,
            "default_selection \"{}\"",
            plain(d, "default_selection", d)?
        );
    }
    if !c.also_scan_dirs.is_empty() {
        let dirs = c
            .also_scan_dirs
            .iter()
            .map(|d| plain("(global)", "also_scan_dirs", d))
            .collect::<Result<Vec<_>, _>>()?;
        let _ = writeln!(out, "also_scan_dirs {}", dirs.join(","));
    }
    if !c.extra.trim().is_empty() {
        for l in c.extra.lines() {
            match keyword(l).as_str() {
                "menuentry" | "submenuentry" => return Err(RefindError::ExtraMenuEntry),
                "include" => return Err(RefindError::ExtraInclude),
                _ => {}
            }
        }
        out.push_str(c.extra.trim_end());
        out.push('\n');
    }
    for e in &c.entries {
        let t = title(&e.title)?;
        let _ = writeln!(out, "\nmenuentry \"{t}\" {{");
        if let Some(v) = &e.volume {
            let _ = writeln!(out, "    volume \"{}\"", plain(t, "volume", v)?);
        }
        let _ = writeln!(out, "    loader {}", quoted_path(t, "loader", &e.loader)?);
        for i in &e.initrd {
            let _ = writeln!(out, "    initrd {}", quoted_path(t, "initrd", i)?);
        }
        if let Some(o) = &e.options {
            let _ = writeln!(out, "    options \"{}\"", options(t, o)?);
        }
        if let (Some(i), false) = (&e.icon, c.text_only) {
            let _ = writeln!(out, "    icon {}", quoted_path(t, "icon", i)?);
        }
        for s in &e.submenus {
            let st = title(&s.title)?;
            let _ = writeln!(out, "    submenuentry \"{st}\" {{");
            if let Some(l) = &s.loader {
                let _ = writeln!(out, "        loader {}", quoted_path(st, "loader", l)?);
            }
            if let Some(i) = &s.initrd {
                let _ = writeln!(out, "        initrd {}", quoted_path(st, "initrd", i)?);
            }
            if let Some(o) = &s.options {
                let _ = writeln!(out, "        options \"{}\"", options(st, o)?);
            }
            out.push_str("    }\n");
        }
        out.push_str("}\n");
    }
    Ok(out)
}

/// Paths go bare unless they hold a space, then quoted; quotes and newlines are refused.
fn quoted_path(entry: &str, field: &'static str, p: &str) -> Result<String, RefindError> {
    let p = plain(entry, field, p)?;
    if p.is_empty() {
        return Err(RefindError::Bls {
            path: entry.into(),
            msg: format!("{field} is empty"),
        });
    }
    Ok(if p.contains(char::is_whitespace) {
        format!("\"{p}\"")
    } else {
        p.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            timeout: 5,
            default_selection: Some("NixOS generation 2 (26.05)".into()),
            text_only: false,
            also_scan_dirs: vec![],
            extra: "resolution max\n".into(),
            state_comment: Some("bifrost-state {\"version\":1}".into()),
            entries: vec![
                MenuEntry {
                    title: "NixOS generation 2 (26.05)".into(),
                    volume: None,
                    loader: "/EFI/nixos/abc-linux-bzImage.efi".into(),
                    initrd: vec!["/EFI/nixos/def-initrd-initrd.efi".into()],
                    options: Some("init=/nix/store/x/init quiet dyndbg=\"file x +p\"".into()),
                    icon: Some("/EFI/refind/icons/os_nixos.png".into()),
                    submenus: vec![SubmenuEntry {
                        title: "Specialisation gaming".into(),
                        loader: Some("/EFI/nixos/k.efi".into()),
                        initrd: Some("/EFI/nixos/i.efi".into()),
                        options: Some("init=/nix/store/y/init".into()),
                    }],
                },
                MenuEntry {
                    title: "Fedora Linux 40 (Kinoite)".into(),
                    volume: Some("kinoite-boot".into()),
                    loader: "/ostree/fedora-1/vmlinuz-6.8".into(),
                    initrd: vec!["/ostree/fedora-1/initramfs-6.8.img".into()],
                    options: Some("root=UUID=1 rw ostree=/ostree/boot.1/fedora/0".into()),
                    icon: None,
                    submenus: vec![],
                },
            ],
        }
    }

    #[test]
    fn renders_full_config() {
        insta::assert_snapshot!(render(&sample()).unwrap());
    }

    #[test]
    fn text_only_drops_icons() {
        let mut c = sample();
        c.text_only = true;
        let out = render(&c).unwrap();
        assert!(out.contains("\ntextonly\n"));
        assert!(!out.contains("icon "));
        insta::assert_snapshot!(out);
    }

    #[test]
    fn quotes_in_options_are_doubled() {
        let out = render(&sample()).unwrap();
        assert!(out.contains(r#"options "init=/nix/store/x/init quiet dyndbg=""file x +p""""#));
    }

    #[test]
    fn newline_anywhere_is_an_error() {
        let mut c = sample();
        c.entries[0].options = Some("a\nb".into());
        assert!(matches!(
            render(&c),
            Err(RefindError::Newline {
                field: "options",
                ..
            })
        ));
        let mut c = sample();
        c.entries[1].title = "Fedora\nKinoite".into();
        assert!(matches!(
            render(&c),
            Err(RefindError::Newline { field: "title", .. })
        ));
        let mut c = sample();
        c.entries[0].submenus[0].loader = Some("/a\r".into());
        assert!(render(&c).is_err());
    }

    #[test]
    fn quote_in_title_or_path_is_an_error() {
        let mut c = sample();
        c.entries[0].title = "NixOS \"best\"".into();
        let err = render(&c).unwrap_err().to_string();
        assert!(err.contains("double quote"), "{err}");
        let mut c = sample();
        c.entries[1].volume = Some("a\"b".into());
        assert!(render(&c).is_err());
    }

    #[test]
    fn extra_config_cannot_add_entries() {
        let mut c = sample();
        c.extra = "menuentry \"x\" {\n}\n".into();
        assert!(matches!(render(&c), Err(RefindError::ExtraMenuEntry)));
        // rEFInd reads keywords case-insensitively, quoted or not.
        for extra in [
            "MenuEntry \"x\" {\n}\n",
            "  MENUENTRY x {\n}\n",
            "\"menuentry\" x {\n}\n",
        ] {
            c.extra = extra.into();
            assert!(
                matches!(render(&c), Err(RefindError::ExtraMenuEntry)),
                "{extra:?}"
            );
        }
        for extra in [
            "include other.conf\n",
            "timeout 3\nInclude x.conf\n",
            "INCLUDE=x.conf",
        ] {
            c.extra = extra.into();
            assert!(
                matches!(render(&c), Err(RefindError::ExtraInclude)),
                "{extra:?}"
            );
        }
        // Words that merely start like a keyword are fine.
        c.extra = "menuentries_are_fine_here 1\nincluded 2\n".into();
        assert!(render(&c).is_ok());
    }

    #[test]
    fn control_characters_are_refused_everywhere() {
        for ch in ['\t', '\u{1b}', '\0', '\u{7f}', '\u{85}', '\u{8}'] {
            let mut c = sample();
            c.entries[0].options = Some(format!("quiet{ch}x"));
            assert!(
                matches!(
                    render(&c),
                    Err(RefindError::Control {
                        field: "options",
                        ..
                    })
                ),
                "{ch:?} in options"
            );
            let mut c = sample();
            c.entries[1].title = format!("Fedora{ch}");
            assert!(
                matches!(render(&c), Err(RefindError::Control { field: "title", .. })),
                "{ch:?} in a title"
            );
            let mut c = sample();
            c.entries[0].submenus[0].options = Some(format!("a{ch}"));
            assert!(render(&c).is_err(), "{ch:?} in a submenu");
            let mut c = sample();
            c.default_selection = Some(format!("x{ch}"));
            assert!(render(&c).is_err(), "{ch:?} in default_selection");
        }
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        let mut c = sample();
        c.entries[1].loader = "/EFI/my os/vmlinuz".into();
        assert!(render(&c)
            .unwrap()
            .contains("loader \"/EFI/my os/vmlinuz\""));
    }
}
