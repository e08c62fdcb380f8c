//! The install plan: host settings + disk + mode → ordered steps. Pure.
//!
//! Every step carries the exact command it runs, what it writes (and whose
//! data that is), whether it reads Kinoite's side, and how a re-run can tell
//! it is already done. `--plan` prints this; the runner executes exactly it.

//!
//! Each phase is its own pure function over the settings and the request
//! (through [`layout::Layout`], the facts they share): [`disk`] (fresh
//! disk: partitions, ESP file system, LUKS2 container), [`pool`] (unlock,
//! btrfs, subvolumes), [`mounts`] (the new system's tree and the ESP),
//! [`system`] (password hashes, Secure Boot keys, `nixos-install`, the
//! flake copy), [`esp`] (rEFInd and the boot entries); [`step`] makes the
//! steps they share the shape of, [`text`] renders a plan for people.

mod disk;
mod esp;
mod layout;
mod mounts;
mod pool;
mod step;
mod system;
#[cfg(test)]
mod testing;
mod text;

pub use text::{command_line, render};

use crate::spec::{Settings, SubvolumeOwner};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// Fresh disk, or NixOS added beside Kinoite in its existing pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Erase the disk: new GPT, ESP, LUKS2, btrfs, subvolumes.
    Fresh,
    /// Open Kinoite's LUKS2 pool and add only NixOS's subvolumes.
    DualBoot,
}

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Host (the flake's `nixosConfigurations.<host>`).
    pub host: String,
    /// Flake reference given to `nixos-install --flake`.
    pub flake: String,
    /// The whole disk.
    pub disk: Utf8PathBuf,
    pub mode: Mode,
    /// Where the new system is mounted (`/mnt`).
    pub target: Utf8PathBuf,
    /// Scratch mount points on the installer (`/run/bifrost`).
    pub work_dir: Utf8PathBuf,
    /// ESP partition (dual boot; default: the settings' `boot.esp.device`).
    pub esp_device: Option<Utf8PathBuf>,
    /// LUKS2 partition (dual boot; default: the settings' `storage.luks.device`).
    pub luks_device: Option<Utf8PathBuf>,
    /// Kinoite's `/boot` (dual boot; default: the udev link of
    /// `dualBoot.kinoite.bootVolume`, `/dev/disk/by-uuid/…`, `by-partuuid/…` or `by-label/…`).
    pub kinoite_boot_device: Option<Utf8PathBuf>,
    /// rEFInd binary for `bifrost esp install --refind-efi`; required
    /// unless `storage_only`.
    pub refind_efi: Option<Utf8PathBuf>,
    /// Stop after the storage steps (no `nixos-install`, no ESP install).
    pub storage_only: bool,
    /// The host settings file the plan was made from: `bifrost esp install
    /// --settings` reads the menu from it, as the NixOS boot hook does later.
    pub settings_file: Utf8PathBuf,
    /// Register rEFInd in the firmware's boot menu (NVRAM) and put it first.
    pub nvram: bool,
    /// Secure Boot: copy the user's keys from this folder to the settings'
    /// `keysPath` on the target instead of creating new ones.
    pub sb_keys: Option<Utf8PathBuf>,
}

/// The ordered steps of one install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub host: String,
    pub flake: String,
    pub disk: Utf8PathBuf,
    pub mode: Mode,
    pub target: Utf8PathBuf,
    pub esp_device: Utf8PathBuf,
    pub luks_device: Utf8PathBuf,
    /// `/dev/mapper/<name>` once the pool is open.
    pub mapper: Utf8PathBuf,
    /// Kinoite's `/boot`, read for its boot entries (dual boot with the ESP step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinoite_boot_device: Option<Utf8PathBuf>,
    /// Where the flake is copied on the installed system (`/etc/nixos`);
    /// `None` for a flake that is not a local folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flake_copy: Option<Utf8PathBuf>,
    /// Who owns that copy: the host's first administrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flake_copy_owner: Option<FlakeOwner>,
    pub storage_only: bool,
    pub steps: Vec<Step>,
}

/// The owner of the flake copy on the installed system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlakeOwner {
    pub user: String,
    pub uid: u32,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Stable identifier, recorded in the state file.
    pub id: String,
    /// What the step does, for people.
    pub title: String,
    pub action: Action,
    /// Everything the step writes.
    pub writes: Vec<Write>,
    /// How the step reaches Kinoite's side of the disk, if at all.
    pub kinoite: KinoiteAccess,
    /// When present and true, the step is already done and is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// The step destroys what was there; it runs again unless an earlier run
    /// of this same plan recorded it as done.
    pub destructive: bool,
    /// Finding the step's result already present without having made it is a
    /// conflict (an existing subvolume): refused unless `--force`.
    pub conflict_if_present: bool,
    /// Command that reverts the step, for the message after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<Vec<String>>,
}

/// What a step executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Action {
    /// A program with exactly these arguments.
    Run { argv: Vec<String>, stdin: Stdin },
    /// Wait until the kernel shows these device nodes.
    WaitFor {
        paths: Vec<Utf8PathBuf>,
        timeout_secs: u32,
    },
    /// Write the crypt(5) hash of `user`'s password, held in memory, to
    /// `path` (root-only); no program runs, so nothing is on a command line.
    WritePasswordHash { user: String, path: Utf8PathBuf },
}

/// What a program gets on standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stdin {
    Null,
    /// The LUKS passphrase (`--key-file -`): never on the command line.
    Passphrase,
}

/// One thing a step writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Write {
    pub kind: WriteKind,
    pub path: Utf8PathBuf,
    /// Whose data the write lands in.
    pub data: DataOwner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteKind {
    PartitionTable,
    LuksHeader,
    Filesystem,
    Subvolume,
    Directory,
    /// A whole system or boot files (nixos-install, esp install).
    Files,
    /// A root-only file holding a password hash.
    PasswordHash,
    /// Secure Boot signing keys: private keys 0600 in a 0700 folder.
    Keys,
}

/// Whose data a write touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataOwner {
    /// The live installer's own file system (`/run`, `/mnt`).
    Installer,
    /// The whole disk (partition table, containers).
    Disk,
    /// The EFI system partition (shared boot menu).
    Esp,
    /// A NixOS-owned subvolume.
    Nixos,
    /// A subvolume shared with Kinoite.
    Shared,
    /// Kinoite's own data.
    Kinoite,
}

impl From<SubvolumeOwner> for DataOwner {
    fn from(o: SubvolumeOwner) -> Self {
        match o {
            SubvolumeOwner::Nixos => DataOwner::Nixos,
            SubvolumeOwner::Shared => DataOwner::Shared,
            SubvolumeOwner::Kinoite => DataOwner::Kinoite,
        }
    }
}

/// How a step reaches Kinoite's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KinoiteAccess {
    None,
    /// Opens or mounts the pool Kinoite also lives in (no Kinoite data written).
    Pool,
    /// Reads Kinoite-owned or shared data (read-only).
    ReadOnly,
}

/// A check that says a step's result is already there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Probe {
    /// `/dev/mapper/<name>` exists and sits on `device` (a mapping of the
    /// same name on another disk is not ours).
    MapperOpen { name: String, device: Utf8PathBuf },
    /// Something is mounted at this path.
    Mounted { path: Utf8PathBuf },
    /// Nothing is mounted at this path.
    NotMounted { path: Utf8PathBuf },
    /// A btrfs subvolume exists at this path.
    Subvolume { path: Utf8PathBuf },
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::MapperOpen { name, device } => {
                write!(f, "/dev/mapper/{name} is open on {device}")
            }
            Probe::Mounted { path } => write!(f, "{path} is a mount point"),
            Probe::NotMounted { path } => write!(f, "{path} is not mounted"),
            Probe::Subvolume { path } => write!(f, "subvolume {path} exists"),
        }
    }
}

/// Errors of this module: settings or arguments that cannot make a safe plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{field}: {message}")]
    Settings { field: String, message: String },
    #[error("--dual-boot needs `dualBoot.kinoite` in the host settings (where Kinoite's /boot is); add it, or install fresh without --dual-boot")]
    NoKinoite,
    #[error("no rEFInd binary: none at rEFInd's usual install locations ({}); pass --refind-efi FILE or set BIFROST_REFIND_EFI (the bifrost installer sets it to rEFInd's refind_x64.efi), or use --storage-only", super::refind_bin::USUAL.join(", "))]
    NoRefind,
    #[error("{arg} must be an absolute path, got {value:?}")]
    NotAbsolute { arg: &'static str, value: String },
}

fn settings_err(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError::Settings {
        field: field.into(),
        message: message.into(),
    }
}

/// The device path of partition `n` of `disk` (`/dev/sda` → `/dev/sda2`,
/// `/dev/nvme0n1` → `/dev/nvme0n1p2`, `/dev/disk/by-id/X` → `X-part2`).
pub fn partition_path(disk: &Utf8Path, n: u32) -> Utf8PathBuf {
    let s = disk.as_str();
    if s.starts_with("/dev/disk/by-") {
        format!("{s}-part{n}").into()
    } else if s.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{s}p{n}").into()
    } else {
        format!("{s}{n}").into()
    }
}

/// Build the plan. Pure: nothing is read from the machine.
pub fn plan(settings: &Settings, req: &PlanRequest) -> Result<Plan, PlanError> {
    let l = layout::Layout::new(settings, req)?;
    let mut steps = Vec::new();
    if req.mode == Mode::Fresh {
        steps.extend(disk::partition(&l));
        steps.push(disk::luks_format(&l));
    }
    steps.push(pool::open(&l));
    steps.extend(pool::mkfs(&l));
    steps.extend(pool::subvolumes(&l));
    steps.extend(mounts::steps(&l)?);
    let mut flake_copy = None;
    if !req.storage_only {
        steps.extend(system::passwords(&l));
        steps.extend(system::secure_boot_keys(&l)?);
        steps.push(system::nixos_install(&l));
        if let Some(copy) = system::flake(&l) {
            steps.push(copy.step);
            flake_copy = Some((copy.path, copy.owner));
        }
        steps.extend(esp::steps(&l));
    }
    let (flake_copy, flake_copy_owner) = flake_copy.unzip();
    Ok(Plan {
        host: req.host.clone(),
        flake: req.flake.clone(),
        disk: req.disk.clone(),
        mode: req.mode,
        target: req.target.clone(),
        kinoite_boot_device: l.kinoite_boot_device(),
        esp_device: l.esp_device,
        luks_device: l.luks_device,
        mapper: l.mapper,
        flake_copy,
        flake_copy_owner,
        storage_only: req.storage_only,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths() {
        assert_eq!(partition_path("/dev/sda".into(), 2), "/dev/sda2");
        assert_eq!(partition_path("/dev/vdb".into(), 1), "/dev/vdb1");
        assert_eq!(partition_path("/dev/nvme0n1".into(), 2), "/dev/nvme0n1p2");
        assert_eq!(partition_path("/dev/mmcblk0".into(), 1), "/dev/mmcblk0p1");
        assert_eq!(
            partition_path("/dev/disk/by-id/nvme-X".into(), 2),
            "/dev/disk/by-id/nvme-X-part2"
        );
    }
}
