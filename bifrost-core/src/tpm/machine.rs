//! [`RealMachine`]: the TPM enrollment's only contact with the machine.

use super::{header::HEADER_PREFIX, Machine, TPMRM_CLASS};
use crate::install::secret::{Secret, SecretError};
use camino::Utf8Path;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};

/// The real machine: the device's first bytes, sysfs, cryptsetup and
/// systemd-cryptenroll.
pub struct RealMachine;

/// A pipe whose ends are closed on exec (the read end is handed to the child).
/// An anonymous memory file (memfd, mode 0600, in no file system) holding
/// `secret`, inherited by the next child process under its own number.
///
/// systemd-cryptenroll reads `--unlock-key-file` with a seek (a pipe fails
/// with "Illegal seek"), and refuses nothing but warns about a readable
/// mode; a memfd reopened through `/proc/self/fd/N` is neither.
fn memfd_with(secret: &Secret) -> std::io::Result<std::fs::File> {
    // SAFETY: the name is a NUL-terminated literal; the flags ask for nothing
    // beyond an ordinary descriptor (inherited on exec on purpose).
    let fd = unsafe { libc::memfd_create(c"bifrost-unlock-key".as_ptr(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(secret.expose())?;
    Ok(file)
}

fn exit_detail(status: std::process::ExitStatus, stderr: &[u8]) -> String {
    let msg = String::from_utf8_lossy(stderr);
    let msg = msg.trim();
    let code = match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "was killed by a signal".into(),
    };
    if msg.is_empty() {
        format!("{code} (its messages are above)")
    } else {
        format!("{code}: {msg}")
    }
}

impl Machine for RealMachine {
    fn header_prefix(&mut self, device: &Utf8Path) -> std::io::Result<Vec<u8>> {
        let meta = std::fs::metadata(device)?;
        use std::os::unix::fs::FileTypeExt;
        if !(meta.file_type().is_block_device() || meta.is_file()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a block device",
            ));
        }
        let mut buf = Vec::with_capacity(HEADER_PREFIX);
        std::fs::File::open(device)?
            .take(HEADER_PREFIX as u64)
            .read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn tpm_devices(&mut self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(TPMRM_CLASS)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn luks_json(&mut self, device: &Utf8Path) -> Result<String, String> {
        let out = crate::process::Cmd::new(
            "cryptsetup",
            ["luksDump", "--dump-json-metadata", device.as_str()],
        )
        .output()
        .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(exit_detail(out.status, &out.stderr));
        }
        String::from_utf8(out.stdout).map_err(|_| "cryptsetup printed invalid UTF-8".into())
    }

    fn passphrase_opens(&mut self, device: &Utf8Path, secret: &Secret) -> Result<bool, String> {
        let out = crate::process::Cmd::new(
            "cryptsetup",
            // Token plugins would try the TPM first and print its refusals.
            [
                "open",
                "--test-passphrase",
                "--disable-external-tokens",
                "--key-file",
                "-",
                device.as_str(),
            ],
        )
        .secret_stdin(secret)
        .output()
        .map_err(|e| e.to_string())?;
        match out.status.code() {
            Some(0) => Ok(true),
            // cryptsetup(8), RETURN CODES: 2 is "no permission (bad passphrase)".
            Some(2) => Ok(false),
            _ => Err(exit_detail(out.status, &out.stderr)),
        }
    }

    fn cryptenroll(
        &mut self,
        args: &[String],
        secret: &Secret,
        new_pin: Option<&Secret>,
    ) -> Result<(), String> {
        let key =
            memfd_with(secret).map_err(|e| format!("could not hold the key in memory: {e}"))?;
        // The memfd is inherited by the child under its own number.
        let unlock = format!("--unlock-key-file=/proc/self/fd/{}", key.as_raw_fd());
        let cmd = crate::process::Cmd::new(
            "systemd-cryptenroll",
            std::iter::once(unlock.as_str()).chain(args.iter().map(String::as_str)),
        )
        .interactive();
        // An inherited $NEWPIN would silently become the PIN of a slot the
        // user asked none for (or another than the one given).
        let cmd = match new_pin {
            Some(pin) => {
                let pin = std::str::from_utf8(pin.expose())
                    .map_err(|_| "the new PIN is not valid UTF-8".to_string())?;
                cmd.env("NEWPIN", pin)
            }
            None => cmd.env_remove("NEWPIN"),
        };
        let status = cmd.output().map_err(|e| e.to_string())?.status;
        drop(key);
        if status.success() {
            Ok(())
        } else {
            Err(exit_detail(status, b""))
        }
    }

    fn ask_new_pin(&mut self) -> Result<Secret, SecretError> {
        Secret::prompt("New TPM2 PIN", true)
    }

    fn stdin_is_terminal(&mut self) -> bool {
        std::io::stdin().is_terminal()
    }

    fn record_path(&self) -> camino::Utf8PathBuf {
        super::record::RECORD_PATH.into()
    }
}
