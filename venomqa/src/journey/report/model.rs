//! The result model of a journey run, below the report: each step's, path's and
//! branch's result and status, and why a step failed.

use std::fmt;
use std::time::Duration;

use super::issue::Severity;
use crate::capture::Diff;
use crate::journey::client::Exchange;
use crate::journey::{Branch, Path, Step};

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
    pub(super) fn mark(self) -> &'static str {
        match self {
            Status::Passed => "✓",
            Status::Failed => "✗",
            Status::Skipped => "○",
        }
    }

    pub(super) fn word(self) -> &'static str {
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
    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn suggestion(self) -> &'static str {
        match self {
            FailureKind::Expectation => "compare the step's request and response (shown with this failure) with its expectation; if the API changed on purpose, update the expectation",
            FailureKind::Unreachable => "check that the API server is running at the client's base URL (it may have crashed: look at its output)",
            FailureKind::Timeout => "the server did not answer in time: look at what it was doing, or raise Step::timeout / Client::timeout",
            FailureKind::Panic => "the step's code panicked; return Err(..) for failures you expect",
            FailureKind::Invariant => "the API left data the invariant forbids: look at the database changes of this path",
            FailureKind::UnexpectedSuccess => "the API accepted what it should refuse",
            FailureKind::Error => "see the error, and the step's request and response shown with this failure",
        }
    }

    pub(super) fn severity(self) -> Severity {
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

/// Where a step runs, for messages: the path, if the step is in one.
pub(crate) struct Place {
    pub(crate) path: Option<String>,
}
