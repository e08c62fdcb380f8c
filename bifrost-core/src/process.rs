//! The one process runner: every program bifrost starts goes through a
//! [`Cmd`] (on `duct`). It builds the argv, shows it as a shell line for
//! dry runs and logs (`BIFROST_LOG_COMMANDS=1` prints each one to stderr
//! before it runs; a secret only ever travels on stdin, so it is never in
//! the line), writes a secret to the child's stdin through a pipe straight
//! from the wiped buffer, captures or inherits the output, and keeps the exit
//! status in the error. Tests fake processes at the seams above this one
//! (`install::run::System`, `deploy::doctor::Machine`, `tpm`'s machine),
//! which take argv and return results. A long-running program (`nix build`)
//! can hand its stderr over line by line as it arrives ([`Cmd::stream_stderr`]);
//! a cancellable one is stopped the same way whichever mode it runs in.

use crate::install::secret::Secret;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a cancelled child has between SIGINT and SIGKILL: time for nix
/// to stop its builders and clean up.
const STOP_GRACE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// Errors of this module: the one wording for a program that could not be
/// started, read or that failed. Callers that know the fix (which package to
/// install) wrap it with that hint.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("could not run `{cmd}`: {source}{}", spawn_hint(.cmd))]
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

/// The hint `bifrost build` has always printed when `nix` would not start.
fn spawn_hint(cmd: &str) -> &'static str {
    if cmd == "nix" || cmd.starts_with("nix ") {
        " (is Nix installed and on PATH?)"
    } else {
        ""
    }
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
    /// bifrost is asked to stop (`build::cancel`): it gets SIGINT, so it can
    /// stop its own children and clean up, then SIGKILL if it has not exited
    /// within 10 s.
    pub fn cancellable(mut self) -> Self {
        self.cancellable = true;
        self
    }

    /// The command line, as a shell would read it: what a dry run shows.
    pub fn line(&self) -> String {
        shell_line(&self.program, &self.args)
    }

    fn expr(&self, stderr_pipe: Option<os_pipe::PipeWriter>) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args).unchecked();
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        for k in &self.env_remove {
            e = e.env_remove(k);
        }
        if let Some(w) = stderr_pipe {
            e = e.stdout_capture().stderr_file(w);
        } else if self.capture {
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
        self.run(None)
    }

    /// Run to the end, whatever its exit status, handing each line of
    /// stderr (without its line end) to `on_line` as it arrives; stdout is
    /// captured, stderr is not kept.
    pub fn stream_stderr(self, mut on_line: impl FnMut(&str)) -> Result<Output, ProcessError> {
        self.run(Some(&mut on_line))
    }

    fn run(self, on_line: Option<&mut dyn FnMut(&str)>) -> Result<Output, ProcessError> {
        let line = self.line();
        if std::env::var_os("BIFROST_LOG_COMMANDS").is_some_and(|v| v == "1") {
            eprintln!("+ {line}");
        }
        let spawn = |source| ProcessError::Spawn {
            cmd: line.clone(),
            source,
        };
        let (expr, stderr) = match on_line {
            Some(on_line) => {
                let (reader, writer) = os_pipe::pipe().map_err(spawn)?;
                (
                    self.expr(Some(writer)),
                    Some(LineStream { reader, on_line }),
                )
            }
            None => (self.expr(None), None),
        };
        let out = match self.stdin {
            Input::Secret(secret) => {
                let (read_end, write_end) = os_pipe::pipe().map_err(spawn)?;
                let expr = expr.stdin_file(read_end);
                std::thread::scope(|scope| {
                    scope.spawn(move || {
                        use std::io::Write;
                        let mut w = write_end;
                        // A program that exits without reading closes the
                        // pipe; its exit status tells what happened.
                        let _ = w.write_all(secret.expose());
                    });
                    self.wait(expr, &line, stderr)
                })
            }
            _ => self.wait(expr, &line, stderr),
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
        stderr: Option<LineStream<'_>>,
    ) -> Result<std::process::Output, ProcessError> {
        let read_err = |source| ProcessError::Read {
            cmd: line.to_owned(),
            source,
        };
        let handle = expr.start().map_err(|source| ProcessError::Spawn {
            cmd: line.to_owned(),
            source,
        })?;
        // The expression holds the stderr pipe's write end; drop it so EOF
        // arrives when the child exits.
        drop(expr);
        let stopper = self.cancellable.then(|| Stopper::watch(handle.pids()));
        let streamed = stderr.map_or(Ok(()), |s| read_lines(s.reader, s.on_line));
        let out = handle.into_output();
        drop(stopper);
        let out = out.map_err(read_err)?;
        streamed.map_err(read_err)?;
        if self.cancellable && crate::build::cancel::requested() {
            return Err(ProcessError::Interrupted);
        }
        Ok(out)
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

/// A stderr streamed line by line: the pipe's read end and where lines go.
struct LineStream<'f> {
    reader: os_pipe::PipeReader,
    on_line: &'f mut dyn FnMut(&str),
}

/// Hand each line of `reader` to `on_line`, then drain the rest so the
/// child never blocks on a full pipe.
fn read_lines(reader: impl Read, on_line: &mut dyn FnMut(&str)) -> std::io::Result<()> {
    let mut buf = BufReader::with_capacity(1 << 16, reader);
    let mut raw = Vec::new();
    let result = loop {
        raw.clear();
        match buf.read_until(b'\n', &mut raw) {
            Ok(0) => break Ok(()),
            Ok(_) => on_line(String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r'])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    let _ = buf.read_to_end(&mut raw);
    result
}

/// Watches for a stop request (`build::cancel`) while a child runs: SIGINT
/// first, SIGKILL after [`STOP_GRACE`]. Dropping it ends the watch.
struct Stopper {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stopper {
    fn watch(pids: Vec<u32>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let finished = || flag.load(Ordering::Relaxed);
            while !finished() {
                if crate::build::cancel::requested() {
                    signal(&pids, rustix::process::Signal::INT);
                    let deadline = std::time::Instant::now() + STOP_GRACE;
                    while std::time::Instant::now() < deadline {
                        if finished() {
                            return;
                        }
                        std::thread::sleep(POLL);
                    }
                    signal(&pids, rustix::process::Signal::KILL);
                    return;
                }
                std::thread::sleep(POLL);
            }
        });
        Stopper {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send `sig` to the child's processes (duct only offers SIGKILL). The watch
/// ends right after the wait that reaps them, as the stop loop always did.
fn signal(pids: &[u32], sig: rustix::process::Signal) {
    for pid in pids {
        if let Some(pid) = i32::try_from(*pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, sig);
        }
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
    fn stream_stderr_hands_over_each_line_and_keeps_stdout_and_status() {
        let mut lines = Vec::new();
        let out = Cmd::new(
            "sh",
            [
                "-c",
                "echo one >&2; echo result; printf 'two\\r\\nthree' >&2; exit 4",
            ],
        )
        .cancellable()
        .stream_stderr(|l| lines.push(l.to_owned()))
        .unwrap();
        assert_eq!(lines, ["one", "two", "three"]);
        assert_eq!(out.stdout, b"result\n");
        assert!(out.stderr.is_empty());
        assert_eq!(out.code, Some(4));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let e = Cmd::new("bifrost-no-such-program", ["x"])
            .read()
            .unwrap_err();
        assert!(matches!(e, ProcessError::Spawn { .. }), "{e:?}");
    }
}
