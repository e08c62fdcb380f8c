//! The document's shape, checked against the JSON Schema the types generate.
//!
//! serde stops at the first value it cannot read, and it would read a JSON
//! array where an object belongs (serde's derive accepts both for structs).
//! Checking the parsed JSON against the schema first reports every
//! structural problem at once and holds objects to being objects.

use super::Problem;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
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
    let mut problems = Vec::new();
    for err in validator().iter_errors(doc) {
        let at: Vec<Seg> = err
            .instance_path()
            .iter()
            .map(|s| match s {
                LocationSegment::Property(p) => Seg::Key(p.into_owned()),
                LocationSegment::Index(i) => Seg::Index(i),
            })
            .collect();
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    problems.push(Problem {
                        path: dotted(&at, Some(key)),
                        message: "unknown key; check its spelling (keys are camelCase, see `bifrost schema`) or remove it".into(),
                    });
                }
            }
            ValidationErrorKind::Required { property } => {
                let key = property
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| property.to_string());
                problems.push(Problem {
                    path: dotted(&at, Some(&key)),
                    message: "is required but missing; add it (see `bifrost schema`)".into(),
                });
            }
            ValidationErrorKind::Type { kind } => {
                let want = match kind {
                    TypeKind::Single(t) => article(&t.to_string()),
                    TypeKind::Multiple(ts) => ts
                        .iter()
                        .map(|t| article(&t.to_string()))
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                problems.push(Problem {
                    path: dotted(&at, None),
                    message: format!("must be {want}, got {}", describe(err.instance())),
                });
            }
            ValidationErrorKind::Enum { options } => {
                let opts = options
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(Value::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_else(|| options.to_string());
                let path = dotted(&at, None);
                let message = format!("must be one of {opts}, got {}", describe(err.instance()));
                problems.push(Problem {
                    message: super::hints::explained(&path, message),
                    path,
                });
            }
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => {
                // schemars writes documented enums as a oneOf of constants.
                let consts: Option<Vec<String>> = context
                    .iter()
                    .map(|branch| {
                        branch.iter().find_map(|e| match e.kind() {
                            ValidationErrorKind::Constant { expected_value } => {
                                Some(expected_value.to_string())
                            }
                            _ => None,
                        })
                    })
                    .collect();
                let message = match consts {
                    Some(c) if !c.is_empty() => {
                        format!(
                            "must be one of {}, got {}",
                            c.join(", "),
                            describe(err.instance())
                        )
                    }
                    _ => format!(
                        "has the wrong shape, got {}; see `bifrost schema`",
                        describe(err.instance())
                    ),
                };
                let path = dotted(&at, None);
                problems.push(Problem {
                    message: super::hints::explained(&path, message),
                    path,
                });
            }
            _ => problems.push(Problem {
                path: dotted(&at, None),
                message: err.to_string(),
            }),
        }
    }
    problems
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
