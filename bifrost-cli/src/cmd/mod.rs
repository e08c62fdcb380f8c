//! One file per command group; each has its clap arguments and a `run`.

pub mod build;
pub mod check;
pub mod completions;
pub mod detect;
pub mod doctor;
pub mod esp;
pub mod flash;
pub mod gen;
pub mod install;
pub mod sb;
pub mod schema;
pub mod tpm;
pub mod vm;

use std::process::ExitCode;

/// What every command's `run` returns: the exit status it chose after
/// printing its output (a report that finds problems may exit non-zero), or
/// an error that `main` prints once, with its causes.
pub type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

/// The one error printer: the error and each of its causes, then failure.
pub fn report(err: &dyn std::error::Error) -> ExitCode {
    let mut msg = format!("error: {err}");
    let mut src = err.source();
    while let Some(s) = src {
        msg.push_str(&format!("\n  caused by: {s}"));
        src = s.source();
    }
    eprintln!("{msg}");
    ExitCode::FAILURE
}

/// Until a command returns `Outcome` itself (errors flowing with `?`).
pub fn fail(err: &dyn std::error::Error) -> ExitCode {
    report(err)
}
