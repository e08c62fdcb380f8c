//! `bifrost build` against real Nix (2.8 from Debian in CI) and the test
//! flake in tests/flakes/images: tiny sparse images in the shape of nixpkgs'
//! image builders, built for real.

use bifrost_e2e::{bifrost_bin, skip, Tools};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The settings tests/run.sh gives nix, for runs of this file on its own.
const NIX_CONFIG: &str = "experimental-features = nix-command flakes
build-users-group =
sandbox = false
substituters =";

struct Flake {
    _dir: tempfile::TempDir,
    path: PathBuf,
    out: PathBuf,
}

impl Flake {
    /// A private copy of the test flake with a unique seed, so every test
    /// builds fresh derivations instead of finding them in the store.
    fn new(test: &str) -> Option<Flake> {
        if Tools::find().nix.is_none() {
            skip(test, "nix (Debian package nix-bin)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("bifrost-build-test-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("flake");
        std::fs::create_dir(&path).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("flakes/images");
        for f in ["flake.nix", "flake.lock"] {
            std::fs::copy(src.join(f), path.join(f)).unwrap();
        }
        let out = dir.path().join("out");
        let f = Flake {
            _dir: dir,
            path,
            out,
        };
        f.knob("seed", &unique(test));
        Some(f)
    }

    fn knob(&self, name: &str, value: &str) {
        std::fs::write(self.path.join(name), value).unwrap();
    }

    fn flake_ref(&self) -> String {
        format!("path:{}", self.path.display())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bifrost_bin());
        c.arg("build")
            .arg("--flake")
            .arg(self.flake_ref())
            .arg("--out")
            .arg(&self.out)
            .args(args);
        if std::env::var_os("NIX_CONFIG").is_none() {
            c.env("NIX_CONFIG", NIX_CONFIG);
        }
        c
    }

    fn build(&self, args: &[&str]) -> Output {
        bifrost_e2e::nixrun::output(&mut self.cmd(args))
    }

    fn raw_dir(&self) -> PathBuf {
        self.out.join("2_raw")
    }

    fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.raw_dir().join("manifest.json")).unwrap())
            .unwrap()
    }

    fn sums(&self) -> String {
        std::fs::read_to_string(self.raw_dir().join("SHA256SUMS")).unwrap()
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.raw_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

fn unique(test: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{t}", std::process::id())
}

fn ok(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "bifrost build failed: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("--json prints a JSON document")
}

fn sha256sum_check(dir: &Path) {
    let o = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sha256sum -c: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_format_is_placed_checksummed_recorded_and_sparse() {
    let Some(f) = Flake::new("every_format_is_placed_checksummed_recorded_and_sparse") else {
        return;
    };
    let cases = [
        ("raw", "nixos.raw", "nixos-image-raw-efi.raw"),
        ("iso", "nixos.iso", "iso/nixos-installer.iso"),
        ("qcow", "nixos.qcow2", "nixos-image-qemu-efi.qcow2"),
    ];
    for (format, name, file_path) in cases {
        let report = ok(&f.build(&[format, "--json"]));
        let placed = f.raw_dir().join(name);
        assert_eq!(report["artifact"], placed.to_str().unwrap());
        let store = report["storePath"].as_str().unwrap();
        assert!(store.starts_with("/nix/store/"), "{store}");
        assert_eq!(report["filePath"], file_path);
        let src = Path::new(store).join(file_path);
        assert_eq!(
            std::fs::read(&src).unwrap(),
            std::fs::read(&placed).unwrap()
        );
        // Sparse: the copy allocates no more than the source, far less than its size.
        let (s, d) = (src.metadata().unwrap(), placed.metadata().unwrap());
        assert_eq!(s.len(), d.len());
        assert!(
            d.blocks() <= s.blocks() + 8,
            "{name}: copy has {} blocks, source {}",
            d.blocks(),
            s.blocks()
        );
        assert!(d.blocks() * 512 < d.len() / 4, "{name} is not sparse");
        assert_eq!(d.mode() & 0o777, 0o644);

        let m = f.manifest();
        let e = &m["artifacts"][name];
        assert_eq!(e["host"], "testhost");
        assert_eq!(e["format"], format);
        assert_eq!(e["storePath"], store);
        assert_eq!(e["size"], d.len());
        assert_eq!(e["sha256"], report["sha256"]);
        assert_eq!(e["nixosVersion"], "26.05.20260819.5880666");
        assert_eq!(e["bifrostVersion"], env!("CARGO_PKG_VERSION"));
        assert!(e["flake"]["url"].as_str().unwrap().starts_with("path:"));
        assert!(e["builtAt"].as_str().unwrap().ends_with('Z'));
        let line = format!("{}  {name}\n", report["sha256"].as_str().unwrap());
        assert!(
            f.sums().contains(&line),
            "SHA256SUMS lacks {line:?}:\n{}",
            f.sums()
        );
    }
    for d in ["0_podman", "1_oci", "2_raw", "3_deploy"] {
        assert!(f.out.join(d).is_dir(), "{d} missing");
    }

    // vm: a GC-rooted link to the runner.
    let report = ok(&f.build(&["vm", "--json"]));
    let link = f.raw_dir().join("nixos-vm");
    let store = report["storePath"].as_str().unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(store));
    assert_eq!(report["filePath"], "bin/run-testhost-vm");
    let roots =
        bifrost_e2e::nixrun::output(Command::new("nix-store").args(["--gc", "--print-roots"]));
    let roots = String::from_utf8_lossy(&roots.stdout);
    assert!(
        roots.contains(&format!("{} -> {store}", link.display())),
        "{} is not a GC root:\n{roots}",
        link.display()
    );
    assert!(f.sums().contains("  nixos-vm/bin/run-testhost-vm\n"));
    sha256sum_check(&f.raw_dir());

    // A second vm keeps the first as nixos-vm.1, still a GC root under its new name.
    f.knob("seed", &unique("second-vm"));
    let second_vm = ok(&f.build(&["vm", "--json", "--keep", "1"]));
    let kept = f.raw_dir().join("nixos-vm.1");
    assert_eq!(std::fs::read_link(&kept).unwrap(), Path::new(store));
    assert_ne!(second_vm["storePath"], report["storePath"]);
    let roots =
        bifrost_e2e::nixrun::output(Command::new("nix-store").args(["--gc", "--print-roots"]));
    let roots = String::from_utf8_lossy(&roots.stdout);
    assert!(
        roots.contains(&format!("{} -> {store}", kept.display())),
        "{} is not a GC root:\n{roots}",
        kept.display()
    );
    std::fs::remove_file(&kept).unwrap();

    // A second raw build keeps the first as nixos.raw.1, checksums follow it.
    let first = f.manifest()["artifacts"]["nixos.raw"]["sha256"].clone();
    f.knob("seed", &unique("second"));
    let second = ok(&f.build(&["raw", "--json", "--keep", "1"]));
    assert_ne!(second["sha256"], first);
    let m = f.manifest();
    assert_eq!(m["artifacts"]["nixos.raw.1"]["sha256"], first);
    assert_eq!(m["artifacts"]["nixos.raw"]["sha256"], second["sha256"]);
    assert!(f
        .sums()
        .contains(&format!("{}  nixos.raw.1\n", first.as_str().unwrap())));
    sha256sum_check(&f.raw_dir());
    // A third: the second becomes nixos.raw.1, the first is dropped with its entries.
    f.knob("seed", &unique("third"));
    let third = ok(&f.build(&["raw", "--json", "--keep", "1"]));
    let m = f.manifest();
    assert_eq!(m["artifacts"]["nixos.raw.1"]["sha256"], second["sha256"]);
    assert_eq!(m["artifacts"]["nixos.raw"]["sha256"], third["sha256"]);
    assert!(!f.sums().contains(first.as_str().unwrap()));
    sha256sum_check(&f.raw_dir());
    assert_eq!(
        f.names(),
        [
            "SHA256SUMS",
            "manifest.json",
            "nixos-vm",
            "nixos.iso",
            "nixos.qcow2",
            "nixos.raw",
            "nixos.raw.1"
        ]
    );
}

#[test]
fn failing_build_keeps_the_previous_artifact() {
    let Some(f) = Flake::new("failing_build_keeps_the_previous_artifact") else {
        return;
    };
    ok(&f.build(&["raw", "--json"]));
    let before = std::fs::read(f.raw_dir().join("nixos.raw")).unwrap();
    let sums = f.sums();
    let manifest = f.manifest();

    f.knob("seed", &unique("failing"));
    f.knob("fail", "raw");
    let o = f.build(&["raw"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(1), "nix's exit status: {stderr}");
    assert!(
        stderr.contains("-nixos-image-raw-efi.drv' failed with exit code 3"),
        "nix's error is missing:\n{stderr}"
    );
    assert!(
        stderr.contains("> mkfs.ext4: Could not allocate block in ext2 filesystem"),
        "the failing derivation's log is missing:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(f.raw_dir().join("nixos.raw")).unwrap(),
        before
    );
    assert_eq!(f.sums(), sums);
    assert_eq!(f.manifest(), manifest);
    assert_eq!(f.names(), ["SHA256SUMS", "manifest.json", "nixos.raw"]);
}

#[test]
fn dry_run_prints_the_command_and_touches_nothing() {
    let Some(f) = Flake::new("dry_run_prints_the_command_and_touches_nothing") else {
        return;
    };
    let o = f.build(&[
        "iso",
        "--dry-run",
        "--host",
        "testhost",
        "--builders",
        "ssh://b x86_64-linux",
        "--substituter",
        "https://c.example",
        "--trusted-key",
        "c:K=",
        "--",
        "--max-jobs",
        "0",
    ]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let expected = format!(
        "nix build --json --no-link --log-format internal-json -v --builders 'ssh://b x86_64-linux' \
         --option extra-substituters https://c.example --option extra-trusted-public-keys c:K= \
         {}#nixosConfigurations.testhost.config.system.build.images.iso-installer --max-jobs 0",
        f.flake_ref()
    );
    assert!(text.contains(&expected), "{text}");
    assert!(text.contains(&format!("-> {}/2_raw/nixos.iso", f.out.display())));
    assert!(!f.out.exists(), "--dry-run created {}", f.out.display());
}

/// Processes whose environment carries `seed=<seed>`: the test flake's builders.
fn builders_with_seed(seed: &str) -> Vec<u32> {
    let needle = format!("seed={seed}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn sigint_stops_nix_and_leaves_no_temp_files() {
    let Some(f) = Flake::new("sigint_stops_nix_and_leaves_no_temp_files") else {
        return;
    };
    let seed = unique("sigint");
    f.knob("seed", &seed);
    f.knob("slow", "60");
    let mut child = f
        .cmd(&["raw"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the builder runs (plain progress names the derivation).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no build started; stderr so far:\n{}", seen.join("\n")));
        let started = line.contains("building nixos-image-raw-efi");
        seen.push(line);
        if started {
            break;
        }
    }
    // nix prints the start a moment before it forks the builder.
    let t = Instant::now();
    while builders_with_seed(&seed).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the builder never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "bifrost ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        status.code(),
        Some(130),
        "stderr:\n{}\n{}",
        seen.join("\n"),
        rest.join("\n")
    );
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "no word of the interrupt: {rest:?}"
    );
    // nix and its builder are gone (give the kernel a moment to reap).
    let t = Instant::now();
    while !builders_with_seed(&seed).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "builder still running: {:?}",
            builders_with_seed(&seed)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if f.raw_dir().exists() {
        let left = f.names();
        assert!(left.is_empty(), "left in 2_raw: {left:?}");
    }
}

#[test]
fn unknown_host_names_the_flag_and_the_hosts() {
    let Some(f) = Flake::new("unknown_host_names_the_flag_and_the_hosts") else {
        return;
    };
    let o = f.build(&["qcow", "--host", "surface-pro-9"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("error: --host: the flake path:")
            && stderr.contains("has no host \"surface-pro-9\"; its hosts: testhost"),
        "{stderr}"
    );
    assert!(!f.out.exists());
}

/// An output root that cannot be created fails before nix runs at all (a
/// fake `nix` first on PATH records any call), and the message names `--out`.
#[test]
fn unwritable_output_root_fails_before_nix_runs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let called = dir.path().join("nix-was-called");
    let nix = bin.join("nix");
    std::fs::write(
        &nix,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", called.display()),
    )
    .unwrap();
    std::fs::set_permissions(&nix, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A regular file where a folder of the output root must go: no user,
    // root included, can create the layout below it.
    std::fs::write(dir.path().join("not-a-folder"), b"x").unwrap();
    let out = dir.path().join("not-a-folder/images");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Without --host, finding the host would be the first nix call.
    let o = Command::new(bifrost_bin())
        .args(["build", "iso", "--flake", "path:/nonexistent", "--out"])
        .arg(&out)
        .env("PATH", &path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        !called.exists(),
        "nix was run: {:?}",
        std::fs::read_to_string(&called)
    );
    assert!(err.contains("--out"), "{err}");
    assert!(err.contains("Nothing was built"), "{err}");
    assert!(err.contains("bifrost-images"), "{err}");
    // --json carries the same error.
    let o = Command::new(bifrost_bin())
        .args(["build", "raw", "--json", "--host", "h", "--out"])
        .arg(&out)
        .env("PATH", &path)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["error"].as_str().unwrap().contains("--out"), "{doc}");
    assert!(!called.exists());
}

/// Issue 13 item 3: a manifest.json that cannot be read is found before
/// anything is placed: the artifact, SHA256SUMS and the kept artifacts stay
/// as they are, on every retry. Before the fix each run replaced and rotated
/// the artifact, then failed, leaving SHA256SUMS stale.
#[test]
fn unreadable_manifest_fails_before_anything_is_placed() {
    let Some(f) = Flake::new("unreadable_manifest_fails_before_anything_is_placed") else {
        return;
    };
    ok(&f.build(&["raw", "--json"]));
    let artifact = std::fs::read(f.raw_dir().join("nixos.raw")).unwrap();
    let sums = f.sums();
    // A folder where the manifest should be: it cannot be read as a file.
    std::fs::remove_file(f.raw_dir().join("manifest.json")).unwrap();
    std::fs::create_dir(f.raw_dir().join("manifest.json")).unwrap();
    for attempt in 0..2 {
        f.knob("seed", &unique(&format!("unreadable-{attempt}")));
        let o = f.build(&["raw"]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "attempt {attempt}: {stderr}");
        assert!(stderr.contains("manifest.json"), "{stderr}");
        assert_eq!(
            f.names(),
            ["SHA256SUMS", "manifest.json", "nixos.raw"],
            "attempt {attempt}: rotated or left files"
        );
        assert!(std::fs::read(f.raw_dir().join("nixos.raw")).unwrap() == artifact);
        assert_eq!(f.sums(), sums);
    }
    // Garbage in it is refused the same way.
    std::fs::remove_dir(f.raw_dir().join("manifest.json")).unwrap();
    std::fs::write(f.raw_dir().join("manifest.json"), b"{ not json").unwrap();
    let o = f.build(&["raw"]);
    assert!(!o.status.success());
    assert!(std::fs::read(f.raw_dir().join("nixos.raw")).unwrap() == artifact);
    assert_eq!(f.sums(), sums);
    sha256sum_check(&f.raw_dir());
}

/// Issue 13 item 2: a build places into OUT only while it holds OUT's lock.
/// The test holds it (as another build would): the build says it waits and
/// places nothing until the lock is released, then finishes with matching
/// checksums. Before the fix it placed at once beside the other build.
#[test]
fn build_waits_for_another_build_placing_into_the_same_out() {
    use std::io::BufRead;
    use std::os::fd::AsRawFd;
    let Some(f) = Flake::new("build_waits_for_another_build_placing_into_the_same_out") else {
        return;
    };
    std::fs::create_dir_all(&f.out).unwrap();
    let held = std::fs::File::open(&f.out).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut child = f
        .cmd(&["raw"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = vec![];
    let waiting = loop {
        match lines.next() {
            Some(Ok(l)) => {
                let w = l.contains("another bifrost run");
                seen.push(l);
                if w {
                    break true;
                }
            }
            _ => break false,
        }
    };
    assert!(waiting, "the build did not wait:\n{}", seen.join("\n"));
    assert!(
        !f.raw_dir().join("nixos.raw").exists(),
        "placed while another build held OUT"
    );
    drop(held);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{}\n{}", seen.join("\n"), rest.join("\n"));
    assert_eq!(f.names(), ["SHA256SUMS", "manifest.json", "nixos.raw"]);
    sha256sum_check(&f.raw_dir());
}
