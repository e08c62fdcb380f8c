//! `bifrost doctor`: does this machine have what bifrost's jobs need?
//!
//! Each check reads files under a root folder (`/` in production) and asks a
//! [`Machine`] for command output and free space, so tests describe a machine
//! with a fake tree and canned outputs. Required checks (Nix, flakes, space
//! for builds) make the command fail; the others warn, each with its fix.

use super::blockdev;
use super::vm;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

/// Errors of this module (the checks themselves never fail: they report).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("cannot render the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Does not apply to this machine (for example NVRAM on a BIOS boot).
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier for scripts: `nix`, `flakes`, `output-space`, `kvm`,
    /// `qemu`, `ovmf`, `esp`, `refind-nvram`, `secure-boot`, `kinoite-loader`
    /// (only when the menu on the ESP chainloads Kinoite).
    pub id: &'static str,
    pub status: Status,
    /// Whether a failure makes `bifrost doctor` exit non-zero.
    pub required: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it (only when not ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// All checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// False when a required check failed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// The effects the checks need, injected.
pub trait Machine {
    /// Run `program args`: `None` when it cannot be started, else its stdout
    /// (`Ok`) or its stderr (`Err`) depending on the exit status.
    fn run(&self, program: &str, args: &[&str]) -> Option<Result<String, String>>;
    /// Free bytes for unprivileged users on the file system holding `path`.
    fn free_bytes(&self, path: &Utf8Path) -> Option<u64>;
    /// An environment variable.
    fn env(&self, name: &str) -> Option<String>;
}

/// The real machine: processes through duct, statvfs, the process environment.
pub struct RealMachine;

impl Machine for RealMachine {
    fn run(&self, program: &str, args: &[&str]) -> Option<Result<String, String>> {
        // stdin stays this terminal's, as before.
        let out = crate::process::Cmd::new(program, args)
            .inherit_stdin()
            .output()
            .ok()?;
        if out.success() {
            Some(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
        } else {
            Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()))
        }
    }

    fn free_bytes(&self, path: &Utf8Path) -> Option<u64> {
        let c = std::ffi::CString::new(path.as_str()).ok()?;
        // SAFETY: statvfs fills the zeroed struct we pass; the path is NUL-terminated.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
        (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
    }

    fn env(&self, name: &str) -> Option<String> {
        vm::process_env(name)
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Root of sysfs, /proc, /dev and the firmware paths.
    pub root: Utf8PathBuf,
    /// `output.root` of the host settings.
    pub output_root: Utf8PathBuf,
    /// `boot.esp.mountPoint` of the host settings.
    pub esp_mount_point: Utf8PathBuf,
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Below this a build cannot place an image: fail.
pub const OUTPUT_MIN: u64 = 4 * GIB;
/// Below this images and their previous copies get tight: warn.
pub const OUTPUT_WARN: u64 = 20 * GIB;
/// Each NixOS generation puts a kernel and an initrd (often 60+ MiB) on the ESP.
pub const ESP_WARN: u64 = 200 * MIB;

/// `bifrost doctor`: every check, on the machine bifrost runs on.
pub fn check_this_machine(output_root: Utf8PathBuf, esp_mount_point: Utf8PathBuf) -> Report {
    let inputs = Inputs {
        root: "/".into(),
        output_root,
        esp_mount_point,
    };
    run(&inputs, &RealMachine)
}

/// Run every check.
pub fn run(inputs: &Inputs, machine: &dyn Machine) -> Report {
    let mut checks = Vec::new();
    let (nix, version) = check_nix(machine);
    checks.push(nix);
    checks.push(check_flakes(machine, version));
    checks.push(check_output_space(inputs, machine));
    checks.push(check_kvm(inputs, machine));
    let (qemu_check, qemu) = check_qemu(inputs, machine);
    checks.push(qemu_check);
    checks.push(check_ovmf(inputs, machine, qemu.as_deref()));
    checks.push(check_esp(inputs, machine));
    checks.push(check_refind_nvram(&inputs.root));
    checks.push(check_secure_boot(&inputs.root));
    checks.extend(check_kinoite_loader(inputs));
    let ok = !checks
        .iter()
        .any(|c| c.required && c.status == Status::Fail);
    Report { ok, checks }
}

fn ok(id: &'static str, required: bool, detail: String) -> Check {
    Check {
        id,
        status: Status::Ok,
        required,
        detail,
        fix: None,
    }
}

fn bad(id: &'static str, status: Status, required: bool, detail: String, fix: &str) -> Check {
    Check {
        id,
        status,
        required,
        detail,
        fix: Some(fix.to_string()),
    }
}

/// `nix (Nix) 2.8.0` → (2, 8).
pub fn parse_nix_version(out: &str) -> Option<(u32, u32)> {
    let v = out.split_whitespace().last()?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

fn check_nix(machine: &dyn Machine) -> (Check, Option<(u32, u32)>) {
    const FIX: &str = "install Nix 2.4 or newer: on NixOS it is there; elsewhere the Determinate or official installer (https://nixos.org/download), or `apt install nix-bin`";
    match machine.run("nix", &["--version"]) {
        None => (
            bad(
                "nix",
                Status::Fail,
                true,
                "`nix` is not on PATH".into(),
                FIX,
            ),
            None,
        ),
        Some(Err(e)) => (
            bad(
                "nix",
                Status::Fail,
                true,
                format!("`nix --version` failed: {}", e.trim()),
                FIX,
            ),
            None,
        ),
        Some(Ok(out)) => match parse_nix_version(&out) {
            Some(v) if v >= (2, 4) => (ok("nix", true, out.trim().to_string()), Some(v)),
            Some(v) => (
                bad(
                    "nix",
                    Status::Fail,
                    true,
                    format!("{} is too old: flakes need Nix 2.4", out.trim()),
                    FIX,
                ),
                Some(v),
            ),
            None => (
                bad(
                    "nix",
                    Status::Fail,
                    true,
                    format!("cannot read the version in {:?}", out.trim()),
                    FIX,
                ),
                None,
            ),
        },
    }
}

/// The `experimental-features` of `nix config show` / `nix show-config` output.
pub fn experimental_features(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "experimental-features")
        .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn check_flakes(machine: &dyn Machine, version: Option<(u32, u32)>) -> Check {
    const FIX: &str = "enable them: on NixOS `nix.settings.experimental-features = [ \"nix-command\" \"flakes\" ];`, elsewhere add `experimental-features = nix-command flakes` to /etc/nix/nix.conf or ~/.config/nix/nix.conf";
    if version.is_none() {
        return bad(
            "flakes",
            Status::Fail,
            true,
            "no working Nix to ask".into(),
            FIX,
        );
    }
    // `nix config show` since Nix 2.19; `nix show-config` before (and deprecated after).
    let out = match machine.run("nix", &["config", "show"]) {
        Some(Ok(o)) => Some(o),
        _ => match machine.run("nix", &["show-config"]) {
            Some(Ok(o)) => Some(o),
            _ => None,
        },
    };
    let Some(out) = out else {
        return bad(
            "flakes",
            Status::Fail,
            true,
            "neither `nix config show` nor `nix show-config` worked (is nix-command enabled?)"
                .into(),
            FIX,
        );
    };
    let features = experimental_features(&out);
    let missing: Vec<&str> = ["nix-command", "flakes"]
        .into_iter()
        .filter(|f| !features.iter().any(|x| x == f))
        .collect();
    if missing.is_empty() {
        ok(
            "flakes",
            true,
            format!("experimental-features = {}", features.join(" ")),
        )
    } else {
        bad(
            "flakes",
            Status::Fail,
            true,
            format!("experimental features missing: {}", missing.join(", ")),
            FIX,
        )
    }
}

/// The path itself or its nearest existing ancestor (a build creates the rest).
fn existing_ancestor(p: &Utf8Path) -> Utf8PathBuf {
    let mut cur = p.to_owned();
    while !cur.exists() {
        match cur.parent() {
            Some(par) if !par.as_str().is_empty() => cur = par.to_owned(),
            _ => return "/".into(),
        }
    }
    cur
}

fn check_output_space(inputs: &Inputs, machine: &dyn Machine) -> Check {
    let at = existing_ancestor(&inputs.output_root);
    let fix = format!(
        "free space on the file system of {at}, or point `bifrost.output.root` (and `bifrost build --out`) at a larger one"
    );
    let Some(free) = machine.free_bytes(&at) else {
        return bad(
            "output-space",
            Status::Warn,
            true,
            format!("cannot tell the free space of {at}"),
            &fix,
        );
    };
    let detail = format!(
        "{} free at {at} (output root {})",
        blockdev::human_size(free),
        inputs.output_root
    );
    if free < OUTPUT_MIN {
        bad("output-space", Status::Fail, true, detail, &fix)
    } else if free < OUTPUT_WARN {
        bad("output-space", Status::Warn, true, detail, &fix)
    } else {
        ok("output-space", true, detail)
    }
}

fn check_kvm(inputs: &Inputs, machine: &dyn Machine) -> Check {
    let env = |n: &str| machine.env(n);
    match vm::choose_accel(&env, &inputs.root) {
        Ok(c) if c.accel == vm::Accel::Kvm => ok(
            "kvm",
            false,
            format!(
                "{} (under nested virtualisation KVM can still fail; then set BIFROST_QEMU_ACCEL=tcg)",
                c.reason
            ),
        ),
        Ok(c) if machine.env("BIFROST_QEMU_ACCEL").is_some() => ok("kvm", false, c.reason),
        Ok(c) => bad(
            "kvm",
            Status::Warn,
            false,
            c.reason,
            "VMs will run without KVM (slowly): enable VT-x/AMD-V in the firmware, load kvm_intel or kvm_amd, and give your user access to /dev/kvm (group `kvm`; NixOS: `virtualisation.libvirtd.enable` or `users.users.<you>.extraGroups = [ \"kvm\" ]`)",
        ),
        Err(e) => bad(
            "kvm",
            Status::Warn,
            false,
            e.to_string(),
            "unset BIFROST_QEMU_ACCEL or set it to kvm or tcg",
        ),
    }
}

fn check_qemu(inputs: &Inputs, machine: &dyn Machine) -> (Check, Option<Utf8PathBuf>) {
    let env = |n: &str| machine.env(n);
    match vm::find_qemu(&env, &inputs.root) {
        Ok(q) => (ok("qemu", false, q.to_string()), Some(q)),
        Err(e) => (
            bad(
                "qemu",
                Status::Warn,
                false,
                "QEMU not found: `bifrost vm` cannot run".into(),
                &e.to_string(),
            ),
            None,
        ),
    }
}

fn check_ovmf(inputs: &Inputs, machine: &dyn Machine, qemu: Option<&Utf8Path>) -> Check {
    let env = |n: &str| machine.env(n);
    match vm::find_ovmf(&env, &inputs.root, qemu) {
        Ok(o) => ok("ovmf", false, format!("{} + {}", o.code, o.vars)),
        Err(e) => bad(
            "ovmf",
            Status::Warn,
            false,
            "OVMF not found: `bifrost vm` cannot boot UEFI images".into(),
            &e.to_string(),
        ),
    }
}

fn check_esp(inputs: &Inputs, machine: &dyn Machine) -> Check {
    let mp = &inputs.esp_mount_point;
    let fix = format!(
        "mount the EFI system partition at {mp} (NixOS: `fileSystems.\"{mp}\"`; by hand: `mount /dev/disk/by-partlabel/ESP {mp}`), or set `bifrost.boot.esp.mountPoint` to where it is"
    );
    let mounts = match blockdev::mounts(&inputs.root) {
        Ok(m) => m,
        Err(e) => return bad("esp", Status::Warn, false, e.to_string(), &fix),
    };
    let Some(m) = mounts.iter().rev().find(|m| m.mount_point == mp.as_str()) else {
        return bad(
            "esp",
            Status::Warn,
            false,
            format!("nothing is mounted at {mp} (needed only where `bifrost esp install` runs)"),
            &fix,
        );
    };
    if m.fs_type != "vfat" {
        return bad(
            "esp",
            Status::Warn,
            false,
            format!(
                "{mp} is {} ({}), not FAT: firmware cannot read it",
                m.fs_type, m.source
            ),
            &fix,
        );
    }
    let free = machine.free_bytes(&inputs.root.join(mp.as_str().trim_start_matches('/')));
    let detail = format!(
        "{} (vfat) at {mp}, {} free",
        m.source,
        free.map(blockdev::human_size)
            .unwrap_or_else(|| "unknown".into())
    );
    match free {
        Some(f) if f < ESP_WARN => bad(
            "esp",
            Status::Warn,
            false,
            detail,
            "free space on the ESP: lower `bifrost.boot.maxGenerations`, delete old kernels, or grow the partition",
        ),
        _ => ok("esp", false, detail),
    }
}

/// When bifrost's menu on the ESP chainloads Kinoite: is Fedora's boot loader there?
fn check_kinoite_loader(inputs: &Inputs) -> Option<Check> {
    use crate::esp::{self, kinoite};
    let esp_dir = inputs
        .root
        .join(inputs.esp_mount_point.as_str().trim_start_matches('/'));
    let state = esp::REFIND_DIRS.iter().find_map(|(dir, _)| {
        let text = std::fs::read_to_string(esp_dir.join(dir).join("refind.conf")).ok()?;
        esp::parse_state(&text)?
            .kinoite
            .filter(|k| k.mode == crate::spec::KinoiteMode::Chainload)
    })?;
    let loader = state
        .loader
        .unwrap_or_else(|| kinoite::FEDORA_LOADERS[0].to_string());
    Some(if esp_dir.join(&loader).is_file() {
        ok(
            "kinoite-loader",
            false,
            format!("rEFInd's Kinoite entry starts {loader}, which is on the ESP"),
        )
    } else {
        bad(
            "kinoite-loader",
            Status::Warn,
            false,
            format!("rEFInd's Kinoite entry starts {loader}, which is missing: Kinoite cannot boot from the menu"),
            kinoite::NO_LOADER_FIX,
        )
    })
}

/// The EFI global variable GUID that Boot#### and BootOrder live under.
const EFI_GLOBAL: &str = crate::esp::nvram::GLOBAL_GUID;

/// A decoded `Boot####` variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEntry {
    pub number: u16,
    pub description: String,
    /// The file path of the loader, when the device path has one.
    pub path: Option<String>,
    pub active: bool,
}

/// Decode an efivarfs `Boot####` file: 4 bytes of variable attributes, then
/// an `EFI_LOAD_OPTION` (read by the parser `bifrost esp install --nvram` uses).
pub fn parse_boot_entry(number: u16, file: &[u8]) -> Option<BootEntry> {
    let o = crate::esp::nvram::parse_load_option(file.get(4..)?)?;
    Some(BootEntry {
        number,
        description: o.description,
        path: o.path,
        active: o.attributes & 1 == 1,
    })
}

/// Every `Boot####` entry and the `BootOrder` under `<root>/sys/firmware/efi/efivars`.
pub fn boot_entries(root: &Utf8Path) -> Option<(Vec<BootEntry>, Vec<u16>)> {
    let dir = root.join("sys/firmware/efi/efivars");
    let rd = std::fs::read_dir(&dir).ok()?;
    let mut entries = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Some(num) = name
            .strip_prefix("Boot")
            .and_then(|r| r.strip_suffix(&format!("-{EFI_GLOBAL}")))
            .filter(|n| n.len() == 4)
            .and_then(|n| u16::from_str_radix(n, 16).ok())
        else {
            continue;
        };
        if let Some(b) = std::fs::read(e.path())
            .ok()
            .and_then(|bytes| parse_boot_entry(num, &bytes))
        {
            entries.push(b);
        }
    }
    entries.sort_by_key(|b| b.number);
    let order = std::fs::read(dir.join(format!("BootOrder-{EFI_GLOBAL}")))
        .ok()
        .map(|b| {
            b.get(4..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        })
        .unwrap_or_default();
    Some((entries, order))
}

/// Secure Boot and setup mode as the firmware reports them, and the
/// certificates in shim's MOK list (compare with `bifrost sb keys`' SHA-256).
fn check_secure_boot(root: &Utf8Path) -> Check {
    const ID: &str = "secure-boot";
    let Some(st) = crate::sb::efivars::state(&root.join("sys/firmware/efi/efivars")) else {
        return Check {
            id: ID,
            status: Status::Skip,
            required: false,
            detail: "no UEFI variables to read (not booted with UEFI, or efivarfs not mounted)"
                .into(),
            fix: None,
        };
    };
    let mok = match st.mok.len() {
        0 => "MOK list empty or not visible (shim did not start this boot)".to_string(),
        _ => format!(
            "MOK list: {}",
            st.mok
                .iter()
                .map(|f| format!("SHA-256 {}…", &f[..16]))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    match (st.secure_boot, st.setup_mode) {
        (_, true) => bad(
            ID,
            Status::Warn,
            false,
            format!("Secure Boot off, firmware in setup mode (no platform key: anyone can enroll keys); {mok}"),
            "enroll your keys with `bifrost sb enroll --keys DIR`, or restore the factory keys in the firmware setup",
        ),
        (true, false) => ok(ID, false, format!("Secure Boot on; {mok}")),
        (false, false) => ok(ID, false, format!("Secure Boot off; {mok}")),
    }
}

fn check_refind_nvram(root: &Utf8Path) -> Check {
    const FIX: &str = "register rEFInd: `bifrost esp install` does it, or by hand `efibootmgr --create --disk /dev/nvme0n1 --part 1 --loader '\\EFI\\refind\\refind_x64.efi' --label rEFInd`";
    if !root.join("sys/firmware/efi").exists() {
        return Check {
            id: "refind-nvram",
            status: Status::Skip,
            required: false,
            detail: "not booted with UEFI (no /sys/firmware/efi): no NVRAM to read".into(),
            fix: None,
        };
    }
    let Some((entries, order)) = boot_entries(root) else {
        return bad(
            "refind-nvram",
            Status::Warn,
            false,
            "cannot read /sys/firmware/efi/efivars (mount efivarfs there)".into(),
            FIX,
        );
    };
    let refind = entries.iter().find(|b| {
        b.description.to_lowercase().contains("refind")
            || b.path
                .as_deref()
                .is_some_and(|p| p.to_lowercase().contains("refind"))
    });
    match refind {
        Some(b) => {
            let pos = order.iter().position(|&n| n == b.number);
            let detail = format!(
                "Boot{:04X} \"{}\" {}{}",
                b.number,
                b.description,
                b.path.as_deref().unwrap_or(""),
                match pos {
                    Some(0) => ", first in BootOrder".to_string(),
                    Some(i) => format!(", position {} in BootOrder", i + 1),
                    None => ", not in BootOrder".to_string(),
                }
            );
            if pos == Some(0) && b.active {
                ok("refind-nvram", false, detail)
            } else {
                bad(
                    "refind-nvram",
                    Status::Warn,
                    false,
                    detail,
                    &format!(
                        "make it boot first: `efibootmgr --bootnum {:04X} --active` and `efibootmgr --bootorder {:04X},…`",
                        b.number, b.number
                    ),
                )
            }
        }
        None => bad(
            "refind-nvram",
            Status::Warn,
            false,
            format!("no rEFInd among {} boot entries", entries.len()),
            FIX,
        ),
    }
}

/// The report for people (pure).
pub fn render_text(report: &Report) -> String {
    let mut s = String::new();
    for c in &report.checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        s.push_str(&format!("[{tag}] {:<13} {}\n", c.id, c.detail));
        if let Some(f) = &c.fix {
            s.push_str(&format!("       {:<13} fix: {f}\n", ""));
        }
    }
    s.push_str(if report.ok {
        "bifrost doctor: everything required is in place\n"
    } else {
        "bifrost doctor: a required check failed (see FAIL above)\n"
    });
    s
}

/// The report for scripts (pure).
pub fn render_json(report: &Report) -> Result<String, DoctorError> {
    Ok(serde_json::to_string_pretty(report)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    struct Fake {
        cmds: HashMap<String, Option<Result<String, String>>>,
        free: u64,
        env: HashMap<String, String>,
    }

    impl Machine for Fake {
        fn run(&self, program: &str, args: &[&str]) -> Option<Result<String, String>> {
            let key = format!("{program} {}", args.join(" "));
            self.cmds.get(&key).cloned().unwrap_or(None)
        }
        fn free_bytes(&self, _: &Utf8Path) -> Option<u64> {
            Some(self.free)
        }
        fn env(&self, name: &str) -> Option<String> {
            self.env.get(name).cloned()
        }
    }

    fn ucs2z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(|u| u.to_le_bytes())
            .collect()
    }

    /// An efivarfs Boot#### file: HD node (skipped) + file path node + end node.
    fn load_option(desc: &str, path: &str, active: bool) -> Vec<u8> {
        let mut fpl = vec![4u8, 1, 42, 0];
        fpl.extend([0u8; 38]);
        let p = ucs2z(path);
        fpl.extend([4u8, 4]);
        fpl.extend(((p.len() + 4) as u16).to_le_bytes());
        fpl.extend(p);
        fpl.extend([0x7f, 0xff, 4, 0]);
        let mut v = 7u32.to_le_bytes().to_vec();
        v.extend((active as u32).to_le_bytes());
        v.extend((fpl.len() as u16).to_le_bytes());
        v.extend(ucs2z(desc));
        v.extend(fpl);
        v
    }

    fn machine(refind_first: bool) -> (tempfile::TempDir, Inputs) {
        let d = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(d.path().to_path_buf()).unwrap();
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::write(
            root.join("proc/self/mountinfo"),
            "22 1 259:2 / / rw - btrfs /dev/mapper/cryptroot rw\n30 22 259:1 / /boot/efi rw - vfat /dev/nvme0n1p1 rw\n",
        )
        .unwrap();
        let vars = root.join("sys/firmware/efi/efivars");
        std::fs::create_dir_all(&vars).unwrap();
        std::fs::write(
            vars.join(format!("Boot0000-{EFI_GLOBAL}")),
            load_option(
                "Windows Boot Manager",
                "\\EFI\\Microsoft\\Boot\\bootmgfw.efi",
                true,
            ),
        )
        .unwrap();
        std::fs::write(
            vars.join(format!("Boot0003-{EFI_GLOBAL}")),
            load_option("rEFInd Boot Manager", "\\EFI\\refind\\refind_x64.efi", true),
        )
        .unwrap();
        let order: &[u16] = if refind_first { &[3, 0] } else { &[0, 3] };
        let mut o = 7u32.to_le_bytes().to_vec();
        o.extend(order.iter().flat_map(|n| n.to_le_bytes()));
        std::fs::write(vars.join(format!("BootOrder-{EFI_GLOBAL}")), o).unwrap();
        for f in [
            "usr/share/OVMF/OVMF_CODE_4M.fd",
            "usr/share/OVMF/OVMF_VARS_4M.fd",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), b"fw").unwrap();
        }
        let inputs = Inputs {
            root: root.clone(),
            output_root: root.join("images/a_nixos_host"),
            esp_mount_point: "/boot/efi".into(),
        };
        (d, inputs)
    }

    fn fake(nix: &str, features: &str, free: u64) -> Fake {
        let mut cmds = HashMap::new();
        cmds.insert(
            "nix --version".into(),
            Some(Ok(format!("nix (Nix) {nix}\n"))),
        );
        cmds.insert(
            "nix config show".into(),
            Some(Err("error: 'config' is not a recognised command".into())),
        );
        cmds.insert(
            "nix show-config".into(),
            Some(Ok(format!(
                "cores = 0\nexperimental-features = {features}\nmax-jobs = 1\n"
            ))),
        );
        Fake {
            cmds,
            free,
            env: [("PATH".to_string(), "/nonexistent".to_string())].into(),
        }
    }

    #[test]
    fn secure_boot_state_and_mok_list() {
        use crate::sb::{efivars, GLOBAL_GUID, SHIM_GUID};
        let d = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(d.path()).unwrap();
        assert_eq!(check_secure_boot(root).status, Status::Skip);
        let vars = root.join("sys/firmware/efi/efivars");
        std::fs::create_dir_all(&vars).unwrap();
        efivars::write(&vars, "SecureBoot", GLOBAL_GUID, 6, &[0]).unwrap();
        efivars::write(&vars, "SetupMode", GLOBAL_GUID, 6, &[1]).unwrap();
        let c = check_secure_boot(root);
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("setup mode") && c.fix.unwrap().contains("sb enroll"));
        efivars::write(&vars, "SecureBoot", GLOBAL_GUID, 6, &[1]).unwrap();
        efivars::write(&vars, "SetupMode", GLOBAL_GUID, 6, &[0]).unwrap();
        // One X.509 signature list holding the DER bytes "mok".
        let mut esl = vec![
            0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b,
            0xf0, 0x72,
        ];
        esl.extend(47u32.to_le_bytes());
        esl.extend(0u32.to_le_bytes());
        esl.extend(19u32.to_le_bytes());
        esl.extend([0u8; 16]);
        esl.extend(b"mok");
        efivars::write(&vars, "MokListRT", SHIM_GUID, 6, &esl).unwrap();
        let c = check_secure_boot(root);
        assert_eq!(c.status, Status::Ok);
        let fp = hex::encode(Sha256::digest(b"mok"));
        assert!(
            c.detail.starts_with("Secure Boot on; MOK list: SHA-256 "),
            "{}",
            c.detail
        );
        assert!(c.detail.contains(&fp[..16]), "{}", c.detail);
    }

    #[test]
    fn healthy_machine_passes() {
        let (_d, inputs) = machine(true);
        let r = run(&inputs, &fake("2.8.0", "nix-command flakes", 100 * GIB));
        let by_id = |id| r.checks.iter().find(|c| c.id == id).unwrap();
        assert!(r.ok, "{}", render_text(&r));
        assert_eq!(by_id("nix").status, Status::Ok);
        assert_eq!(by_id("flakes").status, Status::Ok);
        assert_eq!(by_id("ovmf").status, Status::Ok);
        assert_eq!(by_id("esp").status, Status::Ok);
        assert_eq!(
            by_id("refind-nvram").status,
            Status::Ok,
            "{:?}",
            by_id("refind-nvram")
        );
        assert!(by_id("refind-nvram").detail.contains("Boot0003"));
        // No /dev/kvm in the fake root, no QEMU on the fake PATH: warnings only.
        assert_eq!(by_id("kvm").status, Status::Warn);
        assert_eq!(by_id("qemu").status, Status::Warn);
    }

    #[test]
    fn kinoite_chainload_loader_is_checked() {
        let (_d, inputs) = machine(true);
        let by_id = |r: &Report| r.checks.iter().find(|c| c.id == "kinoite-loader").cloned();
        let machine = fake("2.8.0", "nix-command flakes", 100 * GIB);
        // No bifrost menu chainloading Kinoite: no such check.
        assert_eq!(by_id(&run(&inputs, &machine)), None);
        let esp = inputs.root.join("boot/efi");
        std::fs::create_dir_all(esp.join("EFI/refind")).unwrap();
        std::fs::write(
            esp.join("EFI/refind/refind.conf"),
            "# bifrost-state {\"version\":1,\"default\":\"x\",\"generations\":[1],\"files\":[],\"kinoite\":{\"mode\":\"chainload\",\"loader\":\"EFI/fedora/shimx64.efi\"}}\n",
        )
        .unwrap();
        let c = by_id(&run(&inputs, &machine)).unwrap();
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("bootupctl update"));
        std::fs::create_dir_all(esp.join("EFI/fedora")).unwrap();
        std::fs::write(esp.join("EFI/fedora/shimx64.efi"), b"MZ").unwrap();
        assert_eq!(by_id(&run(&inputs, &machine)).unwrap().status, Status::Ok);
    }

    #[test]
    fn problems_are_reported_with_fixes() {
        let (_d, inputs) = machine(false);
        let r = run(&inputs, &fake("2.3.16", "nix-command", GIB));
        assert!(!r.ok);
        insta::assert_snapshot!(render_text(&r).replace(inputs.root.as_str(), "ROOT"));
        let json: serde_json::Value = serde_json::from_str(&render_json(&r).unwrap()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][0]["id"], "nix");
        assert_eq!(json["checks"][0]["status"], "fail");
    }

    #[test]
    fn flakes_missing_fails_and_new_nix_config_show_is_used() {
        let (_d, inputs) = machine(true);
        let mut f = fake("2.24.9", "nix-command", 100 * GIB);
        f.cmds.insert(
            "nix config show".into(),
            Some(Ok(
                "experimental-features = nix-command ca-derivations\n".into()
            )),
        );
        let r = run(&inputs, &f);
        let flakes = r.checks.iter().find(|c| c.id == "flakes").unwrap();
        assert_eq!(flakes.status, Status::Fail);
        assert!(flakes.detail.contains("flakes"), "{flakes:?}");
        assert!(!r.ok);
        // Nix missing entirely.
        let mut none = fake("2.8.0", "", 100 * GIB);
        none.cmds.clear();
        let r = run(&inputs, &none);
        assert_eq!(r.checks[0].status, Status::Fail);
        assert!(r.checks[0].detail.contains("not on PATH"));
    }

    #[test]
    fn boot_entries_decode() {
        let e = parse_boot_entry(
            3,
            &load_option("rEFInd", "\\EFI\\refind\\refind_x64.efi", true),
        )
        .unwrap();
        assert_eq!(e.description, "rEFInd");
        assert_eq!(e.path.as_deref(), Some("\\EFI\\refind\\refind_x64.efi"));
        assert!(e.active);
        assert!(parse_boot_entry(0, &[1, 2, 3]).is_none());
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_nix_version("nix (Nix) 2.8.0\n"), Some((2, 8)));
        assert_eq!(
            parse_nix_version("nix (Determinate Nix 3.6.2) 2.29.0"),
            Some((2, 29))
        );
        assert_eq!(
            parse_nix_version("nix (Nix) 2.31pre20250101"),
            Some((2, 31))
        );
        assert_eq!(parse_nix_version(""), None);
    }
}
