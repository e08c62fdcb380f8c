//! The end-to-end tests, one module per area, compiled as one test binary.
//!
//! One binary links bifrost-core once instead of once per file, which is most
//! of the build time of this crate (see docs/development.md). Run one area
//! with `cargo test -p bifrost-e2e --test e2e <module>::`.

mod boot_module;
mod build;
mod build_apps;
mod build_sh;
mod check_cli;
mod cli_messages;
mod deploy_doctor;
mod deploy_flash;
mod deploy_vm;
mod devshell_tools;
mod docs_runbook;
mod esp_bad_input;
mod esp_boot;
mod esp_crash;
mod esp_dualboot;
mod esp_fallback;
mod esp_hostile;
mod esp_kinoite;
mod esp_last_booted;
mod esp_nvram;
mod esp_sync;
mod flake_eval;
mod hardware_cli;
mod harness_boot;
mod install_cli;
mod install_qemu;
mod module_eval;
mod nix_format;
mod nix_parse;
mod nixexpr_real_nix;
mod nixos_model;
mod sb_boot;
mod sb_cli;
mod sb_standin;
mod storage_layout;
mod tpm_qemu;
