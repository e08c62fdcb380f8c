//! Which rEFInd binary `bifrost install` copies to the ESP when none is
//! given: the first of rEFInd's usual install locations that exists.
//! Planning needs none; the run checks the file before it starts.

use camino::{Utf8Path, Utf8PathBuf};

/// Where rEFInd's `refind_x64.efi` is usually installed, in search order:
/// a NixOS system with `pkgs.refind` in its packages (nixpkgs
/// pkgs/by-name/re/refind: `$out/share/refind/refind_x64.efi`), Debian and
/// Ubuntu's `refind` package, and Fedora's and Arch's (which install it
/// under /usr/share/refind).
pub const USUAL: &[&str] = &[
    "/run/current-system/sw/share/refind/refind_x64.efi",
    "/usr/share/refind/refind/refind_x64.efi",
    "/usr/share/refind/refind_x64.efi",
];

/// The binary chosen and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `--refind-efi` or `BIFROST_REFIND_EFI`.
    Given(Utf8PathBuf),
    /// Found at one of [`USUAL`].
    Found(Utf8PathBuf),
    /// None of them exists.
    Missing,
}

impl Choice {
    pub fn path(&self) -> Option<&Utf8Path> {
        match self {
            Choice::Given(p) | Choice::Found(p) => Some(p),
            Choice::Missing => None,
        }
    }

    /// One line for the plan's reader.
    pub fn describe(&self) -> String {
        match self {
            Choice::Given(p) => format!("rEFInd binary: {p} (given)"),
            Choice::Found(p) => format!(
                "rEFInd binary: {p} (found at one of rEFInd's usual install locations; --refind-efi picks another)"
            ),
            Choice::Missing => format!(
                "rEFInd binary: none found at rEFInd's usual install locations ({}); the install itself needs --refind-efi FILE or BIFROST_REFIND_EFI",
                USUAL.join(", ")
            ),
        }
    }
}

/// `given`, else the first of [`USUAL`] for which `exists` holds.
pub fn choose(given: Option<&Utf8Path>, exists: impl Fn(&Utf8Path) -> bool) -> Choice {
    if let Some(p) = given {
        return Choice::Given(p.to_owned());
    }
    USUAL
        .iter()
        .map(Utf8Path::new)
        .find(|p| exists(p))
        .map_or(Choice::Missing, |p| Choice::Found(p.to_owned()))
}

/// [`choose`] on this machine.
pub fn find(given: Option<&Utf8Path>) -> Choice {
    choose(given, |p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_wins_then_the_first_usual_location() {
        let given = Utf8Path::new("/x/refind_x64.efi");
        assert_eq!(choose(Some(given), |_| true), Choice::Given(given.into()));
        let c = choose(None, |p| p.as_str().starts_with("/usr/share/refind/"));
        assert_eq!(c, Choice::Found(USUAL[1].into()));
        assert!(c.describe().contains(USUAL[1]));
        let m = choose(None, |_| false);
        assert_eq!(m.path(), None);
        for u in USUAL {
            assert!(m.describe().contains(u), "{}", m.describe());
        }
    }
}
