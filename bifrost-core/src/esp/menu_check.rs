//! `esp status`: does the menu of a refind.conf still say what its state line
//! records? The state line sits at the top of the file, so a refind.conf cut
//! off after it (a copy that stopped short, an editor that truncated it)
//! keeps a valid record while entries are gone.

use super::{State, NIXOS_DIR};

/// What a refind.conf's menu says, read once for every check of `esp status`.
pub struct Menu {
    /// Entry titles, in menu order.
    pub titles: Vec<String>,
    /// ESP paths (no leading `/`) that entries load from the ESP itself (not
    /// from another `volume`), in file order, repeats kept.
    pub loaded: Vec<String>,
    /// An entry is still open at the end: the file was cut off.
    pub open: bool,
}

/// Read the menu of a refind.conf.
pub fn read(text: &str) -> Menu {
    let mut titles = vec![];
    let mut loaded = vec![];
    let mut depth = 0usize;
    let mut on_volume = false;
    for line in text.lines() {
        let l = line.trim();
        if let Some(t) = l.strip_prefix("menuentry \"") {
            titles.push(t.trim_end_matches(" {").trim_end_matches('"').to_string());
            on_volume = false;
        } else if l.starts_with("volume ") {
            on_volume = true;
        } else if let Some(p) = l
            .strip_prefix("loader ")
            .or_else(|| l.strip_prefix("initrd "))
        {
            if !on_volume {
                loaded.push(p.trim_matches('"').trim_start_matches('/').to_string());
            }
        }
        if l.starts_with('#') {
            continue;
        }
        if l.ends_with('{') {
            depth += 1;
        } else if l == "}" {
            depth = depth.saturating_sub(1);
        }
    }
    Menu {
        titles,
        loaded,
        open: depth != 0,
    }
}

/// Problems of `menu` (of the refind.conf at ESP path `rel`) against its `state`.
pub fn problems(rel: &str, menu: &Menu, state: &State) -> Vec<String> {
    let mut out = vec![];
    let titles = &menu.titles;
    if menu.open {
        out.push(format!(
            "{rel}: the last menu entry is not closed (the file is cut off); run `bifrost esp install` again"
        ));
    }
    for g in &state.generations {
        let prefix = format!("Generation {g}: ");
        if !titles.iter().any(|t| t.starts_with(&prefix)) {
            out.push(format!(
                "{rel}: generation {g} is recorded but has no menu entry (the file is cut off or was edited); run `bifrost esp install` again"
            ));
        }
    }
    if !state.default.is_empty() && !titles.contains(&state.default) {
        out.push(format!(
            "{rel}: the default entry {:?} is not in the menu; run `bifrost esp install` again",
            state.default
        ));
    }
    // Every kernel and initrd bifrost recorded is there for an entry.
    for f in &state.files {
        if f.path.starts_with(NIXOS_DIR) && !menu.loaded.contains(&f.path) {
            out.push(format!(
                "{rel}: /{} is recorded but no menu entry loads it (the file is cut off or was edited)",
                f.path
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::FileRecord;

    fn state() -> State {
        State {
            version: 1,
            default: "Generation 2: NixOS".into(),
            generations: vec![2, 1],
            files: [
                "EFI/nixos/k2.efi",
                "EFI/nixos/k1.efi",
                "EFI/refind/refind_x64.efi",
            ]
            .iter()
            .map(|p| FileRecord {
                path: p.to_string(),
                size: 1,
                sha256: None,
            })
            .collect(),
            kinoite: None,
        }
    }

    const FULL: &str = "# bifrost-state {}\ntimeout 5\n\nmenuentry \"Generation 2: NixOS\" {\n    loader /EFI/nixos/k2.efi\n    submenuentry \"x\" {\n        loader /EFI/nixos/k2.efi\n    }\n}\n\nmenuentry \"Generation 1: NixOS\" {\n    loader /EFI/nixos/k1.efi\n}\n\nmenuentry \"Fedora\" {\n    volume \"K\"\n    loader /vmlinuz\n}\n";

    #[test]
    fn a_complete_menu_has_no_problems() {
        assert_eq!(problems("c", &read(FULL), &state()), Vec::<String>::new());
    }

    #[test]
    fn the_menu_is_read_once_with_what_it_loads_from_the_esp() {
        let m = read(FULL);
        assert_eq!(
            m.titles,
            ["Generation 2: NixOS", "Generation 1: NixOS", "Fedora"]
        );
        // Another volume's kernel is not an ESP path; repeats are kept.
        assert_eq!(
            m.loaded,
            ["EFI/nixos/k2.efi", "EFI/nixos/k2.efi", "EFI/nixos/k1.efi"]
        );
        assert!(!m.open);
    }

    #[test]
    fn a_cut_off_menu_is_reported() {
        // Cut inside the second entry, and right after the first one.
        let inside = &FULL[..FULL.find("    loader /EFI/nixos/k1").unwrap()];
        let p = problems("c", &read(inside), &state());
        assert!(p.iter().any(|m| m.contains("not closed")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("k1.efi")), "{p:?}");
        let after = &FULL[..FULL.find("\nmenuentry \"Generation 1").unwrap()];
        let p = problems("c", &read(after), &state());
        assert!(
            p.iter().any(|m| m.contains("generation 1 is recorded")),
            "{p:?}"
        );
        let none = &FULL[..FULL.find("\nmenuentry").unwrap()];
        let p = problems("c", &read(none), &state());
        assert!(p.iter().any(|m| m.contains("default entry")), "{p:?}");
    }
}
