use bifrost_core::deploy::vm::{self, VmSpec};
use bifrost_core::spec::defaults;
use camino::{Utf8Path, Utf8PathBuf};
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

pub fn run(args: Args) -> ExitCode {
    let result = match (&args.host, &args.image) {
        (Some(host), _) => run_host(&args, host),
        (None, Some(image)) => run_image(&args, image),
        (None, None) => unreachable!("clap requires IMAGE or --host"),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code.clamp(1, 255) as u8),
        Err(e) => super::fail(&e),
    }
}

fn run_host(args: &Args, host: &str) -> Result<i32, vm::VmError> {
    let runner = vm::find_runner(&args.out, host, args.flake.as_deref())?;
    eprintln!("bifrost vm: running {runner:?}");
    vm::run_runner(&runner, args.memory, args.cpus, args.headless)
}

fn run_image(args: &Args, image: &Utf8Path) -> Result<i32, vm::VmError> {
    let env: vm::Env = &vm::process_env;
    let root = Utf8Path::new("/");
    let format = vm::detect_format(image)?;
    let qemu = vm::find_qemu(env, root);
    let ovmf = vm::find_ovmf(env, root, qemu.as_ref().ok().map(|q| q.as_path()))?;
    let accel = vm::choose_accel(env, root)?;
    let abs = std::fs::canonicalize(image)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| image.to_owned());
    let name = image
        .file_stem()
        .filter(|s| !s.is_empty())
        .unwrap_or("bifrost-vm")
        .to_string();
    let mut spec = VmSpec {
        name,
        image: abs,
        format,
        snapshot: false,
        memory_mib: args.memory.unwrap_or(2048),
        cpus: args.cpus.unwrap_or(2),
        headless: args.headless,
        accel: accel.accel,
        ovmf_code: ovmf.code.clone(),
        // libvirt copies the template into its own per-domain store.
        ovmf_vars: ovmf.vars.clone(),
    };
    if args.libvirt_xml {
        print!("{}", vm::libvirt_xml(&spec));
        return Ok(0);
    }
    let qemu = qemu?;
    let dir = vm::vm_dir(&vm::state_dir(env)?, image);
    spec.ovmf_vars = vm::private_vars(&dir, &ovmf.vars)?;
    spec.snapshot = format != vm::Format::Iso && !vm::writable(image);
    eprintln!(
        "bifrost vm: {} ({:?}), {:?} ({}), NVRAM {}{}",
        spec.image,
        spec.format,
        spec.accel,
        accel.reason,
        spec.ovmf_vars,
        if spec.snapshot {
            ", read-only image: changes are discarded (snapshot=on)"
        } else {
            ""
        }
    );
    vm::run_qemu(&qemu, &vm::qemu_args(&spec))
}
