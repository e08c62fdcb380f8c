//! Carrying out an install plan on the ESP, phase by phase, in the order
//! that keeps it bootable at every moment: journal the files a crash could
//! orphan, stage the copies, commit them (fsync, rename), swap refind.conf
//! atomically, delete what no entry needs, clear the journal, fsync the
//! folders that changed.

use super::{hash_file, read_journal, steps, Copy, EspError, Plan, Report, JOURNAL, NIXOS_DIR};
use crate::confine;
use crate::fsutil::{self, io_err};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeSet;

/// Carry out a plan: check space, copy, switch refind.conf, collect garbage.
pub fn apply(p: &Plan, progress: &mut dyn FnMut(&str)) -> Result<Report, EspError> {
    check_space(p)?;
    let mut report = Report::default();
    let old_journal = read_journal(&p.esp)?;
    write_journal(p, &old_journal, &mut report)?;
    let batch = stage_copies(p, progress, &mut report)?;
    // Every new file is durable under its final name before refind.conf names it.
    batch.commit()?;
    swap_config(p, progress, &mut report)?;
    let mut gc_dirs = delete_files(p, progress, &mut report)?;
    if clear_journal(&p.esp)? {
        gc_dirs.insert(p.esp.join(NIXOS_DIR));
    }
    sync_folders(gc_dirs)?;
    Ok(report)
}

fn check_space(p: &Plan) -> Result<(), EspError> {
    steps::check_space(
        &p.esp,
        p.bytes_needed,
        p.bytes_available,
        p.generations.len(),
        p.bytes_freed,
    )
}

/// The journal after this run's additions, or `None` when the run leaves
/// no file of EFI/nixos unreferenced if it dies: the journal names the new
/// copies (before refind.conf names them) and the files to delete (after
/// refind.conf stops naming them), beside what an interrupted run left.
fn journal_text(old: &[String], copies: &[Copy], deletes: &[String]) -> Option<String> {
    let new_files = copies.iter().map(|c| &c.dest).filter(|d| in_nixos(d));
    let gc_files = deletes.iter().filter(|d| in_nixos(d));
    let mut added = new_files.chain(gc_files).peekable();
    added.peek()?;
    let lines: BTreeSet<String> = old.iter().cloned().chain(added.cloned()).collect();
    Some(lines.into_iter().map(|l| l + "\n").collect())
}

fn in_nixos(rel: &str) -> bool {
    rel.starts_with(NIXOS_DIR)
}

/// Phase 1: the journal, written atomically before anything is copied.
fn write_journal(p: &Plan, old: &[String], report: &mut Report) -> Result<(), EspError> {
    let Some(text) = journal_text(old, &p.copies, &p.deletes) else {
        return Ok(());
    };
    let nixos = confine::checked(&p.esp, NIXOS_DIR)?;
    std::fs::create_dir_all(&nixos).map_err(io_err(&nixos, "create folder"))?;
    fsutil::write_atomic(&confine::checked(&p.esp, JOURNAL)?, text.as_bytes())?;
    report.bytes_written += text.len() as u64;
    Ok(())
}

/// Phase 2: every copy into a temp file beside its destination; nothing
/// has its final name until the batch is committed.
fn stage_copies(
    p: &Plan,
    progress: &mut dyn FnMut(&str),
    report: &mut Report,
) -> Result<fsutil::AtomicBatch, EspError> {
    let mut batch = fsutil::AtomicBatch::new();
    for c in &p.copies {
        progress(&format!("copy {} -> {}", c.source, c.dest));
        let n = stage_copy(&p.esp, c, &mut batch)?;
        report.copied += 1;
        report.bytes_written += n;
    }
    Ok(batch)
}

fn stage_copy(esp: &Utf8Path, c: &Copy, batch: &mut fsutil::AtomicBatch) -> Result<u64, EspError> {
    let dest = confine::checked(esp, &c.dest)?;
    let dir = dest.parent().expect("dest has a folder").to_owned();
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).map_err(io_err(&dir, "create folder"))?;
    }
    // The state line records the hashes of rEFInd's files as planned:
    // a source that changed since would make it lie.
    if let Some(planned) = &c.sha256 {
        if hash_file(&c.source)?.1 != *planned {
            return Err(EspError::Changed(c.source.to_string()));
        }
    }
    let n = batch.add_copy(&dest, &c.source)?;
    if n != c.size {
        return Err(EspError::Changed(c.source.to_string()));
    }
    Ok(n)
}

/// Phase 4: the plan's refind.conf, as it is, in one atomic rename.
fn swap_config(
    p: &Plan,
    progress: &mut dyn FnMut(&str),
    report: &mut Report,
) -> Result<(), EspError> {
    if !p.config_changed() {
        return Ok(());
    }
    progress(&format!("write {}", p.config_path));
    fsutil::write_atomic(
        &confine::checked(&p.esp, &p.config_path)?,
        p.new_config.as_bytes(),
    )?;
    report.config_written = true;
    report.bytes_written += p.new_config.len() as u64;
    Ok(())
}

/// Phase 5: the files no entry needs any more (already gone is fine);
/// returns the folders that changed.
fn delete_files(
    p: &Plan,
    progress: &mut dyn FnMut(&str),
    report: &mut Report,
) -> Result<BTreeSet<Utf8PathBuf>, EspError> {
    let mut gc_dirs = BTreeSet::new();
    for d in &p.deletes {
        progress(&format!("delete {d}"));
        let path = confine::checked(&p.esp, d)?;
        match std::fs::remove_file(&path) {
            Ok(()) => report.deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, "delete")(e).into()),
        }
        if let Some(dir) = path.parent() {
            gc_dirs.insert(dir.to_owned());
        }
    }
    Ok(gc_dirs)
}

/// Phase 6: everything the journal listed is now named by refind.conf or
/// deleted. Whether there was a journal to delete.
fn clear_journal(esp: &Utf8Path) -> Result<bool, EspError> {
    let journal = confine::checked(esp, JOURNAL)?;
    if !journal.exists() {
        return Ok(false);
    }
    std::fs::remove_file(&journal).map_err(io_err(&journal, "delete"))?;
    Ok(true)
}

/// Phase 7: the deletes themselves made durable.
fn sync_folders(dirs: BTreeSet<Utf8PathBuf>) -> Result<(), EspError> {
    for d in dirs {
        fsutil::sync_dir(&d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(dest: &str) -> Copy {
        Copy {
            source: "/src/x".into(),
            dest: dest.into(),
            size: 1,
            sha256: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nothing_to_journal_outside_efi_nixos() {
        let copies = [copy("EFI/refind/refind_x64.efi")];
        let deletes = strings(&["EFI/refind/icons/os_old.png"]);
        assert_eq!(
            journal_text(&strings(&["EFI/nixos/left.efi"]), &copies, &deletes),
            None
        );
        assert_eq!(journal_text(&[], &[], &[]), None);
    }

    #[test]
    fn journal_keeps_old_lines_and_adds_copies_and_deletes_sorted_once() {
        let old = strings(&["EFI/nixos/b-old.efi", "EFI/nixos/a-new.efi"]);
        let copies = [
            copy("EFI/nixos/a-new.efi"),
            copy("EFI/refind/refind.conf.x"),
        ];
        let deletes = strings(&["EFI/nixos/c-gone.efi", "EFI/refind/x.png"]);
        assert_eq!(
            journal_text(&old, &copies, &deletes).unwrap(),
            "EFI/nixos/a-new.efi\nEFI/nixos/b-old.efi\nEFI/nixos/c-gone.efi\n"
        );
    }

    #[test]
    fn a_delete_alone_is_journalled() {
        let deletes = strings(&["EFI/nixos/k.efi"]);
        assert_eq!(
            journal_text(&[], &[], &deletes).unwrap(),
            "EFI/nixos/k.efi\n"
        );
    }

    #[test]
    fn clearing_a_missing_journal_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let esp = Utf8Path::from_path(dir.path()).unwrap();
        assert!(!clear_journal(esp).unwrap());
        std::fs::create_dir_all(esp.join(NIXOS_DIR)).unwrap();
        std::fs::write(esp.join(JOURNAL), "EFI/nixos/a.efi\n").unwrap();
        assert!(clear_journal(esp).unwrap());
        assert!(!esp.join(JOURNAL).exists());
    }
}
