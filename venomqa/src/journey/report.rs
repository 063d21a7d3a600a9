//! What a journey run produced: [`JourneyResult`] and its parts, shown as a tree in the
//! terminal (`Display`), as JUnit XML and as JSON for CI.

use std::fmt::{self, Write as _};
use std::path::Path as FsPath;
use std::time::Duration;

use serde_json::{json, Value};

use crate::capture::{ChangeKind, Diff};

use super::client::Exchange;
use super::format::{cut, fmt_duration};
use super::{Branch, Path, Step};

/// Whether a step, path, branch or journey passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// It ran and passed.
    Passed,
    /// It ran and failed.
    Failed,
    /// It did not run (an earlier failure, `fail_fast`).
    Skipped,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Passed => "✓",
            Status::Failed => "✗",
            Status::Skipped => "○",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// What kind of failure failed a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A status, body or JSON expectation was not met.
    Expectation,
    /// The server could not be reached.
    Unreachable,
    /// A request timed out.
    Timeout,
    /// The step panicked.
    Panic,
    /// An invariant was violated after the step.
    Invariant,
    /// The step was expected to fail and did not.
    UnexpectedSuccess,
    /// The action returned another error.
    Error,
}

impl FailureKind {
    fn name(self) -> &'static str {
        match self {
            FailureKind::Expectation => "expectation",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Timeout => "timeout",
            FailureKind::Panic => "panic",
            FailureKind::Invariant => "invariant",
            FailureKind::UnexpectedSuccess => "unexpected_success",
            FailureKind::Error => "error",
        }
    }

    fn suggestion(self) -> &'static str {
        match self {
            FailureKind::Expectation => "compare the request and the response below; if the API changed on purpose, update the step's expectation",
            FailureKind::Unreachable => "check that the API server is running at the client's base URL (it may have crashed: look at its output)",
            FailureKind::Timeout => "the server did not answer in time: look at what it was doing, or raise Step::timeout / Client::timeout",
            FailureKind::Panic => "the step's code panicked; return Err(..) for failures you expect",
            FailureKind::Invariant => "the API left data the invariant forbids: look at the database changes of this path",
            FailureKind::UnexpectedSuccess => "the API accepted what it should refuse",
            FailureKind::Error => "see the error; the request and the response are below",
        }
    }

    fn severity(self) -> Severity {
        match self {
            FailureKind::Invariant => Severity::Critical,
            FailureKind::Unreachable | FailureKind::Panic => Severity::High,
            _ => Severity::High,
        }
    }
}

/// Why a step failed: its kind and a one-line message naming the request or the
/// invariant, with expected and actual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// The kind.
    pub kind: FailureKind,
    /// The message.
    pub message: String,
}

impl StepFailure {
    pub(crate) fn new(kind: FailureKind, message: String) -> Self {
        StepFailure { kind, message }
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What one step did: Python's `StepResult(request, response, error, duration_ms)`, with
/// every exchange of the step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepResult {
    /// The step's name.
    pub name: String,
    /// The step's description.
    pub description: Option<String>,
    /// Passed, failed or skipped.
    pub status: Status,
    /// How long it took (invariants included).
    pub duration: Duration,
    /// How many times the action ran (more than 1 with retries).
    pub attempts: u32,
    /// Every request it sent and what came back (secrets redacted, bodies cut).
    pub exchanges: Vec<Exchange>,
    /// Why it failed, or why it was skipped.
    pub failure: Option<StepFailure>,
}

impl StepResult {
    pub(crate) fn skipped(step: &Step, reason: &str) -> Self {
        StepResult {
            name: step.name.clone(),
            description: step.description.clone(),
            status: Status::Skipped,
            duration: Duration::ZERO,
            attempts: 0,
            exchanges: Vec::new(),
            failure: Some(StepFailure::new(
                FailureKind::Error,
                format!("skipped: {reason}"),
            )),
        }
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }

    /// The error message, if it failed.
    pub fn error(&self) -> Option<&str> {
        match self.status {
            Status::Failed => self.failure.as_ref().map(|f| f.message.as_str()),
            _ => None,
        }
    }

    /// The last exchange (request and response), as Python's `request` / `response`.
    pub fn last_exchange(&self) -> Option<&Exchange> {
        self.exchanges.last()
    }
}

/// What one path did: Python's `PathResult(path_name, success, step_results)`, plus the
/// database changes of a failed path.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PathResult {
    /// The path's name.
    pub path_name: String,
    /// The checkpoint its branch is on.
    pub checkpoint_name: String,
    /// The path's description.
    pub description: Option<String>,
    /// Passed, failed or skipped.
    pub status: Status,
    /// Its steps.
    pub step_results: Vec<StepResult>,
    /// How long it took (the rollback after it not included).
    pub duration: Duration,
    /// For a failed path: what it changed in the database since the checkpoint (the
    /// capture diff), or why that could not be read.
    pub diff: Option<Result<Diff, String>>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
}

impl PathResult {
    pub(crate) fn new(
        path: &Path,
        checkpoint: &str,
        step_results: Vec<StepResult>,
        duration: Duration,
        diff: Option<Result<Diff, String>>,
    ) -> Self {
        let status = if step_results.iter().any(|s| s.status == Status::Failed) {
            Status::Failed
        } else {
            Status::Passed
        };
        PathResult {
            path_name: path.name.clone(),
            checkpoint_name: checkpoint.to_owned(),
            description: path.description.clone(),
            status,
            step_results,
            duration,
            diff,
            skip_reason: None,
        }
    }

    pub(crate) fn skipped(path: &Path, checkpoint: &str, reason: &str) -> Self {
        PathResult {
            path_name: path.name.clone(),
            checkpoint_name: checkpoint.to_owned(),
            description: path.description.clone(),
            status: Status::Skipped,
            step_results: path
                .steps
                .iter()
                .map(|s| StepResult::skipped(s, reason))
                .collect(),
            duration: Duration::ZERO,
            diff: None,
            skip_reason: Some(reason.to_owned()),
        }
    }

    /// Whether it passed (Python's `success`).
    pub fn success(&self) -> bool {
        self.status == Status::Passed
    }
}

/// What one branch did: Python's `BranchResult(checkpoint_name, path_results)`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BranchResult {
    /// The checkpoint it branched from.
    pub checkpoint_name: String,
    /// Its paths, in order.
    pub path_results: Vec<PathResult>,
    /// How long the branch took, rollbacks included.
    pub duration: Duration,
}

impl BranchResult {
    pub(crate) fn new(checkpoint: &str, path_results: Vec<PathResult>, duration: Duration) -> Self {
        BranchResult {
            checkpoint_name: checkpoint.to_owned(),
            path_results,
            duration,
        }
    }

    pub(crate) fn skipped(branch: &Branch, reason: &str) -> Self {
        BranchResult {
            checkpoint_name: branch.checkpoint.clone(),
            path_results: branch
                .paths
                .iter()
                .map(|p| PathResult::skipped(p, &branch.checkpoint, reason))
                .collect(),
            duration: Duration::ZERO,
        }
    }

    /// Passed when every path passed; skipped when every path was skipped.
    pub fn status(&self) -> Status {
        if self.path_results.iter().any(|p| p.status == Status::Failed) {
            Status::Failed
        } else if self
            .path_results
            .iter()
            .all(|p| p.status == Status::Skipped)
        {
            Status::Skipped
        } else {
            Status::Passed
        }
    }
}

/// One item of the journey as it ran, in journey order.
#[derive(Debug, Clone)]
pub enum ItemResult {
    /// A step of the main sequence.
    Step(StepResult),
    /// A checkpoint, and whether it was made.
    Checkpoint {
        /// Its name.
        name: String,
        /// Whether it was made (not when an earlier failure stopped the journey).
        made: bool,
    },
    /// A branch.
    Branch(BranchResult),
}

/// How bad an [`Issue`] is (Python's severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The database may be left dirty, or an invariant broke.
    Critical,
    /// A step failed.
    High,
    /// Worth a look.
    Medium,
    /// Minor.
    Low,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        })
    }
}

/// One problem found: Python's `Issue(journey, path, step, error, severity, suggestion)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Issue {
    /// The journey.
    pub journey: String,
    /// The checkpoint of the branch, if the step is in a path.
    pub branch: Option<String>,
    /// The path, if any.
    pub path: Option<String>,
    /// The step (empty for a rollback problem).
    pub step: String,
    /// The error message.
    pub error: String,
    /// How bad it is.
    pub severity: Severity,
    /// What to do about it.
    pub suggestion: String,
}

impl Issue {
    /// `journey > branch from cp > path p > step s`.
    pub fn location(&self) -> String {
        let mut s = self.journey.clone();
        if let Some(b) = &self.branch {
            let _ = write!(s, " > branch from {b}");
        }
        if let Some(p) = &self.path {
            let _ = write!(s, " > path {p}");
        }
        if !self.step.is_empty() {
            let _ = write!(s, " > step {}", self.step);
        }
        s
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {} (suggestion: {})",
            self.severity,
            self.location(),
            self.error,
            self.suggestion
        )
    }
}

/// Where a step runs, for messages: the path, if the step is in one.
pub(crate) struct Place {
    pub(crate) path: Option<String>,
}

/// What a journey run produced: Python's `JourneyResult`.
///
/// `Display` is the tree (journey > branch > path > step, each with its status and time)
/// followed by every failure with its request, response and database changes.
/// [`assert_passed`](Self::assert_passed) panics with that text; [`to_junit`](Self::to_junit)
/// and [`to_json`](Self::to_json) are for CI.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JourneyResult {
    /// The journey's name.
    pub journey_name: String,
    /// The journey's description.
    pub description: Option<String>,
    /// Every item, in journey order.
    pub items: Vec<ItemResult>,
    /// How long the run took, the final rollback included.
    pub duration: Duration,
    /// If a main step failed: what the journey had changed in the database.
    pub main_diff: Option<Result<Diff, String>>,
    /// Every problem, in order.
    pub issues: Vec<Issue>,
    rollbacks: usize,
    rollback_time: Duration,
    cleanup_time: Duration,
    state_errors: Vec<String>,
    workers: usize,
}

impl JourneyResult {
    pub(crate) fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// How many workers ran the paths (1 unless [`parallel_paths`](super::JourneyRunner::parallel_paths)).
    pub fn workers(&self) -> usize {
        self.workers
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        journey_name: String,
        description: Option<String>,
        items: Vec<ItemResult>,
        main_diff: Option<Result<Diff, String>>,
        duration: Duration,
        rollbacks: usize,
        rollback_time: Duration,
        cleanup_time: Duration,
        state_errors: Vec<String>,
    ) -> Self {
        let mut result = JourneyResult {
            journey_name,
            description,
            items,
            duration,
            main_diff,
            issues: Vec::new(),
            rollbacks,
            rollback_time,
            cleanup_time,
            state_errors,
            workers: 1,
        };
        result.issues = result.collect_issues();
        result
    }

    fn collect_issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        let issue = |branch: Option<&str>, path: Option<&str>, s: &StepResult| {
            s.failure
                .as_ref()
                .filter(|_| s.status == Status::Failed)
                .map(|f| Issue {
                    journey: self.journey_name.clone(),
                    branch: branch.map(str::to_owned),
                    path: path.map(str::to_owned),
                    step: s.name.clone(),
                    error: f.message.clone(),
                    severity: f.kind.severity(),
                    suggestion: f.kind.suggestion().to_owned(),
                })
        };
        for item in &self.items {
            match item {
                ItemResult::Step(s) => issues.extend(issue(None, None, s)),
                ItemResult::Checkpoint { .. } => {}
                ItemResult::Branch(b) => {
                    for p in &b.path_results {
                        for s in &p.step_results {
                            issues.extend(issue(Some(&b.checkpoint_name), Some(&p.path_name), s));
                        }
                    }
                }
            }
        }
        for e in &self.state_errors {
            issues.push(Issue {
                journey: self.journey_name.clone(),
                branch: None,
                path: None,
                step: String::new(),
                error: e.clone(),
                severity: Severity::Critical,
                suggestion: "the database may not be at its checkpoint: check the state manager's connection, and look at the database before running again".to_owned(),
            });
        }
        issues
    }

    /// Whether every step and path passed and every rollback succeeded (Python's
    /// `success`).
    pub fn passed(&self) -> bool {
        self.issues.is_empty()
    }

    /// The main sequence's steps (Python's `step_results`).
    pub fn step_results(&self) -> impl Iterator<Item = &StepResult> {
        self.items.iter().filter_map(|i| match i {
            ItemResult::Step(s) => Some(s),
            _ => None,
        })
    }

    /// The branches (Python's `branch_results`).
    pub fn branch_results(&self) -> impl Iterator<Item = &BranchResult> {
        self.items.iter().filter_map(|i| match i {
            ItemResult::Branch(b) => Some(b),
            _ => None,
        })
    }

    /// Every path of every branch.
    pub fn path_results(&self) -> impl Iterator<Item = &PathResult> {
        self.branch_results().flat_map(|b| b.path_results.iter())
    }

    /// The path named `name`, if the journey has one.
    pub fn path(&self, name: &str) -> Option<&PathResult> {
        self.path_results().find(|p| p.path_name == name)
    }

    /// How many rollbacks to a branch checkpoint ran (the final one not counted).
    pub fn rollbacks(&self) -> usize {
        self.rollbacks
    }

    /// The time those rollbacks took (added up over the workers).
    pub fn rollback_time(&self) -> Duration {
        self.rollback_time
    }

    /// The time of the final rollback to [`JOURNEY_CHECKPOINT`](super::JOURNEY_CHECKPOINT).
    pub fn cleanup_time(&self) -> Duration {
        self.cleanup_time
    }

    /// Failures of the state manager (checkpoint or rollback) during the run.
    pub fn state_errors(&self) -> &[String] {
        &self.state_errors
    }

    /// `(passed, failed, skipped)` paths.
    pub fn path_counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for p in self.path_results() {
            match p.status {
                Status::Passed => c.0 += 1,
                Status::Failed => c.1 += 1,
                Status::Skipped => c.2 += 1,
            }
        }
        c
    }

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
            self.rollbacks,
            fmt_duration(self.rollback_time)
        );
        if self.workers > 1 {
            let _ = write!(s, "; {} workers", self.workers);
        }
        s.push(')');
        s
    }

    /// Panics with the whole report (tree and failures) unless the journey passed.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{self}");
        }
    }

    /// `Ok(self)` if it passed, else an error whose `Display` and `Debug` are the whole
    /// report, for tests returning `Result`.
    pub fn into_result(self) -> Result<Self, JourneyFailed> {
        if self.passed() {
            Ok(self)
        } else {
            Err(JourneyFailed(Box::new(self)))
        }
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
            let _ = writeln!(out, "   suggestion: {}", f.kind.suggestion());
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
        for e in &self.state_errors {
            n += 1;
            let _ = writeln!(out, "{n}) {} (state manager)\n   {e}", self.journey_name);
        }
        out
    }

    /// The report as JUnit XML: one `<testsuite>` for the journey, one `<testcase>` for
    /// its main steps and one per path.
    pub fn to_junit(&self) -> String {
        junit_xml(std::slice::from_ref(self))
    }

    /// The report as JSON: every item, step, exchange (redacted), failure and diff.
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| match i {
                ItemResult::Step(s) => json!({"type": "step", "step": step_json(s)}),
                ItemResult::Checkpoint { name, made } => {
                    json!({"type": "checkpoint", "name": name, "made": made})
                }
                ItemResult::Branch(b) => json!({
                    "type": "branch",
                    "checkpoint_name": b.checkpoint_name,
                    "status": b.status().word(),
                    "duration_ms": ms(b.duration),
                    "path_results": b.path_results.iter().map(|p| json!({
                        "path_name": p.path_name,
                        "status": p.status.word(),
                        "success": p.success(),
                        "duration_ms": ms(p.duration),
                        "skip_reason": p.skip_reason,
                        "diff": p.diff.as_ref().map(diff_json),
                        "step_results": p.step_results.iter().map(step_json).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }),
            })
            .collect();
        let (passed, failed, skipped) = self.path_counts();
        json!({
            "journey": self.journey_name,
            "description": self.description,
            "success": self.passed(),
            "duration_ms": ms(self.duration),
            "paths": {"passed": passed, "failed": failed, "skipped": skipped},
            "rollbacks": self.rollbacks,
            "rollback_ms": ms(self.rollback_time),
            "cleanup_ms": ms(self.cleanup_time),
            "main_diff": self.main_diff.as_ref().map(diff_json),
            "items": items,
            "issues": self.issues.iter().map(|i| json!({
                "journey": i.journey,
                "branch": i.branch,
                "path": i.path,
                "step": i.step,
                "error": i.error,
                "severity": i.severity.to_string(),
                "suggestion": i.suggestion,
            })).collect::<Vec<_>>(),
        })
    }

    /// Writes `<dir>/<journey>.xml` and `<dir>/<journey>.json`.
    pub fn write_reports(&self, dir: &FsPath) -> std::io::Result<()> {
        write_report_files(
            dir,
            "",
            &self.journey_name,
            &self.to_junit(),
            &self.to_json(),
        )
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

/// A journey that did not pass, from [`JourneyResult::into_result`]: `Display` and
/// `Debug` print the whole report.
pub struct JourneyFailed(pub Box<JourneyResult>);

impl fmt::Display for JourneyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for JourneyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{}", self.0)
    }
}

impl std::error::Error for JourneyFailed {}

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

/// Writes `<dir>/<prefix><name>.xml` and `.json`, the name made safe for a file name
/// (anything but ASCII letters, digits, `-` and `_` becomes `_`).
pub(crate) fn write_report_files(
    dir: &FsPath,
    prefix: &str,
    name: &str,
    junit: &str,
    json: &Value,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::write(dir.join(format!("{prefix}{stem}.xml")), junit)?;
    std::fs::write(
        dir.join(format!("{prefix}{stem}.json")),
        serde_json::to_string_pretty(json).unwrap_or_default(),
    )
}

pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
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

pub(crate) fn diff_json(diff: &Result<Diff, String>) -> Value {
    match diff {
        Err(e) => json!({"error": e}),
        Ok(d) => json!({
            "summary": d.to_string(),
            "tables": d.tables().iter().map(|t| json!({
                "table": t.table,
                "inserted": t.inserted,
                "updated": t.updated,
                "deleted": t.deleted,
                "rows": t.rows.iter().map(|r| json!({
                    "kind": format!("{:?}", r.kind).to_lowercase(),
                    "key": r.key,
                    "cascade": r.cascade,
                    "columns": r.columns.iter().map(|c| json!({"column": c.column, "old": c.old, "new": c.new})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "omitted": t.omitted,
            })).collect::<Vec<_>>(),
        }),
    }
}

fn step_json(s: &StepResult) -> Value {
    json!({
        "name": s.name,
        "status": s.status.word(),
        "duration_ms": ms(s.duration),
        "attempts": s.attempts,
        "error": s.failure.as_ref().map(|f| f.message.clone()),
        "failure_kind": s.failure.as_ref().filter(|_| s.status == Status::Failed).map(|f| f.kind.name()),
        "exchanges": s.exchanges.iter().map(exchange_json).collect::<Vec<_>>(),
    })
}

/// One recorded exchange (already redacted) as JSON.
pub(crate) fn exchange_json(e: &Exchange) -> Value {
    json!({
        "method": e.method.as_str(),
        "url": e.url,
        "request_headers": e.request_headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "request_body": e.request_body,
        "duration_ms": ms(e.duration),
        "response": match &e.response {
            Ok(r) => json!({
                "status": r.status,
                "headers": r.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                "body": r.body,
            }),
            Err(err) => json!({"error": err}),
        },
    })
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
pub(crate) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML for several journeys: one `<testsuite>` each, a `<testcase>` for the main
/// steps and one per path (`classname` = `journey.checkpoint`), `<failure>` with the
/// request, response and database changes, `<skipped>` with the reason.
pub fn junit_xml(results: &[JourneyResult]) -> String {
    let mut suites = String::new();
    let (mut all_tests, mut all_failures, mut all_skipped) = (0, 0, 0);
    let mut all_time = 0.0;
    for r in results {
        let mut cases = String::new();
        let (mut tests, mut failures, mut skipped) = (0, 0, 0);
        let case = |cases: &mut String,
                    classname: &str,
                    name: &str,
                    time: Duration,
                    status: Status,
                    message: Option<String>,
                    detail: String| {
            let _ = write!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(classname),
                xml(name),
                time.as_secs_f64()
            );
            match status {
                Status::Passed => cases.push_str("/>\n"),
                Status::Failed => {
                    let _ = write!(
                        cases,
                        ">\n      <failure message=\"{}\" type=\"journey\">{}</failure>\n    </testcase>\n",
                        xml(&message.unwrap_or_default()),
                        xml(&detail)
                    );
                }
                Status::Skipped => {
                    let _ = write!(
                        cases,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml(&message.unwrap_or_default())
                    );
                }
            }
        };
        let main: Vec<&StepResult> = r.step_results().collect();
        if !main.is_empty() {
            let status = if main.iter().any(|s| s.status == Status::Failed) {
                Status::Failed
            } else {
                Status::Passed
            };
            let message = main
                .iter()
                .find_map(|s| s.error().map(|e| format!("step {}: {e}", s.name)));
            tests += 1;
            if status == Status::Failed {
                failures += 1;
            }
            let time = main.iter().map(|s| s.duration).sum();
            case(
                &mut cases,
                &r.journey_name,
                "main steps",
                time,
                status,
                message,
                r.failures(),
            );
        }
        for b in r.branch_results() {
            for p in &b.path_results {
                tests += 1;
                let classname = format!("{}.{}", r.journey_name, b.checkpoint_name);
                let (message, detail) = match p.status {
                    Status::Failed => {
                        failures += 1;
                        let first = p.step_results.iter().find(|s| s.status == Status::Failed);
                        let message =
                            first.and_then(|s| s.error().map(|e| format!("step {}: {e}", s.name)));
                        let mut detail = String::new();
                        for s in &p.step_results {
                            if let Some(f) =
                                s.failure.as_ref().filter(|_| s.status == Status::Failed)
                            {
                                let _ = writeln!(detail, "step {}: {}", s.name, f.message);
                                for ex in &s.exchanges {
                                    let _ = write!(detail, "{ex:2}");
                                }
                            }
                        }
                        if let Some(d) = &p.diff {
                            match d {
                                Ok(d) => {
                                    let _ = writeln!(detail, "database changes in this path: {d}");
                                    detail.push_str(&diff_details(d, "  "));
                                }
                                Err(e) => {
                                    let _ =
                                        writeln!(detail, "database changes: not available ({e})");
                                }
                            }
                        }
                        (message, detail)
                    }
                    Status::Skipped => {
                        skipped += 1;
                        (p.skip_reason.clone(), String::new())
                    }
                    Status::Passed => (None, String::new()),
                };
                case(
                    &mut cases,
                    &classname,
                    &p.path_name,
                    p.duration,
                    p.status,
                    message,
                    detail,
                );
            }
        }
        for e in r.state_errors() {
            tests += 1;
            failures += 1;
            case(
                &mut cases,
                &r.journey_name,
                "rollback",
                Duration::ZERO,
                Status::Failed,
                Some(e.clone()),
                e.clone(),
            );
        }
        let secs = r.duration.as_secs_f64();
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{secs:.3}\">\n{cases}  </testsuite>\n",
            xml(&r.journey_name)
        );
        all_tests += tests;
        all_failures += failures;
        all_skipped += skipped;
        all_time += secs;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"venomqa journeys\" tests=\"{all_tests}\" failures=\"{all_failures}\" errors=\"0\" skipped=\"{all_skipped}\" time=\"{all_time:.3}\">\n{suites}</testsuites>\n"
    )
}
