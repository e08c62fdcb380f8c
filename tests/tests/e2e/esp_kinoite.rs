//! Kinoite stays bootable across its own updates, with real rEFInd boots:
//!
//! - chainload mode: rEFInd's Kinoite entry starts `EFI/fedora/shimx64.efi`.
//!   The stand-in is a second copy of rEFInd with its own refind.conf (rEFInd
//!   reads the refind.conf beside its binary) whose only entry boots the
//!   kernel with a marker on its command line: the marker on the serial
//!   console proves rEFInd started the program at Fedora's path.
//! - direct mode: an ostree update simulated on the ext4 Kinoite `/boot` the
//!   way ostree makes it (new deployment folder and BLS entries under the
//!   other boot version, `loader` symlink swapped, the pruned deployment's
//!   kernel and initrd removed); `esp status` names the stale entries,
//!   `esp refresh-kinoite` re-renders them, rEFInd boots the new deployment
//!   with its new `ostree=` argument, and the NixOS side of the ESP is byte
//!   for byte what it was.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{bifrost, Boot, FakeNix};
use bifrost_e2e::{dualboot, initrd, BootTools};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn install_args(esp: &Path, profiles: &Path, refind: &Path) -> EspInstall {
    EspInstall::new(esp, profiles, refind).boot_menu()
}

#[test]
fn chainload_entry_starts_fedoras_shim() {
    let Some(t) = BootTools::find("chainload_entry_starts_fedoras_shim") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rd = dir.path().join("initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&rd);
    let profiles = dualboot::nixos_generation(dir.path(), &t.kernel, &rd);
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let refind = t.refind_dir.join("refind_x64.efi");
    let args = install_args(&esp, &profiles, &refind).args(["--kinoite-mode", "chainload"]);

    // No Fedora loader on the ESP: refused, with what to do, nothing written.
    let (ok, out, err) = args.run();
    assert!(!ok, "installed without Fedora's loader:\n{out}");
    assert!(
        err.contains("EFI/fedora/shimx64.efi") && err.contains("bootupctl update"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&esp).unwrap().count(), 0, "ESP changed");

    // The stand-in shim: rEFInd again, with a menu of its own.
    let fedora = esp.join("EFI/fedora");
    std::fs::create_dir_all(&fedora).unwrap();
    std::fs::copy(&refind, fedora.join("shimx64.efi")).unwrap();
    std::fs::copy(&t.kernel, fedora.join("kernel")).unwrap();
    std::fs::copy(&rd, fedora.join("initrd")).unwrap();
    std::fs::write(
        fedora.join("refind.conf"),
        "timeout 1\nscanfor manual\ntextonly\nmenuentry \"stand-in shim\" {\n  loader /EFI/fedora/kernel\n  initrd /EFI/fedora/initrd\n  options \"console=ttyS0 started-by=fedora-shim\"\n}\n",
    )
    .unwrap();
    let (ok, out, err) = args.run();
    assert!(ok, "install failed:\n{out}\n{err}");
    let conf = std::fs::read_to_string(esp.join("EFI/BOOT/refind.conf")).unwrap();
    assert!(conf.contains("loader /EFI/fedora/shimx64.efi"), "{conf}");
    assert!(
        !esp.join("EFI/BOOT/drivers_x64").exists(),
        "chainload needs no file-system driver"
    );
    let (ok, out, err) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap()]);
    assert!(ok, "status:\n{out}\n{err}");
    assert!(
        out.contains("kinoite: chainload EFI/fedora/shimx64.efi"),
        "{out}"
    );

    let disk = dualboot::boot_disk(dir.path(), &esp, None);
    assert_eq!(
        t.boot_menu(&disk, &["down", "ret"]),
        "console=ttyS0 started-by=fedora-shim"
    );

    // Fedora's loader gone (say, Fedora removed from the ESP): status says so.
    std::fs::remove_file(fedora.join("shimx64.efi")).unwrap();
    let (ok, out, _) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap()]);
    assert!(!ok, "status passed without the loader:\n{out}");
    assert!(
        out.contains("EFI/fedora/shimx64.efi: missing") && out.contains("bootupctl update"),
        "{out}"
    );
}

/// One deployment on Kinoite's `/boot`: its BLS entry (as ostree names and
/// writes it) and its kernel and initrd folder.
struct Deployment {
    csum: &'static str,
    serial_title: u32,
}

fn bls(d: &Deployment, index: u32, bootversion: u32) -> String {
    format!(
        "title Fedora Linux 41.{} (Kinoite) (ostree:{index})\nversion {}\noptions console=ttyS0 root=UUID=1234 rw ostree=/ostree/boot.{bootversion}/fedora/{}/0 side=kinoite\nlinux /ostree/fedora-{}/vmlinuz-6.1.0\ninitrd /ostree/fedora-{}/initramfs-6.1.0.img\n",
        d.serial_title,
        // ostree numbers entries so the newest has the highest version.
        10 - index,
        d.csum,
        d.csum,
        d.csum
    )
}

/// Write the loader folder of `bootversion` with `deps` (newest first) and
/// point `loader` at it, as ostree's bootloader switch does.
fn write_loader(boot: &Path, bootversion: u32, deps: &[&Deployment], t: &BootTools, rd: &Path) {
    let entries = boot.join(format!("loader.{bootversion}/entries"));
    std::fs::create_dir_all(&entries).unwrap();
    for (i, d) in deps.iter().enumerate() {
        let kdir = boot.join(format!("ostree/fedora-{}", d.csum));
        if !kdir.exists() {
            std::fs::create_dir_all(&kdir).unwrap();
            std::fs::copy(&t.kernel, kdir.join("vmlinuz-6.1.0")).unwrap();
            std::fs::copy(rd, kdir.join("initramfs-6.1.0.img")).unwrap();
        }
        std::fs::write(
            entries.join(format!("ostree-{}-fedora.conf", deps.len() - i)),
            bls(d, i as u32, bootversion),
        )
        .unwrap();
    }
    let tmp = boot.join("loader.tmp");
    std::os::unix::fs::symlink(format!("loader.{bootversion}"), &tmp).unwrap();
    std::fs::rename(&tmp, boot.join("loader")).unwrap();
}

/// Every file on the ESP but refind.conf, with its bytes.
fn esp_files(esp: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if !p.ends_with("refind.conf") {
                out.insert(
                    p.strip_prefix(root).unwrap().into(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(esp, esp, &mut out);
    out
}

/// refind.conf up to its first Kinoite stanza, without the state line.
fn nixos_part(conf: &str) -> String {
    let end = conf.find("\nmenuentry \"Fedora").expect("a Kinoite entry");
    conf[..end]
        .lines()
        .filter(|l| !l.starts_with("# bifrost-state "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn direct_entries_follow_an_ostree_update() {
    let Some(t) = BootTools::find("direct_entries_follow_an_ostree_update") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rd = dir.path().join("initrd");
    initrd::Initrd::new(&t.busybox, initrd::PRINT_CMDLINE_INIT).write(&rd);
    let profiles = dualboot::nixos_generation(dir.path(), &t.kernel, &rd);

    // Kinoite's /boot at boot version 0: deployment b booted, a its rollback.
    let kboot = dir.path().join("kinoite-boot");
    let a = Deployment {
        csum: "aaa111",
        serial_title: 1,
    };
    let b = Deployment {
        csum: "bbb222",
        serial_title: 2,
    };
    let c = Deployment {
        csum: "ccc333",
        serial_title: 3,
    };
    write_loader(&kboot, 0, &[&b, &a], &t, &rd);
    let entries = kboot.join("loader/entries");

    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let refind = t.refind_dir.join("refind_x64.efi");
    let args = install_args(&esp, &profiles, &refind)
        .args(["--kinoite-mode", "direct"])
        .path("--kinoite-entries", &entries)
        .args(["--kinoite-volume", "KINOITEBOOT"]);
    let (ok, out, err) = args.run();
    assert!(ok, "install failed:\n{out}\n{err}");
    let conf_path = esp.join("EFI/BOOT/refind.conf");
    let before_conf = std::fs::read_to_string(&conf_path).unwrap();
    assert!(
        before_conf.contains("ostree=/ostree/boot.0/fedora/bbb222/0"),
        "{before_conf}"
    );
    let before_files = esp_files(&esp);
    let status = |kb: &Path| {
        bifrost(&[
            "esp",
            "status",
            "--esp",
            esp.to_str().unwrap(),
            "--kinoite-boot",
            kb.to_str().unwrap(),
        ])
    };
    let (ok, out, err) = status(&kboot);
    assert!(ok, "status before the update:\n{out}\n{err}");

    // The update: deployment c under boot version 1, b its rollback, a pruned.
    write_loader(&kboot, 1, &[&c, &b], &t, &rd);
    std::fs::remove_dir_all(kboot.join("loader.0")).unwrap();
    std::fs::remove_dir_all(kboot.join(format!("ostree/fedora-{}", a.csum))).unwrap();

    let (ok, out, _) = status(&kboot);
    assert!(!ok, "status missed the stale entries:\n{out}");
    let stale: Vec<&str> = out.lines().filter(|l| l.contains("is stale")).collect();
    assert_eq!(stale.len(), 2, "{out}");
    assert!(
        stale[0].contains("41.2")
            && stale[0]
                .contains("ostree=/ostree/boot.0/fedora/bbb222/0 is not a current deployment"),
        "{out}"
    );
    assert!(
        stale[1].contains("41.1")
            && stale[1].contains("kernel /ostree/fedora-aaa111/vmlinuz-6.1.0 no longer exists"),
        "{out}"
    );

    let refresh = || {
        bifrost(&[
            "esp",
            "refresh-kinoite",
            "--esp",
            esp.to_str().unwrap(),
            "--kinoite-entries",
            entries.to_str().unwrap(),
            "--kinoite-volume",
            "KINOITEBOOT",
        ])
    };
    let (ok, out, err) = refresh();
    assert!(ok, "refresh failed:\n{out}\n{err}");
    assert!(out.contains("EFI/BOOT/refind.conf: updated"), "{out}");
    let after_conf = std::fs::read_to_string(&conf_path).unwrap();
    // Nothing changed since: nothing written.
    let (ok, out, err) = refresh();
    assert!(ok && out.contains("\n0 bytes written"), "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&conf_path).unwrap(), after_conf);
    let (ok, out, err) = status(&kboot);
    assert!(ok, "status after the refresh:\n{out}\n{err}");

    // The NixOS side: every file and every line of its entries as they were.
    assert_eq!(esp_files(&esp), before_files, "files on the ESP changed");
    assert_eq!(nixos_part(&after_conf), nixos_part(&before_conf));
    assert!(!after_conf.contains("aaa111"), "{after_conf}");

    let disk = dualboot::boot_disk(dir.path(), &esp, Some(&kboot));
    assert_eq!(
        t.boot_menu(&disk, &["down", "ret"]),
        "console=ttyS0 root=UUID=1234 rw ostree=/ostree/boot.1/fedora/ccc333/0 side=kinoite"
    );
}

/// `esp install` and `esp refresh-kinoite` take the ESP lock for their whole
/// run: while another holder has it (this test, standing in for a run that
/// is still writing), each says it waits and changes nothing; once it is
/// released, each finishes.
#[test]
fn install_and_refresh_wait_for_the_esp_lock() {
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let refind_dir = dir.path().join("refind");
    std::fs::create_dir_all(refind_dir.join("drivers_x64")).unwrap();
    let refind = refind_dir.join("refind_x64.efi");
    std::fs::write(&refind, b"MZ rEFInd").unwrap();
    std::fs::write(refind_dir.join("drivers_x64/ext4_x64.efi"), b"MZ").unwrap();
    let profiles = dir.path().join("profiles");
    for n in 1..=2u64 {
        let k = nix.store_file(&format!("linux-{n}"), "bzImage", &[n as u8; 64]);
        let top = nix.toplevel(
            &format!("system-{n}"),
            &Boot {
                label: format!("NixOS {n}"),
                kernel: k.clone(),
                initrd: k,
                params: vec![],
            },
            &[],
        );
        nix.link(&profiles, n, &top);
    }
    let entries: Vec<PathBuf> = ["x", "y"]
        .iter()
        .map(|set| {
            let e = dir.path().join(format!("entries-{set}"));
            std::fs::create_dir_all(&e).unwrap();
            std::fs::write(
                e.join("ostree-1.conf"),
                format!("title Fedora {set}\nlinux /ostree/{set}/vmlinuz\noptions ostree=/ostree/boot.0/fedora/{set}/0\n"),
            )
            .unwrap();
            e
        })
        .collect();
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let install = || {
        EspInstall::new(&esp, &profiles, &refind)
            .args(["--kinoite-mode", "direct"])
            .path("--kinoite-entries", &entries[0])
            .args(["--kinoite-volume", "KB"])
            .command()
    };
    let out = install().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = esp.join("EFI/refind/refind.conf");
    let mut refresh = std::process::Command::new(bifrost_e2e::bifrost_bin());
    refresh
        .args(["esp", "refresh-kinoite", "--esp"])
        .arg(&esp)
        .arg("--kinoite-entries")
        .arg(&entries[1])
        .args(["--kinoite-volume", "KB"]);
    // Generations changed too, so the install has something to write.
    std::fs::remove_file(profiles.join("system-2-link")).unwrap();

    for (name, mut cmd) in [("refresh-kinoite", refresh), ("install", install())] {
        let before = std::fs::read_to_string(&conf).unwrap();
        let held = std::fs::File::open(&esp).unwrap();
        // SAFETY: a valid open fd; flock only changes its lock state.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(
            line.contains("another bifrost run is writing"),
            "{name}: {line}"
        );
        assert!(child.try_wait().unwrap().is_none(), "{name} did not wait");
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            before,
            "{name} wrote while locked out"
        );
        drop(held);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
        assert!(child.wait().unwrap().success(), "{name}: {rest}");
    }
    let after = std::fs::read_to_string(&conf).unwrap();
    assert!(
        after.contains("Generation 1:") && !after.contains("Generation 2:"),
        "{after}"
    );
    // The install read Kinoite's entries x again; the refresh before it had written y.
    assert!(after.contains("Fedora x"), "{after}");
    let (ok, out, err) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
}
