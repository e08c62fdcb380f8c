//! "The system booted last" as rEFInd's default.
//!
//! rEFInd stores the title of the entry it starts in its `PreviousBoot`
//! variable (`Boot <title> from <volume>`, see the strings in
//! `refind_x64.efi`), and `default_selection "+,X"` selects the entry whose
//! title contains that text, else `X` (refind.conf-sample: "A '+' symbol at
//! the start of the string, which refers to the most recently booted
//! loader"). A title that changes from one install to the next therefore
//! loses the memory: with `Generation N: …` titles, booting the newest NixOS
//! and then rebuilding would make the *old* generation the default. So in
//! this mode the newest generation's entry carries a title that never
//! changes, and older generations keep theirs (choosing one of them on
//! purpose keeps booting it, as rEFInd intends).

use crate::refind::MenuEntry;

/// Title of the newest NixOS generation's entry when the default is the entry booted last.
pub const NEWEST_TITLE: &str = "NixOS (newest generation)";

/// Give the first entry (the newest generation) the stable title.
pub fn stable_newest_title(entries: &mut [MenuEntry]) {
    if let Some(first) = entries.first_mut() {
        first.title = NEWEST_TITLE.to_owned();
    }
}

/// `default_selection` value: the entry booted last, else `fallback`.
/// rEFInd splits the value at commas, so a comma in the fallback title is
/// cut there (the part before it still matches as a substring).
pub fn selection(fallback: &str) -> String {
    let head = fallback.split(',').next().unwrap_or(fallback);
    format!("+,{head}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_puts_the_last_booted_first() {
        assert_eq!(selection(NEWEST_TITLE), "+,NixOS (newest generation)");
        assert_eq!(selection("Fedora, Kinoite"), "+,Fedora");
    }
}
