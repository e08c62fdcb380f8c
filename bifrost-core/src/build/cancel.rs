//! SIGINT/SIGTERM during a build: remember it, so nix is stopped and nothing
//! half-written stays in the output folder.
//!
//! The handler only sets a flag (async-signal-safe); the build loop and the
//! copy loop check it and unwind normally, which runs the temp files' drops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Route SIGINT and SIGTERM to the flag. Idempotent.
pub fn install() -> std::io::Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, flag.clone())?;
    let _ = FLAG.set(flag);
    Ok(())
}

/// Whether an interrupt arrived.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
