//! The Nix dev shell gives the tests everything tests/run.sh gives them on
//! Debian: every `BIFROST_*` tool variable the tests read is set by
//! `devShells.default`, and the shell's `commands`/`files` name exactly the
//! keys of run.sh's PKG table. Evaluated with the real nixpkgs `lib` and
//! stand-in packages (tests/nix/flake-stub-eval.nix); `nix develop` itself
//! needs nixpkgs and is not run here.

use bifrost_e2e::nixeval::{self, NixLib};
use std::collections::BTreeSet;
use std::path::Path;

/// Variables the tests read that are not tool locations: the dev shell has
/// no business setting them.
const NOT_TOOLS: &[&str] = &[
    // cargo's own binary, next to the test executable
    "BIFROST_BIN",
    // qemu-system-x86_64 on PATH unless overridden
    "BIFROST_QEMU",
    "BIFROST_QEMU_ACCEL",
    // how the suite runs, set by tests/run.sh or .ci/run
    "BIFROST_REQUIRE_TOOLS",
    "BIFROST_SKIP_LOG",
    // debugging and tuning knobs
    "BIFROST_KEEP_SERIAL",
    "BIFROST_CRASH_RUNS",
    "BIFROST_CRASH_SEED",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// `BIFROST_*` names the test sources read through `env::var`,
/// `env::var_os` or `tool_path` (the name may sit on the next line).
fn variables_read() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for dir in ["tests/src", "tests/tests/e2e"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for opener in ["var(", "var_os(", "tool_path("] {
                for (at, _) in text.match_indices(opener) {
                    let rest = text[at + opener.len()..].trim_start();
                    let Some(rest) = rest.strip_prefix("\"BIFROST_") else {
                        continue;
                    };
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if rest[name.len()..].starts_with('"') {
                        found.insert(format!("BIFROST_{name}"));
                    }
                }
            }
        }
    }
    found
}

/// The keys of tests/run.sh's `declare -A PKG=( [key]=package … )`.
fn run_sh_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("tests/run.sh")).unwrap();
    let start = text
        .find("declare -A PKG=(")
        .expect("PKG table in tests/run.sh");
    let body = &text[start..];
    let body = &body[..body.find("\n)").expect("end of the PKG table")];
    body.lines()
        .filter_map(|l| l.trim().strip_prefix('['))
        .filter_map(|l| l.split_once("]=").map(|(k, _)| k.to_string()))
        .collect()
}

#[test]
fn the_scan_sees_the_tool_variables() {
    let vars = variables_read();
    // One of each way a test reads them, so a broken scan cannot pass.
    for v in [
        "BIFROST_OVMF_CODE",
        "BIFROST_OVMF_SECBOOT_CODE",
        "BIFROST_KERNEL",
        "BIFROST_TSS2_LIB_DIR",
        "BIFROST_BIN",
    ] {
        assert!(vars.contains(v), "{v} not found among {vars:?}");
    }
    let keys = run_sh_keys();
    assert!(keys.contains("qemu-system-x86_64") && keys.contains("/bin/busybox"));
}

#[test]
fn dev_shell_sets_every_tool_variable_and_lists_run_sh_tools() {
    let test = "dev_shell_sets_every_tool_variable_and_lists_run_sh_tools";
    let Some(NixLib { nix, lib }) = NixLib::find(test) else {
        return;
    };
    let v = nixeval::json(
        nixeval::eval(&nix)
            .arg(root().join("tests/nix/flake-stub-eval.nix"))
            .arg("--arg")
            .arg("flakeDir")
            .arg(root())
            .arg("--arg")
            .arg("nixpkgsLib")
            .arg(&lib),
    );
    let tools: BTreeSet<String> = variables_read()
        .into_iter()
        .filter(|n| !NOT_TOOLS.contains(&n.as_str()))
        .collect();
    let keys = run_sh_keys();
    for system in ["aarch64-linux", "x86_64-linux"] {
        let shell = v["shell"][system].as_object().unwrap();
        let unset: Vec<&String> = tools.iter().filter(|t| !shell.contains_key(*t)).collect();
        assert!(
            unset.is_empty(),
            "{system}: the tests read {unset:?}, which devShells.default (devshell.nix) does not set"
        );
        for (name, value) in shell {
            assert!(
                value.as_str().is_some_and(|s| s.starts_with("/nix/store/")),
                "{system}: {name} = {value}"
            );
        }
        let commands = v["shellCommands"][system].as_object().unwrap();
        let files = v["shellFiles"][system].as_object().unwrap();
        let shell_keys: BTreeSet<String> = commands.keys().chain(files.keys()).cloned().collect();
        assert_eq!(
            shell_keys, keys,
            "{system}: devshell.nix `commands` + `files` against tests/run.sh's PKG table"
        );
        assert!(commands.keys().all(|k| !k.starts_with('/')), "{commands:?}");
        for (file, var) in files {
            let var = var.as_str().unwrap();
            assert!(
                shell.contains_key(var),
                "{system}: {file} stands for {var}, which the shell does not set"
            );
        }
        let packages = v["shellPackages"][system].as_array().unwrap();
        for (cmd, pkg) in commands {
            assert!(
                packages.contains(pkg),
                "{system}: {cmd} comes from {pkg}, not among the shell's packages"
            );
        }
    }
}
