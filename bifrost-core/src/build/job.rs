//! `bifrost build` from start to end: the output folder is made ready before
//! nix runs (a build that cannot be placed is not started), the host is
//! resolved and the plan decided, then the plan is shown (`--dry-run`) or
//! run. Also the lines `bifrost build` prints.

use super::progress::fmt_elapsed;
use super::{outdir, resolve_host, run, BuildError, Event, Plan, Report, Request};
use std::time::Duration;

/// What `bifrost build` did.
#[derive(Debug, Clone)]
pub enum Built {
    /// `--dry-run`: what would run; nothing ran.
    Planned(Plan),
    /// The artifact is in place.
    Done(Box<Report>),
}

/// Plan the build `req` asks for and, unless `dry_run`, run it.
pub fn build(
    req: &Request,
    dry_run: bool,
    on_event: impl FnMut(Event),
) -> Result<Built, BuildError> {
    if !dry_run {
        outdir::prepare(&req.out)?;
    }
    let host = resolve_host(req)?;
    let plan = Plan::new(req, &host)?;
    if dry_run {
        return Ok(Built::Planned(plan));
    }
    run(&plan, on_event).map(|r| Built::Done(Box::new(r)))
}

impl Event<'_> {
    /// The progress line of this event, `elapsed` into the build.
    pub fn line(&self, elapsed: Duration) -> String {
        match self {
            Event::Stage(s) => format!("[{}] {s}", fmt_elapsed(elapsed)),
            Event::Nix(p) => p.render(elapsed),
        }
    }
}

impl Report {
    /// The last line of a build, for people.
    pub fn summary(&self) -> String {
        format!(
            "built {} of {} in {}: {} (sha256 {})",
            self.entry.format,
            self.entry.host,
            fmt_elapsed(Duration::from_secs_f64(self.elapsed_secs)),
            self.artifact,
            self.entry.sha256
        )
    }
}

impl BuildError {
    /// The document `--json` prints on standard output when the build
    /// failed: the message with its causes, and the exit status.
    pub fn json_document(&self) -> serde_json::Value {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            msg.push_str(&format!("\ncaused by: {s}"));
            src = s.source();
        }
        serde_json::json!({ "error": msg, "exitCode": self.exit_code() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{manifest, Format};
    use camino::Utf8PathBuf;

    fn req(out: Utf8PathBuf) -> Request {
        Request {
            host: Some("h".into()),
            out,
            ..crate::build::tests::req(Format::Iso)
        }
    }

    #[test]
    fn a_dry_run_plans_and_touches_nothing() {
        let (_d, dir) = crate::fsutil::test_dir();
        let out = dir.join("out");
        let mut events = 0;
        let Built::Planned(plan) = build(&req(out.clone()), true, |_| events += 1).unwrap() else {
            panic!("a dry run only plans")
        };
        assert_eq!(plan.host, "h");
        assert_eq!(plan.target, out.join("2_raw/nixos.iso"));
        assert!(!out.exists(), "a dry run creates no output folder");
        assert_eq!(events, 0);
    }

    #[test]
    fn a_bad_request_is_refused_before_nix_runs() {
        let (_d, dir) = crate::fsutil::test_dir();
        let out = dir.join("out");
        let bad = Request {
            keep: 101,
            ..req(out)
        };
        let e = build(&bad, true, |_| {}).unwrap_err();
        assert!(matches!(e, BuildError::BadKeep(101)), "{e}");
        assert_eq!(
            e.json_document(),
            serde_json::json!({"error": e.to_string(), "exitCode": 1})
        );
        let interrupted = BuildError::Interrupted("/o".into());
        assert_eq!(interrupted.json_document()["exitCode"], 130);
    }

    #[test]
    fn lines_of_events_and_the_summary() {
        assert_eq!(
            Event::Stage("computing SHA-256").line(Duration::from_secs(61)),
            "[1:01] computing SHA-256"
        );
        let report = Report {
            artifact: "/o/2_raw/nixos.iso".into(),
            copy: None,
            manifest: "/o/2_raw/manifest.json".into(),
            sums: "/o/2_raw/SHA256SUMS".into(),
            entry: manifest::Entry {
                host: "h".into(),
                format: "iso".into(),
                installable: String::new(),
                store_path: String::new(),
                file_path: String::new(),
                size: 0,
                sha256: "ab12".into(),
                flake: manifest::FlakeInfo::default(),
                nixpkgs_revision: None,
                nixos_version: None,
                bifrost_version: String::new(),
                built_at: String::new(),
            },
            elapsed_secs: 3725.4,
        };
        assert_eq!(
            report.summary(),
            "built iso of h in 1:02:05: /o/2_raw/nixos.iso (sha256 ab12)"
        );
    }
}
