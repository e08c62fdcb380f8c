//! `bifrost vm`: run an image (or describe it to libvirt), or a host's
//! `system.build.vm` runner. Finds what the image needs, decides the VM's
//! settings, says what it starts, and hands back QEMU's exit status.

use super::{
    choose_accel, detect_format, find_ovmf, find_qemu, find_runner, libvirt_xml, private_vars,
    process_env, qemu_args, run_qemu, run_runner, state_dir, vm_dir, writable, AccelChoice, Env,
    Format, Ovmf, VmError, VmSpec,
};
use camino::{Utf8Path, Utf8PathBuf};

/// Memory of an image's VM unless `--memory` says otherwise (a host's runner
/// keeps the host's own setting).
pub const DEFAULT_MEMORY_MIB: u32 = 2048;
/// Virtual CPUs of an image's VM unless `--cpus` says otherwise.
pub const DEFAULT_CPUS: u32 = 2;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A disk image (QCOW2, raw or ISO).
    Image(Utf8PathBuf),
    /// A host's VM runner: the one `bifrost build vm` placed under `out`,
    /// else `nix run` on `flake`.
    Host {
        name: String,
        flake: Option<String>,
        out: Utf8PathBuf,
    },
}

/// The flags of `bifrost vm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRequest {
    pub target: Target,
    pub memory_mib: Option<u32>,
    pub cpus: Option<u32>,
    pub headless: bool,
    /// Describe the image's VM to libvirt instead of running it.
    pub libvirt_xml: bool,
}

/// How `bifrost vm` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launched {
    /// The libvirt domain definition to print (nothing ran).
    LibvirtXml(String),
    /// The VM ran and exited with this status (QEMU's or the runner's).
    Exited(u8),
}

/// [`launch`] on this machine: the process environment, files under `/`.
pub fn launch_here(req: &VmRequest, say: &mut dyn FnMut(&str)) -> Result<Launched, VmError> {
    launch(req, &process_env, Utf8Path::new("/"), say)
}

/// Run what `req` asks for; `say` hears what is started, before it starts.
pub fn launch(
    req: &VmRequest,
    env: Env,
    root: &Utf8Path,
    say: &mut dyn FnMut(&str),
) -> Result<Launched, VmError> {
    match &req.target {
        Target::Host { name, flake, out } => {
            let runner = find_runner(out, name, flake.as_deref())?;
            say(&format!("running {runner:?}"));
            let code = run_runner(&runner, req.memory_mib, req.cpus, req.headless)?;
            Ok(Launched::Exited(exit_status(code)))
        }
        Target::Image(image) => launch_image(req, image, env, root, say),
    }
}

fn launch_image(
    req: &VmRequest,
    image: &Utf8Path,
    env: Env,
    root: &Utf8Path,
    say: &mut dyn FnMut(&str),
) -> Result<Launched, VmError> {
    let format = detect_format(image)?;
    let qemu = find_qemu(env, root);
    let ovmf = find_ovmf(env, root, qemu.as_ref().ok().map(|q| q.as_path()))?;
    let accel = choose_accel(env, root)?;
    let mut spec = image_spec(req, image, format, &accel, &ovmf);
    if req.libvirt_xml {
        return Ok(Launched::LibvirtXml(libvirt_xml(&spec)));
    }
    let qemu = qemu?;
    let dir = vm_dir(&state_dir(env)?, image);
    spec.ovmf_vars = private_vars(&dir, &ovmf.vars)?;
    spec.snapshot = format != Format::Iso && !writable(image);
    say(&describe(&spec, &accel));
    Ok(Launched::Exited(exit_status(run_qemu(
        &qemu,
        &qemu_args(&spec),
    )?)))
}

/// The VM of `image`: named for its file, the flags or the defaults for its
/// size, the firmware's own variable template (what libvirt copies into its
/// per-domain store; a run of QEMU swaps in the VM's private copy).
pub fn image_spec(
    req: &VmRequest,
    image: &Utf8Path,
    format: Format,
    accel: &AccelChoice,
    ovmf: &Ovmf,
) -> VmSpec {
    let abs = std::fs::canonicalize(image)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| image.to_owned());
    let name = image
        .file_stem()
        .filter(|s| !s.is_empty())
        .unwrap_or("bifrost-vm")
        .to_string();
    VmSpec {
        name,
        image: abs,
        format,
        snapshot: false,
        memory_mib: req.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
        cpus: req.cpus.unwrap_or(DEFAULT_CPUS),
        headless: req.headless,
        accel: accel.accel,
        ovmf_code: ovmf.code.clone(),
        ovmf_vars: ovmf.vars.clone(),
    }
}

/// The line said before QEMU starts: image, accelerator and why, NVRAM.
pub fn describe(spec: &VmSpec, accel: &AccelChoice) -> String {
    format!(
        "{} ({:?}), {:?} ({}), NVRAM {}{}",
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
    )
}

/// bifrost's exit status for a VM that exited with `code`: 0 stays 0, any
/// other code (negative, or beyond 255) is still a failure.
pub fn exit_status(code: i32) -> u8 {
    if code == 0 {
        0
    } else {
        code.clamp(1, 255) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::vm::Accel;
    use crate::fsutil::test_dir as tmp;
    use std::collections::HashMap;

    fn request(target: Target) -> VmRequest {
        VmRequest {
            target,
            memory_mib: None,
            cpus: None,
            headless: false,
            libvirt_xml: true,
        }
    }

    #[test]
    fn libvirt_xml_needs_no_qemu_and_takes_the_defaults() {
        let (_d, dir) = tmp();
        let image = dir.join("disk.raw");
        std::fs::write(&image, vec![0u8; 4096]).unwrap();
        for f in ["CODE.fd", "VARS.fd"] {
            std::fs::write(dir.join(f), b"fw").unwrap();
        }
        let vars: HashMap<&str, String> = HashMap::from([
            ("BIFROST_OVMF_CODE", dir.join("CODE.fd").to_string()),
            ("BIFROST_OVMF_VARS", dir.join("VARS.fd").to_string()),
            ("BIFROST_QEMU_ACCEL", "tcg".into()),
            ("PATH", dir.join("empty").to_string()),
        ]);
        let env = |k: &str| vars.get(k).cloned();
        let mut said = Vec::new();
        let out = launch(
            &request(Target::Image(image.clone())),
            &env,
            &dir,
            &mut |s| said.push(s.to_owned()),
        )
        .unwrap();
        let Launched::LibvirtXml(xml) = out else {
            panic!("{out:?}")
        };
        assert!(xml.contains("<name>disk</name>"), "{xml}");
        assert!(xml.contains("2048"), "{xml}");
        assert!(xml.contains(dir.join("VARS.fd").as_str()), "{xml}");
        assert!(said.is_empty());
    }

    #[test]
    fn a_host_without_a_runner_or_flake_is_refused() {
        let (_d, dir) = tmp();
        let env = |_: &str| None;
        let target = Target::Host {
            name: "h".into(),
            flake: None,
            out: dir.clone(),
        };
        let e = launch(&request(target), &env, &dir, &mut |_| {}).unwrap_err();
        assert!(matches!(e, VmError::NoRunner { .. }), "{e}");
    }

    #[test]
    fn spec_names_sizes_and_describes_the_vm() {
        let req = VmRequest {
            memory_mib: Some(512),
            ..request(Target::Image("/x/nixos.qcow2".into()))
        };
        let accel = AccelChoice {
            accel: Accel::Tcg,
            reason: "BIFROST_QEMU_ACCEL=tcg".into(),
        };
        let ovmf = Ovmf {
            code: "/fw/CODE.fd".into(),
            vars: "/fw/VARS.fd".into(),
        };
        let mut spec = image_spec(
            &req,
            Utf8Path::new("/x/nixos.qcow2"),
            Format::Qcow2,
            &accel,
            &ovmf,
        );
        assert_eq!(
            (spec.name.as_str(), spec.memory_mib, spec.cpus),
            ("nixos", 512, 2)
        );
        let unnamed = image_spec(&req, Utf8Path::new("/"), Format::Qcow2, &accel, &ovmf);
        assert_eq!(unnamed.name, "bifrost-vm");
        spec.snapshot = true;
        assert_eq!(
            describe(&spec, &accel),
            "/x/nixos.qcow2 (Qcow2), Tcg (BIFROST_QEMU_ACCEL=tcg), NVRAM /fw/VARS.fd, read-only image: changes are discarded (snapshot=on)"
        );
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(3), 3);
        assert_eq!(exit_status(-1), 1);
        assert_eq!(exit_status(300), 255);
    }
}
