//! Image builds: `bifrost build raw|iso|qcow|vm`.
//!
//! Formats map onto nixpkgs' own image builders (`nixos/modules/image/images.nix`):
//! `config.system.build.images.<variant>` whose `passthru.filePath` names the
//! artifact inside the output, and `config.system.build.vm` for the VM runner.
//! The build is `nix build --json --no-link --log-format internal-json -v`,
//! its log drives the progress display, and the artifact is copied into the
//! seed's output layout with a checksum and a manifest entry.
//!
//! Submodules: `command` (running nix), `progress` (the log), `place` (the
//! copy into `OUT/2_raw`), `manifest` (SHA256SUMS and manifest.json),
//! `output` (the output folder checked and locked before placing),
//! `cancel` (SIGINT); `steps`, the steps of [`run`] in order.

pub mod cancel;
pub mod command;
pub mod flakeref;
pub mod job;
pub mod manifest;
pub mod outdir;
pub mod output;
pub mod place;
pub mod progress;
pub mod steps;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use std::time::Instant;

pub use progress::Progress;

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("--host: {0:?} is not a valid host name (letters, digits, `-` and `_`)")]
    BadHost(String),
    #[error("{0}")]
    BadFlake(String),
    #[error("--keep: at most 100 previous artifacts are kept, not {0}")]
    BadKeep(usize),
    #[error("--trusted-key given without --substituter: a key only matters for a cache")]
    KeyWithoutSubstituter,
    #[error(
        "the flake {flake} has no nixosConfigurations; pass a flake that defines one with --flake"
    )]
    NoHosts { flake: String },
    #[error("the flake {flake} has several hosts ({}); pick one with --host", hosts.join(", "))]
    WhichHost { flake: String, hosts: Vec<String> },
    #[error("--host: the flake {flake} has no host {host:?}; its hosts: {}", hosts.join(", "))]
    UnknownHost {
        flake: String,
        host: String,
        hosts: Vec<String>,
    },
    #[error("cannot evaluate {what}")]
    Eval {
        what: String,
        #[source]
        source: command::CommandError,
    },
    #[error("nix build failed (exit {})\n{}", code.map_or("by signal".to_owned(), |c| c.to_string()), render_failure(errors, failures))]
    NixFailed {
        code: Option<i32>,
        errors: Vec<String>,
        failures: Vec<(String, Vec<String>)>,
    },
    #[error("nix build printed no output path for {installable} (stdout: {stdout:?})")]
    NoOutput { installable: String, stdout: String },
    #[error("{0}")]
    Command(#[from] command::CommandError),
    #[error("{path}: the build output has no {what}")]
    MissingArtifact { path: String, what: String },
    #[error(transparent)]
    Place(#[from] place::PlaceError),
    #[error(transparent)]
    OutDir(#[from] outdir::OutDirError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    Output(#[from] output::OutputError),
    #[error("interrupted: nix was stopped; nothing in {0} was changed")]
    Interrupted(Utf8PathBuf),
}

impl BuildError {
    /// The exit status bifrost should end with: nix's own when nix failed,
    /// 130 on interrupt (the shell convention for SIGINT), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::NixFailed { code: Some(c), .. } => {
                u8::try_from(*c).ok().filter(|c| *c != 0).unwrap_or(1)
            }
            BuildError::Interrupted(_) => 130,
            BuildError::Command(command::CommandError::Interrupted) => 130,
            BuildError::Manifest(manifest::ManifestError::Interrupted(_)) => 130,
            _ => 1,
        }
    }
}

/// Nix's error messages, then each failing derivation's last log lines.
pub fn render_failure(errors: &[String], failures: &[(String, Vec<String>)]) -> String {
    let mut s = String::new();
    for e in errors {
        s.push_str(e.trim_end());
        s.push('\n');
    }
    for (drv, tail) in failures {
        if tail.is_empty() {
            continue;
        }
        s.push_str(&format!("last {} log lines of {drv}:\n", tail.len()));
        for l in tail {
            s.push_str("> ");
            s.push_str(l);
            s.push('\n');
        }
    }
    if s.is_empty() {
        s.push_str("(nix printed no error message)\n");
    }
    s.trim_end().to_owned()
}

/// The image formats of the seed's `./build.sh build <format>` (and of
/// `bifrost build FORMAT`, whose `--help` shows these comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Raw EFI disk image (nixpkgs `images.raw-efi`) → 2_raw/nixos.raw
    Raw,
    /// USB installer ISO (nixpkgs `images.iso-installer`) → 2_raw/nixos.iso
    Iso,
    /// QCOW2 disk with EFI (nixpkgs `images.qemu-efi`) → 2_raw/nixos.qcow2
    Qcow,
    /// VM runner (`system.build.vm`) → GC-rooted link 2_raw/nixos-vm
    Vm,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Raw, Format::Iso, Format::Qcow, Format::Vm];

    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Iso => "iso",
            Format::Qcow => "qcow",
            Format::Vm => "vm",
        }
    }

    /// The attribute under `config.system.build`.
    pub fn attr(self) -> &'static str {
        match self {
            Format::Raw => "images.raw-efi",
            Format::Iso => "images.iso-installer",
            Format::Qcow => "images.qemu-efi",
            Format::Vm => "vm",
        }
    }

    /// The name in `OUT/2_raw`.
    pub fn artifact_name(self) -> &'static str {
        match self {
            Format::Raw => "nixos.raw",
            Format::Iso => "nixos.iso",
            Format::Qcow => "nixos.qcow2",
            Format::Vm => "nixos-vm",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format {s:?}: use raw, iso, qcow or vm"))
    }
}

/// How many previous artifacts a build keeps unless `--keep` says otherwise.
pub const DEFAULT_KEEP: usize = 1;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub format: Format,
    pub flake: String,
    /// `None`: the flake's only host.
    pub host: Option<String>,
    pub out: Utf8PathBuf,
    pub keep: usize,
    pub builders: Option<String>,
    pub substituters: Vec<String>,
    pub trusted_keys: Vec<String>,
    /// Passed to `nix build` after bifrost's own arguments.
    pub nix_args: Vec<String>,
}

/// Everything a build will do, decided before anything runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub format: Format,
    pub flake: String,
    pub host: String,
    /// `<flake>#nixosConfigurations.<host>.config.system.build.<attr>`.
    pub installable: String,
    /// Arguments of `nix` (without the program name).
    pub nix_args: Vec<String>,
    /// Arguments added to `nix eval` so it sees what `nix build` sees.
    #[serde(skip)]
    pub eval_args: Vec<String>,
    pub out: Utf8PathBuf,
    /// `OUT/2_raw/<artifact>`.
    pub target: Utf8PathBuf,
    pub keep: usize,
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `<flake>#nixosConfigurations.<host>.config.system.build`.
pub fn system_attr(flake: &str, host: &str) -> String {
    format!("{flake}#nixosConfigurations.{host}.config.system")
}

/// Flags among the user's NIX_ARGS that change what evaluates, so the
/// `nix eval` calls (filePath, NixOS version) see the same flake as the build.
pub fn eval_affecting(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let arity = match a {
            "--impure" | "--no-write-lock-file" | "--recreate-lock-file" | "--refresh" => 0,
            "--update-input" | "--include" | "-I" => 1,
            "--override-input" | "--option" | "--override-flake" => 2,
            _ => {
                i += 1;
                continue;
            }
        };
        let end = (i + 1 + arity).min(args.len());
        out.extend(args[i..end].iter().cloned());
        i = end;
    }
    out
}

impl Plan {
    /// Decide the command line and the placement. Pure.
    pub fn new(req: &Request, host: &str) -> Result<Plan, BuildError> {
        if let Some(p) = flakeref::problem(&req.flake) {
            return Err(BuildError::BadFlake(p));
        }
        if !valid_host(host) {
            return Err(BuildError::BadHost(host.to_owned()));
        }
        if req.keep > 100 {
            return Err(BuildError::BadKeep(req.keep));
        }
        if !req.trusted_keys.is_empty() && req.substituters.is_empty() {
            return Err(BuildError::KeyWithoutSubstituter);
        }
        let installable = format!(
            "{}.build.{}",
            system_attr(&req.flake, host),
            req.format.attr()
        );
        let mut args: Vec<String> = [
            "build",
            "--json",
            "--no-link",
            "--log-format",
            "internal-json",
            "-v",
        ]
        .map(String::from)
        .to_vec();
        if let Some(b) = &req.builders {
            args.extend(["--builders".to_owned(), b.clone()]);
        }
        if !req.substituters.is_empty() {
            args.extend([
                "--option".to_owned(),
                "extra-substituters".to_owned(),
                req.substituters.join(" "),
            ]);
        }
        if !req.trusted_keys.is_empty() {
            args.extend([
                "--option".to_owned(),
                "extra-trusted-public-keys".to_owned(),
                req.trusted_keys.join(" "),
            ]);
        }
        args.push(installable.clone());
        args.extend(req.nix_args.iter().cloned());
        Ok(Plan {
            format: req.format,
            flake: req.flake.clone(),
            host: host.to_owned(),
            installable,
            eval_args: eval_affecting(&req.nix_args),
            nix_args: args,
            out: req.out.clone(),
            target: req.out.join("2_raw").join(req.format.artifact_name()),
            keep: req.keep,
        })
    }

    /// What `--dry-run` prints.
    pub fn render(&self) -> String {
        let src = match self.format {
            Format::Vm => "<store path> (the VM runner)".to_owned(),
            _ => format!("<store path>/<{}.passthru.filePath>", self.format.attr()),
        };
        let how = match self.format {
            Format::Vm => "GC-rooted link (nix-store --add-root)",
            _ => "sparse copy (reflink where possible) to a temp file, fsync, rename",
        };
        let a = self.format.artifact_name();
        let kept = match self.keep {
            0 => "the previous one is replaced".to_owned(),
            1 => format!("the previous one is kept as {a}.1"),
            n => format!("the previous {n} are kept as {a}.1 … {a}.{n}"),
        };
        let dir = self.out.join("2_raw");
        format!(
            "would run:\n  {}\nwould place:\n  {src}\n  -> {} ({how}; {kept})\nwould write:\n  {}\n  {}\nwould create (if missing): {}\n",
            command::shell_line("nix", &self.nix_args),
            self.target,
            dir.join("SHA256SUMS"),
            dir.join("manifest.json"),
            place::LAYOUT.map(|d| self.out.join(d).to_string()).join(", "),
        )
    }
}

/// What a finished build reports (`--json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub artifact: Utf8PathBuf,
    pub copy: Option<place::CopyMethod>,
    pub manifest: Utf8PathBuf,
    pub sums: Utf8PathBuf,
    #[serde(flatten)]
    pub entry: manifest::Entry,
    pub elapsed_secs: f64,
}

/// What the build tells its caller as it goes.
pub enum Event<'a> {
    /// A step without its own progress (evaluating, copying, checksumming).
    Stage(&'a str),
    /// The nix log moved.
    Nix(&'a Progress),
}

/// The flake's hosts, sorted.
pub fn list_hosts(flake: &str, eval_args: &[String]) -> Result<Vec<String>, BuildError> {
    let mut args: Vec<String> = [
        "eval",
        "--json",
        &format!("{flake}#nixosConfigurations"),
        "--apply",
        "builtins.attrNames",
    ]
    .map(String::from)
    .to_vec();
    args.extend(eval_args.iter().cloned());
    let out = crate::process::Cmd::new("nix", &args)
        .cancellable()
        .read()
        .map_err(|source| BuildError::Eval {
            what: format!("{flake}#nixosConfigurations"),
            source,
        })?;
    Ok(serde_json::from_str(&out).unwrap_or_default())
}

/// `--host`, or the flake's only host.
pub fn resolve_host(req: &Request) -> Result<String, BuildError> {
    if let Some(p) = flakeref::problem(&req.flake) {
        return Err(BuildError::BadFlake(p));
    }
    if let Some(h) = &req.host {
        return Ok(h.clone());
    }
    let hosts = list_hosts(&req.flake, &eval_affecting(&req.nix_args))?;
    match hosts.as_slice() {
        [] => Err(BuildError::NoHosts {
            flake: req.flake.clone(),
        }),
        [one] => Ok(one.clone()),
        _ => Err(BuildError::WhichHost {
            flake: req.flake.clone(),
            hosts,
        }),
    }
}

fn eval_raw(expr: &str, extra: &[String]) -> Result<String, command::CommandError> {
    let mut args = vec!["eval".to_owned(), "--raw".to_owned(), expr.to_owned()];
    args.extend(extra.iter().cloned());
    crate::process::Cmd::new("nix", &args).cancellable().read()
}

/// Flake revision, dirtiness and the nixpkgs revision from its lock file.
pub fn flake_info(flake: &str, extra: &[String]) -> (manifest::FlakeInfo, Option<String>) {
    let mut args = vec![
        "flake".to_owned(),
        "metadata".to_owned(),
        "--json".to_owned(),
        flake.to_owned(),
    ];
    args.extend(extra.iter().cloned());
    let meta: serde_json::Value = crate::process::Cmd::new("nix", &args)
        .cancellable()
        .read()
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let (info, nixpkgs) = parse_flake_metadata(flake, &meta);
    let env = |k| std::env::var(k).ok();
    (
        with_app_env(
            info,
            env("BIFROST_FLAKE_REVISION"),
            env("BIFROST_FLAKE_DIRTY"),
        ),
        nixpkgs,
    )
}

/// The flake apps run bifrost on `path:<store copy of the flake>`, which has
/// no git metadata; they pass the flake's own `self.rev`/`self.dirtyRev` and
/// dirtiness in `BIFROST_FLAKE_REVISION` and `BIFROST_FLAKE_DIRTY` (`0`/`1`).
/// They fill in only what nix could not tell.
pub fn with_app_env(
    mut info: manifest::FlakeInfo,
    revision: Option<String>,
    dirty: Option<String>,
) -> manifest::FlakeInfo {
    if info.revision.is_none() {
        info.revision = revision.filter(|r| !r.is_empty());
    }
    if info.dirty.is_none() {
        info.dirty = match dirty.as_deref() {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        };
    }
    info
}

/// Read `nix flake metadata --json` (Nix 2.8 and current).
pub fn parse_flake_metadata(
    flake: &str,
    meta: &serde_json::Value,
) -> (manifest::FlakeInfo, Option<String>) {
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let locked_type = meta.pointer("/locked/type").and_then(|v| v.as_str());
    let revision = meta.get("revision").and_then(s);
    // Current Nix reports `dirtyRevision`; Nix 2.8 only omits `revision`.
    let dirty = match (locked_type, &revision, meta.get("dirtyRevision")) {
        (_, _, Some(_)) => Some(true),
        (Some("git"), Some(_), None) => Some(false),
        (Some("git"), None, None) => Some(true),
        (_, Some(_), None) => Some(false),
        _ => None,
    };
    let info = manifest::FlakeInfo {
        url: flake.to_owned(),
        locked_url: meta.get("url").and_then(s),
        revision,
        dirty,
        last_modified: meta.get("lastModified").and_then(|v| v.as_u64()),
    };
    let locks = &meta["locks"];
    let root = locks["root"].as_str().unwrap_or("root");
    let nixpkgs_node = locks["nodes"][root]["inputs"]["nixpkgs"]
        .as_str()
        .unwrap_or("nixpkgs");
    let nixpkgs = locks["nodes"][nixpkgs_node]["locked"]["rev"]
        .as_str()
        .map(str::to_owned);
    (info, nixpkgs)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Run a planned build: nix build, then placement, checksum and manifest.
/// Nothing in `OUT/2_raw` changes unless the build succeeded.
pub fn run(plan: &Plan, mut on_event: impl FnMut(Event)) -> Result<Report, BuildError> {
    cancel::install().map_err(|source| {
        BuildError::Command(command::CommandError::Spawn {
            cmd: "signal handler".into(),
            source,
        })
    })?;
    let started = Instant::now();
    output::precheck(&plan.out)?;
    let file_path = steps::file_path(plan, &mut on_event)?;
    let store_path = steps::nix_build(plan, &mut on_event)?;
    let from = steps::provenance(plan, &mut on_event);
    if cancel::requested() {
        return Err(BuildError::Interrupted(plan.out.clone()));
    }
    // Held until the manifest is written: one build places into OUT at a time.
    let output = output::open(&plan.out, crate::lock::DEFAULT_WAIT, &mut |l| {
        on_event(Event::Stage(l))
    })?;
    let dir = output.dir.clone();
    let to = steps::Placing {
        plan,
        store_path: &store_path,
        dir: &dir,
    };
    let artifact = match &file_path {
        Some(rel) => to.image(rel, &mut on_event)?,
        None => to.vm(&mut on_event)?,
    };
    let entry = steps::entry(
        plan,
        store_path,
        &artifact,
        from,
        manifest::rfc3339(now_secs()),
    );
    let name = plan.format.artifact_name();
    manifest::update(
        &dir,
        name,
        &artifact.sums_path,
        entry.clone(),
        &artifact.shifts,
    )?;
    Ok(Report {
        artifact: artifact.path,
        copy: artifact.copy,
        manifest: dir.join("manifest.json"),
        sums: dir.join("SHA256SUMS"),
        entry,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

/// `bin/run-<host>-vm` inside the VM derivation (nixpkgs' qemu-vm.nix names it so).
fn find_vm_runner(store_path: &Utf8Path) -> Result<String, BuildError> {
    let bin = store_path.join("bin");
    let mut runners: Vec<String> = std::fs::read_dir(&bin)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("run-") && n.ends_with("-vm"))
        .collect();
    runners.sort();
    runners
        .into_iter()
        .next()
        .map(|n| format!("bin/{n}"))
        .ok_or_else(|| BuildError::MissingArtifact {
            path: store_path.to_string(),
            what: "VM runner bin/run-*-vm".into(),
        })
}

/// The `out` path of the first result of `nix build --json`.
pub fn parse_build_json(stdout: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).ok()?;
    v.get(0)?
        .get("outputs")?
        .get("out")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
