//! Execute a plan: step by step, recording progress in a state file so that
//! a run stopped by a failure resumes where it stopped.
//!
//! Processes run through `duct` in [`RealMachine`], the one place this module
//! touches the machine; tests drive [`execute`] with a fake [`Machine`].

use super::plan::{command_line, Action, Plan, Probe, Stdin, Step};
use super::preflight::kernel_name;
use super::secret::Secret;
use crate::fsutil;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// What the runner needs from the machine.
pub trait Machine {
    /// Run `argv`; `stdin` is fed to the program's standard input. Returns a
    /// description of the failure (never containing `stdin`).
    fn run(&mut self, argv: &[String], stdin: Option<&Secret>) -> Result<(), String>;
    /// Is the probed state already there?
    fn probe(&mut self, probe: &Probe) -> bool;
    /// Wait until every path exists.
    fn wait_for(&mut self, paths: &[Utf8PathBuf], timeout: Duration) -> Result<(), String>;
    /// Write a password hash to `path`, root-only (never containing the hash
    /// in the error).
    fn write_password_hash(&mut self, path: &Utf8Path, hash: &Secret) -> Result<(), String>;
}

/// The real machine: processes through duct, probes through `/proc` and `/dev`.
pub struct RealMachine;

fn is_mounted(path: &Utf8Path) -> bool {
    let real = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| Utf8PathBuf::from_path_buf(p).ok())
        .unwrap_or_else(|| path.to_path_buf());
    crate::mounts::read(Utf8Path::new("/"))
        .map(|mounts| mounts.iter().any(|m| m.mount_point == real.as_str()))
        .unwrap_or(false)
}

impl Machine for RealMachine {
    fn run(&mut self, argv: &[String], stdin: Option<&Secret>) -> Result<(), String> {
        // The plan names bifrost by name; run this very binary.
        let program = if argv[0] == "bifrost" {
            std::env::current_exe()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "bifrost".into())
        } else {
            argv[0].clone()
        };
        // Its messages go straight to this terminal; a secret goes on stdin
        // through a pipe written from the wiped buffer, no other copy.
        let mut cmd = crate::process::Cmd::new(&program, &argv[1..]).inherit_output();
        if let Some(secret) = stdin {
            cmd = cmd.secret_stdin(secret);
        }
        match cmd.output() {
            Ok(out) if out.success() => Ok(()),
            Ok(out) => Err(match out.code {
                Some(c) => format!("exited with status {c} (its messages are above)"),
                None => "was killed by a signal".into(),
            }),
            Err(e) => Err(format!("could not start {}: {}", argv[0], e.into_io())),
        }
    }

    fn probe(&mut self, probe: &Probe) -> bool {
        match probe {
            Probe::MapperOpen { name, device } => {
                let (Some(dm), Some(part)) = (
                    kernel_name(&Utf8Path::new("/dev/mapper").join(name)),
                    kernel_name(device),
                ) else {
                    return false;
                };
                Utf8Path::new("/sys/class/block")
                    .join(dm)
                    .join("slaves")
                    .join(part)
                    .exists()
            }
            Probe::Mounted { path } => is_mounted(path),
            Probe::NotMounted { path } => !is_mounted(path),
            Probe::Subvolume { path } => {
                use std::os::unix::fs::MetadataExt;
                // The root directory of every btrfs subvolume has inode 256.
                std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.ino() == 256)
            }
        }
    }

    fn write_password_hash(&mut self, path: &Utf8Path, hash: &Secret) -> Result<(), String> {
        super::users::write_hash(path, hash).map_err(|e| e.to_string())
    }

    fn wait_for(&mut self, paths: &[Utf8PathBuf], timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let missing: Vec<&str> = paths
                .iter()
                .filter(|p| !p.exists())
                .map(|p| p.as_str())
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{} did not appear within {} s (try `partprobe`, or `udevadm settle`)",
                    missing.join(", "),
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// How a finished step was finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The step's command ran and succeeded.
    Ran,
    /// Its probe found the result already there.
    Found,
}

/// One finished step in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoneStep {
    pub id: String,
    pub outcome: Outcome,
}

/// Progress of one install, kept in the state file. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub version: u32,
    /// SHA-256 of the plan; a different plan never resumes this state.
    pub plan_hash: String,
    pub host: String,
    pub disk: Utf8PathBuf,
    pub done: Vec<DoneStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    #[serde(default)]
    pub finished: bool,
}

impl State {
    fn is_done(&self, id: &str) -> bool {
        self.done.iter().any(|d| d.id == id)
    }
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    StepFailed(Box<Failure>),
    #[error("{path} already exists and this install did not create it (another system's, or an earlier install's)\n  nothing more was changed; to install into it anyway, keeping its contents, run again with --force\n  state: {state}")]
    Conflict { path: String, state: String },
    #[error("{state} records an install with a different plan (other settings, disk or flags)\n  to start over, remove it: rm {state}")]
    PlanChanged { state: String },
    #[error("{path}: unreadable state file: {message}\n  remove it to start over")]
    BadState { path: String, message: String },
    #[error(transparent)]
    Write(#[from] fsutil::FsError),
}

/// Everything a person needs after a failed step.
#[derive(Debug)]
pub struct Failure {
    pub index: usize,
    pub total: usize,
    pub id: String,
    pub title: String,
    pub command: String,
    pub cause: String,
    pub done: Vec<String>,
    pub undo: Vec<String>,
    pub state: Utf8PathBuf,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "step {}/{} [{}] failed: {}",
            self.index + 1,
            self.total,
            self.id,
            self.title
        )?;
        if !self.command.is_empty() {
            writeln!(f, "  command: {}", self.command)?;
        }
        writeln!(f, "  cause: {}", self.cause)?;
        if self.done.is_empty() {
            writeln!(f, "  done so far: nothing")?;
        } else {
            writeln!(f, "  done so far: {}", self.done.join(", "))?;
        }
        writeln!(f, "  progress is recorded in {}", self.state)?;
        writeln!(
            f,
            "  to resume: fix the cause and run the same `bifrost install` command again; finished steps are skipped"
        )?;
        if self.undo.is_empty() {
            write!(f, "  to undo: nothing to undo")
        } else {
            writeln!(f, "  to undo instead, run in this order:")?;
            for (i, u) in self.undo.iter().enumerate() {
                if i > 0 {
                    writeln!(f)?;
                }
                write!(f, "    {u}")?;
            }
            write!(f, "\n    rm {}", self.state)
        }
    }
}

/// Progress reports for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Start {
        index: usize,
        total: usize,
        id: String,
        title: String,
        command: String,
    },
    Skip {
        index: usize,
        total: usize,
        id: String,
        reason: String,
    },
    Done {
        index: usize,
        total: usize,
        id: String,
    },
}

/// SHA-256 of the plan as JSON.
pub fn plan_hash(plan: &Plan) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(plan).expect("plans serialize"),
    ))
}

/// The default state file for a disk: `/run/bifrost/install-<disk>.json`
/// (`/run` is cleared at boot, as are the mappings and mounts it describes).
pub fn default_state_path(disk: &Utf8Path) -> Utf8PathBuf {
    let name: String = disk
        .as_str()
        .trim_start_matches("/dev/")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("/run/bifrost/install-{name}.json").into()
}

/// Read the state file; `None` when there is none.
pub fn load_state(path: &Utf8Path) -> Result<Option<State>, RunError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| RunError::BadState {
                path: path.to_string(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RunError::BadState {
            path: path.to_string(),
            message: e.to_string(),
        }),
    }
}

/// Whether `state` belongs to this very plan (a resume).
pub fn resumes(plan: &Plan, state: Option<&State>) -> bool {
    state.is_some_and(|s| s.plan_hash == plan_hash(plan))
}

fn save(path: &Utf8Path, state: &State) -> Result<(), RunError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| {
            fsutil::FsError::Io(crate::fsutil::IoError::new(
                dir.to_string(),
                "create folder",
                source,
            ))
        })?;
    }
    let mut bytes = serde_json::to_vec_pretty(state).expect("state serializes");
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes)?;
    Ok(())
}

/// Mark step `id` finished, on disk before anything else happens.
fn record(path: &Utf8Path, state: &mut State, id: &str, outcome: Outcome) -> Result<(), RunError> {
    state.done.push(DoneStep {
        id: id.to_string(),
        outcome,
    });
    save(path, state)
}

fn step_command(step: &Step) -> String {
    match &step.action {
        Action::Run { argv, .. } => command_line(argv),
        Action::WaitFor { .. } | Action::WritePasswordHash { .. } => String::new(),
    }
}

/// Everything secret a run may need, held in wiped memory.
#[derive(Debug)]
pub struct Secrets<'a> {
    /// The LUKS passphrase; `None` when no step still to run reads it.
    pub passphrase: Option<&'a Secret>,
    /// Password hash of each user, by name.
    pub password_hashes: &'a std::collections::BTreeMap<String, Secret>,
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub state_path: Utf8PathBuf,
    /// Use subvolumes that already exist instead of refusing.
    pub force: bool,
}

/// Run the plan's steps in order, skipping those an earlier run finished or
/// whose probe finds them done. Stops at the first failure.
pub fn execute(
    plan: &Plan,
    sys: &mut dyn Machine,
    secret: &Secret,
    opts: &RunOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<State, RunError> {
    let none = std::collections::BTreeMap::new();
    let secrets = Secrets {
        passphrase: Some(secret),
        password_hashes: &none,
    };
    execute_with(plan, sys, &secrets, opts, progress)
}

/// [`execute`] with the users' password hashes for the steps that store them.
pub fn execute_with(
    plan: &Plan,
    sys: &mut dyn Machine,
    secrets: &Secrets,
    opts: &RunOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<State, RunError> {
    let hash = plan_hash(plan);
    let state_str = opts.state_path.to_string();
    let mut state = match load_state(&opts.state_path)? {
        Some(s) if s.plan_hash == hash => s,
        Some(_) => return Err(RunError::PlanChanged { state: state_str }),
        None => State {
            version: 1,
            plan_hash: hash,
            host: plan.host.clone(),
            disk: plan.disk.clone(),
            done: Vec::new(),
            failed: None,
            finished: false,
        },
    };
    state.failed = None;
    save(&opts.state_path, &state)?;
    let total = plan.steps.len();
    for (index, step) in plan.steps.iter().enumerate() {
        if state.is_done(&step.id) {
            progress(Event::Skip {
                index,
                total,
                id: step.id.clone(),
                reason: "done in an earlier run".into(),
            });
            continue;
        }
        if let Some(p) = step.probe.as_ref().filter(|_| !step.destructive) {
            if sys.probe(p) {
                if step.conflict_if_present && !opts.force {
                    let path = match p {
                        Probe::Subvolume { path } => path.to_string(),
                        other => other.to_string(),
                    };
                    state.failed = Some(format!("{}: already exists", step.id));
                    save(&opts.state_path, &state)?;
                    return Err(RunError::Conflict {
                        path,
                        state: state_str,
                    });
                }
                let reason = if step.conflict_if_present {
                    format!("{p}; used as it is (--force)")
                } else {
                    format!("{p}")
                };
                record(&opts.state_path, &mut state, &step.id, Outcome::Found)?;
                progress(Event::Skip {
                    index,
                    total,
                    id: step.id.clone(),
                    reason,
                });
                continue;
            }
        }
        progress(Event::Start {
            index,
            total,
            id: step.id.clone(),
            title: step.title.clone(),
            command: step_command(step),
        });
        let result = match &step.action {
            Action::Run { argv, stdin } => match (*stdin, secrets.passphrase) {
                (Stdin::Passphrase, None) => Err(
                    "no passphrase was given; run again and type it, or pass --key-file FILE"
                        .into(),
                ),
                (Stdin::Passphrase, Some(p)) => sys.run(argv, Some(p)),
                (Stdin::Null, _) => sys.run(argv, None),
            },
            Action::WaitFor {
                paths,
                timeout_secs,
            } => sys.wait_for(paths, Duration::from_secs(u64::from(*timeout_secs))),
            Action::WritePasswordHash { user, path } => match secrets.password_hashes.get(user) {
                Some(h) => sys.write_password_hash(path, h),
                None => Err(format!(
                    "no password was given for {user}; run again and type it, or pass --password-file {user}=FILE"
                )),
            },
        };
        if let Err(cause) = result {
            state.failed = Some(format!("{}: {cause}", step.id));
            save(&opts.state_path, &state)?;
            let ran: Vec<&Step> = state
                .done
                .iter()
                .filter(|d| d.outcome == Outcome::Ran)
                .filter_map(|d| plan.steps.iter().find(|s| s.id == d.id))
                .collect();
            let undo = super::undo::commands(&ran);
            return Err(RunError::StepFailed(Box::new(Failure {
                index,
                total,
                id: step.id.clone(),
                title: step.title.clone(),
                command: step_command(step),
                cause,
                done: state.done.iter().map(|d| d.id.clone()).collect(),
                undo,
                state: opts.state_path.clone(),
            })));
        }
        record(&opts.state_path, &mut state, &step.id, Outcome::Ran)?;
        progress(Event::Done {
            index,
            total,
            id: step.id.clone(),
        });
    }
    state.finished = true;
    save(&opts.state_path, &state)?;
    Ok(state)
}
