//! The document's shape, checked against the JSON Schema the types generate.
//!
//! serde stops at the first value it cannot read, and it would read a JSON
//! array where an object belongs (serde's derive accepts both for structs).
//! Checking the parsed JSON against the schema first reports every
//! structural problem at once and holds objects to being objects.

use super::Problem;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::ValidationError;
use serde_json::Value;
use std::sync::OnceLock;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        jsonschema::validator_for(&super::json_schema())
            .expect("the generated schema is a valid JSON Schema")
    })
}

/// Every structural problem of `doc`; empty when it has the right shape.
pub(super) fn check(doc: &Value) -> Vec<Problem> {
    validator()
        .iter_errors(doc)
        .flat_map(|err| problems(&err))
        .collect()
}

/// The problems one validation error stands for, worded for a person.
fn problems(err: &ValidationError) -> Vec<Problem> {
    let at = location(err);
    let got = || describe(err.instance());
    let here = |message| {
        vec![Problem {
            path: dotted(&at, None),
            message,
        }]
    };
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unknown_keys(&at, unexpected),
        ValidationErrorKind::Required { property } => vec![missing(&at, property)],
        ValidationErrorKind::Type { kind } => {
            here(format!("must be {}, got {}", wanted_type(kind), got()))
        }
        ValidationErrorKind::Enum { options } => {
            vec![explained(
                &at,
                format!("must be one of {}, got {}", listed(options), got()),
            )]
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            vec![explained(&at, choice_message(constants(context), &got()))]
        }
        _ => here(err.to_string()),
    }
}

/// Where in the document an error is.
fn location(err: &ValidationError) -> Vec<Seg> {
    err.instance_path()
        .iter()
        .map(|s| match s {
            LocationSegment::Property(p) => Seg::Key(p.into_owned()),
            LocationSegment::Index(i) => Seg::Index(i),
        })
        .collect()
}

fn unknown_keys(at: &[Seg], unexpected: &[String]) -> Vec<Problem> {
    unexpected
        .iter()
        .map(|key| Problem {
            path: dotted(at, Some(key)),
            message: "unknown key; check its spelling (keys are camelCase, see `bifrost schema`) or remove it".into(),
        })
        .collect()
}

fn missing(at: &[Seg], property: &Value) -> Problem {
    let key = property
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| property.to_string());
    Problem {
        path: dotted(at, Some(&key)),
        message: "is required but missing; add it (see `bifrost schema`)".into(),
    }
}

/// A problem at `at` whose message gains the hint `hints` keeps for that path.
fn explained(at: &[Seg], message: String) -> Problem {
    let path = dotted(at, None);
    Problem {
        message: super::hints::explained(&path, message),
        path,
    }
}

/// `a string`, `an object or null`.
fn wanted_type(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => article(&t.to_string()),
        TypeKind::Multiple(ts) => ts
            .iter()
            .map(|t| article(&t.to_string()))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// An enum's options as JSON, comma-separated.
fn listed(options: &Value) -> String {
    options
        .as_array()
        .map(|a| {
            a.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| options.to_string())
}

/// The constant of each branch of a oneOf/anyOf, when every branch is one:
/// schemars writes documented enums as a oneOf of constants.
fn constants(context: &[Vec<ValidationError>]) -> Option<Vec<String>> {
    context
        .iter()
        .map(|branch| {
            branch.iter().find_map(|e| match e.kind() {
                ValidationErrorKind::Constant { expected_value } => {
                    Some(expected_value.to_string())
                }
                _ => None,
            })
        })
        .collect()
}

fn choice_message(constants: Option<Vec<String>>, got: &str) -> String {
    match constants {
        Some(c) if !c.is_empty() => format!("must be one of {}, got {got}", c.join(", ")),
        _ => format!("has the wrong shape, got {got}; see `bifrost schema`"),
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

/// `storage.subvolumes[2].mountPoint`; keys that are not identifiers are
/// written `["key"]` so the path stays unambiguous.
pub(super) fn dotted_path<'a>(segs: impl IntoIterator<Item = Result<&'a str, usize>>) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Ok(k) if is_ident(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Ok(k) => {
                out.push('[');
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(']');
            }
            Err(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn dotted(at: &[Seg], last: Option<&str>) -> String {
    dotted_path(
        at.iter()
            .map(|s| match s {
                Seg::Key(k) => Ok(k.as_str()),
                Seg::Index(i) => Err(*i),
            })
            .chain(last.map(Ok)),
    )
}

fn is_ident(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn article(t: &str) -> String {
    match t {
        "object" | "array" | "integer" => format!("an {t}"),
        "null" => "null".into(),
        t => format!("a {t}"),
    }
}

/// A short description of a JSON value for messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Object(_) => "an object".into(),
        Value::Array(_) => "an array".into(),
        v => {
            let s = v.to_string();
            if s.chars().count() > 60 {
                format!("{}…", s.chars().take(60).collect::<String>())
            } else {
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonschema::{JsonType, JsonTypeSet};
    use serde_json::json;

    fn at() -> Vec<Seg> {
        vec![Seg::Key("users".into()), Seg::Index(1)]
    }

    #[test]
    fn wanted_types_take_their_article() {
        assert_eq!(
            wanted_type(&TypeKind::Single(JsonType::Object)),
            "an object"
        );
        assert_eq!(wanted_type(&TypeKind::Single(JsonType::String)), "a string");
        let set = JsonTypeSet::empty()
            .insert(JsonType::Integer)
            .insert(JsonType::Null);
        // In the set's own order, as jsonschema keeps it.
        assert_eq!(wanted_type(&TypeKind::Multiple(set)), "null or an integer");
    }

    #[test]
    fn enum_options_are_listed_as_json() {
        assert_eq!(listed(&json!(["fast", 2, null])), r#""fast", 2, null"#);
        assert_eq!(listed(&json!("only")), r#""only""#);
    }

    #[test]
    fn a_choice_without_constants_is_a_wrong_shape() {
        let c = Some(vec![r#""a""#.to_string(), r#""b""#.to_string()]);
        assert_eq!(choice_message(c, "3"), r#"must be one of "a", "b", got 3"#);
        assert_eq!(
            choice_message(Some(vec![]), "an object"),
            "has the wrong shape, got an object; see `bifrost schema`"
        );
        assert!(choice_message(None, "1").starts_with("has the wrong shape"));
    }

    #[test]
    fn unknown_and_missing_keys_are_named_under_their_object() {
        let p = unknown_keys(&at(), &["nmae".into(), "a b".into()]);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["users[1].nmae", r#"users[1]["a b"]"#]);
        assert!(p[0].message.starts_with("unknown key"));
        assert_eq!(missing(&at(), &json!("name")).path, "users[1].name");
        assert_eq!(missing(&at(), &json!(7)).path, r#"users[1]["7"]"#);
    }
}
