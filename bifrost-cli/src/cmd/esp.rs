//! `bifrost esp`: install generations onto the ESP, and inspect it.

use super::Outcome;
use bifrost_core::esp;
use bifrost_core::esp::request::Event;
use bifrost_core::spec::{DefaultEntry, KinoiteMode};
use camino::Utf8PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Copy NixOS generations (and the Kinoite side) onto the ESP and write rEFInd's menu.
    ///
    /// Kernels and initrds go to EFI/nixos/ once each, named by store path so
    /// generations share them; then refind.conf is replaced atomically; then
    /// files no entry needs are deleted. Free space is checked first; on any
    /// failure the previous menu stays bootable. A second run with nothing
    /// changed writes nothing. One run at a time per ESP: a second one waits
    /// for the first (up to 120 seconds), saying so.
    Install(Box<InstallArgs>),
    /// Show what is installed on the ESP and check every file the menu needs.
    ///
    /// Exits with status 1 when a file is missing, truncated or changed, when
    /// Fedora's boot loader that the Kinoite chainload entry starts is
    /// missing, or (given --kinoite-boot) when a direct Kinoite entry names a
    /// kernel, initrd or `ostree=` deployment that no longer exists; also when
    /// the menu lacks an entry the state line records (a cut-off refind.conf),
    /// or when there is no refind.conf at all.
    Status(StatusArgs),
    /// Re-render only the Kinoite entries of rEFInd's menu from Kinoite's current BLS entries.
    ///
    /// For direct mode, run on Kinoite after each update (docs/kinoite.md has
    /// a systemd path unit for it). refind.conf is replaced atomically under
    /// the same lock as `esp install`; the NixOS entries and every file on the
    /// ESP stay as they are; nothing is written when nothing changed. In
    /// chainload mode there is nothing to refresh and it exits 0.
    RefreshKinoite(RefreshArgs),
}

#[derive(clap::Args)]
pub struct InstallArgs {
    /// Mount point of the EFI system partition.
    #[arg(long, value_name = "DIR")]
    esp: Utf8PathBuf,
    /// Folder of `system-N-link` generations (usually /nix/var/nix/profiles).
    #[arg(long, value_name = "DIR")]
    profiles: Utf8PathBuf,
    /// Root of the system the generations belong to, when it is not `/`
    /// (from an installer: the target mounted at /mnt). Absolute links and the
    /// generations' kernels and initrds are read below it.
    #[arg(long, value_name = "DIR")]
    root: Option<Utf8PathBuf>,
    /// rEFInd binary (refind_x64.efi); its drivers_x64/ folder beside it supplies file-system drivers.
    #[arg(long, value_name = "FILE")]
    refind_efi: Utf8PathBuf,
    /// Host settings file (the NixOS module passes the system's own): the
    /// menu follows its boot.* and dualBoot.kinoite settings. Flags below
    /// override it; without it, they alone decide.
    #[arg(long, value_name = "FILE")]
    settings: Option<Utf8PathBuf>,
    /// Install at the firmware fallback path EFI/BOOT/BOOTX64.EFI instead of
    /// EFI/refind/ (also when the settings say boot.removable).
    ///
    /// Refused when another system's loader is there (on a dual-boot ESP,
    /// Fedora's shim, which Fedora's bootupd owns), unless --force-removable.
    #[arg(long)]
    removable: bool,
    /// With --removable (or the settings' boot.removable): replace another
    /// system's loader at EFI/BOOT/BOOTX64.EFI.
    #[arg(long)]
    force_removable: bool,
    /// Keep menu entries for only the newest N generations (default: the
    /// settings' boot.maxGenerations, else all).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// How the menu boots Kinoite: `chainload` starts Fedora's own boot loader
    /// from this ESP (EFI/fedora/shimx64.efi, else grubx64.efi), which always
    /// boots Kinoite's current deployments; `direct` copies its BLS entries
    /// (needs --kinoite-boot with --settings, or --kinoite-entries and
    /// --kinoite-volume). Default: the settings' dualBoot.kinoite.mode;
    /// without settings, --kinoite-entries/--kinoite-volume mean `direct`.
    #[arg(long, value_name = "MODE", value_enum)]
    kinoite_mode: Option<KinoiteMode>,
    /// Menu title of the chainload entry (default: the settings'
    /// dualBoot.kinoite.title, else "Fedora Kinoite").
    #[arg(long, value_name = "TITLE")]
    kinoite_title: Option<String>,
    /// Where Kinoite's /boot is mounted; its entries are read from the
    /// settings' dualBoot.kinoite.entriesDir below it (direct mode).
    #[arg(long, value_name = "DIR", requires = "settings")]
    kinoite_boot: Option<Utf8PathBuf>,
    /// Folder of Kinoite's Boot Loader Specification entries (loader/entries).
    #[arg(long, value_name = "DIR", conflicts_with = "kinoite_boot")]
    kinoite_entries: Option<Utf8PathBuf>,
    /// Kinoite's /boot: UUID=<file-system UUID>, PARTUUID=<partition GUID>,
    /// LABEL=<label> or a bare label (default: the settings'
    /// dualBoot.kinoite.bootVolume). rEFInd cannot find a file-system UUID, so
    /// UUID= is looked up as its partition's GUID in /dev/disk/by-partuuid.
    #[arg(long, value_name = "VOLUME")]
    kinoite_volume: Option<String>,
    /// Seconds before the default entry boots: 0 waits for a key, -1 boots
    /// it at once unless a key is held (rEFInd's meanings); nothing below -1.
    /// Default: the settings' boot.timeout, else 5.
    #[arg(
        long,
        value_name = "SECS",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(-1..)
    )]
    timeout: Option<i32>,
    /// Text-only menu (no graphics, no icons; also when the settings say boot.textOnly).
    #[arg(long)]
    text_only: bool,
    /// File whose lines are added to refind.conf's global section.
    #[arg(long, value_name = "FILE")]
    extra_config: Option<Utf8PathBuf>,
    /// Which entry boots by default: the newest NixOS generation, Kinoite's
    /// newest entry, or the entry booted last (`last-booted`: rEFInd's `+`,
    /// falling back to the newest NixOS generation; the newest generation's
    /// entry is then titled `NixOS (newest generation)` so a rebuild does not
    /// turn the last-booted entry into an old one). Default: the settings'
    /// boot.defaultEntry, else nixos.
    #[arg(long, value_name = "WHICH", value_enum)]
    default_entry: Option<DefaultEntry>,
    /// Sign rEFInd, its drivers and every kernel with this PEM private key (Secure Boot).
    /// Default: the settings' security.secureBoot (its keysPath's mok.key on
    /// the shim route, db.key with own keys, below --root).
    ///
    /// Signing happens on the copies made for the ESP, never in the Nix store; a rEFInd
    /// without a .sbat section gets one first (shim requires it). Signed kernels are named
    /// by store path and certificate, so a new key or kernel gives a new file.
    #[arg(long, value_name = "FILE", requires = "sign_cert")]
    sign_key: Option<Utf8PathBuf>,
    /// PEM certificate of --sign-key.
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    sign_cert: Option<Utf8PathBuf>,
    /// Put a Microsoft-signed shim in front of the signed rEFInd (needs --sign-key).
    ///
    /// shim goes into rEFInd's folder (EFI/refind/shimx64.efi, or EFI/BOOT/BOOTX64.EFI with
    /// --removable) with MokManager (mmx64.efi) when it sits beside FILE; rEFInd becomes
    /// grubx64.efi, the second stage shim starts. Without FILE: Fedora's EFI/fedora/shimx64.efi
    /// on this ESP (copied, never changed). Default: the settings' security.secureBoot.shim
    /// on the shim route.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    shim: Option<Utf8PathBuf>,
    /// Print the plan (files to copy and delete, refind.conf diff) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Register rEFInd in the firmware's boot menu (NVRAM) and put it first
    /// in BootOrder: an entry for the same loader on the ESP's partition is
    /// reused, never duplicated. Needs a UEFI boot (efivarfs) and efibootmgr.
    /// With --settings this is the default unless the install is removable.
    #[arg(long, conflicts_with = "no_nvram")]
    nvram: bool,
    /// Leave the firmware's boot menu alone, whatever the settings say (the
    /// NixOS hook passes it when boot.loader.efi.canTouchEfiVariables is off).
    #[arg(long)]
    no_nvram: bool,
    /// Description of the boot entry NVRAM registration creates (default:
    /// the settings' boot.nvramLabel, else "bifrost rEFInd").
    #[arg(long, value_name = "LABEL")]
    nvram_label: Option<String>,
    /// efivarfs folder (for tests).
    #[arg(long, value_name = "DIR", default_value = esp::nvram::EFIVARS, hide = true)]
    efivars: Utf8PathBuf,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Mount point of the EFI system partition.
    #[arg(long, value_name = "DIR")]
    esp: Utf8PathBuf,
    /// Kinoite's /boot (mounted): direct Kinoite entries whose kernel, initrd
    /// or `ostree=` deployment no longer exists there are reported as stale.
    #[arg(long, value_name = "DIR")]
    kinoite_boot: Option<Utf8PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct RefreshArgs {
    /// Mount point of the EFI system partition.
    #[arg(long, value_name = "DIR")]
    esp: Utf8PathBuf,
    /// Folder of Kinoite's current Boot Loader Specification entries (/boot/loader/entries).
    #[arg(long, value_name = "DIR")]
    kinoite_entries: Utf8PathBuf,
    /// rEFInd volume of Kinoite's /boot: file-system label, partition label or GUID.
    #[arg(long, value_name = "VOLUME")]
    kinoite_volume: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(c: Command) -> Outcome {
    match c {
        Command::Install(a) => install(*a),
        Command::Status(a) => status(a),
        Command::RefreshKinoite(a) => refresh_kinoite(a),
    }
}

fn install(a: InstallArgs) -> Outcome {
    let dry_run = a.dry_run;
    let r = esp::request::Request {
        esp: a.esp,
        profiles: a.profiles,
        root: a.root,
        refind_efi: a.refind_efi,
        settings: a.settings,
        extra_config: a.extra_config,
        force_removable: a.force_removable,
        flags: esp::choices::Flags {
            removable: a.removable,
            limit: a.limit,
            timeout: a.timeout,
            text_only: a.text_only,
            default_entry: a.default_entry,
            kinoite_mode: a.kinoite_mode,
            kinoite_title: a.kinoite_title,
            kinoite_entries: a.kinoite_entries,
            kinoite_volume: a.kinoite_volume,
            kinoite_boot: a.kinoite_boot,
            sign: a
                .sign_key
                .zip(a.sign_cert)
                .map(|(key, cert)| esp::sign::SignOptions { key, cert }),
            // `--shim` without a file: Fedora's shim on the ESP.
            shim: a.shim.map(|f| match f.as_str() {
                "" => esp::sign::ShimSource::Fedora,
                _ => esp::sign::ShimSource::File(f),
            }),
            nvram: a.nvram,
            no_nvram: a.no_nvram,
            nvram_label: a.nvram_label,
            root: None,
        },
        dry_run,
        efivars: a.efivars,
    };
    let done = esp::request::install(r, &mut |e| match e {
        Event::Waiting(m) => eprintln!("{m}"),
        Event::Warning(w) => eprintln!("warning: {w}"),
        Event::Step(line) => eprintln!("  {line}"),
    })?;
    match &done.report {
        None => print!("{}", esp::text::plan(&done.plan)),
        Some(r) => print!("{}", esp::text::installed(&done.plan, r)),
    }
    if let Some(n) = done.nvram.transpose()? {
        print!("{}", esp::text::nvram(&n));
    }
    Ok(ExitCode::SUCCESS)
}

/// Pretty JSON of a report on stdout.
macro_rules! print_json {
    ($v:expr) => {
        println!(
            "{}",
            serde_json::to_string_pretty(&$v).expect("reports serialise")
        )
    };
}

fn status(a: StatusArgs) -> Outcome {
    let st = esp::kinoite::status(&a.esp, a.kinoite_boot.as_deref())?;
    if a.json {
        print_json!(st);
    } else {
        print!("{}", esp::text::status(&st));
    }
    // The report is printed either way; problems make the exit status 1.
    Ok(if st.consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn refresh_kinoite(a: RefreshArgs) -> Outcome {
    let o = esp::kinoite::RefreshOptions {
        esp: a.esp,
        entries: a.kinoite_entries,
        volume: a.kinoite_volume,
    };
    let r = esp::kinoite::refresh(&o, &mut |line| eprintln!("  {line}"))?;
    if a.json {
        print_json!(r);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", esp::text::refreshed(&r));
    Ok(ExitCode::SUCCESS)
}
