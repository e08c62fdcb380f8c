//! `bifrost`: parse arguments, call bifrost-core, print. No logic lives here.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Build, boot and deploy a declarative NixOS on real hardware.
///
/// bifrost generates the hardware configuration and the rEFInd boot entries
/// of a host (first of all a Surface Pro 8 dual-booting NixOS and Fedora
/// Kinoite from one LUKS2-encrypted btrfs pool), drives the image builds
/// (raw EFI disk, ISO, QCOW2, VM) and deploys them.
#[derive(Parser)]
#[command(
    name = "bifrost",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the JSON Schema of the host settings document.
    Schema(cmd::schema::Args),
    /// Validate host settings files.
    Check(cmd::check::Args),
    /// Install NixOS generations and the Kinoite side onto the EFI system partition.
    #[command(subcommand)]
    Esp(cmd::esp::Command),
    /// Generate Nix from host settings.
    #[command(subcommand)]
    Gen(cmd::gen::Command),
    /// Describe the running machine as host settings.
    Detect(cmd::detect::Args),
    /// Build an image (raw, iso, qcow, vm) into the output layout.
    ///
    /// Runs `nix build` on FLAKE#nixosConfigurations.HOST.config.system.build.images.<variant>
    /// (raw-efi, iso-installer, qemu-efi) or .vm, shows its progress, and copies the artifact
    /// (passthru.filePath) to OUT/2_raw/nixos.{raw,iso,qcow2} through a temp file, keeping
    /// holes sparse; `vm` gets a GC-rooted link OUT/2_raw/nixos-vm. OUT/2_raw/SHA256SUMS and
    /// manifest.json record every artifact. If the build fails or is interrupted, nothing in
    /// OUT changes.
    ///
    /// The linux-surface kernel compiles for hours: use --builders for a remote builder, or
    /// --substituter/--trusted-key for a binary cache that has it.
    Build(cmd::build::Args),
    /// Write an image to a USB stick (or a file), verified.
    Flash(cmd::flash::Args),
    /// Run an image or a host in a virtual machine.
    Vm(cmd::vm::Args),
    /// Check that this machine has what bifrost's jobs need.
    Doctor(cmd::doctor::Args),
    /// Install NixOS to a disk: fresh, or beside Kinoite.
    Install(cmd::install::Args),
    /// Secure Boot: make keys, verify signatures on the ESP, enroll keys.
    #[command(subcommand)]
    Sb(cmd::sb::Command),
    /// Unlock the LUKS2 pool with the TPM (and a PIN), keeping the passphrase.
    #[command(subcommand)]
    Tpm(cmd::tpm::Command),
    /// Print shell completions or the man page.
    #[command(subcommand)]
    Completions(cmd::completions::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome: cmd::Outcome = match cli.command {
        Command::Schema(a) => cmd::schema::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Esp(c) => cmd::esp::run(c),
        Command::Gen(c) => cmd::gen::run(c),
        Command::Detect(a) => cmd::detect::run(a),
        Command::Build(a) => cmd::build::run(a),
        Command::Flash(a) => cmd::flash::run(a),
        Command::Vm(a) => cmd::vm::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::Install(a) => cmd::install::run(a),
        Command::Sb(c) => cmd::sb::run(c),
        Command::Tpm(c) => cmd::tpm::run(c),
        Command::Completions(c) => cmd::completions::run(c),
    };
    outcome.unwrap_or_else(|e| cmd::report(e.as_ref()))
}
