use super::Outcome;
use camino::Utf8PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write the hardware module (`hardware-configuration.nix` style) of a host.
    ///
    /// From the host settings: the LUKS2 device (boot.initrd.luks.devices,
    /// allowDiscards), one btrfs fileSystems entry per mounted subvolume
    /// (subvol= plus its mount options), the ESP, swap, the initrd kernel
    /// modules of the hardware profile and the kernel choice. The file holds
    /// these settings as Nix values and applies to them the function that
    /// bifrost's NixOS module applies to `bifrost.settings`, so both configure
    /// the same. The output is deterministic; with -o it replaces OUT
    /// atomically (never half written).
    Hardware(HardwareArgs),
}

#[derive(clap::Args)]
pub struct HardwareArgs {
    /// Host settings file (JSON), such as hosts/surface-pro-8/host.json.
    file: Utf8PathBuf,
    /// Write the module here instead of printing it.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    out: Option<Utf8PathBuf>,
}

pub fn run(c: Command) -> Outcome {
    match c {
        Command::Hardware(a) => hardware(a),
    }
}

fn hardware(a: HardwareArgs) -> Outcome {
    let text = bifrost_core::hardware::render_host_file(&a.file)?;
    match a.out {
        None => print!("{text}"),
        Some(out) => {
            bifrost_core::fsutil::write_atomic(&out, text.as_bytes())?;
            eprintln!("wrote {out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
