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
    let loaded = load_state(&opts.state_path)?;
    let mut state = resume_or_start(plan, loaded, &opts.state_path)?;
    state.failed = None;
    save(&opts.state_path, &state)?;
    let total = plan.steps.len();
    for (index, step) in plan.steps.iter().enumerate() {
        let skip = |reason: String| Event::Skip {
            index,
            total,
            id: step.id.clone(),
            reason,
        };
        if state.is_done(&step.id) {
            progress(skip("done in an earlier run".into()));
            continue;
        }
        match probe(step, sys, opts.force) {
            Probed::Absent => {}
            Probed::Found(reason) => {
                record(&opts.state_path, &mut state, &step.id, Outcome::Found)?;
                progress(skip(reason));
                continue;
            }
            Probed::Conflict(path) => {
                state.failed = Some(format!("{}: already exists", step.id));
                save(&opts.state_path, &state)?;
                return Err(RunError::Conflict {
                    path,
                    state: opts.state_path.to_string(),
                });
            }
        }
        progress(Event::Start {
            index,
            total,
            id: step.id.clone(),
            title: step.title.clone(),
            command: step_command(step),
        });
        if let Err(cause) = run_action(&step.action, sys, secrets) {
            state.failed = Some(format!("{}: {cause}", step.id));
            save(&opts.state_path, &state)?;
            let f = failure(plan, &state, index, cause, &opts.state_path);
            return Err(RunError::StepFailed(Box::new(f)));
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

/// The state to run `plan` with: the `loaded` one when it records this very
/// plan (a resume), a fresh one when there is none; another plan's state is
/// never overwritten.
pub fn resume_or_start(
    plan: &Plan,
    loaded: Option<State>,
    state_path: &Utf8Path,
) -> Result<State, RunError> {
    let hash = plan_hash(plan);
    match loaded {
        Some(s) if s.plan_hash == hash => Ok(s),
        Some(_) => Err(RunError::PlanChanged {
            state: state_path.to_string(),
        }),
        None => Ok(State {
            version: 1,
            plan_hash: hash,
            host: plan.host.clone(),
            disk: plan.disk.clone(),
            done: Vec::new(),
            failed: None,
            finished: false,
        }),
    }
}

/// What a step's probe says before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probed {
    /// Not probed (a destructive step, or none to make), or not there: run it.
    Absent,
    /// Its result is there: skip it, for this reason.
    Found(String),
    /// Its result is there but this install did not make it (this path),
    /// and `--force` was not given: stop.
    Conflict(String),
}

/// Probe a step on the machine (never a destructive one: it runs again).
fn probe(step: &Step, sys: &mut dyn Machine, force: bool) -> Probed {
    match step.probe.as_ref().filter(|_| !step.destructive) {
        Some(p) => judge_probe(step, p, sys.probe(p), force),
        None => Probed::Absent,
    }
}

/// What finding (or not) `step`'s probe `p` means.
pub fn judge_probe(step: &Step, p: &Probe, found: bool, force: bool) -> Probed {
    match (found, step.conflict_if_present, force) {
        (false, _, _) => Probed::Absent,
        (true, false, _) => Probed::Found(p.to_string()),
        (true, true, true) => Probed::Found(format!("{p}; used as it is (--force)")),
        (true, true, false) => Probed::Conflict(match p {
            Probe::Subvolume { path } => path.to_string(),
            other => other.to_string(),
        }),
    }
}

/// Carry out one step's action; the failure's cause for people (never a secret).
fn run_action(action: &Action, sys: &mut dyn Machine, secrets: &Secrets) -> Result<(), String> {
    match action {
        Action::Run { argv, stdin } => match (*stdin, secrets.passphrase) {
            (Stdin::Passphrase, None) => {
                Err("no passphrase was given; run again and type it, or pass --key-file FILE".into())
            }
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
    }
}

/// The report of step `index` failing with `cause`, after the steps `state`
/// records as done: the undo commands of those that ran, in an order a
/// person can run them.
pub fn failure(
    plan: &Plan,
    state: &State,
    index: usize,
    cause: String,
    state_path: &Utf8Path,
) -> Failure {
    let step = &plan.steps[index];
    let ran: Vec<&Step> = state
        .done
        .iter()
        .filter(|d| d.outcome == Outcome::Ran)
        .filter_map(|d| plan.steps.iter().find(|s| s.id == d.id))
        .collect();
    Failure {
        index,
        total: plan.steps.len(),
        id: step.id.clone(),
        title: step.title.clone(),
        command: step_command(step),
        cause,
        done: state.done.iter().map(|d| d.id.clone()).collect(),
        undo: super::undo::commands(&ran),
        state: state_path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::plan::{KinoiteAccess, Mode};

    fn step(id: &str, argv: &[&str], undo: Option<&[&str]>) -> Step {
        let words = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Step {
            id: id.into(),
            title: format!("do {id}"),
            action: Action::Run {
                argv: words(argv),
                stdin: Stdin::Null,
            },
            writes: vec![],
            kinoite: KinoiteAccess::None,
            probe: None,
            destructive: false,
            conflict_if_present: false,
            undo: undo.map(words),
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            host: "h".into(),
            flake: "/f".into(),
            disk: "/dev/vda".into(),
            mode: Mode::Fresh,
            target: "/mnt".into(),
            esp_device: "/dev/vda1".into(),
            luks_device: "/dev/vda2".into(),
            mapper: "/dev/mapper/pool".into(),
            kinoite_boot_device: None,
            flake_copy: None,
            flake_copy_owner: None,
            storage_only: true,
            steps,
        }
    }

    fn three() -> Plan {
        plan(vec![
            step("mkdir", &["mkdir", "/a"], Some(&["rmdir", "/a"])),
            step(
                "open",
                &["cryptsetup", "open"],
                Some(&["cryptsetup", "close"]),
            ),
            step("format", &["mkfs.btrfs", "/dev/mapper/pool"], None),
        ])
    }

    fn done(id: &str, outcome: Outcome) -> DoneStep {
        DoneStep {
            id: id.into(),
            outcome,
        }
    }

    #[test]
    fn only_this_very_plan_resumes_its_state() {
        let p = three();
        let path = Utf8Path::new("/run/s.json");
        let fresh = resume_or_start(&p, None, path).unwrap();
        assert_eq!(
            (fresh.plan_hash.as_str(), fresh.done.len()),
            (plan_hash(&p).as_str(), 0)
        );
        assert_eq!(
            (fresh.host.as_str(), fresh.disk.as_str()),
            ("h", "/dev/vda")
        );
        let mut resumed = fresh.clone();
        resumed.done.push(done("mkdir", Outcome::Ran));
        assert_eq!(
            resume_or_start(&p, Some(resumed.clone()), path).unwrap(),
            resumed
        );
        let mut other = three();
        other.steps.pop();
        let err = resume_or_start(&other, Some(resumed), path).unwrap_err();
        assert!(matches!(err, RunError::PlanChanged { state } if state == "/run/s.json"));
    }

    #[test]
    fn a_probe_skips_a_step_or_stops_at_a_conflict() {
        let mut s = step("subvol", &["btrfs", "subvolume", "create", "/p/@"], None);
        let p = Probe::Subvolume {
            path: "/p/@".into(),
        };
        assert_eq!(judge_probe(&s, &p, false, false), Probed::Absent);
        assert_eq!(
            judge_probe(&s, &p, true, false),
            Probed::Found("subvolume /p/@ exists".into())
        );
        s.conflict_if_present = true;
        assert_eq!(
            judge_probe(&s, &p, true, false),
            Probed::Conflict("/p/@".into())
        );
        assert_eq!(
            judge_probe(&s, &p, true, true),
            Probed::Found("subvolume /p/@ exists; used as it is (--force)".into())
        );
        assert_eq!(judge_probe(&s, &p, false, false), Probed::Absent);
        let m = Probe::Mounted {
            path: "/mnt".into(),
        };
        assert_eq!(
            judge_probe(&s, &m, true, false),
            Probed::Conflict("/mnt is a mount point".into())
        );
    }

    #[test]
    fn a_failure_names_the_step_and_undoes_only_what_ran() {
        let p = three();
        let mut st = resume_or_start(&p, None, Utf8Path::new("/s")).unwrap();
        st.done = vec![done("mkdir", Outcome::Found), done("open", Outcome::Ran)];
        let f = failure(
            &p,
            &st,
            2,
            "exited with status 1".into(),
            Utf8Path::new("/s"),
        );
        assert_eq!((f.index, f.total, f.id.as_str()), (2, 3, "format"));
        assert_eq!(f.title, "do format");
        assert_eq!(f.command, "mkfs.btrfs /dev/mapper/pool");
        assert_eq!(f.done, ["mkdir", "open"]);
        // mkdir was found, not made: only the step that ran is undone.
        assert_eq!(f.undo, ["cryptsetup close"]);
        assert_eq!(f.state, "/s");
    }
}
