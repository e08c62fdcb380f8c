//! Host settings: types, loading, validation and JSON Schema.
//!
//! `load_file` is the one way every command reads a host file: it never
//! panics, and any problem comes back as a [`Problem`] carrying the JSON path
//! of the offending value and what would fix it. What it returns is a
//! [`Settings`], the validated form every other module of the core requires.

pub mod check;
mod hints;
mod settings;
mod structure;
mod types;
mod unlock;
mod validate;
mod volume;

pub use settings::{validated, Settings};
pub use types::*;
pub use unlock::{MAX_PCR, SECURE_BOOT_PCR};
pub use validate::{
    validate, ARGON2_MAX_MEMORY_KIB, ARGON2_MAX_PARALLELISM, ARGON2_MIN_ITERATIONS,
    ARGON2_MIN_MEMORY_KIB, ARGON2_MIN_PARALLELISM, ESP_MIN_SIZE_MIB, KINOITE_BOOT_FS_TYPES,
    USER_UIDS,
};
pub use volume::BootVolume;

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
    #[error(transparent)]
    Io(#[from] crate::fsutil::IoError),
    #[error("{path}: invalid host settings:\n{}", format_problems(.problems))]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

/// `problems`, one indented line each.
pub fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse and validate host settings from bytes.
///
/// Structural problems (JSON syntax, wrong types, unknown or missing keys)
/// stop at the first one, with its path: the typed parser cannot continue
/// past a value it does not understand. Once the document has its shape,
/// [`validate`] reports every problem of meaning at once.
pub fn from_slice(bytes: &[u8]) -> Result<Settings, Vec<Problem>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![Problem {
            path: String::new(),
            message: "the file is empty; write a JSON object (see `bifrost schema`, or start from hosts/surface-pro-8/host.json)".into(),
        }]);
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(vec![Problem {
            path: String::new(),
            message: "the file starts with a UTF-8 byte-order mark (bytes EF BB BF), which JSON and Nix's builtins.fromJSON refuse; save it as UTF-8 without BOM".into(),
        }]);
    }
    let doc: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![Problem {
                path: String::new(),
                message: format!("invalid JSON: {e}"),
            }])
        }
    };
    let problems = structure::check(&doc);
    if !problems.is_empty() {
        return Err(problems);
    }
    // The schema cannot say everything (integer ranges, repeated keys, which
    // the parsed value silently collapsed): serde, reading the bytes again,
    // has the last word on the shape.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let settings: HostSettings = match serde_path_to_error::deserialize(&mut de) {
        Ok(s) => s,
        Err(e) => return Err(vec![structural_problem(e)]),
    };
    validated(settings)
}

/// A serde error as a problem whose path points at the offending key.
fn structural_problem(e: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let path = e.path().to_string();
    let mut path = if path == "." { String::new() } else { path };
    let inner = e.into_inner();
    let mut message = inner.to_string();
    // serde names a missing key in the message and the enclosing object in
    // the path; point the path at the key itself.
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((field, tail)) = rest.split_once('`') {
            path = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            message = format!("is required but missing{tail}; add it (see `bifrost schema`)");
        }
    } else if let Some(rest) = message.strip_prefix("duplicate field `") {
        if let Some((field, tail)) = rest.split_once('`') {
            path = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            message = format!("appears more than once{tail}; keep one");
        }
    } else if inner.is_syntax() || inner.is_eof() {
        message = format!("invalid JSON: {message}");
    } else if message.starts_with("unknown field") {
        message = format!("{message}; check the spelling (keys are camelCase)");
    }
    Problem { path, message }
}

fn too_big(path: &Utf8Path, size: &str) -> SpecError {
    SpecError::Invalid {
        path: path.to_string(),
        problems: vec![Problem {
            path: String::new(),
            message: format!(
                "file is {size} bytes; host settings are at most {MAX_FILE_BYTES} bytes, so this is not a host file"
            ),
        }],
    }
}

/// All of `reader`, refusing more than `MAX_FILE_BYTES`.
fn read_capped(reader: impl std::io::Read, path: &Utf8Path) -> Result<Vec<u8>, SpecError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(crate::fsutil::io_err(path, "read"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(path, &format!("more than {MAX_FILE_BYTES}")));
    }
    Ok(bytes)
}

/// The bytes of a host file; `-` is standard input (for editors checking an
/// unsaved buffer).
fn read_limited(path: &Utf8Path) -> Result<Vec<u8>, SpecError> {
    if path.as_str() == "-" {
        return read_capped(std::io::stdin().lock(), path);
    }
    let read_err = |e| crate::fsutil::io_err(path, "read")(e);
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
    // Opening a FIFO blocks until a writer comes (a device is read up to
    // the cap below).
    let ft = meta.file_type();
    if std::os::unix::fs::FileTypeExt::is_fifo(&ft)
        || std::os::unix::fs::FileTypeExt::is_socket(&ft)
    {
        return Err(SpecError::Invalid {
            path: path.to_string(),
            problems: vec![Problem {
                path: String::new(),
                message: format!(
                    "is {}, not a file; give the path of a host settings JSON file, or `-` to read standard input",
                    crate::esp::bootjson::kind(&meta)
                ),
            }],
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(path, &meta.len().to_string()));
    }
    // The size check above cannot see devices, pipes or a growing file.
    read_capped(std::fs::File::open(path).map_err(read_err)?, path)
}

/// Read, parse and validate a host file (`-` reads standard input).
pub fn load_file(path: &Utf8Path) -> Result<Settings, SpecError> {
    let bytes = read_limited(path)?;
    from_slice(&bytes).map_err(|problems| SpecError::Invalid {
        path: path.to_string(),
        problems,
    })
}

/// Settings that are valid but do not give the protection they seem to
/// (such as a TPM key bound to PCR 7 without Secure Boot). They never stop
/// a command; `bifrost check` prints them as warnings.
pub fn warnings(settings: &Settings) -> Vec<Problem> {
    unlock::warnings(settings)
}

/// How much a [`FileProblem`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// The file works, but a setting does not do what it seems to.
    Warning,
}

/// One problem of one file, as `bifrost check --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    pub file: String,
    /// JSON path inside the file; empty for the file as a whole.
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        if self.path.is_empty() {
            write!(f, "{}: {tag}{}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {tag}{}", self.file, self.path, self.message)
        }
    }
}

/// Every problem of `path`, unreadable files included, then the warnings
/// of a valid file; empty when valid and nothing to warn about.
pub fn check_file(path: &Utf8Path) -> Vec<FileProblem> {
    let file = path.to_string();
    let entry = |p: Problem, severity| FileProblem {
        file: file.clone(),
        path: p.path,
        message: p.message,
        severity,
    };
    match load_file(path) {
        Ok(settings) => warnings(&settings)
            .into_iter()
            .map(|p| entry(p, Severity::Warning))
            .collect(),
        Err(SpecError::Invalid { problems, .. }) => problems
            .into_iter()
            .map(|p| entry(p, Severity::Error))
            .collect(),
        Err(SpecError::Io(crate::fsutil::IoError { source, .. })) => {
            let hint = match source.kind() {
                std::io::ErrorKind::NotFound => "; check the file name",
                std::io::ErrorKind::PermissionDenied => "; check its permissions",
                _ => "",
            };
            vec![FileProblem {
                file,
                path: String::new(),
                message: format!("cannot read: {source}{hint}"),
                severity: Severity::Error,
            }]
        }
    }
}

/// Parse and validate untrusted bytes, checking the promises every caller
/// relies on: no panic, every problem says something, and a document that
/// passes survives a round trip. Shared by the fuzz target and the tests.
pub fn fuzz_one(bytes: &[u8]) {
    match from_slice(bytes) {
        Ok(settings) => {
            let again = serde_json::to_vec(&settings).expect("valid settings serialize");
            let back = from_slice(&again).expect("serialized settings parse and validate again");
            assert_eq!(back, settings, "round trip changed the settings");
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "an error with no problem");
            for p in problems {
                assert!(
                    !p.message.is_empty(),
                    "a problem with no message at {:?}",
                    p.path
                );
            }
        }
    }
}

/// The JSON Schema of the host settings document.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(HostSettings)).expect("schema serializes")
}
