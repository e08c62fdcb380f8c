//! A plan as text for people: every step with its exact command, what it
//! writes and whose data that is, how it reaches Kinoite, when it is skipped.

use super::{Action, DataOwner, KinoiteAccess, Mode, Plan, Stdin, WriteKind};
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
    let mut out = String::new();
    let what = match plan.mode {
        Mode::Fresh => format!(
            "fresh install of {} on {} — ERASES EVERYTHING on {}",
            plan.host, plan.disk, plan.disk
        ),
        Mode::DualBoot => format!(
            "install of {} beside Kinoite on {} (Kinoite's data is left as it is; @shared is created only if missing)",
            plan.host, plan.disk
        ),
    };
    let _ = writeln!(out, "bifrost install plan: {what}");
    let _ = writeln!(
        out,
        "  ESP {}, LUKS2 {} opened as {}, target {}",
        plan.esp_device, plan.luks_device, plan.mapper, plan.target
    );
    if plan.storage_only {
        let _ = writeln!(
            out,
            "  storage only: nixos-install and the ESP install are left out"
        );
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "\n{:>2}. {}  [{}]", i + 1, s.title, s.id);
        match &s.action {
            Action::Run { argv, stdin } => {
                let _ = writeln!(out, "    $ {}", command_line(argv));
                if *stdin == Stdin::Passphrase {
                    let _ = writeln!(out, "    stdin: the passphrase (never on the command line)");
                }
            }
            Action::WaitFor {
                paths,
                timeout_secs,
            } => {
                let list: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
                let _ = writeln!(
                    out,
                    "    wait up to {timeout_secs} s for {}",
                    list.join(", ")
                );
            }
            Action::WritePasswordHash { user, path } => {
                let _ = writeln!(
                    out,
                    "    write {path}: the SHA-512 crypt hash of {user}'s password, from memory (asked for before the first step)"
                );
            }
        }
        for w in &s.writes {
            let _ = writeln!(
                out,
                "    writes: {} {} ({} data)",
                kind_name(w.kind),
                w.path,
                data_name(w.data)
            );
        }
        match s.kinoite {
            KinoiteAccess::None => {}
            KinoiteAccess::Pool => {
                let _ = writeln!(
                    out,
                    "    kinoite: uses the shared pool, writes none of Kinoite's data"
                );
            }
            KinoiteAccess::ReadOnly => {
                let _ = writeln!(
                    out,
                    "    kinoite: reads Kinoite's or shared data, read-only"
                );
            }
        }
        if let Some(p) = &s.probe {
            if s.conflict_if_present {
                let _ = writeln!(
                    out,
                    "    refused if: {p} and this install did not make it (--force uses it)"
                );
            } else {
                let _ = writeln!(out, "    skipped if: {p}");
            }
        }
        if s.destructive {
            let _ = writeln!(
                out,
                "    destructive: runs again on resume unless recorded done"
            );
        }
    }
    out
}
