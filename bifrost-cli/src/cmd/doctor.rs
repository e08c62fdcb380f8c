use bifrost_core::deploy::doctor::{self, Inputs, RealMachine};
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

pub fn run(args: Args) -> ExitCode {
    let inputs = Inputs {
        root: "/".into(),
        output_root: args.out,
        esp_mount_point: args.esp,
    };
    let report = doctor::run(&inputs, &RealMachine);
    if args.json {
        match doctor::render_json(&report) {
            Ok(s) => print!("{s}"),
            Err(e) => return super::fail(&e),
        }
    } else {
        print!("{}", doctor::render_text(&report));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
