//! Nix's `--log-format internal-json` log: parsing and the progress state it drives.
//!
//! Each stderr line of `nix build --log-format internal-json` is either
//! `@nix {json}` or plain text. The JSON is one of `start`/`stop` of an
//! activity, a `result` attached to an activity, or a `msg`. The numeric
//! activity and result types are Nix's `ActivityType`/`ResultType` enums
//! (src/libutil/logging.hh); they have only ever grown, so unknown numbers and
//! unknown actions are ignored rather than fatal, which keeps the parser
//! working across Nix 2.8 and current releases.

use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error("internal-json line {line}: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Nix's `ActivityType` values that progress cares about.
mod activity {
    pub const BUILDS: u64 = 104;
    pub const BUILD: u64 = 105;
    pub const COPY_PATHS: u64 = 103;
}

/// Nix's `ResultType` values that progress cares about.
mod result {
    pub const BUILD_LOG_LINE: u64 = 101;
    pub const SET_PHASE: u64 = 104;
    pub const PROGRESS: u64 = 105;
    pub const POST_BUILD_LOG_LINE: u64 = 107;
}

/// One `@nix` line, borrowed from the input where possible.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
enum Raw<'a> {
    Start {
        id: u64,
        #[serde(rename = "type", default)]
        kind: u64,
        #[serde(default, borrow)]
        fields: Vec<Field<'a>>,
    },
    Stop {
        id: u64,
    },
    Result {
        id: u64,
        #[serde(rename = "type", default)]
        kind: u64,
        #[serde(default)]
        fields: Vec<Field<'a>>,
    },
    Msg {
        #[serde(default)]
        level: u64,
        #[serde(borrow)]
        msg: std::borrow::Cow<'a, str>,
    },
    #[serde(other)]
    Unknown,
}

/// A field of a `start` or `result`: Nix writes integers and strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Field<'a> {
    Int(u64),
    #[serde(borrow)]
    Str(std::borrow::Cow<'a, str>),
    #[allow(dead_code)] // newer Nix may add other shapes; keep them harmlessly
    Other(serde::de::IgnoredAny),
}

impl Field<'_> {
    fn int(&self) -> Option<u64> {
        match self {
            Field::Int(n) => Some(*n),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// done/expected counts of one kind of work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub done: u64,
    pub expected: u64,
    pub running: u64,
    pub failed: u64,
}

/// The done/expected/running/failed fields of a `progress` result
/// (missing ones are 0).
fn counts(fields: &[Field]) -> Counts {
    let at = |i: usize| fields.get(i).and_then(Field::int).unwrap_or(0);
    Counts {
        done: at(0),
        expected: at(1),
        running: at(2),
        failed: at(3),
    }
}

/// How many log lines of each derivation are kept for error reports.
pub const LOG_TAIL: usize = 25;

/// What a build is doing, as far as the log tells.
#[derive(Debug, Default)]
pub struct Progress {
    /// Derivations built (the `Builds` activity's counters).
    pub builds: Counts,
    /// Store paths fetched from substituters (the `CopyPaths` activity's counters).
    pub downloads: Counts,
    /// The derivation being built most recently started, as its name (no hash).
    pub current: Option<String>,
    /// Its phase, when its builder reports phases (stdenv does).
    pub phase: Option<String>,
    /// Error messages (level 0), ANSI colours removed.
    pub errors: Vec<String>,
    /// The last [`LOG_TAIL`] lines of each derivation's build log, by .drv path.
    logs: HashMap<String, VecDeque<String>>,
    /// Activity id → kind and, for builds, the .drv path.
    activities: HashMap<u64, (u64, Option<String>)>,
    /// Running builds in start order (id), so `current` falls back when one stops.
    running: Vec<u64>,
    /// Ids of the aggregate activities whose counters we show.
    builds_id: Option<u64>,
    copies_id: Option<u64>,
    /// Lines that were not `@nix` JSON (old or foreign output), kept for errors.
    pub plain: VecDeque<String>,
}

/// The name part of a store path: `/nix/store/<hash>-name.drv` → `name`.
pub fn drv_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name,
        _ => base,
    }
}

/// Remove ANSI escape sequences (Nix colours its messages even in JSON).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Feed one stderr line. Returns whether anything visible changed.
    /// Lines that are not `@nix` JSON, and JSON this parser does not know,
    /// are kept or ignored, never an error; only `@nix` lines that are not
    /// JSON at all are.
    pub fn feed(&mut self, line: &str, line_no: usize) -> Result<bool, ProgressError> {
        let Some(json) = line.strip_prefix("@nix ") else {
            let line = line.trim_end();
            if !line.is_empty() {
                push_tail(&mut self.plain, strip_ansi(line));
            }
            return Ok(false);
        };
        let raw: Raw = serde_json::from_str(json).map_err(|source| ProgressError::Json {
            line: line_no,
            source,
        })?;
        Ok(self.apply(raw))
    }

    /// One event of the log; whether anything visible changed.
    fn apply(&mut self, raw: Raw) -> bool {
        match raw {
            Raw::Start { id, kind, fields } => self.on_start(id, kind, &fields),
            Raw::Stop { id } => self.on_stop(id),
            Raw::Result { id, kind, fields } => self.on_result(id, kind, &fields),
            Raw::Msg { level, msg } => self.on_msg(level, &msg),
            Raw::Unknown => false,
        }
    }

    /// An activity starts; a build becomes the current derivation.
    fn on_start(&mut self, id: u64, kind: u64, fields: &[Field]) -> bool {
        let drv = match kind {
            activity::BUILD => fields.first().and_then(Field::str).map(str::to_owned),
            _ => None,
        };
        match kind {
            activity::BUILDS => self.builds_id = Some(id),
            activity::COPY_PATHS => self.copies_id = Some(id),
            _ => {}
        }
        let changed = if let (activity::BUILD, Some(d)) = (kind, &drv) {
            self.running.push(id);
            self.current = Some(drv_name(d).to_owned());
            self.phase = None;
            true
        } else {
            false
        };
        self.activities.insert(id, (kind, drv));
        changed
    }

    /// An activity stops; when it was a build, the latest build still
    /// running becomes the current one.
    fn on_stop(&mut self, id: u64) -> bool {
        let was_build = matches!(self.activities.remove(&id), Some((activity::BUILD, _)));
        if was_build {
            self.running.retain(|r| *r != id);
            self.current = self
                .running
                .last()
                .and_then(|r| self.activities.get(r))
                .and_then(|(_, d)| d.as_deref())
                .map(|d| drv_name(d).to_owned());
            self.phase = None;
        }
        was_build
    }

    fn on_result(&mut self, id: u64, kind: u64, fields: &[Field]) -> bool {
        match kind {
            result::PROGRESS => self.on_counts(id, counts(fields)),
            result::SET_PHASE => self.on_phase(fields.first().and_then(Field::str)),
            result::BUILD_LOG_LINE | result::POST_BUILD_LOG_LINE => {
                if let Some(line) = fields.first().and_then(Field::str) {
                    self.on_log_line(id, line);
                }
                false
            }
            _ => false,
        }
    }

    /// New counters of an activity; only the two aggregates are shown.
    fn on_counts(&mut self, id: u64, counts: Counts) -> bool {
        let slot = if Some(id) == self.builds_id {
            &mut self.builds
        } else if Some(id) == self.copies_id {
            &mut self.downloads
        } else {
            return false;
        };
        let changed = *slot != counts;
        *slot = counts;
        changed
    }

    fn on_phase(&mut self, phase: Option<&str>) -> bool {
        let phase = phase.map(str::to_owned);
        let changed = phase != self.phase;
        self.phase = phase;
        changed
    }

    /// A line of a build's log, kept in its derivation's tail.
    fn on_log_line(&mut self, id: u64, line: &str) {
        if let Some((_, Some(drv))) = self.activities.get(&id) {
            let tail = self.logs.entry(drv.clone()).or_default();
            push_tail(tail, strip_ansi(line));
        }
    }

    /// A message; errors (level 0) are kept.
    fn on_msg(&mut self, level: u64, msg: &str) -> bool {
        if level == 0 {
            self.errors.push(strip_ansi(msg));
        }
        false
    }

    /// The last log lines of `drv` (a .drv store path), oldest first.
    pub fn log_tail(&self, drv: &str) -> Vec<String> {
        self.logs
            .get(drv)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The derivations named as failed in nix's error messages, with their
    /// last log lines, in the order nix reported them.
    pub fn failures(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for e in &self.errors {
            for word in e.split(['\'', '`', ' ', '\n']) {
                if word.starts_with("/nix/store/")
                    && word.ends_with(".drv")
                    && !out.iter().any(|(d, _)| d == word)
                {
                    out.push((word.to_owned(), self.log_tail(word)));
                }
            }
        }
        out
    }

    /// One line describing the state: what a plain (non-terminal) log prints
    /// and what the progress bar shows.
    pub fn render(&self, elapsed: Duration) -> String {
        let mut s = format!(
            "[{}] builds {}/{}, downloads {}/{}",
            fmt_elapsed(elapsed),
            self.builds.done,
            self.builds.expected,
            self.downloads.done,
            self.downloads.expected
        );
        if self.builds.failed > 0 {
            s.push_str(&format!(", {} failed", self.builds.failed));
        }
        if let Some(c) = &self.current {
            s.push_str(", building ");
            s.push_str(c);
            if let Some(p) = &self.phase {
                s.push_str(" (");
                s.push_str(p);
                s.push(')');
            }
        }
        s
    }
}

fn push_tail(q: &mut VecDeque<String>, line: String) {
    if q.len() == LOG_TAIL {
        q.pop_front();
    }
    q.push_back(line);
}

/// `m:ss`, or `h:mm:ss` past an hour (a linux-surface kernel build is hours).
pub fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(p: &mut Progress, text: &str) {
        for (i, l) in text.lines().enumerate() {
            p.feed(l, i + 1).unwrap();
        }
    }

    #[test]
    fn counts_take_missing_and_non_integer_fields_as_zero() {
        let f = [Field::Int(3), Field::Str("x".into()), Field::Int(1)];
        assert_eq!(
            counts(&f),
            Counts {
                done: 3,
                expected: 0,
                running: 1,
                failed: 0
            }
        );
        assert_eq!(counts(&[]), Counts::default());
    }

    #[test]
    fn stopping_the_current_build_falls_back_to_the_latest_still_running() {
        let mut p = Progress::new();
        let drv = |n: &str| [Field::Str(format!("/nix/store/{:a>32}-{n}.drv", "").into())];
        assert!(p.on_start(1, activity::BUILD, &drv("one")));
        assert!(p.on_start(2, activity::BUILD, &drv("two")));
        assert!(p.on_phase(Some("buildPhase")));
        assert!(!p.on_phase(Some("buildPhase")));
        assert_eq!(p.current.as_deref(), Some("two"));
        assert!(p.on_stop(2));
        assert_eq!(
            (p.current.as_deref(), p.phase.as_deref()),
            (Some("one"), None)
        );
        assert!(!p.on_stop(7), "an unknown activity changes nothing");
        assert!(p.on_stop(1));
        assert_eq!(p.current, None);
    }

    #[test]
    fn only_the_aggregate_activities_counters_are_shown() {
        let mut p = Progress::new();
        assert!(!p.on_start(9, activity::BUILDS, &[]));
        let c = Counts {
            done: 1,
            expected: 4,
            running: 1,
            failed: 0,
        };
        assert!(!p.on_counts(5, c), "not an aggregate");
        assert!(p.on_counts(9, c));
        assert!(!p.on_counts(9, c), "unchanged");
        assert_eq!((p.builds, p.downloads), (c, Counts::default()));
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[31;1merror:\u{1b}[0m builder for '\u{1b}[35;1m/x\u{1b}[0m'"),
            "error: builder for '/x'"
        );
    }

    #[test]
    fn drv_names() {
        assert_eq!(
            drv_name("/nix/store/wkhsblv8dfdnqaxpi8qlphvkxxiw5r2n-nixos-image-raw-efi.drv"),
            "nixos-image-raw-efi"
        );
        assert_eq!(drv_name("plain"), "plain");
    }

    #[test]
    fn elapsed_formats() {
        assert_eq!(fmt_elapsed(Duration::from_secs(75)), "1:15");
        assert_eq!(fmt_elapsed(Duration::from_secs(3 * 3600 + 61)), "3:01:01");
    }

    /// Lines as Nix 2.18–2.24 write them: `msg` with position fields and a
    /// trace, a `BuildWaiting` activity (111), a `FetchStatus` result (108),
    /// and phases from stdenv.
    const NEWER: &str = r#"@nix {"action":"start","id":1,"level":0,"parent":0,"text":"","type":104}
@nix {"action":"start","id":2,"level":0,"parent":0,"text":"","type":103}
@nix {"action":"result","fields":[0,2,0,0],"id":1,"type":105}
@nix {"action":"start","id":3,"level":3,"parent":0,"text":"building '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-6.12.drv'","type":105,"fields":["/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-6.12.drv","",1,1]}
@nix {"action":"result","fields":["buildPhase"],"id":3,"type":104}
@nix {"action":"start","id":4,"level":5,"parent":0,"text":"waiting for a machine to build","type":111,"fields":["/nix/store/x.drv"]}
@nix {"action":"result","fields":["fetching 3 of 7"],"id":2,"type":108}
@nix {"action":"result","fields":[{"future":"shape"}],"id":2,"type":109}
@nix {"action":"frobnicate","id":9}
@nix {"action":"result","fields":["  CC kernel/fork.o"],"id":3,"type":101}
@nix {"action":"result","fields":[1,5,0,0],"id":2,"type":105}
@nix {"action":"msg","column":null,"file":null,"level":0,"line":null,"msg":"\u001b[31;1merror:\u001b[0m builder for '\u001b[35;1m/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-6.12.drv\u001b[0m' failed with exit code 2","raw_msg":"x","trace":[]}
"#;

    #[test]
    fn newer_nix_lines_and_unknown_events() {
        let mut p = Progress::new();
        feed_all(&mut p, NEWER);
        assert_eq!(p.builds.expected, 2);
        assert_eq!(
            p.downloads,
            Counts {
                done: 1,
                expected: 5,
                running: 0,
                failed: 0
            }
        );
        assert_eq!(p.current.as_deref(), Some("linux-6.12"));
        assert_eq!(p.phase.as_deref(), Some("buildPhase"));
        let f = p.failures();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].1, vec!["  CC kernel/fork.o".to_owned()]);
        assert!(p.errors[0].starts_with("error: builder for '/nix/store/"));
        assert_eq!(
            p.render(Duration::from_secs(5)),
            "[0:05] builds 0/2, downloads 1/5, building linux-6.12 (buildPhase)"
        );
    }

    fn fixture(name: &str) -> Progress {
        let path = format!(
            "{}/../tests/fixtures/nix-logs/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut p = Progress::new();
        feed_all(&mut p, &text);
        p
    }

    #[test]
    fn recorded_nix_2_8_single_build() {
        let p = fixture("nix-2.8-build-raw.log");
        assert_eq!(
            p.builds,
            Counts {
                done: 1,
                expected: 1,
                running: 0,
                failed: 0
            }
        );
        assert_eq!(p.current, None, "the build stopped");
        assert!(p.errors.is_empty());
        let tail =
            p.log_tail("/nix/store/wkhsblv8dfdnqaxpi8qlphvkxxiw5r2n-nixos-image-raw-efi.drv");
        assert_eq!(
            tail,
            [
                "building raw-efi image (seed rec1)",
                "wrote nixos-image-raw-efi.raw"
            ]
        );
    }

    #[test]
    fn plain_progress_lines_of_a_recorded_build() {
        let path = format!(
            "{}/../tests/fixtures/nix-logs/nix-2.8-build-four.log",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut p = Progress::new();
        let mut lines = Vec::new();
        for (i, l) in std::fs::read_to_string(path).unwrap().lines().enumerate() {
            if p.feed(l, i + 1).unwrap() {
                lines.push(p.render(Duration::from_secs(i as u64)));
            }
        }
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn recorded_nix_2_8_four_builds() {
        let p = fixture("nix-2.8-build-four.log");
        assert_eq!((p.builds.done, p.builds.expected), (4, 4));
        assert_eq!(p.downloads.expected, 0);
    }

    #[test]
    fn recorded_nix_2_8_failure_names_drv_and_its_log() {
        let p = fixture("nix-2.8-build-failure.log");
        assert_eq!(p.errors.len(), 1);
        assert!(
            p.errors[0].starts_with("error: builder for '/nix/store/"),
            "{}",
            p.errors[0]
        );
        assert!(
            p.errors[0].ends_with("failed with exit code 3"),
            "{}",
            p.errors[0]
        );
        let f = p.failures();
        assert_eq!(f.len(), 1);
        assert!(f[0].0.ends_with("-nixos-image-raw-efi.drv"));
        assert_eq!(
            f[0].1.last().unwrap(),
            "mkfs.ext4: Could not allocate block in ext2 filesystem"
        );
    }

    #[test]
    fn recorded_nix_2_8_substitution_counts_downloads() {
        let p = fixture("nix-2.8-substitute.log");
        assert_eq!((p.downloads.done, p.downloads.expected), (4, 4));
        assert_eq!(p.builds.expected, 0);
    }

    #[test]
    fn recorded_nix_2_8_eval_error() {
        let p = fixture("nix-2.8-experimental-disabled.log");
        assert!(p.errors[0].contains("experimental Nix feature 'nix-command' is disabled"));
    }

    #[test]
    fn plain_lines_are_kept_and_bad_json_is_an_error() {
        let mut p = Progress::new();
        assert!(!p.feed("warning: Git tree is dirty", 1).unwrap());
        assert_eq!(p.plain.back().unwrap(), "warning: Git tree is dirty");
        let err = p.feed("@nix {not json", 7).unwrap_err();
        assert!(err.to_string().starts_with("internal-json line 7:"));
    }

    #[test]
    fn log_tail_is_bounded() {
        let mut p = Progress::new();
        p.feed(
            r#"@nix {"action":"start","id":5,"type":105,"fields":["/nix/store/a.drv","",1,1]}"#,
            1,
        )
        .unwrap();
        for i in 0..100 {
            let l =
                format!(r#"@nix {{"action":"result","id":5,"type":101,"fields":["line {i}"]}}"#);
            p.feed(&l, i + 2).unwrap();
        }
        let t = p.log_tail("/nix/store/a.drv");
        assert_eq!(t.len(), LOG_TAIL);
        assert_eq!(t.last().unwrap(), "line 99");
    }
}
