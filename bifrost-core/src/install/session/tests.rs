//! Whole sessions against a fake terminal and a fake installer: what is
//! asked, what is checked before the first step, what a resume skips.

use super::*;
use crate::install::plan::Probe;
use std::time::Duration;

const HOST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/install-host.json"
);

/// A terminal that answers from a script and records everything.
#[derive(Default)]
struct Term {
    out: String,
    err: String,
    interactive: bool,
    answer: Option<String>,
    asked: Vec<String>,
}

impl Console for Term {
    fn out(&mut self, text: &str) {
        self.out.push_str(text);
    }
    fn err(&mut self, text: &str) {
        self.err.push_str(text);
    }
    fn interactive(&self) -> bool {
        self.interactive
    }
    fn ask(&mut self, prompt: &str) -> Option<String> {
        self.asked.push(prompt.trim().to_string());
        self.answer.clone()
    }
    fn secret(&mut self, what: &str, confirm: bool) -> Result<Secret, SecretError> {
        self.asked
            .push(format!("{what}{}", if confirm { " (twice)" } else { "" }));
        Ok(Secret::from_bytes(b"typed".to_vec()))
    }
}

/// A machine that records commands and fails the first one named `fail_on`.
#[derive(Default)]
struct Fake {
    ran: Vec<String>,
    fail_on: Option<String>,
    hashes: Vec<Utf8PathBuf>,
}

impl Machine for Fake {
    fn run(&mut self, argv: &[String], _: Option<&Secret>) -> Result<(), String> {
        if self.fail_on.as_deref() == Some(argv[0].as_str()) {
            self.fail_on = None;
            return Err("exited with status 1".into());
        }
        self.ran.push(argv.join(" "));
        Ok(())
    }
    fn probe(&mut self, _: &Probe) -> bool {
        false
    }
    fn wait_for(&mut self, _: &[Utf8PathBuf], _: Duration) -> Result<(), String> {
        Ok(())
    }
    fn write_password_hash(&mut self, path: &Utf8Path, _: &Secret) -> Result<(), String> {
        self.hashes.push(path.to_path_buf());
        Ok(())
    }
}

/// An installer whose checks pass and are recorded.
#[derive(Default)]
struct Rig {
    machine: Fake,
    checked: Vec<&'static str>,
    allowed: Vec<Utf8PathBuf>,
}

impl Installer for Rig {
    fn carried(&self) -> Carried {
        Carried::default()
    }
    fn find_refind(&self, given: Option<&Utf8Path>) -> Choice {
        refind_bin::choose(given, |_| false)
    }
    fn check_tools(&mut self, _: &Plan) -> Result<(), PreflightError> {
        self.checked.push("tools");
        Ok(())
    }
    fn check_disk(&mut self, _: &Plan, allowed: &[Utf8PathBuf]) -> Result<(), PreflightError> {
        self.checked.push("disk");
        self.allowed = allowed.to_vec();
        Ok(())
    }
    fn machine(&mut self) -> &mut dyn Machine {
        &mut self.machine
    }
}

fn request(dir: &Utf8Path, mode: Mode) -> Request {
    Request {
        host: Some("install-test".into()),
        flake: Some("/src/flake".into()),
        settings: Some(HOST.into()),
        disk: "/dev/vdz".into(),
        mode,
        plan_only: None,
        yes: true,
        key_file: None,
        force: false,
        target: "/mnt".into(),
        esp_device: None,
        luks_device: None,
        kinoite_boot_device: None,
        refind_efi: Some("/x/refind_x64.efi".into()),
        storage_only: false,
        state: Some(dir.join("state.json")),
        password_files: Vec::new(),
        nvram: true,
        sb_keys: None,
    }
}

fn tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = Utf8PathBuf::from_path_buf(t.path().to_path_buf()).unwrap();
    (t, p)
}

#[test]
fn a_resumed_install_asks_only_for_what_is_left() {
    let (_t, dir) = tempdir();
    let req = request(&dir, Mode::Fresh);
    let mut sys = Rig::default();
    sys.machine.fail_on = Some("nixos-install".into());
    let mut term = Term::default();
    let e = run(&req, &mut term, &mut sys).unwrap_err();
    assert!(e.to_string().contains("[nixos-install] failed"), "{e}");
    assert_eq!(
        term.asked,
        [
            "New LUKS2 passphrase (twice)",
            "Password for alice (administrator) (twice)",
            "Password for bob (twice)"
        ]
    );
    assert_eq!(sys.machine.hashes.len(), 2);
    assert!(sys.allowed.is_empty(), "a new install allows no mounts");

    // The same command again: the hashes are written and the pool is open,
    // so nothing is asked; the disk check accepts this install's mounts.
    let mut term = Term::default();
    let mut sys = Rig::default();
    assert_eq!(run(&req, &mut term, &mut sys).unwrap(), Finished::Installed);
    assert!(term.asked.is_empty(), "asked again: {:?}", term.asked);
    assert!(sys.machine.hashes.is_empty());
    assert_eq!(
        sys.machine.ran[0],
        "nixos-install --flake /src/flake#install-test --root /mnt --no-root-passwd"
    );
    assert_eq!(sys.allowed, ["/mnt", WORK_DIR]);
    assert!(
        term.err
            .contains("skip password:bob: done in an earlier run"),
        "{}",
        term.err
    );
}

#[test]
fn a_run_stopped_between_the_passwords_asks_for_the_rest() {
    let (_t, dir) = tempdir();
    let req = request(&dir, Mode::DualBoot);
    // Stopped at the first mount, after the pool was opened.
    let mut term = Term::default();
    let mut sys = Rig::default();
    sys.machine.fail_on = Some("mount".into());
    run(&req, &mut term, &mut sys).unwrap_err();
    assert_eq!(
        term.asked,
        [
            "Passphrase of the existing LUKS2 pool",
            "Password for alice (administrator) (twice)",
            "Password for bob (twice)"
        ]
    );
    let mut state = run::load_state(req.state.as_ref().unwrap())
        .unwrap()
        .unwrap();
    let plan_ids: Vec<String> = state.done.iter().map(|d| d.id.clone()).collect();
    assert!(plan_ids.contains(&"luks-open".to_string()), "{plan_ids:?}");
    // As if the stop had come between the two hash files.
    state.done.push(run::DoneStep {
        id: "password:alice".into(),
        outcome: run::Outcome::Ran,
    });
    std::fs::write(
        req.state.as_ref().unwrap(),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    let mut term = Term::default();
    let mut sys = Rig::default();
    run(&req, &mut term, &mut sys).unwrap();
    assert_eq!(term.asked, ["Password for bob (twice)"]);
    assert_eq!(
        sys.machine.hashes,
        [Utf8PathBuf::from("/mnt/var/lib/bifrost/passwords/bob")]
    );
}

#[test]
fn needs_follow_the_pending_steps() {
    let s = crate::spec::load_file(Utf8Path::new(HOST)).unwrap();
    let mut preq = plan::PlanRequest {
        host: "h".into(),
        flake: ".".into(),
        disk: "/dev/vdz".into(),
        mode: Mode::Fresh,
        target: "/mnt".into(),
        work_dir: WORK_DIR.into(),
        esp_device: None,
        luks_device: None,
        kinoite_boot_device: None,
        refind_efi: Some("/x/refind_x64.efi".into()),
        storage_only: false,
        settings_file: "/h.json".into(),
        nvram: false,
        sb_keys: None,
    };
    let p = plan::plan(&s, &preq).unwrap();
    let all = needs(&pending(&p, None));
    assert_eq!(all.passphrase, Some(PassphrasePrompt::New));
    assert_eq!(all.users, ["alice", "bob"]);
    assert!(!all.sb_keys);
    // The container made, not yet opened: the existing passphrase, once.
    let after_format: Vec<&plan::Step> =
        p.steps.iter().skip_while(|s| s.id != "luks-open").collect();
    assert_eq!(
        needs(&after_format).passphrase,
        Some(PassphrasePrompt::Existing)
    );
    let after_open: Vec<&plan::Step> = after_format[1..].to_vec();
    assert_eq!(needs(&after_open).passphrase, None);
    assert_eq!(needs(&after_open).users, ["alice", "bob"]);
    // Storage only: no passwords at all.
    preq.storage_only = true;
    let p = plan::plan(&s, &preq).unwrap();
    assert!(needs(&pending(&p, None)).users.is_empty());
    preq.mode = Mode::DualBoot;
    let p = plan::plan(&s, &preq).unwrap();
    assert_eq!(
        needs(&pending(&p, None)).passphrase,
        Some(PassphrasePrompt::Existing)
    );
}

/// A copy of the test host with Secure Boot on (shim route).
fn secure_boot_host(dir: &Utf8Path) -> Utf8PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(HOST).unwrap()).unwrap();
    v["security"] = serde_json::json!({
        "secureBoot": { "enable": true, "keysPath": "/etc/secureboot", "route": "shim" }
    });
    let p = dir.join("host.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

#[test]
fn sb_keys_are_checked_before_anything_changes() {
    let (_t, dir) = tempdir();
    let mut req = request(&dir, Mode::Fresh);
    req.settings = Some(secure_boot_host(&dir));
    let keys = dir.join("keys");
    req.sb_keys = Some(keys.clone());
    let attempt = |req: &Request| {
        let mut term = Term::default();
        let mut sys = Rig::default();
        let r = run(req, &mut term, &mut sys);
        (r, term, sys)
    };
    // No folder: refused after the tool check, before the disk check,
    // any question or any step.
    let (r, term, sys) = attempt(&req);
    let e = r.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("--sb-keys {keys}: cannot open it")),
        "{e}"
    );
    assert!(
        e.ends_with("give the folder that holds mok.key and mok.crt"),
        "{e}"
    );
    assert_eq!(sys.checked, ["tools"]);
    assert!(term.asked.is_empty() && sys.machine.ran.is_empty());
    // A file, then a folder without the certificate.
    std::fs::write(&keys, "").unwrap();
    let e = attempt(&req).0.unwrap_err().to_string();
    assert!(e.contains("not a folder"), "{e}");
    std::fs::remove_file(&keys).unwrap();
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("mok.key"), "k").unwrap();
    let e = attempt(&req).0.unwrap_err().to_string();
    assert!(e.contains("no file mok.crt;"), "{e}");
    std::fs::write(keys.join("mok.crt"), "c").unwrap();
    let (r, _, sys) = attempt(&req);
    r.unwrap();
    assert!(sys
        .machine
        .ran
        .iter()
        .any(|c| c.contains(&format!("--from {keys} --name mok"))));
    // Once the keys are in place, a resumed run no longer needs the folder.
    std::fs::remove_dir_all(&keys).unwrap();
    let mut state = run::load_state(req.state.as_ref().unwrap())
        .unwrap()
        .unwrap();
    state.finished = false;
    state.done.retain(|d| d.id != "esp-install");
    std::fs::write(
        req.state.as_ref().unwrap(),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    attempt(&req).0.unwrap();
}

#[test]
fn plan_only_checks_nothing_and_json_is_not_announced() {
    let (_t, dir) = tempdir();
    let mut req = request(&dir, Mode::DualBoot);
    req.refind_efi = None;
    req.plan_only = Some(PlanFormat::Json);
    let mut term = Term::default();
    let mut sys = Rig::default();
    assert_eq!(run(&req, &mut term, &mut sys).unwrap(), Finished::Planned);
    assert!(sys.checked.is_empty() && term.asked.is_empty());
    let v: serde_json::Value = serde_json::from_str(&term.out).unwrap();
    // No binary found: the plan names rEFInd's usual place and says so.
    assert!(v.to_string().contains(refind_bin::USUAL[0]));
    assert!(
        term.err.contains("rEFInd binary: none found"),
        "{}",
        term.err
    );

    req.plan_only = Some(PlanFormat::Text);
    let mut term = Term::default();
    run(&req, &mut term, &mut Rig::default()).unwrap();
    assert!(
        term.out
            .starts_with("Installing host install-test from flake /src/flake"),
        "{}",
        term.out
    );
    assert!(term
        .out
        .contains("bifrost install plan: install of install-test beside Kinoite"));
}

#[test]
fn without_yes_the_disk_name_must_be_typed_on_a_terminal() {
    let (_t, dir) = tempdir();
    let mut req = request(&dir, Mode::Fresh);
    req.yes = false;
    let mut term = Term::default();
    let e = run(&req, &mut term, &mut Rig::default()).unwrap_err();
    assert!(matches!(e, SessionError::NoTerminal), "{e}");
    assert!(term.out.contains("ERASES EVERYTHING on /dev/vdz"));

    let mut term = Term {
        interactive: true,
        answer: Some("/dev/vdy\n".into()),
        ..Default::default()
    };
    let mut sys = Rig::default();
    assert_eq!(run(&req, &mut term, &mut sys).unwrap(), Finished::Aborted);
    assert_eq!(term.asked, ["Type the disk name (/dev/vdz) to go ahead:"]);
    assert!(term.err.contains("aborted: nothing was changed"));
    assert!(sys.machine.ran.is_empty());

    let mut term = Term {
        interactive: true,
        answer: Some("/dev/vdz\n".into()),
        ..Default::default()
    };
    assert_eq!(
        run(&req, &mut term, &mut Rig::default()).unwrap(),
        Finished::Installed
    );
}

#[test]
fn the_last_lines_name_the_flake_copys_owner() {
    let (_t, dir) = tempdir();
    let req = request(&dir, Mode::Fresh);
    let mut term = Term::default();
    run(&req, &mut term, &mut Rig::default()).unwrap();
    assert!(
        term.out.contains(
            "your flake is in /etc/nixos on the installed system (owned by alice, uid 1000)"
        ),
        "{}",
        term.out
    );
    assert!(term.out.contains(&format!(
        "installed install-test on /dev/vdz (progress: {dir}/state.json)"
    )));
    assert!(term
        .out
        .contains("next: umount -R /mnt && cryptsetup close cryptroot && reboot"));

    let mut req = request(&dir, Mode::Fresh);
    req.storage_only = true;
    req.state = Some(dir.join("s2.json"));
    let mut term = Term::default();
    run(&req, &mut term, &mut Rig::default()).unwrap();
    assert_eq!(
        term.out.lines().last().unwrap(),
        format!("storage ready: /dev/mapper/cryptroot is open and mounted under /mnt (progress: {dir}/s2.json)")
    );
    assert!(
        term.asked == ["New LUKS2 passphrase (twice)"],
        "{:?}",
        term.asked
    );
}
