use bifrost_core::deploy::doctor;
use bifrost_core::spec::defaults;
use camino::Utf8PathBuf;
use std::process::ExitCode;

/// Shown by `--help` after the options (the one-line summary lives in main.rs).
const LONG_HELP: &str = r#"Check that this machine has what bifrost's jobs need: Nix 2.4+ with
flakes, free space in the output root, KVM, QEMU and OVMF for `bifrost vm`,
the EFI system partition mounted with room to spare, rEFInd
registered (and first) in the firmware's boot entries, and, when rEFInd's
menu chainloads Kinoite, Fedora's boot loader (EFI/fedora/shimx64.efi) on
the ESP.

Every problem comes with how to fix it. Exits 1 when a required check
(Nix, flakes, output space) fails; the others only warn."#;

#[derive(clap::Args)]
#[command(after_long_help = LONG_HELP)]
pub struct Args {
    /// Print the report as JSON (`{"ok": bool, "checks": [{id, status, required, detail, fix}]}`).
    #[arg(long)]
    json: bool,
    /// Output root whose free space matters (`bifrost.output.root`).
    #[arg(long, value_name = "DIR", default_value_t = defaults::output_root())]
    out: Utf8PathBuf,
    /// Where the EFI system partition should be mounted (`bifrost.boot.esp.mountPoint`).
    #[arg(long, value_name = "DIR", default_value_t = defaults::esp_mount_point())]
    esp: Utf8PathBuf,
}

pub fn run(args: Args) -> super::Outcome {
    let report = doctor::check_this_machine(args.out, args.esp);
    if args.json {
        print!("{}", doctor::render_json(&report)?);
    } else {
        print!("{}", doctor::render_text(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
