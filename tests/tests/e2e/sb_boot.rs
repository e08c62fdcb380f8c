//! Secure Boot under real firmware: OVMF with Secure Boot enforced boots an
//! ESP that `bifrost esp install --sign-key/--sign-cert` signed, through
//! Debian's Microsoft-signed shim with the key in shim's MOK list (the
//! Surface route) and with the key in the firmware's own db (Debian's
//! snakeoil test keys); a kernel not signed by the key is refused in both,
//! and `bifrost sb verify` names it. With own keys and a dual-boot ESP, the
//! ext4 driver bifrost signed loads and rEFInd boots Kinoite's kernel from ext4.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{bifrost, sb_verify, tree_hash, Boot, FakeNix};
use bifrost_e2e::{dualboot, guest, image, initrd, qemu, run_ok, skip, tool_path, BootTools};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What the Secure Boot tests need beyond the boot tools.
struct SbTools {
    boot: BootTools,
    code: PathBuf,
    ms_vars: PathBuf,
    snakeoil_vars: PathBuf,
    snakeoil_key: PathBuf,
    snakeoil_cert: PathBuf,
    shim: PathBuf,
    virt_fw_vars: PathBuf,
}

impl SbTools {
    fn find(test: &str) -> Option<SbTools> {
        let boot = BootTools::find(test)?;
        let found = (
            tool_path(
                "BIFROST_OVMF_SECBOOT_CODE",
                "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
            ),
            tool_path("BIFROST_OVMF_MS_VARS", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"),
            tool_path(
                "BIFROST_OVMF_SNAKEOIL_VARS",
                "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd",
            ),
            tool_path(
                "BIFROST_SNAKEOIL_KEY",
                "/usr/share/ovmf/PkKek-1-snakeoil.key",
            ),
            tool_path(
                "BIFROST_SNAKEOIL_CERT",
                "/usr/share/ovmf/PkKek-1-snakeoil.pem",
            ),
            tool_path("BIFROST_SHIM", "/usr/lib/shim/shimx64.efi.signed"),
            bifrost_e2e::program("virt-fw-vars"),
            bifrost_e2e::program("sbsign").and(bifrost_e2e::program("sbattach")),
        );
        match found {
            (
                Some(code),
                Some(ms_vars),
                Some(snakeoil_vars),
                Some(sk),
                Some(sc),
                Some(shim),
                Some(v),
                Some(_),
            ) => Some(SbTools {
                boot,
                code,
                ms_vars,
                snakeoil_vars,
                snakeoil_key: sk,
                snakeoil_cert: sc,
                shim,
                virt_fw_vars: v,
            }),
            _ => {
                skip(
                    test,
                    "OVMF secboot firmware (ovmf), shim-signed, sbsigntool and virt-fw-vars (PyPI virt-firmware)",
                );
                None
            }
        }
    }
}

/// The test kernel without any signature (Debian signs its own kernels, and
/// Debian's shim trusts that signature).
fn unsigned_kernel(t: &BootTools, dir: &Path) -> PathBuf {
    let k = dir.join("kernel-unsigned");
    std::fs::copy(&t.kernel, &k).unwrap();
    // Removes one signature per call; an unsigned image makes it fail.
    while Command::new("sbattach")
        .arg("--remove")
        .arg(&k)
        .output()
        .unwrap()
        .status
        .success()
    {}
    k
}

/// One generation whose kernel is `kernel`, installed by `esp install
/// --removable` with `extra` flags; returns (esp, profiles, toplevel).
fn install(t: &BootTools, dir: &Path, kernel: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let nix = FakeNix::new(&dir.join("root"));
    let rd = dir.join("initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&rd);
    let k = nix.store_copy("linux-6.1.0", "bzImage", kernel);
    let i = nix.store_copy("initrd-linux-6.1", "initrd", &rd);
    let profiles = dir.join("profiles");
    let g = nix.toplevel(
        "nixos-system-1",
        &Boot {
            label: "NixOS signed".into(),
            kernel: k,
            initrd: i,
            params: vec!["console=ttyS0".into(), "sb=1".into()],
        },
        &[],
    );
    nix.link(&profiles, 1, &g);
    let esp = dir.join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let refind = t.refind_dir.join("refind_x64.efi");
    let (ok, out, err) = EspInstall::new(&esp, &profiles, &refind)
        .boot_menu()
        .args(extra)
        .run();
    assert!(ok, "install failed:\n{out}\n{err}");
    (esp, profiles)
}

/// The one kernel bifrost put on the ESP.
fn esp_kernel(esp: &Path) -> PathBuf {
    let mut ks: Vec<PathBuf> = std::fs::read_dir(esp.join("EFI/nixos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("bzImage"))
        .collect();
    assert_eq!(ks.len(), 1, "{ks:?}");
    ks.pop().unwrap()
}

/// A VM with OVMF's Secure Boot firmware and `vars` itself (not a copy:
/// what the guest enrolls stays for the next boot).
fn secure_vm(t: &SbTools, vars: &Path, memory_mib: u32) -> qemu::QemuBuilder {
    qemu::QemuBuilder::new(&t.boot.qemu, memory_mib)
        .arg("-machine")
        .arg("q35,smm=on")
        .arg("-global")
        .arg("driver=cfi.pflash01,property=secure,value=on")
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,readonly=on,file={}",
            t.code.display()
        ))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars.display()))
}

/// Boot `img` under OVMF with Secure Boot enforced and `vars`, choose the
/// default entry, and return the command line the kernel printed, or None
/// when the firmware, shim or rEFInd refused what it was to start.
fn boot_secure(t: &SbTools, vars: &Path, img: &Path) -> (Option<String>, String) {
    boot_secure_menu(t, vars, img, &["ret"])
}

/// [`boot_secure`], pressing `keys` in rEFInd's menu.
fn boot_secure_menu(
    t: &SbTools,
    vars: &Path,
    img: &Path,
    keys: &[&str],
) -> (Option<String>, String) {
    // A copy: the firmware writes its variables, and each boot starts alike.
    let copy = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(vars, copy.path()).unwrap();
    let mut vm = secure_vm(t, copy.path(), 512).disk(img).spawn();
    vm.wait_for("Main Menu", Duration::from_secs(240));
    vm.keys(keys);
    // A refused kernel leaves rEFInd waiting on its error screen: wait for
    // either the printed command line or the refusal.
    let start = std::time::Instant::now();
    loop {
        let log = vm.serial();
        if let Some(c) = qemu::printed_cmdline(&log) {
            return (Some(c), log);
        }
        let refused = [
            "Access Denied",
            "Security Violation",
            "Verification failed",
            "Secure Boot validation failure",
        ]
        .iter()
        .any(|m| log.contains(m));
        if refused {
            // Give a wrongly accepted kernel time to print anyway.
            std::thread::sleep(Duration::from_secs(5));
            let log = vm.serial();
            return (qemu::printed_cmdline(&log), log);
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "neither a command line nor a refusal; serial:\n{}",
            qemu::tail(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Debian's snakeoil db key (in OVMF_VARS_4M.snakeoil.fd's db), without
/// its passphrase, at `dir/snakeoil.key`.
fn snakeoil_key(t: &SbTools, dir: &Path) -> PathBuf {
    let key = dir.join("snakeoil.key");
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-passin", "pass:snakeoil", "-in"])
            .arg(&t.snakeoil_key)
            .arg("-out")
            .arg(&key),
    );
    key
}

fn fat(dir: &Path, esp: &Path, name: &str) -> PathBuf {
    let img = dir.join(name);
    image::fat_image(esp, &img, 64, "ESP");
    img
}

/// `esp` boots under Secure Boot with `vars`: the generation's kernel
/// prints its command line.
fn assert_boots(t: &SbTools, vars: &Path, d: &Path, esp: &Path) {
    let (printed, log) = boot_secure(t, vars, &fat(d, esp, "good.img"));
    let printed = printed.unwrap_or_else(|| panic!("refused; serial:\n{}", qemu::tail(&log)));
    assert!(printed.ends_with("console=ttyS0 sb=1"), "{printed}");
}

/// `esp` is refused under Secure Boot with `vars`: no kernel prints.
fn assert_refused(t: &SbTools, vars: &Path, d: &Path, esp: &Path) {
    let (printed, log) = boot_secure(t, vars, &fat(d, esp, "bad.img"));
    assert_eq!(printed, None, "{}", qemu::tail(&log));
}

fn verify(esp: &Path, cert: &Path) -> (bool, String) {
    let (ok, out, err) = sb_verify(esp, cert, &[]);
    (ok, format!("{out}{err}"))
}

#[test]
fn shim_and_mok_boot_signed_kernel_and_refuse_unsigned() {
    let Some(t) = SbTools::find("shim_and_mok_boot_signed_kernel_and_refuse_unsigned") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = d.join("keys");
    let (ok, out, err) = bifrost(&["sb", "keys", "--dir", keys.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let (key, cert) = (keys.join("mok.key"), keys.join("mok.crt"));
    // The firmware holds only Microsoft's keys; the test key is in shim's MOK list.
    let vars = d.join("vars.fd");
    run_ok(
        Command::new(&t.virt_fw_vars)
            .arg("-i")
            .arg(&t.ms_vars)
            .arg("-o")
            .arg(&vars)
            .arg("--add-mok")
            .arg("605dab50-e046-4300-abb6-3dd810dd8b23")
            .arg(&cert),
    );
    let kernel = unsigned_kernel(&t.boot, d);
    let (esp, _) = install(
        &t.boot,
        d,
        &kernel,
        &[
            "--sign-key",
            key.to_str().unwrap(),
            "--sign-cert",
            cert.to_str().unwrap(),
            "--shim",
            t.shim.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(esp.join("EFI/BOOT/BOOTX64.EFI")).unwrap(),
        std::fs::read(&t.shim).unwrap(),
        "shim is the firmware's fallback loader"
    );
    assert!(esp.join("EFI/BOOT/grubx64.efi").is_file());
    assert!(
        esp.join("EFI/BOOT/mmx64.efi").is_file(),
        "MokManager beside shim"
    );
    let (ok, out) = verify(&esp, &cert);
    assert!(ok, "{out}");

    assert_boots(&t, &vars, d, &esp);

    // The kernel replaced by the same kernel unsigned: refused, and named.
    let on_esp = esp_kernel(&esp);
    std::fs::copy(&kernel, &on_esp).unwrap();
    let (ok, out) = verify(&esp, &cert);
    assert!(!ok, "{out}");
    let name = on_esp.file_name().unwrap().to_str().unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains(name) && l.contains("not signed")),
        "{out}"
    );
    assert_refused(&t, &vars, d, &esp);
}

#[test]
fn own_keys_in_db_boot_signed_kernel_and_refuse_unsigned() {
    let Some(t) = SbTools::find("own_keys_in_db_boot_signed_kernel_and_refuse_unsigned") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Debian's snakeoil key is in the db of OVMF_VARS_4M.snakeoil.fd.
    let key = snakeoil_key(&t, d);
    let cert = &t.snakeoil_cert;
    let kernel = unsigned_kernel(&t.boot, d);
    let sign = [
        "--sign-key",
        key.to_str().unwrap(),
        "--sign-cert",
        cert.to_str().unwrap(),
    ];
    let (esp, _) = install(&t.boot, d, &kernel, &sign);
    let (ok, out) = verify(&esp, cert);
    assert!(ok, "{out}");
    assert_boots(&t, &t.snakeoil_vars, d, &esp);

    // A re-run with nothing changed writes nothing.
    let before = tree_hash(&esp);
    let (esp2, _) = install(&t.boot, d, &kernel, &sign);
    assert_eq!(esp2, esp);
    assert_eq!(tree_hash(&esp), before);

    // A kernel signed by another key is refused by the firmware.
    let other = d.join("other");
    let (ok, o1, e1) = bifrost(&["sb", "keys", "--dir", other.to_str().unwrap()]);
    assert!(ok, "{o1}{e1}");
    let on_esp = esp_kernel(&esp);
    run_ok(
        Command::new("sbsign")
            .arg("--key")
            .arg(other.join("mok.key"))
            .arg("--cert")
            .arg(other.join("mok.crt"))
            .arg("--output")
            .arg(&on_esp)
            .arg(&kernel),
    );
    let (ok, out) = verify(&esp, cert);
    assert!(!ok, "{out}");
    let name = on_esp.file_name().unwrap().to_str().unwrap();
    assert!(
        out.lines()
            .any(|l| l.contains(name) && l.contains("not signed")),
        "{out}"
    );
    assert_refused(&t, &t.snakeoil_vars, d, &esp);
}

/// What the guest runs (inside [`guest::init_script`]): mount efivarfs,
/// enroll the keys with bifrost, print the result.
const ENROLL_BODY: &str = r#"mount -t efivarfs efivarfs /sys/firmware/efi/efivars
@BIFROST@ sb enroll --keys /keys 2>&1
echo "@@rc=$?""#;

#[test]
fn own_keys_enrolled_by_bifrost_in_setup_mode_then_enforced() {
    let test = "own_keys_enrolled_by_bifrost_in_setup_mode_then_enforced";
    let Some(t) = SbTools::find(test) else {
        return;
    };
    // efivarfs from the kernel's modules (BIFROST_KERNEL_MODULES, the Nix
    // dev shell's kernel) or none when it is built in.
    let (Some(sign_list), Some(kver)) = (
        bifrost_e2e::program("sign-efi-sig-list"),
        guest::kernel_version(&t.boot.kernel),
    ) else {
        return skip(
            test,
            "efitools and the kernel's modules in /lib/modules/<version> (or BIFROST_KERNEL_MODULES)",
        );
    };
    let mut modules = Vec::new();
    guest::resolve_modules(&kver, &["efivarfs"], &mut modules);
    let setup_vars = tool_path("BIFROST_OVMF_SETUP_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd")
        .expect("OVMF_VARS_4M.fd (ovmf)");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fw = d.join("fw");
    let (ok, out, err) = bifrost(&["sb", "keys", "--dir", fw.to_str().unwrap(), "--firmware"]);
    assert!(ok, "{out}{err}");

    // Boot 1: the firmware in setup mode (no PK); bifrost enrolls from inside.
    let vars = d.join("vars.fd");
    std::fs::copy(&setup_vars, &vars).unwrap();
    // bifrost without its debug information (a tenth of the size) at a
    // path of its own, with the libraries it loads.
    let small = d.join("bifrost");
    run_ok(
        Command::new("objcopy")
            .arg("--strip-debug")
            .arg(bifrost_e2e::bifrost_bin())
            .arg(&small),
    );
    let init = guest::init_script(
        &guest::insmod_lines(&modules),
        &ENROLL_BODY.replace("@BIFROST@", small.to_str().unwrap()),
    );
    let rd = initrd::Initrd::new(&t.boot.busybox, &init);
    for m in &modules {
        rd.file(
            &format!("modules/{}", m.file_name().unwrap().to_string_lossy()),
            &std::fs::read(m).unwrap(),
            0o644,
        );
    }
    for f in ["PK", "KEK", "db"] {
        for e in ["key", "crt", "esl"] {
            let name = format!("{f}.{e}");
            rd.file(
                &format!("keys/{name}"),
                &std::fs::read(fw.join(&name)).unwrap(),
                0o600,
            );
        }
    }
    rd.program(&sign_list);
    rd.program(&small);
    let rd_path = d.join("enroll-initrd");
    rd.write(&rd_path);
    let log = secure_vm(&t, &vars, 1024)
        .kernel(
            &t.boot.kernel,
            &rd_path,
            "console=ttyS0 panic=-1 loglevel=3",
        )
        .spawn()
        .wait_exit(Duration::from_secs(600));
    assert!(
        log.contains("wrote db, KEK, PK") && log.contains("@@rc=0"),
        "enroll in the guest failed:\n{}",
        qemu::tail(&log)
    );

    // Boot 2 and 3: Secure Boot now enforced with the enrolled keys; an ESP
    // signed with db.key boots, an unsigned kernel is refused.
    let kernel = unsigned_kernel(&t.boot, d);
    let (key, cert) = (fw.join("db.key"), fw.join("db.crt"));
    let (esp, _) = install(
        &t.boot,
        d,
        &kernel,
        &[
            "--sign-key",
            key.to_str().unwrap(),
            "--sign-cert",
            cert.to_str().unwrap(),
        ],
    );
    assert_boots(&t, &vars, d, &esp);
    std::fs::copy(&kernel, esp_kernel(&esp)).unwrap();
    assert_refused(&t, &vars, d, &esp);
}

/// Own keys and a dual-boot ESP with Kinoite's entries in direct mode:
/// rEFInd, under Secure Boot, loads the ext4 driver bifrost signed and boots
/// Kinoite's kernel from the ext4 `/boot`. An unsigned driver would be
/// refused by the firmware, and rEFInd would not see the ext4 volume at all.
#[test]
fn own_keys_signed_ext4_driver_boots_kinoite_from_ext4() {
    let Some(t) = SbTools::find("own_keys_signed_ext4_driver_boots_kinoite_from_ext4") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = snakeoil_key(&t, d);
    let cert = &t.snakeoil_cert;
    let kernel = unsigned_kernel(&t.boot, d);

    // Kinoite's /boot: its kernel is trusted by the firmware (Fedora's is
    // signed by Fedora; here by the db key), bifrost does not sign it.
    let (kboot, deploy) = dualboot::kinoite_boot(d);
    run_ok(
        Command::new("sbsign")
            .arg("--key")
            .arg(&key)
            .arg("--cert")
            .arg(cert)
            .arg("--output")
            .arg(deploy.join("vmlinuz-6.1.0"))
            .arg(&kernel),
    );
    initrd::Initrd::new(&t.boot.busybox, initrd::PRINT_CMDLINE_INIT)
        .write(&deploy.join("initramfs-6.1.0.img"));

    let entries = kboot.join("loader/entries");
    let (esp, _) = install(
        &t.boot,
        d,
        &kernel,
        &[
            "--sign-key",
            key.to_str().unwrap(),
            "--sign-cert",
            cert.to_str().unwrap(),
            "--kinoite-entries",
            entries.to_str().unwrap(),
            "--kinoite-volume",
            "KINOITEBOOT",
        ],
    );
    let driver = esp.join("EFI/BOOT/drivers_x64/ext4_x64.efi");
    assert!(driver.is_file());
    let (ok, out) = verify(&esp, cert);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("ext4_x64.efi") && l.contains("ok: signed")),
        "{out}"
    );

    let disk = dualboot::boot_disk(d, &esp, Some(&kboot));
    // The second entry is Kinoite's (NixOS's generation comes first).
    let (printed, log) = boot_secure_menu(&t, &t.snakeoil_vars, &disk, &["down", "ret"]);
    assert_eq!(
        printed.as_deref(),
        Some("console=ttyS0 root=UUID=1234 rw ostree=/ostree/boot.1/fedora/abc/0 side=kinoite"),
        "{}",
        qemu::tail(&log)
    );
}
