//! `bifrost build`: arguments, progress display, result printing.

use bifrost_core::build::{self, Event, Format, Plan, Request};
use bifrost_core::spec::defaults;
use camino::Utf8PathBuf;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// Raw EFI disk image (nixpkgs `images.raw-efi`) → 2_raw/nixos.raw
    Raw,
    /// USB installer ISO (nixpkgs `images.iso-installer`) → 2_raw/nixos.iso
    Iso,
    /// QCOW2 disk with EFI (nixpkgs `images.qemu-efi`) → 2_raw/nixos.qcow2
    Qcow,
    /// VM runner (`system.build.vm`) → GC-rooted link 2_raw/nixos-vm
    Vm,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Raw => Format::Raw,
            FormatArg::Iso => Format::Iso,
            FormatArg::Qcow => Format::Qcow,
            FormatArg::Vm => Format::Vm,
        }
    }
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  bifrost build iso                      # the installer ISO of the flake in .
  bifrost build raw --flake github:bifrost-nix/bifrost --host surface-pro-8
  bifrost build qcow --builders 'ssh://builder x86_64-linux' -- --max-jobs 0
  bifrost build iso --dry-run            # show the nix command and the placement")]
pub struct Args {
    /// Image format.
    #[arg(value_enum)]
    format: FormatArg,
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
    #[arg(long, value_name = "N", default_value_t = 1)]
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

pub fn run(a: Args) -> ExitCode {
    let req = Request {
        format: a.format.into(),
        flake: a.flake,
        host: a.host,
        out: a.out,
        keep: a.keep,
        builders: a.builders,
        substituters: a.substituter,
        trusted_keys: a.trusted_key,
        nix_args: a.nix_args,
    };
    let json = a.json;
    // Before nix runs at all: a build that cannot be placed is not started.
    if !a.dry_run {
        if let Err(e) = build::outdir::prepare(&req.out) {
            return failed(&e.into(), json);
        }
    }
    let plan = match build::resolve_host(&req).and_then(|h| Plan::new(&req, &h)) {
        Ok(p) => p,
        Err(e) => return failed(&e, json),
    };
    if a.dry_run {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).expect("plan serializes")
            );
        } else {
            print!("{}", plan.render());
        }
        return ExitCode::SUCCESS;
    }

    let started = Instant::now();
    let mut ui = Ui::new(std::io::stderr().is_terminal());
    let result = build::run(&plan, |ev| ui.event(ev, started.elapsed()));
    ui.finish();
    match result {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                );
            } else {
                println!("{}", report.artifact);
                eprintln!(
                    "built {} of {} in {}: {} (sha256 {})",
                    plan.format.name(),
                    plan.host,
                    build::progress::fmt_elapsed(started.elapsed()),
                    report.artifact,
                    report.entry.sha256
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e, json),
    }
}

fn failed(e: &build::BuildError, json: bool) -> ExitCode {
    let code = e.exit_code();
    if json {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(&format!("\ncaused by: {s}"));
            src = s.source();
        }
        let doc = serde_json::json!({ "error": msg, "exitCode": code });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    }
    super::fail(e);
    ExitCode::from(code)
}

/// Progress on stderr: an indicatif line on a terminal, plain lines otherwise.
struct Ui {
    bar: Option<ProgressBar>,
    last: String,
}

impl Ui {
    fn new(tty: bool) -> Ui {
        let bar = tty.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Ui {
            bar,
            last: String::new(),
        }
    }

    fn event(&mut self, ev: Event, elapsed: Duration) {
        let line = match ev {
            Event::Stage(s) => format!("[{}] {s}", build::progress::fmt_elapsed(elapsed)),
            Event::Nix(p) => p.render(elapsed),
        };
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
