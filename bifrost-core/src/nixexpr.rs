//! Nix values written as Nix source, with correct escaping.
//!
//! Every generator of Nix goes through [`Value`] and [`render`]; no Nix is
//! ever built by concatenating unescaped strings. Output is deterministic
//! (attribute sets are sorted by key) and laid out the way alejandra formats
//! it, so generated files diff cleanly.
//!
//! Choices:
//! - Strings are always double-quoted (`"…"`): `"`, `\` and `${` are escaped,
//!   newline, carriage return and tab become `\n`, `\r`, `\t` (Nix turns a
//!   raw CR into LF), everything else — non-ASCII included — is written as is.
//!   NUL cannot be held by a Nix string and is an error.
//! - Paths must be absolute and normalized. One made only of the characters
//!   a Nix path literal allows (`a-z A-Z 0-9 . _ - +`) is written as a literal
//!   (`/boot/efi`); `/` is written `/.`; any other path is written
//!   `/. + "/the path"`, which Nix evaluates to the same path value.
//!   A relative or unnormalized path is an error rather than a guess: Nix
//!   would resolve it against the generated file's folder, or normalize it.
//! - Attribute names are written bare when they are identifiers and not
//!   keywords, otherwise quoted like strings.
//! - Inside lists, negative integers, `/. + "…"` paths and [`Value::Expr`]
//!   are parenthesized so each stays one element.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A Nix value to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// An absolute path (see the module docs for how it is written).
    Path(String),
    List(Vec<Value>),
    /// Attribute set; keys are quoted when they are not plain identifiers.
    Attrs(BTreeMap<String, Value>),
    /// A trusted Nix expression written by bifrost itself (never user input),
    /// such as `pkgs.linuxPackages_latest`. Rendered verbatim.
    Expr(String),
}

/// Errors of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NixExprError {
    #[error("Nix strings cannot hold a NUL byte")]
    Nul,
    #[error("{0:?} is not an absolute path; give a path that starts with '/'")]
    RelativePath(String),
    #[error("{0:?} is not a normalized path (no '.', '..', '//' or trailing '/')")]
    UnnormalizedPath(String),
    #[error("JSON number {0} is not an integer; Nix values from bifrost hold integers only")]
    NotAnInteger(String),
}

/// Render `s` as a double-quoted Nix string literal.
pub fn string(s: &str) -> Result<String, NixExprError> {
    let mut out = String::with_capacity(s.len() + 2);
    push_string(&mut out, s)?;
    Ok(out)
}

fn push_string(out: &mut String, s: &str) -> Result<(), NixExprError> {
    if s.contains('\0') {
        return Err(NixExprError::Nul);
    }
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

/// Nix keywords (and the `__curPos` token), which cannot be bare attribute names.
const KEYWORDS: &[&str] = &[
    "assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with", "__curPos",
];

/// Whether `key` can be written as a bare attribute name.
pub fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-')
        && !KEYWORDS.contains(&key)
}

/// Render an attribute name: bare when it is an identifier, quoted otherwise.
pub fn attr_name(key: &str) -> Result<String, NixExprError> {
    if is_identifier(key) {
        Ok(key.to_string())
    } else {
        string(key)
    }
}

/// Render an absolute path (see the module docs).
pub fn path(p: &str) -> Result<String, NixExprError> {
    if p.contains('\0') {
        return Err(NixExprError::Nul);
    }
    if !p.starts_with('/') {
        return Err(NixExprError::RelativePath(p.to_string()));
    }
    if p == "/" {
        return Ok("/.".into());
    }
    let parts: Vec<&str> = p[1..].split('/').collect();
    if parts
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(NixExprError::UnnormalizedPath(p.to_string()));
    }
    let literal = p
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    if literal {
        Ok(p.to_string())
    } else {
        Ok(format!("/. + {}", string(p)?))
    }
}

/// Lists of scalars no longer than this stay on one line.
const INLINE_WIDTH: usize = 60;

/// Render `value` as a Nix expression (no trailing newline).
pub fn render(value: &Value) -> Result<String, NixExprError> {
    let mut out = String::new();
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Render `value` as the whole content of a `.nix` file, with a header
/// comment saying which tool wrote it.
pub fn render_file(value: &Value, generated_by: &str) -> Result<String, NixExprError> {
    let mut out = String::new();
    for line in generated_by.lines() {
        let _ = writeln!(out, "# {line}");
    }
    write_value(&mut out, value, 0)?;
    out.push('\n');
    Ok(out)
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::List(_) | Value::Attrs(_) | Value::Expr(_))
}

/// Whether `value` is written as an operator expression, which a list
/// element must parenthesize (`[ -1 ]` does not even parse).
fn needs_parens(value: &Value) -> bool {
    match value {
        Value::Int(i) => *i < 0,
        Value::Path(p) => path(p).is_ok_and(|r| r.starts_with("/. +")),
        Value::Expr(_) => true,
        _ => false,
    }
}

fn write_element(out: &mut String, value: &Value, level: usize) -> Result<(), NixExprError> {
    if needs_parens(value) {
        out.push('(');
        write_value(out, value, level)?;
        out.push(')');
        Ok(())
    } else {
        write_value(out, value, level)
    }
}

fn write_value(out: &mut String, value: &Value, level: usize) -> Result<(), NixExprError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // i64::MIN has no literal: 9223372036854775808 overflows Nix's lexer.
        Value::Int(i64::MIN) => out.push_str("-9223372036854775807 - 1"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Str(s) => push_string(out, s)?,
        Value::Path(p) => out.push_str(&path(p)?),
        Value::Expr(e) => out.push_str(e),
        Value::List(items) if items.is_empty() => out.push_str("[]"),
        Value::List(items) => {
            if items.iter().all(is_scalar) {
                let mut one_line = String::from("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        one_line.push(' ');
                    }
                    write_element(&mut one_line, item, 0)?;
                }
                one_line.push(']');
                if one_line.len() <= INLINE_WIDTH && !one_line.contains('\n') {
                    out.push_str(&one_line);
                    return Ok(());
                }
            }
            out.push_str("[\n");
            for item in items {
                indent(out, level + 1);
                write_element(out, item, level + 1)?;
                out.push('\n');
            }
            indent(out, level);
            out.push(']');
        }
        Value::Attrs(attrs) if attrs.is_empty() => out.push_str("{}"),
        Value::Attrs(attrs) => {
            out.push_str("{\n");
            for (k, v) in attrs {
                indent(out, level + 1);
                out.push_str(&attr_name(k)?);
                out.push_str(" = ");
                write_value(out, v, level + 1)?;
                out.push_str(";\n");
            }
            indent(out, level);
            out.push('}');
        }
    }
    Ok(())
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A path value.
    pub fn path(p: impl Into<String>) -> Value {
        Value::Path(p.into())
    }

    /// An attribute set from `(key, value)` pairs; a repeated key keeps the last value.
    pub fn attrs<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Attrs(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(items.into_iter().collect())
    }

    /// The Nix value of a JSON value (objects become attribute sets).
    pub fn from_json(json: &serde_json::Value) -> Result<Value, NixExprError> {
        Ok(match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => return Err(NixExprError::NotAnInteger(n.to_string())),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => {
                Value::List(a.iter().map(Value::from_json).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(o) => Value::Attrs(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Render this value (see [`render`]).
    pub fn render(&self) -> Result<String, NixExprError> {
        render(self)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i.into())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_nix_interprets() {
        assert_eq!(string("plain").unwrap(), r#""plain""#);
        assert_eq!(string(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert_eq!(string("${x} $y $").unwrap(), r#""\${x} $y $""#);
        assert_eq!(string("$${x}").unwrap(), r#""$\${x}""#);
        assert_eq!(string("a\nb\rc\td").unwrap(), r#""a\nb\rc\td""#);
        assert_eq!(string("''${x}").unwrap(), r#""''\${x}""#);
        assert_eq!(string("ü ✓ 🦀").unwrap(), "\"ü ✓ 🦀\"");
        assert_eq!(string("a\0b"), Err(NixExprError::Nul));
    }

    #[test]
    fn attribute_names() {
        for (k, want) in [
            ("plain", "plain"),
            ("with-dash", "with-dash"),
            ("it's", "it's"),
            ("_x1", "_x1"),
            ("true", "true"),
            ("", r#""""#),
            ("if", r#""if""#),
            ("or", r#""or""#),
            ("__curPos", r#""__curPos""#),
            ("1st", r#""1st""#),
            ("a.b", r#""a.b""#),
            ("-x", r#""-x""#),
            ("${x}", r#""\${x}""#),
            ("ü", r#""ü""#),
        ] {
            assert_eq!(attr_name(k).unwrap(), want, "{k:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(path("/").unwrap(), "/.");
        assert_eq!(path("/boot/efi").unwrap(), "/boot/efi");
        assert_eq!(path("/a+b/c_d-e.f").unwrap(), "/a+b/c_d-e.f");
        assert_eq!(path("/mnt/@images").unwrap(), r#"/. + "/mnt/@images""#);
        assert_eq!(path("/a b/${x}").unwrap(), r#"/. + "/a b/\${x}""#);
        assert_eq!(
            path("rel/a"),
            Err(NixExprError::RelativePath("rel/a".into()))
        );
        for bad in ["/a/", "/a//b", "/a/./b", "/a/../b"] {
            assert_eq!(path(bad), Err(NixExprError::UnnormalizedPath(bad.into())));
        }
        assert_eq!(path("/a\0"), Err(NixExprError::Nul));
    }

    #[test]
    fn errors_surface_from_deep_inside() {
        let v = Value::attrs([("a", Value::list([Value::attrs([("b", Value::str("x\0"))])]))]);
        assert_eq!(render(&v), Err(NixExprError::Nul));
        let v = Value::list([Value::path("relative")]);
        assert!(matches!(render(&v), Err(NixExprError::RelativePath(_))));
        assert!(Value::from_json(&serde_json::json!({"a": [1.5]})).is_err());
    }

    #[test]
    fn snapshot_nested_document() {
        let v = Value::attrs([
            (
                "networking",
                Value::attrs([("hostName", Value::str("surface-pro-8"))]),
            ),
            (
                "boot",
                Value::attrs([
                    (
                        "kernelParams",
                        Value::from(vec!["quiet", "mem_sleep_default=deep"]),
                    ),
                    (
                        "loader",
                        Value::attrs([(
                            "efi",
                            Value::attrs([("efiSysMountPoint", Value::path("/boot/efi"))]),
                        )]),
                    ),
                    (
                        "kernelPackages",
                        Value::Expr("pkgs.linuxPackages_latest".into()),
                    ),
                    (
                        "initrd",
                        Value::attrs([("availableKernelModules", Value::list([]))]),
                    ),
                ]),
            ),
            (
                "fileSystems",
                Value::attrs([(
                    "/home",
                    Value::attrs([
                        ("device", Value::str("/dev/mapper/cryptroot")),
                        ("fsType", Value::str("btrfs")),
                        (
                            "options",
                            Value::from(vec![
                                "subvol=@home",
                                "compress=zstd",
                                "noatime",
                                "x-systemd.device-timeout=0",
                            ]),
                        ),
                    ]),
                )]),
            ),
            (
                "weird keys",
                Value::attrs([
                    ("if", Value::Null),
                    ("", Value::Int(-3)),
                    ("${x}", Value::Bool(false)),
                ]),
            ),
            (
                "numbers",
                Value::list([
                    Value::Int(0),
                    Value::Int(-1),
                    Value::Int(i64::MAX),
                    Value::Int(i64::MIN),
                ]),
            ),
            (
                "paths",
                Value::list([
                    Value::path("/"),
                    Value::path("/nix/store"),
                    Value::path("/mnt/@images/a b"),
                ]),
            ),
            (
                "nested",
                Value::list([
                    Value::list([Value::str("a")]),
                    Value::attrs([("k", Value::str("v"))]),
                    Value::attrs::<String>([]),
                ]),
            ),
            (
                "text",
                Value::str("line one\nline \"two\" ${not} interpolated\\\n"),
            ),
        ]);
        insta::assert_snapshot!(render_file(&v, "Generated by bifrost; do not edit.").unwrap());
    }

    #[test]
    fn output_is_deterministic() {
        let a = Value::attrs([("b", Value::Int(1)), ("a", Value::Int(2))]);
        let b = Value::attrs([("a", Value::Int(2)), ("b", Value::Int(1))]);
        assert_eq!(render(&a).unwrap(), render(&b).unwrap());
        assert_eq!(render(&a).unwrap(), "{\n  a = 2;\n  b = 1;\n}");
    }
}
