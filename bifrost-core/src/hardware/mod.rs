//! Device profiles, detection of the running machine, and rendering of the
//! hardware module (`bifrost gen hardware`).
//!
//! - [`profile`]: the catalogue of supported devices and what each needs
//!   (nixos-hardware module, initrd kernel modules).
//! - [`layout`]: the fixed storage facts (ESP mount options, swap file) and
//!   the Nix function, written once in `modules/lib/hardware-config.nix`, that
//!   turns settings into NixOS configuration.
//! - [`render`]: host settings in, a `hardware-configuration.nix`-style NixOS
//!   module out (that function applied to the settings; snapshot-tested).
//! - [`detect`]: DMI, `lsblk`, mounts and btrfs subvolumes in, host settings out.
//!   The machine is read once, through one seam ([`detect::Machine`]), into
//!   a [`detect::Snapshot`] (tests use recorded fixtures or hand-built
//!   snapshots); pure steps decide from it.

pub mod detect;
pub mod layout;
pub mod profile;
pub mod render;

pub use detect::{detect, Detection, Machine};
pub use profile::{Profile, PROFILES};
pub use render::{render_host_file, render_module};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    #[error("cannot write Nix: {0}")]
    Nix(#[from] crate::nixexpr::NixExprError),
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{}: not valid `lsblk --json -O` output: {source}; {}", .from.origin(), .from.fix())]
    Lsblk {
        from: detect::LsblkSource,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}; install util-linux or record its output under --root")]
    LsblkFailed(crate::process::ProcessError),
    #[error("{root}: no lsblk.json there; record one with `lsblk --json -O > {root}/lsblk.json`, or leave out --root to read this machine")]
    NoLsblk { root: String },
    #[error(transparent)]
    Settings(#[from] crate::spec::SpecError),
    #[error("the settings proposed for this machine are invalid, a bug in bifrost's detection; please report it with `lsblk --json -O` and /proc/self/mountinfo of the machine:\n{}", crate::spec::format_problems(.problems))]
    Invalid { problems: Vec<crate::spec::Problem> },
}
