//! The NixOS module, evaluated with nixpkgs' `lib.evalModules` against the
//! strict model of nixpkgs in tests/nix/nixpkgs-model.nix:
//! options type-check, assertions fire on what only Nix knows, the system
//! build runs `bifrost check` on the settings (built for real here), the
//! effective settings JSON is what the Rust side reads, the hardware it
//! configures equals `bifrost gen hardware`, and the option tree equals
//! `bifrost schema` (names, kinds, enums, required fields, defaults).
//!
//! Needs a local nixpkgs lib: set BIFROST_NIXPKGS_LIB to a checkout of
//! nixpkgs or of nix-community/nixpkgs.lib. Without it these tests print
//! `SKIPPED (optional)` and pass; CI machines here cannot reach nixpkgs.

use bifrost_e2e::nixeval::{self, NixLib};
use bifrost_e2e::{bifrost_bin, skip, Tools};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// nix-instantiate and nixpkgs' lib, for the module harness.
struct Env(NixLib);

fn env(test: &str) -> Option<Env> {
    NixLib::find(test).map(Env)
}

fn nix_str(p: &Path) -> String {
    // Paths here are ours (temp dirs, the repository): quote them as Nix strings.
    format!("{:?}", p.to_str().unwrap())
}

impl Env {
    /// `attr` of tests/nix/module-eval.nix called with `args` (Nix source).
    fn expr(&self, args: &str, attr: &str) -> String {
        let harness = repo().join("tests/nix/module-eval.nix");
        format!(
            "let lib = import (/. + {}); in (import (/. + {}) ({{ inherit lib; }} // {args})).{attr}",
            nix_str(&self.0.lib),
            nix_str(&harness)
        )
    }

    /// Evaluate tests/nix/module-eval.nix with `args` (Nix source) and return `attr`.
    fn eval(&self, args: &str, attr: &str) -> Result<Value, String> {
        nixeval::try_json(nixeval::eval(&self.0.nix).args(["-E", &self.expr(args, attr)]))
    }

    /// Build `attr` of tests/nix/module-eval.nix with `args` for real
    /// (`nix-build`, beside nix-instantiate); stderr when it fails.
    fn build(&self, args: &str, attr: &str) -> Result<(), String> {
        let nix_build = self.0.nix.with_file_name("nix-build");
        let out = bifrost_e2e::nixrun::output(Command::new(nix_build).args([
            "--no-out-link",
            "-E",
            &self.expr(args, attr),
        ]));
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn eval_settings(&self, settings: &Path, surface: bool, attr: &str) -> Result<Value, String> {
        self.eval(
            &format!(
                "{{ settings = lib.importJSON (/. + {}); surface = {surface}; }}",
                nix_str(settings)
            ),
            attr,
        )
    }
}

const HOSTS: &[(&str, bool)] = &[
    ("hosts/surface-pro-8/host.json", true),
    ("hosts/example-vm/host.json", false),
];

/// A host file, changed by `edit`, written to `dir`.
fn edited_host(dir: &Path, host: &str, name: &str, edit: fn(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_slice(&std::fs::read(repo().join(host)).unwrap()).unwrap();
    edit(&mut v);
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    file
}

/// The layout is written once (modules/lib/hardware-config.nix): the
/// module applies it to `bifrost.settings`, `bifrost gen hardware` writes it
/// with the settings as values. Both evaluate to the same initrd modules,
/// LUKS device, file systems, swap and kernel, for each kind of choice.
#[test]
fn module_configures_what_gen_hardware_writes() {
    let Some(env) = env("module_configures_what_gen_hardware_writes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    type Check = fn(&Value);
    let cases: Vec<(PathBuf, bool, Check)> = vec![
        (repo().join(HOSTS[0].0), true, |h| {
            assert_eq!(h["kernelPackages"], "linux-surface-longterm");
            assert_eq!(h["surfaceKernel"], "longterm");
            assert_eq!(h["kernelParams"], json!(["mem_sleep_default=deep"]));
            assert_eq!(h["kernelModules"][0], "surface_aggregator");
            assert_eq!(
                h["luks"]["cryptroot"]["device"],
                "/dev/disk/by-partlabel/pool"
            );
            assert_eq!(h["luks"]["cryptroot"]["allowDiscards"], true);
            assert_eq!(
                h["fileSystems"]["/home"]["options"],
                json!(["subvol=@home", "compress=zstd", "noatime"])
            );
            assert_eq!(h["fileSystems"]["/home"]["device"], "/dev/mapper/cryptroot");
            assert_eq!(
                h["fileSystems"]["/boot/efi"]["options"],
                json!(["fmask=0077", "dmask=0077"])
            );
            assert_eq!(h["swapDevices"], json!([]));
        }),
        (repo().join(HOSTS[1].0), false, |h| {
            assert_eq!(
                h["swapDevices"],
                json!([{"device": "/swap/swapfile", "size": 1024}])
            );
            assert_eq!(
                h["fileSystems"]["/swap"]["options"],
                json!(["subvol=@swap", "noatime"])
            );
            assert_eq!(h["surfaceKernel"], Value::Null);
        }),
        (
            edited_host(d, HOSTS[0].0, "surface-nixpkgs-kernel", |v| {
                v["kernel"]["source"] = json!("nixos-default");
                v["kernel"]["params"] = json!(["quiet"]);
            }),
            true,
            |h| {
                assert_eq!(h["kernelPackages"], "linux-default");
                assert_eq!(
                    h["kernelParams"],
                    json!(["quiet", "mem_sleep_default=deep"])
                );
            },
        ),
        (
            edited_host(d, HOSTS[0].0, "surface-latest", |v| {
                v["kernel"]["source"] = json!("nixos-latest");
                v["kernel"]["surfaceVersion"] = json!("stable");
            }),
            true,
            |h| {
                assert_eq!(h["kernelPackages"], "linux-latest");
                assert_eq!(h["surfaceKernel"], "stable");
            },
        ),
        (
            edited_host(d, HOSTS[1].0, "vm-zram", |v| {
                v["storage"]["swap"] = json!({"kind": "zram", "sizeMib": 4096});
                v["hardware"]["extraInitrdModules"] = json!(["nvme", "virtio_blk"]);
            }),
            false,
            |h| {
                assert_eq!(
                    h["zram"],
                    json!({"enable": true, "memoryMax": 4294967296u64})
                );
                assert_eq!(h["swapDevices"], json!([]));
                assert!(h["fileSystems"].get("/swap").is_none());
                let m = h["availableKernelModules"].as_array().unwrap();
                assert_eq!(m.iter().filter(|x| *x == "nvme").count(), 1);
                assert!(m.contains(&json!("virtio_blk")));
            },
        ),
    ];
    for (host, surface, check) in cases {
        let generated = d.join("hardware.nix");
        let st = Command::new(bifrost_bin())
            .args(["gen", "hardware"])
            .arg(&host)
            .arg("-o")
            .arg(&generated)
            .status()
            .unwrap();
        assert!(st.success());
        let from_module = env.eval_settings(&host, surface, "hardware").unwrap();
        let from_file = env
            .eval(
                &format!(
                    "{{ generated = import (/. + {}); surface = {surface}; }}",
                    nix_str(&generated)
                ),
                "hardware",
            )
            .unwrap();
        assert_eq!(from_module, from_file, "{}", host.display());
        check(&from_module);
        assert_eq!(
            env.eval_settings(&host, surface, "failedAssertions")
                .unwrap(),
            json!([]),
            "{}",
            host.display()
        );
    }
}

#[test]
fn effective_settings_json_is_what_rust_reads() {
    let Some(env) = env("effective_settings_json_is_what_rust_reads") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (host, surface) in HOSTS {
        let host = repo().join(host);
        let settings = env.eval_settings(&host, *surface, "settings").unwrap();
        let file = dir.path().join("effective.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&settings).unwrap()).unwrap();
        let out = Command::new(bifrost_bin())
            .arg("check")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bifrost check rejects the module's JSON for {}: {}",
            host.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let from_module = bifrost_core::spec::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let from_file = bifrost_core::spec::load_file(host.to_str().unwrap().into()).unwrap();
        assert_eq!(from_module, from_file, "{}", host.display());
    }
}

#[test]
fn assertions_fire_on_contradictions() {
    let Some(env) = env("assertions_fire_on_contradictions") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vm: Value =
        serde_json::from_slice(&std::fs::read(repo().join("hosts/example-vm/host.json")).unwrap())
            .unwrap();
    // Only what Nix alone knows: the settings' own rules are bifrost's
    // (system_build_runs_bifrost_check_on_the_settings).
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, bool, &str)] = &[
        (
            "no administrator: nixpkgs' own lockout guard",
            |v| v["users"][0]["admin"] = json!(false),
            true,
            "Neither the root account nor any wheel user",
        ),
        (
            "surface profile without nixos-hardware's module",
            |v| v["hardware"]["profile"] = json!("surface-pro-8"),
            false,
            "use bifrost's nixosModules.surface-pro-8",
        ),
    ];
    for (what, edit, check_catches, fix) in cases {
        let mut bad = vm.clone();
        edit(&mut bad);
        let file = dir.path().join("bad.json");
        std::fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
        let failed = env.eval_settings(&file, false, "failedAssertions").unwrap();
        let messages: Vec<&str> = failed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            messages.iter().any(|m| m.contains(fix)),
            "{what}: no assertion says {fix:?}; got {messages:?}"
        );
        let st = Command::new(bifrost_bin())
            .arg("check")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            !st.status.success(),
            *check_catches,
            "{what}: bifrost check: {}",
            String::from_utf8_lossy(&st.stdout)
        );
    }
    // A value of the wrong type fails evaluation with the option's name.
    let mut bad = vm.clone();
    bad["boot"]["timeout"] = json!("soon");
    let file = dir.path().join("badtype.json");
    std::fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let err = env.eval_settings(&file, false, "settings").unwrap_err();
    assert!(err.contains("bifrost.settings.boot.timeout"), "{err}");
}

/// `bifrost.package` for a real build: a package whose `bin/bifrost` runs
/// the binary under test. `seed` gives it, and so the check, a store path
/// of its own, so the check runs again instead of being found built.
fn package_under_test(seed: &str) -> String {
    let script = format!(
        "mkdir -p $out/bin; printf '#!/bin/sh\\nexec %s \"$@\"\\n' {} > $out/bin/bifrost; chmod +x $out/bin/bifrost",
        bifrost_bin().display()
    );
    format!(
        "derivation {{ name = \"bifrost-under-test\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; PATH = \"/usr/bin:/bin\"; seed = {seed:?}; args = [\"-e\" \"-c\" {script:?}]; }} // {{ meta.mainProgram = \"bifrost\"; }}"
    )
}

/// The rules the modules once repeated as assertions are bifrost's alone
/// now: the system build depends on a check that runs `bifrost check` on
/// the settings file the modules write, which builds for a valid host and
/// fails with bifrost's message (and no assertion of ours) for each rule.
#[test]
fn system_build_runs_bifrost_check_on_the_settings() {
    let test = "system_build_runs_bifrost_check_on_the_settings";
    let Some(env) = env(test) else {
        return;
    };
    if !cfg!(target_arch = "x86_64") {
        // The model's system is x86_64-linux; its builds run on the host.
        skip(test, "an x86_64 host (the model builds for x86_64-linux)");
        return;
    }
    let host = repo().join("hosts/example-vm/host.json");
    let settings = |file: &Path| format!("settings = lib.importJSON (/. + {});", nix_str(file));

    // One of the system's checks, and the toplevel depends on it.
    let checks = env.eval_settings(&host, false, "systemChecks").unwrap();
    assert_eq!(checks, json!(["bifrost-check-settings"]));
    let check = env.eval_settings(&host, false, "settingsCheck").unwrap();
    let passed = env.eval_settings(&host, false, "passedChecks").unwrap();
    assert!(
        passed.as_str().unwrap().contains(check.as_str().unwrap()),
        "{passed} lacks {check}"
    );

    let seed = format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    );
    let package = package_under_test(&seed);
    let args = |file: &Path| format!("{{ {} package = {package}; }}", settings(file));
    env.build(&args(&host), "settingsCheck")
        .expect("the example VM's settings pass the check");

    let dir = tempfile::tempdir().unwrap();
    let vm: Value = serde_json::from_slice(&std::fs::read(&host).unwrap()).unwrap();
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "a subvolume mounted twice",
            |v| v["storage"]["subvolumes"][2]["mountPoint"] = json!("/home"),
            "storage.subvolumes[2].mountPoint: \"/home\" is already the mount point of storage.subvolumes[1]",
        ),
        (
            "a subvolume listed twice",
            |v| v["storage"]["subvolumes"][2]["name"] = json!("@home"),
            "storage.subvolumes[2].name: \"@home\" is already the name of storage.subvolumes[1]",
        ),
        (
            "the Surface kernel on a generic machine",
            |v| v["kernel"]["source"] = json!("linux-surface"),
            "kernel.source: \"linux-surface\" is only for Surface devices",
        ),
        (
            "Secure Boot without keys",
            |v| v["security"]["secureBoot"] = json!({ "enable": true, "route": "own-keys" }),
            "security.secureBoot.keysPath: must be set when security.secureBoot.enable is true",
        ),
        (
            "the shim route without a shim or a Kinoite side",
            |v| v["security"]["secureBoot"] = json!({ "enable": true, "keysPath": "/etc/secureboot" }),
            "security.secureBoot.shim: must be set for the shim route",
        ),
        (
            "no administrator",
            |v| v["users"][0]["admin"] = json!(false),
            "users: no user is an administrator",
        ),
        (
            "a TPM method with no PCR",
            |v| v["storage"]["luks"]["unlock"] = json!({ "method": "tpm2", "tpm2Pcrs": [] }),
            "storage.luks.unlock.tpm2Pcrs: must name at least one PCR",
        ),
    ];
    for (what, edit, says) in cases {
        let mut bad = vm.clone();
        edit(&mut bad);
        let file = dir.path().join("bad.json");
        std::fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
        let failed = env.eval_settings(&file, false, "failedAssertions").unwrap();
        let ours: Vec<&Value> = failed
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m.as_str().unwrap().starts_with("bifrost.settings"))
            .collect();
        assert!(
            ours.is_empty(),
            "{what}: an assertion repeats the rule: {ours:?}"
        );
        let err = env
            .build(&args(&file), "settingsCheck")
            .expect_err(&format!("{what}: the check builds"));
        assert!(
            err.contains(says),
            "{what}: the build does not say {says:?}:\n{err}"
        );
        assert!(err.contains("bifrost.settings: fix"), "{what}: {err}");
    }
}

/// `bifrost schema` reduced to the shape module-eval.nix extracts from the options.
fn schema_shape(node: &Value, defs: &Value) -> Value {
    let node = resolve(node, defs);
    let mut nullable = false;
    let mut alts: Vec<Value> = Vec::new();
    for key in ["oneOf", "anyOf"] {
        if let Some(a) = node.get(key).and_then(Value::as_array) {
            alts.extend(a.iter().map(|x| resolve(x, defs).clone()));
        }
    }
    let mut shape = if !alts.is_empty() {
        let non_null: Vec<&Value> = alts
            .iter()
            .filter(|a| a.get("type") != Some(&json!("null")))
            .collect();
        nullable = non_null.len() < alts.len();
        if non_null.iter().all(|a| a.get("const").is_some()) {
            json!({"kind": "enum", "values": non_null.iter().map(|a| a["const"].clone()).collect::<Vec<_>>()})
        } else {
            assert_eq!(non_null.len(), 1, "unexpected schema alternative: {node}");
            schema_shape(non_null[0], defs)
        }
    } else {
        let ty = match &node["type"] {
            Value::Array(ts) => {
                nullable = ts.contains(&json!("null"));
                ts.iter().find(|t| *t != "null").unwrap().clone()
            }
            t => t.clone(),
        };
        match ty.as_str().unwrap_or_else(|| panic!("no type in {node}")) {
            "object" => {
                let required: Vec<&str> = node["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let fields: serde_json::Map<String, Value> = node["properties"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| {
                        let mut f = schema_shape(v, defs);
                        let optional = !required.contains(&k.as_str());
                        let default = match v.get("default") {
                            Some(Value::Object(_)) => Value::Null,
                            Some(d) => d.clone(),
                            // schemars leaves out a default that serde would
                            // skip serializing: an empty Vec.
                            None if optional && f["kind"] == "array" => json!([]),
                            None => Value::Null,
                        };
                        f["default"] = default;
                        f["required"] = json!(required.contains(&k.as_str()));
                        (k.clone(), f)
                    })
                    .collect();
                json!({"kind": "object", "fields": fields})
            }
            "array" => json!({"kind": "array", "items": schema_shape(&node["items"], defs)}),
            other => json!({ "kind": other }),
        }
    };
    if nullable {
        shape["nullable"] = json!(true);
    }
    shape
}

fn resolve<'a>(node: &'a Value, defs: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => &defs[r.trim_start_matches("#/$defs/")],
        None => node,
    }
}

/// Lists the paths where two shapes differ.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(&p, u, v, out),
                    (u, v) => out.push(format!("{p}: module {u:?} / schema {v:?}")),
                }
            }
        }
        _ if a != b => out.push(format!("{path}: module {a} / schema {b}")),
        _ => {}
    }
}

#[test]
fn module_options_match_the_schema() {
    let Some(env) = env("module_options_match_the_schema") else {
        return;
    };
    let module = env
        .eval_settings(
            &repo().join("hosts/example-vm/host.json"),
            false,
            "settingsShape",
        )
        .unwrap();
    let out = Command::new(bifrost_bin()).arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_schema = schema_shape(&schema, &schema["$defs"]);
    let mut diffs = Vec::new();
    diff("settings", &module, &from_schema, &mut diffs);
    assert!(
        diffs.is_empty(),
        "modules/settings.nix and `bifrost schema` differ:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn generated_hardware_modules_parse() {
    let Some(nix) = Tools::find().nix_instantiate else {
        return skip(
            "generated_hardware_modules_parse",
            "nix-instantiate (Debian package nix-bin)",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: Vec<PathBuf> = HOSTS.iter().map(|(h, _)| repo().join(h)).collect();
    for m in ["surface-pro-8", "generic-desktop", "qemu-vm", "kinoite"] {
        inputs.push(repo().join(format!("tests/fixtures/detect/{m}/expected.json")));
    }
    for input in inputs {
        let out = dir.path().join("hardware.nix");
        let st = Command::new(bifrost_bin())
            .args(["gen", "hardware"])
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success(), "{}", input.display());
        let parsed = bifrost_e2e::nixrun::output(Command::new(&nix).arg("--parse").arg(&out));
        assert!(
            parsed.status.success(),
            "{}: {}",
            input.display(),
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
}

#[test]
fn module_sets_the_nixos_options_of_each_concern() {
    let Some(env) = env("module_sets_the_nixos_options_of_each_concern") else {
        return;
    };
    let surface = env
        .eval_settings(&repo().join("hosts/surface-pro-8/host.json"), true, "nixos")
        .unwrap();
    assert_eq!(surface["hostName"], "surface-pro-8");
    for (k, v) in [
        ("firewall", true),
        ("nftables", true),
        ("auditd", true),
        ("audit", true),
        ("plasma6", true),
        ("sddm", true),
        ("flatpak", true),
        ("podman", true),
        ("direnv", true),
        ("nixDirenv", true),
        ("distributedBuilds", false),
    ] {
        assert_eq!(surface[k], json!(v), "{k}");
    }
    // bifrost itself, and what nixpkgs' modules add for what it turns on.
    let packages = surface["packages"].as_array().unwrap();
    for p in ["bifrost", "flatpak", "surface-control"] {
        assert!(packages.contains(&json!(p)), "{p} not in {packages:?}");
    }
    assert!(surface["hostJson"]
        .as_str()
        .unwrap()
        .ends_with("-bifrost-host.json"));

    // Caches and builders reach nix.settings / nix.buildMachines.
    let dir = tempfile::tempdir().unwrap();
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(repo().join("hosts/example-vm/host.json")).unwrap())
            .unwrap();
    v["nix"] = json!({
        "substituters": ["https://cache.example.org"],
        "trustedPublicKeys": ["cache.example.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="],
        "buildMachines": [{ "hostName": "builder.example.org", "sshUser": "nix", "maxJobs": 8 }]
    });
    let file = dir.path().join("host.json");
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let vm = env.eval_settings(&file, false, "nixos").unwrap();
    assert_eq!(vm["substituters"], json!(["https://cache.example.org"]));
    assert_eq!(vm["distributedBuilds"], json!(true));
    assert_eq!(vm["buildMachines"][0]["hostName"], "builder.example.org");
    assert_eq!(vm["buildMachines"][0]["sshUser"], "nix");
    assert_eq!(vm["buildMachines"][0]["systems"], json!(["x86_64-linux"]));
    assert_eq!(vm["plasma6"], json!(false));
    assert_eq!(vm["allowedTCPPorts"], json!([22]));

    // People become immutable accounts: wheel for administrators, the hash
    // file the installer writes, a private group with the uid as gid.
    let u = &surface["users"];
    assert_eq!(u["mutableUsers"], json!(false));
    assert_eq!(u["sudo"], json!(true));
    assert_eq!(u["sshd"], json!(false));
    let user = &u["users"]["user"];
    assert_eq!(user["isNormalUser"], json!(true));
    assert_eq!(user["uid"], json!(1000));
    assert_eq!(user["group"], "user");
    // The host mounts `@shared`: its people join the shared group.
    assert_eq!(
        user["extraGroups"],
        json!(["video", "audio", "wheel", "shared"])
    );
    assert_eq!(
        user["hashedPasswordFile"],
        format!("{}/user", bifrost_core::install::users::PASSWORD_DIR)
    );
    assert_eq!(u["groups"]["user"]["gid"], json!(1000));
    let alice = &vm["users"];
    assert_eq!(alice["sshd"], json!(true));
    assert_eq!(
        alice["users"]["alice"]["openssh"]["authorizedKeys"]["keys"][0]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("ssh-ed25519")
    );
}

#[test]
fn tpm_unlock_turns_on_the_systemd_initrd_with_the_passphrase_kept() {
    let Some(env) = env("tpm_unlock_turns_on_the_systemd_initrd_with_the_passphrase_kept") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = repo().join("hosts/example-vm/host.json");
    let mut vm: Value = serde_json::from_slice(&std::fs::read(&host).unwrap()).unwrap();
    let name = vm["storage"]["luks"]["name"]
        .as_str()
        .unwrap_or("cryptroot")
        .to_string();

    // Passphrase only (the default): the initrd stays as it was.
    let initrd = env.eval_settings(&host, false, "initrdSystemd").unwrap();
    assert_eq!(initrd["enable"], json!(false));
    let hw = env.eval_settings(&host, false, "hardware").unwrap();
    assert_eq!(hw["luks"][&name]["crypttabExtraOpts"], json!([]));

    vm["storage"]["luks"]["unlock"] = json!({"method": "tpm2"});
    let file = dir.path().join("tpm.json");
    std::fs::write(&file, serde_json::to_vec(&vm).unwrap()).unwrap();
    let initrd = env.eval_settings(&file, false, "initrdSystemd").unwrap();
    assert_eq!(initrd, json!({"enable": true, "tpm2": true}));
    let hw = env.eval_settings(&file, false, "hardware").unwrap();
    assert_eq!(
        hw["luks"][&name]["crypttabExtraOpts"],
        json!(["tpm2-device=auto"])
    );
    // The passphrase fallback is systemd's own: luksroot.nix's assertion holds.
    assert_eq!(hw["luks"][&name]["fallbackToPassword"], json!(false));
    assert_eq!(
        env.eval_settings(&file, false, "failedAssertions").unwrap(),
        json!([])
    );
    // PCR 7 without Secure Boot: a NixOS warning, as `bifrost check` warns.
    let warnings = env.eval_settings(&file, false, "warnings").unwrap();
    assert!(
        warnings.as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("security.secureBoot.enable is false")),
        "{warnings}"
    );
    let out = Command::new(bifrost_bin())
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("security.secureBoot.enable: warning:"));

    // The settings type refuses a PCR a TPM does not have.
    vm["storage"]["luks"]["unlock"] = json!({"method": "tpm2", "tpm2Pcrs": [24]});
    std::fs::write(&file, serde_json::to_vec(&vm).unwrap()).unwrap();
    let err = env.eval_settings(&file, false, "settings").unwrap_err();
    assert!(
        err.contains("bifrost.settings.storage.luks.unlock.tpm2Pcrs"),
        "{err}"
    );
}
