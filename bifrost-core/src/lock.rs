//! An exclusive lock on a folder bifrost writes (an ESP, a build's `OUT`),
//! so two runs never plan against each other's half-done work.
//!
//! The lock is `flock(2)` on the folder itself (opened read-only): nothing
//! is written to take it, it works on vfat, ext4, btrfs and tmpfs, every
//! path to the same folder (a bind mount, a link to it) meets the same
//! lock, and the kernel releases it when the process dies, so a crash never
//! leaves a stale lock behind. A second run waits, saying so once, up to a
//! bound, then fails with a message that says what to do.

use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use std::fs::File;
use std::time::{Duration, Instant};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{dir}: another bifrost run is still writing to this {what} after {secs}s of waiting; let it finish (or stop it), then run again")]
    Busy {
        dir: Utf8PathBuf,
        what: &'static str,
        secs: u64,
    },
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
}

/// How long a run waits for another one before it gives up.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// How often a waiting run tries again.
const POLL: Duration = Duration::from_millis(50);

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    dir: Utf8PathBuf,
    _file: File,
}

impl DirLock {
    /// The folder this lock holds.
    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }
}

fn try_flock(f: &File) -> std::io::Result<bool> {
    use rustix::{fs::FlockOperation, io::Errno};
    match rustix::fs::flock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK | Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Take the exclusive lock on `dir` (`what` names it in messages: "ESP",
/// "output folder"). When another run holds it, `notice` hears one line
/// saying this run waits, and the lock is retried until `wait` has passed.
pub fn acquire(
    dir: &Utf8Path,
    what: &'static str,
    wait: Duration,
    notice: &mut dyn FnMut(&str),
) -> Result<DirLock, LockError> {
    let f = File::open(dir).map_err(io_err(dir, "open to lock"))?;
    let start = Instant::now();
    let mut told = false;
    loop {
        if try_flock(&f).map_err(io_err(dir, "lock"))? {
            return Ok(DirLock {
                dir: dir.to_owned(),
                _file: f,
            });
        }
        if start.elapsed() >= wait {
            return Err(LockError::Busy {
                dir: dir.to_owned(),
                what,
                secs: wait.as_secs(),
            });
        }
        if !told {
            notice(&format!(
                "{dir}: another bifrost run is writing to this {what}; waiting up to {}s for it to finish",
                wait.as_secs()
            ));
            told = true;
        }
        std::thread::sleep(POLL.min(wait.saturating_sub(start.elapsed())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gets_it() {
        let d = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(d.path()).unwrap();
        let first = acquire(dir, "ESP", Duration::ZERO, &mut |_| {}).unwrap();
        // A second open file description conflicts even in one process.
        let mut heard = vec![];
        let e = acquire(dir, "ESP", Duration::ZERO, &mut |l| {
            heard.push(l.to_owned())
        });
        assert!(matches!(e, Err(LockError::Busy { .. })), "{e:?}");
        assert!(e.unwrap_err().to_string().contains("another bifrost run"));
        let (tx, rx) = std::sync::mpsc::channel();
        let dir2 = dir.to_owned();
        let t = std::thread::spawn(move || {
            acquire(&dir2, "ESP", Duration::from_secs(600), &mut |l| {
                tx.send(l.to_owned()).unwrap()
            })
            .map(|_| ())
        });
        // Released only once the waiter said it waits.
        let line = rx.recv().unwrap();
        assert!(line.contains("waiting up to 600s"), "{line}");
        drop(first);
        t.join().unwrap().unwrap();
    }
}
