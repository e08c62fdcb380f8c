//! The steps of [`super::run`], in order: where the artifact sits in the
//! output ([`file_path`]), `nix build` ([`nix_build`]), where it came from
//! ([`provenance`]), placing it in `OUT/2_raw` ([`Placing::image`] or
//! [`Placing::vm`]) and its manifest record ([`entry`]). What each failure
//! means is decided by pure functions ([`eval_failure`], [`build_failure`]).

use super::{
    command, eval_raw, find_vm_runner, flake_info, list_hosts, manifest, parse_build_json, place,
    system_attr, BuildError, Event, Format, Plan, Progress,
};
use camino::{Utf8Path, Utf8PathBuf};

/// The error of a build stopped by Ctrl-C: nothing in OUT changed.
fn interrupted(plan: &Plan) -> BuildError {
    BuildError::Interrupted(plan.out.clone())
}

/// The artifact's place inside the build output (`passthru.filePath`;
/// `None` for the VM, whose runner is found after the build). Evaluated
/// first, so a host or nixpkgs without this image fails before hours of
/// building.
pub fn file_path(
    plan: &Plan,
    on_event: &mut dyn FnMut(Event),
) -> Result<Option<String>, BuildError> {
    if plan.format == Format::Vm {
        return Ok(None);
    }
    on_event(Event::Stage("evaluating passthru.filePath"));
    let attr = format!("{}.passthru.filePath", plan.installable);
    match eval_raw(&attr, &plan.eval_args) {
        Ok(rel) => Ok(Some(rel)),
        Err(command::CommandError::Interrupted) => Err(interrupted(plan)),
        Err(source) => {
            let hosts = list_hosts(&plan.flake, &plan.eval_args);
            Err(eval_failure(plan, attr, source, hosts))
        }
    }
}

/// What a failed evaluation of `attr` means: the commonest cause, a
/// misspelt `--host` (one the flake's `hosts` lack), said plainly.
pub fn eval_failure(
    plan: &Plan,
    attr: String,
    source: command::CommandError,
    hosts: Result<Vec<String>, BuildError>,
) -> BuildError {
    match hosts {
        Ok(hosts) if !hosts.contains(&plan.host) => BuildError::UnknownHost {
            flake: plan.flake.clone(),
            host: plan.host.clone(),
            hosts,
        },
        _ => BuildError::Eval { what: attr, source },
    }
}

/// Run `nix build` with its log driving the progress; its output store path.
pub fn nix_build(plan: &Plan, on_event: &mut dyn FnMut(Event)) -> Result<String, BuildError> {
    let mut progress = Progress::new();
    let mut line_no = 0;
    let out = command::nix_build_streaming(&plan.nix_args, |line| {
        line_no += 1;
        // A malformed line is not worth failing a build over.
        if let Ok(true) = progress.feed(line, line_no) {
            on_event(Event::Nix(&progress));
        }
    })
    .map_err(|e| match e {
        command::CommandError::Interrupted => interrupted(plan),
        e => BuildError::Command(e),
    })?;
    if out.code != Some(0) {
        return Err(build_failure(out.code, &progress));
    }
    parse_build_json(&out.stdout).ok_or_else(|| BuildError::NoOutput {
        installable: plan.installable.clone(),
        stdout: out.stdout.clone(),
    })
}

/// A failed `nix build` (exit `code`): nix's error messages, or its plain
/// lines when it printed none, and each failing derivation's log tail.
pub fn build_failure(code: Option<i32>, progress: &Progress) -> BuildError {
    let mut errors = progress.errors.clone();
    if errors.is_empty() {
        errors.extend(progress.plain.iter().cloned());
    }
    BuildError::NixFailed {
        code,
        errors,
        failures: progress.failures(),
    }
}

/// Where a build came from, for its manifest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub flake: manifest::FlakeInfo,
    pub nixpkgs_revision: Option<String>,
    pub nixos_version: Option<String>,
}

/// The flake's revision, its nixpkgs and the NixOS version (each only when
/// nix can tell).
pub fn provenance(plan: &Plan, on_event: &mut dyn FnMut(Event)) -> Provenance {
    on_event(Event::Stage("reading flake metadata"));
    let (flake, nixpkgs_revision) = flake_info(&plan.flake, &plan.eval_args);
    let nixos_version = eval_raw(
        &format!("{}.nixos.version", system_attr(&plan.flake, &plan.host)),
        &plan.eval_args,
    )
    .ok();
    Provenance {
        flake,
        nixpkgs_revision,
        nixos_version,
    }
}

/// An artifact placed in `OUT/2_raw`.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub path: Utf8PathBuf,
    /// How an image was copied (`None` for the VM runner's GC root).
    pub copy: Option<place::CopyMethod>,
    /// The file inside the store path (`passthru.filePath` or the VM runner).
    pub file_rel: String,
    /// Kept artifacts renamed to make room.
    pub shifts: Vec<place::Shift>,
    /// Its name in SHA256SUMS.
    pub sums_path: String,
    pub size: u64,
    pub sha256: String,
}

/// Where an artifact is placed from and to: the build's plan, its output
/// store path, and `OUT/2_raw`.
pub struct Placing<'a> {
    pub plan: &'a Plan,
    pub store_path: &'a str,
    pub dir: &'a Utf8Path,
}

impl Placing<'_> {
    fn interrupted(&self) -> BuildError {
        interrupted(self.plan)
    }

    /// Copy the image `rel` of the store path to `dir/<name>`, hashed first:
    /// the store file is immutable and the copy byte for byte, so an
    /// interrupt while hashing changes nothing.
    pub fn image(
        &self,
        rel: &str,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Artifact, BuildError> {
        let name = self.plan.format.artifact_name();
        let src = Utf8Path::new(self.store_path).join(rel);
        if !src.is_file() {
            return Err(BuildError::MissingArtifact {
                path: self.store_path.to_owned(),
                what: format!("file {rel} (passthru.filePath)"),
            });
        }
        on_event(Event::Stage("computing SHA-256"));
        let sha256 = manifest::sha256_file(&src).map_err(|e| match e {
            manifest::ManifestError::Interrupted(_) => self.interrupted(),
            e => e.into(),
        })?;
        on_event(Event::Stage("copying the image into place"));
        let placed =
            place::place_file(&src, self.dir, name, self.plan.keep).map_err(|e| match e {
                place::PlaceError::Interrupted(_) => self.interrupted(),
                e => e.into(),
            })?;
        let size = std::fs::metadata(&placed.path)
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(Artifact {
            path: placed.path,
            copy: Some(placed.method),
            file_rel: rel.to_owned(),
            shifts: placed.shifts,
            sums_path: name.to_owned(),
            size,
            sha256,
        })
    }

    /// Register the VM's store path as a GC root at `dir/<name>`; the runner
    /// inside it is what is hashed and recorded.
    pub fn vm(&self, on_event: &mut dyn FnMut(Event)) -> Result<Artifact, BuildError> {
        let name = self.plan.format.artifact_name();
        let runner = find_vm_runner(Utf8Path::new(self.store_path))?;
        on_event(Event::Stage("registering the VM runner as a GC root"));
        let shifts = place::place_root(self.store_path, self.dir, name, self.plan.keep)?;
        let file = Utf8Path::new(self.store_path).join(&runner);
        let sha256 = manifest::sha256_file(&file)?;
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        Ok(Artifact {
            path: self.dir.join(name),
            copy: None,
            sums_path: format!("{name}/{runner}"),
            file_rel: runner,
            shifts,
            size,
            sha256,
        })
    }
}

/// The manifest record of `artifact`, built from `store_path` at `built_at`.
pub fn entry(
    plan: &Plan,
    store_path: String,
    artifact: &Artifact,
    from: Provenance,
    built_at: String,
) -> manifest::Entry {
    manifest::Entry {
        host: plan.host.clone(),
        format: plan.format.name().to_owned(),
        installable: plan.installable.clone(),
        store_path,
        file_path: artifact.file_rel.clone(),
        size: artifact.size,
        sha256: artifact.sha256.clone(),
        flake: from.flake,
        nixpkgs_revision: from.nixpkgs_revision,
        nixos_version: from.nixos_version,
        bifrost_version: env!("CARGO_PKG_VERSION").to_owned(),
        built_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::req;

    fn plan() -> Plan {
        Plan::new(&req(Format::Raw), "h").unwrap()
    }

    fn failed() -> command::CommandError {
        command::CommandError::Interrupted
    }

    #[test]
    fn a_failed_evaluation_names_a_host_the_flake_lacks() {
        let p = plan();
        let attr = || "x.passthru.filePath".to_owned();
        let e = eval_failure(&p, attr(), failed(), Ok(vec!["a".into(), "b".into()]));
        assert!(
            matches!(&e, BuildError::UnknownHost { host, hosts, .. } if host == "h" && hosts == &["a", "b"]),
            "{e}"
        );
        // The host is there, or the hosts cannot be listed: the evaluation's own error.
        for hosts in [Ok(vec!["h".into()]), Err(BuildError::BadKeep(0))] {
            let e = eval_failure(&p, attr(), failed(), hosts);
            assert!(
                matches!(&e, BuildError::Eval { what, .. } if what == "x.passthru.filePath"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_failed_build_reports_nix_errors_or_else_its_plain_lines() {
        let mut pr = Progress::new();
        let _ = pr.feed("plain line from an old nix", 1);
        let e = build_failure(Some(1), &pr);
        assert!(
            matches!(&e, BuildError::NixFailed { code: Some(1), errors, .. } if errors == &["plain line from an old nix"]),
            "{e}"
        );
        let _ = pr.feed(r#"@nix {"action":"msg","level":0,"msg":"error: boom"}"#, 2);
        let e = build_failure(None, &pr);
        assert!(
            matches!(&e, BuildError::NixFailed { code: None, errors, .. } if errors == &["error: boom"]),
            "{e}"
        );
    }

    #[test]
    fn the_record_says_what_was_built_from_where() {
        let p = plan();
        let a = Artifact {
            path: "/o/2_raw/nixos.raw".into(),
            copy: None,
            file_rel: "nixos.img".into(),
            shifts: vec![],
            sums_path: "nixos.raw".into(),
            size: 7,
            sha256: "ab".into(),
        };
        let from = Provenance {
            flake: manifest::FlakeInfo {
                url: p.flake.clone(),
                ..Default::default()
            },
            nixpkgs_revision: Some("rev".into()),
            nixos_version: None,
        };
        let e = entry(&p, "/nix/store/x".into(), &a, from, "t".into());
        assert_eq!(
            (e.host.as_str(), e.format.as_str(), e.installable.as_str()),
            ("h", "raw", p.installable.as_str())
        );
        assert_eq!(
            (
                e.store_path.as_str(),
                e.file_path.as_str(),
                e.size,
                e.sha256.as_str()
            ),
            ("/nix/store/x", "nixos.img", 7, "ab")
        );
        assert_eq!(e.nixpkgs_revision.as_deref(), Some("rev"));
        assert_eq!(e.built_at, "t");
    }
}
