//! docs/runbook.md read as a user runs it: the recovery commands hold on
//! both layouts (fresh and beside Kinoite), parse as shell, and use only
//! flags the real `bifrost` has; the menu help says what rEFInd does.

use bifrost_e2e::bifrost_bin;
use std::path::Path;
use std::process::Command;

fn runbook() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/runbook.md");
    std::fs::read_to_string(p).unwrap()
}

/// The text of the `## N. …` section whose title starts with `title`.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .find(&format!("\n## {title}"))
        .unwrap_or_else(|| panic!("no section {title}"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

/// Shell lines of the fenced code blocks, `# ` prompts removed, `\` joined.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let t = t.strip_prefix("# ").unwrap_or(t);
        if let Some(head) = t.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(t);
        out.push(std::mem::take(&mut pending));
    }
    out
}

#[test]
fn recovery_commands_hold_on_both_layouts() {
    let doc = runbook();
    let recover = section(&doc, "8. Recover");
    // Beside Kinoite there is no `pool` or `ESP` partition label, and
    // Kinoite's /boot has no label: commands that name them fail there.
    for bad in [
        "by-partlabel/pool",
        "by-partlabel/ESP",
        "by-label/kinoite-boot",
        "--kinoite-volume kinoite-boot",
        "/root/bifrost#",
    ] {
        assert!(!recover.contains(bad), "recovery names {bad}:\n{recover}");
    }
    // A fresh install (no --dual-boot) erases the disk: recovery never suggests one.
    for c in commands(recover) {
        if c.contains("bifrost install") {
            assert!(
                c.contains("--dual-boot"),
                "recovery runs a fresh install: {c}"
            );
        }
    }
    let cmds = commands(recover);
    assert!(
        cmds.iter().any(|c| c.contains("cryptsetup open")),
        "{cmds:?}"
    );
    for c in &cmds {
        let ok = Command::new("bash").args(["-n", "-c", c]).status().unwrap();
        assert!(ok.success(), "not valid shell: {c}");
    }
}

#[test]
fn every_bifrost_flag_in_the_runbook_exists() {
    let doc = runbook();
    let mut checked = 0;
    for c in commands(&doc) {
        let words: Vec<&str> = c.split_whitespace().collect();
        let Some(at) = words
            .iter()
            .position(|w| *w == "bifrost" || w.ends_with("/bifrost"))
        else {
            continue;
        };
        let args = &words[at + 1..];
        let sub: Vec<&str> = args
            .iter()
            .take_while(|w| !w.starts_with('-') && !w.contains('/') && !w.contains('.'))
            .take(2)
            .copied()
            .collect();
        if sub.is_empty() {
            continue;
        }
        let help = Command::new(bifrost_bin())
            .args(&sub)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        for flag in args.iter().filter(|w| w.starts_with("--")) {
            let flag = flag.split('=').next().unwrap();
            assert!(
                help.contains(flag),
                "`bifrost {}` has no {flag} (runbook: {c})",
                sub.join(" ")
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} flags found");
}

#[test]
fn roll_back_says_what_f2_opens() {
    let doc = runbook();
    let rollback = section(&doc, "7. Roll back");
    // Older generations are entries of their own; F2/Insert/Tab open an
    // entry's submenu, which holds only its specialisations.
    assert!(
        !rollback.contains("open its older generations"),
        "{rollback}"
    );
    assert!(rollback.contains("specialisations"), "{rollback}");
}
