//! The report as people read it: the one-line summary, the tree (journey > branch >
//! path > step, each with its status and time) and the failures with their requests,
//! responses and database changes (`Display` of [`JourneyResult`]).

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::journey_result::JourneyResult;
use super::model::{ItemResult, Status, StepResult};
use crate::capture::{ChangeKind, Diff};
use crate::journey::format::{cut, fmt_duration};

impl JourneyResult {
    /// One line: `journey checkout passed: 8 of 8 paths passed in 3 branches (1.24 s; 9
    /// rollbacks, 31 ms)`.
    pub fn summary(&self) -> String {
        let (passed, failed, skipped) = self.path_counts();
        let branches = self.branch_results().count();
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        let mut s = if branches == 0 {
            let steps: Vec<&StepResult> = self.step_results().collect();
            let ok = steps.iter().filter(|s| s.passed()).count();
            format!(
                "journey {} {verdict}: {ok} of {} steps passed",
                self.journey_name,
                steps.len()
            )
        } else {
            format!(
                "journey {} {verdict}: {passed} of {} paths passed",
                self.journey_name,
                passed + failed + skipped,
            )
        };
        if failed > 0 || skipped > 0 {
            let mut parts = Vec::new();
            if failed > 0 {
                parts.push(format!("{failed} failed"));
            }
            if skipped > 0 {
                parts.push(format!("{skipped} skipped"));
            }
            let _ = write!(s, " ({})", parts.join(", "));
        }
        if branches > 0 {
            let _ = write!(
                s,
                " in {branches} branch{}",
                if branches == 1 { "" } else { "es" }
            );
        }
        let steps_failed = self
            .step_results()
            .filter(|s| s.status == Status::Failed)
            .count();
        if steps_failed > 0 && branches > 0 {
            let _ = write!(s, ", a main step failed");
        }
        let _ = write!(
            s,
            " ({}; {} rollbacks, {}",
            fmt_duration(self.duration),
            self.rollbacks(),
            fmt_duration(self.rollback_time())
        );
        if self.workers() > 1 {
            let _ = write!(s, "; {} workers", self.workers());
        }
        s.push(')');
        s
    }

    /// The failures section: each failure with where it happened, its request and
    /// response, the database changes and a suggestion.
    pub fn failures(&self) -> String {
        let mut out = String::new();
        let mut n = 0;
        let mut one = |out: &mut String,
                       location: String,
                       s: &StepResult,
                       diff: Option<(&str, &Result<Diff, String>)>| {
            let Some(f) = s.failure.as_ref().filter(|_| s.status == Status::Failed) else {
                return;
            };
            n += 1;
            let _ = writeln!(out, "{n}) {location} > step {}", s.name);
            let _ = writeln!(out, "   {}", f.message);
            // Before the requests, so that "shown with this failure" reads downwards.
            let _ = writeln!(out, "   suggestion: {}", f.kind.suggestion());
            let shown = s.exchanges.len().saturating_sub(3);
            if shown > 0 {
                let _ = writeln!(out, "   ({shown} earlier requests of this step not shown)");
            }
            for ex in &s.exchanges[shown..] {
                let _ = write!(out, "{ex:3}");
            }
            if let Some((what, diff)) = diff {
                match diff {
                    Ok(d) => {
                        let _ = writeln!(out, "   database changes {what}: {d}");
                        let _ = write!(out, "{}", diff_details(d, "     "));
                    }
                    Err(e) => {
                        let _ = writeln!(out, "   database changes {what}: not available ({e})");
                    }
                }
            }
        };
        for item in &self.items {
            match item {
                ItemResult::Step(s) => one(
                    &mut out,
                    self.journey_name.clone(),
                    s,
                    self.main_diff
                        .as_ref()
                        .map(|d| ("since the journey began", d)),
                ),
                ItemResult::Checkpoint { .. } => {}
                ItemResult::Branch(b) => {
                    for p in &b.path_results {
                        let what = format!("in this path (since checkpoint {})", b.checkpoint_name);
                        for s in &p.step_results {
                            one(
                                &mut out,
                                format!(
                                    "{} > branch from {} > path {}",
                                    self.journey_name, b.checkpoint_name, p.path_name
                                ),
                                s,
                                p.diff.as_ref().map(|d| (what.as_str(), d)),
                            );
                        }
                    }
                }
            }
        }
        for e in self.state_errors() {
            n += 1;
            let _ = writeln!(out, "{n}) {} (state manager)\n   {e}", self.journey_name);
        }
        out
    }

    fn tree(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}",
            if self.passed() { "✓" } else { "✗" },
            self.summary()
        )?;
        let n = self.items.len();
        for (i, item) in self.items.iter().enumerate() {
            let last = i + 1 == n;
            let (head, tail) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            match item {
                ItemResult::Step(s) => step_line(f, head, tail, s)?,
                ItemResult::Checkpoint { name, made } => {
                    line(
                        f,
                        head,
                        &format!("◆ checkpoint {name}"),
                        if *made { "" } else { "not made" },
                    )?;
                }
                ItemResult::Branch(b) => {
                    let (p, fl, sk) =
                        b.path_results
                            .iter()
                            .fold((0, 0, 0), |c, p| match p.status {
                                Status::Passed => (c.0 + 1, c.1, c.2),
                                Status::Failed => (c.0, c.1 + 1, c.2),
                                Status::Skipped => (c.0, c.1, c.2 + 1),
                            });
                    let mut label = format!(
                        "{} branch from {} ({p}/{} paths passed",
                        b.status().mark(),
                        b.checkpoint_name,
                        p + fl + sk
                    );
                    if sk > 0 {
                        let _ = write!(label, ", {sk} skipped");
                    }
                    label.push(')');
                    line(f, head, &label, &time(b.duration, b.status()))?;
                    let m = b.path_results.len();
                    for (j, path) in b.path_results.iter().enumerate() {
                        let last = j + 1 == m;
                        let (h2, t2) = if last {
                            ("└─ ", "   ")
                        } else {
                            ("├─ ", "│  ")
                        };
                        line(
                            f,
                            &format!("{tail}{h2}"),
                            &format!("{} path {}", path.status.mark(), path.path_name),
                            &time(path.duration, path.status),
                        )?;
                        let k = path.step_results.len();
                        for (x, s) in path.step_results.iter().enumerate() {
                            let last = x + 1 == k;
                            let (h3, t3) = if last {
                                ("└─ ", "   ")
                            } else {
                                ("├─ ", "│  ")
                            };
                            step_line(
                                f,
                                &format!("{tail}{t2}{h3}"),
                                &format!("{tail}{t2}{t3}"),
                                s,
                            )?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for JourneyResult {
    /// The tree, then the failures (if any).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.tree(f)?;
        let failures = self.failures();
        if !failures.is_empty() {
            writeln!(f, "\nFailures ({}):\n", self.issues.len())?;
            f.write_str(&failures)?;
        }
        Ok(())
    }
}

const WIDTH: usize = 64;

fn line(f: &mut fmt::Formatter<'_>, prefix: &str, label: &str, right: &str) -> fmt::Result {
    let used = prefix.chars().count() + label.chars().count();
    let pad = WIDTH.saturating_sub(used).max(1);
    if right.is_empty() {
        writeln!(f, "{prefix}{label}")
    } else {
        writeln!(f, "{prefix}{label}{:pad$}{right:>9}", "")
    }
}

fn step_line(f: &mut fmt::Formatter<'_>, head: &str, tail: &str, s: &StepResult) -> fmt::Result {
    let mut label = format!("{} {}", s.status.mark(), s.name);
    if s.attempts > 1 {
        let _ = write!(label, " ({} attempts)", s.attempts);
    }
    line(f, head, &label, &time(s.duration, s.status))?;
    if s.status == Status::Failed {
        if let Some(ex) = s.exchanges.last() {
            writeln!(f, "{tail}  {}", ex.summary())?;
        }
        if let Some(fail) = &s.failure {
            writeln!(f, "{tail}  {}", cut(&fail.message, 240))?;
        }
    }
    Ok(())
}

fn time(d: Duration, status: Status) -> String {
    match status {
        Status::Skipped => "skipped".to_owned(),
        _ => fmt_duration(d),
    }
}

/// The rows of `diff`, one line each, with old and new values of updated columns.
pub(crate) fn diff_details(diff: &Diff, pad: &str) -> String {
    let mut out = String::new();
    for t in diff.tables() {
        for r in t.rows.iter().take(5) {
            let kind = match r.kind {
                ChangeKind::Inserted => "inserted",
                ChangeKind::Updated => "updated",
                ChangeKind::Deleted => "deleted",
            };
            let cols: Vec<String> = r
                .columns
                .iter()
                .map(|c| format!("{}: {} -> {}", c.column, cut(&c.old, 60), cut(&c.new, 60)))
                .collect();
            let _ = write!(out, "{pad}{} {kind} {}", t.table, r.key);
            if !cols.is_empty() {
                let _ = write!(out, " ({})", cols.join(", "));
            }
            out.push('\n');
        }
        let more = (t.rows.len() as u64 + t.omitted).saturating_sub(5);
        if more > 0 {
            let _ = writeln!(out, "{pad}{} ... {more} more rows", t.table);
        }
    }
    out
}
