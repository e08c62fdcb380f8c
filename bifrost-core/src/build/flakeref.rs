//! `--flake` checked before nix sees it: bifrost appends
//! `#nixosConfigurations.<host>…` itself, so the reference must be a flake
//! reference alone, and an empty one would make nix look for `#…` in `.`.

/// Why `flake` cannot be passed to nix, or `None`.
pub fn problem(flake: &str) -> Option<String> {
    if flake.trim().is_empty() {
        return Some(
            "--flake is empty; pass a flake reference such as `.` or `github:owner/repo`".into(),
        );
    }
    if let Some(c) = flake.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "--flake {flake:?} contains {c:?}; a flake reference has no white space or control characters (quote a path with spaces as `path:/some%20dir`)"
        ));
    }
    if let Some((base, attr)) = flake.split_once('#') {
        return Some(format!(
            "--flake {flake:?} names an attribute (`#{attr}`); bifrost picks nixosConfigurations itself: pass --flake {} and the host with --host",
            if base.is_empty() { "." } else { base }
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn flake_references_nix_would_misread_are_refused() {
        for ok in [
            ".",
            "github:o/r",
            "path:/a/b",
            "git+https://x/y?ref=main",
            "/srv/flake",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("  ", "empty"),
            ("#x", "pass --flake ."),
            (".#surface", "--host"),
            ("a b", "white space"),
            ("a\nb", "control"),
        ] {
            let p = problem(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(p.contains(says), "{bad:?}: {p}");
        }
    }
}
