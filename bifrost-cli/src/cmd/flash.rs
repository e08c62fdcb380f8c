use bifrost_core::deploy::blockdev::{self, human_size, Target};
use bifrost_core::deploy::flash::{self, Phase, Progress};
use camino::{Utf8Path, Utf8PathBuf};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Shown by `--help` after the options (the one-line summary lives in main.rs).
const LONG_HELP: &str = r#"Write IMAGE to DEVICE (a USB stick, or a file), then read it back to verify.

Only the image's data is written (holes are found with SEEK_DATA/SEEK_HOLE);
on a device, holes are zeroed with BLKZEROOUT, so the device ends up
byte-identical to the image. A regular file as DEVICE becomes a sparse,
byte-identical copy.

Refused: a device that is mounted (or its partitions, or LUKS/LVM on them),
that holds the running system (/, /boot, the Nix store, swap), that is
smaller than the image, or that is not removable (unless --allow-fixed).
Without --yes, bifrost shows the device's model, size and partitions and
asks you to type its name. Ctrl-C stops cleanly; the device is then
incomplete.

IMAGE must be a regular, non-empty file: a folder, a pipe or a device as
IMAGE is refused before DEVICE is opened (swapped arguments lose nothing).
Copy a whole device with --image-is-device."#;

#[derive(clap::Args)]
#[command(after_long_help = LONG_HELP)]
pub struct Args {
    /// The image to write (raw disk image or ISO).
    image: Utf8PathBuf,
    /// Whole-disk block device (such as /dev/sdb), or a file.
    device: Utf8PathBuf,
    /// Do not ask for confirmation (for scripts).
    #[arg(long)]
    yes: bool,
    /// Skip reading the device back to compare with the image.
    #[arg(long)]
    no_verify: bool,
    /// Allow a disk that is neither removable nor attached by USB.
    #[arg(long)]
    allow_fixed: bool,
    /// IMAGE is a block device on purpose (copy a whole device onto DEVICE).
    /// Without it a device as IMAGE is refused: usually the arguments are swapped.
    #[arg(long)]
    image_is_device: bool,
}

pub fn run(args: Args) -> ExitCode {
    match flash_cmd(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e.as_ref()),
    }
}

fn flash_cmd(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let root = Utf8Path::new("/");
    let size = flash::image_size(&args.image, args.image_is_device)?;
    let target = blockdev::inspect(&args.device, root)?;
    blockdev::check(&target, size, args.allow_fixed, root)?;
    if let Target::Disk(disk) = &target {
        if !args.yes {
            confirm(disk)?;
        }
    }
    let cancel = flash::interrupt_flag()?;
    let mut shown = Shown::new();
    let report = flash::flash(
        &args.image,
        &target,
        flash::Options {
            verify: !args.no_verify,
            image_is_device: args.image_is_device,
        },
        &cancel,
        &mut |p| shown.update(p),
    );
    shown.finish();
    let report = report?;
    let rate = |bytes: u64, secs: f64| human_size((bytes as f64 / secs.max(1e-9)) as u64);
    eprintln!(
        "wrote {} of data ({} zeroed) to {} in {:.1}s ({}/s)",
        human_size(report.written),
        human_size(report.zeroed),
        args.device,
        report.write_secs,
        rate(report.written, report.write_secs)
    );
    if report.verified {
        eprintln!(
            "verified: {} reads back identical to {} ({:.1}s)",
            args.device, args.image, report.verify_secs
        );
    } else {
        eprintln!("not verified (--no-verify)");
    }
    Ok(())
}

/// Why the user's confirmation was not obtained.
#[derive(Debug)]
enum ConfirmError {
    NotATerminal,
    Declined(String),
}

impl std::fmt::Display for ConfirmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfirmError::NotATerminal => write!(
                f,
                "standard input is not a terminal, so bifrost cannot ask before overwriting the device; pass --yes to confirm"
            ),
            ConfirmError::Declined(name) => {
                write!(f, "the answer was not {name:?}; nothing was written")
            }
        }
    }
}

impl std::error::Error for ConfirmError {}

fn confirm(disk: &blockdev::Disk) -> Result<(), ConfirmError> {
    if !std::io::stdin().is_terminal() {
        return Err(ConfirmError::NotATerminal);
    }
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "About to OVERWRITE {} ({}): {}, {}{}",
        disk.path,
        disk.name,
        disk.model.as_deref().unwrap_or("unknown model"),
        human_size(disk.size),
        if disk.is_removable() {
            ", removable"
        } else {
            ", FIXED disk"
        }
    );
    if disk.partitions.is_empty() {
        let _ = writeln!(err, "  no partitions");
    }
    for p in &disk.partitions {
        let _ = writeln!(err, "  partition {} ({})", p.name, human_size(p.size));
    }
    let _ = write!(
        err,
        "Everything on it will be lost. Type the device name ({}) to continue: ",
        disk.name
    );
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    let answer = answer.trim();
    if answer == disk.name
        || answer == disk.path.as_str()
        || answer == format!("/dev/{}", disk.name)
    {
        Ok(())
    } else {
        Err(ConfirmError::Declined(disk.name.clone()))
    }
}

/// Progress: a bar on a terminal, a plain line every few seconds otherwise.
struct Shown {
    bar: Option<ProgressBar>,
    phase: Option<Phase>,
    started: Instant,
    last_line: Instant,
}

impl Shown {
    fn new() -> Shown {
        Shown {
            bar: None,
            phase: None,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn label(p: Phase) -> &'static str {
        match p {
            Phase::Write => "writing",
            Phase::Verify => "verifying",
        }
    }

    fn update(&mut self, p: Progress) {
        let tty = std::io::stderr().is_terminal();
        if self.phase != Some(p.phase) {
            self.finish();
            self.phase = Some(p.phase);
            self.started = Instant::now();
            // Print the first plain line at once, so logs show work began.
            self.last_line = Instant::now() - Duration::from_secs(60);
            if tty {
                let bar = ProgressBar::new(p.total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>9} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_message(Self::label(p.phase));
                self.bar = Some(bar);
            }
        }
        if let Some(bar) = &self.bar {
            // Verification first covers the data, then the holes too.
            if bar.length() != Some(p.total) {
                bar.set_length(p.total);
            }
            bar.set_position(p.done);
        } else if self.last_line.elapsed() >= Duration::from_secs(2) || p.done == p.total {
            self.last_line = Instant::now();
            let (rate, eta) = flash::rate_and_eta(p.done, p.total, self.started.elapsed());
            eprintln!(
                "{}: {} of {} ({}%), {}/s, ETA {}",
                Self::label(p.phase),
                human_size(p.done),
                human_size(p.total),
                (p.done * 100).checked_div(p.total).unwrap_or(100),
                human_size(rate as u64),
                eta.map(|d| format!("{}s", d.as_secs()))
                    .unwrap_or_else(|| "?".into())
            );
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
