//! `nixexpr` against real Nix: what bifrost writes, Nix reads back
//! byte-identical. Cases are batched into one `nix-instantiate` call per
//! property, since starting Nix costs far more than evaluating a string.

use bifrost_core::nixexpr::{self, Value};
use bifrost_e2e::{skip, Tools};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How many values each property sends to Nix in its one batch.
const CASES: usize = 512;

fn nix_instantiate(test: &str) -> Option<PathBuf> {
    let tools = Tools::find();
    if tools.nix_instantiate.is_none() {
        skip(test, "nix-instantiate (Debian package nix-bin)");
    }
    tools.nix_instantiate
}

/// Evaluate `expr` strictly and return Nix's JSON of the result.
fn eval_json(nix: &std::path::Path, expr: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.nix");
    std::fs::write(&file, expr).unwrap();
    bifrost_e2e::nixeval::json(bifrost_e2e::nixeval::eval(nix).arg(&file))
}

/// Strings of everything that trips escaping: quotes, backslashes, `$` and
/// `{`, both quote styles' escapes, control characters and non-ASCII.
fn awkward_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("$".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("${".to_string()),
        Just("$${".to_string()),
        Just("''".to_string()),
        Just("'''".to_string()),
        Just("''$".to_string()),
        Just("''\\".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\r\n".to_string()),
        Just("\t".to_string()),
        Just("\u{1}".to_string()),
        Just("\u{7f}".to_string()),
        Just("ü✓🦀\u{200b}".to_string()),
        "[a-z ]{0,3}",
        "\\PC{0,3}",
        any::<char>()
            .prop_filter("no NUL", |c| *c != '\0')
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn sample<T: std::fmt::Debug>(strategy: impl Strategy<Value = T>, n: usize) -> Vec<T> {
    let mut runner = TestRunner::new(Config::default());
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn strings_round_trip_through_nix() {
    let Some(nix) = nix_instantiate("strings_round_trip_through_nix") else {
        return;
    };
    let mut strings = sample(awkward_string(), CASES);
    strings.extend(
        [
            "", "$", "${", "\\${", "$\\{", "a$", "''${x}", "\\", "\"\"", "\r\r\n\n",
        ]
        .map(String::from),
    );
    let expr = nixexpr::render(&Value::list(strings.iter().cloned().map(Value::Str))).unwrap();
    let got = eval_json(&nix, &expr);
    let got: Vec<String> = serde_json::from_value(got).unwrap();
    assert_eq!(got.len(), strings.len());
    for (want, got) in strings.iter().zip(&got) {
        assert_eq!(got, want, "rendered as {}", nixexpr::string(want).unwrap());
    }
}

#[test]
fn attribute_sets_with_awkward_keys_round_trip_through_nix() {
    let Some(nix) = nix_instantiate("attribute_sets_with_awkward_keys_round_trip_through_nix")
    else {
        return;
    };
    let key = prop_oneof![
        awkward_string(),
        "[a-zA-Z_][a-zA-Z0-9_'-]{0,6}",
        prop::sample::select(vec![
            "if",
            "then",
            "else",
            "assert",
            "with",
            "let",
            "in",
            "rec",
            "inherit",
            "or",
            "__curPos",
            "true",
            "false",
            "null",
            "",
            "1",
            "-",
            "a.b",
            "__functor",
        ])
        .prop_map(String::from),
    ];
    let sets = sample(
        prop::collection::btree_map(key, awkward_string(), 0..6),
        CASES / 4,
    );
    let value = Value::list(sets.iter().map(|m| {
        Value::Attrs(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::str(v.clone())))
                .collect(),
        )
    }));
    let got = eval_json(&nix, &nixexpr::render(&value).unwrap());
    let got: Vec<BTreeMap<String, String>> = serde_json::from_value(got).unwrap();
    assert_eq!(got, sets);
}

/// A nested JSON value: objects, lists, strings, integers, booleans, null.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        awkward_string().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(awkward_string(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn nested_values_round_trip_through_nix() {
    let Some(nix) = nix_instantiate("nested_values_round_trip_through_nix") else {
        return;
    };
    let values = sample(json_value(), CASES / 4);
    let mut extra = vec![serde_json::json!([
        i64::MIN,
        -1,
        0,
        i64::MAX,
        [-5],
        [[]],
        {}
    ])];
    extra.push(serde_json::json!({"a": {"b": [{"c": null}]}}));
    let all: Vec<serde_json::Value> = values.into_iter().chain(extra).collect();
    let nix_values: Vec<Value> = all.iter().map(|v| Value::from_json(v).unwrap()).collect();
    let got = eval_json(&nix, &nixexpr::render(&Value::List(nix_values)).unwrap());
    assert_eq!(got, serde_json::Value::Array(all));
}

#[test]
fn paths_evaluate_to_the_same_path() {
    let Some(nix) = nix_instantiate("paths_evaluate_to_the_same_path") else {
        return;
    };
    let segment = prop_oneof![
        "[a-zA-Z0-9._+-]{1,8}".prop_filter("not . or ..", |s| s != "." && s != ".."),
        awkward_string().prop_filter("a usable segment", |s| {
            !s.is_empty() && !s.contains('/') && s != "." && s != ".."
        }),
    ];
    let mut paths: Vec<String> = sample(prop::collection::vec(segment, 0..5), CASES / 2)
        .into_iter()
        .map(|segs| format!("/{}", segs.join("/")))
        .collect();
    paths.extend(["/", "/boot/efi", "/mnt/@images/a_nixos_host", "/a b/${x}"].map(String::from));
    // `toString` keeps a path a path without copying it into the store.
    let list = nixexpr::render(&Value::list(paths.iter().cloned().map(Value::Path))).unwrap();
    let expr =
        format!("let paths = {list}; in map (p: assert builtins.isPath p; toString p) paths\n");
    let got: Vec<String> = serde_json::from_value(eval_json(&nix, &expr)).unwrap();
    assert_eq!(got, paths);
}

#[test]
fn unrepresentable_values_are_errors_not_panics() {
    assert!(nixexpr::string("a\0b").is_err());
    assert!(nixexpr::render(&Value::attrs([("a\0", Value::Null)])).is_err());
    assert!(nixexpr::render(&Value::Path("relative".into())).is_err());
    assert!(nixexpr::render(&Value::Path("/a/../b".into())).is_err());
}
