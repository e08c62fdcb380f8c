//! The one place that runs `nix build` for builds: its internal-json log is
//! streamed line by line through [`crate::process::Cmd::stream_stderr`], and
//! nix is stopped (SIGINT, then SIGKILL) when bifrost is asked to stop.

pub use crate::process::{shell_line, ProcessError as CommandError};

/// What `nix build` left behind.
#[derive(Debug)]
pub struct BuildOutput {
    /// Exit code; `None` when nix died from a signal.
    pub code: Option<i32>,
    /// stdout: the `--json` result document on success.
    pub stdout: String,
}

/// Run `nix ARGS` (a `nix build … --log-format internal-json`), handing each
/// stderr line to `on_line` as it arrives. On SIGINT/SIGTERM to bifrost, nix
/// gets SIGINT (so it stops its builders and cleans up), then SIGKILL if it
/// has not exited within 10 s.
pub fn nix_build_streaming(
    args: &[String],
    on_line: impl FnMut(&str),
) -> Result<BuildOutput, CommandError> {
    let out = crate::process::Cmd::new("nix", args)
        .cancellable()
        .stream_stderr(on_line)?;
    Ok(BuildOutput {
        code: out.code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}
