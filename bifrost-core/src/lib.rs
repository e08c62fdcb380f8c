//! bifrost-core: all of bifrost's logic.
//!
//! Modules by capability, each owning its types and its error enum. Rendering
//! is pure; effects (processes, files) sit behind the seams in `fsutil` and in
//! one place per capability.

pub mod build;
pub mod confine;
pub mod deploy;
pub mod esp;
pub mod fsutil;
pub mod hardware;
pub mod install;
pub mod lock;
pub mod mounts;
pub mod nixdata;
pub mod nixexpr;
pub mod process;
pub mod refind;
pub mod sb;
pub mod shell;
pub mod spec;
pub mod tpm;
