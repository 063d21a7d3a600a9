//! [`JourneyResult`]: what a journey run produced, its issues and counts, and
//! [`JourneyFailed`], the error of a run that did not pass.

use std::fmt;
use std::time::Duration;

use super::issue::{Issue, Severity};
use super::model::{BranchResult, ItemResult, PathResult, Status, StepResult};
use crate::capture::Diff;

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

    /// How many workers ran the paths (1 unless [`parallel_paths`](crate::journey::JourneyRunner::parallel_paths)).
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

    /// The time of the final rollback to [`JOURNEY_CHECKPOINT`](crate::journey::JOURNEY_CHECKPOINT).
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
