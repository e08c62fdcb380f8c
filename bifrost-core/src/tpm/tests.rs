use super::*;

/// A machine whose LUKS2 header is JSON metadata that each
/// systemd-cryptenroll run changes the way systemd does.
struct Fake {
    prefix: Vec<u8>,
    tpms: Vec<String>,
    json: String,
    passphrase: Vec<u8>,
    terminal: bool,
    enroll_runs: Vec<Vec<String>>,
    secrets_seen: Vec<Vec<u8>>,
    asked_for_secret: bool,
    pins_seen: Vec<Option<Vec<u8>>>,
    pin_asked: usize,
    /// Stands for the PCR values of this boot: part of each new policy hash.
    boot: &'static str,
    record_dir: tempfile::TempDir,
}

const UUID: &str = "0f1e2d3c-0000-4000-8000-00000000beef";

/// The first bytes of a LUKS2 header with [`UUID`].
fn luks2_prefix() -> Vec<u8> {
    let mut h = b"LUKS\xba\xbe\x00\x02".to_vec();
    h.resize(header::HEADER_PREFIX, 0);
    h[168..168 + UUID.len()].copy_from_slice(UUID.as_bytes());
    h
}

const ONE_PASSPHRASE: &str = r#"{"keyslots": {"0": {"type": "luks2"}}, "tokens": {}}"#;

impl Fake {
    fn new() -> Fake {
        Fake {
            prefix: luks2_prefix(),
            tpms: vec!["tpmrm0".into()],
            json: ONE_PASSPHRASE.into(),
            passphrase: b"right".to_vec(),
            terminal: false,
            enroll_runs: Vec::new(),
            secrets_seen: Vec::new(),
            asked_for_secret: false,
            pins_seen: Vec::new(),
            pin_asked: 0,
            boot: "nixos",
            record_dir: tempfile::tempdir().unwrap(),
        }
    }

    fn record(&self) -> record::Record {
        record::load(&self.record_path()).unwrap()
    }

    /// A TPM2 slot made by systemd-cryptenroll run by hand (from Kinoite,
    /// say), sealed under the boot `boot`; its key-slot number.
    fn enroll_outside(&mut self, boot: &'static str) -> u32 {
        let ours = self.boot;
        self.boot = boot;
        let args: Vec<String> = [
            "--tpm2-device=auto",
            "--tpm2-pcrs=7",
            "--tpm2-with-pin=no",
            "/dev/vda2",
        ]
        .map(String::from)
        .to_vec();
        let pass = Secret::from_bytes(self.passphrase.clone());
        self.cryptenroll(&args, &pass, None).unwrap();
        self.enroll_runs.pop();
        self.pins_seen.pop();
        self.boot = ours;
        self.tpm2_slots().last().unwrap().0
    }

    /// The TPM2 slots and their policy hashes, in slot order.
    fn tpm2_slots(&self) -> Vec<(u32, String)> {
        slots::parse(&self.json)
            .unwrap()
            .iter()
            .filter_map(|s| Some((s.keyslot, s.tpm2_policy_hash()?.to_owned())))
            .collect()
    }
}

impl Machine for Fake {
    fn header_prefix(&mut self, _: &Utf8Path) -> std::io::Result<Vec<u8>> {
        Ok(self.prefix.clone())
    }
    fn tpm_devices(&mut self) -> Vec<String> {
        self.tpms.clone()
    }
    fn luks_json(&mut self, _: &Utf8Path) -> Result<String, String> {
        Ok(self.json.clone())
    }
    fn passphrase_opens(&mut self, _: &Utf8Path, secret: &Secret) -> Result<bool, String> {
        self.secrets_seen.push(secret.expose().to_vec());
        Ok(secret.expose() == self.passphrase.as_slice())
    }
    fn cryptenroll(
        &mut self,
        args: &[String],
        secret: &Secret,
        new_pin: Option<&Secret>,
    ) -> Result<(), String> {
        assert_eq!(secret.expose(), self.passphrase.as_slice());
        self.pins_seen.push(new_pin.map(|p| p.expose().to_vec()));
        self.enroll_runs.push(args.to_vec());
        let mut meta: serde_json::Value = serde_json::from_str(&self.json).unwrap();
        let slots = meta["keyslots"].as_object_mut().unwrap();
        let mut new = (0..).find(|n| !slots.contains_key(&n.to_string())).unwrap();
        let token = if args[0] == "--recovery-key" {
            serde_json::json!({"type": "systemd-recovery", "keyslots": [new.to_string()]})
        } else {
            let pcrs: Vec<u8> = args[1]
                .strip_prefix("--tpm2-pcrs=")
                .unwrap()
                .split('+')
                .map(|p| p.parse().unwrap())
                .collect();
            let pin = args[2] == "--tpm2-with-pin=yes";
            let hash = format!("{}-{pcrs:?}-{pin}", self.boot);
            serde_json::json!({"type": "systemd-tpm2", "keyslots": [new.to_string()],
                "tpm2-pcrs": pcrs, "tpm2-pcr-bank": "sha256", "tpm2-pin": pin,
                "tpm2-policy-hash": hash})
        };
        // systemd-cryptenroll makes no slot when one has this policy hash
        // ("This PCR set is already enrolled") and spares that one.
        let tokens = meta["tokens"].as_object_mut().unwrap();
        let same = tokens.values().find(|t| {
            t.get("tpm2-policy-hash").is_some()
                && t["tpm2-policy-hash"] == token["tpm2-policy-hash"]
        });
        if let Some(t) = same {
            new = t["keyslots"][0].as_str().unwrap().parse().unwrap();
        } else {
            let id = (0..)
                .find(|n| !tokens.contains_key(&n.to_string()))
                .unwrap();
            tokens.insert(id.to_string(), token);
            let slots = meta["keyslots"].as_object_mut().unwrap();
            slots.insert(new.to_string(), serde_json::json!({"type": "luks2"}));
        }
        // --wipe-slot=N,M (the only form bifrost passes): those slots and
        // their tokens, never the one just made or kept.
        let wipe: Vec<String> = args
            .iter()
            .filter_map(|a| a.strip_prefix("--wipe-slot="))
            .flat_map(|l| l.split(','))
            .map(|n| {
                let n: u32 = n.parse().expect("--wipe-slot takes slot numbers");
                n.to_string()
            })
            .filter(|n| *n != new.to_string())
            .collect();
        let tokens = meta["tokens"].as_object_mut().unwrap();
        tokens.retain(|_, t| {
            !t["keyslots"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| wipe.contains(&s.as_str().unwrap().to_string()))
        });
        let slots = meta["keyslots"].as_object_mut().unwrap();
        for n in &wipe {
            slots.remove(n);
        }
        self.json = meta.to_string();
        Ok(())
    }
    fn ask_new_pin(&mut self) -> Result<Secret, SecretError> {
        self.pin_asked += 1;
        Ok(secret("1234"))
    }
    fn stdin_is_terminal(&mut self) -> bool {
        self.terminal
    }
    fn record_path(&self) -> Utf8PathBuf {
        Utf8PathBuf::from_path_buf(
            self.record_dir
                .path()
                .join("var/lib/bifrost/tpm-slots.json"),
        )
        .unwrap()
    }
}

fn opts() -> EnrollOptions {
    EnrollOptions {
        device: "/dev/vda2".into(),
        pcrs: vec![7],
        pin: false,
        pin_file: None,
        recovery_key: false,
    }
}

fn secret(s: &str) -> Secret {
    Secret::from_bytes(s.as_bytes().to_vec())
}

fn run(m: &mut Fake, o: &EnrollOptions, pass: &str) -> Result<Status, TpmError> {
    let mut asked = false;
    let result = enroll(
        m,
        o,
        &mut || {
            asked = true;
            Ok(secret(pass))
        },
        &mut |_| {},
    );
    m.asked_for_secret = asked;
    result
}

#[test]
fn enroll_adds_a_tpm_slot_and_keeps_the_passphrase() {
    let mut m = Fake::new();
    let status = run(&mut m, &opts(), "right").unwrap();
    assert_eq!(
        m.enroll_runs,
        vec![vec![
            "--tpm2-device=/dev/tpmrm0",
            "--tpm2-pcrs=7",
            "--tpm2-with-pin=no",
            "/dev/vda2"
        ]]
    );
    assert_eq!(status.slots.len(), 2);
    assert_eq!(status.slots[0].kind, SlotKind::Passphrase);
    assert!(
        matches!(&status.slots[1].kind, SlotKind::Tpm2 { pcrs, pin: false, .. } if *pcrs == [7])
    );
    // The secret was only ever handed over as a secret, never in an argument.
    assert!(m.enroll_runs.iter().flatten().all(|a| !a.contains("right")));
}

#[test]
fn re_enrolling_replaces_the_old_tpm_slot_and_adds_a_recovery_key_first() {
    let mut m = Fake::new();
    run(&mut m, &opts(), "right").unwrap();
    let o = EnrollOptions {
        pcrs: vec![0, 7],
        recovery_key: true,
        ..opts()
    };
    let status = run(&mut m, &o, "right").unwrap();
    assert_eq!(m.enroll_runs[1], ["--recovery-key", "/dev/vda2"]);
    assert_eq!(m.enroll_runs[2].last().unwrap(), "/dev/vda2");
    assert!(m.enroll_runs[2].contains(&"--wipe-slot=1".to_string()));
    assert!(m.enroll_runs[2].contains(&"--tpm2-pcrs=0+7".to_string()));
    let tpm: Vec<_> = status
        .slots
        .iter()
        .filter(|s| matches!(s.kind, SlotKind::Tpm2 { .. }))
        .collect();
    assert_eq!(tpm.len(), 1, "{:?}", status.slots);
    assert!(status.slots.iter().any(|s| s.kind == SlotKind::Recovery));
    assert!(status.slots.iter().any(|s| s.kind == SlotKind::Passphrase));
}

#[test]
fn refusals_come_before_any_write() {
    let mut m = Fake::new();
    m.prefix = b"LUKS\xba\xbe\x00\x01".to_vec();
    let e = run(&mut m, &opts(), "right").unwrap_err();
    assert!(matches!(e, TpmError::NotLuks2 { version: 1, .. }), "{e}");
    assert!(e.to_string().contains("cryptsetup convert --type luks2"));

    let mut m = Fake::new();
    m.prefix = vec![0; 8];
    assert!(matches!(
        run(&mut m, &opts(), "right"),
        Err(TpmError::NotLuks { .. })
    ));

    let mut m = Fake::new();
    m.tpms.clear();
    let e = run(&mut m, &opts(), "right").unwrap_err();
    assert!(matches!(e, TpmError::NoTpm), "{e}");

    let mut m = Fake::new();
    let e = run(&mut m, &opts(), "wrong").unwrap_err();
    assert!(matches!(e, TpmError::WrongPassphrase { .. }), "{e}");
    assert!(!e.to_string().contains("wrong"));

    // Only a TPM slot left: nothing a person could type.
    let mut m = Fake::new();
    m.json = r#"{"keyslots": {"1": {}}, "tokens": {"0": {"type": "systemd-tpm2", "keyslots": ["1"], "tpm2-pcrs": [7]}}}"#.into();
    let e = run(&mut m, &opts(), "right").unwrap_err();
    assert!(matches!(e, TpmError::NoFallback { .. }), "{e}");
    assert!(e.to_string().contains("luksAddKey"), "{e}");
    assert!(
        m.secrets_seen.is_empty(),
        "refused before asking cryptsetup"
    );

    let mut m = Fake::new();
    let o = EnrollOptions {
        pin: true,
        ..opts()
    };
    assert!(matches!(
        run(&mut m, &o, "right"),
        Err(TpmError::PinNeedsTerminal)
    ));
    m.terminal = true;
    run(&mut m, &o, "right").unwrap();
    assert!(m.enroll_runs[0].contains(&"--tpm2-with-pin=yes".to_string()));
}

#[test]
fn every_refusal_leaves_the_header_alone() {
    for setup in [
        |m: &mut Fake| m.prefix = b"LUKS\xba\xbe\x00\x01".to_vec(),
        |m: &mut Fake| m.tpms.clear(),
        |m: &mut Fake| m.passphrase = b"other".to_vec(),
    ] {
        let mut m = Fake::new();
        setup(&mut m);
        assert!(run(&mut m, &opts(), "right").is_err());
        assert!(m.enroll_runs.is_empty());
        assert_eq!(m.json, ONE_PASSPHRASE);
        // LUKS1 and no TPM are told before the passphrase is asked for.
        assert_eq!(m.asked_for_secret, m.passphrase == b"other");
    }
}

#[test]
fn pcr_lists() {
    assert_eq!(parse_pcrs("7").unwrap(), [7]);
    assert_eq!(parse_pcrs("7,0").unwrap(), [0, 7]);
    assert_eq!(parse_pcrs("0+7+11").unwrap(), [0, 7, 11]);
    for bad in ["", "24", "7,7", "seven", "7,"] {
        let e = parse_pcrs(bad).unwrap_err();
        assert!(e.to_string().contains("0 to 23"), "{bad}: {e}");
    }
}

#[test]
fn status_lists_slots_and_tpms() {
    let mut m = Fake::new();
    run(&mut m, &opts(), "right").unwrap();
    let s = status(&mut m, Utf8Path::new("/dev/vda2")).unwrap();
    assert_eq!(
        s.to_string(),
        "/dev/vda2: LUKS2, 2 key slot(s)\n  slot 0: passphrase (or key file)\n  slot 1: TPM2, bound to PCR 7 (sha256), no PIN, enrolled by bifrost on this system\nTPM: tpmrm0\n"
    );
    // Another system's slot is listed without the mark; JSON says which is which.
    let kinoite = m.enroll_outside("kinoite");
    let s = status(&mut m, Utf8Path::new("/dev/vda2")).unwrap();
    assert!(s.to_string().contains(&format!(
        "  slot {kinoite}: TPM2, bound to PCR 7 (sha256), no PIN\n"
    )));
    let json = serde_json::to_value(&s).unwrap();
    let marks: Vec<_> = json["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("enrolledByBifrost").cloned())
        .collect();
    assert_eq!(
        marks,
        [None, Some(true.into()), Some(false.into())],
        "{json}"
    );
    m.prefix = b"LUKS\xba\xbe\x00\x01".to_vec();
    assert!(status(&mut m, Utf8Path::new("/dev/vda2")).is_err());
}

#[test]
fn the_new_pin_goes_to_the_tpm_run_only_and_is_asked_after_the_passphrase() {
    let mut m = Fake::new();
    m.terminal = true;
    let o = EnrollOptions {
        pin: true,
        recovery_key: true,
        ..opts()
    };
    run(&mut m, &o, "right").unwrap();
    assert_eq!(m.pin_asked, 1);
    assert_eq!(m.pins_seen, vec![None, Some(b"1234".to_vec())]);

    // A wrong passphrase is refused before the PIN is asked.
    let mut m = Fake::new();
    m.terminal = true;
    assert!(matches!(
        run(&mut m, &o, "wrong"),
        Err(TpmError::WrongPassphrase { .. })
    ));
    assert_eq!(m.pin_asked, 0);

    // Without --pin, no $NEWPIN.
    let mut m = Fake::new();
    run(&mut m, &opts(), "right").unwrap();
    assert_eq!(m.pins_seen, vec![None]);
}

#[test]
fn pin_file_needs_no_terminal_and_bad_pins_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &[u8]| {
        let p = camino::Utf8PathBuf::from_path_buf(dir.path().join(name)).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    };
    let with_file = |p| EnrollOptions {
        pin: true,
        pin_file: Some(p),
        ..opts()
    };
    let mut m = Fake::new();
    run(&mut m, &with_file(file("good", b"0000 pin\n")), "right").unwrap();
    assert_eq!(m.pin_asked, 0);
    assert_eq!(m.pins_seen, vec![Some(b"0000 pin".to_vec())]);

    for (name, text) in [
        ("nul", &b"12\x0034"[..]),
        ("lines", b"12\n34\n"),
        ("latin1", b"\xe9t\xe9"),
    ] {
        let mut m = Fake::new();
        let e = run(&mut m, &with_file(file(name, text)), "right").unwrap_err();
        assert!(matches!(e, TpmError::BadPin { .. }), "{name}: {e}");
        assert!(m.enroll_runs.is_empty(), "{name}");
    }
    let mut m = Fake::new();
    let e = run(&mut m, &with_file(file("empty", b"\n")), "right").unwrap_err();
    assert!(matches!(e, TpmError::Secret(_)), "{e}");
    assert!(m.enroll_runs.is_empty());
}

#[test]
fn enroll_as_asked_takes_the_flags_and_says_what_it_binds() {
    let dir = tempfile::tempdir().unwrap();
    let key = Utf8PathBuf::from_path_buf(dir.path().join("key")).unwrap();
    std::fs::write(&key, "right\n").unwrap();
    let req = request::EnrollRequest {
        device: "/dev/vda2".into(),
        pcrs: Some("0+2".into()),
        key_file: Some(key.clone()),
        ..Default::default()
    };
    let mut m = Fake::new();
    let mut said = Vec::new();
    let done = request::enroll_as_asked(&mut m, &req, &mut |s| said.push(s.to_owned())).unwrap();
    assert_eq!(said[0], "sealing to PCR 0+2 (from --pcrs)");
    assert!(m.enroll_runs[0].contains(&"--tpm2-pcrs=0+2".to_string()));
    assert_eq!(m.secrets_seen, [b"right".to_vec()]);
    assert_eq!(done.notes.len(), 1);
    assert!(done.notes[0].starts_with("PCR 7 (the Secure Boot state) is not bound"));

    // PCR 7 bound: nothing to note; a PIN file implies --pin.
    let pin = Utf8PathBuf::from_path_buf(dir.path().join("pin")).unwrap();
    std::fs::write(&pin, "4321\n").unwrap();
    let req = request::EnrollRequest {
        pcrs: Some("7".into()),
        pin_file: Some(pin),
        ..req
    };
    let mut m = Fake::new();
    let done = request::enroll_as_asked(&mut m, &req, &mut |_| {}).unwrap();
    assert!(done.notes.is_empty());
    assert!(m.enroll_runs[0].contains(&"--tpm2-with-pin=yes".to_string()));
}

#[test]
fn enroll_as_asked_refuses_a_bad_pcr_list_before_touching_the_device() {
    let req = request::EnrollRequest {
        device: "/dev/vda2".into(),
        pcrs: Some("7,x".into()),
        ..Default::default()
    };
    let mut m = Fake::new();
    let mut said = Vec::new();
    let e = request::enroll_as_asked(&mut m, &req, &mut |s| said.push(s.to_owned())).unwrap_err();
    assert!(matches!(e, TpmError::BadPcrs { .. }), "{e}");
    assert!(said.is_empty() && m.enroll_runs.is_empty());
}

/// The Surface: NixOS enrolled with bifrost, Kinoite with systemd-cryptenroll.
#[test]
fn re_enrolling_keeps_another_systems_slot_and_replaces_bifrosts_own() {
    let mut m = Fake::new();
    run(&mut m, &opts(), "right").unwrap();
    let ours = m.tpm2_slots();
    assert_eq!(m.record().slots(UUID).len(), 1);
    assert_eq!(m.record().slots(UUID)[0].keyslot, ours[0].0);
    let kinoite = m.enroll_outside("kinoite");
    let kinoite_json = m.json.clone();

    // A firmware update changes NixOS's PCR 7: enroll again, twice.
    m.boot = "nixos-after-update";
    let mut said = Vec::new();
    let req = pcr7_with_key_file(&m);
    let done = request::enroll_as_asked(&mut m, &req, &mut |s| said.push(s.to_owned())).unwrap();
    let wipe = format!("--wipe-slot={}", ours[0].0);
    assert!(
        m.enroll_runs.last().unwrap().contains(&wipe),
        "{:?}",
        m.enroll_runs
    );
    assert!(
        said.iter().any(|s| s.contains(&format!(
            "replacing slot {} that bifrost enrolled",
            ours[0].0
        ))),
        "{said:?}"
    );
    let now = m.tpm2_slots();
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.iter().any(|(n, _)| *n == kinoite));
    assert!(!now.contains(&ours[0]), "bifrost's old slot is gone");
    assert_eq!(
        done.notes,
        [format!("slot {kinoite} (TPM2, PCR 7, no PIN) was not enrolled by bifrost on this system (Kinoite's, for example, or made by hand): kept. Once it is stale, remove it with `systemd-cryptenroll --wipe-slot={kinoite} /dev/vda2`")]
    );
    let mine = m.record().slots(UUID).to_vec();
    assert_eq!(mine.len(), 1);
    assert_ne!(mine[0].keyslot, kinoite);

    m.boot = "nixos-after-another-update";
    request::enroll_as_asked(&mut m, &req, &mut |_| {}).unwrap();
    assert!(m
        .enroll_runs
        .last()
        .unwrap()
        .contains(&format!("--wipe-slot={}", mine[0].keyslot)));
    // Kinoite's token is byte for byte what it was.
    let token = |json: &str, slot: u32| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["tokens"]
            .as_object()
            .unwrap()
            .values()
            .find(|t| t["keyslots"][0].as_str().and_then(|s| s.parse().ok()) == Some(slot))
            .cloned()
    };
    assert_eq!(token(&m.json, kinoite), token(&kinoite_json, kinoite));
    assert!(token(&m.json, kinoite).is_some());
    assert_eq!(m.tpm2_slots().len(), 2);
}

/// `bifrost tpm enroll --device /dev/vda2 --pcrs 7 --key-file FILE` with
/// the fake's passphrase in FILE.
fn pcr7_with_key_file(m: &Fake) -> request::EnrollRequest {
    let key = Utf8PathBuf::from_path_buf(m.record_dir.path().join("key")).unwrap();
    std::fs::write(&key, &m.passphrase).unwrap();
    request::EnrollRequest {
        device: "/dev/vda2".into(),
        pcrs: Some("7".into()),
        key_file: Some(key),
        ..Default::default()
    }
}

#[test]
fn without_a_record_no_tpm2_slot_is_wiped() {
    // Slots from before bifrost kept a record (or from another system).
    let mut m = Fake::new();
    let old = m.enroll_outside("nixos-before");
    run(&mut m, &opts(), "right").unwrap();
    assert!(m.enroll_runs[0]
        .iter()
        .all(|a| !a.starts_with("--wipe-slot")));
    let slots: Vec<u32> = m.tpm2_slots().iter().map(|s| s.0).collect();
    assert_eq!(slots.len(), 2);
    assert!(slots.contains(&old));
    assert_eq!(m.record().slots(UUID).len(), 1);
    assert_ne!(m.record().slots(UUID)[0].keyslot, old);
}

#[test]
fn a_stale_record_entry_reused_by_another_token_is_kept() {
    let mut m = Fake::new();
    run(&mut m, &opts(), "right").unwrap();
    let ours = m.tpm2_slots()[0].0;
    // Removed by hand; Kinoite's enrollment then takes the number.
    let mut meta: serde_json::Value = serde_json::from_str(&m.json).unwrap();
    meta["tokens"].as_object_mut().unwrap().clear();
    meta["keyslots"]
        .as_object_mut()
        .unwrap()
        .remove(&ours.to_string());
    m.json = meta.to_string();
    assert_eq!(m.enroll_outside("kinoite"), ours);
    m.boot = "nixos-after-update";
    let req = pcr7_with_key_file(&m);
    let done = request::enroll_as_asked(&mut m, &req, &mut |_| {}).unwrap();
    assert!(m
        .enroll_runs
        .last()
        .unwrap()
        .iter()
        .all(|a| !a.starts_with("--wipe-slot")));
    assert_eq!(m.tpm2_slots().len(), 2);
    assert!(done.notes[0].starts_with(&format!(
        "slot {ours} (TPM2, PCR 7, no PIN) was not enrolled by bifrost"
    )));
    assert!(m.record().slots(UUID).iter().all(|r| r.keyslot != ours));
}

#[test]
fn already_enrolled_by_an_unrecorded_slot_claims_nothing() {
    let mut m = Fake::new();
    // Made by hand on this very boot: systemd-cryptenroll makes no new slot.
    let by_hand = m.enroll_outside("nixos");
    let req = pcr7_with_key_file(&m);
    let done = request::enroll_as_asked(&mut m, &req, &mut |_| {}).unwrap();
    assert_eq!(m.tpm2_slots().len(), 1);
    assert!(m.record().slots(UUID).is_empty());
    assert!(
        !m.record_path().exists(),
        "nothing to record, nothing written"
    );
    assert_eq!(done.notes.len(), 2, "{:?}", done.notes);
    assert!(done.notes[0].starts_with(&format!("slot {by_hand} ")));
    assert!(done.notes[1].starts_with("systemd-cryptenroll made no new slot"));

    // Re-enrolled by bifrost on the same boot: its recorded slot is kept and stays recorded.
    let mut m = Fake::new();
    run(&mut m, &opts(), "right").unwrap();
    let rec = m.record();
    run(&mut m, &opts(), "right").unwrap();
    assert_eq!(m.record(), rec);
    assert_eq!(m.tpm2_slots().len(), 1);
}

#[test]
fn no_fallback_counts_only_the_slots_wiped() {
    // A recorded TPM2 slot and another system's: no passphrase left either way.
    let mut m = Fake::new();
    run(&mut m, &opts(), "right").unwrap();
    m.enroll_outside("kinoite");
    let mut meta: serde_json::Value = serde_json::from_str(&m.json).unwrap();
    meta["keyslots"].as_object_mut().unwrap().remove("0");
    m.json = meta.to_string();
    let before = m.json.clone();
    let e = run(&mut m, &opts(), "right").unwrap_err();
    assert!(matches!(e, TpmError::NoFallback { .. }), "{e}");
    assert_eq!(m.json, before);
    // The plan alone: a recovery slot outside the wipe set is enough.
    let current = slots::parse(
        r#"{"keyslots": {"0": {}, "1": {}}, "tokens": {"0": {"type": "systemd-tpm2", "keyslots": ["0"], "tpm2-policy-hash": "aa"}, "1": {"type": "systemd-recovery", "keyslots": ["1"]}}}"#,
    )
    .unwrap();
    let runs = plan(&opts(), &current, &[0], "tpmrm0").unwrap();
    assert_eq!(runs[0][3], "--wipe-slot=0");
    // Only the wiped slot was a fallback (a stale number given by mistake): refused.
    assert!(matches!(
        plan(&opts(), &current, &[1], "tpmrm0"),
        Err(TpmError::NoFallback { .. })
    ));
}

#[test]
fn a_bad_record_is_refused_before_any_write() {
    let mut m = Fake::new();
    let path = m.record_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{").unwrap();
    let e = run(&mut m, &opts(), "right").unwrap_err();
    assert!(matches!(e, TpmError::Record(_)), "{e}");
    assert!(e.to_string().contains("tpm-slots.json"), "{e}");
    assert!(m.enroll_runs.is_empty() && !m.asked_for_secret);
    assert_eq!(m.json, ONE_PASSPHRASE);
}

#[test]
fn each_run_says_what_it_enrolls_and_which_slot_it_replaces() {
    let tpms = vec!["tpmrm0".to_string()];
    let o = EnrollOptions {
        pcrs: vec![0, 7],
        pin: true,
        ..opts()
    };
    let recovery = vec!["--recovery-key".to_string(), "/dev/vda2".to_string()];
    assert!(super::run_line(&o, &recovery, &tpms, &[3]).starts_with("enrolling a recovery key"));
    let tpm = vec!["--tpm2-device=/dev/tpmrm0".to_string()];
    assert_eq!(
        super::run_line(&o, &tpm, &tpms, &[]),
        "enrolling the TPM (tpmrm0) into /dev/vda2, bound to PCR 0+7, with a PIN"
    );
    assert_eq!(
        super::run_line(&opts(), &tpm, &tpms, &[1, 4]),
        "enrolling the TPM (tpmrm0) into /dev/vda2, bound to PCR 7, replacing slot 1, 4 that bifrost enrolled on this system"
    );
}

#[test]
fn only_a_slot_with_the_asked_pcrs_and_pin_counts_as_enrolled() {
    let tpm2 = |keyslot, pcrs: Vec<u8>, pin| Slot {
        keyslot,
        kind: SlotKind::Tpm2 {
            pcrs,
            pcr_bank: Some("sha256".into()),
            pin,
            policy_hash: None,
            enrolled_by_bifrost: false,
        },
    };
    let o = opts();
    assert!(super::check_enrolled(&o, &[tpm2(1, vec![7], false)]).is_ok());
    for wrong in [tpm2(1, vec![0, 7], false), tpm2(1, vec![7], true)] {
        assert!(matches!(
            super::check_enrolled(&o, &[wrong]),
            Err(TpmError::NotEnrolled { .. })
        ));
    }
}
