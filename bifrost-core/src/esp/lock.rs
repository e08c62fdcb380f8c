//! The ESP's lock: every command that writes the ESP (`esp install`, and
//! any later one that refreshes or signs files there) holds it for its whole
//! plan-and-apply, so two runs never plan against each other's files.
//!
//! ```no_run
//! # use bifrost_core::esp;
//! # let esp_dir = camino::Utf8Path::new("/boot");
//! let _lock = esp::lock::lock(esp_dir, esp::lock::DEFAULT_WAIT, &mut |l| eprintln!("{l}"))?;
//! // plan, then apply; the lock is released when `_lock` is dropped.
//! # Ok::<(), bifrost_core::lock::LockError>(())
//! ```

use camino::Utf8Path;
use std::time::Duration;

pub use crate::lock::{DirLock, LockError, DEFAULT_WAIT};

/// Take the exclusive lock on the ESP mounted at `esp`, waiting up to
/// `wait` for another run (telling `notice` once that it waits).
pub fn lock(
    esp: &Utf8Path,
    wait: Duration,
    notice: &mut dyn FnMut(&str),
) -> Result<DirLock, LockError> {
    crate::lock::acquire(esp, "ESP", wait, notice)
}
