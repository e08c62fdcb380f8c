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

/// Print an error (with its causes) and return the failure exit code.
#[allow(dead_code)] // used as commands land
pub fn fail(err: &dyn std::error::Error) -> ExitCode {
    let mut msg = format!("error: {err}");
    let mut src = err.source();
    while let Some(s) = src {
        msg.push_str(&format!("\n  caused by: {s}"));
        src = s.source();
    }
    eprintln!("{msg}");
    ExitCode::FAILURE
}
