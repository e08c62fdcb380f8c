//! The install plan for the seed's host (snapshots, Kinoite safety) and the
//! runner's resume, conflict and secrecy behaviour against a fake machine.

use bifrost_core::install::plan::{
    self, Action, DataOwner, KinoiteAccess, Mode, Plan, PlanRequest, Probe, Stdin, WriteKind,
};
use bifrost_core::install::run::{self, Event, Machine, RunError, RunOptions};
use bifrost_core::install::secret::Secret;
use bifrost_core::spec::{self, HostSettings, SubvolumeOwner};
use camino::{Utf8Path, Utf8PathBuf};
use std::time::Duration;

/// The seed's host settings, to change before [`plan_for`].
fn settings() -> HostSettings {
    let p = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../hosts/surface-pro-8/host.json");
    spec::load_file(&p)
        .expect("the seed's host file loads")
        .into_inner()
}

/// The plan of hand-built settings, which go through validation first as
/// loading a host file would; either refusal as its message.
fn plan_for(s: &HostSettings, req: &PlanRequest) -> Result<Plan, String> {
    let s = spec::validated(s.clone()).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        lines.join("\n")
    })?;
    plan::plan(&s, req).map_err(|e| e.to_string())
}

fn request(mode: Mode) -> PlanRequest {
    PlanRequest {
        host: "surface-pro-8".into(),
        flake: ".".into(),
        disk: "/dev/nvme0n1".into(),
        mode,
        target: "/mnt".into(),
        work_dir: "/run/bifrost".into(),
        esp_device: None,
        luks_device: None,
        kinoite_boot_device: None,
        refind_efi: Some(
            "/nix/store/00000000000000000000000000000000-refind-0.14.2/share/refind/refind_x64.efi"
                .into(),
        ),
        storage_only: false,
        settings_file: "/flake/hosts/surface-pro-8/host.json".into(),
        nvram: true,
        sb_keys: None,
    }
}

fn make(mode: Mode) -> Plan {
    plan_for(&settings(), &request(mode)).expect("plan")
}

#[test]
fn fresh_plan_snapshot() {
    insta::assert_snapshot!("fresh_plan", plan::render(&make(Mode::Fresh)));
}

#[test]
fn dual_boot_plan_snapshot() {
    insta::assert_snapshot!("dual_boot_plan", plan::render(&make(Mode::DualBoot)));
    insta::assert_json_snapshot!("dual_boot_plan_json", make(Mode::DualBoot));
}

fn secure_boot(route: spec::SecureBootRoute) -> HostSettings {
    let mut s = settings();
    s.security.secure_boot.enable = true;
    s.security.secure_boot.keys_path = Some("/etc/secureboot".into());
    s.security.secure_boot.route = route;
    s
}

#[test]
fn secure_boot_plan_snapshot() {
    let p = plan_for(
        &secure_boot(spec::SecureBootRoute::Shim),
        &request(Mode::Fresh),
    )
    .unwrap();
    insta::assert_snapshot!("fresh_plan_secure_boot", plan::render(&p));
}

#[test]
fn secure_boot_keys_are_placed_before_nixos_install_in_each_mode() {
    let ids = |p: &Plan| p.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    // Off: no step, no signing.
    let off = make(Mode::Fresh);
    assert!(!ids(&off).contains(&"sb-keys".to_string()));
    assert!(!argv_of(&off, "esp-install").contains(&"--sign-key".to_string()));

    let shim = plan_for(
        &secure_boot(spec::SecureBootRoute::Shim),
        &request(Mode::DualBoot),
    )
    .unwrap();
    let i = ids(&shim);
    let at = |id: &str| i.iter().position(|x| x == id).unwrap();
    assert!(at("sb-keys") < at("nixos-install"));
    assert_eq!(
        argv_of(&shim, "sb-keys"),
        [
            "bifrost",
            "sb",
            "keys",
            "--dir",
            "/mnt/etc/secureboot",
            "--keep-existing",
            "--name",
            "mok"
        ]
    );
    let step = shim.steps.iter().find(|s| s.id == "sb-keys").unwrap();
    assert_eq!(step.writes[0].kind, WriteKind::Keys);
    let esp = argv_of(&shim, "esp-install");
    let w = esp.windows(4).any(|w| {
        w == [
            "--sign-key",
            "/mnt/etc/secureboot/mok.key",
            "--sign-cert",
            "/mnt/etc/secureboot/mok.crt",
        ]
    });
    assert!(w && esp.contains(&"--shim".to_string()), "{esp:?}");

    let own = plan_for(
        &secure_boot(spec::SecureBootRoute::OwnKeys),
        &request(Mode::Fresh),
    )
    .unwrap();
    assert!(argv_of(&own, "sb-keys").ends_with(&["--firmware".to_string()]));
    let esp = argv_of(&own, "esp-install");
    assert!(esp.contains(&"/mnt/etc/secureboot/db.key".to_string()));
    assert!(!esp.contains(&"--shim".to_string()));

    // The user's keys: copied by path; the plan holds no key contents.
    let mut req = request(Mode::Fresh);
    req.sb_keys = Some("/media/usb/keys".into());
    let mine = plan_for(&secure_boot(spec::SecureBootRoute::OwnKeys), &req).unwrap();
    assert!(argv_of(&mine, "sb-keys").ends_with(&[
        "--from".to_string(),
        "/media/usb/keys".into(),
        "--name".into(),
        "db".into()
    ]));
}

#[test]
fn secure_boot_key_settings_are_checked() {
    let mut s = secure_boot(spec::SecureBootRoute::Shim);
    s.security.secure_boot.keys_path = Some("/nix/store/keys".into());
    let e = plan_for(&s, &request(Mode::Fresh)).unwrap_err();
    assert!(
        e.to_string().starts_with("security.secureBoot.keysPath"),
        "{e}"
    );
    s.security.secure_boot.keys_path = None;
    let e = plan_for(&s, &request(Mode::Fresh)).unwrap_err();
    assert!(
        e.to_string().starts_with("security.secureBoot.keysPath"),
        "{e}"
    );
    let mut req = request(Mode::Fresh);
    req.sb_keys = Some("/keys".into());
    let e = plan_for(&settings(), &req).unwrap_err();
    assert!(
        e.to_string().starts_with("security.secureBoot.enable"),
        "{e}"
    );
    let mut s = secure_boot(spec::SecureBootRoute::Shim);
    s.security.secure_boot.enable = true;
    req.sb_keys = Some("keys".into());
    let e = plan_for(&s, &req).unwrap_err();
    assert!(e.to_string().contains("--sb-keys"), "{e}");
}

/// Every way a plan could write to Kinoite's side, from the step metadata
/// and, independently, from the commands themselves.
fn kinoite_violations(p: &Plan, s: &HostSettings) -> Vec<String> {
    let mut bad = Vec::new();
    let names = |o: SubvolumeOwner| -> Vec<String> {
        s.storage
            .subvolumes
            .iter()
            .filter(|v| v.owner == o)
            .map(|v| v.name.clone())
            .collect()
    };
    let kinoite = names(SubvolumeOwner::Kinoite);
    let shared = names(SubvolumeOwner::Shared);
    for step in &p.steps {
        // Creating a missing shared subvolume is allowed: the step is skipped
        // when the subvolume exists (its probe) and no undo ever deletes it.
        let creates_missing_shared = step.undo.is_none()
            && step.writes.iter().all(|w| {
                w.data == DataOwner::Shared
                    && w.kind == WriteKind::Subvolume
                    && step.probe
                        == Some(Probe::Subvolume {
                            path: w.path.clone(),
                        })
            })
            && !step.writes.is_empty();
        if creates_missing_shared {
            continue;
        }
        for w in &step.writes {
            if matches!(
                w.data,
                DataOwner::Kinoite | DataOwner::Shared | DataOwner::Disk
            ) {
                bad.push(format!(
                    "{}: writes {:?} data at {}",
                    step.id, w.data, w.path
                ));
            }
            if matches!(
                w.kind,
                WriteKind::PartitionTable | WriteKind::LuksHeader | WriteKind::Filesystem
            ) {
                bad.push(format!("{}: formats {}", step.id, w.path));
            }
        }
        let Action::Run { argv, .. } = &step.action else {
            continue;
        };
        let prog = argv[0].as_str();
        if prog == "sgdisk"
            || prog.starts_with("mkfs")
            || prog == "wipefs"
            || argv.iter().any(|a| a == "luksFormat")
        {
            bad.push(format!("{}: runs {prog}", step.id));
        }
        // Path segments and mount options that name a subvolume.
        let mentions = |name: &str| {
            argv.iter().any(|a| {
                a.split(['/', ','])
                    .any(|seg| seg == name || seg == format!("subvol={name}"))
            })
        };
        for k in &kinoite {
            if mentions(k) {
                bad.push(format!(
                    "{}: names Kinoite's subvolume {k}: {argv:?}",
                    step.id
                ));
            }
        }
        for sh in &shared {
            if !mentions(sh) {
                continue;
            }
            let read_only_show = argv[..3] == ["btrfs", "subvolume", "show"];
            let ro_mount = prog == "mount"
                && argv
                    .windows(2)
                    .any(|w| w[0] == "-o" && w[1].split(',').any(|o| o == "ro"));
            if !(read_only_show || ro_mount) {
                bad.push(format!("{}: may write shared {sh}: {argv:?}", step.id));
            }
        }
        if step.kinoite == KinoiteAccess::ReadOnly
            && prog == "mount"
            && !argv
                .windows(2)
                .any(|w| w[0] == "-o" && w[1].split(',').any(|o| o == "ro"))
        {
            bad.push(format!("{}: read-only access mounted read-write", step.id));
        }
    }
    bad
}

#[test]
fn dual_boot_plan_never_writes_kinoite_or_shared_data() {
    let s = settings();
    let dual = make(Mode::DualBoot);
    assert_eq!(kinoite_violations(&dual, &s), Vec::<String>::new());
    // The same checker does catch writes: the fresh plan formats the disk and creates @shared.
    let fresh = kinoite_violations(&make(Mode::Fresh), &s);
    assert!(fresh.iter().any(|v| v.contains("luks-format")), "{fresh:?}");
    assert!(
        fresh
            .iter()
            .any(|v| v.contains("mount:/shared: may write shared")),
        "{fresh:?}"
    );
    // And it reaches the ESP only through esp install, keeping Kinoite's entries.
    let esp = dual.steps.iter().find(|s| s.id == "esp-install").unwrap();
    let Action::Run { argv, .. } = &esp.action else {
        panic!()
    };
    // The menu (chainload Kinoite here) comes from the host settings file.
    assert!(argv
        .windows(2)
        .any(|w| w == ["--settings", "/flake/hosts/surface-pro-8/host.json"]));
    assert!(!argv.iter().any(|a| a == "--kinoite-boot"), "{argv:?}");
    // Direct mode hands over Kinoite's /boot, mounted read-only.
    let mut direct = s.clone();
    direct.dual_boot.kinoite.as_mut().unwrap().mode = bifrost_core::spec::KinoiteMode::Direct;
    let p = plan_for(&direct, &request(Mode::DualBoot)).unwrap();
    assert!(argv_of(&p, "esp-install")
        .windows(2)
        .any(|w| w == ["--kinoite-boot", "/run/bifrost/kinoite-boot"]));
}

/// Fedora leaves Kinoite's /boot unlabelled and names it by file-system UUID:
/// the install mounts that very device and hands the same volume to the ESP
/// step (which looks up its partition GUID for rEFInd).
#[test]
fn dual_boot_plan_uses_a_uuid_named_kinoite_boot() {
    let mut s = settings();
    let uuid = "3f2a5c1e-8d4b-4e6f-9a7c-0b1d2e3f4a5b";
    s.dual_boot.kinoite.as_mut().unwrap().boot_volume =
        bifrost_core::spec::BootVolume::parse(&format!("UUID={uuid}")).unwrap();
    let p = plan_for(&s, &request(Mode::DualBoot)).expect("plan");
    let argv_of = |id: &str| {
        let step = p.steps.iter().find(|s| s.id == id).unwrap();
        let Action::Run { argv, .. } = &step.action else {
            panic!()
        };
        argv.clone()
    };
    let mount = argv_of("mount-kinoite-boot");
    assert!(
        mount.contains(&format!("/dev/disk/by-uuid/{uuid}")),
        "{mount:?}"
    );
    // The ESP step reads the same volume from the settings file
    // (esp::choices passes `UUID=…` on, as the flag did).
    let esp = argv_of("esp-install");
    assert!(esp.contains(&"--settings".to_string()), "{esp:?}");
    assert!(!esp.contains(&"--kinoite-volume".to_string()), "{esp:?}");
}

/// A stock Kinoite has no @shared: both layouts create it when missing (never
/// when present: the step's probe), with the shared group and mode 2775, and
/// no undo deletes it.
#[test]
fn shared_subvolume_is_created_only_when_missing_with_group_and_setgid() {
    for mode in [Mode::Fresh, Mode::DualBoot] {
        let p = make(mode);
        let step = p
            .steps
            .iter()
            .find(|s| s.id == "subvolume:@shared")
            .unwrap();
        assert_eq!(
            step.probe,
            Some(Probe::Subvolume {
                path: "/run/bifrost/pool-cryptroot/@shared".into()
            })
        );
        assert!(!step.conflict_if_present);
        assert!(step.undo.is_none());
        let Action::Run { argv, .. } = &step.action else {
            panic!()
        };
        assert_eq!(&argv[..2], ["sh", "-c"]);
        assert_eq!(
            &argv[4..],
            ["/run/bifrost/pool-cryptroot", "@shared", "2000"]
        );
        assert!(argv[2].contains("chmod 2775"), "{}", argv[2]);
        assert!(!argv[2].contains("mkfs"), "{}", argv[2]);
    }
}

/// The flake installed from is copied to /etc/nixos on the target, after
/// nixos-install; a flake that is not a local folder has nothing to copy.
#[test]
fn the_local_flake_is_copied_onto_the_target() {
    for mode in [Mode::Fresh, Mode::DualBoot] {
        let p = make(mode);
        assert_eq!(p.flake_copy.as_deref(), Some(Utf8Path::new("/etc/nixos")));
        let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
        let at = |id: &str| ids.iter().position(|i| *i == id).unwrap();
        assert!(at("nixos-install") < at("copy-flake"), "{ids:?}");
        let Action::Run { argv, .. } = &p.steps[at("copy-flake")].action else {
            panic!()
        };
        assert_eq!(&argv[4..], [".", "/mnt/etc/nixos", "1000:1000"]);
    }
    let mut r = request(Mode::Fresh);
    r.flake = "github:bifrost-nix/bifrost".into();
    let p = plan_for(&settings(), &r).unwrap();
    assert!(p.flake_copy.is_none());
    assert!(!p.steps.iter().any(|s| s.id == "copy-flake"));
}

#[test]
fn fresh_plan_creates_nixos_and_shared_subvolumes_but_not_kinoites() {
    let p = make(Mode::Fresh);
    let created: Vec<&str> = p
        .steps
        .iter()
        .filter_map(|s| s.id.strip_prefix("subvolume:"))
        .collect();
    assert_eq!(created, ["@", "@home", "@nix", "@snapshots", "@shared"]);
    let luks = p.steps.iter().find(|s| s.id == "luks-format").unwrap();
    let Action::Run { argv, stdin } = &luks.action else {
        panic!()
    };
    assert_eq!(*stdin, Stdin::Passphrase);
    for pair in [
        ["--pbkdf", "argon2id"],
        ["--pbkdf-memory", "1048576"],
        ["--pbkdf-parallel", "4"],
        ["--pbkdf-force-iterations", "4"],
        ["--key-file", "-"],
    ] {
        assert!(argv.windows(2).any(|w| w == pair), "{pair:?} in {argv:?}");
    }
}

#[test]
fn bad_settings_and_requests_are_refused_with_the_field() {
    let mut s = settings();
    s.dual_boot.kinoite = None;
    let e = plan_for(&s, &request(Mode::DualBoot)).unwrap_err();
    assert!(e.to_string().contains("dualBoot.kinoite"), "{e}");

    let mut s = settings();
    s.storage.subvolumes[1].mount_point = Some("/shared/home".into());
    let e = plan_for(&s, &request(Mode::DualBoot)).unwrap_err();
    assert!(e.to_string().contains("/shared/home"), "{e}");

    let mut s = settings();
    s.storage.luks.argon2id.iterations = 1;
    let e = plan_for(&s, &request(Mode::Fresh)).unwrap_err();
    assert!(
        e.to_string().contains("storage.luks.argon2id.iterations"),
        "{e}"
    );

    let mut s = settings();
    s.storage.subvolumes.retain(|v| v.name != "@");
    let e = plan_for(&s, &request(Mode::Fresh)).unwrap_err();
    assert!(e.contains("no subvolume is mounted at \"/\""), "{e}");
}

const PASS: &str = "correct horse battery staple 7f3a";

/// A machine that records what it is asked and fails when told to.
#[derive(Default)]
struct Fake {
    ran: Vec<Vec<String>>,
    stdin: Vec<Vec<u8>>,
    fail_on: Option<String>,
    present: Vec<Probe>,
    /// Password hash files written: (path, contents).
    hashes: Vec<(Utf8PathBuf, Vec<u8>)>,
}

impl Machine for Fake {
    fn run(&mut self, argv: &[String], stdin: Option<&Secret>) -> Result<(), String> {
        if self.fail_on.as_deref() == Some(argv.join(" ").as_str()) {
            self.fail_on = None;
            return Err("exited with status 32".into());
        }
        self.ran.push(argv.to_vec());
        if let Some(s) = stdin {
            self.stdin.push(s.expose().to_vec());
        }
        Ok(())
    }
    fn probe(&mut self, probe: &Probe) -> bool {
        self.present.contains(probe)
    }
    fn wait_for(&mut self, _: &[Utf8PathBuf], _: Duration) -> Result<(), String> {
        Ok(())
    }
    fn write_password_hash(&mut self, path: &Utf8Path, hash: &Secret) -> Result<(), String> {
        self.hashes
            .push((path.to_path_buf(), hash.expose().to_vec()));
        Ok(())
    }
}

fn storage_plan(mode: Mode) -> Plan {
    let mut r = request(mode);
    r.storage_only = true;
    plan_for(&settings(), &r).unwrap()
}

fn argv_of(p: &Plan, id: &str) -> Vec<String> {
    match &p.steps.iter().find(|s| s.id == id).unwrap().action {
        Action::Run { argv, .. } => argv.clone(),
        _ => panic!("{id} is not a command"),
    }
}

#[test]
fn a_run_interrupted_after_the_subvolumes_resumes_there() {
    let dir = tempfile::tempdir().unwrap();
    let state = Utf8PathBuf::from_path_buf(dir.path().join("state.json")).unwrap();
    let opts = RunOptions {
        state_path: state.clone(),
        force: false,
    };
    let p = storage_plan(Mode::Fresh);
    let secret = Secret::from_bytes(PASS.as_bytes().to_vec());
    let mut output = String::new();
    let mut sys = Fake {
        fail_on: Some(argv_of(&p, "mount:/").join(" ")),
        ..Default::default()
    };
    let err = run::execute(&p, &mut sys, &secret, &opts, &mut |e| {
        output += &format!("{e:?}\n")
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("[mount:/] failed"), "{msg}");
    assert!(
        msg.contains("to resume: fix the cause and run the same"),
        "{msg}"
    );
    assert!(
        msg.contains("btrfs subvolume delete /run/bifrost/pool-cryptroot/@snapshots"),
        "{msg}"
    );
    // Shared data is never deleted by an undo, even when this run created it.
    assert!(
        !msg.contains("btrfs subvolume delete /run/bifrost/pool-cryptroot/@shared"),
        "{msg}"
    );
    assert!(msg.contains("cryptsetup close cryptroot"), "{msg}");
    let first: Vec<String> = sys.ran.iter().map(|a| a[..2].join(" ")).collect();
    assert!(first.contains(&"btrfs subvolume".to_string()));
    let ran_before = sys.ran.len();

    // Second run: the same plan continues at the failed mount, nothing repeats.
    let mut sys2 = Fake::default();
    let mut events = Vec::new();
    let done = run::execute(&p, &mut sys2, &secret, &opts, &mut |e| events.push(e)).unwrap();
    assert!(done.finished);
    assert_eq!(sys2.ran.first().unwrap(), &argv_of(&p, "mount:/"));
    assert!(!sys2
        .ran
        .iter()
        .any(|a| a[0] == "sgdisk" || a.contains(&"luksFormat".to_string())));
    assert!(!sys2.ran.iter().any(|a| a[..2] == ["btrfs", "subvolume"]));
    let skipped = events
        .iter()
        .filter(|e| matches!(e, Event::Skip { reason, .. } if reason == "done in an earlier run"))
        .count();
    // Every command of the first run, plus its wait for the partitions.
    assert_eq!(skipped, ran_before + 1);
    assert_eq!(
        ran_before + sys2.ran.len() + 1,
        p.steps.len(),
        "one wait step is not a command"
    );

    // The passphrase went to stdin only: never argv, state, messages or events.
    assert_eq!(sys.stdin, vec![PASS.as_bytes().to_vec(); 2]);
    let state_text = std::fs::read_to_string(&state).unwrap();
    for text in [
        &msg,
        &output,
        &state_text,
        &format!("{events:?}"),
        &format!("{:?}{:?}", sys.ran, sys2.ran),
    ] {
        assert!(!text.contains(PASS), "passphrase leaked into {text}");
    }

    // A changed plan does not resume someone else's progress.
    let other = storage_plan(Mode::DualBoot);
    let e = run::execute(&other, &mut Fake::default(), &secret, &opts, &mut |_| {}).unwrap_err();
    assert!(matches!(e, RunError::PlanChanged { .. }), "{e}");
}

#[test]
fn an_existing_subvolume_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let p = storage_plan(Mode::DualBoot);
    let secret = Secret::from_bytes(PASS.as_bytes().to_vec());
    let home = Probe::Subvolume {
        path: "/run/bifrost/pool-cryptroot/@home".into(),
    };
    let mut sys = Fake {
        present: vec![home.clone()],
        ..Default::default()
    };
    let opts = RunOptions {
        state_path: Utf8PathBuf::from_path_buf(dir.path().join("a.json")).unwrap(),
        force: false,
    };
    let e = run::execute(&p, &mut sys, &secret, &opts, &mut |_| {}).unwrap_err();
    assert!(matches!(e, RunError::Conflict { .. }), "{e}");
    assert!(e.to_string().contains("@home already exists"), "{e}");
    assert!(e.to_string().contains("--force"), "{e}");
    // @ was made before the conflict was found; @home was not touched.
    assert!(!sys
        .ran
        .iter()
        .any(|a| a.iter().any(|x| x.ends_with("/@home"))));

    let mut sys = Fake {
        present: vec![home],
        ..Default::default()
    };
    let opts = RunOptions {
        state_path: Utf8PathBuf::from_path_buf(dir.path().join("b.json")).unwrap(),
        force: true,
    };
    let st = run::execute(&p, &mut sys, &secret, &opts, &mut |_| {}).unwrap();
    assert!(st.finished);
    assert!(!sys
        .ran
        .iter()
        .any(|a| a.iter().any(|x| x.ends_with("/@home"))));
    assert!(sys
        .ran
        .iter()
        .any(|a| a.iter().any(|x| x.ends_with("/@nix"))));
}

#[test]
fn probes_skip_work_already_done_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let p = storage_plan(Mode::DualBoot);
    let mut sys = Fake {
        present: vec![
            Probe::MapperOpen {
                name: "cryptroot".into(),
                device: "/dev/disk/by-partlabel/pool".into(),
            },
            Probe::Mounted {
                path: "/mnt".into(),
            },
        ],
        ..Default::default()
    };
    let opts = RunOptions {
        state_path: Utf8PathBuf::from_path_buf(dir.path().join("s.json")).unwrap(),
        force: false,
    };
    let secret = Secret::from_bytes(b"x".to_vec());
    run::execute(&p, &mut sys, &secret, &opts, &mut |_| {}).unwrap();
    assert!(!sys.ran.iter().any(|a| a[0] == "cryptsetup"));
    assert!(!sys.ran.contains(&argv_of(&p, "mount:/")));
    assert!(sys.stdin.is_empty());
}

/// The undo lines after a failure past the pool's unmount run in the printed
/// order: the pool's top level is mounted again before its subvolumes are
/// deleted, and every unmount comes after the work under that mount point.
#[test]
fn undo_steps_run_in_the_printed_order() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        state_path: Utf8PathBuf::from_path_buf(dir.path().join("state.json")).unwrap(),
        force: false,
    };
    let p = storage_plan(Mode::Fresh);
    let secret = Secret::from_bytes(PASS.as_bytes().to_vec());
    // Fail at the first mount after the last step: everything else ran.
    let last = p.steps.last().unwrap().id.clone();
    let mut sys = Fake {
        fail_on: Some(argv_of(&p, &last).join(" ")),
        ..Default::default()
    };
    let msg = run::execute(&p, &mut sys, &secret, &opts, &mut |_| {})
        .unwrap_err()
        .to_string();
    let undo: Vec<&str> = msg
        .split_once("run in this order:\n")
        .unwrap_or_else(|| panic!("{msg}"))
        .1
        .lines()
        .map(str::trim)
        .collect();
    // Replay what the failed run left mounted, then the undo lines.
    let mut mounted: Vec<String> = vec![];
    for a in &sys.ran {
        match a[0].as_str() {
            "mount" => mounted.push(a.last().unwrap().clone()),
            "umount" => mounted.retain(|m| m != &a[1]),
            _ => {}
        }
    }
    let top = "/run/bifrost/pool-cryptroot";
    assert!(
        !mounted.contains(&top.to_string()),
        "pool top still mounted"
    );
    let mut deleted = 0;
    for line in &undo {
        let w: Vec<&str> = line.split(' ').collect();
        match w[0] {
            "mount" => mounted.push(w.last().unwrap().to_string()),
            "umount" => {
                assert!(
                    mounted.iter().any(|m| m == w[1]),
                    "{line}: not mounted\n{msg}"
                );
                assert!(
                    !mounted.iter().any(|m| m.starts_with(&format!("{}/", w[1]))),
                    "{line}: something is still mounted below\n{msg}"
                );
                mounted.retain(|m| m != w[1]);
            }
            "btrfs" => {
                let path = w[3];
                assert!(
                    mounted.iter().any(|m| path.starts_with(&format!("{m}/"))),
                    "{line}: no file system mounted there\n{msg}"
                );
                deleted += 1;
            }
            "cryptsetup" => assert!(mounted.is_empty(), "{line}: still mounted {mounted:?}"),
            _ => {}
        }
    }
    assert!(deleted > 0, "{msg}");
    assert!(mounted.is_empty(), "left mounted: {mounted:?}\n{msg}");
}

#[test]
fn passwords_reach_only_their_hash_files() {
    use bifrost_core::install::users;
    use std::collections::BTreeMap;
    const PW: &str = "Tr0ub4dor&3-user-password";
    let dir = tempfile::tempdir().unwrap();
    let s = settings();
    let p = make(Mode::Fresh);
    // Each user's hash is written before nixos-install, whose activation reads it.
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    let pw_step = ids.iter().position(|i| *i == "password:user").unwrap();
    let install = ids.iter().position(|i| *i == "nixos-install").unwrap();
    assert!(pw_step < install, "{ids:?}");
    assert!(argv_of(&p, "esp-install").contains(&"--nvram".to_string()));
    let mut r = request(Mode::Fresh);
    r.nvram = false;
    let no_nvram = plan_for(&s, &r).unwrap();
    assert!(!argv_of(&no_nvram, "esp-install").contains(&"--nvram".to_string()));

    let pw_file = Utf8PathBuf::from_path_buf(dir.path().join("pw")).unwrap();
    std::fs::write(&pw_file, format!("{PW}\n")).unwrap();
    let hashes: BTreeMap<String, Secret> = users::collect(
        &spec::validated(s).unwrap(),
        &[("user".into(), pw_file)],
        &["user".into()],
        &mut |_| unreachable!(),
    )
    .unwrap();
    let hash = String::from_utf8(hashes["user"].expose().to_vec()).unwrap();
    let passphrase = Secret::from_bytes(PASS.as_bytes().to_vec());
    let state = Utf8PathBuf::from_path_buf(dir.path().join("state.json")).unwrap();
    let opts = RunOptions {
        state_path: state.clone(),
        force: false,
    };
    let mut sys = Fake::default();
    let mut events = String::new();
    let secrets = run::Secrets {
        passphrase: Some(&passphrase),
        password_hashes: &hashes,
    };
    run::execute_with(&p, &mut sys, &secrets, &opts, &mut |e| {
        events += &format!("{e:?}\n")
    })
    .unwrap();
    assert_eq!(
        sys.hashes,
        [(
            Utf8PathBuf::from("/mnt/var/lib/bifrost/passwords/user"),
            hash.as_bytes().to_vec()
        )]
    );
    assert!(hash.starts_with("$6$"), "{hash}");
    let plan_text = plan::render(&p) + &serde_json::to_string(&p).unwrap();
    let state_text = std::fs::read_to_string(&state).unwrap();
    for (what, text) in [
        ("argv", format!("{:?}", sys.ran)),
        ("stdin", format!("{:?}", sys.stdin)),
        ("events", events),
        ("plan", plan_text),
        ("state", state_text),
    ] {
        assert!(
            !text.contains(PW),
            "the password leaked into {what}: {text}"
        );
        assert!(!text.contains(&hash), "the hash leaked into {what}: {text}");
    }
    // The passphrase went to cryptsetup only, never the password.
    assert!(sys.stdin.iter().all(|i| i == PASS.as_bytes()));

    // Without the hash a run stops at that step, naming the fix.
    let opts = RunOptions {
        state_path: Utf8PathBuf::from_path_buf(dir.path().join("s2.json")).unwrap(),
        force: false,
    };
    let e = run::execute(&p, &mut Fake::default(), &passphrase, &opts, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("--password-file user=FILE"), "{e}");
}

#[test]
fn zero_generations_keeps_them_all() {
    // `esp install` reads maxGenerations from the settings file (0: no
    // limit, esp::choices' tests); the plan never writes a limit of its own.
    let mut s = settings();
    s.boot.max_generations = 0;
    assert!(spec::validate(&s).is_empty(), "0 (keep all) is valid");
    let p = plan_for(&s, &request(Mode::Fresh)).unwrap();
    let argv = argv_of(&p, "esp-install");
    assert!(!argv.contains(&"--limit".to_string()), "{argv:?}");
    assert!(argv.contains(&"--settings".to_string()), "{argv:?}");
}
