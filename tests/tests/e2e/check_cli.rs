//! `bifrost check` as users run it: the real binary, real files, every
//! malformed input in tests/fixtures/malformed, and hostile inputs.
//!
//! Each `NAME.json` fixture has a `NAME.expect` beside it:
//! `path = <JSON path the problem must name>` (empty for the whole file) and
//! `contains = <text the message must hold>`.

use bifrost_e2e::bifrost_bin;
use std::path::{Path, PathBuf};
use std::process::Output;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn check(args: &[&std::ffi::OsStr]) -> Output {
    let out = std::process::Command::new(bifrost_bin())
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "bifrost panicked:\n{stderr}");
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("bifrost prints UTF-8")
}

struct Expect {
    path: String,
    contains: String,
}

fn read_expect(file: &Path) -> Expect {
    let text = std::fs::read_to_string(file).unwrap();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} =")))
            .unwrap_or_else(|| panic!("{}: no `{key} =` line", file.display()))
            .trim()
            .to_string()
    };
    Expect {
        path: field("path"),
        contains: field("contains"),
    }
}

fn fixtures() -> Vec<(PathBuf, Expect)> {
    let dir = repo().join("tests/fixtures/malformed");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let expect = read_expect(&p.with_extension("expect"));
            (p, expect)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_seed_host_is_valid() {
    let host = repo().join("hosts/surface-pro-8/host.json");
    let out = check(&[host.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with(": ok\n"), "{}", stdout(&out));
    let out = check(&["--json".as_ref(), host.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn every_malformed_fixture_is_rejected_with_its_path() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 30,
        "only {} malformed fixtures",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for (file, expect) in &fixtures {
        let out = check(&[file.as_os_str()]);
        let text = stdout(&out);
        let prefix = if expect.path.is_empty() {
            format!("{}: ", file.display())
        } else {
            format!("{}: {}: ", file.display(), expect.path)
        };
        let found = text
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(&expect.contains));
        if out.status.code() != Some(2) || !found {
            failures.push(format!(
                "{}: exit {:?}, wanted a line starting {prefix:?} containing {:?}; got:\n{text}",
                file.display(),
                out.status.code(),
                expect.contains
            ));
        }
        // A problem at the document's root carries no JSON path, so its
        // message must place it some other way (line and column, or what
        // the whole file is).
        if expect.path.is_empty() {
            assert!(text.lines().all(|l| l.starts_with(&prefix)), "{text}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn json_output_lists_every_problem_of_every_file() {
    let fixtures = fixtures();
    let files: Vec<&std::ffi::OsStr> = fixtures.iter().map(|(f, _)| f.as_os_str()).collect();
    let mut args = vec!["--json".as_ref()];
    args.extend(&files);
    let out = check(&args);
    assert_eq!(out.status.code(), Some(2));
    let problems: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    for (file, expect) in &fixtures {
        let file = file.to_str().unwrap();
        assert!(
            problems.iter().any(|p| p["file"] == file
                && p["path"] == expect.path.as_str()
                && p["message"].as_str().unwrap().contains(&expect.contains)),
            "{file}: no problem with path {:?} in {problems:#?}",
            expect.path
        );
    }
    for p in &problems {
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["file", "path", "message", "severity"]);
        assert_eq!(p["severity"], "error");
    }
}

#[test]
fn tpm_bound_to_pcr_7_without_secure_boot_is_a_warning() {
    let mut host: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("hosts/surface-pro-8/host.json")).unwrap(),
    )
    .unwrap();
    host["storage"]["luks"]["unlock"] = serde_json::json!({"method": "tpm2"});
    host["security"]["secureBoot"] = serde_json::json!({"enable": false});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tpm.json");
    std::fs::write(&file, serde_json::to_vec(&host).unwrap()).unwrap();
    let out = check(&[file.as_os_str()]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning is not an error:\n{text}"
    );
    let f = file.display();
    assert!(
        text.starts_with(&format!("{f}: security.secureBoot.enable: warning: is false while storage.luks.unlock.method is \"tpm2\" bound to PCR 7")),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("{f}: ok, with 1 warning\n")),
        "{text}"
    );
    let out = check(&["--json".as_ref(), file.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    let problems: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(problems.as_array().unwrap().len(), 1, "{problems}");
    assert_eq!(problems[0]["severity"], "warning");
    assert_eq!(problems[0]["path"], "security.secureBoot.enable");
    // With Secure Boot on, nothing to say.
    host["security"]["secureBoot"] =
        serde_json::json!({"enable": true, "keysPath": "/etc/secureboot"});
    std::fs::write(&file, serde_json::to_vec(&host).unwrap()).unwrap();
    let out = check(&[file.as_os_str()]);
    assert_eq!(stdout(&out), format!("{f}: ok\n"));
}

#[test]
fn several_files_one_bad() {
    let host = repo().join("hosts/surface-pro-8/host.json");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{").unwrap();
    let out = check(&[host.as_os_str(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains(&format!("{}: ok", host.display())), "{text}");
    assert!(
        text.contains(&format!("{}: invalid JSON", bad.display())),
        "{text}"
    );
}

#[test]
fn a_missing_file_exits_2_and_says_so() {
    let out = check(&["/nonexistent/host.json".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).starts_with("/nonexistent/host.json: cannot read: "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_directory_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&[dir.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("is a directory"), "{}", stdout(&out));
}

#[test]
fn a_100_mb_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    let out = check(&[big.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("104857600 bytes"), "{}", stdout(&out));
}

#[test]
fn an_endless_device_is_cut_off() {
    // /dev/zero reports size 0 but never ends: the read limit stops it.
    let out = check(&["/dev/zero".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("more than 4194304 bytes"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn garbage_and_deep_nesting_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    // Deterministic pseudo-random bytes (xorshift), so a failure reproduces.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..20 {
        let bytes: Vec<u8> = (0..(i * 97 + 1))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let f = dir.path().join(format!("garbage-{i}.json"));
        std::fs::write(&f, bytes).unwrap();
        files.push(f);
    }
    for (name, doc) in [
        ("deep-arrays", "[".repeat(1_000_000)),
        ("deep-objects", r#"{"a":"#.repeat(500_000)),
        (
            "deep-in-a-field",
            format!(r#"{{"hostName":"x","hardware":{}}}"#, "[".repeat(100_000)),
        ),
    ] {
        let f = dir.path().join(format!("{name}.json"));
        std::fs::write(&f, doc).unwrap();
        files.push(f);
    }
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    let out = check(&args);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    for f in &files {
        assert!(
            text.contains(&format!("{}: ", f.display())),
            "{} not reported:\n{text}",
            f.display()
        );
    }
}

#[test]
fn usage_errors_are_not_silent() {
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FILE"));
}

#[test]
fn schema_command_prints_the_library_schema() {
    let out = std::process::Command::new(bifrost_bin())
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, bifrost_core::spec::json_schema());
}

/// Every message of the malformed corpus, so wording changes are reviewed.
#[test]
fn messages_snapshot() {
    let dir = repo().join("tests/fixtures/malformed");
    let mut names: Vec<String> = fixtures()
        .iter()
        .map(|(f, _)| f.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    names.sort();
    let out = std::process::Command::new(bifrost_bin())
        .arg("check")
        .args(&names)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!("malformed-messages", stdout(&out));
}

#[test]
fn standard_input_is_checked_as_dash() {
    use std::io::Write;
    let run = |input: &[u8]| {
        let mut child = std::process::Command::new(bifrost_bin())
            .args(["check", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let host = std::fs::read(repo().join("hosts/surface-pro-8/host.json")).unwrap();
    let out = run(&host);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "-: ok\n");
    let out = run(b"{\"hostName\": 1}");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("-: hostName: must be a string"),
        "{}",
        stdout(&out)
    );
}
