//! `bifrost sb`: Secure Boot keys, verification and enrollment.

use bifrost_core::sb;
use camino::Utf8PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a signing key and certificate (RSA 2048, SHA-256) for shim's MOK list.
    ///
    /// Writes NAME.key (PEM, mode 0600), NAME.crt (PEM) and NAME.cer (DER, what
    /// `mokutil --import` and MokManager take). With --firmware also PK, KEK and db
    /// (.key/.crt/.cer, the signature list .esl and the signed update .auth) for firmware
    /// that lets its owner enroll keys. Refuses when any of these files exists.
    ///
    /// With --from DIR, copies the user's NAME.key and NAME.crt (and NAME.cer and, with
    /// --firmware, the PK/KEK/db files that DIR has) instead of creating keys. The folder
    /// is made mode 0700, private keys 0600.
    Keys(KeysArgs),
    /// Check that every EFI binary rEFInd may load is signed by a certificate.
    ///
    /// Lists rEFInd (and shim's second stage), its drivers and every kernel refind.conf
    /// loads from the ESP, with whether each carries a valid signature by CERT and, for
    /// rEFInd, a .sbat section (shim refuses one without). Exits with status 1 when one fails.
    Verify(VerifyArgs),
    /// Queue a certificate for shim's MOK list (as `mokutil --import` does).
    ///
    /// mokutil asks for a one-time password; at the next boot shim's MokManager asks to
    /// confirm the enrollment with it. Needs root and a system booted through shim.
    EnrollMok(EnrollMokArgs),
    /// Enroll your own db, KEK and PK into firmware in setup mode.
    ///
    /// Writes signed updates of db, then KEK, then PK (which ends setup mode) through
    /// efivarfs. Refuses, writing nothing, when the firmware is not in setup mode.
    Enroll(EnrollArgs),
}

#[derive(clap::Args)]
pub struct EnrollMokArgs {
    /// Certificate to enroll (PEM or DER), such as `bifrost sb keys`' mok.cer.
    #[arg(long, value_name = "FILE")]
    cert: Utf8PathBuf,
}

#[derive(clap::Args)]
pub struct EnrollArgs {
    /// Folder made by `bifrost sb keys --firmware` (PK, KEK and db keys and lists).
    #[arg(long, value_name = "DIR")]
    keys: Utf8PathBuf,
    /// Keep the Microsoft certificates the firmware's db and KEK hold, so other systems'
    /// shims (Fedora's) and option ROMs still start.
    #[arg(long)]
    microsoft: bool,
    /// efivarfs mount point.
    #[arg(long, value_name = "DIR", default_value = bifrost_core::esp::nvram::EFIVARS)]
    efivars: Utf8PathBuf,
}

#[derive(clap::Args)]
pub struct KeysArgs {
    /// Folder for the keys (created if missing; keep it off the ESP and out of the Nix store).
    #[arg(long, value_name = "DIR")]
    dir: Utf8PathBuf,
    /// File name stem of the signing key.
    #[arg(long, value_name = "NAME", default_value = sb::keys::DEFAULT_NAME)]
    name: String,
    /// Common name written into the certificates.
    #[arg(long, value_name = "CN", default_value = sb::keys::DEFAULT_COMMON_NAME)]
    common_name: String,
    /// Also create PK, KEK and db for `bifrost sb enroll` (firmware in setup mode).
    #[arg(long)]
    firmware: bool,
    /// Copy the keys from this folder instead of creating new ones.
    #[arg(long, value_name = "DIR")]
    from: Option<Utf8PathBuf>,
    /// Keep a complete set already in --dir (the same files as --from's, or any complete
    /// set without --from) instead of refusing; anything else there is still refused.
    #[arg(long)]
    keep_existing: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Mount point of the EFI system partition.
    #[arg(long, value_name = "DIR")]
    esp: Utf8PathBuf,
    /// PEM certificate the binaries must be signed by.
    #[arg(long, value_name = "FILE")]
    cert: Utf8PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(c: Command) -> super::Outcome {
    match c {
        Command::Keys(a) => {
            let o = sb::keys::KeysOptions {
                dir: a.dir,
                name: a.name,
                common_name: a.common_name,
                firmware: a.firmware,
            };
            let made = sb::keys::make(&o, a.from.as_deref(), a.keep_existing)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&made)?);
            } else {
                print!("{made}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(a) => {
            let v = sb::verify::verify(&a.esp, &a.cert)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{v}");
            }
            Ok(if v.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::EnrollMok(a) => {
            sb::enroll::enroll_mok(&a.cert)?;
            print!("{}", sb::text::mok_queued(&a.cert));
            Ok(ExitCode::SUCCESS)
        }
        Command::Enroll(a) => {
            let o = sb::enroll::EnrollOptions {
                keys: a.keys,
                microsoft: a.microsoft,
                efivars: a.efivars,
            };
            print!("{}", sb::enroll::enroll(&o)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
