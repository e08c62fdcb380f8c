//! `bifrost sb keys`, `bifrost sb verify` and `esp install --sign-key/--shim`
//! without a VM: key files and their modes, refusals that leave the ESP as
//! it was, the shim taken from Fedora's folder on a dual-boot ESP, and a
//! rEFInd without SBAT flagged.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{bifrost, sb_verify, tree_hash, FakeNix};
use bifrost_e2e::{program, skip, tool_path, Tools};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct T {
    dir: tempfile::TempDir,
    refind: PathBuf,
    shim: Option<PathBuf>,
}

impl T {
    fn d(&self) -> &Path {
        self.dir.path()
    }
}

/// A fake system with one generation whose kernel is the (PE) test kernel.
fn setup(test: &str) -> Option<T> {
    let tools = Tools::find();
    let (Some(kernel), Some(refind_dir), Some(_), Some(_), Some(_)) = (
        tools.kernel,
        tools.refind_dir,
        program("openssl"),
        program("sbsign"),
        program("objcopy"),
    ) else {
        skip(
            test,
            "a kernel, rEFInd, openssl, sbsigntool and objcopy (binutils)",
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let k = nix.store_copy("linux-6.1.0", "bzImage", &kernel);
    let i = nix.store_file("initrd-6.1.0", "initrd", b"not a PE file");
    nix.generation(
        &dir.path().join("profiles"),
        1,
        "nixos-system-1",
        "NixOS",
        k,
        i,
    );
    std::fs::create_dir_all(dir.path().join("esp")).unwrap();
    let (ok, out, err) = bifrost(&[
        "sb",
        "keys",
        "--dir",
        dir.path().join("keys").to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    Some(T {
        refind: refind_dir.join("refind_x64.efi"),
        shim: tool_path("BIFROST_SHIM", "/usr/lib/shim/shimx64.efi.signed"),
        dir,
    })
}

fn install(t: &T, extra: &[&str]) -> (bool, String) {
    let d = t.d();
    let (ok, out, err) = EspInstall::new(&d.join("esp"), &d.join("profiles"), &t.refind)
        .args(extra)
        .run();
    (ok, format!("{out}{err}"))
}

fn keys(t: &T) -> [String; 4] {
    let k = t.d().join("keys");
    [
        "--sign-key".into(),
        k.join("mok.key").display().to_string(),
        "--sign-cert".into(),
        k.join("mok.crt").display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn keys_are_private_in_both_forms_and_never_overwritten() {
    let Some(t) = setup("keys_are_private_in_both_forms_and_never_overwritten") else {
        return;
    };
    let k = t.d().join("keys");
    let mode = |f: &str| std::fs::metadata(k.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("mok.key"), 0o600);
    assert_eq!(mode("mok.crt"), 0o644);
    // The DER form is the same certificate, RSA 2048.
    let der = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(k.join("mok.cer"))
        .output()
        .unwrap();
    assert!(der.status.success());
    assert!(String::from_utf8_lossy(&der.stdout).contains("2048 bit"));
    // A second run refuses and changes nothing.
    let before = tree_hash(&k);
    let (ok, out, err) = bifrost(&["sb", "keys", "--dir", k.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("mok.key") && err.contains("never overwrites"),
        "{out}{err}"
    );
    assert_eq!(tree_hash(&k), before);
    // PK, KEK and db on request, with their signature lists and signed updates.
    if program("cert-to-efi-sig-list").is_some() {
        let fw = t.d().join("fw");
        let (ok, out, err) = bifrost(&["sb", "keys", "--dir", fw.to_str().unwrap(), "--firmware"]);
        assert!(ok, "{out}{err}");
        for n in ["PK", "KEK", "db"] {
            for e in ["key", "crt", "cer", "esl", "auth"] {
                let f = fw.join(format!("{n}.{e}"));
                assert!(std::fs::metadata(&f).unwrap().len() > 0, "{f:?}");
            }
            assert_eq!(
                std::fs::metadata(fw.join(format!("{n}.key")))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600
            );
        }
    } else {
        skip(
            "keys_are_private_in_both_forms_and_never_overwritten",
            "efitools",
        );
    }
}

/// What `bifrost install`'s sb-keys step runs: the user's keys copied
/// private into a 0700 folder, kept on a re-run, refused when different.
#[test]
fn keys_from_the_user_are_copied_private_and_never_replaced() {
    let Some(t) = setup("keys_from_the_user_are_copied_private_and_never_replaced") else {
        return;
    };
    let src = t.d().join("keys");
    let dest = t.d().join("mnt/etc/secureboot");
    let args = [
        "sb",
        "keys",
        "--dir",
        dest.to_str().unwrap(),
        "--from",
        src.to_str().unwrap(),
        "--keep-existing",
    ];
    let (ok, out, err) = bifrost(&args);
    assert!(ok, "{out}{err}");
    assert!(out.contains("copied:"), "{out}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dest), 0o700);
    assert_eq!(mode(&dest.join("mok.key")), 0o600);
    for f in ["mok.key", "mok.crt", "mok.cer"] {
        assert_eq!(
            std::fs::read(dest.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap()
        );
    }
    // No key material in what it prints.
    let key = std::fs::read_to_string(src.join("mok.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!out.contains(body) && !err.contains(body));
    // Resumed install: the same set is kept.
    let (ok, out, err) = bifrost(&args);
    assert!(ok && out.contains("kept"), "{out}{err}");
    // A different key there is refused and left as it is.
    std::fs::write(dest.join("mok.crt"), "other").unwrap();
    let before = tree_hash(&dest);
    let (ok, out, err) = bifrost(&args);
    assert!(!ok && err.contains("differs from"), "{out}{err}");
    assert_eq!(tree_hash(&dest), before);
}

#[test]
fn bad_keys_fail_clearly_and_leave_the_esp_unchanged() {
    let Some(t) = setup("bad_keys_fail_clearly_and_leave_the_esp_unchanged") else {
        return;
    };
    let good = keys(&t);
    let (ok, out) = install(&t, &strs(&good));
    assert!(ok, "{out}");
    let esp = t.d().join("esp");
    let before = tree_hash(&esp);
    let k = t.d().join("keys");
    let other = t.d().join("other");
    let (ok, o, e) = bifrost(&["sb", "keys", "--dir", other.to_str().unwrap()]);
    assert!(ok, "{o}{e}");
    let missing = t.d().join("nope.key");
    let cases: [(&str, PathBuf, PathBuf, &str); 3] = [
        (
            "missing key",
            missing.clone(),
            k.join("mok.crt"),
            "does not exist",
        ),
        (
            "certificate as key",
            k.join("mok.crt"),
            k.join("mok.crt"),
            "not an unencrypted PEM private key",
        ),
        (
            "someone else's certificate",
            k.join("mok.key"),
            other.join("mok.crt"),
            "does not belong to key",
        ),
    ];
    for (what, key, cert, expect) in cases {
        let (ok, out) = install(
            &t,
            &[
                "--sign-key",
                key.to_str().unwrap(),
                "--sign-cert",
                cert.to_str().unwrap(),
            ],
        );
        assert!(!ok, "{what}: {out}");
        assert!(out.contains(expect), "{what}: {out}");
        assert!(
            out.contains(key.to_str().unwrap()) || out.contains(cert.to_str().unwrap()),
            "{what}: {out}"
        );
        assert_eq!(tree_hash(&esp), before, "{what} changed the ESP");
    }
    // A DER certificate where PEM is wanted.
    let (ok, out) = install(
        &t,
        &[
            "--sign-key",
            k.join("mok.key").to_str().unwrap(),
            "--sign-cert",
            k.join("mok.cer").to_str().unwrap(),
        ],
    );
    assert!(!ok && out.contains("not a PEM X.509 certificate"), "{out}");
    assert_eq!(tree_hash(&esp), before);
    // --shim without a key to sign rEFInd with.
    let (ok, out) = install(&t, &["--shim", t.refind.to_str().unwrap()]);
    assert!(!ok && out.contains("--shim needs --sign-key"), "{out}");
    assert_eq!(tree_hash(&esp), before);
}

#[test]
fn signed_install_is_idempotent_and_verified() {
    let Some(t) = setup("signed_install_is_idempotent_and_verified") else {
        return;
    };
    let good = keys(&t);
    let (ok, out) = install(&t, &strs(&good));
    assert!(ok, "{out}");
    let esp = t.d().join("esp");
    // Signed on the copy: the store's kernel keeps no signature of ours.
    let cert = t.d().join("keys/mok.crt");
    let verify = |json: bool| sb_verify(&esp, &cert, if json { &["--json"] } else { &[] });
    let (ok, out, err) = verify(true);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let roles: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["refind", "kernel"], "{out}");
    assert_eq!(v["files"][0]["sbat"], true);
    // A re-run writes nothing.
    let before = tree_hash(&esp);
    let (ok, out) = install(&t, &strs(&good));
    assert!(ok && out.contains("; 0 bytes written"), "{out}");
    assert_eq!(tree_hash(&esp), before);
    // Another key: a new kernel file name, the old one collected.
    let names = |esp: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(esp.join("EFI/nixos"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("bzImage"))
            .collect();
        v.sort();
        v
    };
    let first = names(&esp);
    let other = t.d().join("other");
    let (ok, o, e) = bifrost(&["sb", "keys", "--dir", other.to_str().unwrap()]);
    assert!(ok, "{o}{e}");
    let (ok, out) = install(
        &t,
        &[
            "--sign-key",
            other.join("mok.key").to_str().unwrap(),
            "--sign-cert",
            other.join("mok.crt").to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let second = names(&esp);
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    // Verified against the first certificate, every file fails now.
    let (ok, out, _) = verify(false);
    assert!(!ok);
    assert!(
        out.lines().filter(|l| l.contains("not signed")).count() == 2,
        "{out}"
    );

    // A rEFInd signed but without SBAT is flagged.
    let bin = esp.join("EFI/refind/refind_x64.efi");
    let st = Command::new("sbsign")
        .arg("--key")
        .arg(other.join("mok.key"))
        .arg("--cert")
        .arg(other.join("mok.crt"))
        .arg("--output")
        .arg(&bin)
        .arg(&t.refind)
        .output()
        .unwrap();
    assert!(st.status.success());
    let (ok, out, err) = sb_verify(&esp, &other.join("mok.crt"), &[]);
    assert!(!ok, "{out}{err}");
    let line = out.lines().find(|l| l.contains("refind_x64.efi")).unwrap();
    assert!(line.contains("no .sbat section"), "{out}");
    assert!(!line.contains("not signed"), "{out}");
}

#[test]
fn shim_from_fedoras_folder_on_a_dual_boot_esp() {
    let Some(t) = setup("shim_from_fedoras_folder_on_a_dual_boot_esp") else {
        return;
    };
    let Some(shim) = t.shim.clone() else {
        skip("shim_from_fedoras_folder_on_a_dual_boot_esp", "shim-signed");
        return;
    };
    let esp = t.d().join("esp");
    let fedora = esp.join("EFI/fedora");
    std::fs::create_dir_all(&fedora).unwrap();
    std::fs::copy(&shim, fedora.join("shimx64.efi")).unwrap();
    std::fs::copy(
        shim.with_file_name("mmx64.efi.signed"),
        fedora.join("mmx64.efi"),
    )
    .unwrap();
    let fedora_before = tree_hash(&fedora);
    let mut a = keys(&t).to_vec();
    a.push("--shim".into());
    let (ok, out) = install(&t, &strs(&a));
    assert!(ok, "{out}");
    let r = esp.join("EFI/refind");
    assert_eq!(
        std::fs::read(r.join("shimx64.efi")).unwrap(),
        std::fs::read(&shim).unwrap()
    );
    assert!(r.join("mmx64.efi").is_file());
    assert!(r.join("grubx64.efi").is_file());
    assert!(!esp.join("EFI/BOOT").exists(), "EFI/BOOT was written");
    assert_eq!(tree_hash(&fedora), fedora_before, "Fedora's folder changed");
    let (ok, out, err) = sb_verify(&esp, &t.d().join("keys/mok.crt"), &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("shim") && out.contains("mokmanager"), "{out}");
    // No Fedora shim: the error says to pass one.
    std::fs::remove_dir_all(&fedora).unwrap();
    let (ok, out) = install(&t, &strs(&a));
    assert!(!ok && out.contains("--shim FILE"), "{out}");
}

const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
const DB: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";

/// A folder standing in for efivarfs: `Name-GUID` files of 4 attribute
/// bytes and the data, as the kernel presents them.
fn efivar(dir: &Path, name: &str, guid: &str, data: &[u8]) {
    let mut b = 6u32.to_le_bytes().to_vec();
    b.extend_from_slice(data);
    std::fs::write(dir.join(format!("{name}-{guid}")), b).unwrap();
}

#[test]
fn enroll_writes_signed_db_kek_pk_only_in_setup_mode() {
    let test = "enroll_writes_signed_db_kek_pk_only_in_setup_mode";
    let Some(t) = setup(test) else {
        return;
    };
    if program("sign-efi-sig-list").is_none() {
        skip(test, "efitools");
        return;
    }
    let fw = t.d().join("fw");
    let (ok, o, e) = bifrost(&["sb", "keys", "--dir", fw.to_str().unwrap(), "--firmware"]);
    assert!(ok, "{o}{e}");
    let vars = t.d().join("efivars");
    std::fs::create_dir_all(&vars).unwrap();
    let enroll = |extra: &[&str]| {
        let mut a = vec![
            "sb",
            "enroll",
            "--keys",
            fw.to_str().unwrap(),
            "--efivars",
            vars.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        bifrost(&a)
    };
    // No SetupMode variable: not UEFI.
    let (ok, _, err) = enroll(&[]);
    assert!(!ok && err.contains("no SetupMode variable"), "{err}");
    // User mode: refused, nothing written.
    efivar(&vars, "SetupMode", GLOBAL, &[0]);
    let before = tree_hash(&vars);
    let (ok, _, err) = enroll(&[]);
    assert!(
        !ok && err.contains("not in setup mode") && err.contains("enroll-mok"),
        "{err}"
    );
    assert_eq!(tree_hash(&vars), before);
    // Setup mode with a db holding a Microsoft certificate.
    efivar(&vars, "SetupMode", GLOBAL, &[1]);
    let ms = t.d().join("ms");
    std::fs::create_dir_all(&ms).unwrap();
    let mk = |args: &[&str]| {
        assert!(
            Command::new(args[0])
                .args(&args[1..])
                .output()
                .unwrap()
                .status
                .success(),
            "{args:?}"
        )
    };
    let (mkey, mcrt, mesl) = (ms.join("k"), ms.join("c.crt"), ms.join("c.esl"));
    mk(&[
        "openssl",
        "req",
        "-new",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=Microsoft Corporation UEFI CA test/",
        "-keyout",
        mkey.to_str().unwrap(),
        "-out",
        mcrt.to_str().unwrap(),
    ]);
    mk(&[
        "cert-to-efi-sig-list",
        mcrt.to_str().unwrap(),
        mesl.to_str().unwrap(),
    ]);
    let ms_esl = std::fs::read(&mesl).unwrap();
    efivar(&vars, "db", DB, &ms_esl);
    // --microsoft needs Microsoft's certificates in KEK too: none there.
    let before = tree_hash(&vars);
    let (ok, _, err) = enroll(&["--microsoft"]);
    assert!(
        !ok && err.contains("KEK holds no Microsoft certificate"),
        "{err}"
    );
    assert_eq!(tree_hash(&vars), before);
    efivar(&vars, "KEK", GLOBAL, &ms_esl);
    let (ok, out, err) = enroll(&["--microsoft"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("wrote db, KEK, PK"), "{out}");
    for (name, guid) in [("db", DB), ("KEK", GLOBAL), ("PK", GLOBAL)] {
        let b = std::fs::read(vars.join(format!("{name}-{guid}"))).unwrap();
        assert_eq!(
            b[..4],
            0x27u32.to_le_bytes(),
            "{name}: time-based authenticated write"
        );
        let contains = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
        let own = std::fs::read(fw.join(format!("{name}.esl"))).unwrap();
        assert!(contains(&own), "{name} holds the new key's list");
        assert_eq!(
            contains(&ms_esl),
            name != "PK",
            "{name}: Microsoft's list kept in db and KEK only"
        );
        // A signed update: the signer's certificate is in it.
        let signer = if name == "db" { "KEK" } else { "PK" };
        let der = std::fs::read(fw.join(format!("{signer}.cer"))).unwrap();
        assert!(contains(&der), "{name} is signed by {signer}");
    }
}

#[test]
fn enroll_mok_queues_the_der_certificate_through_mokutil() {
    let Some(t) = setup("enroll_mok_queues_the_der_certificate_through_mokutil") else {
        return;
    };
    // A stand-in mokutil that keeps what `--import` was given, as the real
    // one copies it into the MokNew request.
    let bin = t.d().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let got = t.d().join("imported.cer");
    std::fs::write(
        bin.join("mokutil"),
        format!(
            "#!/bin/sh\n[ \"$1\" = --import ] || exit 2\ncp \"$2\" {}\n",
            got.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("mokutil"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let k = t.d().join("keys");
    for cert in ["mok.crt", "mok.cer"] {
        let out = Command::new(bifrost_e2e::bifrost_bin())
            .args(["sb", "enroll-mok", "--cert", k.join(cert).to_str().unwrap()])
            .env("PATH", &path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("MokManager") && text.contains("Enroll MOK"),
            "{text}"
        );
        assert_eq!(
            std::fs::read(&got).unwrap(),
            std::fs::read(k.join("mok.cer")).unwrap(),
            "{cert}: DER handed over"
        );
    }
    let out = Command::new(bifrost_e2e::bifrost_bin())
        .args([
            "sb",
            "enroll-mok",
            "--cert",
            k.join("mok.key").to_str().unwrap(),
        ])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an X.509 certificate"));
}

/// The NixOS hook passes only the settings file (modules/boot.nix): bifrost
/// signs with the key the settings name (`db` with own keys) and, unless the
/// install is removable or `--no-nvram`, registers rEFInd in the firmware's
/// boot menu — here, where there is no efivarfs, it says so after the ESP
/// was written.
#[test]
fn settings_sign_and_register_without_flags() {
    let Some(t) = setup("settings_sign_and_register_without_flags") else {
        return;
    };
    let own = t.d().join("own");
    std::fs::create_dir_all(&own).unwrap();
    for e in ["key", "crt"] {
        std::fs::copy(
            t.d().join(format!("keys/mok.{e}")),
            own.join(format!("db.{e}")),
        )
        .unwrap();
    }
    let settings = |removable: bool| {
        let f = t.d().join(format!("settings-{removable}.json"));
        let v = serde_json::json!({
            "hostName": "h",
            "hardware": { "profile": "generic-x86_64-uefi" },
            "users": [{ "name": "alice", "uid": 1000, "admin": true }],
            "boot": { "removable": removable },
            "storage": { "luks": { "device": "/dev/vda2" }, "subvolumes": [{ "name": "@", "mountPoint": "/" }] },
            "security": { "secureBoot": { "enable": true, "keysPath": own, "route": "own-keys" } },
        });
        std::fs::write(&f, v.to_string()).unwrap();
        f
    };
    let no_efivars = t.d().join("no-efivars");
    let s = settings(false);
    let (ok, out) = install(
        &t,
        &[
            "--settings",
            s.to_str().unwrap(),
            "--efivars",
            no_efivars.to_str().unwrap(),
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("installed generations [1]"), "{out}");
    assert!(
        out.contains(&format!("{} does not exist", no_efivars.display())),
        "{out}"
    );
    let esp = t.d().join("esp");
    let (ok, out, err) = bifrost(&[
        "sb",
        "verify",
        "--esp",
        esp.to_str().unwrap(),
        "--cert",
        own.join("db.crt").to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    // Told not to, or removable: NVRAM is left alone; nothing else changes.
    let (ok, out) = install(&t, &["--settings", s.to_str().unwrap(), "--no-nvram"]);
    assert!(ok && out.contains("; 0 bytes written"), "{out}");
    let r = settings(true);
    let (ok, out) = install(&t, &["--settings", r.to_str().unwrap()]);
    assert!(ok && !out.contains("nvram"), "{out}");
    assert!(esp.join("EFI/BOOT/BOOTX64.EFI").is_file());
}
