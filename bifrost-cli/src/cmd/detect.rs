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

pub fn run(a: Args) -> ExitCode {
    let probe = RootMachine { root: a.root };
    let d = match bifrost_core::hardware::detect(&probe) {
        Ok(d) => d,
        Err(e) => return super::fail(&e),
    };
    let json = serde_json::to_string_pretty(&d.settings).expect("settings serialize");
    for n in &d.notes {
        eprintln!("note: {n}");
    }
    if a.json {
        println!("{json}");
    } else {
        let profile = bifrost_core::hardware::Profile::of(d.settings.hardware.profile);
        println!(
            "machine:  {} {}",
            or_unknown(&d.vendor),
            or_unknown(&d.product)
        );
        println!("profile:  {} ({})", profile.name, profile_key(&d.settings));
        println!(
            "storage:  LUKS {} at {}, {} subvolume(s)",
            d.settings.storage.luks.name,
            d.settings.storage.luks.device,
            d.settings.storage.subvolumes.len()
        );
        println!("host settings:\n{json}");
    }
    ExitCode::SUCCESS
}

fn profile_key(s: &bifrost_core::spec::HostSettings) -> String {
    serde_json::to_value(s.hardware.profile)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "(unknown)"
    } else {
        s
    }
}
