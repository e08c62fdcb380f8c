//! `bifrost tpm`: unlock the LUKS2 pool with the TPM, keeping the passphrase.

use bifrost_core::tpm::request::{self, EnrollRequest};
use bifrost_core::tpm::{self, RealMachine};
use camino::Utf8PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Enroll a TPM2 key slot into the LUKS2 pool, keeping the passphrase slot.
    ///
    /// Run it on the machine itself, after Secure Boot is on: the key is sealed
    /// to the current values of the PCRs (7 is the Secure Boot state), so the
    /// TPM releases it only to a boot in that state. The passphrase (asked on
    /// the terminal without echo, or --key-file) unlocks the container; it
    /// reaches systemd-cryptenroll as an inherited in-memory file
    /// (`--unlock-key-file=/proc/self/fd/N`, a memfd) and cryptsetup on
    /// standard input, never a command line, the environment or a file
    /// system. The TPM2 slot bifrost enrolled earlier on this system (recorded
    /// in /var/lib/bifrost/tpm-slots.json) is replaced, for re-enrollment
    /// after a firmware or key change; any other TPM2 slot, such as the one
    /// Kinoite enrolled, is kept and named. Refuses, changing nothing, when no TPM is
    /// present, when DEV is not LUKS2, when the passphrase is wrong, or when
    /// no passphrase or recovery-key slot would remain.
    Enroll(EnrollArgs),
    /// Show the key slots of a LUKS2 container and what each is bound to.
    Status(StatusArgs),
}

#[derive(clap::Args)]
pub struct EnrollArgs {
    /// The LUKS2 partition, such as /dev/disk/by-partlabel/pool.
    #[arg(long, value_name = "DEV")]
    device: Utf8PathBuf,
    /// PCRs to seal the key to, separated by ',' or '+'. Default:
    /// storage.luks.unlock.tpm2Pcrs of the host settings (--settings), or 7
    /// when there are none at /etc/bifrost/host.json.
    #[arg(long, value_name = "LIST")]
    pcrs: Option<String>,
    /// The host settings to take the PCRs (storage.luks.unlock.tpm2Pcrs) and
    /// the PIN (method "tpm2-pin") from when --pcrs is not given. Default:
    /// /etc/bifrost/host.json, which an installed system links.
    #[arg(long, value_name = "FILE")]
    settings: Option<Utf8PathBuf>,
    /// The TPM also asks for a PIN at boot. bifrost asks for the new PIN on
    /// the terminal (twice, no echo) and hands it to systemd-cryptenroll in
    /// its environment ($NEWPIN), never on a command line. Implied when
    /// --pcrs is not given and the host settings' storage.luks.unlock.method
    /// is "tpm2-pin".
    #[arg(long)]
    pin: bool,
    /// Read the new PIN from FILE instead (one trailing newline is dropped);
    /// implies --pin.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<Utf8PathBuf>,
    /// Also enroll a recovery key, printed once by systemd-cryptenroll: write
    /// it down, it opens the pool when the TPM refuses and the passphrase is lost.
    #[arg(long)]
    recovery_key: bool,
    /// Read the current passphrase from FILE (one trailing newline is dropped).
    #[arg(long, value_name = "FILE")]
    key_file: Option<Utf8PathBuf>,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The LUKS2 partition.
    #[arg(long, value_name = "DEV")]
    device: Utf8PathBuf,
    /// Print the status as JSON: {device, tpmDevices, slots: [{keyslot, kind, …}]}.
    #[arg(long)]
    json: bool,
}

pub fn run(c: Command) -> super::Outcome {
    match c {
        Command::Enroll(a) => {
            let req = EnrollRequest {
                device: a.device,
                pcrs: a.pcrs,
                settings: a.settings,
                pin: a.pin,
                pin_file: a.pin_file,
                recovery_key: a.recovery_key,
                key_file: a.key_file,
            };
            let done = request::enroll_as_asked(&mut RealMachine, &req, &mut |line| {
                eprintln!("bifrost: {line}")
            })?;
            print!("{}", done.status);
            for note in &done.notes {
                eprintln!("bifrost: note: {note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(a) => {
            let s = tpm::status(&mut RealMachine, &a.device)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{s}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
