//! Host settings: types, loading, validation and JSON Schema.
//!
//! `load_file` is the one way every command reads a host file: it never
//! panics, and any problem comes back as a [`Problem`] carrying the JSON path
//! of the offending value and what would fix it.

mod types;
mod validate;

pub use types::*;
pub use validate::validate;

use camino::Utf8Path;
use serde::Serialize;

/// Host files are small; anything larger is refused before it is read whole.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One thing wrong with a host file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path of the value, such as `storage.subvolumes[2].mountPoint`
    /// (empty for the document itself).
    pub path: String,
    /// What is wrong and what would fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid host settings:\n{}", format_problems(.problems))]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse and validate host settings from bytes.
pub fn from_slice(bytes: &[u8]) -> Result<HostSettings, Vec<Problem>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let settings: HostSettings = match serde_path_to_error::deserialize(&mut de) {
        Ok(s) => s,
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            return Err(vec![Problem {
                path,
                message: e.into_inner().to_string(),
            }]);
        }
    };
    if let Err(e) = de.end() {
        return Err(vec![Problem {
            path: String::new(),
            message: format!("trailing data after the document: {e}"),
        }]);
    }
    let problems = validate(&settings);
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

/// Read, parse and validate a host file.
pub fn load_file(path: &Utf8Path) -> Result<HostSettings, SpecError> {
    let read_err = |source| SpecError::Read {
        path: path.to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(SpecError::Invalid {
            path: path.to_string(),
            problems: vec![Problem {
                path: String::new(),
                message: "is a directory; give the path of a host settings JSON file".into(),
            }],
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(SpecError::Invalid {
            path: path.to_string(),
            problems: vec![Problem {
                path: String::new(),
                message: format!(
                    "file is {} bytes; host settings are at most {MAX_FILE_BYTES} bytes",
                    meta.len()
                ),
            }],
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    from_slice(&bytes).map_err(|problems| SpecError::Invalid {
        path: path.to_string(),
        problems,
    })
}

/// The JSON Schema of the host settings document.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(HostSettings)).expect("schema serializes")
}
