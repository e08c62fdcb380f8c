use bifrost_core::deploy::flash::job::{self, FlashRequest};
use bifrost_core::deploy::flash::{Phase, Progress};
use camino::Utf8PathBuf;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
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

pub fn run(args: Args) -> super::Outcome {
    let req = FlashRequest {
        image: args.image,
        device: args.device,
        yes: args.yes,
        verify: !args.no_verify,
        allow_fixed: args.allow_fixed,
        image_is_device: args.image_is_device,
    };
    let mut shown = Shown::new();
    let report = job::flash_here(&req, &mut |p| shown.update(p));
    shown.finish();
    eprint!("{}", report?.summary(&req.image, &req.device));
    Ok(ExitCode::SUCCESS)
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
                bar.set_message(p.phase.label());
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
            eprintln!("{}", job::progress_line(p, self.started.elapsed()));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
