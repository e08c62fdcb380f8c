//! Sync of NixOS generations and the Kinoite side onto the ESP.
