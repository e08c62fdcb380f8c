//! `bifrost esp`: install generations onto the ESP, and inspect it.

use bifrost_core::esp;
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
    /// changed writes nothing.
    Install(InstallArgs),
    /// Show what is installed on the ESP and check every file the menu needs.
    ///
    /// Exits with status 1 when a file is missing, truncated or changed, when
    /// the menu lacks an entry the state line records (a cut-off refind.conf),
    /// or when there is no refind.conf at all.
    Status(StatusArgs),
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
    /// Install at the firmware fallback path EFI/BOOT/BOOTX64.EFI instead of EFI/refind/.
    #[arg(long)]
    removable: bool,
    /// Keep menu entries for only the newest N generations.
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Folder of Kinoite's Boot Loader Specification entries (loader/entries).
    #[arg(long, value_name = "DIR", requires = "kinoite_volume")]
    kinoite_entries: Option<Utf8PathBuf>,
    /// rEFInd volume of Kinoite's /boot: file-system label, partition label or GUID.
    #[arg(long, value_name = "VOLUME", requires = "kinoite_entries")]
    kinoite_volume: Option<String>,
    /// Seconds before the default entry boots: 0 waits for a key, -1 boots
    /// it at once unless a key is held (rEFInd's meanings); nothing below -1.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(-1..)
    )]
    timeout: i32,
    /// Text-only menu (no graphics, no icons).
    #[arg(long)]
    text_only: bool,
    /// File whose lines are added to refind.conf's global section.
    #[arg(long, value_name = "FILE")]
    extra_config: Option<Utf8PathBuf>,
    /// Which entry boots by default: the newest NixOS generation, or Kinoite's newest entry.
    #[arg(long, value_name = "WHICH", default_value = "nixos", value_parser = ["nixos", "kinoite"])]
    default_entry: String,
    /// Print the plan (files to copy and delete, refind.conf diff) and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Mount point of the EFI system partition.
    #[arg(long, value_name = "DIR")]
    esp: Utf8PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(c: Command) -> ExitCode {
    match c {
        Command::Install(a) => install(a),
        Command::Status(a) => status(a),
    }
}

fn install(a: InstallArgs) -> ExitCode {
    let extra_config = match &a.extra_config {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: --extra-config {p}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => String::new(),
    };
    let o = esp::InstallOptions {
        esp: a.esp,
        profiles: a.profiles,
        root: a.root,
        refind_efi: a.refind_efi,
        removable: a.removable,
        limit: a.limit,
        kinoite: a.kinoite_entries.zip(a.kinoite_volume),
        timeout: a.timeout,
        text_only: a.text_only,
        extra_config,
        default_kinoite: a.default_entry == "kinoite",
    };
    let plan = match esp::plan(&o) {
        Ok(p) => p,
        Err(e) => return super::fail(&e),
    };
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if a.dry_run {
        println!("plan for {} (dry run: nothing is changed)", plan.esp);
        println!(
            "generations: {:?}; default entry: {}",
            plan.generations, plan.default
        );
        for c in &plan.copies {
            println!("copy   {} -> {} ({} bytes)", c.source, c.dest, c.size);
        }
        for d in &plan.deletes {
            println!("delete {d}");
        }
        println!(
            "space: needs {} bytes, {} free",
            plan.bytes_needed, plan.bytes_available
        );
        if plan.config_changed() {
            print!("{}", plan.config_diff());
        } else {
            println!("{}: unchanged", plan.config_path);
        }
        return ExitCode::SUCCESS;
    }
    match esp::apply(&plan, &mut |line| eprintln!("  {line}")) {
        Ok(r) => {
            println!(
                "installed generations {:?} (default: {}); copied {}, deleted {}, {}; {} bytes written",
                plan.generations,
                plan.default,
                r.copied,
                r.deleted,
                if r.config_written {
                    format!("{} updated", plan.config_path)
                } else {
                    format!("{} unchanged", plan.config_path)
                },
                r.bytes_written
            );
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(&e),
    }
}

fn status(a: StatusArgs) -> ExitCode {
    let st = match esp::status(&a.esp) {
        Ok(s) => s,
        Err(e) => return super::fail(&e),
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).expect("status serialises")
        );
    } else {
        println!(
            "ESP {}: {} bytes used, {} free of {}",
            st.esp, st.bytes_used, st.bytes_free, st.bytes_total
        );
        for i in &st.installs {
            println!("{}:", i.config);
            println!("  default: {}", i.default.as_deref().unwrap_or("-"));
            for e in &i.entries {
                println!("  entry: {e}");
            }
            let bad = i.files.iter().filter(|f| !f.ok).count();
            println!("  files: {} recorded, {} bad", i.files.len(), bad);
        }
        println!("bifrost's files: {} bytes", st.bytes_bifrost);
        for p in &st.problems {
            println!("problem: {p}");
        }
        if st.consistent() {
            println!("consistent: every file the menu needs is complete");
        }
    }
    if st.consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
