//! The one process runner: every program bifrost starts goes through a
//! [`Cmd`] (on `duct`). It builds the argv, shows it as a shell line for
//! dry runs and logs (`BIFROST_LOG_COMMANDS=1` prints each one to stderr
//! before it runs; a secret only ever travels on stdin, so it is never in
//! the line), writes a secret to the child's stdin through a pipe straight
//! from the wiped buffer, captures or inherits the output, and keeps the exit
//! status in the error. Tests fake processes at the seams above this one
//! (`install::run::System`, `deploy::doctor::Machine`, `tpm`'s machine),
//! which take argv and return results.

use crate::install::secret::Secret;
use std::time::Duration;

/// Errors of this module. The wording is the one `bifrost build` has
/// always printed for its `nix` commands.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
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
        /// Exit code; `None` when a signal killed it.
        code: Option<i32>,
        stderr: String,
    },
    #[error("interrupted")]
    Interrupted,
}

impl ProcessError {
    /// The underlying I/O error, for callers whose errors name the program
    /// themselves.
    pub fn into_io(self) -> std::io::Error {
        match self {
            ProcessError::Spawn { source, .. } | ProcessError::Read { source, .. } => source,
            e => std::io::Error::other(e.to_string()),
        }
    }
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

/// A pipe whose ends are closed on exec (duct hands the read end to the child).
fn pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

/// Where the child's stdin comes from.
enum Input<'a> {
    Null,
    Inherit,
    Secret(&'a Secret),
}

/// What a finished process left: its exit code (`None`: killed by a signal)
/// and, when captured, its output.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// One program to run.
pub struct Cmd<'a> {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    stdin: Input<'a>,
    capture: bool,
    stderr_null: bool,
    cancellable: bool,
}

impl<'a> Cmd<'a> {
    /// `program` with `args`; stdin empty, stdout and stderr captured.
    pub fn new<S: AsRef<str>>(program: &str, args: impl IntoIterator<Item = S>) -> Self {
        Cmd {
            program: program.to_owned(),
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: Input::Null,
            capture: true,
            stderr_null: false,
            cancellable: false,
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Leave `key` out of the child's environment, whatever bifrost inherited.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env_remove.push(key.to_owned());
        self
    }

    /// Feed `secret` on stdin (through a pipe, never a copy on disk or argv).
    pub fn secret_stdin(mut self, secret: &'a Secret) -> Self {
        self.stdin = Input::Secret(secret);
        self
    }

    /// Let the child talk to this terminal: stdin, stdout and stderr are ours.
    pub fn interactive(mut self) -> Self {
        self.stdin = Input::Inherit;
        self.capture = false;
        self
    }

    /// Leave stdout and stderr on this terminal (stdin stays as set).
    pub fn inherit_output(mut self) -> Self {
        self.capture = false;
        self
    }

    /// Leave stdin on this terminal (output still captured).
    pub fn inherit_stdin(mut self) -> Self {
        self.stdin = Input::Inherit;
        self
    }

    /// Throw stderr away (when output is captured).
    pub fn stderr_null(mut self) -> Self {
        self.stderr_null = true;
        self
    }

    /// Stop the child (and return [`ProcessError::Interrupted`]) when
    /// bifrost is asked to stop (`build::cancel`).
    pub fn cancellable(mut self) -> Self {
        self.cancellable = true;
        self
    }

    /// The command line, as a shell would read it: what a dry run shows.
    pub fn line(&self) -> String {
        shell_line(&self.program, &self.args)
    }

    fn expr(&self) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args).unchecked();
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        for k in &self.env_remove {
            e = e.env_remove(k);
        }
        if self.capture {
            e = e.stdout_capture();
            e = if self.stderr_null {
                e.stderr_null()
            } else {
                e.stderr_capture()
            };
        }
        match self.stdin {
            Input::Null => e.stdin_null(),
            Input::Inherit | Input::Secret(_) => e,
        }
    }

    /// Run to the end, whatever its exit status.
    pub fn output(self) -> Result<Output, ProcessError> {
        let line = self.line();
        if std::env::var_os("BIFROST_LOG_COMMANDS").is_some_and(|v| v == "1") {
            eprintln!("+ {line}");
        }
        let spawn = |source| ProcessError::Spawn {
            cmd: line.clone(),
            source,
        };
        let expr = self.expr();
        let out = match self.stdin {
            Input::Secret(secret) => {
                let (read_end, write_end) = pipe().map_err(spawn)?;
                let expr = expr.stdin_file(read_end);
                std::thread::scope(|scope| {
                    scope.spawn(move || {
                        use std::io::Write;
                        let mut w = write_end;
                        // A program that exits without reading closes the
                        // pipe; its exit status tells what happened.
                        let _ = w.write_all(secret.expose());
                    });
                    self.wait(expr, &line)
                })
            }
            _ => self.wait(expr, &line),
        }?;
        Ok(Output {
            code: out.status.code(),
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    fn wait(
        &self,
        expr: duct::Expression,
        line: &str,
    ) -> Result<std::process::Output, ProcessError> {
        let handle = expr.start().map_err(|source| ProcessError::Spawn {
            cmd: line.to_owned(),
            source,
        })?;
        drop(expr);
        if !self.cancellable {
            return handle.into_output().map_err(|source| ProcessError::Read {
                cmd: line.to_owned(),
                source,
            });
        }
        loop {
            match handle.wait_timeout(Duration::from_millis(50)) {
                Ok(Some(o)) => return Ok(o.clone()),
                Ok(None) => {
                    if crate::build::cancel::requested() {
                        let _ = handle.kill();
                        let _ = handle.wait();
                        return Err(ProcessError::Interrupted);
                    }
                }
                Err(source) => {
                    return Err(ProcessError::Read {
                        cmd: line.to_owned(),
                        source,
                    })
                }
            }
        }
    }

    /// Run and return stdout trimmed of its last newline, whatever the exit
    /// status, as `duct`'s `read` does; only a failure to start (or to read)
    /// is an error, as the plain I/O error.
    pub fn stdout_only(self) -> std::io::Result<String> {
        let line = self.line();
        let out = self.output().map_err(ProcessError::into_io)?;
        if !out.success() {
            return Err(std::io::Error::other(format!(
                "command {line:?} exited with code {}",
                out.code.map_or("<signal>".to_owned(), |c| c.to_string())
            )));
        }
        let mut s = String::from_utf8(out.stdout).map_err(std::io::Error::other)?;
        while s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// Run and return stdout; a non-zero exit is [`ProcessError::Failed`]
    /// carrying the exit status and stderr (colour codes stripped).
    pub fn read(self) -> Result<String, ProcessError> {
        let line = self.line();
        let out = self.output()?;
        if !out.success() {
            let stderr = crate::build::progress::strip_ansi(&String::from_utf8_lossy(&out.stderr));
            return Err(ProcessError::Failed {
                cmd: line,
                status: out.status.to_string(),
                code: out.code,
                stderr: stderr.trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
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

    #[test]
    fn read_returns_stdout_and_keeps_the_exit_status() {
        assert_eq!(Cmd::new("sh", ["-c", "echo hi"]).read().unwrap(), "hi\n");
        match Cmd::new("sh", ["-c", "echo oops >&2; exit 3"]).read() {
            Err(ProcessError::Failed {
                code: Some(3),
                stderr,
                ..
            }) => assert_eq!(stderr, "oops"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_secret_goes_on_stdin_only() {
        let secret = Secret::from_bytes(b"hunter2".to_vec());
        let cmd = Cmd::new("cat", Vec::<String>::new()).secret_stdin(&secret);
        assert_eq!(cmd.line(), "cat");
        assert_eq!(cmd.read().unwrap(), "hunter2");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let e = Cmd::new("bifrost-no-such-program", ["x"])
            .read()
            .unwrap_err();
        assert!(matches!(e, ProcessError::Spawn { .. }), "{e:?}");
    }
}
