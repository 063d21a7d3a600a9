//! The report as Markdown, for a CI job summary: the totals, then each failure with where
//! it happened, its message and the first lines of its database changes. The runner
//! appends it to `$GITHUB_STEP_SUMMARY` when that is set.

use std::fmt::Write as _;

use super::journey_result::JourneyResult;
use super::model::{ItemResult, Status, StepResult};
use super::text::diff_details;
use crate::capture::Diff;
use crate::journey::format::fmt_duration;

/// How many lines of a diff a failure shows.
const DIFF_LINES: usize = 6;

impl JourneyResult {
    /// The report as Markdown: a heading with the verdict, a table of totals, and each
    /// failure with its journey > branch > path > step, its message and the first lines
    /// of the database changes. Written to `$GITHUB_STEP_SUMMARY` (appended) after each
    /// run when that variable is set, as GitHub Actions sets it.
    pub fn to_markdown(&self) -> String {
        let (passed, failed, skipped) = self.path_counts();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### {} journey {} {}\n",
            if self.passed() { "✅" } else { "❌" },
            code(&self.journey_name),
            if self.passed() { "passed" } else { "FAILED" }
        );
        let steps: Vec<&StepResult> = self.step_results().collect();
        let _ = writeln!(
            out,
            "| paths passed | failed | skipped | main steps | time | rollbacks |\n|---:|---:|---:|---:|---:|---:|\n| {passed} | {failed} | {skipped} | {} of {} passed | {} | {} ({}) |\n",
            steps.iter().filter(|s| s.passed()).count(),
            steps.len(),
            fmt_duration(self.duration),
            self.rollbacks(),
            fmt_duration(self.rollback_time()),
        );
        let mut n = 0;
        let mut failure = |out: &mut String,
                           place: String,
                           s: &StepResult,
                           diff: Option<&Result<Diff, String>>| {
            let Some(f) = s.failure.as_ref().filter(|_| s.status == Status::Failed) else {
                return;
            };
            n += 1;
            let _ = writeln!(
                out,
                "{n}. {place} › step {}: {}",
                code(&s.name),
                one_line(&f.message)
            );
            match diff {
                Some(Ok(d)) if !d.is_empty() => {
                    let details = diff_details(d, "");
                    let mut lines: Vec<&str> = details.lines().collect();
                    let more = lines.len().saturating_sub(DIFF_LINES);
                    lines.truncate(DIFF_LINES);
                    let _ = writeln!(out, "   ```text\n   {d}");
                    for l in lines {
                        let _ = writeln!(out, "   {l}");
                    }
                    if more > 0 {
                        let _ = writeln!(out, "   ... {more} more lines in the full report");
                    }
                    let _ = writeln!(out, "   ```");
                }
                Some(Err(e)) => {
                    let _ = writeln!(out, "   database changes not available: {}", one_line(e));
                }
                _ => {}
            }
        };
        let mut failures = String::new();
        for item in &self.items {
            match item {
                ItemResult::Step(s) => failure(
                    &mut failures,
                    code(&self.journey_name),
                    s,
                    self.main_diff.as_ref(),
                ),
                ItemResult::Checkpoint { .. } => {}
                ItemResult::Branch(b) => {
                    for p in &b.path_results {
                        for s in &p.step_results {
                            let place = format!(
                                "{} › branch from {} › path {}",
                                code(&self.journey_name),
                                code(&b.checkpoint_name),
                                code(&p.path_name)
                            );
                            failure(&mut failures, place, s, p.diff.as_ref());
                        }
                    }
                }
            }
        }
        for e in self.state_errors() {
            n += 1;
            let _ = writeln!(failures, "{n}. state manager: {}", one_line(e));
        }
        if !failures.is_empty() {
            let _ = writeln!(out, "**Failures**\n\n{failures}");
        }
        out
    }
}

/// `text` as inline code (backticks inside become `'`).
pub(crate) fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

/// `text` on one line, for a list item.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Appends the Markdown `markdown` builds to the file `$GITHUB_STEP_SUMMARY` names, when
/// it is set (and builds nothing otherwise): GitHub Actions shows that file on the job's
/// page. A failure to write is logged, not raised.
pub(crate) fn append_step_summary(markdown: impl FnOnce() -> String) {
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        append_to(std::path::Path::new(&path), &markdown());
    }
}

fn append_to(path: &std::path::Path, markdown: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{markdown}\n").as_bytes()));
    if let Err(e) = written {
        tracing::warn!(target: "venomqa", error = %e, file = %path.display(), "appending to GITHUB_STEP_SUMMARY failed");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_summaries_are_appended_one_after_the_other() {
        let file = std::env::temp_dir().join(format!("venomqa-summary-{}.md", std::process::id()));
        let _ = std::fs::remove_file(&file);
        super::append_to(&file, "### first\n");
        super::append_to(&file, "### second\n");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "### first\n\n### second\n\n"
        );
        std::fs::remove_file(&file).unwrap();
        // A file that cannot be written is logged, not raised.
        super::append_to(std::path::Path::new("/nonexistent-dir/summary.md"), "x");
    }
}
