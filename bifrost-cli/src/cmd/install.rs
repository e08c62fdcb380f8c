use bifrost_core::install::{self, plan, preflight, run, secret::Secret};
use bifrost_core::spec;
use camino::Utf8PathBuf;
use std::io::{BufRead, IsTerminal, Write};
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
/// step stops the install; running the same command again resumes it.
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

const WORK_DIR: &str = "/run/bifrost";

fn err(e: &dyn std::error::Error) -> ExitCode {
    super::fail(e)
}

pub fn run(a: Args) -> ExitCode {
    let source = match install::source::resolve(
        a.host.as_deref(),
        a.flake.as_deref(),
        a.settings.as_ref(),
        &install::source::Carried::from_env(),
    ) {
        Ok(s) => s,
        Err(e) => return err(&e),
    };
    if !(a.plan && a.json) {
        print!("{}", install::source::announce(&source));
    }
    let settings_path = source.settings.clone();
    let settings = match spec::load_file(&settings_path) {
        Ok(s) => s,
        Err(e) => return err(&e),
    };
    let mode = if a.dual_boot {
        plan::Mode::DualBoot
    } else {
        plan::Mode::Fresh
    };
    let refind = install::refind_bin::find(a.more.refind_efi.as_deref());
    let req = plan::PlanRequest {
        host: source.host.clone(),
        flake: source.flake.clone(),
        disk: a.disk.clone(),
        mode,
        target: a.more.target.clone(),
        work_dir: WORK_DIR.into(),
        esp_device: a.more.esp_device.clone(),
        luks_device: a.more.luks_device.clone(),
        kinoite_boot_device: a.more.kinoite_boot_device.clone(),
        refind_efi: refind
            .path()
            .or_else(|| {
                a.plan
                    .then(|| camino::Utf8Path::new(install::refind_bin::USUAL[0]))
            })
            .map(Into::into),
        storage_only: a.more.storage_only,
        // Absolute: `esp install` may run from a resumed install elsewhere.
        settings_file: std::path::absolute(&settings_path)
            .ok()
            .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
            .unwrap_or_else(|| settings_path.clone()),
        nvram: !a.more.no_nvram,
        sb_keys: a.more.sb_keys.as_ref().map(|p| {
            std::path::absolute(p)
                .ok()
                .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
                .unwrap_or_else(|| p.clone())
        }),
    };
    let the_plan = match plan::plan(&settings, &req) {
        Ok(p) => p,
        Err(e) => return err(&e),
    };
    if a.plan {
        if !a.more.storage_only {
            eprintln!("{}", refind.describe());
        }
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&the_plan).expect("plans serialize")
            );
        } else {
            print!("{}", plan::render(&the_plan));
        }
        return ExitCode::SUCCESS;
    }

    if let Err(e) = preflight::check_programs(&the_plan).and_then(|_| preflight::check_root()) {
        return err(&e);
    }
    let state_path = a
        .more
        .state
        .clone()
        .unwrap_or_else(|| run::default_state_path(&a.disk));
    let state = match run::load_state(&state_path) {
        Ok(s) => s,
        Err(e) => return err(&e),
    };
    let resuming = run::resumes(&the_plan, state.as_ref());
    // A resumed run finds its own mounts from last time; only those are allowed.
    let allowed: Vec<Utf8PathBuf> = if resuming {
        vec![a.more.target.clone(), WORK_DIR.into()]
    } else {
        Vec::new()
    };
    if let Err(e) =
        preflight::check_disk(&the_plan, &allowed).and_then(|_| preflight::check_nvram(&the_plan))
    {
        return err(&e);
    }

    if !a.yes {
        print!("{}", plan::render(&the_plan));
        if let Some(s) = state.as_ref().filter(|_| resuming) {
            println!(
                "\nresuming: {} of {} steps are done ({state_path})",
                s.done.len(),
                the_plan.steps.len()
            );
        }
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: no terminal to confirm on; review the plan with --plan, then pass --yes"
            );
            return ExitCode::FAILURE;
        }
        print!("\nType the disk name ({}) to go ahead: ", a.disk);
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim() != a.disk.as_str() {
            eprintln!("aborted: nothing was changed");
            return ExitCode::FAILURE;
        }
    }

    let secret = match &a.key_file {
        Some(f) => Secret::from_key_file(f),
        None => {
            let (what, confirm) = match mode {
                plan::Mode::Fresh => ("New LUKS2 passphrase", true),
                plan::Mode::DualBoot => ("Passphrase of the existing LUKS2 pool", false),
            };
            Secret::prompt(what, confirm)
        }
    };
    let secret = match secret {
        Ok(s) => s,
        Err(e) => return err(&e),
    };
    let password_hashes = if a.more.storage_only {
        Default::default()
    } else {
        let files: Result<Vec<_>, _> = a
            .more
            .password_file
            .iter()
            .map(|f| install::users::parse_file_arg(f))
            .collect();
        let hashes = files.and_then(|files| {
            install::users::collect(&settings, &files, &mut |what| Secret::prompt(what, true))
        });
        match hashes {
            Ok(h) => h,
            Err(e) => return err(&e),
        }
    };

    let opts = run::RunOptions {
        state_path: state_path.clone(),
        force: a.force,
    };
    let mut progress = |ev: run::Event| match ev {
        run::Event::Start {
            index,
            total,
            title,
            command,
            ..
        } => {
            eprintln!("[{}/{total}] {title}", index + 1);
            if !command.is_empty() {
                eprintln!("        $ {command}");
            }
        }
        run::Event::Skip {
            index,
            total,
            id,
            reason,
        } => eprintln!("[{}/{total}] skip {id}: {reason}", index + 1),
        run::Event::Done { .. } => {}
    };
    let secrets = run::Secrets {
        passphrase: &secret,
        password_hashes: &password_hashes,
    };
    match run::execute_with(
        &the_plan,
        &mut run::RealSystem,
        &secrets,
        &opts,
        &mut progress,
    ) {
        Ok(_) => {
            if a.more.storage_only {
                println!(
                    "storage ready: {} is open and mounted under {} (progress: {state_path})",
                    the_plan.mapper, a.more.target
                );
            } else {
                let target = &a.more.target;
                if let Some(f) = &the_plan.flake_copy {
                    println!(
                        "your flake is in {f} on the installed system (owned by uid 1000): \
                         update and rebuild there with `nix flake update` and \
                         `sudo nixos-rebuild switch --flake {f}#{}`",
                        the_plan.host
                    );
                }
                println!(
                    "installed {} on {} (progress: {state_path})\n\
                     next: umount -R {target} && cryptsetup close {} && reboot; log in as one of the users with the password you gave",
                    source.host,
                    a.disk,
                    the_plan.mapper.file_name().unwrap_or("cryptroot")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => err(&e),
    }
}
