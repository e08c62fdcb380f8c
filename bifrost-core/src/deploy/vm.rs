//! Running images in QEMU with UEFI firmware (OVMF), and describing them to
//! libvirt.
//!
//! - The image format comes from its magic bytes (QCOW2 `QFI\xfb`, ISO 9660
//!   `CD001` at 32769), never from the file name.
//! - QEMU and OVMF are found through `BIFROST_QEMU`, `BIFROST_OVMF_CODE`,
//!   `BIFROST_OVMF_VARS`, then the places NixOS and the common distributions
//!   put them.
//! - Every VM gets its own copy of the OVMF variable store (its "NVRAM"), in
//!   `$BIFROST_STATE_DIR` (default `$XDG_STATE_HOME/bifrost` or
//!   `~/.local/state/bifrost`) under `vm/<image name>-<hash of its path>/`, so
//!   boot entries a guest writes survive between runs and never leak into the
//!   firmware template or another VM.
//! - KVM is used when `/dev/kvm` opens read-write and answers
//!   `KVM_GET_API_VERSION`, TCG otherwise; `BIFROST_QEMU_ACCEL` (`kvm`, `tcg`)
//!   overrides. Under nested virtualisation an answering `/dev/kvm` can still
//!   fail at the guest's first instruction ("KVM internal error"): set
//!   `BIFROST_QEMU_ACCEL=tcg` there.
//!
//! Building the command line and the libvirt XML is pure; finding files and
//! starting QEMU are the effects.

pub mod launch;

use crate::fsutil::io_err;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Read;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("QEMU not found (looked for {looked}); install it: NixOS `environment.systemPackages = [ pkgs.qemu ]` (or `nix shell nixpkgs#qemu`), Debian/Ubuntu `apt install qemu-system-x86`, Fedora `dnf install qemu-system-x86`, Arch `pacman -S qemu-desktop`; or set BIFROST_QEMU")]
    QemuMissing { looked: String },
    #[error("OVMF (UEFI firmware for QEMU) not found (looked in {looked}); install it: NixOS `virtualisation.libvirtd.enable = true` (gives /run/libvirt/nix-ovmf) or set BIFROST_OVMF_CODE/BIFROST_OVMF_VARS to ${{pkgs.OVMF.fd}}/FV/OVMF_CODE.fd and OVMF_VARS.fd, Debian/Ubuntu `apt install ovmf`, Fedora `dnf install edk2-ovmf`, Arch `pacman -S edk2-ovmf`")]
    OvmfMissing { looked: String },
    #[error("{var}={value} does not exist; point it at an existing file or unset it")]
    BadEnv { var: &'static str, value: String },
    #[error("BIFROST_QEMU_ACCEL={0:?} is not understood; use `kvm` or `tcg`")]
    BadAccel(String),
    #[error("no VM runner for host {host}: {looked} is missing and no flake was given; run `bifrost build vm --host {host}` first, or pass --flake")]
    NoRunner { host: String, looked: String },
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error("no home folder to keep VM state in; set BIFROST_STATE_DIR")]
    NoStateDir,
}

/// Environment lookups, injected so tests need not touch the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for production.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Disk image formats QEMU is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Qcow2,
    Raw,
    /// An ISO 9660 image (attached as a CD-ROM).
    Iso,
}

impl Format {
    /// QEMU's and libvirt's name for the format.
    pub fn driver(self) -> &'static str {
        match self {
            Format::Qcow2 => "qcow2",
            Format::Raw | Format::Iso => "raw",
        }
    }
}

/// Detect the format of `image` by its magic bytes.
pub fn detect_format(image: &Utf8Path) -> Result<Format, VmError> {
    let mut f = std::fs::File::open(image).map_err(io_err(image, "open image"))?;
    let mut head = vec![0u8; 32774];
    let mut n = 0;
    while n < head.len() {
        match f
            .read(&mut head[n..])
            .map_err(io_err(image, "read image"))?
        {
            0 => break,
            k => n += k,
        }
    }
    Ok(format_of(&head[..n]))
}

/// The format of an image whose first bytes are `head`.
pub fn format_of(head: &[u8]) -> Format {
    if head.starts_with(b"QFI\xfb") {
        Format::Qcow2
    } else if head.len() >= 32774 && &head[32769..32774] == b"CD001" {
        Format::Iso
    } else {
        Format::Raw
    }
}

/// UEFI firmware: read-only code and the template of the variable store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ovmf {
    pub code: Utf8PathBuf,
    pub vars: Utf8PathBuf,
}

/// Where OVMF lives, by distribution (code, vars), relative to the root.
pub const OVMF_CANDIDATES: &[(&str, &str)] = &[
    // NixOS with virtualisation.libvirtd.enable
    (
        "run/libvirt/nix-ovmf/OVMF_CODE.fd",
        "run/libvirt/nix-ovmf/OVMF_VARS.fd",
    ),
    // Debian 12+, Ubuntu 22.04+
    (
        "usr/share/OVMF/OVMF_CODE_4M.fd",
        "usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    // older Debian and Ubuntu
    ("usr/share/OVMF/OVMF_CODE.fd", "usr/share/OVMF/OVMF_VARS.fd"),
    // Fedora
    (
        "usr/share/edk2/ovmf/OVMF_CODE.fd",
        "usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    // Arch
    (
        "usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
    (
        "usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
        "usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
    ),
    // openSUSE
    (
        "usr/share/qemu/ovmf-x86_64-code.bin",
        "usr/share/qemu/ovmf-x86_64-vars.bin",
    ),
    // QEMU's own build of edk2
    (
        "usr/share/qemu/edk2-x86_64-code.fd",
        "usr/share/qemu/edk2-i386-vars.fd",
    ),
];

/// Find OVMF: the environment, then QEMU's own share folder (how nixpkgs'
/// qemu ships it), then [`OVMF_CANDIDATES`] under `root`.
pub fn find_ovmf(env: Env, root: &Utf8Path, qemu: Option<&Utf8Path>) -> Result<Ovmf, VmError> {
    let code = env("BIFROST_OVMF_CODE");
    let vars = env("BIFROST_OVMF_VARS");
    for (var, value) in [("BIFROST_OVMF_CODE", &code), ("BIFROST_OVMF_VARS", &vars)] {
        if let Some(v) = value {
            if !Utf8Path::new(v).exists() {
                return Err(VmError::BadEnv {
                    var,
                    value: v.clone(),
                });
            }
        }
    }
    let mut pairs: Vec<(Utf8PathBuf, Utf8PathBuf)> = Vec::new();
    if let Some(q) = qemu {
        // <prefix>/bin/qemu-system-x86_64 -> <prefix>/share/qemu/…
        let real = std::fs::canonicalize(q)
            .ok()
            .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
            .unwrap_or_else(|| q.to_owned());
        if let Some(prefix) = real.parent().and_then(Utf8Path::parent) {
            let share = prefix.join("share/qemu");
            pairs.push((
                share.join("edk2-x86_64-code.fd"),
                share.join("edk2-i386-vars.fd"),
            ));
        }
    }
    pairs.extend(
        OVMF_CANDIDATES
            .iter()
            .map(|(c, v)| (root.join(c), root.join(v))),
    );
    let found = pairs
        .iter()
        .find(|(c, v)| (code.is_some() || c.exists()) && (vars.is_some() || v.exists()));
    match found {
        Some((c, v)) => Ok(Ovmf {
            code: code.map(Into::into).unwrap_or_else(|| c.clone()),
            vars: vars.map(Into::into).unwrap_or_else(|| v.clone()),
        }),
        None => Err(VmError::OvmfMissing {
            looked: pairs
                .iter()
                .map(|(c, _)| c.parent().map(|p| p.to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Find QEMU: `BIFROST_QEMU`, then `qemu-system-x86_64` on `PATH`, then
/// Fedora/RHEL's `qemu-kvm`.
pub fn find_qemu(env: Env, root: &Utf8Path) -> Result<Utf8PathBuf, VmError> {
    if let Some(q) = env("BIFROST_QEMU") {
        if !Utf8Path::new(&q).exists() {
            return Err(VmError::BadEnv {
                var: "BIFROST_QEMU",
                value: q,
            });
        }
        return Ok(q.into());
    }
    let path = env("PATH").unwrap_or_default();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Utf8Path::new(dir).join("qemu-system-x86_64");
        if p.is_file() {
            return Ok(p);
        }
    }
    let kvm = root.join("usr/libexec/qemu-kvm");
    if kvm.is_file() {
        return Ok(kvm);
    }
    Err(VmError::QemuMissing {
        looked: "BIFROST_QEMU, qemu-system-x86_64 on PATH, /usr/libexec/qemu-kvm".into(),
    })
}

/// CPU virtualisation for the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

/// Why an accelerator was picked, for `doctor` and messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccelChoice {
    pub accel: Accel,
    pub reason: String,
}

/// Pick the accelerator: `BIFROST_QEMU_ACCEL`, else KVM when `<root>/dev/kvm`
/// is usable, else TCG.
pub fn choose_accel(env: Env, root: &Utf8Path) -> Result<AccelChoice, VmError> {
    if let Some(a) = env("BIFROST_QEMU_ACCEL") {
        let accel = match a.as_str() {
            "kvm" => Accel::Kvm,
            "tcg" => Accel::Tcg,
            _ => return Err(VmError::BadAccel(a)),
        };
        return Ok(AccelChoice {
            accel,
            reason: format!("BIFROST_QEMU_ACCEL={a}"),
        });
    }
    let dev = root.join("dev/kvm");
    Ok(match kvm_usable(&dev) {
        Ok(()) => AccelChoice {
            accel: Accel::Kvm,
            reason: format!("{dev} answers KVM_GET_API_VERSION"),
        },
        Err(why) => AccelChoice {
            accel: Accel::Tcg,
            reason: format!("{dev}: {why}; using TCG (slow software emulation)"),
        },
    })
}

/// `KVM_GET_API_VERSION` is `_IO(0xAE, 0x00)`; the stable API answers 12.
const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;

/// Whether `dev` is a KVM device we can use: opens read-write and speaks API 12.
pub fn kvm_usable(dev: &Utf8Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| e.to_string())?;
    // SAFETY: an argument-less ioctl on a descriptor we own.
    let v = unsafe { libc::ioctl(f.as_raw_fd(), KVM_GET_API_VERSION as _, 0) };
    if v == 12 {
        Ok(())
    } else if v < 0 {
        Err(format!(
            "KVM_GET_API_VERSION failed: {}",
            std::io::Error::last_os_error()
        ))
    } else {
        Err(format!("unexpected KVM API version {v}"))
    }
}

/// Everything needed to start (or describe) one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmSpec {
    /// Domain name (libvirt) and window title.
    pub name: String,
    pub image: Utf8PathBuf,
    pub format: Format,
    /// Attach the disk with `snapshot=on` (the image is read-only, such as in the Nix store).
    pub snapshot: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    pub headless: bool,
    pub accel: Accel,
    pub ovmf_code: Utf8PathBuf,
    /// The VM's own variable store (see [`private_vars`]).
    pub ovmf_vars: Utf8PathBuf,
}

/// QEMU's arguments for `spec` (pure).
pub fn qemu_args(spec: &VmSpec) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    // Every value below comes from a path or name the user chose: escaped.
    use super::qemuopt::{path as qpath, value as qvalue};
    push(&[
        "-name",
        &format!("guest={}", qvalue(&spec.name)),
        "-machine",
        "q35",
    ]);
    match spec.accel {
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => push(&["-accel", "tcg", "-cpu", "max"]),
    }
    push(&[
        "-m",
        &spec.memory_mib.to_string(),
        "-smp",
        &spec.cpus.to_string(),
    ]);
    push(&[
        "-drive",
        &format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            qpath(&spec.ovmf_code)
        ),
        "-drive",
        &format!(
            "if=pflash,format=raw,unit=1,file={}",
            qpath(&spec.ovmf_vars)
        ),
    ]);
    let snap = if spec.snapshot { ",snapshot=on" } else { "" };
    match spec.format {
        Format::Iso => push(&[
            "-drive",
            &format!("file={},media=cdrom,readonly=on,if=ide", qpath(&spec.image)),
        ]),
        f => push(&[
            "-drive",
            &format!(
                "file={},format={},if=virtio{snap}",
                qpath(&spec.image),
                f.driver()
            ),
        ]),
    }
    push(&[
        "-nic",
        "user,model=virtio-net-pci",
        "-device",
        "virtio-rng-pci",
    ]);
    if spec.headless {
        // Serial console and QEMU monitor multiplexed on the terminal (Ctrl-A X quits).
        push(&["-nographic"]);
    } else {
        push(&["-device", "virtio-vga", "-serial", "mon:stdio"]);
    }
    a
}

/// A libvirt domain for virt-manager (`virsh define FILE`), pure.
pub fn libvirt_xml(spec: &VmSpec) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\'', "&apos;")
            .replace('"', "&quot;")
    };
    let domain_type = match spec.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "qemu",
    };
    let cpu = match spec.accel {
        Accel::Kvm => "  <cpu mode='host-passthrough'/>\n",
        Accel::Tcg => "",
    };
    let disk = match spec.format {
        Format::Iso => format!(
            "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      <target dev='sda' bus='sata'/>\n      <readonly/>\n    </disk>\n",
            esc(spec.image.as_str())
        ),
        f => format!(
            "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{}'/>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n",
            f.driver(),
            esc(spec.image.as_str())
        ),
    };
    format!(
        "<domain type='{domain_type}'>
  <name>{name}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>{cpus}</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash'>{code}</loader>
    <nvram template='{vars}'/>
    <boot dev='hd'/>
    <boot dev='cdrom'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
{cpu}  <devices>
{disk}    <interface type='user'>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <graphics type='spice' autoport='yes'/>
    <video>
      <model type='virtio'/>
    </video>
  </devices>
</domain>
",
        name = esc(&spec.name),
        mem = spec.memory_mib,
        cpus = spec.cpus,
        code = esc(spec.ovmf_code.as_str()),
        vars = esc(spec.ovmf_vars.as_str()),
    )
}

/// The state folder: `BIFROST_STATE_DIR`, `$XDG_STATE_HOME/bifrost`, `~/.local/state/bifrost`.
pub fn state_dir(env: Env) -> Result<Utf8PathBuf, VmError> {
    if let Some(d) = env("BIFROST_STATE_DIR") {
        return Ok(d.into());
    }
    if let Some(d) = env("XDG_STATE_HOME") {
        return Ok(Utf8PathBuf::from(d).join("bifrost"));
    }
    env("HOME")
        .map(|h| Utf8PathBuf::from(h).join(".local/state/bifrost"))
        .ok_or(VmError::NoStateDir)
}

/// The VM's own folder for `image` under `state`: the image's name plus a
/// hash of its absolute path, so two images of the same name do not share
/// NVRAM.
pub fn vm_dir(state: &Utf8Path, image: &Utf8Path) -> Utf8PathBuf {
    let abs = std::fs::canonicalize(image)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| image.to_owned());
    let hash = hex::encode(&Sha256::digest(abs.as_str().as_bytes())[..4]);
    let stem = image.file_name().unwrap_or("image");
    state.join("vm").join(format!("{stem}-{hash}"))
}

/// The VM's private OVMF variable store in `dir`, copied from the template
/// on first use (atomically, so a crash never leaves half a store).
pub fn private_vars(dir: &Utf8Path, template: &Utf8Path) -> Result<Utf8PathBuf, VmError> {
    let vars = dir.join("OVMF_VARS.fd");
    if !vars.exists() {
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create state folder"))?;
        let bytes = std::fs::read(template).map_err(io_err(template, "read OVMF vars template"))?;
        crate::fsutil::write_atomic(&vars, &bytes).map_err(|e| {
            VmError::Io(crate::fsutil::IoError::new(
                vars.to_string(),
                "write OVMF vars",
                std::io::Error::other(e.to_string()),
            ))
        })?;
    }
    Ok(vars)
}

/// Whether we may write to `image` (otherwise QEMU gets `snapshot=on`).
pub fn writable(image: &Utf8Path) -> bool {
    let Ok(c) = std::ffi::CString::new(image.as_str()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Run QEMU with `args`, the terminal attached; returns its exit code.
pub fn run_qemu(qemu: &Utf8Path, args: &[String]) -> Result<i32, VmError> {
    run(qemu.as_str(), args, &[])
}

fn run(program: &str, args: &[String], env: &[(&str, String)]) -> Result<i32, VmError> {
    let mut cmd = crate::process::Cmd::new(program, args).interactive();
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let out = cmd.output()?;
    Ok(out.code.unwrap_or(1))
}

/// How to run a host's `system.build.vm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Runner {
    /// The `run-<host>-vm` script of a runner placed by `bifrost build vm`.
    Placed(Utf8PathBuf),
    /// `nix run <flake>#nixosConfigurations.<host>.config.system.build.vm`.
    Nix { flake: String, host: String },
}

/// Where `bifrost build vm` leaves the runner: a GC-rooted link to the
/// `system.build.vm` output at `<out>/2_raw/nixos-vm`.
pub fn placed_runner_link(out: &Utf8Path) -> Utf8PathBuf {
    out.join("2_raw/nixos-vm")
}

/// The runner for `host`: the placed one when it exists (`bin/run-<host>-vm`,
/// else the only `bin/run-*-vm`), else `nix run` on `flake` when given.
pub fn find_runner(out: &Utf8Path, host: &str, flake: Option<&str>) -> Result<Runner, VmError> {
    let bin = placed_runner_link(out).join("bin");
    let exact = bin.join(format!("run-{host}-vm"));
    if exact.is_file() {
        return Ok(Runner::Placed(exact));
    }
    if let Ok(rd) = std::fs::read_dir(&bin) {
        let mut scripts: Vec<Utf8PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with("run-") && n.ends_with("-vm"))
            .map(|n| bin.join(n))
            .collect();
        scripts.sort();
        if scripts.len() == 1 {
            return Ok(Runner::Placed(scripts.remove(0)));
        }
    }
    match flake {
        Some(f) => Ok(Runner::Nix {
            flake: f.to_string(),
            host: host.to_string(),
        }),
        None => Err(VmError::NoRunner {
            host: host.into(),
            looked: exact.to_string(),
        }),
    }
}

/// The runner's command line and environment. NixOS runners honour
/// `QEMU_OPTS` (appended to QEMU's arguments; a later `-m`/`-smp` wins) and
/// `QEMU_KERNEL_PARAMS`.
pub fn runner_command(
    runner: &Runner,
    memory_mib: Option<u32>,
    cpus: Option<u32>,
    headless: bool,
) -> (String, Vec<String>, Vec<(&'static str, String)>) {
    let mut opts: Vec<String> = Vec::new();
    if let Some(m) = memory_mib {
        opts.push(format!("-m {m}"));
    }
    if let Some(c) = cpus {
        opts.push(format!("-smp {c}"));
    }
    let mut env = Vec::new();
    if headless {
        opts.push("-nographic".into());
        env.push(("QEMU_KERNEL_PARAMS", "console=ttyS0".to_string()));
    }
    if !opts.is_empty() {
        env.push(("QEMU_OPTS", opts.join(" ")));
    }
    match runner {
        Runner::Placed(p) => (p.to_string(), Vec::new(), env),
        Runner::Nix { flake, host } => (
            "nix".into(),
            vec![
                "run".into(),
                format!("{flake}#nixosConfigurations.{host}.config.system.build.vm"),
            ],
            env,
        ),
    }
}

/// Run a host's VM runner; returns its exit code.
pub fn run_runner(
    runner: &Runner,
    memory_mib: Option<u32>,
    cpus: Option<u32>,
    headless: bool,
) -> Result<i32, VmError> {
    let (program, args, env) = runner_command(runner, memory_mib, cpus, headless);
    run(&program, &args, &env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: Format, accel: Accel, headless: bool) -> VmSpec {
        VmSpec {
            name: "nixos".into(),
            image: "/images/2_raw/nixos.qcow2".into(),
            format,
            snapshot: false,
            memory_mib: 2048,
            cpus: 2,
            headless,
            accel,
            ovmf_code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            ovmf_vars: "/state/bifrost/vm/nixos.qcow2-0a1b2c3d/OVMF_VARS.fd".into(),
        }
    }

    #[test]
    fn formats_come_from_magic() {
        assert_eq!(format_of(b"QFI\xfb\0\0\0\x03"), Format::Qcow2);
        assert_eq!(format_of(&[0u8; 512]), Format::Raw);
        let mut iso = vec![0u8; 40000];
        iso[32769..32774].copy_from_slice(b"CD001");
        assert_eq!(format_of(&iso), Format::Iso);
    }

    #[test]
    fn qemu_command_lines() {
        insta::assert_snapshot!(qemu_args(&spec(Format::Qcow2, Accel::Tcg, true)).join(" "));
        let mut raw = spec(Format::Raw, Accel::Kvm, false);
        raw.snapshot = true;
        insta::assert_snapshot!(qemu_args(&raw).join(" "));
    }

    /// Issue 13 item 10: a crafted folder name must not add QEMU options.
    #[test]
    fn crafted_names_stay_one_value() {
        use crate::deploy::qemuopt::parse;
        let evil = "/home/u/x,file=/home/u/other.img,format=raw,y";
        for format in [Format::Raw, Format::Iso] {
            let mut s = spec(format, Accel::Tcg, true);
            s.name = "vm,debug-threads=on".into();
            s.image = format!("{evil}/nixos.raw").into();
            s.ovmf_vars = format!("{evil}/OVMF_VARS.fd").into();
            s.ovmf_code = "rel,x=1/code.fd".into();
            let a = qemu_args(&s);
            let after = |flag: &str| -> Vec<Vec<(String, String)>> {
                a.windows(2)
                    .filter(|w| w[0] == flag)
                    .map(|w| parse(&w[1]))
                    .collect()
            };
            assert_eq!(
                after("-name"),
                vec![vec![("guest".to_string(), s.name.clone())]]
            );
            let drives = after("-drive");
            let files: Vec<&str> = drives
                .iter()
                .flat_map(|d| {
                    d.iter()
                        .filter(|(k, _)| k == "file")
                        .map(|(_, v)| v.as_str())
                })
                .collect();
            assert_eq!(
                files,
                [
                    "./rel,x=1/code.fd".to_string(),
                    s.ovmf_vars.to_string(),
                    s.image.to_string()
                ]
            );
            // Each drive has each key once, and only the keys bifrost writes.
            for d in &drives {
                let mut keys: Vec<&str> = d.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort();
                let n = keys.len();
                keys.dedup();
                assert_eq!(keys.len(), n, "{d:?}");
                assert!(
                    keys.iter().all(|k| [
                        "file", "format", "if", "unit", "readonly", "media", "snapshot"
                    ]
                    .contains(k)),
                    "{d:?}"
                );
            }
        }
    }

    #[test]
    fn libvirt_domain() {
        insta::assert_snapshot!(libvirt_xml(&spec(Format::Qcow2, Accel::Kvm, false)));
    }

    #[test]
    fn accel_override_and_fallback() {
        let root = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(root.path()).unwrap();
        let tcg = |n: &str| (n == "BIFROST_QEMU_ACCEL").then(|| "tcg".to_string());
        assert_eq!(choose_accel(&tcg, root).unwrap().accel, Accel::Tcg);
        let bad = |n: &str| (n == "BIFROST_QEMU_ACCEL").then(|| "hvf".to_string());
        assert!(choose_accel(&bad, root).is_err());
        // No /dev/kvm under the fake root: TCG, with the reason.
        let c = choose_accel(&|_| None, root).unwrap();
        assert_eq!(c.accel, Accel::Tcg);
        assert!(c.reason.contains("dev/kvm"), "{}", c.reason);
    }

    #[test]
    fn ovmf_is_found_per_distribution_or_named_when_missing() {
        let d = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(d.path()).unwrap();
        let e = find_ovmf(&|_| None, root, None).unwrap_err().to_string();
        assert!(
            e.contains("apt install ovmf") && e.contains("edk2-ovmf"),
            "{e}"
        );
        let dir = root.join("usr/share/edk2/ovmf");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("OVMF_CODE.fd"), b"c").unwrap();
        std::fs::write(dir.join("OVMF_VARS.fd"), b"v").unwrap();
        let o = find_ovmf(&|_| None, root, None).unwrap();
        assert_eq!(o.code, root.join("usr/share/edk2/ovmf/OVMF_CODE.fd"));
        let bad = |n: &str| (n == "BIFROST_OVMF_CODE").then(|| "/nonexistent/code.fd".to_string());
        assert!(matches!(
            find_ovmf(&bad, root, None),
            Err(VmError::BadEnv { .. })
        ));
    }

    #[test]
    fn private_vars_are_per_image_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(d.path()).unwrap();
        let tpl = root.join("tpl.fd");
        std::fs::write(&tpl, b"template").unwrap();
        let a = vm_dir(root, &root.join("a/nixos.qcow2"));
        let b = vm_dir(root, &root.join("b/nixos.qcow2"));
        assert_ne!(a, b);
        let v = private_vars(&a, &tpl).unwrap();
        std::fs::write(&v, b"guest wrote this").unwrap();
        assert_eq!(private_vars(&a, &tpl).unwrap(), v);
        assert_eq!(std::fs::read(&v).unwrap(), b"guest wrote this");
        assert_eq!(std::fs::read(&tpl).unwrap(), b"template");
    }

    #[test]
    fn runners_placed_or_nix_run() {
        let d = tempfile::tempdir().unwrap();
        let out = Utf8Path::from_path(d.path()).unwrap();
        assert!(matches!(
            find_runner(out, "pro8", None),
            Err(VmError::NoRunner { .. })
        ));
        let r = find_runner(out, "pro8", Some(".")).unwrap();
        let (prog, args, env) = runner_command(&r, Some(4096), None, true);
        assert_eq!(prog, "nix");
        assert_eq!(args[1], ".#nixosConfigurations.pro8.config.system.build.vm");
        assert!(env.contains(&("QEMU_OPTS", "-m 4096 -nographic".into())));
        let bin = placed_runner_link(out).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("run-pro8-vm"), "#!/bin/sh\n").unwrap();
        assert_eq!(
            find_runner(out, "pro8", Some(".")).unwrap(),
            Runner::Placed(bin.join("run-pro8-vm"))
        );
    }
}
