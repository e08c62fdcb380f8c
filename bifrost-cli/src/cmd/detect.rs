use super::Outcome;
use bifrost_core::hardware::detect::RootMachine;
use camino::Utf8PathBuf;
use std::process::ExitCode;

/// Reads DMI (sys/class/dmi/id), block devices (`lsblk --json -O`), mounts,
/// swaps and btrfs subvolumes, and prints host settings for the machine.
/// A Surface Pro 8 is recognised by its DMI product name. Whatever the
/// machine lacks that bifrost needs (a LUKS2 pool, NixOS subvolumes) is
/// proposed with bifrost's defaults and listed as a note on stderr.
#[derive(clap::Args)]
pub struct Args {
    /// Root of the machine to read: a recorded tree with sys/, proc/, etc/,
    /// lsblk.json (and btrfs-subvolume-list.txt) instead of this machine.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: Utf8PathBuf,
    /// Print only the host settings JSON (valid for `bifrost check`), for
    /// `bifrost detect --json > host.json`.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Outcome {
    let d = bifrost_core::hardware::detect(&RootMachine { root: a.root })?;
    for n in &d.notes {
        eprintln!("note: {n}");
    }
    if a.json {
        println!("{}", d.settings_json());
    } else {
        print!("{}", d.summary());
    }
    Ok(ExitCode::SUCCESS)
}
