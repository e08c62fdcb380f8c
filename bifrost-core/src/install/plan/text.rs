//! A plan as text for people: every step with its exact command, what it
//! writes and whose data that is, how it reaches Kinoite, when it is skipped.

use super::{Action, DataOwner, KinoiteAccess, Mode, Plan, Stdin, Step, Write, WriteKind};
use std::fmt::Write as _;

/// A command line as a shell would read it.
pub fn command_line(argv: &[String]) -> String {
    crate::shell::line(argv.iter().map(String::as_str))
}

fn data_name(d: DataOwner) -> &'static str {
    match d {
        DataOwner::Installer => "installer",
        DataOwner::Disk => "disk",
        DataOwner::Esp => "ESP",
        DataOwner::Nixos => "NixOS",
        DataOwner::Shared => "shared",
        DataOwner::Kinoite => "Kinoite",
    }
}

fn kind_name(k: WriteKind) -> &'static str {
    match k {
        WriteKind::PartitionTable => "partition table",
        WriteKind::LuksHeader => "LUKS2 header",
        WriteKind::Filesystem => "file system",
        WriteKind::Subvolume => "subvolume",
        WriteKind::Directory => "directory",
        WriteKind::Files => "files",
        WriteKind::PasswordHash => "password hash (mode 0600)",
        WriteKind::Keys => "signing keys (private 0600, folder 0700)",
    }
}

/// The plan as text for people: every step with its exact command.
pub fn render(plan: &Plan) -> String {
    let mut out = header(plan);
    for (i, s) in plan.steps.iter().enumerate() {
        out.push_str(&step_text(i + 1, s));
    }
    out
}

/// What is installed where, the devices, and what is left out.
fn header(plan: &Plan) -> String {
    let mut out = format!("bifrost install plan: {}\n", what(plan));
    let _ = writeln!(
        out,
        "  ESP {}, LUKS2 {} opened as {}, target {}",
        plan.esp_device, plan.luks_device, plan.mapper, plan.target
    );
    if plan.storage_only {
        out.push_str("  storage only: nixos-install and the ESP install are left out\n");
    }
    out
}

fn what(plan: &Plan) -> String {
    match plan.mode {
        Mode::Fresh => format!(
            "fresh install of {} on {} — ERASES EVERYTHING on {}",
            plan.host, plan.disk, plan.disk
        ),
        Mode::DualBoot => format!(
            "install of {} beside Kinoite on {} (Kinoite's data is left as it is; @shared is created only if missing)",
            plan.host, plan.disk
        ),
    }
}

/// Step number `n`: its title line, then its details indented.
fn step_text(n: usize, s: &Step) -> String {
    let mut out = format!("\n{n:>2}. {}  [{}]\n", s.title, s.id);
    let details = action_lines(&s.action)
        .into_iter()
        .chain(s.writes.iter().map(write_line))
        .chain(kinoite_line(s.kinoite).map(str::to_owned))
        .chain(probe_line(s))
        .chain(
            s.destructive
                .then(|| "destructive: runs again on resume unless recorded done".to_owned()),
        );
    for line in details {
        let _ = writeln!(out, "    {line}");
    }
    out
}

fn action_lines(action: &Action) -> Vec<String> {
    match action {
        Action::Run { argv, stdin } => {
            let mut lines = vec![format!("$ {}", command_line(argv))];
            if *stdin == Stdin::Passphrase {
                lines.push("stdin: the passphrase (never on the command line)".into());
            }
            lines
        }
        Action::WaitFor {
            paths,
            timeout_secs,
        } => {
            let list: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
            vec![format!(
                "wait up to {timeout_secs} s for {}",
                list.join(", ")
            )]
        }
        Action::WritePasswordHash { user, path } => vec![format!(
            "write {path}: the SHA-512 crypt hash of {user}'s password, from memory (asked for before the first step)"
        )],
    }
}

fn write_line(w: &Write) -> String {
    format!(
        "writes: {} {} ({} data)",
        kind_name(w.kind),
        w.path,
        data_name(w.data)
    )
}

fn kinoite_line(k: KinoiteAccess) -> Option<&'static str> {
    match k {
        KinoiteAccess::None => None,
        KinoiteAccess::Pool => Some("kinoite: uses the shared pool, writes none of Kinoite's data"),
        KinoiteAccess::ReadOnly => Some("kinoite: reads Kinoite's or shared data, read-only"),
    }
}

/// When the step is skipped, or refused as a conflict.
fn probe_line(s: &Step) -> Option<String> {
    let p = s.probe.as_ref()?;
    Some(if s.conflict_if_present {
        format!("refused if: {p} and this install did not make it (--force uses it)")
    } else {
        format!("skipped if: {p}")
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Probe, WriteKind};
    use super::*;

    fn step(action: Action) -> Step {
        Step::new("pool-subvol-nix", "create @nix", action)
    }

    fn run(argv: &[&str], stdin: Stdin) -> Action {
        Action::Run {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            stdin,
        }
    }

    #[test]
    fn a_bare_step_is_its_title_and_command() {
        let s = step(run(
            &["btrfs", "subvolume", "create", "/mnt/top/@nix"],
            Stdin::Null,
        ));
        assert_eq!(
            step_text(3, &s),
            "\n 3. create @nix  [pool-subvol-nix]\n    $ btrfs subvolume create /mnt/top/@nix\n"
        );
    }

    #[test]
    fn every_detail_has_its_line_in_order() {
        let mut s = step(run(&["cryptsetup", "open", "/dev/x"], Stdin::Passphrase));
        s.writes.push(Write {
            kind: WriteKind::Subvolume,
            path: "/mnt/top/@nix".into(),
            data: DataOwner::Nixos,
        });
        s.kinoite = KinoiteAccess::Pool;
        s.probe = Some(Probe::Subvolume {
            path: "/mnt/top/@nix".into(),
        });
        s.conflict_if_present = true;
        s.destructive = true;
        let text = step_text(12, &s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "",
                "12. create @nix  [pool-subvol-nix]",
                "    $ cryptsetup open /dev/x",
                "    stdin: the passphrase (never on the command line)",
                "    writes: subvolume /mnt/top/@nix (NixOS data)",
                "    kinoite: uses the shared pool, writes none of Kinoite's data",
                "    refused if: subvolume /mnt/top/@nix exists and this install did not make it (--force uses it)",
                "    destructive: runs again on resume unless recorded done",
            ]
        );
    }

    #[test]
    fn a_probe_without_conflict_skips() {
        let mut s = step(Action::WaitFor {
            paths: vec!["/dev/a".into(), "/dev/b".into()],
            timeout_secs: 10,
        });
        s.probe = Some(Probe::Mounted {
            path: "/mnt".into(),
        });
        assert_eq!(probe_line(&s).unwrap(), "skipped if: /mnt is a mount point");
        assert_eq!(
            action_lines(&s.action),
            ["wait up to 10 s for /dev/a, /dev/b"]
        );
        assert_eq!(kinoite_line(KinoiteAccess::None), None);
    }
}
