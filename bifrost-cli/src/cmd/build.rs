//! `bifrost build`: arguments, progress display, result printing.

use bifrost_core::build::job::{self, Built};
use bifrost_core::build::{Event, Format, Request};
use bifrost_core::spec::defaults;
use camino::Utf8PathBuf;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  bifrost build iso                      # the installer ISO of the flake in .
  bifrost build raw --flake github:bifrost-nix/bifrost --host surface-pro-8
  bifrost build qcow --builders 'ssh://builder x86_64-linux' -- --max-jobs 0
  bifrost build iso --dry-run            # show the nix command and the placement")]
pub struct Args {
    /// Image format.
    #[arg(value_enum)]
    format: Format,
    /// Flake holding the host (any flake reference nix accepts).
    #[arg(long, value_name = "REF", default_value = ".")]
    flake: String,
    /// Host under `nixosConfigurations` [default: the flake's only host].
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Root of the output layout (0_podman, 1_oci, 2_raw, 3_deploy).
    #[arg(long, value_name = "DIR", default_value_t = defaults::output_root())]
    out: Utf8PathBuf,
    /// Print a JSON result document on standard output (progress stays on stderr).
    #[arg(long)]
    json: bool,
    /// How many previous artifacts to keep (as nixos.raw.1, nixos.raw.2, …).
    #[arg(long, value_name = "N", default_value_t = bifrost_core::build::DEFAULT_KEEP)]
    keep: usize,
    /// Remote builders, passed to `nix build --builders` (e.g. 'ssh://host x86_64-linux - 8').
    #[arg(long, value_name = "SPEC")]
    builders: Option<String>,
    /// Extra binary cache (`--option extra-substituters`); repeatable.
    #[arg(long, value_name = "URL")]
    substituter: Vec<String>,
    /// Public key of that cache (`--option extra-trusted-public-keys`), `name:base64`; repeatable.
    #[arg(long, value_name = "KEY", requires = "substituter")]
    trusted_key: Vec<String>,
    /// Print the nix command and the planned placement; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Extra arguments for `nix build`, after `--`.
    #[arg(last = true, value_name = "NIX_ARGS")]
    nix_args: Vec<String>,
}

pub fn run(a: Args) -> super::Outcome {
    let req = Request {
        format: a.format,
        flake: a.flake,
        host: a.host,
        out: a.out,
        keep: a.keep,
        builders: a.builders,
        substituters: a.substituter,
        trusted_keys: a.trusted_key,
        nix_args: a.nix_args,
    };
    let mut ui = Ui::new(std::io::stderr().is_terminal());
    let built = job::build(&req, a.dry_run, |ev| ui.event(ev));
    ui.finish();
    match built {
        Ok(Built::Planned(plan)) if a.json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Ok(Built::Planned(plan)) => print!("{}", plan.render()),
        Ok(Built::Done(report)) if a.json => {
            println!("{}", serde_json::to_string_pretty(&report)?)
        }
        Ok(Built::Done(report)) => {
            println!("{}", report.artifact);
            eprintln!("{}", report.summary());
        }
        Err(e) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&e.json_document())?);
            }
            return Err(super::WithStatus::new(e.exit_code(), e).into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress on stderr: an indicatif line on a terminal, plain lines
/// otherwise; shown from the build's first event on (a dry run shows none).
struct Ui {
    tty: bool,
    bar: Option<ProgressBar>,
    started: Option<Instant>,
    last: String,
}

impl Ui {
    fn new(tty: bool) -> Ui {
        Ui {
            tty,
            bar: None,
            started: None,
            last: String::new(),
        }
    }

    fn event(&mut self, ev: Event) {
        let started = *self.started.get_or_insert_with(Instant::now);
        if self.tty && self.bar.is_none() {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
            b.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(b);
        }
        let line = ev.line(started.elapsed());
        match &self.bar {
            Some(b) => b.set_message(line),
            None => {
                // Plain logs get a line per change of state, not per tick.
                let state = line.split_once("] ").map_or(line.as_str(), |x| x.1);
                if state != self.last {
                    self.last = state.to_owned();
                    eprintln!("{line}");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
