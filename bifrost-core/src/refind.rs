//! The refind.conf model and renderer, and the Kinoite side's BLS entries.
