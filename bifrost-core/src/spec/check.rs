//! `bifrost check`: several host files checked at once, and the report it
//! prints.

use super::{check_file, FileProblem, Severity};
use camino::{Utf8Path, Utf8PathBuf};
use std::fmt::Write;

/// The problems of each file checked, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub files: Vec<(Utf8PathBuf, Vec<FileProblem>)>,
}

/// Check every file (see [`check_file`]).
pub fn check_files(files: &[Utf8PathBuf]) -> CheckReport {
    CheckReport {
        files: files.iter().map(|f| (f.clone(), check_file(f))).collect(),
    }
}

impl CheckReport {
    /// Every problem of every file, in order (what `--json` prints).
    pub fn problems(&self) -> Vec<&FileProblem> {
        self.files.iter().flat_map(|(_, p)| p).collect()
    }

    /// Whether every file can be used (warnings allowed).
    pub fn valid(&self) -> bool {
        self.problems()
            .iter()
            .all(|p| p.severity == Severity::Warning)
    }

    /// The text report: each problem on its line, then `FILE: ok` (with the
    /// count of warnings) for each file without errors.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for (file, problems) in &self.files {
            for p in problems {
                let _ = writeln!(s, "{p}");
            }
            if let Some(line) = summary(file, problems) {
                let _ = writeln!(s, "{line}");
            }
        }
        s
    }
}

fn summary(file: &Utf8Path, problems: &[FileProblem]) -> Option<String> {
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    match (errors, problems.len()) {
        (0, 0) => Some(format!("{file}: ok")),
        (0, 1) => Some(format!("{file}: ok, with 1 warning")),
        (0, n) => Some(format!("{file}: ok, with {n} warnings")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(file: &str, severity: Severity) -> FileProblem {
        FileProblem {
            file: file.into(),
            path: "storage".into(),
            message: "m".into(),
            severity,
        }
    }

    #[test]
    fn summarises_each_file_and_is_invalid_only_with_an_error() {
        let report = CheckReport {
            files: vec![
                ("a.json".into(), vec![]),
                ("b.json".into(), vec![problem("b.json", Severity::Warning)]),
                (
                    "c.json".into(),
                    vec![
                        problem("c.json", Severity::Warning),
                        problem("c.json", Severity::Warning),
                    ],
                ),
            ],
        };
        assert!(report.valid());
        assert_eq!(
            report.render_text(),
            "a.json: ok\n\
             b.json: storage: warning: m\nb.json: ok, with 1 warning\n\
             c.json: storage: warning: m\nc.json: storage: warning: m\nc.json: ok, with 2 warnings\n"
        );
        let bad = CheckReport {
            files: vec![("d.json".into(), vec![problem("d.json", Severity::Error)])],
        };
        assert!(!bad.valid());
        assert_eq!(bad.render_text(), "d.json: storage: m\n");
        assert_eq!(bad.problems().len(), 1);
    }

    #[test]
    fn an_unreadable_file_is_an_error() {
        let report = check_files(&["/nonexistent/bifrost/host.json".into()]);
        assert!(!report.valid());
        assert!(report.render_text().contains("cannot read"));
    }
}
