//! The LUKS passphrase: read from the terminal (no echo) or a key file, kept
//! only in memory, wiped on drop, never formatted.
//!
//! It reaches cryptsetup on standard input (`--key-file -`), so it is never
//! on a command line (`/proc/*/cmdline`), in the environment, in a log, in
//! the state file or in the Nix store.

use camino::Utf8Path;
use zeroize::Zeroizing;

/// A passphrase. `Debug` prints `<redacted>`; there is no `Display`.
pub struct Secret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Errors of this module. None of them carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: cannot read the key file: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the key file is empty")]
    EmptyKeyFile { path: String },
    #[error("cannot read the passphrase from the terminal: {0}; use --key-file FILE when there is no terminal")]
    Terminal(#[source] std::io::Error),
    #[error("the passphrase is empty")]
    Empty,
    #[error("the two passphrases differ; nothing was changed, run again")]
    Mismatch,
}

impl Secret {
    /// A secret from bytes (tests, key files).
    pub fn from_bytes(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// The bytes, for the one place that hands them to cryptsetup's stdin.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Read a key file. One trailing newline is dropped so that
    /// `echo passphrase > file` gives the passphrase typed at boot; the rest
    /// is taken byte for byte.
    pub fn from_key_file(path: &Utf8Path) -> Result<Secret, SecretError> {
        use std::io::Read;
        let err = |source| SecretError::KeyFile {
            path: path.to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len() as usize;
        // Sized up front so the buffer never grows and leaves copies behind.
        let mut bytes = Zeroizing::new(Vec::with_capacity(len + 1));
        file.read_to_end(&mut bytes).map_err(err)?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(SecretError::EmptyKeyFile {
                path: path.to_string(),
            });
        }
        Ok(Secret(bytes))
    }

    /// Ask on the terminal without echo. With `confirm`, ask twice (a new
    /// passphrase for a fresh container).
    pub fn prompt(what: &str, confirm: bool) -> Result<Secret, SecretError> {
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("{what}: ")).map_err(SecretError::Terminal)?,
        );
        if first.is_empty() {
            return Err(SecretError::Empty);
        }
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password(format!("{what} (again): "))
                    .map_err(SecretError::Terminal)?,
            );
            if *again != *first {
                return Err(SecretError::Mismatch);
            }
        }
        Ok(Secret(Zeroizing::new(first.as_bytes().to_vec())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_drops_one_newline_and_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = camino::Utf8PathBuf::from_path_buf(dir.path().join("k")).unwrap();
        std::fs::write(&p, b"hunter2 x\n").unwrap();
        let s = Secret::from_key_file(&p).unwrap();
        assert_eq!(s.expose(), b"hunter2 x");
        assert!(!format!("{s:?}").contains("hunter2"));
        std::fs::write(&p, b"\n").unwrap();
        assert!(matches!(
            Secret::from_key_file(&p),
            Err(SecretError::EmptyKeyFile { .. })
        ));
    }
}
