//! The text `bifrost esp` prints: the dry-run plan, what an install did, the
//! firmware entry, `status` and `refresh-kinoite` reports. Pure, so the CLI
//! only prints it and the wording has one owner.

use super::kinoite::RefreshReport;
use super::nvram::Registered;
use super::request::Nvram;
use super::status::Status;
use super::{Plan, Report};
use crate::spec::KinoiteMode;
use std::fmt::Write;

/// A dry run's plan: what would be copied and deleted, the space, and the
/// menu's diff.
pub fn plan(plan: &Plan) -> String {
    let mut s = format!("plan for {} (dry run: nothing is changed)\n", plan.esp);
    let _ = writeln!(
        s,
        "generations: {:?}; default entry: {}",
        plan.generations, plan.default
    );
    for c in &plan.copies {
        let _ = writeln!(s, "copy   {} -> {} ({} bytes)", c.source, c.dest, c.size);
    }
    for d in &plan.deletes {
        let _ = writeln!(s, "delete {d}");
    }
    let _ = writeln!(
        s,
        "space: needs {} bytes, {} free",
        plan.bytes_needed, plan.bytes_available
    );
    if plan.config_changed() {
        s.push_str(&plan.config_diff());
    } else {
        let _ = writeln!(s, "{}: unchanged", plan.config_path);
    }
    s
}

/// The one line an install prints when it is done.
pub fn installed(plan: &Plan, r: &Report) -> String {
    format!(
        "installed generations {:?} (default: {}); copied {}, deleted {}, {} {}; {} bytes written\n",
        plan.generations,
        plan.default,
        r.copied,
        r.deleted,
        plan.config_path,
        if r.config_written {
            "updated"
        } else {
            "unchanged"
        },
        r.bytes_written
    )
}

/// The firmware boot entry: what a dry run would do, or what was done.
pub fn nvram(n: &Nvram) -> String {
    match n {
        Nvram::Planned(want, d) => format!(
            "nvram: {} on {} partition {}: {}\n",
            want.loader,
            want.disk,
            want.partition.number,
            serde_json::to_string(d).expect("decisions serialise")
        ),
        Nvram::Registered(want, r) => format!(
            "nvram: Boot{:04X} ({} on {} partition {}) {}; BootOrder {}\n",
            r.entry,
            want.loader,
            want.disk,
            want.partition.number,
            registered(r),
            r.order
                .iter()
                .map(|n| format!("{n:04X}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn registered(r: &Registered) -> &'static str {
    match (r.created, r.reordered) {
        (true, _) => "created and put first",
        (false, true) => "reused and moved first",
        (false, false) => "already first, unchanged",
    }
}

/// `bifrost esp status`: the ESP's space, each menu, bifrost's files and
/// the problems found.
pub fn status(st: &Status) -> String {
    let mut s = format!(
        "ESP {}: {} bytes used, {} free of {}\n",
        st.esp, st.bytes_used, st.bytes_free, st.bytes_total
    );
    for i in &st.installs {
        let _ = writeln!(s, "{}:", i.config);
        let _ = writeln!(s, "  default: {}", i.default.as_deref().unwrap_or("-"));
        for e in &i.entries {
            let _ = writeln!(s, "  entry: {e}");
        }
        match &i.kinoite {
            Some(k) if k.mode == KinoiteMode::Chainload => {
                let _ = writeln!(
                    s,
                    "  kinoite: chainload {}",
                    k.loader.as_deref().unwrap_or("-")
                );
            }
            Some(k) => {
                let _ = writeln!(
                    s,
                    "  kinoite: direct, {} entries on volume {}",
                    k.entries.len(),
                    k.volume.as_deref().unwrap_or("-")
                );
            }
            None => {}
        }
        let bad = i.files.iter().filter(|f| !f.ok).count();
        let _ = writeln!(s, "  files: {} recorded, {} bad", i.files.len(), bad);
    }
    let _ = writeln!(s, "bifrost's files: {} bytes", st.bytes_bifrost);
    for p in &st.problems {
        let _ = writeln!(s, "problem: {p}");
    }
    if st.consistent() {
        s.push_str("consistent: every file the menu needs is complete\n");
    }
    s
}

/// `bifrost esp refresh-kinoite`: what happened to each menu.
pub fn refreshed(r: &RefreshReport) -> String {
    let mut s = String::new();
    for c in &r.configs {
        let _ = match c.mode {
            KinoiteMode::Chainload => writeln!(
                s,
                "{}: Kinoite is chainloaded (Fedora's boot loader reads its entries): nothing to refresh",
                c.config
            ),
            KinoiteMode::Direct => writeln!(
                s,
                "{}: {} ({} Kinoite entries: {})",
                c.config,
                if c.written { "updated" } else { "unchanged" },
                c.entries.len(),
                c.entries.join(", ")
            ),
        };
    }
    let _ = writeln!(s, "{} bytes written", r.bytes_written);
    s
}

#[cfg(test)]
mod tests {
    use super::super::kinoite::{KinoiteState, Refreshed};
    use super::super::nvram::{Decision, Partition, Want};
    use super::super::status::{ConfigStatus, FileStatus};
    use super::super::Copy;
    use super::*;

    fn a_plan(old: Option<&str>) -> Plan {
        Plan {
            esp: "/boot".into(),
            config_path: "EFI/refind/refind.conf".into(),
            copies: vec![Copy {
                source: "/nix/store/abc-linux/bzImage".into(),
                dest: "EFI/nixos/abc-linux-bzImage.efi".into(),
                size: 12,
                sha256: None,
            }],
            deletes: vec!["EFI/nixos/old-linux-bzImage.efi".into()],
            old_config: old.map(Into::into),
            new_config: "timeout 5\n".into(),
            bytes_needed: 12,
            bytes_available: 1000,
            generations: vec![3, 2],
            default: "NixOS (generation 3)".into(),
            kinoite: None,
            warnings: vec![],
            bytes_freed: 0,
            _staging: None,
        }
    }

    #[test]
    fn a_plan_lists_copies_deletes_space_and_the_menu() {
        insta::assert_snapshot!(plan(&a_plan(Some("timeout 5\n"))), @r"
        plan for /boot (dry run: nothing is changed)
        generations: [3, 2]; default entry: NixOS (generation 3)
        copy   /nix/store/abc-linux/bzImage -> EFI/nixos/abc-linux-bzImage.efi (12 bytes)
        delete EFI/nixos/old-linux-bzImage.efi
        space: needs 12 bytes, 1000 free
        EFI/refind/refind.conf: unchanged
        ");
        assert!(plan(&a_plan(None)).ends_with(&a_plan(None).config_diff()));
    }

    #[test]
    fn an_install_says_what_it_wrote() {
        let r = Report {
            copied: 1,
            deleted: 1,
            bytes_written: 12,
            config_written: true,
        };
        insta::assert_snapshot!(installed(&a_plan(None), &r), @"installed generations [3, 2] (default: NixOS (generation 3)); copied 1, deleted 1, EFI/refind/refind.conf updated; 12 bytes written");
    }

    #[test]
    fn the_firmware_entry_planned_and_registered() {
        let want = Want {
            disk: "/dev/nvme0n1".into(),
            partition: Partition {
                number: 1,
                start: 2048,
                size: 1024,
                guid: None,
            },
            loader: r"\EFI\refind\refind_x64.efi".into(),
            label: "bifrost rEFInd".into(),
        };
        insta::assert_snapshot!(nvram(&Nvram::Planned(want.clone(), Decision::Create)), @r#"nvram: \EFI\refind\refind_x64.efi on /dev/nvme0n1 partition 1: {"action":"create"}"#);
        let done = Registered {
            entry: 0x1a,
            created: false,
            reordered: true,
            order: vec![0x1a, 0, 1],
        };
        insta::assert_snapshot!(nvram(&Nvram::Registered(want, done)), @r"nvram: Boot001A (\EFI\refind\refind_x64.efi on /dev/nvme0n1 partition 1) reused and moved first; BootOrder 001A,0000,0001");
    }

    #[test]
    fn status_names_each_menu_and_every_problem() {
        let kinoite = KinoiteState {
            mode: KinoiteMode::Chainload,
            loader: Some("EFI/fedora/shimx64.efi".into()),
            volume: None,
            icon: None,
            entries: vec![],
            default: false,
        };
        let mut st = Status {
            esp: "/boot".into(),
            installs: vec![ConfigStatus {
                config: "EFI/refind/refind.conf".into(),
                entries: vec!["NixOS (generation 3)".into(), "Fedora Kinoite".into()],
                default: Some("NixOS (generation 3)".into()),
                default_generation: Some(3),
                generations: vec![3],
                files: vec![
                    FileStatus {
                        path: "EFI/nixos/a.efi".into(),
                        size: 5,
                        ok: true,
                    },
                    FileStatus {
                        path: "EFI/nixos/b.efi".into(),
                        size: 7,
                        ok: false,
                    },
                ],
                kinoite: Some(kinoite),
            }],
            bytes_total: 100,
            bytes_free: 40,
            bytes_used: 60,
            bytes_bifrost: 12,
            problems: vec!["EFI/nixos/b.efi: 3 bytes, recorded 7".into()],
        };
        insta::assert_snapshot!(status(&st), @r"
        ESP /boot: 60 bytes used, 40 free of 100
        EFI/refind/refind.conf:
          default: NixOS (generation 3)
          entry: NixOS (generation 3)
          entry: Fedora Kinoite
          kinoite: chainload EFI/fedora/shimx64.efi
          files: 2 recorded, 1 bad
        bifrost's files: 12 bytes
        problem: EFI/nixos/b.efi: 3 bytes, recorded 7
        ");
        st.problems.clear();
        assert!(status(&st).ends_with("consistent: every file the menu needs is complete\n"));
    }

    #[test]
    fn a_refresh_says_what_each_menu_got() {
        let r = RefreshReport {
            configs: vec![
                Refreshed {
                    config: "EFI/refind/refind.conf".into(),
                    mode: KinoiteMode::Direct,
                    entries: vec!["Fedora Kinoite 41".into(), "Fedora Kinoite 40".into()],
                    written: true,
                },
                Refreshed {
                    config: "EFI/BOOT/refind.conf".into(),
                    mode: KinoiteMode::Chainload,
                    entries: vec![],
                    written: false,
                },
            ],
            bytes_written: 345,
        };
        insta::assert_snapshot!(refreshed(&r), @r"
        EFI/refind/refind.conf: updated (2 Kinoite entries: Fedora Kinoite 41, Fedora Kinoite 40)
        EFI/BOOT/refind.conf: Kinoite is chainloaded (Fedora's boot loader reads its entries): nothing to refresh
        345 bytes written
        ");
    }
}
