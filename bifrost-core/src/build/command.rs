//! The one place that runs `nix` for builds: the exact command lines, the
//! streaming of `nix build`'s internal-json log, and stopping nix on SIGINT.

use super::cancel;
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

pub use crate::process::{shell_line, ProcessError as CommandError};

/// What `nix build` left behind.
#[derive(Debug)]
pub struct BuildOutput {
    /// Exit code; `None` when nix died from a signal.
    pub code: Option<i32>,
    /// stdout: the `--json` result document on success.
    pub stdout: String,
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a pid we spawned and have not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Run `nix ARGS` (a `nix build … --log-format internal-json`), handing each
/// stderr line to `on_line` as it arrives. On SIGINT/SIGTERM to bifrost, nix
/// gets SIGINT (so it stops its builders and cleans up), then SIGKILL if it
/// has not exited within 10 s.
pub fn nix_build_streaming(
    args: &[String],
    mut on_line: impl FnMut(&str),
) -> Result<BuildOutput, CommandError> {
    let line = shell_line("nix", args);
    let (reader, writer) = os_pipe::pipe().map_err(|source| CommandError::Spawn {
        cmd: line.clone(),
        source,
    })?;
    let expr = duct::cmd("nix", args)
        .stderr_file(writer)
        .stdout_capture()
        .stdin_null()
        .unchecked();
    let handle = expr.start().map_err(|source| CommandError::Spawn {
        cmd: line.clone(),
        source,
    })?;
    // The expression holds the pipe's write end; drop it so EOF arrives when nix exits.
    drop(expr);
    let pids = handle.pids();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if cancel::requested() {
                    pids.iter().for_each(|p| signal(*p, libc::SIGINT));
                    for _ in 0..200 {
                        if done.load(std::sync::atomic::Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    pids.iter().for_each(|p| signal(*p, libc::SIGKILL));
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut buf = BufReader::with_capacity(1 << 16, reader);
    let mut raw = Vec::new();
    let read_result = loop {
        raw.clear();
        match buf.read_until(b'\n', &mut raw) {
            Ok(0) => break Ok(()),
            Ok(_) => {
                let text = String::from_utf8_lossy(&raw);
                on_line(text.trim_end_matches(['\n', '\r']));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    // Drain whatever is left so nix never blocks on a full pipe.
    let _ = buf.read_to_end(&mut raw);
    let output = handle.wait().map_err(|source| CommandError::Read {
        cmd: line.clone(),
        source,
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    let output = output?;
    read_result.map_err(|source| CommandError::Read { cmd: line, source })?;
    if cancel::requested() {
        return Err(CommandError::Interrupted);
    }
    Ok(BuildOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}
