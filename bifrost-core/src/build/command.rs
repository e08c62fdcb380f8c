//! The one place that runs `nix` for builds: the exact command lines, the
//! streaming of `nix build`'s internal-json log, and stopping nix on SIGINT.

use super::cancel;
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("could not run `{cmd}`: {source} (is Nix installed and on PATH?)")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the output of `{cmd}`: {source}")]
    Read {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("interrupted")]
    Interrupted,
}

/// What `nix build` left behind.
#[derive(Debug)]
pub struct BuildOutput {
    /// Exit code; `None` when nix died from a signal.
    pub code: Option<i32>,
    /// stdout: the `--json` result document on success.
    pub stdout: String,
}

/// Render a command line for humans (and `--dry-run`): words that need it
/// are single-quoted the way a POSIX shell reads them back.
pub fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(crate::shell::quote)
        .collect::<Vec<_>>()
        .join(" ")
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

/// Run a short `nix`/`nix-store` command and return its stdout; non-zero exit
/// is an error carrying its stderr. Stops it on SIGINT like a build.
pub fn run_captured(program: &str, args: &[String]) -> Result<String, CommandError> {
    let line = shell_line(program, args);
    let handle = duct::cmd(program, args)
        .stdout_capture()
        .stderr_capture()
        .stdin_null()
        .unchecked()
        .start()
        .map_err(|source| CommandError::Spawn {
            cmd: line.clone(),
            source,
        })?;
    let output = loop {
        match handle.wait_timeout(Duration::from_millis(50)) {
            Ok(Some(o)) => break o,
            Ok(None) => {
                if cancel::requested() {
                    let _ = handle.kill();
                    let _ = handle.wait();
                    return Err(CommandError::Interrupted);
                }
            }
            Err(source) => return Err(CommandError::Read { cmd: line, source }),
        }
    };
    if !output.status.success() {
        let stderr = super::progress::strip_ansi(&String::from_utf8_lossy(&output.stderr));
        return Err(CommandError::Failed {
            cmd: line,
            status: output.status.to_string(),
            stderr: stderr.trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let args: Vec<String> = [
            "build",
            "path:/tmp/x#nixosConfigurations.\"a b\".config",
            "--option",
            "extra-substituters",
            "",
            "it's",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shell_line("nix", &args),
            r#"nix build 'path:/tmp/x#nixosConfigurations."a b".config' --option extra-substituters '' 'it'\''s'"#
        );
    }
}
