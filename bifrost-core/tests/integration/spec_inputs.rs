//! The host-settings parser and validator on untrusted bytes: the JSON
//! Schema snapshot, the fuzz entry point over the malformed corpus and over
//! random and mutated inputs.

use bifrost_core::spec::{self, fuzz_one};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn seed_host() -> Vec<u8> {
    std::fs::read(repo().join("hosts/surface-pro-8/host.json")).unwrap()
}

/// Schema changes are format changes: they show up here for review.
#[test]
fn json_schema_snapshot() {
    insta::assert_json_snapshot!("host-settings-schema", spec::json_schema());
}

#[test]
fn the_schema_is_draft_2020_12_and_closed() {
    let schema = spec::json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if def["type"] == "object" {
            assert_eq!(
                def["additionalProperties"], false,
                "{name} accepts unknown keys"
            );
        }
    }
}

#[test]
fn the_seed_host_parses_and_round_trips() {
    let settings = spec::from_slice(&seed_host()).unwrap();
    assert_eq!(settings.host_name, "surface-pro-8");
    fuzz_one(&seed_host());
}

#[test]
fn every_problem_of_a_document_is_reported_at_once() {
    let mut doc: serde_json::Value = serde_json::from_slice(&seed_host()).unwrap();
    doc["hostName"] = "no_underscores".into();
    doc["boot"]["esp"]["fsType"] = "ext4".into();
    doc["storage"]["luks"]["argon2id"]["iterations"] = 1.into();
    doc["storage"]["subvolumes"][2]["mountPoint"] = "home".into();
    let problems = spec::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "hostName",
            "boot.esp.fsType",
            "storage.luks.argon2id.iterations",
            "storage.subvolumes[2].mountPoint"
        ]
    );
    assert_eq!(
        problems[3].to_string(),
        "storage.subvolumes[2].mountPoint: must be an absolute path, got \"home\"; did you mean \"/home\"?"
    );

    // Structural problems are all reported too, before any check of meaning.
    let mut doc: serde_json::Value = serde_json::from_slice(&seed_host()).unwrap();
    doc["hostName"] = 1.into();
    doc["boot"]["timeout"] = "5".into();
    doc["storage"]["subvolumes"][0]["owner"] = "root".into();
    doc["typo"] = true.into();
    let problems = spec::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
    let mut paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "boot.timeout",
            "hostName",
            "storage.subvolumes[0].owner",
            "typo"
        ]
    );
}

#[test]
fn defaults_fill_a_minimal_document() {
    let minimal = br#"{
        "hostName": "box",
        "hardware": { "profile": "generic-x86_64-uefi" },
        "storage": {
            "luks": { "device": "/dev/disk/by-partlabel/pool" },
            "subvolumes": [{ "name": "@", "mountPoint": "/" }]
        },
        "users": [{ "name": "alice", "admin": true }]
    }"#;
    let s = spec::from_slice(minimal).unwrap();
    assert_eq!(s.boot.esp.mount_point, "/boot/efi");
    assert_eq!(s.users[0].uid, 1000);
    assert_eq!(s.storage.luks.argon2id.memory_kib, 1_048_576);
    fuzz_one(minimal);
}

#[test]
fn the_malformed_corpus_goes_through_the_fuzz_entry() {
    let dir = repo().join("tests/fixtures/malformed");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                spec::from_slice(&bytes).is_err(),
                "{} was accepted",
                p.display()
            );
            fuzz_one(&bytes);
            n += 1;
        }
    }
    assert!(n >= 30);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_one(&bytes);
    }

    /// Mutations of a valid document reach deep into the validator.
    #[test]
    fn mutated_seed_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = seed_host();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        fuzz_one(&bytes);
    }

    /// Any string in any string field: accepted values round-trip, others
    /// come back as problems.
    #[test]
    fn arbitrary_strings_in_fields(s in "\\PC{0,12}|[\"\\\\\n\0 ,/.]{0,4}", field in 0usize..8) {
        let mut doc: serde_json::Value = serde_json::from_slice(&seed_host()).unwrap();
        let v = serde_json::Value::from(s);
        match field {
            0 => doc["hostName"] = v,
            1 => doc["kernel"]["params"] = serde_json::json!([v]),
            2 => doc["storage"]["subvolumes"][1]["mountPoint"] = v,
            3 => doc["storage"]["subvolumes"][1]["name"] = v,
            4 => doc["storage"]["subvolumes"][1]["mountOptions"] = serde_json::json!([v]),
            5 => doc["dualBoot"]["kinoite"]["title"] = v,
            6 => doc["boot"]["esp"]["mountPoint"] = v,
            _ => doc["storage"]["luks"]["name"] = v,
        }
        fuzz_one(&serde_json::to_vec(&doc).unwrap());
    }
}
