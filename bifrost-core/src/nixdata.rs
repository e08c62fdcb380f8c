//! The data the NixOS modules read, rendered from the Rust definitions that
//! own it: the files under `modules/generated/`.
//!
//! Rust owns each fact once (the settings types in `spec::types`, the device
//! profiles in `hardware::profile`, the fixed storage facts (swap file, ESP
//! mount options) in `hardware::layout`); the modules read these files with
//! `lib.importJSON` instead of writing the facts again. The files are
//! committed so that a flake evaluation needs no Rust build. The test below
//! fails when one is stale and names the command that writes them again.

use crate::hardware::PROFILES;
use serde_json::Value;

/// The command that writes every generated file again.
pub const REGENERATE: &str = "BIFROST_REGENERATE=1 cargo test -p bifrost-core --lib nixdata";

/// One generated file: its path below the repository root and its contents.
pub struct Generated {
    pub path: &'static str,
    pub contents: String,
}

/// Device profiles, storage layout and ESP mount options (read by
/// `modules/hardware.nix` and `modules/storage.nix`).
pub fn facts() -> Value {
    let mut facts = serde_json::Map::new();
    facts.insert(
        "_comment".into(),
        format!("Generated from bifrost-core (nixdata.rs); do not edit. Regenerate: {REGENERATE}")
            .into(),
    );
    if let Value::Object(rest) = crate::hardware::layout::facts(PROFILES) {
        facts.extend(rest);
    }
    Value::Object(facts)
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON serializes");
    s.push('\n');
    s
}

/// Every file under `modules/generated/`.
pub fn files() -> Vec<Generated> {
    vec![
        Generated {
            path: "modules/generated/facts.json",
            contents: pretty(&facts()),
        },
        Generated {
            // The option tree of `bifrost.settings` (modules/settings.nix
            // turns this schema into options).
            path: "modules/generated/settings-schema.json",
            contents: pretty(&crate::spec::json_schema()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    fn repo() -> Utf8PathBuf {
        Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("bifrost-core sits in the workspace")
            .to_owned()
    }

    /// Fails when a generated file differs from what the Rust definitions
    /// say; `BIFROST_REGENERATE=1` writes them instead.
    #[test]
    fn generated_files_are_current() {
        let regenerate = std::env::var_os("BIFROST_REGENERATE").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for f in files() {
            let path = repo().join(f.path);
            if regenerate {
                std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
                crate::fsutil::write_atomic(&path, f.contents.as_bytes()).expect("write");
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk != f.contents {
                stale.push(f.path);
            }
        }
        assert!(
            stale.is_empty(),
            "stale generated files: {}\nThe Rust definitions (spec/types.rs, hardware/profile.rs, \
             hardware/layout.rs) changed; write them again with\n    {REGENERATE}\nand commit \
             the result. Never edit them by hand; on a merge conflict take either side and \
             regenerate.",
            stale.join(", ")
        );
    }

    /// The settings schema becomes the NixOS option tree: every value
    /// setting needs a description and an example there.
    #[test]
    fn every_setting_has_a_description_and_an_example() {
        fn walk(node: &Value, defs: &Value, path: &str, missing: &mut Vec<String>) {
            let node = match node.get("$ref").and_then(Value::as_str) {
                Some(r) => &defs[r.trim_start_matches("#/$defs/")],
                None => node,
            };
            let Some(props) = node.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (name, prop) in props {
                let p = format!("{path}.{name}");
                let target = match prop.get("$ref").and_then(Value::as_str) {
                    Some(r) => &defs[r.trim_start_matches("#/$defs/")],
                    None => prop,
                };
                let nested = prop
                    .get("anyOf")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|x| x.get("$ref").is_some()));
                if prop.get("description").is_none() {
                    missing.push(format!("{p}: no doc comment on the Rust field"));
                }
                if target.get("properties").is_some() {
                    walk(prop, defs, &p, missing);
                } else if let Some(inner) = nested {
                    walk(inner, defs, &p, missing);
                } else if prop.get("examples").is_none() {
                    missing.push(format!(
                        "{p}: add `#[schemars(example = …)]` to the Rust field"
                    ));
                }
                if let Some(items) = prop.get("items") {
                    walk(items, defs, &format!("{p}[]"), missing);
                }
            }
        }
        let schema = crate::spec::json_schema();
        let mut missing = Vec::new();
        walk(&schema, &schema["$defs"], "settings", &mut missing);
        assert!(
            missing.is_empty(),
            "settings without what their NixOS option shows (spec/types.rs):\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn facts_name_every_profile_by_its_settings_id() {
        let f = facts();
        assert_eq!(
            f["profiles"]["surface-pro-8"]["initrdForced"][0],
            "surface_aggregator"
        );
        assert_eq!(
            f["profiles"].as_object().map(serde_json::Map::len),
            Some(PROFILES.len())
        );
    }
}
