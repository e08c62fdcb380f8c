//! One writer per ESP: `esp install` and `esp refresh-kinoite` (run from
//! Kinoite by a systemd unit, possibly while NixOS's install runs from another
//! boot of a shared ESP mount) take an exclusive `flock` on the ESP's root
//! folder for the whole plan-and-apply. Locking the folder itself leaves no
//! lock file behind on the ESP. The flock itself is [`crate::lock`]'s, which
//! `bifrost build` also takes on its output folder.

use super::EspError;
use camino::Utf8Path;
use std::time::Duration;

/// Held for as long as the value lives; the kernel releases it when the
/// process dies, so a killed run never leaves the ESP locked.
pub type EspLock = crate::lock::DirLock;

/// How long a second run waits before it gives up.
pub const WAIT: Duration = Duration::from_secs(120);

/// Take the lock on `esp`, waiting up to [`WAIT`]; `waiting` is called once
/// when another run holds it.
pub fn lock(esp: &Utf8Path, waiting: &mut dyn FnMut(&str)) -> Result<EspLock, EspError> {
    crate::lock::acquire(esp, "ESP", WAIT, waiting).map_err(|e| match e {
        crate::lock::LockError::Busy { .. } => EspError::Locked(esp.to_string()),
        crate::lock::LockError::Io(e) => EspError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_waits_for_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let esp = Utf8Path::from_path(tmp.path()).unwrap().to_owned();
        let first = lock(&esp, &mut |_| {}).unwrap();
        let e2 = esp.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let mut waited = false;
            let l = lock(&e2, &mut |_| waited = true).unwrap();
            tx.send(()).unwrap();
            drop(l);
            waited
        });
        // The second run cannot get it while the first holds it.
        assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
        drop(first);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(t.join().unwrap(), "the waiting run was not told");
    }
}
