//! bifrost-core's integration tests, one module per area, compiled as one
//! test binary: the library is linked once instead of once per file (see
//! docs/development.md). Run one area with
//! `cargo test -p bifrost-core --test integration <module>::`.

mod build_cancel;
mod hardware;
mod install;
mod spec_inputs;
