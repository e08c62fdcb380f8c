//! Tests that evaluate Nix: `nix-instantiate --eval --strict --json` run
//! (through [`crate::nixrun`]), its status checked and its JSON read in one
//! place, and the local nixpkgs `lib` (`BIFROST_NIXPKGS_LIB`) that the module
//! and flake tests evaluate against.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder holding nixpkgs' `lib/default.nix`, from `BIFROST_NIXPKGS_LIB`
/// (a nixpkgs checkout, or nix-community/nixpkgs.lib); `None` when unset.
/// A value naming neither fails the test: a misspelt path must not pass as
/// "skipped".
pub fn nixpkgs_lib() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("BIFROST_NIXPKGS_LIB")?);
    let lib = if dir.join("lib/default.nix").exists() {
        dir.join("lib")
    } else {
        dir
    };
    assert!(
        lib.join("default.nix").exists(),
        "BIFROST_NIXPKGS_LIB={}: no lib/default.nix there",
        lib.display()
    );
    Some(lib)
}

/// What a test evaluating against nixpkgs' real `lib` needs.
#[derive(Debug, Clone)]
pub struct NixLib {
    /// `nix-instantiate`.
    pub nix: PathBuf,
    /// The folder holding `lib/default.nix` ([`nixpkgs_lib`]).
    pub lib: PathBuf,
}

impl NixLib {
    /// Both, or `None` after recording why `test` is skipped (nix-instantiate
    /// is required; the nixpkgs lib is optional: CI cannot reach nixpkgs).
    pub fn find(test: &str) -> Option<NixLib> {
        let Some(nix) = crate::Tools::find().nix_instantiate else {
            crate::skip(test, "nix-instantiate (Debian package nix-bin)");
            return None;
        };
        let Some(lib) = nixpkgs_lib() else {
            crate::skip_optional(
                test,
                "BIFROST_NIXPKGS_LIB (a local nixpkgs or nix-community/nixpkgs.lib checkout); nothing was evaluated",
            );
            return None;
        };
        Some(NixLib { nix, lib })
    }
}

/// `nix --eval --strict --json` with `nix` (a nix-instantiate); add the
/// file or `-E EXPR` and arguments.
pub fn eval(nix: &Path) -> Command {
    let mut c = Command::new(nix);
    c.args(["--eval", "--strict", "--json"]);
    c
}

/// Run `cmd` (from [`eval`]): the value as JSON, or Nix's stderr when the
/// evaluation failed.
pub fn try_json(cmd: &mut Command) -> Result<serde_json::Value, String> {
    let out = crate::nixrun::output(cmd);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("nix --json prints JSON"))
}

/// Run `cmd` (from [`eval`]) and return the value as JSON; the test fails
/// with the command and Nix's message when the evaluation fails.
pub fn json(cmd: &mut Command) -> serde_json::Value {
    try_json(cmd).unwrap_or_else(|e| panic!("{cmd:?} failed:\n{e}"))
}
