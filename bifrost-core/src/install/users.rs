//! The people's passwords for the installed system.
//!
//! Each password is asked for twice without echo (or read from a file named
//! on the command line), hashed at once with SHA-512 crypt (crypt(5) `$6$`,
//! what `users.users.<name>.hashedPasswordFile` and `chpasswd -e` take) and
//! dropped: only the hash is kept, in wiped memory, and it reaches the target
//! as a root-only file under [`PASSWORD_DIR`] — never a command line, the
//! environment, a log, the plan, the state file or the Nix store.

use super::secret::{Secret, SecretError};
use crate::fsutil;
use crate::spec::Settings;
use camino::{Utf8Path, Utf8PathBuf};
use sha_crypt::{PasswordHasher, ShaCrypt};
use std::collections::BTreeMap;

/// Where the installed system keeps one hash file per user (the module's
/// `bifrost.users.passwordDir` default; a test keeps the two equal).
pub const PASSWORD_DIR: &str = "/var/lib/bifrost/passwords";

/// SHA-512 crypt rounds: 20 times libxcrypt's default of 5000, still well
/// under a second to check at login.
pub const ROUNDS: u32 = 100_000;

/// Errors of this module. None carries a password or a hash.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("password of {user}: {source}")]
    Secret {
        user: String,
        #[source]
        source: SecretError,
    },
    #[error("--password-file {arg:?}: write USER=FILE, such as alice=/root/alice.pw")]
    BadArg { arg: String },
    #[error("--password-file names {user:?}, who is not in the host's users ({known}); check the spelling")]
    UnknownUser { user: String, known: String },
    #[error("--password-file gives {user:?} twice; give each user once")]
    Twice { user: String },
    #[error("password of {user}: cannot hash it: {message}")]
    Hash { user: String, message: String },
    #[error("{path}: {message}")]
    Unsafe { path: String, message: String },
    #[error(transparent)]
    Write(#[from] fsutil::FsError),
}

/// Parse one `--password-file USER=FILE`.
pub fn parse_file_arg(arg: &str) -> Result<(String, Utf8PathBuf), UsersError> {
    match arg.split_once('=') {
        Some((u, f)) if !u.is_empty() && !f.is_empty() => Ok((u.to_string(), f.into())),
        _ => Err(UsersError::BadArg { arg: arg.into() }),
    }
}

/// The crypt(5) SHA-512 hash of `password` with a fresh random salt.
pub fn hash_password(user: &str, password: &Secret) -> Result<Secret, UsersError> {
    let err = |message: String| UsersError::Hash {
        user: user.into(),
        message,
    };
    let mut salt = [0u8; 12];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut salt))
            .map_err(|e| err(format!("no random salt from /dev/urandom: {e}")))?;
    }
    let params = sha_crypt::Params::new(ROUNDS).map_err(|e| err(e.to_string()))?;
    let hasher = ShaCrypt::from(params);
    let hash = hasher
        .hash_password_with_salt(password.expose(), &salt)
        .map_err(|e| err(e.to_string()))?;
    Ok(Secret::from_bytes(hash.as_str().as_bytes().to_vec()))
}

/// One hash per user of `settings` named in `wanted` (the users whose hash
/// is still to be written), in the settings' order: from the file `files`
/// names for that user, else from `prompt` (asked twice, no echo). Every
/// name in `files` must be a user of the host, wanted or not.
pub fn collect(
    settings: &Settings,
    files: &[(String, Utf8PathBuf)],
    wanted: &[String],
    prompt: &mut dyn FnMut(&str) -> Result<Secret, SecretError>,
) -> Result<BTreeMap<String, Secret>, UsersError> {
    let known: Vec<&str> = settings.users.iter().map(|u| u.name.as_str()).collect();
    for (i, (user, _)) in files.iter().enumerate() {
        if !known.contains(&user.as_str()) {
            return Err(UsersError::UnknownUser {
                user: user.clone(),
                known: known.join(", "),
            });
        }
        if files[..i].iter().any(|(u, _)| u == user) {
            return Err(UsersError::Twice { user: user.clone() });
        }
    }
    let mut out = BTreeMap::new();
    for u in settings.users.iter().filter(|u| wanted.contains(&u.name)) {
        let secret_err = |source| UsersError::Secret {
            user: u.name.clone(),
            source,
        };
        let password = match files.iter().find(|(n, _)| *n == u.name) {
            Some((_, f)) => Secret::from_key_file(f).map_err(secret_err)?,
            None => {
                let what = if u.admin {
                    format!("Password for {} (administrator)", u.name)
                } else {
                    format!("Password for {}", u.name)
                };
                prompt(&what).map_err(secret_err)?
            }
        };
        out.insert(u.name.clone(), hash_password(&u.name, &password)?);
    }
    Ok(out)
}

/// The hash file of `user` on a system mounted at `target`.
pub fn hash_path(target: &Utf8Path, user: &str) -> Utf8PathBuf {
    target.join(PASSWORD_DIR.trim_start_matches('/')).join(user)
}

/// Write `hash` to `path` (mode 0600, its folder 0700, both root's),
/// atomically. Refuses a symlink at the folder or the file: a link left
/// there would carry the hash out of the folder bifrost owns.
pub fn write_hash(path: &Utf8Path, hash: &Secret) -> Result<(), UsersError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().ok_or_else(|| UsersError::Unsafe {
        path: path.to_string(),
        message: "has no folder".into(),
    })?;
    let io = |op, p: &Utf8Path| {
        let f = fsutil::io_err(p.to_owned(), op);
        move |source| fsutil::FsError::Io(f(source))
    };
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(io("create folder", parent))?;
    }
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(UsersError::Unsafe {
                path: dir.to_string(),
                message: "is not a plain folder (a symlink?); remove it and run again".into(),
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(io("create folder", dir))?,
        Err(e) => return Err(io("inspect", dir)(e).into()),
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io("chmod 0700", dir))?;
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(UsersError::Unsafe {
            path: path.to_string(),
            message: "is not a plain file (a symlink?); remove it and run again".into(),
        });
    }
    let mut line = hash.expose().to_vec();
    line.push(b'\n');
    let line = Secret::from_bytes(line);
    fsutil::write_atomic_mode(path, line.expose(), 0o600)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha_crypt::PasswordVerifier;

    #[test]
    fn hash_is_sha512_crypt_and_verifies() {
        let pw = Secret::from_bytes(b"correct horse".to_vec());
        let h = hash_password("alice", &pw).unwrap();
        let text = std::str::from_utf8(h.expose()).unwrap();
        assert!(text.starts_with("$6$rounds=100000$"), "{text}");
        assert!(!text.contains("correct horse"));
        ShaCrypt::default()
            .verify_password(b"correct horse", text)
            .unwrap();
        assert!(ShaCrypt::default().verify_password(b"wrong", text).is_err());
        // A fresh salt each time.
        let again = hash_password("alice", &pw).unwrap();
        assert_ne!(again.expose(), h.expose());
    }

    #[test]
    fn hash_file_is_root_only_and_refuses_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let p = hash_path(&target, "alice");
        assert!(p.ends_with("var/lib/bifrost/passwords/alice"));
        write_hash(&p, &Secret::from_bytes(b"$6$x$y".to_vec())).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"$6$x$y\n");
        let mode = |p: &Utf8Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(p.parent().unwrap()), 0o700);
        // Rewriting is fine; a symlink in place of the file is refused.
        write_hash(&p, &Secret::from_bytes(b"$6$x$z".to_vec())).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/tmp/elsewhere", &p).unwrap();
        assert!(matches!(
            write_hash(&p, &Secret::from_bytes(b"h".to_vec())),
            Err(UsersError::Unsafe { .. })
        ));
    }

    #[test]
    fn file_args_and_unknown_users() {
        assert_eq!(
            parse_file_arg("alice=/root/a.pw").unwrap(),
            ("alice".to_string(), Utf8PathBuf::from("/root/a.pw"))
        );
        assert!(parse_file_arg("alice").is_err());
        assert!(parse_file_arg("=x").is_err());
        let s = crate::spec::from_slice(include_bytes!("../../../tests/data/install-host.json"))
            .unwrap();
        let all = ["alice".to_string(), "bob".to_string()];
        let e = collect(
            &s,
            &[("carol".into(), "/x".into())],
            &all,
            &mut |_| unreachable!(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("alice, bob"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = Utf8PathBuf::from_path_buf(dir.path().join("pw")).unwrap();
        std::fs::write(&f, "s3cret\n").unwrap();
        let mut asked = Vec::new();
        let hashes = collect(&s, &[("bob".into(), f.clone())], &all, &mut |what| {
            asked.push(what.to_string());
            Ok(Secret::from_bytes(b"typed".to_vec()))
        })
        .unwrap();
        assert_eq!(asked, ["Password for alice (administrator)"]);
        let bob = std::str::from_utf8(hashes["bob"].expose()).unwrap();
        ShaCrypt::default().verify_password(b"s3cret", bob).unwrap();
        let alice = std::str::from_utf8(hashes["alice"].expose()).unwrap();
        ShaCrypt::default()
            .verify_password(b"typed", alice)
            .unwrap();
        // Only the wanted users: a resumed install asks for none of the others.
        let only_bob = collect(&s, &[], &["bob".into()], &mut |what| {
            assert_eq!(what, "Password for bob");
            Ok(Secret::from_bytes(b"b".to_vec()))
        })
        .unwrap();
        assert_eq!(only_bob.keys().collect::<Vec<_>>(), ["bob"]);
        let none = collect(&s, &[("bob".into(), f)], &[], &mut |_| unreachable!()).unwrap();
        assert!(none.is_empty());
    }
}
