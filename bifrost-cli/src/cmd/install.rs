use bifrost_core::install::plan::Mode;
use bifrost_core::install::session::{self, Finished, PlanFormat};
use bifrost_core::install::terminal::Terminal;
use camino::Utf8PathBuf;
use std::process::ExitCode;

/// Install NixOS to a disk: fresh (erases the disk), or beside Kinoite in its
/// LUKS2 pool (--dual-boot).
///
/// Fresh: GPT with an ESP and a LUKS2 partition (Argon2id with the host's
/// cost), btrfs inside with the host's NixOS and shared subvolumes, mounted
/// under --target, then `nixos-install --flake <flake>#<host>` and
/// `bifrost esp install`. Beside Kinoite: opens the existing pool, adds only
/// NixOS's subvolumes, mounts the shared ones read-only, mounts the existing
/// ESP and adds NixOS to its rEFInd menu, keeping the Kinoite entries.
///
/// The host's settings are `<flake>/hosts/<host>/host.json` (or --settings).
/// The passphrase is read from the terminal without echo, or from
/// --key-file; it reaches cryptsetup on standard input only. Each user of the
/// host settings gets a password, asked twice without echo (or read with
/// --password-file USER=FILE); only its SHA-512 crypt hash is kept, written
/// root-only to /var/lib/bifrost/passwords/USER on the new system. rEFInd is
/// registered as the firmware's first boot entry unless --no-nvram. A failed
/// step stops the install; running the same command again resumes it, asking
/// only for the passphrase and passwords the remaining steps need.
#[derive(clap::Args)]
pub struct Args {
    /// Host to install (the flake's `nixosConfigurations.<host>`); on
    /// bifrost's installer, the host it was built for.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Whole disk to install to, such as /dev/nvme0n1.
    #[arg(long, value_name = "DEVICE")]
    disk: Utf8PathBuf,
    /// Flake holding the host; a local folder also provides hosts/<host>/host.json.
    /// Default: on bifrost's installer the flake it carries, else `.`.
    #[arg(long, value_name = "REF")]
    flake: Option<String>,
    /// Host settings file, instead of <flake>/hosts/<host>/host.json (on
    /// bifrost's installer, the carried host's own).
    #[arg(long, value_name = "FILE")]
    settings: Option<Utf8PathBuf>,
    /// Print every step with its exact command and change nothing.
    #[arg(long)]
    plan: bool,
    /// With --plan: print the plan as JSON.
    #[arg(long, requires = "plan")]
    json: bool,
    /// Do not show the plan and ask for the disk name to be typed.
    #[arg(long)]
    yes: bool,
    /// Install beside Fedora Kinoite in its existing LUKS2 pool; never
    /// formats anything, never writes Kinoite's or the shared subvolumes.
    #[arg(long)]
    dual_boot: bool,
    /// Read the passphrase from FILE (one trailing newline is dropped).
    #[arg(long, value_name = "FILE")]
    key_file: Option<Utf8PathBuf>,
    /// Install into subvolumes that already exist (keeping their contents)
    /// instead of refusing.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    more: Box<More>,
}

/// Less common options, boxed to keep the command enum small.
#[derive(clap::Args)]
pub struct More {
    /// Where the new system is mounted.
    #[arg(long, value_name = "DIR", default_value = "/mnt")]
    target: Utf8PathBuf,
    /// ESP partition beside Kinoite (default: the settings' boot.esp.device).
    #[arg(long, value_name = "DEVICE")]
    esp_device: Option<Utf8PathBuf>,
    /// LUKS2 partition beside Kinoite (default: the settings' storage.luks.device).
    #[arg(long, value_name = "DEVICE")]
    luks_device: Option<Utf8PathBuf>,
    /// Kinoite's /boot partition (default: the udev link of dualBoot.kinoite.bootVolume: /dev/disk/by-uuid/…, by-partuuid/… or by-label/…).
    #[arg(long, value_name = "DEVICE")]
    kinoite_boot_device: Option<Utf8PathBuf>,
    /// rEFInd binary (refind_x64.efi) for `bifrost esp install`; the bifrost
    /// installer sets BIFROST_REFIND_EFI. Default: the first of rEFInd's usual
    /// install locations that exists (--plan names it). Not needed with
    /// --storage-only.
    #[arg(long, value_name = "FILE", env = "BIFROST_REFIND_EFI")]
    refind_efi: Option<Utf8PathBuf>,
    /// Stop after the storage steps: no nixos-install, no ESP install
    /// (to prepare a disk, or to test the storage layout).
    #[arg(long)]
    storage_only: bool,
    /// Progress file (default: /run/bifrost/install-<disk>.json).
    #[arg(long, value_name = "FILE")]
    state: Option<Utf8PathBuf>,
    /// Read USER's password from FILE (one trailing newline is dropped)
    /// instead of asking; repeat for each user.
    #[arg(long, value_name = "USER=FILE")]
    password_file: Vec<String>,
    /// Leave the firmware's boot entries (NVRAM) alone: do not register
    /// rEFInd or change BootOrder (firmware that boots EFI/BOOT/BOOTX64.EFI,
    /// or a disk prepared for another machine).
    #[arg(long)]
    no_nvram: bool,
    /// With security.secureBoot.enable: copy the signing keys from DIR
    /// (mok.key/mok.crt on the shim route, db.key/db.crt with own keys) to
    /// keysPath on the new system instead of creating new ones there.
    #[arg(long, value_name = "DIR")]
    sb_keys: Option<Utf8PathBuf>,
}

pub fn run(a: Args) -> super::Outcome {
    let m = *a.more;
    let req = session::Request {
        host: a.host,
        flake: a.flake,
        settings: a.settings,
        disk: a.disk,
        mode: if a.dual_boot {
            Mode::DualBoot
        } else {
            Mode::Fresh
        },
        plan_only: match (a.plan, a.json) {
            (false, _) => None,
            (true, false) => Some(PlanFormat::Text),
            (true, true) => Some(PlanFormat::Json),
        },
        yes: a.yes,
        key_file: a.key_file,
        force: a.force,
        target: m.target,
        esp_device: m.esp_device,
        luks_device: m.luks_device,
        kinoite_boot_device: m.kinoite_boot_device,
        refind_efi: m.refind_efi,
        storage_only: m.storage_only,
        state: m.state,
        password_files: m.password_file,
        nvram: !m.no_nvram,
        sb_keys: m.sb_keys,
    };
    match session::run(&req, &mut Terminal, &mut session::Live::new())? {
        Finished::Planned | Finished::Installed => Ok(ExitCode::SUCCESS),
        Finished::Aborted => Ok(ExitCode::FAILURE),
    }
}
