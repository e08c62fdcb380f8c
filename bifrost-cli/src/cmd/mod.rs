//! One file per command group; each has its clap arguments and a `run` that
//! parses, calls one bifrost-core function and prints what it returns.

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

use std::error::Error;
use std::process::ExitCode;

/// What every command's `run` returns: the exit status it chose after
/// printing its output (a report that finds problems may exit non-zero), or
/// an error that `main` prints once, with its causes.
pub type Outcome = Result<ExitCode, Box<dyn Error>>;

/// An error that ends bifrost with its own exit status instead of 1 (a
/// failed `nix build` passes nix's on; an interrupt ends with 130). It prints
/// exactly as the error it carries.
#[derive(Debug)]
pub struct WithStatus {
    pub status: u8,
    pub error: Box<dyn Error>,
}

impl WithStatus {
    pub fn new(status: u8, error: impl Into<Box<dyn Error>>) -> WithStatus {
        WithStatus {
            status,
            error: error.into(),
        }
    }
}

impl std::fmt::Display for WithStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl Error for WithStatus {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

/// The one error printer: the error and each of its causes, then its exit
/// status (1 unless it is a [`WithStatus`]).
pub fn report(err: &(dyn Error + 'static)) -> ExitCode {
    let mut msg = format!("error: {err}");
    let mut src = err.source();
    while let Some(s) = src {
        msg.push_str(&format!("\n  caused by: {s}"));
        src = s.source();
    }
    eprintln!("{msg}");
    match err.downcast_ref::<WithStatus>() {
        Some(w) => ExitCode::from(w.status),
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Cause;
    impl std::fmt::Display for Cause {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the cause")
        }
    }
    impl Error for Cause {}

    #[derive(Debug)]
    struct Top(Cause);
    impl std::fmt::Display for Top {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("it failed")
        }
    }
    impl Error for Top {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_ends_with_1_unless_it_carries_its_status() {
        let plain: Box<dyn Error> = Box::new(Top(Cause));
        assert_eq!(report(plain.as_ref()), ExitCode::FAILURE);
        let interrupted: Box<dyn Error> = WithStatus::new(130, Top(Cause)).into();
        assert_eq!(report(interrupted.as_ref()), ExitCode::from(130));
        // It prints as the error it carries, causes included.
        assert_eq!(interrupted.to_string(), "it failed");
        assert_eq!(interrupted.source().unwrap().to_string(), "the cause");
    }
}
