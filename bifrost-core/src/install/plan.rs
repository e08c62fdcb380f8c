//! The install plan: host settings + disk + mode → ordered steps. Pure.
//!
//! Every step carries the exact command it runs, what it writes (and whose
//! data that is), whether it reads Kinoite's side, and how a re-run can tell
//! it is already done. `--plan` prints this; the runner executes exactly it.

use crate::spec::{Settings, Subvolume, SubvolumeOwner};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::fmt::Write as _;

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
    pub storage_only: bool,
    pub steps: Vec<Step>,
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

/// The GPT partition name to give a fresh partition so that the settings'
/// `/dev/disk/by-partlabel/NAME` path finds it after the install.
fn partlabel(device: &Utf8Path, fallback: &str) -> String {
    device
        .as_str()
        .strip_prefix("/dev/disk/by-partlabel/")
        .filter(|l| !l.is_empty() && !l.contains('/'))
        .unwrap_or(fallback)
        .to_string()
}

/// `target` + absolute `mount_point`.
fn under(target: &Utf8Path, mount_point: &Utf8Path) -> Utf8PathBuf {
    let rel = mount_point.as_str().trim_start_matches('/');
    if rel.is_empty() {
        target.to_path_buf()
    } else {
        target.join(rel)
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn run(argv: Vec<String>) -> Action {
    Action::Run {
        argv,
        stdin: Stdin::Null,
    }
}

struct Builder {
    steps: Vec<Step>,
}

impl Builder {
    fn push(
        &mut self,
        id: impl Into<String>,
        title: impl Into<String>,
        action: Action,
    ) -> &mut Step {
        self.steps.push(Step {
            id: id.into(),
            title: title.into(),
            action,
            writes: Vec::new(),
            kinoite: KinoiteAccess::None,
            probe: None,
            destructive: false,
            conflict_if_present: false,
            undo: None,
        });
        self.steps.last_mut().expect("just pushed")
    }
}

impl Step {
    fn writes(
        &mut self,
        kind: WriteKind,
        path: impl Into<Utf8PathBuf>,
        data: DataOwner,
    ) -> &mut Self {
        self.writes.push(Write {
            kind,
            path: path.into(),
            data,
        });
        self
    }
    fn probe(&mut self, p: Probe) -> &mut Self {
        self.probe = Some(p);
        self
    }
    fn kinoite(&mut self, k: KinoiteAccess) -> &mut Self {
        self.kinoite = k;
        self
    }
    fn destructive(&mut self) -> &mut Self {
        self.destructive = true;
        self
    }
    fn undo(&mut self, argv: Vec<String>) -> &mut Self {
        self.undo = Some(argv);
        self
    }
}

/// Build the plan. Pure: nothing is read from the machine.
pub fn plan(settings: &Settings, req: &PlanRequest) -> Result<Plan, PlanError> {
    let refind_efi = match (&req.refind_efi, req.storage_only) {
        (Some(r), _) => r.clone(),
        (None, true) => Utf8PathBuf::new(),
        (None, false) => return Err(PlanError::NoRefind),
    };
    for (arg, p) in [
        ("--disk", &req.disk),
        ("--target", &req.target),
        ("--refind-efi", &refind_efi),
    ] {
        if arg == "--refind-efi" && req.storage_only {
            continue;
        }
        if !p.is_absolute() {
            return Err(PlanError::NotAbsolute {
                arg,
                value: p.to_string(),
            });
        }
    }
    let kinoite = match req.mode {
        Mode::DualBoot => Some(
            settings
                .dual_boot
                .kinoite
                .as_ref()
                .ok_or(PlanError::NoKinoite)?,
        ),
        Mode::Fresh => None,
    };
    let storage = &settings.storage;
    let luks_name = storage.luks.name.as_str();
    let mapper: Utf8PathBuf = format!("/dev/mapper/{luks_name}").into();
    let (esp_device, luks_device) = match req.mode {
        Mode::Fresh => (partition_path(&req.disk, 1), partition_path(&req.disk, 2)),
        Mode::DualBoot => (
            req.esp_device
                .clone()
                .unwrap_or_else(|| settings.boot.esp.device.clone()),
            req.luks_device
                .clone()
                .unwrap_or_else(|| storage.luks.device.clone()),
        ),
    };
    let disk = req.disk.as_str();
    let target = req.target.as_path();
    let top = req.work_dir.join(format!("pool-{luks_name}"));
    let mut b = Builder { steps: Vec::new() };
    let mut kinoite_boot_device = None;
    let mut flake_copy = None;

    if req.mode == Mode::Fresh {
        b.push(
            "zap",
            format!("Erase the partition tables of {disk}"),
            run(argv(&["sgdisk", "--zap-all", disk])),
        )
        .writes(WriteKind::PartitionTable, disk, DataOwner::Disk)
        .destructive();
        let esp_label = partlabel(&settings.boot.esp.device, "ESP");
        let pool_label = partlabel(&storage.luks.device, "pool");
        b.push(
            "partition",
            format!(
                "Partition {disk}: ESP ({} MiB) and the LUKS2 pool (the rest)",
                settings.boot.esp.size_mib
            ),
            run(vec![
                "sgdisk".into(),
                format!("--new=1:0:+{}M", settings.boot.esp.size_mib),
                "--typecode=1:ef00".into(),
                format!("--change-name=1:{esp_label}"),
                "--new=2:0:0".into(),
                "--typecode=2:8309".into(),
                format!("--change-name=2:{pool_label}"),
                disk.into(),
            ]),
        )
        .writes(WriteKind::PartitionTable, disk, DataOwner::Disk)
        .destructive();
        b.push(
            "wait-partitions",
            "Wait for the kernel to show the new partitions",
            Action::WaitFor {
                paths: vec![esp_device.clone(), luks_device.clone()],
                timeout_secs: 30,
            },
        );
        b.push(
            "format-esp",
            format!("Format the ESP {esp_device} as FAT32"),
            run(argv(&[
                "mkfs.vfat",
                "-F",
                "32",
                "-n",
                "ESP",
                esp_device.as_str(),
            ])),
        )
        .writes(WriteKind::Filesystem, esp_device.clone(), DataOwner::Esp)
        .destructive();
        let a = &storage.luks.argon2id;
        b.push(
            "luks-format",
            format!(
                "Create the LUKS2 container on {luks_device} (argon2id, {} KiB, {} iterations, {} threads)",
                a.memory_kib, a.iterations, a.parallelism
            ),
            Action::Run {
                argv: vec![
                    "cryptsetup".into(),
                    "luksFormat".into(),
                    "--batch-mode".into(),
                    "--type".into(),
                    "luks2".into(),
                    "--pbkdf".into(),
                    "argon2id".into(),
                    "--pbkdf-memory".into(),
                    a.memory_kib.to_string(),
                    "--pbkdf-parallel".into(),
                    a.parallelism.to_string(),
                    "--pbkdf-force-iterations".into(),
                    a.iterations.to_string(),
                    "--key-file".into(),
                    "-".into(),
                    luks_device.to_string(),
                ],
                stdin: Stdin::Passphrase,
            },
        )
        .writes(WriteKind::LuksHeader, luks_device.clone(), DataOwner::Disk)
        .destructive();
    }

    let mut open = vec![
        "cryptsetup".to_string(),
        "open".into(),
        "--type".into(),
        "luks2".into(),
    ];
    if storage.luks.allow_discards {
        open.push("--allow-discards".into());
    }
    open.extend([
        "--key-file".into(),
        "-".into(),
        luks_device.to_string(),
        luks_name.into(),
    ]);
    let pool_access = if kinoite.is_some() {
        KinoiteAccess::Pool
    } else {
        KinoiteAccess::None
    };
    b.push(
        "luks-open",
        format!("Unlock {luks_device} as {mapper}"),
        Action::Run {
            argv: open,
            stdin: Stdin::Passphrase,
        },
    )
    .probe(Probe::MapperOpen {
        name: luks_name.into(),
        device: luks_device.clone(),
    })
    .kinoite(pool_access)
    .undo(argv(&["cryptsetup", "close", luks_name]));

    if req.mode == Mode::Fresh {
        b.push(
            "mkfs-btrfs",
            format!(
                "Create the btrfs file system {:?} in {mapper}",
                storage.btrfs_label
            ),
            run(argv(&[
                "mkfs.btrfs",
                "--force",
                "--label",
                &storage.btrfs_label,
                mapper.as_str(),
            ])),
        )
        .writes(WriteKind::Filesystem, mapper.clone(), DataOwner::Disk)
        .destructive();
    }

    b.push(
        "mkdir-pool-top",
        format!("Create the mount point {top}"),
        run(argv(&["mkdir", "-p", top.as_str()])),
    )
    .writes(WriteKind::Directory, top.clone(), DataOwner::Installer);
    b.push(
        "mount-pool-top",
        format!("Mount the pool's top level at {top} to manage subvolumes"),
        run(argv(&[
            "mount",
            "-t",
            "btrfs",
            "-o",
            "subvolid=5",
            mapper.as_str(),
            top.as_str(),
        ])),
    )
    .probe(Probe::Mounted { path: top.clone() })
    .kinoite(pool_access)
    .undo(argv(&["umount", top.as_str()]));

    // On a fresh disk NixOS creates its own subvolumes; beside Kinoite only
    // its own: Kinoite's are never created or touched.
    for s in storage
        .subvolumes
        .iter()
        .filter(|s| s.owner == SubvolumeOwner::Nixos)
    {
        let path = top.join(&s.name);
        let step = b
            .push(
                format!("subvolume:{}", s.name),
                format!("Create subvolume {}", s.name),
                run(argv(&["btrfs", "subvolume", "create", path.as_str()])),
            )
            .writes(WriteKind::Subvolume, path.clone(), s.owner.into())
            .probe(Probe::Subvolume { path: path.clone() })
            .kinoite(pool_access)
            .undo(argv(&["btrfs", "subvolume", "delete", path.as_str()]));
        step.conflict_if_present = true;
    }
    // The shared subvolumes, on both layouts: created when missing (a stock
    // Kinoite has no @shared), never formatted or overwritten — the probe
    // skips one that exists — and never deleted by an undo.
    for s in storage
        .subvolumes
        .iter()
        .filter(|s| s.owner == SubvolumeOwner::Shared)
    {
        let path = top.join(&s.name);
        b.push(
            format!("subvolume:{}", s.name),
            format!(
                "Create the shared subvolume {} if it is missing (group {} gid {}, mode {})",
                s.name,
                storage.shared_group.name,
                storage.shared_group.gid,
                super::shared::MODE
            ),
            run(super::shared::create_argv(
                &top,
                &s.name,
                &storage.shared_group,
            )),
        )
        .writes(WriteKind::Subvolume, path.clone(), DataOwner::Shared)
        .probe(Probe::Subvolume { path })
        .kinoite(pool_access);
    }
    b.push(
        "umount-pool-top",
        format!("Unmount the pool's top level {top}"),
        run(argv(&["umount", top.as_str()])),
    )
    .probe(Probe::NotMounted { path: top.clone() });

    // Mount parents before children.
    let mut mounted: Vec<&Subvolume> = storage
        .subvolumes
        .iter()
        .filter(|s| s.mount_point.is_some() && s.owner != SubvolumeOwner::Kinoite)
        .collect();
    mounted.sort_by_key(|s| {
        let mp = s.mount_point.as_ref().expect("filtered");
        (mp.components().count(), mp.to_string())
    });
    // Which data a directory under the target lands in: the deepest mount above it.
    let mut mounts: Vec<(Utf8PathBuf, DataOwner)> = Vec::new();
    let owner_of = |mounts: &[(Utf8PathBuf, DataOwner)], p: &Utf8Path| {
        mounts
            .iter()
            .filter(|(m, _)| p.starts_with(m))
            .max_by_key(|(m, _)| m.components().count())
            .map(|(_, o)| *o)
            .unwrap_or(DataOwner::Installer)
    };
    for s in mounted {
        let mp = s.mount_point.as_ref().expect("filtered");
        let at = under(target, mp);
        let data = owner_of(&mounts, &at);
        if req.mode == Mode::DualBoot && matches!(data, DataOwner::Shared | DataOwner::Kinoite) {
            return Err(settings_err(
                "storage.subvolumes",
                format!(
                    "the mount point {mp} of {} lies inside a subvolume NixOS must not write to; move it out",
                    s.name
                ),
            ));
        }
        b.push(
            format!("mkdir:{mp}"),
            format!("Create the mount point {at}"),
            run(argv(&["mkdir", "-p", at.as_str()])),
        )
        .writes(WriteKind::Directory, at.clone(), data);
        let mut opts = vec![format!("subvol={}", s.name)];
        opts.extend(s.mount_options.iter().cloned());
        // Beside Kinoite the shared data stays read-only for the whole
        // install: the kernel, not just the plan, keeps it unchanged.
        let shared_ro = req.mode == Mode::DualBoot && s.owner == SubvolumeOwner::Shared;
        if shared_ro && !opts.iter().any(|o| o == "ro") {
            opts.push("ro".into());
        }
        let step = b
            .push(
                format!("mount:{mp}"),
                format!("Mount {} at {at}", s.name),
                run(argv(&[
                    "mount",
                    "-t",
                    "btrfs",
                    "-o",
                    &opts.join(","),
                    mapper.as_str(),
                    at.as_str(),
                ])),
            )
            .probe(Probe::Mounted { path: at.clone() })
            .undo(argv(&["umount", at.as_str()]));
        if shared_ro {
            step.kinoite(KinoiteAccess::ReadOnly);
        }
        mounts.push((at, s.owner.into()));
    }

    let esp_at = under(target, &settings.boot.esp.mount_point);
    let data = owner_of(&mounts, &esp_at);
    b.push(
        "mkdir-esp",
        format!("Create the mount point {esp_at}"),
        run(argv(&["mkdir", "-p", esp_at.as_str()])),
    )
    .writes(WriteKind::Directory, esp_at.clone(), data);
    let esp_options = crate::hardware::layout::ESP_OPTIONS.join(",");
    b.push(
        "mount-esp",
        format!("Mount the ESP {esp_device} at {esp_at}"),
        run(argv(&[
            "mount",
            "-t",
            "vfat",
            "-o",
            &esp_options,
            esp_device.as_str(),
            esp_at.as_str(),
        ])),
    )
    .probe(Probe::Mounted {
        path: esp_at.clone(),
    })
    .undo(argv(&["umount", esp_at.as_str()]));

    if !req.storage_only {
        let kinoite_boot = req.work_dir.join("kinoite-boot");
        // Before nixos-install: its activation reads these files
        // (`hashedPasswordFile`) when it creates the accounts.
        for u in &settings.users {
            let path = super::users::hash_path(target, &u.name);
            b.push(
                format!("password:{}", u.name),
                format!("Store the hash of {}'s password on the new system", u.name),
                Action::WritePasswordHash {
                    user: u.name.clone(),
                    path: path.clone(),
                },
            )
            .writes(WriteKind::PasswordHash, path, DataOwner::Nixos);
        }
        // Before nixos-install: its boot-loader hook signs with these keys.
        if let Some(sb) = super::sb_keys::step(settings, req)? {
            b.push("sb-keys", sb.title, run(sb.argv)).writes(
                WriteKind::Keys,
                sb.dir,
                DataOwner::Nixos,
            );
        }
        b.push(
            "nixos-install",
            format!(
                "Install NixOS from {}#{} into {target}",
                req.flake, req.host
            ),
            run(vec![
                "nixos-install".into(),
                "--flake".into(),
                format!("{}#{}", req.flake, req.host),
                "--root".into(),
                target.to_string(),
                "--no-root-passwd".into(),
            ]),
        )
        .writes(WriteKind::Files, target, DataOwner::Nixos);
        // The flake installed from, kept on the installed system: the
        // installer's copy is gone after the reboot.
        if let (Some(src), Some(owner)) = (
            super::local_flake_dir(&req.flake),
            super::flake_copy::owner(settings),
        ) {
            let dest = super::flake_copy::dest_under(target);
            b.push(
                "copy-flake",
                format!(
                    "Copy the flake {src} to {} on the installed system (owner {owner}), unless one is there",
                    super::flake_copy::DEST,
                ),
                run(super::flake_copy::argv(&src, target, &owner)),
            )
            .writes(WriteKind::Files, dest, DataOwner::Nixos);
            flake_copy = Some(Utf8PathBuf::from(super::flake_copy::DEST));
        }
        if let Some(k) = kinoite {
            let dev = req
                .kinoite_boot_device
                .clone()
                .unwrap_or_else(|| k.boot_volume.device().into());
            kinoite_boot_device = Some(dev.clone());
            b.push(
                "mkdir-kinoite-boot",
                format!("Create the mount point {kinoite_boot}"),
                run(argv(&["mkdir", "-p", kinoite_boot.as_str()])),
            )
            .writes(
                WriteKind::Directory,
                kinoite_boot.clone(),
                DataOwner::Installer,
            );
            // `noload` keeps ext4 from replaying its journal: read-only for real.
            let opts = if matches!(k.boot_fs_type.as_str(), "ext4" | "ext3") {
                "ro,noload"
            } else {
                "ro"
            };
            b.push(
                "mount-kinoite-boot",
                format!("Mount Kinoite's /boot {dev} read-only at {kinoite_boot}"),
                run(argv(&[
                    "mount",
                    "-t",
                    &k.boot_fs_type,
                    "-o",
                    opts,
                    dev.as_str(),
                    kinoite_boot.as_str(),
                ])),
            )
            .probe(Probe::Mounted {
                path: kinoite_boot.clone(),
            })
            .kinoite(KinoiteAccess::ReadOnly)
            .undo(argv(&["umount", kinoite_boot.as_str()]));
        }
        let mut esp = vec![
            "bifrost".to_string(),
            "esp".into(),
            "install".into(),
            "--esp".into(),
            esp_at.to_string(),
            "--profiles".into(),
            target.join("nix/var/nix/profiles").to_string(),
            // The target's generations link into its own /nix/store, which
            // the installer sees below the target root.
            "--root".into(),
            target.to_string(),
            "--refind-efi".into(),
            refind_efi.to_string(),
            // Timeout, generations kept, removable, text-only, default entry
            // and the Kinoite side: the settings say them (esp::choices).
            "--settings".into(),
            req.settings_file.to_string(),
        ];
        if req.nvram {
            esp.push("--nvram".into());
        }
        // Signed as the boot hook signed it: unsigned files would replace them.
        esp.extend(super::sb_keys::esp_sign_args(settings, target));
        if kinoite.is_some_and(|k| k.mode == crate::spec::KinoiteMode::Direct) {
            esp.extend(["--kinoite-boot".into(), kinoite_boot.to_string()]);
        }
        let title = if kinoite.is_some() {
            "Add NixOS to rEFInd on the ESP, keeping the Kinoite entries"
        } else {
            "Install rEFInd and the NixOS entries on the ESP"
        };
        b.push("esp-install", title, run(esp))
            .writes(WriteKind::Files, esp_at.clone(), DataOwner::Esp)
            .kinoite(if kinoite.is_some() {
                KinoiteAccess::ReadOnly
            } else {
                KinoiteAccess::None
            });
        if kinoite.is_some() {
            b.push(
                "umount-kinoite-boot",
                "Unmount Kinoite's /boot",
                run(argv(&["umount", kinoite_boot.as_str()])),
            )
            .probe(Probe::NotMounted { path: kinoite_boot });
        }
    }

    Ok(Plan {
        host: req.host.clone(),
        flake: req.flake.clone(),
        disk: req.disk.clone(),
        mode: req.mode,
        target: req.target.clone(),
        esp_device,
        luks_device,
        mapper,
        kinoite_boot_device,
        flake_copy,
        storage_only: req.storage_only,
        steps: b.steps,
    })
}

/// A command line as a shell would read it.
pub fn command_line(argv: &[String]) -> String {
    crate::shell::line(argv.iter().map(String::as_str))
}

fn data_name(d: DataOwner) -> &'static str {
    match d {
        DataOwner::Installer => "installer",
        DataOwner::Disk => "disk",
        DataOwner::Esp => "ESP",
        DataOwner::Nixos => "NixOS",
        DataOwner::Shared => "shared",
        DataOwner::Kinoite => "Kinoite",
    }
}

fn kind_name(k: WriteKind) -> &'static str {
    match k {
        WriteKind::PartitionTable => "partition table",
        WriteKind::LuksHeader => "LUKS2 header",
        WriteKind::Filesystem => "file system",
        WriteKind::Subvolume => "subvolume",
        WriteKind::Directory => "directory",
        WriteKind::Files => "files",
        WriteKind::PasswordHash => "password hash (mode 0600)",
        WriteKind::Keys => "signing keys (private 0600, folder 0700)",
    }
}

/// The plan as text for people: every step with its exact command.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let what = match plan.mode {
        Mode::Fresh => format!(
            "fresh install of {} on {} — ERASES EVERYTHING on {}",
            plan.host, plan.disk, plan.disk
        ),
        Mode::DualBoot => format!(
            "install of {} beside Kinoite on {} (Kinoite's data is left as it is; @shared is created only if missing)",
            plan.host, plan.disk
        ),
    };
    let _ = writeln!(out, "bifrost install plan: {what}");
    let _ = writeln!(
        out,
        "  ESP {}, LUKS2 {} opened as {}, target {}",
        plan.esp_device, plan.luks_device, plan.mapper, plan.target
    );
    if plan.storage_only {
        let _ = writeln!(
            out,
            "  storage only: nixos-install and the ESP install are left out"
        );
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "\n{:>2}. {}  [{}]", i + 1, s.title, s.id);
        match &s.action {
            Action::Run { argv, stdin } => {
                let _ = writeln!(out, "    $ {}", command_line(argv));
                if *stdin == Stdin::Passphrase {
                    let _ = writeln!(out, "    stdin: the passphrase (never on the command line)");
                }
            }
            Action::WaitFor {
                paths,
                timeout_secs,
            } => {
                let list: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
                let _ = writeln!(
                    out,
                    "    wait up to {timeout_secs} s for {}",
                    list.join(", ")
                );
            }
            Action::WritePasswordHash { user, path } => {
                let _ = writeln!(
                    out,
                    "    write {path}: the SHA-512 crypt hash of {user}'s password, from memory (asked for before the first step)"
                );
            }
        }
        for w in &s.writes {
            let _ = writeln!(
                out,
                "    writes: {} {} ({} data)",
                kind_name(w.kind),
                w.path,
                data_name(w.data)
            );
        }
        match s.kinoite {
            KinoiteAccess::None => {}
            KinoiteAccess::Pool => {
                let _ = writeln!(
                    out,
                    "    kinoite: uses the shared pool, writes none of Kinoite's data"
                );
            }
            KinoiteAccess::ReadOnly => {
                let _ = writeln!(
                    out,
                    "    kinoite: reads Kinoite's or shared data, read-only"
                );
            }
        }
        if let Some(p) = &s.probe {
            if s.conflict_if_present {
                let _ = writeln!(
                    out,
                    "    refused if: {p} and this install did not make it (--force uses it)"
                );
            } else {
                let _ = writeln!(out, "    skipped if: {p}");
            }
        }
        if s.destructive {
            let _ = writeln!(
                out,
                "    destructive: runs again on resume unless recorded done"
            );
        }
    }
    out
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
