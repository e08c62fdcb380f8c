//! The undo commands printed after a failed install, in an order a person
//! can run them: a step that works under a mount point (deleting a
//! subvolume below the pool's top level) needs that mount, so when a later
//! step already unmounted it, the mount is made again first and undone last.

use super::plan::{command_line, Action, Step};

/// Undo command lines for `ran`, the steps that ran, in the order they ran.
pub fn commands(ran: &[&Step]) -> Vec<String> {
    // Mount points mounted by a step (their undo is `umount <dir>`) and
    // whether they are still mounted after every step that ran.
    let mut mounted: Vec<(String, &Step, bool)> = vec![];
    for s in ran {
        if let Some(dir) = umount_target(s.undo.as_deref()) {
            mounted.retain(|(d, _, _)| d != dir);
            mounted.push((dir.to_string(), s, true));
        }
        if let Action::Run { argv, .. } = &s.action {
            if let Some(dir) = umount_target(Some(argv)) {
                for m in mounted.iter_mut().filter(|m| m.0 == dir) {
                    m.2 = false;
                }
            }
        }
    }
    let mut out = vec![];
    for s in ran.iter().rev() {
        let Some(undo) = &s.undo else { continue };
        if let Some(dir) = umount_target(Some(undo)) {
            // Unmount only what is mounted now (or was mounted again above).
            if let Some(m) = mounted.iter_mut().find(|m| m.0 == dir) {
                if m.2 {
                    out.push(command_line(undo));
                    m.2 = false;
                }
            }
            continue;
        }
        // A command working below a mount point that is no longer mounted:
        // mount it again first, with the command that mounted it.
        let below = |dir: &str| {
            undo.iter()
                .skip(1)
                .any(|a| a.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
        };
        let needed = mounted
            .iter_mut()
            .filter(|m| !m.2 && below(&m.0))
            .max_by_key(|m| m.0.len());
        if let Some(m) = needed {
            if let Action::Run { argv, .. } = &m.1.action {
                out.push(command_line(&["mkdir".into(), "-p".into(), m.0.clone()]));
                out.push(command_line(argv));
                m.2 = true;
            }
        }
        out.push(command_line(undo));
    }
    out
}

fn umount_target(argv: Option<&[String]>) -> Option<&str> {
    match argv? {
        [cmd, dir] if cmd == "umount" => Some(dir.as_str()),
        _ => None,
    }
}
