//! An [`ExplorationResult`] as Markdown, for a CI job summary: the totals, then each
//! violation with its shrunk sequence, its message and the first lines of the database
//! after its last action. The explorer appends it to `$GITHUB_STEP_SUMMARY` when set.

use std::fmt::Write as _;

use crate::journey::{diff_details, fmt_duration, markdown_code as code, one_line};

use super::ExplorationResult;

/// How many lines of a diff a violation shows.
const DIFF_LINES: usize = 6;

impl ExplorationResult {
    /// The report as Markdown: a heading with the verdict, a table of totals, each
    /// violation (invariant, message, shrunk sequence, the first lines of the database
    /// after it) and the fault, if one stopped it. Written to `$GITHUB_STEP_SUMMARY`
    /// (appended) after each run when that variable is set.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### {} exploration {} {}\n",
            if self.passed() { "✅" } else { "❌" },
            code(&self.world),
            if self.passed() { "passed" } else { "FAILED" }
        );
        let _ = writeln!(
            out,
            "| violations | states | steps | actions run | time | rollbacks | stopped |\n|---:|---:|---:|---:|---:|---:|---|\n| {} | {} | {} | {} of {} | {} | {} ({}) | {} |\n",
            self.violations.len(),
            self.states,
            self.steps,
            self.coverage.actions_run(),
            self.coverage.actions.len(),
            fmt_duration(self.duration),
            self.rollbacks,
            fmt_duration(self.rollback_time),
            self.stopped_because(),
        );
        if !self.violations.is_empty() {
            let _ = writeln!(out, "**Violations**\n");
        }
        for (n, v) in self.violations.iter().enumerate() {
            let sequence: Vec<String> = v.sequence.iter().map(|a| code(a)).collect();
            let _ = writeln!(
                out,
                "{}. invariant {} ({}): {}\n   after {}",
                n + 1,
                code(&v.invariant),
                v.severity,
                one_line(&v.message),
                if sequence.is_empty() {
                    "the setup".to_owned()
                } else {
                    sequence.join(" → ")
                }
            );
            if let Some(d) = v.path.last().and_then(|p| p.diff.as_ref()) {
                if !d.is_empty() {
                    let details = diff_details(d, "");
                    let lines: Vec<&str> = details.lines().collect();
                    let _ = writeln!(out, "   ```text\n   {d}");
                    for l in lines.iter().take(DIFF_LINES) {
                        let _ = writeln!(out, "   {l}");
                    }
                    if lines.len() > DIFF_LINES {
                        let _ = writeln!(
                            out,
                            "   ... {} more lines in the full report",
                            lines.len() - DIFF_LINES
                        );
                    }
                    let _ = writeln!(out, "   ```");
                }
            }
        }
        if let Some(f) = &self.fault {
            let _ = writeln!(out, "\n**Fault**: {}", one_line(&f.to_string()));
        }
        if let Err(e) = &self.cleanup {
            let _ = writeln!(out, "\n**Cleanup failed**: {}", one_line(e));
        }
        out
    }
}
