//! [`Issue`]: one problem a journey run found, where it happened, how bad it is
//! ([`Severity`]) and what to do about it.

use std::fmt::{self, Write as _};

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
