//! One `bifrost install`, from the command line's request to its last
//! message: what to install, the plan, the checks before anything changes,
//! the confirmation, the secrets the remaining steps need, the run.
//!
//! The terminal sits behind [`Console`], the installer system behind
//! [`Installer`]; what to ask and what to allow are pure functions of the
//! plan and the state of an earlier run ([`needs`], [`allowed_mounts`],
//! [`finished`]), so a resumed install asks only for what its remaining
//! steps use.

use super::plan::{self, Action, Mode, Plan, PlanRequest, Stdin, WriteKind};
use super::preflight::PreflightError;
use super::refind_bin::{self, Choice};
use super::run::{self, Event, Machine, RunOptions, Secrets, State};
use super::secret::{Secret, SecretError};
use super::source::{self, Carried};
use super::users::{self, UsersError};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;

/// Scratch mount points on the installer (the pool's top level, Kinoite's
/// `/boot`); `/run` is cleared at boot, as are the mounts it holds.
pub const WORK_DIR: &str = "/run/bifrost";

/// How `--plan` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
}

/// What the person asked for, as the command line says it.
#[derive(Debug, Clone)]
pub struct Request {
    pub host: Option<String>,
    pub flake: Option<String>,
    pub settings: Option<Utf8PathBuf>,
    pub disk: Utf8PathBuf,
    pub mode: Mode,
    /// Print the plan this way and change nothing.
    pub plan_only: Option<PlanFormat>,
    /// Go ahead without showing the plan and asking for the disk name.
    pub yes: bool,
    pub key_file: Option<Utf8PathBuf>,
    pub force: bool,
    pub target: Utf8PathBuf,
    pub esp_device: Option<Utf8PathBuf>,
    pub luks_device: Option<Utf8PathBuf>,
    pub kinoite_boot_device: Option<Utf8PathBuf>,
    pub refind_efi: Option<Utf8PathBuf>,
    pub storage_only: bool,
    /// Progress file (default: [`run::default_state_path`]).
    pub state: Option<Utf8PathBuf>,
    /// `USER=FILE` arguments.
    pub password_files: Vec<String>,
    pub nvram: bool,
    pub sb_keys: Option<Utf8PathBuf>,
}

/// The terminal: where text goes and where answers come from.
pub trait Console {
    /// Standard output: the plan, the confirmation question, the result.
    fn out(&mut self, text: &str);
    /// Standard error: progress and notes.
    fn err(&mut self, text: &str);
    /// Whether a person can answer (standard input is a terminal).
    fn interactive(&self) -> bool;
    /// One line typed after `prompt`; `None` when nothing could be read.
    fn ask(&mut self, prompt: &str) -> Option<String>;
    /// A secret typed without echo; with `confirm`, typed twice.
    fn secret(&mut self, what: &str, confirm: bool) -> Result<Secret, SecretError>;
}

/// The installer system, as far as the session reads or changes it.
pub trait Installer {
    /// What bifrost's installer ISO carries (its environment).
    fn carried(&self) -> Carried;
    /// The rEFInd binary: `given`, or the first at rEFInd's usual places.
    fn find_refind(&self, given: Option<&Utf8Path>) -> Choice;
    /// Every program the plan runs is there, and we are root.
    fn check_tools(&mut self, plan: &Plan) -> Result<(), PreflightError>;
    /// The disk is free (mounts at or under `allowed` are this install's),
    /// dual-boot partitions are its own, the firmware's boot menu is reachable.
    fn check_disk(&mut self, plan: &Plan, allowed: &[Utf8PathBuf]) -> Result<(), PreflightError>;
    /// What runs the steps.
    fn machine(&mut self) -> &mut dyn Machine;
}

/// Errors of this module: each step's own error, as it words it.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Settings(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error("no terminal to confirm on; review the plan with --plan, then pass --yes")]
    NoTerminal,
}

/// How a session ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// `--plan`: printed, nothing changed.
    Planned,
    /// Every step is done.
    Installed,
    /// The person did not confirm: nothing changed.
    Aborted,
}

/// What the steps still to run need from the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// The LUKS passphrase, and how to ask for it.
    pub passphrase: Option<PassphrasePrompt>,
    /// Users whose password hash is still to be written.
    pub users: Vec<String>,
    /// The `--sb-keys` folder is still to be copied from.
    pub sb_keys: bool,
}

/// Which passphrase is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassphrasePrompt {
    /// For a container this install creates: typed twice.
    New,
    /// For a container that exists (Kinoite's, or one an earlier run made).
    Existing,
}

impl PassphrasePrompt {
    /// The prompt and whether it is asked twice.
    pub fn text(self) -> (&'static str, bool) {
        match self {
            PassphrasePrompt::New => ("New LUKS2 passphrase", true),
            PassphrasePrompt::Existing => ("Passphrase of the existing LUKS2 pool", false),
        }
    }
}

/// The steps an earlier run of this plan did not record as done.
pub fn pending<'a>(plan: &'a Plan, state: Option<&State>) -> Vec<&'a plan::Step> {
    let done = |id: &str| state.is_some_and(|s| s.done.iter().any(|d| d.id == id));
    plan.steps.iter().filter(|s| !done(&s.id)).collect()
}

/// What `steps` (the pending ones) need: the passphrase only for a step
/// that reads it on stdin, a new one only while the container is still to
/// be made; a password only for a hash still to be written.
pub fn needs(steps: &[&plan::Step]) -> Needs {
    let reads_passphrase = steps.iter().any(|s| {
        matches!(
            s.action,
            Action::Run {
                stdin: Stdin::Passphrase,
                ..
            }
        )
    });
    let makes_container = steps
        .iter()
        .any(|s| s.writes.iter().any(|w| w.kind == WriteKind::LuksHeader));
    Needs {
        passphrase: match (reads_passphrase, makes_container) {
            (false, _) => None,
            (true, true) => Some(PassphrasePrompt::New),
            (true, false) => Some(PassphrasePrompt::Existing),
        },
        users: steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::WritePasswordHash { user, .. } => Some(user.clone()),
                _ => None,
            })
            .collect(),
        sb_keys: steps
            .iter()
            .any(|s| s.writes.iter().any(|w| w.kind == WriteKind::Keys)),
    }
}

/// Mounts on the disk that the disk check accepts: a resumed run finds its
/// own from last time (under the target and the work folder), a new one none.
pub fn allowed_mounts(resuming: bool, target: &Utf8Path) -> Vec<Utf8PathBuf> {
    if resuming {
        vec![target.to_path_buf(), WORK_DIR.into()]
    } else {
        Vec::new()
    }
}

/// `path` made absolute against the current folder: the steps may run from
/// a resumed install started elsewhere.
fn absolute(path: &Utf8Path) -> Utf8PathBuf {
    std::path::absolute(path)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| path.to_path_buf())
}

/// The last lines: where things are and what to do next.
pub fn finished(plan: &Plan, state_path: &Utf8Path) -> String {
    if plan.storage_only {
        return format!(
            "storage ready: {} is open and mounted under {} (progress: {state_path})\n",
            plan.mapper, plan.target
        );
    }
    let mut out = String::new();
    if let (Some(f), Some(o)) = (&plan.flake_copy, &plan.flake_copy_owner) {
        out.push_str(&format!(
            "your flake is in {f} on the installed system (owned by {}, uid {}): \
             update and rebuild there with `nix flake update` and \
             `sudo nixos-rebuild switch --flake {f}#{}`\n",
            o.user, o.uid, plan.host
        ));
    }
    out.push_str(&format!(
        "installed {} on {} (progress: {state_path})\n\
         next: umount -R {} && cryptsetup close {} && reboot; log in as one of the users with the password you gave\n",
        plan.host,
        plan.disk,
        plan.target,
        plan.mapper.file_name().unwrap_or("cryptroot")
    ));
    out
}

/// One progress event as the lines printed for it.
pub fn progress_line(ev: &Event) -> Option<String> {
    match ev {
        Event::Start {
            index,
            total,
            title,
            command,
            ..
        } => {
            let mut line = format!("[{}/{total}] {title}\n", index + 1);
            if !command.is_empty() {
                line.push_str(&format!("        $ {command}\n"));
            }
            Some(line)
        }
        Event::Skip {
            index,
            total,
            id,
            reason,
        } => Some(format!("[{}/{total}] skip {id}: {reason}\n", index + 1)),
        Event::Done { .. } => None,
    }
}

/// The plan for `req`, with the source announced unless JSON is printed.
fn make_plan(
    req: &Request,
    io: &mut dyn Console,
    sys: &dyn Installer,
) -> Result<(Plan, crate::spec::Settings, Choice), SessionError> {
    let source = source::resolve(
        req.host.as_deref(),
        req.flake.as_deref(),
        req.settings.as_ref(),
        &sys.carried(),
    )?;
    if req.plan_only != Some(PlanFormat::Json) {
        io.out(&source::announce(&source));
    }
    let settings = crate::spec::load_file(&source.settings)?;
    let refind = sys.find_refind(req.refind_efi.as_deref());
    // Planning needs no binary: a plan names the usual one.
    let refind_efi = refind
        .path()
        .or_else(|| req.plan_only.map(|_| Utf8Path::new(refind_bin::USUAL[0])))
        .map(Into::into);
    let preq = PlanRequest {
        host: source.host,
        flake: source.flake,
        disk: req.disk.clone(),
        mode: req.mode,
        target: req.target.clone(),
        work_dir: WORK_DIR.into(),
        esp_device: req.esp_device.clone(),
        luks_device: req.luks_device.clone(),
        kinoite_boot_device: req.kinoite_boot_device.clone(),
        refind_efi,
        storage_only: req.storage_only,
        settings_file: absolute(&source.settings),
        nvram: req.nvram,
        sb_keys: req.sb_keys.as_deref().map(absolute),
    };
    let plan = plan::plan(&settings, &preq)?;
    Ok((plan, settings, refind))
}

/// Show the plan and have the disk's name typed; `false`: not confirmed.
fn confirm(
    io: &mut dyn Console,
    plan: &Plan,
    resumed: Option<(&State, &Utf8Path)>,
) -> Result<bool, SessionError> {
    io.out(&plan::render(plan));
    if let Some((s, path)) = resumed {
        io.out(&format!(
            "\nresuming: {} of {} steps are done ({path})\n",
            s.done.len(),
            plan.steps.len()
        ));
    }
    if !io.interactive() {
        return Err(SessionError::NoTerminal);
    }
    let answer = io.ask(&format!(
        "\nType the disk name ({}) to go ahead: ",
        plan.disk
    ));
    Ok(answer.is_some_and(|a| a.trim() == plan.disk.as_str()))
}

/// The passphrase and the users' password hashes that `needs` names.
fn secrets(
    req: &Request,
    needs: &Needs,
    settings: &crate::spec::Settings,
    io: &mut dyn Console,
) -> Result<(Option<Secret>, BTreeMap<String, Secret>), SessionError> {
    let passphrase = match (needs.passphrase, &req.key_file) {
        (None, _) => None,
        (Some(_), Some(f)) => Some(Secret::from_key_file(f)?),
        (Some(p), None) => {
            let (what, twice) = p.text();
            Some(io.secret(what, twice)?)
        }
    };
    let files = req
        .password_files
        .iter()
        .map(|f| users::parse_file_arg(f))
        .collect::<Result<Vec<_>, _>>()?;
    let hashes = users::collect(settings, &files, &needs.users, &mut |what| {
        io.secret(what, true)
    })?;
    Ok((passphrase, hashes))
}

/// Run one `bifrost install`.
pub fn run(
    req: &Request,
    io: &mut dyn Console,
    sys: &mut dyn Installer,
) -> Result<Finished, SessionError> {
    let (plan, settings, refind) = make_plan(req, io, sys)?;
    if let Some(format) = req.plan_only {
        if !req.storage_only {
            io.err(&format!("{}\n", refind.describe()));
        }
        match format {
            PlanFormat::Json => io.out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&plan).expect("plans serialize")
            )),
            PlanFormat::Text => io.out(&plan::render(&plan)),
        }
        return Ok(Finished::Planned);
    }

    sys.check_tools(&plan)?;
    let state_path = req
        .state
        .clone()
        .unwrap_or_else(|| run::default_state_path(&req.disk));
    let state = run::load_state(&state_path)?.filter(|s| run::resumes(&plan, Some(s)));
    let needs = needs(&pending(&plan, state.as_ref()));
    // Late in the run, after nixos-install, the keys are copied: check the
    // folder now, before anything changes.
    if let Some(dir) = req.sb_keys.as_deref().filter(|_| needs.sb_keys) {
        let files = super::sb_keys::source_files(&settings);
        super::preflight::check_sb_keys(&absolute(dir), &files)?;
    }
    sys.check_disk(&plan, &allowed_mounts(state.is_some(), &req.target))?;

    if !req.yes && !confirm(io, &plan, state.as_ref().map(|s| (s, state_path.as_path())))? {
        io.err("aborted: nothing was changed\n");
        return Ok(Finished::Aborted);
    }
    let (passphrase, hashes) = secrets(req, &needs, &settings, io)?;
    let opts = RunOptions {
        state_path: state_path.clone(),
        force: req.force,
    };
    let secrets = Secrets {
        passphrase: passphrase.as_ref(),
        password_hashes: &hashes,
    };
    run::execute_with(&plan, sys.machine(), &secrets, &opts, &mut |ev| {
        if let Some(line) = progress_line(&ev) {
            io.err(&line);
        }
    })?;
    io.out(&finished(&plan, &state_path));
    Ok(Finished::Installed)
}

/// The installer system this process runs on.
pub struct Live {
    machine: run::RealMachine,
}

impl Live {
    pub fn new() -> Live {
        Live {
            machine: run::RealMachine,
        }
    }
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

impl Installer for Live {
    fn carried(&self) -> Carried {
        Carried::from_env()
    }

    fn find_refind(&self, given: Option<&Utf8Path>) -> Choice {
        refind_bin::find(given)
    }

    fn check_tools(&mut self, plan: &Plan) -> Result<(), PreflightError> {
        super::preflight::check_programs(plan)?;
        super::preflight::check_root()
    }

    fn check_disk(&mut self, plan: &Plan, allowed: &[Utf8PathBuf]) -> Result<(), PreflightError> {
        super::preflight::check_disk(plan, allowed)?;
        super::preflight::check_nvram(plan)
    }

    fn machine(&mut self) -> &mut dyn Machine {
        &mut self.machine
    }
}

#[cfg(test)]
mod tests;
