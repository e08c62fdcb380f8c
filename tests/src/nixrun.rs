//! Running Nix (or bifrost, which runs Nix) from tests that share the
//! machine's store with other Nix processes: a run that lost the race for
//! the store's SQLite database (`error: SQLite database '…/db.sqlite' is
//! busy`, which Nix does not retry everywhere) is run again. Nothing else is
//! retried: any other failure is the test's to see.

use std::process::{Command, Output};
use std::time::Duration;

/// Attempts before giving up on a busy store.
const ATTEMPTS: u32 = 8;

/// Whether `stderr` is Nix's store-lock error and nothing else went wrong.
pub fn store_busy(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).lines().any(|l| {
        l.contains("SQLite database '")
            && (l.ends_with("' is busy") || l.ends_with("' is busy (SQLITE_PROTOCOL)"))
    })
}

/// Run `run` until it succeeds or fails for another reason than a busy store.
pub fn retry_busy(mut run: impl FnMut() -> Output) -> Output {
    let mut attempt = 1;
    loop {
        let out = run();
        if out.status.success() || !store_busy(&out.stderr) || attempt == ATTEMPTS {
            return out;
        }
        eprintln!("Nix store busy (attempt {attempt} of {ATTEMPTS}); running again");
        std::thread::sleep(Duration::from_millis(250 << attempt.min(4)));
        attempt += 1;
    }
}

/// `cmd.output()`, run again while the store is busy.
pub fn output(cmd: &mut Command) -> Output {
    retry_busy(|| cmd.output().expect("run command"))
}

/// A captured, unchecked duct expression, run again while the store is busy.
pub fn duct_output(e: &duct::Expression) -> Output {
    retry_busy(|| {
        e.stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .expect("run command")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn a_busy_store_is_retried_until_it_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("n");
        // Fails twice with Nix's exact message, then succeeds.
        let script = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; \
             if [ $n -lt 2 ]; then echo \"error: SQLite database '/nix/var/nix/db/db.sqlite' is busy\" >&2; exit 1; fi; echo done",
            c = count.display()
        );
        let out = output(&mut sh(&script));
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
        assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "3");
    }

    #[test]
    fn other_failures_are_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("n");
        let script = format!(
            "echo x >> {}; echo 'error: builder failed; database is busy elsewhere' >&2; exit 1",
            count.display()
        );
        let out = output(&mut sh(&script));
        assert!(!out.status.success());
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
    }
}
