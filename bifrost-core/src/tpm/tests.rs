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
}

const ONE_PASSPHRASE: &str = r#"{"keyslots": {"0": {"type": "luks2"}}, "tokens": {}}"#;

impl Fake {
    fn new() -> Fake {
        Fake {
            prefix: b"LUKS\xba\xbe\x00\x02".to_vec(),
            tpms: vec!["tpmrm0".into()],
            json: ONE_PASSPHRASE.into(),
            passphrase: b"right".to_vec(),
            terminal: false,
            enroll_runs: Vec::new(),
            secrets_seen: Vec::new(),
            asked_for_secret: false,
            pins_seen: Vec::new(),
            pin_asked: 0,
        }
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
        let new = (0..).find(|n| !slots.contains_key(&n.to_string())).unwrap();
        slots.insert(new.to_string(), serde_json::json!({"type": "luks2"}));
        let token = if args[0] == "--recovery-key" {
            serde_json::json!({"type": "systemd-recovery", "keyslots": [new.to_string()]})
        } else {
            let pcrs: Vec<u8> = args[1]
                .strip_prefix("--tpm2-pcrs=")
                .unwrap()
                .split('+')
                .map(|p| p.parse().unwrap())
                .collect();
            serde_json::json!({"type": "systemd-tpm2", "keyslots": [new.to_string()],
                "tpm2-pcrs": pcrs, "tpm2-pcr-bank": "sha256", "tpm2-pin": args[2] == "--tpm2-with-pin=yes"})
        };
        if args.iter().any(|a| a == "--wipe-slot=tpm2") {
            let tokens = meta["tokens"].as_object_mut().unwrap();
            let old: Vec<String> = tokens
                .iter()
                .filter(|(_, t)| t["type"] == "systemd-tpm2")
                .map(|(k, _)| k.clone())
                .collect();
            let mut freed = Vec::new();
            for k in old {
                let t = tokens.remove(&k).unwrap();
                for s in t["keyslots"].as_array().unwrap() {
                    freed.push(s.as_str().unwrap().to_string());
                }
            }
            let slots = meta["keyslots"].as_object_mut().unwrap();
            for s in freed {
                slots.remove(&s);
            }
        }
        let tokens = meta["tokens"].as_object_mut().unwrap();
        let id = (0..)
            .find(|n| !tokens.contains_key(&n.to_string()))
            .unwrap();
        tokens.insert(id.to_string(), token);
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
    assert!(m.enroll_runs[2].contains(&"--wipe-slot=tpm2".to_string()));
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
        "/dev/vda2: LUKS2, 2 key slot(s)\n  slot 0: passphrase (or key file)\n  slot 1: TPM2, bound to PCR 7 (sha256), no PIN\nTPM: tpmrm0\n"
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
