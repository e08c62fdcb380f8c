use bifrost_core::deploy::vm::launch::{self, Launched, Target, VmRequest};
use bifrost_core::spec::defaults;
use camino::Utf8PathBuf;
use std::process::ExitCode;

/// Shown by `--help` after the options (the one-line summary lives in main.rs).
const LONG_HELP: &str = r#"Run a disk image (QCOW2, raw or ISO; the format is read from the file) in
QEMU with UEFI firmware (OVMF), or run a host's `system.build.vm`.

Each image gets its own copy of the OVMF variables (its NVRAM), kept in
$BIFROST_STATE_DIR (default ~/.local/state/bifrost) under vm/. KVM is used
when /dev/kvm works, TCG otherwise; BIFROST_QEMU_ACCEL=kvm|tcg overrides
(set tcg under nested virtualisation, where an answering /dev/kvm can still
fail). BIFROST_QEMU, BIFROST_OVMF_CODE and BIFROST_OVMF_VARS name QEMU and
the firmware when they are not where NixOS or the distribution puts them."#;

#[derive(clap::Args)]
#[command(after_long_help = LONG_HELP)]
pub struct Args {
    /// The image to run (a read-only image, such as one in the Nix store, runs with snapshot=on).
    #[arg(required_unless_present = "host", conflicts_with = "host")]
    image: Option<Utf8PathBuf>,
    /// Run this host's `system.build.vm` runner instead: the one `bifrost build vm`
    /// placed at OUT/2_raw/nixos-vm, else `nix run FLAKE#nixosConfigurations.NAME.config.system.build.vm`.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Memory in MiB [default: 2048 for images; the host's own setting for --host].
    #[arg(long, value_name = "MB")]
    memory: Option<u32>,
    /// Virtual CPUs [default: 2 for images; the host's own setting for --host].
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// No window: the serial console and QEMU monitor on this terminal (Ctrl-A X quits).
    #[arg(long)]
    headless: bool,
    /// Print a libvirt domain definition (for `virsh define`, then virt-manager) instead of running.
    #[arg(long, conflicts_with = "host")]
    libvirt_xml: bool,
    /// Flake to run the host's VM from when no runner was placed (with --host).
    #[arg(long, value_name = "REF", requires = "host")]
    flake: Option<String>,
    /// Output root of `bifrost build` (with --host).
    #[arg(long, value_name = "DIR", default_value_t = defaults::output_root())]
    out: Utf8PathBuf,
}

pub fn run(args: Args) -> super::Outcome {
    let target = match (args.host, args.image) {
        (Some(name), _) => Target::Host {
            name,
            flake: args.flake,
            out: args.out,
        },
        (None, Some(image)) => Target::Image(image),
        (None, None) => unreachable!("clap requires IMAGE or --host"),
    };
    let req = VmRequest {
        target,
        memory_mib: args.memory,
        cpus: args.cpus,
        headless: args.headless,
        libvirt_xml: args.libvirt_xml,
    };
    match launch::launch_here(&req, &mut |line| eprintln!("bifrost vm: {line}"))? {
        Launched::LibvirtXml(xml) => {
            print!("{xml}");
            Ok(ExitCode::SUCCESS)
        }
        Launched::Exited(status) => Ok(ExitCode::from(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The help states the defaults `launch` applies; clap cannot take them
    /// from the constants, so this keeps the two equal.
    #[test]
    fn help_states_the_defaults_launch_applies() {
        #[derive(clap::Parser)]
        struct Vm {
            #[command(flatten)]
            args: Args,
        }
        let help = Vm::command().render_long_help().to_string();
        for (what, value) in [
            ("--memory", launch::DEFAULT_MEMORY_MIB),
            ("--cpus", launch::DEFAULT_CPUS),
        ] {
            assert!(
                help.contains(&format!("[default: {value} for images;")),
                "{what}: {help}"
            );
        }
    }
}
