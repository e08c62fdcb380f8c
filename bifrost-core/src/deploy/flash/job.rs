//! `bifrost flash` from start to end: the image is checked first, then the
//! target is inspected and refused if it is not a safe choice, the user
//! confirms a disk by typing its name (unless `--yes`), and only then
//! [`super::flash`] writes. Also the lines `bifrost flash` prints.

use super::super::blockdev::{self, human_size, Disk, Target};
use super::{
    flash, image_size, interrupt_flag, rate_and_eta, FlashError, Options, Phase, Progress, Report,
};
use camino::{Utf8Path, Utf8PathBuf};
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// The flags of `bifrost flash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashRequest {
    pub image: Utf8PathBuf,
    pub device: Utf8PathBuf,
    /// `--yes`: no confirmation.
    pub yes: bool,
    /// Read the device back (not `--no-verify`).
    pub verify: bool,
    pub allow_fixed: bool,
    pub image_is_device: bool,
}

/// How the user is asked before a disk is overwritten.
pub trait Ask {
    /// Whether there is someone to ask (standard input is a terminal).
    fn can_ask(&mut self) -> bool;
    /// Show `prompt` and read one line of answer.
    fn ask(&mut self, prompt: &str) -> String;
}

/// Asks on the terminal: the prompt on standard error, the answer from
/// standard input.
pub struct Terminal;

impl Ask for Terminal {
    fn can_ask(&mut self) -> bool {
        std::io::stdin().is_terminal()
    }

    fn ask(&mut self, prompt: &str) -> String {
        let mut err = std::io::stderr();
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        answer
    }
}

/// [`flash_image`] on this machine (files under `/`, the terminal asks).
pub fn flash_here(
    req: &FlashRequest,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, FlashError> {
    flash_image(req, Utf8Path::new("/"), &mut Terminal, progress)
}

/// Check, confirm, write and verify; nothing is opened for writing before
/// every check passed and the user said yes.
pub fn flash_image(
    req: &FlashRequest,
    root: &Utf8Path,
    ask: &mut dyn Ask,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, FlashError> {
    let size = image_size(&req.image, req.image_is_device)?;
    let target = blockdev::inspect(&req.device, root)?;
    blockdev::check(&target, size, req.allow_fixed, root)?;
    if let Target::Disk(disk) = &target {
        if !req.yes {
            confirm(disk, ask)?;
        }
    }
    let cancel = interrupt_flag()?;
    flash(
        &req.image,
        &target,
        Options {
            verify: req.verify,
            image_is_device: req.image_is_device,
        },
        &cancel,
        progress,
    )
}

/// Ask before overwriting `disk`: go on only when the answer is its name.
pub fn confirm(disk: &Disk, ask: &mut dyn Ask) -> Result<(), FlashError> {
    if !ask.can_ask() {
        return Err(FlashError::NotATerminal);
    }
    let answer = ask.ask(&confirm_prompt(disk));
    if answer_names(disk, &answer) {
        Ok(())
    } else {
        Err(FlashError::Declined(disk.name.clone()))
    }
}

/// What the user sees before a disk is overwritten: what it is, its
/// partitions, and what to type.
pub fn confirm_prompt(disk: &Disk) -> String {
    let mut s = format!(
        "About to OVERWRITE {} ({}): {}, {}{}\n",
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
        s.push_str("  no partitions\n");
    }
    for p in &disk.partitions {
        let _ = writeln!(s, "  partition {} ({})", p.name, human_size(p.size));
    }
    let _ = write!(
        s,
        "Everything on it will be lost. Type the device name ({}) to continue: ",
        disk.name
    );
    s
}

/// Whether `answer` names `disk`: its kernel name, the path given, or `/dev/NAME`.
pub fn answer_names(disk: &Disk, answer: &str) -> bool {
    let answer = answer.trim();
    answer == disk.name || answer == disk.path.as_str() || answer == format!("/dev/{}", disk.name)
}

impl Phase {
    /// The phase in progress lines.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Write => "writing",
            Phase::Verify => "verifying",
        }
    }
}

/// A plain progress line (for logs, where no bar is drawn), `elapsed` since
/// the phase began.
pub fn progress_line(p: Progress, elapsed: Duration) -> String {
    let (rate, eta) = rate_and_eta(p.done, p.total, elapsed);
    format!(
        "{}: {} of {} ({}%), {}/s, ETA {}",
        p.phase.label(),
        human_size(p.done),
        human_size(p.total),
        (p.done * 100).checked_div(p.total).unwrap_or(100),
        human_size(rate as u64),
        eta.map(|d| format!("{}s", d.as_secs()))
            .unwrap_or_else(|| "?".into())
    )
}

impl Report {
    /// What was written and whether it was verified, for people.
    pub fn summary(&self, image: &Utf8Path, device: &Utf8Path) -> String {
        let rate = |bytes: u64, secs: f64| human_size((bytes as f64 / secs.max(1e-9)) as u64);
        let mut s = format!(
            "wrote {} of data ({} zeroed) to {device} in {:.1}s ({}/s)\n",
            human_size(self.written),
            human_size(self.zeroed),
            self.write_secs,
            rate(self.written, self.write_secs)
        );
        if self.verified {
            let _ = writeln!(
                s,
                "verified: {device} reads back identical to {image} ({:.1}s)",
                self.verify_secs
            );
        } else {
            s.push_str("not verified (--no-verify)\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::blockdev::Partition;
    use crate::mounts::DevNum;

    fn disk(partitions: Vec<Partition>) -> Disk {
        Disk {
            path: "/dev/disk/by-id/usb-stick".into(),
            name: "sdb".into(),
            dev: DevNum {
                major: 8,
                minor: 16,
            },
            size: 8 << 30,
            removable: true,
            usb: true,
            sd_card: false,
            model: Some("Stick".into()),
            partitions,
        }
    }

    struct Scripted {
        terminal: bool,
        answer: &'static str,
        prompts: Vec<String>,
    }

    impl Ask for Scripted {
        fn can_ask(&mut self) -> bool {
            self.terminal
        }
        fn ask(&mut self, prompt: &str) -> String {
            self.prompts.push(prompt.to_owned());
            self.answer.to_owned()
        }
    }

    #[test]
    fn the_prompt_names_the_disk_and_its_partitions() {
        let p = Partition {
            name: "sdb1".into(),
            dev: DevNum {
                major: 8,
                minor: 17,
            },
            size: 1 << 30,
        };
        insta::assert_snapshot!(confirm_prompt(&disk(vec![p])));
        assert!(confirm_prompt(&disk(vec![])).contains("\n  no partitions\n"));
    }

    #[test]
    fn only_the_disks_name_confirms() {
        let d = disk(vec![]);
        for yes in ["sdb\n", "/dev/sdb", " /dev/disk/by-id/usb-stick "] {
            assert!(answer_names(&d, yes), "{yes}");
        }
        for no in ["", "y", "yes", "sdb1", "/dev/sda"] {
            assert!(!answer_names(&d, no), "{no}");
        }
        let mut ask = Scripted {
            terminal: true,
            answer: "no\n",
            prompts: vec![],
        };
        let e = confirm(&d, &mut ask).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the answer was not \"sdb\"; nothing was written"
        );
        assert_eq!(ask.prompts.len(), 1);
        let mut ask = Scripted {
            terminal: false,
            answer: "sdb",
            prompts: vec![],
        };
        assert!(matches!(
            confirm(&d, &mut ask),
            Err(FlashError::NotATerminal)
        ));
        assert!(ask.prompts.is_empty(), "nobody to ask: nothing shown");
    }

    #[test]
    fn a_file_target_needs_no_confirmation_and_a_bad_image_opens_nothing() {
        let (_d, dir) = crate::fsutil::test_dir();
        let image = dir.join("img");
        std::fs::write(&image, vec![7u8; 8192]).unwrap();
        let mut req = FlashRequest {
            image: image.clone(),
            device: dir.join("copy"),
            yes: false,
            verify: true,
            allow_fixed: false,
            image_is_device: false,
        };
        let mut ask = Scripted {
            terminal: false,
            answer: "",
            prompts: vec![],
        };
        let report = flash_image(&req, Utf8Path::new("/"), &mut ask, &mut |_| {}).unwrap();
        assert!(report.verified);
        assert_eq!(std::fs::read(dir.join("copy")).unwrap(), vec![7u8; 8192]);
        let summary = report.summary(&req.image, &req.device);
        assert!(summary.contains("verified: "), "{summary}");

        req.image = dir.clone();
        req.device = dir.join("other");
        let e = flash_image(&req, Utf8Path::new("/"), &mut ask, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
        assert!(!req.device.exists());
    }

    #[test]
    fn progress_lines_and_summaries() {
        let p = Progress {
            phase: Phase::Verify,
            done: 50 << 20,
            total: 100 << 20,
        };
        let line = progress_line(p, Duration::from_secs(5));
        assert!(line.starts_with("verifying: "), "{line}");
        assert!(line.contains("(50%)") && line.ends_with("ETA 5s"), "{line}");
        let r = Report {
            image_size: 1 << 20,
            written: 1 << 20,
            zeroed: 0,
            verified: false,
            write_secs: 1.0,
            verify_secs: 0.0,
        };
        let s = r.summary(Utf8Path::new("a.img"), Utf8Path::new("/dev/sdb"));
        assert!(
            s.ends_with("to /dev/sdb in 1.0s (1.0 MiB/s)\nnot verified (--no-verify)\n"),
            "{s}"
        );
    }
}
