//! Crash safety: `bifrost esp install` killed with SIGKILL at random moments
//! while switching between two generation sets; after every kill
//! `bifrost esp status` must find a refind.conf whose every file is complete,
//! and the menu must be one of the two sets, never a mix.
//!
//! 50 runs by default (CI); `BIFROST_CRASH_RUNS=200` for the long mode,
//! `BIFROST_CRASH_SEED` to replay a sequence. The same for `bifrost esp
//! refresh-kinoite`, switching the Kinoite entries between two sets.

use bifrost_e2e::esp_install::EspInstall;
use bifrost_e2e::fakenix::{bifrost, Boot, FakeNix};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Where in a run the next kill lands. Starts from one timed run and follows
/// the load: a run that finished before its kill shrinks the window, a kill
/// that landed widens it a little. A fixed window from one timing let most
/// kills miss on a busy machine (the first run was slow, later ones fast),
/// and the test then proved nothing.
struct KillWindow(u64);
impl KillWindow {
    fn new(full: Duration) -> Self {
        Self(full.as_micros() as u64 * 12 / 10 + 1)
    }
    fn delay(&self, rng: &mut Rng) -> Duration {
        Duration::from_micros(rng.next() % self.0)
    }
    fn landed(&mut self, killed: bool) {
        self.0 = if killed {
            self.0 + self.0 / 20
        } else {
            (self.0 * 3 / 4).max(1_000)
        };
    }
}

#[test]
fn sigkill_at_random_moments_leaves_a_consistent_esp() {
    crash_test(50, None);
}

/// The same with signing on: kernels are real PE images (the test kernel
/// under several store paths), signed by `bifrost sb keys`' key on their way
/// to the ESP. Fewer runs: every run signs megabytes.
#[test]
fn sigkill_while_signing_leaves_a_consistent_esp() {
    let name = "sigkill_while_signing_leaves_a_consistent_esp";
    let kernel = bifrost_e2e::Tools::find().kernel;
    let (Some(kernel), Some(_), Some(_)) = (
        kernel,
        bifrost_e2e::program("sbsign"),
        bifrost_e2e::program("openssl"),
    ) else {
        bifrost_e2e::skip(name, "a kernel, sbsign (sbsigntool) and openssl");
        return;
    };
    crash_test(20, Some(kernel));
}

/// How many runs (`BIFROST_CRASH_RUNS`, else `default_runs`) and the seed
/// of the kill moments (`BIFROST_CRASH_SEED`, else the clock), printed so a
/// failing run can be replayed.
fn runs_and_seed(what: &str, default_runs: usize) -> (usize, u64) {
    let runs: usize = std::env::var("BIFROST_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_runs);
    let seed: u64 = std::env::var("BIFROST_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("{what}: {runs} runs, BIFROST_CRASH_SEED={seed}");
    (runs, seed)
}

fn crash_test(default_runs: usize, signed_kernel: Option<std::path::PathBuf>) {
    let (runs, seed) = runs_and_seed("crash test", default_runs);
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let refind_dir = dir.path().join("refind");
    std::fs::create_dir_all(&refind_dir).unwrap();
    let refind = refind_dir.join("refind_x64.efi");
    std::fs::write(&refind, vec![0x4du8; 300 << 10]).unwrap();
    // Two sets of 4 generations, each with its own kernels (2 MiB) and initrds (1 MiB).
    let mut sets = vec![];
    for set in ["a", "b"] {
        let profiles = dir.path().join(format!("profiles-{set}"));
        let mut numbers = vec![];
        for n in 1..=4u64 {
            let k = match &signed_kernel {
                Some(src) => nix.store_copy(&format!("linux-{set}{n}"), "bzImage", src),
                None => nix.store_file(
                    &format!("linux-{set}{n}"),
                    "bzImage",
                    &vec![n as u8; 2 << 20],
                ),
            };
            let i = nix.store_file(
                &format!("initrd-{set}{n}"),
                "initrd",
                &vec![9u8 + n as u8; 1 << 20],
            );
            let top = nix.toplevel(
                &format!("system-{set}-{n}"),
                &Boot {
                    label: format!("NixOS {set}{n}"),
                    kernel: k,
                    initrd: i,
                    params: vec![format!("set={set}")],
                },
                &[],
            );
            let number = if set == "a" { n } else { 10 + n };
            nix.link(&profiles, number, &top);
            numbers.push(number);
        }
        numbers.reverse();
        sets.push((profiles, numbers));
    }
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    // Signing stages its copies in TMPDIR: a killed run leaves them there, not on the ESP.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let keys = dir.path().join("keys");
    let mut sign_args: Vec<String> = vec![];
    if signed_kernel.is_some() {
        let (ok, out, err) = bifrost(&["sb", "keys", "--dir", keys.to_str().unwrap()]);
        assert!(ok, "{out}{err}");
        sign_args = vec![
            "--sign-key".into(),
            keys.join("mok.key").display().to_string(),
            "--sign-cert".into(),
            keys.join("mok.crt").display().to_string(),
        ];
    }
    let args =
        |profiles: &std::path::Path| EspInstall::new(&esp, profiles, &refind).args(&sign_args);
    let status = || {
        let (ok, out, err) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap(), "--json"]);
        assert!(ok, "status found problems:\n{out}\n{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["installs"][0]["generations"].clone()
    };

    // A full switch, timed, so kills land across the whole run.
    let t0 = Instant::now();
    let out = args(&sets[0].0)
        .command()
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut window = KillWindow::new(t0.elapsed().max(Duration::from_millis(20)));
    status();

    let mut killed = 0;
    for run in 0..runs {
        let (profiles, _) = &sets[(run + 1) % 2];
        let delay = window.delay(&mut rng);
        let mut child = args(profiles)
            .command()
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let landed = child.wait().unwrap().signal() == Some(libc::SIGKILL);
        window.landed(landed);
        killed += usize::from(landed);
        let gens = status();
        let a = serde_json::json!(sets[0].1);
        let b = serde_json::json!(sets[1].1);
        assert!(
            gens == a || gens == b,
            "run {run} (seed {seed}): menu is neither set: {gens}"
        );
    }
    eprintln!("crash test: {killed} of {runs} runs killed mid-install");
    assert!(
        killed * 4 >= runs,
        "too few kills landed mid-install ({killed}/{runs})"
    );

    // A clean run afterwards leaves no temp files behind.
    let (ok, out, err) = args(&sets[1].0).run();
    assert!(ok, "{out}{err}");
    status();
    let leftovers: Vec<_> = std::fs::read_dir(esp.join("EFI/nixos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".bifrost-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let left: Vec<_> = std::fs::read_dir(esp.join("EFI/nixos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 8, "seed {seed}: EFI/nixos holds {left:?}");
}

/// `bifrost esp refresh-kinoite` killed at random moments while switching the
/// Kinoite entries between two sets of BLS entries: after every kill the ESP
/// is consistent, the Kinoite entries are one set or the other, never a mix,
/// and the NixOS part of refind.conf is exactly what `esp install` wrote.
#[test]
fn refresh_kinoite_killed_at_random_moments_leaves_a_consistent_esp() {
    let (runs, seed) = runs_and_seed("refresh crash test", 50);
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let nix = FakeNix::new(&dir.path().join("root"));
    let refind_dir = dir.path().join("refind");
    std::fs::create_dir_all(refind_dir.join("drivers_x64")).unwrap();
    let refind = refind_dir.join("refind_x64.efi");
    std::fs::write(&refind, vec![0x4du8; 300 << 10]).unwrap();
    std::fs::write(refind_dir.join("drivers_x64/ext4_x64.efi"), b"MZ driver").unwrap();
    let profiles = dir.path().join("profiles");
    for n in 1..=3u64 {
        let k = nix.store_file(&format!("linux-{n}"), "bzImage", &vec![n as u8; 1 << 20]);
        let i = nix.store_file(&format!("initrd-{n}"), "initrd", &vec![7u8; 1 << 19]);
        let top = nix.toplevel(
            &format!("system-{n}"),
            &Boot {
                label: format!("NixOS {n}"),
                kernel: k,
                initrd: i,
                params: vec![format!("gen={n}")],
            },
            &[],
        );
        nix.link(&profiles, n, &top);
    }
    // Two sets of Kinoite entries, as two ostree updates leave them.
    let mut sets = vec![];
    for (set, bootversion) in [("x", 0), ("y", 1)] {
        let entries = dir.path().join(format!("entries-{set}"));
        std::fs::create_dir_all(&entries).unwrap();
        let mut titles = vec![];
        for n in (1..=20u32).rev() {
            let title = format!("Fedora Linux {set}.{n} (Kinoite)");
            std::fs::write(
                entries.join(format!("ostree-{n}-fedora.conf")),
                format!("title {title}\nversion {n}\noptions rw ostree=/ostree/boot.{bootversion}/fedora/{set}{n}/0\nlinux /ostree/fedora-{set}{n}/vmlinuz\ninitrd /ostree/fedora-{set}{n}/initramfs.img\n"),
            )
            .unwrap();
            titles.push(title);
        }
        sets.push((entries, serde_json::json!(titles)));
    }
    let esp = dir.path().join("esp");
    std::fs::create_dir_all(&esp).unwrap();
    let (ok, out, err) = EspInstall::new(&esp, &profiles, &refind)
        .args(["--kinoite-mode", "direct"])
        .path("--kinoite-entries", &sets[0].0)
        .args(["--kinoite-volume", "KB"])
        .run();
    assert!(ok, "{out}{err}");
    let conf_path = esp.join("EFI/refind/refind.conf");
    let nixos_part = |conf: &str| -> String {
        let end = conf.find("\nmenuentry \"Fedora").expect("Kinoite entries");
        conf[..end]
            .lines()
            .filter(|l| !l.starts_with("# bifrost-state "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let nixos = nixos_part(&std::fs::read_to_string(&conf_path).unwrap());
    let files_before = bifrost_e2e::fakenix::tree_hash(&esp.join("EFI/nixos"));
    let args = |entries: &std::path::Path| {
        vec![
            "esp".to_string(),
            "refresh-kinoite".into(),
            "--esp".into(),
            esp.display().to_string(),
            "--kinoite-entries".into(),
            entries.display().to_string(),
            "--kinoite-volume".into(),
            "KB".into(),
        ]
    };
    let check = |run: usize| {
        let (ok, out, err) = bifrost(&["esp", "status", "--esp", esp.to_str().unwrap(), "--json"]);
        assert!(
            ok,
            "run {run} (seed {seed}): status found problems:\n{out}\n{err}"
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let titles: Vec<serde_json::Value> = v["installs"][0]["kinoite"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].clone())
            .collect();
        let titles = serde_json::json!(titles);
        assert!(
            titles == sets[0].1 || titles == sets[1].1,
            "run {run} (seed {seed}): Kinoite entries are neither set: {titles}"
        );
        let conf = std::fs::read_to_string(&conf_path).unwrap();
        let menu: Vec<&str> = conf
            .lines()
            .filter_map(|l| l.strip_prefix("menuentry \"Fedora"))
            .collect();
        assert_eq!(menu.len(), 20, "run {run} (seed {seed}): {conf}");
        assert_eq!(
            nixos_part(&conf),
            nixos,
            "run {run} (seed {seed}): NixOS part changed"
        );
    };

    let t0 = Instant::now();
    let out = std::process::Command::new(bifrost_e2e::bifrost_bin())
        .args(args(&sets[1].0))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut window = KillWindow::new(t0.elapsed().max(Duration::from_millis(5)));
    check(0);

    let mut killed = 0;
    for run in 0..runs {
        let (entries, _) = &sets[run % 2];
        let delay = window.delay(&mut rng);
        let mut child = std::process::Command::new(bifrost_e2e::bifrost_bin())
            .args(args(entries))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let landed = child.wait().unwrap().signal() == Some(libc::SIGKILL);
        window.landed(landed);
        killed += usize::from(landed);
        check(run + 1);
    }
    eprintln!("refresh crash test: {killed} of {runs} runs killed mid-refresh");
    assert!(
        killed * 4 >= runs,
        "too few kills landed mid-refresh ({killed}/{runs})"
    );
    // The NixOS files were never touched, and no temp file is left behind.
    assert_eq!(
        bifrost_e2e::fakenix::tree_hash(&esp.join("EFI/nixos")),
        files_before
    );
    let (ok, out, err) = bifrost(
        &args(&sets[1].0)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(ok, "{out}{err}");
    let leftovers: Vec<_> = std::fs::read_dir(esp.join("EFI/refind"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".bifrost-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
