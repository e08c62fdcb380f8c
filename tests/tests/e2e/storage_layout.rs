//! The storage and hardware layout (`modules/lib/hardware-config.nix`, the
//! one place that says how host settings become fileSystems, the LUKS device,
//! swap, initrd modules and the kernel) evaluated by real Nix in CI, which
//! cannot fetch nixpkgs: the file `bifrost gen hardware` writes (settings,
//! facts and that function) is evaluated with `tests/nix/lib-subset.nix`,
//! nixpkgs' own definitions of the few `lib` functions it calls, and a `pkgs`
//! that has only the kernel sets it may name. What comes out is checked
//! against the settings bifrost loaded and the facts Rust owns
//! (`hardware::layout`). `module_eval::module_configures_what_gen_hardware_writes`
//! proves, against the real nixpkgs `lib` (optional here), that the NixOS
//! module configures the same.

use bifrost_core::hardware::{layout, PROFILES};
use bifrost_core::spec::{self, SwapKind};
use bifrost_e2e::{skip, Tools};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The module's value of `config` for `host` as `gen hardware` writes it,
/// evaluated with real Nix; the settings bifrost loaded from it.
fn evaluate(nix: &Path, dir: &Path, host: &Path) -> (Value, spec::Settings) {
    let settings = spec::load_file(host.try_into().unwrap()).expect("a valid host");
    let module = dir.join("hardware.nix");
    let (ok, _, err) = bifrost_e2e::fakenix::bifrost(&[
        "gen",
        "hardware",
        host.to_str().unwrap(),
        "-o",
        module.to_str().unwrap(),
    ]);
    assert!(ok, "gen hardware {}: {err}", host.display());
    let expr = format!(
        "(import {module} {{ lib = import {lib}; pkgs = {{ linuxPackages = \"linux-default\"; linuxPackages_latest = \"linux-latest\"; }}; }}).config",
        module = module.display(),
        lib = repo().join("tests/nix/lib-subset.nix").display(),
    );
    let value = bifrost_e2e::nixeval::json(bifrost_e2e::nixeval::eval(nix).args(["-E", &expr]));
    (value, settings)
}

/// A definition as the module system would take it when it is the only one:
/// `mkIf false` is no definition, `mkMerge` the merge of its active parts
/// (attribute sets deep-merged; a single value otherwise), `mkOverride`
/// its content (the priority is returned beside it by [`priority`]).
fn resolve(v: &Value) -> Option<Value> {
    match v.get("_type").and_then(Value::as_str) {
        Some("if") => {
            if v["condition"].as_bool().expect("a boolean condition") {
                resolve(&v["content"])
            } else {
                None
            }
        }
        Some("merge") => {
            let parts: Vec<Value> = v["contents"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(resolve)
                .collect();
            match parts.len() {
                0 => None,
                1 => parts.into_iter().next(),
                _ => {
                    assert!(
                        parts.iter().all(Value::is_object),
                        "two values for one option: {parts:?}"
                    );
                    Some(parts.into_iter().fold(json!({}), deep_merge))
                }
            }
        }
        Some("override") => resolve(&v["content"]),
        Some(other) => panic!("unexpected definition type {other}"),
        None => match v {
            Value::Object(m) => Some(Value::Object(
                m.iter()
                    .filter_map(|(k, v)| resolve(v).map(|v| (k.clone(), v)))
                    .collect::<Map<_, _>>(),
            )),
            _ => Some(v.clone()),
        },
    }
}

fn deep_merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let merged = match a.remove(&k) {
                    Some(old) => deep_merge(old, v),
                    None => v,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (a, b) => panic!("two definitions of one option: {a} and {b}"),
    }
}

/// The `mkOverride` priority of the active definition at `v`, if any.
fn priority(v: &Value) -> Option<u64> {
    match v.get("_type").and_then(Value::as_str) {
        Some("override") => v["priority"].as_u64(),
        Some("if") if v["condition"] == json!(true) => priority(&v["content"]),
        Some("merge") => v["contents"].as_array().unwrap().iter().find_map(priority),
        _ => None,
    }
}

/// What the layout must say for `s`, written from the settings and the Rust
/// facts independently of the Nix function.
fn expected_storage(s: &spec::Settings) -> Value {
    let pool = format!("/dev/mapper/{}", s.storage.luks.name);
    let btrfs = |name: &str, options: &[String]| {
        let mut o = vec![format!("subvol={name}")];
        o.extend(options.iter().cloned());
        json!({ "device": pool, "fsType": "btrfs", "options": o })
    };
    let mut fs = Map::new();
    for v in &s.storage.subvolumes {
        if let Some(mp) = &v.mount_point {
            fs.insert(mp.to_string(), btrfs(&v.name, &v.mount_options));
        }
    }
    fs.insert(
        s.boot.esp.mount_point.to_string(),
        json!({ "device": s.boot.esp.device, "fsType": s.boot.esp.fs_type, "options": layout::ESP_OPTIONS }),
    );
    let file = s.storage.swap.kind == SwapKind::File;
    if file && !fs.contains_key(layout::SWAP_MOUNT_POINT) {
        let opts: Vec<String> = layout::SWAP_MOUNT_OPTIONS
            .iter()
            .map(|o| o.to_string())
            .collect();
        fs.insert(
            layout::SWAP_MOUNT_POINT.into(),
            btrfs(layout::SWAP_SUBVOLUME, &opts),
        );
    }
    let mut storage = json!({
        "boot": { "initrd": { "luks": { "devices": { s.storage.luks.name.clone(): {
            "device": s.storage.luks.device, "allowDiscards": s.storage.luks.allow_discards,
        } } } } },
        "fileSystems": fs,
        "swapDevices": if file {
            json!([{ "device": layout::SWAP_FILE, "size": s.storage.swap.size_mib }])
        } else {
            json!([])
        },
    });
    if s.storage.swap.kind == SwapKind::Zram {
        storage["zramSwap"] = json!({
            "enable": true,
            "memoryMax": u64::from(s.storage.swap.size_mib) * 1024 * 1024,
        });
    }
    storage
}

/// A copy of `host` with `edit` applied, in `dir`.
fn edited(dir: &Path, host: &str, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join(host)).unwrap()).unwrap();
    edit(&mut v);
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    p
}

const SURFACE: &str = "hosts/surface-pro-8/host.json";
const VM: &str = "hosts/example-vm/host.json";

#[test]
fn gen_hardware_files_configure_the_layout_of_their_settings() {
    let test = "gen_hardware_files_configure_the_layout_of_their_settings";
    let Some(nix) = Tools::find().nix_instantiate else {
        return skip(test, "nix-instantiate (Debian package nix-bin)");
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = vec![
        repo().join(SURFACE),
        repo().join(VM),
        edited(d, VM, "zram", |v| {
            v["storage"]["swap"] = json!({ "kind": "zram", "sizeMib": 2048 })
        }),
        // A swap subvolume the host mounts itself gets no second entry.
        edited(d, VM, "own-swap", |v| {
            v["storage"]["subvolumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({
                    "name": "@myswap", "mountPoint": "/swap", "mountOptions": ["noatime"]
                }))
        }),
        edited(d, SURFACE, "no-swap", |v| {
            v["storage"]["swap"] = json!({ "kind": "none" });
            v["storage"]["luks"]["name"] = json!("pool0");
            v["storage"]["luks"]["allowDiscards"] = json!(false);
        }),
    ];
    let mut kinds = Vec::new();
    for host in &hosts {
        let case = tempfile::tempdir_in(d).unwrap();
        let (config, s) = evaluate(&nix, case.path(), host);
        let parts = config["contents"].as_array().expect("config is a mkMerge");
        let storage = resolve(&parts[1]).unwrap();
        let want = expected_storage(&s);
        assert_eq!(storage, want, "{}: the storage layout", host.display());
        kinds.push(s.storage.swap.kind);
    }
    // The cases cover every swap kind.
    for k in [SwapKind::File, SwapKind::Zram, SwapKind::None] {
        assert!(kinds.contains(&k), "no case with swap {k:?}");
    }
}

#[test]
fn gen_hardware_files_pick_the_kernel_and_drivers_of_their_profile() {
    let test = "gen_hardware_files_pick_the_kernel_and_drivers_of_their_profile";
    let Some(nix) = Tools::find().nix_instantiate else {
        return skip(test, "nix-instantiate (Debian package nix-bin)");
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let profile = |s: &spec::Settings| {
        PROFILES
            .iter()
            .find(|p| p.id == s.hardware.profile)
            .expect("a known profile")
    };

    // The Surface with linux-surface: nixos-hardware's kernel (no definition
    // of ours), its forced drivers, and the Surface part with the kernel
    // version and the S0ix parameter.
    let (config, s) = evaluate(&nix, d, &repo().join(SURFACE));
    let parts = config["contents"].as_array().unwrap();
    assert_eq!(parts.len(), 3, "the Surface part is applied on a Surface");
    let hw = resolve(&parts[0]).unwrap();
    assert_eq!(hw["boot"].get("kernelPackages"), None);
    assert_eq!(
        hw["boot"]["initrd"]["kernelModules"],
        json!(profile(&s).initrd_forced)
    );
    assert_eq!(
        parts[2],
        json!({
            "hardware": { "microsoft-surface": { "kernelVersion": "longterm" } },
            "boot": { "kernelParams": ["mem_sleep_default=deep"] },
        })
    );

    // A nixpkgs kernel on the Surface must beat nixos-hardware's normal-priority
    // kernel: mkForce (priority 50). The host's params stay beside S0ix's.
    let host = edited(d, SURFACE, "surface-nixpkgs", |v| {
        v["kernel"]["source"] = json!("nixos-default");
        v["kernel"]["params"] = json!(["quiet"]);
    });
    let case = tempfile::tempdir_in(d).unwrap();
    let (config, _) = evaluate(&nix, case.path(), &host);
    let parts = config["contents"].as_array().unwrap();
    let hw = resolve(&parts[0]).unwrap();
    assert_eq!(hw["boot"]["kernelPackages"], "linux-default");
    assert_eq!(priority(&parts[0]["boot"]["kernelPackages"]), Some(50));
    assert_eq!(hw["boot"]["kernelParams"], json!(["quiet"]));

    // The VM: no Surface part, latest kernel at normal priority, the
    // profile's drivers plus the host's extra ones, once each.
    let case = tempfile::tempdir_in(d).unwrap();
    let (config, s) = evaluate(&nix, case.path(), &repo().join(VM));
    let parts = config["contents"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "no Surface part off the Surface");
    let hw = resolve(&parts[0]).unwrap();
    assert_eq!(hw["boot"]["kernelPackages"], "linux-latest");
    assert_eq!(priority(&parts[0]["boot"]["kernelPackages"]), None);
    let mut drivers: Vec<String> = profile(&s)
        .initrd_available
        .iter()
        .map(|m| m.to_string())
        .collect();
    for m in &s.hardware.extra_initrd_modules {
        if !drivers.contains(m) {
            drivers.push(m.clone());
        }
    }
    assert_eq!(
        hw["boot"]["initrd"]["availableKernelModules"],
        json!(drivers)
    );
    assert_eq!(hw["boot"]["kernelParams"], json!(s.kernel.params));
}

/// The subset refuses what it does not define, so the layout cannot quietly
/// start to use a `lib` function nobody checked here.
#[test]
fn the_lib_subset_is_strict() {
    let test = "the_lib_subset_is_strict";
    let Some(nix) = Tools::find().nix_instantiate else {
        return skip(test, "nix-instantiate (Debian package nix-bin)");
    };
    let lib = repo().join("tests/nix/lib-subset.nix");
    let expr = format!("(import {}).mkDefault 1", lib.display());
    let err = bifrost_e2e::nixeval::try_json(bifrost_e2e::nixeval::eval(&nix).args(["-E", &expr]))
        .expect_err("mkDefault is not in the subset");
    assert!(err.contains("mkDefault"), "{err}");
}

/// The dotted paths of every leaf of `v` (`*` for the elements of a list of
/// attribute sets, each key once), as `poison` in the expression below takes them.
fn leaf_paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(k.clone());
                leaf_paths(x, at, out);
                at.pop();
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            at.push("*".into());
            let mut keys = Map::new();
            for item in items {
                if let Value::Object(m) = item {
                    for (k, x) in m {
                        keys.entry(k.clone()).or_insert_with(|| x.clone());
                    }
                }
            }
            leaf_paths(&Value::Object(keys), at, out);
            at.pop();
        }
        _ => {
            if !out.contains(at) {
                out.push(at.clone());
            }
        }
    }
}

/// The fields of `settings` that modules/lib/hardware-config.nix never
/// reads: each one in turn is made to throw, and the function's whole
/// result (every part, forced deeply) evaluated; a field whose throw goes
/// unnoticed is unread. `Err` with Nix's message when the function fails on
/// the settings as they are (a field it reads is missing).
fn unread_fields(nix: &Path, dir: &Path, settings: &Value) -> Result<Vec<String>, String> {
    let file = |name: &str, v: &Value| {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
        p
    };
    let mut paths = Vec::new();
    leaf_paths(settings, &mut Vec::new(), &mut paths);
    assert!(!paths.is_empty());
    let expr = format!(
        r#"let
  lib = import {lib};
  pkgs = {{ linuxPackages = "linux-default"; linuxPackages_latest = "linux-latest"; }};
  facts = builtins.fromJSON (builtins.readFile {facts});
  settings = builtins.fromJSON (builtins.readFile {settings});
  force = s: let l = import {function} {{ inherit lib pkgs facts; settings = s; }};
    in builtins.deepSeq [l.onSurface l.hardware l.storage l.surface] true;
  poison = path: v:
    if path == [] then throw "poisoned"
    else let k = builtins.head path; rest = builtins.tail path; in
      if k == "*" then map (poison rest) v
      else v // {{ ${{k}} = poison rest v.${{k}}; }};
  paths = builtins.fromJSON (builtins.readFile {paths});
in
  assert force settings;
  map (builtins.concatStringsSep ".")
    (builtins.filter (p: (builtins.tryEval (force (poison p settings))).success) paths)"#,
        lib = repo().join("tests/nix/lib-subset.nix").display(),
        facts = file("facts.json", &layout::facts(PROFILES)).display(),
        settings = file("settings.json", settings).display(),
        function = repo().join("modules/lib/hardware-config.nix").display(),
        paths = file("paths.json", &json!(paths)).display(),
    );
    let v = bifrost_e2e::nixeval::try_json(bifrost_e2e::nixeval::eval(nix).args(["-E", &expr]))?;
    Ok(serde_json::from_value(v).unwrap())
}

/// `bifrost gen hardware` writes the settings `layout::settings` picks
/// (render.rs), and those are exactly what the layout function reads: none
/// it reads is missing, none it never reads is written. Checked on hosts
/// covering each swap kind, both profiles and a kernel with parameters.
#[test]
fn gen_hardware_writes_exactly_the_settings_the_layout_reads() {
    let test = "gen_hardware_writes_exactly_the_settings_the_layout_reads";
    let Some(nix) = Tools::find().nix_instantiate else {
        return skip(test, "nix-instantiate (Debian package nix-bin)");
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = [
        repo().join(SURFACE),
        repo().join(VM),
        edited(d, VM, "zram", |v| {
            v["storage"]["swap"] = json!({ "kind": "zram", "sizeMib": 2048 });
            v["kernel"]["params"] = json!(["quiet"]);
            v["hardware"]["extraInitrdModules"] = json!(["virtio_blk"]);
        }),
        edited(d, SURFACE, "no-swap", |v| {
            v["storage"]["swap"] = json!({ "kind": "none" })
        }),
    ];
    for host in &hosts {
        let s = spec::load_file(host.as_path().try_into().unwrap()).unwrap();
        let written = layout::settings(&s);
        let case = tempfile::tempdir_in(d).unwrap();
        let unread = unread_fields(&nix, case.path(), &written).unwrap_or_else(|e| {
            panic!(
                "{}: a field the layout reads is missing: {e}",
                host.display()
            )
        });
        assert_eq!(
            unread,
            Vec::<String>::new(),
            "{}: written, never read",
            host.display()
        );
    }

    // The check sees both kinds of drift: a field too many, one missing.
    let s = spec::load_file(repo().join(VM).as_path().try_into().unwrap()).unwrap();
    let mut extra = layout::settings(&s);
    extra["storage"]["btrfsLabel"] = json!("pool");
    extra["storage"]["subvolumes"][0]["owner"] = json!("nixos");
    let case = tempfile::tempdir_in(d).unwrap();
    let mut unread = unread_fields(&nix, case.path(), &extra).unwrap();
    unread.sort();
    assert_eq!(unread, ["storage.btrfsLabel", "storage.subvolumes.*.owner"]);
    let mut missing = layout::settings(&s);
    missing["storage"]["luks"]
        .as_object_mut()
        .unwrap()
        .remove("allowDiscards");
    let case = tempfile::tempdir_in(d).unwrap();
    let err = unread_fields(&nix, case.path(), &missing).unwrap_err();
    assert!(err.contains("allowDiscards"), "{err}");
}

/// The header of a generated file names, for a profile that needs a
/// nixos-hardware module, the flake module that imports it
/// (`Profile::flake_module`); flake.nix (evaluated with stand-in inputs,
/// following imports through attribute sets and module functions, not into
/// bifrost's own files) must agree: that module imports it, `default` not.
#[test]
fn the_flake_module_named_for_a_profile_imports_its_nixos_hardware_module() {
    let test = "the_flake_module_named_for_a_profile_imports_its_nixos_hardware_module";
    let Some(nix) = Tools::find().nix_instantiate else {
        return skip(test, "nix-instantiate (Debian package nix-bin)");
    };
    let needing: Vec<_> = PROFILES
        .iter()
        .filter_map(|p| Some((p, p.nixos_hardware_module?, p.flake_module()?)))
        .collect();
    assert!(!needing.is_empty());
    let modules: Vec<&str> = needing.iter().map(|(_, m, _)| *m).collect();
    let expr = format!(
        r#"let
  lib = import {lib};
  nixos-hardware.nixosModules = builtins.listToAttrs (map (m: {{ name = m; value = {{ key = "nixos-hardware:" + m; }}; }}) (builtins.fromJSON ''{modules}''));
  flake = (import {flake}).outputs {{ self = {{}}; nixpkgs = {{ inherit lib; }}; inherit nixos-hardware; }};
  args = {{ config = {{}}; options = {{}}; pkgs = {{}}; inherit lib; }};
  walk = m:
    if builtins.isFunction m then walk (m args)
    else if builtins.isAttrs m then
      (if m ? key && builtins.substring 0 15 m.key == "nixos-hardware:" then [(builtins.substring 15 (-1) m.key)] else [])
      ++ builtins.concatMap walk (m.imports or [])
    else [];
in builtins.mapAttrs (_: walk) flake.nixosModules"#,
        lib = repo().join("tests/nix/lib-subset.nix").display(),
        flake = repo().join("flake.nix").display(),
        modules = json!(modules),
    );
    let imports = bifrost_e2e::nixeval::json(bifrost_e2e::nixeval::eval(&nix).args(["-E", &expr]));
    assert_eq!(imports["default"], json!([]), "{imports}");
    for (_, module, flake_module) in &needing {
        assert_eq!(imports[flake_module], json!([module]), "{imports}");
    }
    // What the Surface host's generated file says.
    let (profile, module, flake_module) = needing
        .iter()
        .find(|(p, ..)| p.id == spec::HardwareProfile::SurfacePro8)
        .expect("the Surface needs nixos-hardware");
    let file = bifrost_core::hardware::render_host_file(
        repo().join(SURFACE).as_path().try_into().unwrap(),
    )
    .unwrap();
    let line = format!(
        "# Needs nixos-hardware.nixosModules.{module} (bifrost's nixosModules.{flake_module} imports it)."
    );
    assert!(file.lines().any(|l| l == line), "{}: {file}", profile.name);
}
