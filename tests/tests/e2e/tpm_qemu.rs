//! `bifrost tpm` for real, inside one QEMU guest with a software TPM
//! (`swtpm`, TIS device): refusals (wrong passphrase, LUKS1), each leaving
//! the LUKS header byte for byte as it was; the enrollment with a recovery
//! key; the volume opening through `systemd-cryptsetup` with the TPM alone;
//! after PCR 7 is extended on purpose, the TPM refusing while the
//! passphrase still opens the volume; a TPM2 slot enrolled outside bifrost
//! by systemd-cryptenroll (Kinoite's, under another PCR 7 value) that two
//! re-enrollments keep, token for token, while each replaces bifrost's own
//! slot (the record of bifrost's slots checked, and the removal command its
//! note gives run); the re-enrollment opening with the TPM again;
//! last (the kernel numbers a rebound TPM anew), the refusal with the TPM
//! driver unbound. The guest prints `@@` lines that
//! this side asserts on.

use bifrost_e2e::guest::{
    all, assert_secret_unseen, blank_disks, finished, init_script, insmod_lines, kernel_version,
    one, resolve_modules, RUN_TEST_SH,
};
use bifrost_e2e::{guest::Swtpm, initrd::Initrd, program, qemu, skip, tool_path, Tools};
use std::path::PathBuf;
use std::time::Duration;

const TEST: &str = "tpm_enroll_unlock_and_refuse_in_qemu";
/// The test passphrase: it must show up nowhere but in the key file.
const PASS: &str = "Bifrost-tpm-passphrase-5c2e";
/// The PIN of the PIN case, from `--pin-file` (the guest has no terminal).
const PIN: &str = "Bifrost-pin-7f31";

/// What the guest's kernel needs for virtio disks and dm-crypt (the TPM TIS
/// driver is built into Debian's kernel).
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "ecb",
    "xts",
    "crc32c_generic",
    "algif_skcipher",
    "dm-crypt",
];

/// Libraries systemd and tpm2-tools open with dlopen (ldd cannot see them):
/// the TSS2 stack and the TCTI for `/dev/tpmrm0`.
const DLOPENED: &[&str] = &[
    "libtss2-esys.so.0",
    "libtss2-rc.so.0",
    "libtss2-mu.so.0",
    "libtss2-tcti-device.so.0",
];

const TEST_SH: &str = r#"
set -o pipefail
say() { sed "s/^/@@$1 /"; }
enroll() { bifrost tpm enroll "$@" 2>&1; }
header() { rm -f /tmp/hdr; cryptsetup luksHeaderBackup "$1" --header-backup-file /tmp/hdr && sha256sum < /tmp/hdr | cut -d' ' -f1; }
same() { if [ "$(header "$1")" = "$2" ]; then echo "@@$3-header same"; else echo "@@$3-header changed"; fi; }
attach() { @SDCRYPTSETUP@ attach tpmtest /dev/vda - tpm2-device=auto,headless=true 2>&1 | say "$1"
  if [ -e /dev/mapper/tpmtest ]; then echo "@@$1-opened yes"; @SDCRYPTSETUP@ detach tpmtest; else echo "@@$1-opened no"; fi; }
# systemd-cryptsetup 252 takes the PIN from $PIN when headless (src/cryptsetup/).
pinattach() { PIN="$2" @SDCRYPTSETUP@ attach tpmtest /dev/vda - tpm2-device=auto,headless=true 2>&1 | say "$1"
  if [ -e /dev/mapper/tpmtest ]; then echo "@@$1-opened yes"; @SDCRYPTSETUP@ detach tpmtest; else echo "@@$1-opened no"; fi; }

# Watch every process's command line and environment while bifrost runs.
( while [ ! -e /tmp/stop-watch ]; do
    cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ >> /tmp/procs 2>/dev/null
    ps -o args >> /tmp/procs
    cat /proc/[0-9]*/cmdline >> /tmp/cmds 2>/dev/null
    usleep 20000
  done ) &

# The pool, LUKS2 with the Argon2id cost of tests/data/install-host.json (as
# `bifrost install` makes it); a LUKS1 container beside it.
cryptsetup luksFormat --batch-mode --type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1 --key-file /key /dev/vda
cryptsetup luksFormat --batch-mode --type luks1 --pbkdf-force-iterations 1000 --key-file /key /dev/vdb
ls /sys/class/tpmrm | say tpm

# Refusals: nothing may change.
h=$(header /dev/vda)
enroll --device /dev/vda --key-file /wrong | say wrong; echo "@@wrong-exit $?"
same /dev/vda "$h" wrong
h1=$(header /dev/vdb)
enroll --device /dev/vdb --key-file /key | say luks1; echo "@@luks1-exit $?"
same /dev/vdb "$h1" luks1
# Enroll, with a recovery key (systemd-cryptenroll prints it once).
enroll --device /dev/vda --key-file /key --recovery-key > /tmp/enroll.out
echo "@@enroll-exit $?"
say enroll < /tmp/enroll.out
grep -o -E '[cbdefghijklnrtuv]{8}(-[cbdefghijklnrtuv]{8}){7}' /tmp/enroll.out | head -n 1 | tr -d '\n' > /tmp/recovery
if [ -s /tmp/recovery ] && cryptsetup open --test-passphrase --disable-external-tokens --key-file /tmp/recovery /dev/vda; then
  echo "@@recovery-opens yes"; else echo "@@recovery-opens no"; fi
bifrost tpm status --device /dev/vda --json | tr -d ' \n' | say status1; echo
attach tpm-attach

# A different Secure Boot state: PCR 7 no longer matches.
TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2_pcrextend 7:sha256=$(echo changed | sha256sum | cut -d' ' -f1) 2>&1 | say extend
attach tpm-refused
if cryptsetup open --disable-external-tokens --key-file /key /dev/vda pass 2>&1; then echo "@@pass-opened yes"; cryptsetup close pass; else echo "@@pass-opened no"; fi

# Kinoite, whose boot chain gives another PCR 7 value (the one after the
# extend above), enrolls its own slot with systemd-cryptenroll, as Fedora does.
systemd-cryptenroll --unlock-key-file=/key --tpm2-device=auto --tpm2-pcrs=7 /dev/vda 2>&1 | say kinoite; echo "@@kinoite-exit $?"
cryptsetup luksDump --dump-json-metadata /dev/vda | tr -d ' \n' | say dump-kinoite; echo
cryptsetup luksUUID /dev/vda | say uuid

# Back on NixOS after a firmware or key change: PCR 7 differs from both.
TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2_pcrextend 7:sha256=$(echo changed-again | sha256sum | cut -d' ' -f1) 2>&1 | say extend
# Enrolled again after the change (the runbook's re-enrollment): the new
# slot replaces bifrost's old one, Kinoite's stays, and the TPM opens the volume again.
enroll --device /dev/vda --key-file /key > /tmp/reenroll.out; echo "@@reenroll-exit $?"
say reenroll < /tmp/reenroll.out
bifrost tpm status --device /dev/vda | say status2
cryptsetup luksDump --dump-json-metadata /dev/vda | tr -d ' \n' | say dump-re; echo
attach tpm-attach2

# With a PIN (from --pin-file), replacing the slot above: the TPM opens the
# volume with the right PIN only (the right one first: wrong PINs count
# towards the TPM's lockout); the passphrase still opens it.
enroll --device /dev/vda --key-file /key --pin-file /pin | say pinenroll; echo "@@pinenroll-exit $?"
bifrost tpm status --device /dev/vda | say status3
bifrost tpm status --device /dev/vda --json | tr -d ' \n' | say status3json; echo
cryptsetup luksDump --dump-json-metadata /dev/vda | tr -d ' \n' | say dump-pin; echo
stat -c '%a' /var/lib/bifrost/tpm-slots.json | say record-mode
tr -d ' \n' < /var/lib/bifrost/tpm-slots.json | say record; echo
# Kinoite's slot gone stale: the command the note gave removes it (and keeps
# systemd 252's headless attach below from trying Kinoite's slot first, which
# uses up $PIN before it reaches the PIN slot).
wipe=$(grep -o 'systemd-cryptenroll --wipe-slot=[0-9]* /dev/vda' /tmp/reenroll.out | head -n 1)
echo "@@wipe-cmd $wipe"
$wipe 2>&1 | say wipe
bifrost tpm status --device /dev/vda | say status4
pinattach pin-right "$(cat /pin)"
pinattach pin-wrong not-the-pin
if cryptsetup open --disable-external-tokens --key-file /key /dev/vda pass 2>&1; then echo "@@pinpass-opened yes"; cryptsetup close pass; else echo "@@pinpass-opened no"; fi

# No TPM (its driver unbound): refused, nothing changed.
tis=/sys/bus/platform/drivers/tpm_tis
dev=$(cd $tis && ls -d *:* | head -n 1)
echo "$dev" > $tis/unbind
ls /sys/class/tpmrm | say notpm-left
h=$(header /dev/vda)
enroll --device /dev/vda --key-file /key | say notpm; echo "@@notpm-exit $?"
same /dev/vda "$h" notpm


touch /tmp/stop-watch
sleep 0.2
echo "@@watched-bifrost $(grep -c 'bifrost tpm' /tmp/procs)"
echo "@@watched-cryptenroll $(grep -c 'systemd-cryptenroll' /tmp/procs)"
echo "@@watched-secret $(grep -c -F -f /key /tmp/procs)"
echo "@@watched-pin-cmdline $(grep -c -F -f /pin /tmp/cmds)"
"#;

#[test]
fn tpm_enroll_unlock_and_refuse_in_qemu() {
    let t = Tools::find();
    // nixpkgs may wrap it in a script (busybox cannot run it, ldd sees no
    // libraries); the program itself is the `.NAME-wrapped` beside it.
    let sd_cryptsetup = tool_path(
        "BIFROST_SYSTEMD_CRYPTSETUP",
        "/usr/lib/systemd/systemd-cryptsetup",
    )
    .map(|p| {
        let wrapped = p.with_file_name(".systemd-cryptsetup-wrapped");
        if wrapped.is_file() {
            wrapped
        } else {
            p
        }
    });
    let token_plugin = tool_path(
        "BIFROST_CRYPTSETUP_TPM2_TOKEN",
        "/usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so",
    );
    let lib_dir = std::env::var_os("BIFROST_TSS2_LIB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    let tss2: Option<Vec<PathBuf>> = DLOPENED
        .iter()
        .map(|l| Some(lib_dir.join(l)).filter(|p| p.exists()))
        .collect();
    let (
        Some(qemu_bin),
        Some(kernel),
        Some(busybox),
        Some(swtpm),
        Some(cryptsetup),
        Some(cryptenroll),
        Some(sd_cryptsetup),
        Some(token_plugin),
        Some(tpm2),
        Some(tss2),
        Some(_),
    ) = (
        t.qemu,
        t.kernel,
        t.busybox,
        program("swtpm"),
        program("cryptsetup"),
        program("systemd-cryptenroll"),
        sd_cryptsetup,
        token_plugin,
        program("tpm2_pcrextend"),
        tss2,
        program("modinfo"),
    )
    else {
        return skip(
            TEST,
            "qemu-system-x86_64, a kernel, busybox, swtpm, cryptsetup (cryptsetup-bin), systemd-cryptenroll and systemd-cryptsetup with its TPM2 token plugin (systemd), tpm2_pcrextend (tpm2-tools), libtss2-tcti-device.so.0 (libtss2-tcti-device0) and modinfo (kmod)",
        );
    };
    let Some(kver) = kernel_version(&kernel) else {
        return skip(
            TEST,
            "the kernel's modules in /lib/modules/<version> (or BIFROST_KERNEL_MODULES)",
        );
    };
    let mut modules = Vec::new();
    resolve_modules(&kver, MODULES, &mut modules);

    let init = init_script(&insmod_lines(&modules), RUN_TEST_SH);
    let initrd = Initrd::new(&busybox, &init);
    let script = TEST_SH.replace("@SDCRYPTSETUP@", &sd_cryptsetup.to_string_lossy());
    initrd
        .file("test.sh", script.as_bytes(), 0o755)
        .file("key", PASS.as_bytes(), 0o600)
        .file("wrong", b"not-the-passphrase", 0o600)
        .file("pin", format!("{PIN}\n").as_bytes(), 0o600);
    initrd.modules(&modules);
    // tpm2_pcrextend is a link to the multi-call `tpm2`; keep the name it answers to.
    let tpm2_real = std::fs::canonicalize(&tpm2).unwrap();
    for p in [&cryptsetup, &cryptenroll, &sd_cryptsetup, &tpm2_real]
        .into_iter()
        .chain(&tss2)
        .chain([&token_plugin])
    {
        initrd.program(p);
    }
    let tpm2_dir = tpm2.parent().unwrap().strip_prefix("/").unwrap();
    std::fs::create_dir_all(initrd.root().join(tpm2_dir)).unwrap();
    if tpm2 != tpm2_real {
        std::os::unix::fs::symlink(
            &tpm2_real,
            initrd.root().join(tpm2_dir).join("tpm2_pcrextend"),
        )
        .unwrap();
    }
    // libcryptsetup looks for token plugins in its compiled-in folder under
    // /lib; Debian's /lib is /usr/lib, the initrd's is not.
    let plugin_rel = token_plugin.strip_prefix("/").unwrap();
    if let Ok(under_lib) = token_plugin.strip_prefix("/usr") {
        let dest = initrd.root().join(under_lib);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(initrd.root().join(plugin_rel), dest).unwrap();
    }
    initrd.bifrost();

    let dir = tempfile::tempdir().unwrap();
    let initrd_path = dir.path().join("initrd");
    initrd.write(&initrd_path);
    let disks = blank_disks(dir.path(), &["vda.img", "vdb.img"], 32 << 20);

    let tpm = Swtpm::start(&swtpm);
    let mut builder = qemu::QemuBuilder::new(&qemu_bin, 1024)
        .kernel(&kernel, &initrd_path, "console=ttyS0 panic=-1 loglevel=3")
        .disk(&disks[0])
        .disk(&disks[1]);
    for a in tpm.qemu_args() {
        builder = builder.arg(a);
    }
    let mut vm = builder.spawn();
    let log = vm.wait_exit(Duration::from_secs(600));
    let m = finished(&log);
    let ctx = || qemu::tail(&log);
    assert_eq!(all(&m, "tpm"), "tpmrm0", "the guest has no TPM:\n{}", ctx());

    // No secret anywhere: console, command lines, environments.
    assert_secret_unseen(&log, &m, PASS);
    assert!(!log.contains(PIN), "the PIN appeared on the console");
    assert_eq!(
        one(&m, "watched-pin-cmdline"),
        "0",
        "the PIN appeared in a command line"
    );
    assert_ne!(
        one(&m, "watched-cryptenroll"),
        "0",
        "the watcher never saw systemd-cryptenroll run"
    );

    // Refusals: a clear error, the header unchanged.
    let r = all(&m, "wrong");
    assert_ne!(one(&m, "wrong-exit"), "0", "{r}");
    assert!(
        r.contains("/dev/vda: the passphrase does not open it"),
        "{r}"
    );
    assert_eq!(one(&m, "wrong-header"), "same");
    let r = all(&m, "luks1");
    assert_ne!(one(&m, "luks1-exit"), "0", "{r}");
    assert!(
        r.contains("/dev/vdb: is LUKS1; a TPM2 key slot needs LUKS2"),
        "{r}"
    );
    assert_eq!(one(&m, "luks1-header"), "same");
    assert_eq!(all(&m, "notpm-left"), "", "unbinding tpm_tis left a TPM");
    let r = all(&m, "notpm");
    assert_ne!(one(&m, "notpm-exit"), "0", "{r}");
    assert!(r.contains("no TPM 2.0 found"), "{r}");
    assert_eq!(one(&m, "notpm-header"), "same");

    // Enrolled: passphrase kept, TPM slot bound to PCR 7, recovery key shown once and working.
    let r = all(&m, "enroll");
    assert_eq!(one(&m, "enroll-exit"), "0", "{r}");
    assert!(
        r.contains("sealing to PCR 7 (the default of storage.luks.unlock.tpm2Pcrs: no --pcrs, and no host settings at /etc/bifrost/host.json)"),
        "{r}"
    );
    assert_eq!(one(&m, "recovery-opens"), "yes", "{r}");
    let status: serde_json::Value = serde_json::from_str(one(&m, "status1")).unwrap();
    let kinds: Vec<&str> = status["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["passphrase", "recovery", "tpm2"], "{status}");
    let tpm_slot = &status["slots"][2];
    assert_eq!(tpm_slot["pcrs"], serde_json::json!([7]), "{status}");
    assert_eq!(tpm_slot["pin"], false);
    assert_eq!(status["tpmDevices"], serde_json::json!(["tpmrm0"]));

    // The TPM alone opens it through systemd-cryptsetup (headless: no passphrase asked).
    assert_eq!(
        one(&m, "tpm-attach-opened"),
        "yes",
        "{}",
        all(&m, "tpm-attach")
    );
    // PCR 7 changed: the TPM refuses, the passphrase still opens the volume.
    assert_eq!(all(&m, "extend"), "", "tpm2_pcrextend failed");
    let r = all(&m, "tpm-refused");
    assert_eq!(one(&m, "tpm-refused-opened"), "no", "{r}");
    assert!(
        r.contains("policy"),
        "the refusal names no policy mismatch:\n{r}"
    );
    assert_eq!(one(&m, "pass-opened"), "yes");

    // Kinoite's slot, made by systemd-cryptenroll outside bifrost.
    assert_eq!(one(&m, "kinoite-exit"), "0", "{}", all(&m, "kinoite"));
    let ours1 = status["slots"][2]["keyslot"].as_u64().unwrap();
    let dump_k = luks_json(one(&m, "dump-kinoite"));
    let tpm2_k = tpm2_tokens(&dump_k);
    assert_eq!(tpm2_k.len(), 2, "{dump_k}");
    let (kinoite, kinoite_token) = tpm2_k
        .iter()
        .find(|(slot, _)| *slot != ours1)
        .cloned()
        .unwrap();
    let hash_of =
        |slot: u64| tpm2_k.iter().find(|(s, _)| *s == slot).unwrap().1["tpm2-policy-hash"].clone();
    assert_ne!(hash_of(ours1), hash_of(kinoite), "two boots, two policies");

    // Enrolled again: bifrost's old slot replaced, Kinoite's kept (token
    // byte for byte) and named with the command to remove it; the TPM opens it.
    let s2 = all(&m, "status2");
    let r = all(&m, "reenroll");
    assert_eq!(one(&m, "reenroll-exit"), "0", "{r}");
    assert!(
        !r.contains("already enrolled"),
        "the new PCR 7 value made no new slot:\n{r}"
    );
    assert!(
        r.contains(&format!(
            "replacing slot {ours1} that bifrost enrolled on this system"
        )),
        "{r}"
    );
    assert!(
        r.contains(&format!("note: slot {kinoite} (TPM2, PCR 7, no PIN) was not enrolled by bifrost on this system (Kinoite's, for example, or made by hand): kept. Once it is stale, remove it with `systemd-cryptenroll --wipe-slot={kinoite} /dev/vda`")),
        "{r}"
    );
    let tpm2_re = tpm2_tokens(&luks_json(one(&m, "dump-re")));
    assert_eq!(tpm2_re.len(), 2, "{tpm2_re:?}");
    assert!(
        tpm2_re.contains(&(kinoite, kinoite_token.clone())),
        "Kinoite's slot changed: {tpm2_re:?}"
    );
    assert!(
        tpm2_re
            .iter()
            .all(|(_, t)| t["tpm2-policy-hash"] != hash_of(ours1)),
        "bifrost's old slot survived: {tpm2_re:?}"
    );
    let ours2 = tpm2_re.iter().find(|(s, _)| *s != kinoite).unwrap().0;
    assert_eq!(s2.matches("TPM2, bound to PCR 7").count(), 2, "{s2}");
    assert!(
        s2.contains(&format!("slot {ours2}: TPM2, bound to PCR 7 (sha256), no PIN, enrolled by bifrost on this system")),
        "{s2}"
    );
    assert!(
        s2.lines()
            .any(|l| l.trim() == format!("slot {kinoite}: TPM2, bound to PCR 7 (sha256), no PIN")),
        "{s2}"
    );
    assert!(
        s2.contains("passphrase") && s2.contains("recovery key"),
        "{s2}"
    );
    assert_eq!(
        one(&m, "tpm-attach2-opened"),
        "yes",
        "{}",
        all(&m, "tpm-attach2")
    );

    // With a PIN: one TPM2 slot, with PIN; the right PIN opens it, a wrong
    // one is refused, the passphrase still opens it.
    let r = all(&m, "pinenroll");
    assert_eq!(one(&m, "pinenroll-exit"), "0", "{r}");
    let s3 = all(&m, "status3");
    assert_eq!(s3.matches("TPM2, bound to PCR 7").count(), 2, "{s3}");
    assert!(
        s3.contains("with PIN, enrolled by bifrost on this system"),
        "{s3}"
    );
    // Still Kinoite's slot, untouched; bifrost's second slot replaced too.
    let tpm2_pin = tpm2_tokens(&luks_json(one(&m, "dump-pin")));
    assert_eq!(tpm2_pin.len(), 2, "{tpm2_pin:?}");
    assert!(tpm2_pin.contains(&(kinoite, kinoite_token)), "{tpm2_pin:?}");
    let ours3 = tpm2_pin.iter().find(|(s, _)| *s != kinoite).unwrap();
    assert_eq!(ours3.1["tpm2-pin"], true);
    let j3: serde_json::Value = serde_json::from_str(one(&m, "status3json")).unwrap();
    let marks: Vec<(u64, bool)> = j3["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "tpm2")
        .map(|s| {
            (
                s["keyslot"].as_u64().unwrap(),
                s["enrolledByBifrost"].as_bool().unwrap(),
            )
        })
        .collect();
    let mut want = vec![(ours3.0, true), (kinoite, false)];
    want.sort();
    assert_eq!(marks, want, "{j3}");
    // The record: root-only, keyed by the LUKS UUID, naming bifrost's slot only.
    assert_eq!(one(&m, "record-mode"), "600");
    let record: serde_json::Value = serde_json::from_str(one(&m, "record")).unwrap();
    let uuid = one(&m, "uuid");
    assert_eq!(record["devices"].as_object().unwrap().len(), 1, "{record}");
    let recorded = &record["devices"][uuid];
    assert_eq!(recorded.as_array().map(Vec::len), Some(1), "{record}");
    assert_eq!(recorded[0]["keyslot"].as_u64(), Some(ours3.0), "{record}");
    assert_eq!(
        recorded[0]["policyHash"], ours3.1["tpm2-policy-hash"],
        "{record}"
    );
    // The note's command removes Kinoite's slot, and only it.
    assert_eq!(
        one(&m, "wipe-cmd"),
        format!("systemd-cryptenroll --wipe-slot={kinoite} /dev/vda")
    );
    let s4 = all(&m, "status4");
    assert_eq!(s4.matches("TPM2, bound to PCR 7").count(), 1, "{s4}");
    assert!(s4.contains(&format!("slot {}: TPM2", ours3.0)), "{s4}");
    assert_eq!(
        one(&m, "pin-right-opened"),
        "yes",
        "{}",
        all(&m, "pin-right")
    );
    assert_eq!(
        one(&m, "pin-wrong-opened"),
        "no",
        "{}",
        all(&m, "pin-wrong")
    );
    assert_eq!(one(&m, "pinpass-opened"), "yes");
}

fn luks_json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("luksDump JSON: {e}: {line}"))
}

/// The systemd-tpm2 tokens of LUKS2 metadata: (key slot, token), in slot order.
fn tpm2_tokens(meta: &serde_json::Value) -> Vec<(u64, serde_json::Value)> {
    let mut v: Vec<(u64, serde_json::Value)> = meta["tokens"]
        .as_object()
        .unwrap()
        .values()
        .filter(|t| t["type"] == "systemd-tpm2")
        .map(|t| {
            (
                t["keyslots"][0].as_str().unwrap().parse().unwrap(),
                t.clone(),
            )
        })
        .collect();
    v.sort_by_key(|(s, _)| *s);
    v
}
