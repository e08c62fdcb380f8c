//! What each choice of an enumerated setting means, appended to the problems
//! `bifrost check` reports about it, so the fix can be chosen from the message.

/// The choices of `boot.defaultEntry`, explained.
pub const DEFAULT_ENTRY: &str = "the choices: \"nixos\" boots the newest NixOS generation; \
\"kinoite\" boots Kinoite's entry (needs dualBoot.kinoite); \"last-booted\" boots whichever \
system was booted last (rEFInd's `+`), the newest NixOS generation when there is none — so a \
Kinoite update that reboots to apply comes back to Kinoite";

/// The explanation for the setting at `path`, if it is an enumerated one with one.
pub fn choices(path: &str) -> Option<&'static str> {
    match path {
        "boot.defaultEntry" => Some(DEFAULT_ENTRY),
        _ => None,
    }
}

/// `message` with the explanation of the choices at `path` appended.
pub fn explained(path: &str, message: String) -> String {
    match choices(path) {
        Some(c) => format!("{message}; {c}"),
        None => message,
    }
}
