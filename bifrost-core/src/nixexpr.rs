//! Nix values written as Nix source, with correct escaping.
//!
//! Every generator of Nix goes through [`Value`]; no Nix is ever built by
//! concatenating unescaped strings.

use std::collections::BTreeMap;

/// A Nix value to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// An absolute path literal.
    Path(String),
    List(Vec<Value>),
    /// Attribute set; keys are quoted when they are not plain identifiers.
    Attrs(BTreeMap<String, Value>),
    /// A trusted Nix expression written by bifrost itself (never user input),
    /// such as `pkgs.linuxPackages_latest`.
    Expr(String),
}

/// Errors of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NixExprError {
    #[error("Nix strings cannot hold a NUL byte")]
    Nul,
}

/// Render `s` as a double-quoted Nix string literal.
pub fn string(s: &str) -> Result<String, NixExprError> {
    if s.contains('\0') {
        return Err(NixExprError::Nul);
    }
    let mut out = String::with_capacity(s.len() + 2);
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
    Ok(out)
}
