//! The report as JUnit XML for CI: one `<testsuite>` per journey, a `<testcase>` for its
//! main steps and one per path, written with `quick-junit` (the writer nextest uses).

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::journey_result::JourneyResult;
use super::model::{PathResult, Status, StepResult};
use super::text::diff_details;

impl JourneyResult {
    /// The report as JUnit XML: one `<testsuite>` for the journey, one `<testcase>` for
    /// its main steps and one per path.
    pub fn to_junit(&self) -> String {
        junit_xml(std::slice::from_ref(self))
    }
}

/// `text` with the characters XML 1.0 forbids dropped (control characters but tab,
/// newline and carriage return; U+FFFE and U+FFFF), for the JUnit writer, which escapes
/// the rest.
pub(crate) fn xml(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect()
}

/// The report as text: an XML declaration, the `<testsuites>`, a final newline.
fn render(report: &Report) -> String {
    report
        .to_string()
        .expect("a JUnit report serializes into memory")
}

/// JUnit XML for several journeys: one `<testsuite>` each, a `<testcase>` for the main
/// steps and one per path (`classname` = `journey.checkpoint`), `<failure>` with the
/// request, response and database changes, `<skipped>` with the reason.
pub fn junit_xml(results: &[JourneyResult]) -> String {
    let mut report = Report::new("venomqa journeys");
    report.set_time(results.iter().map(|r| r.duration).sum());
    report.add_test_suites(results.iter().map(|r| Suite::new(r).junit()));
    render(&report)
}

/// A journey's test cases.
struct Suite {
    name: String,
    time: Duration,
    cases: Vec<Case>,
}

/// One test case: the main steps, a path, or a failed rollback.
struct Case {
    classname: String,
    name: String,
    time: Duration,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Failed { message: String, detail: String },
    Skipped { message: String },
}

impl Suite {
    fn new(r: &JourneyResult) -> Self {
        let mut cases = Vec::new();
        let main: Vec<&StepResult> = r.step_results().collect();
        if !main.is_empty() {
            let failed = main.iter().any(|s| s.status == Status::Failed);
            cases.push(Case {
                classname: r.journey_name.clone(),
                name: "main steps".to_owned(),
                time: main.iter().map(|s| s.duration).sum(),
                outcome: if failed {
                    Outcome::Failed {
                        message: first_error(&main).unwrap_or_default(),
                        detail: r.failures(),
                    }
                } else {
                    Outcome::Passed
                },
            });
        }
        for b in r.branch_results() {
            for p in &b.path_results {
                cases.push(Case {
                    classname: format!("{}.{}", r.journey_name, b.checkpoint_name),
                    name: p.path_name.clone(),
                    time: p.duration,
                    outcome: path_outcome(p),
                });
            }
        }
        for e in r.state_errors() {
            cases.push(Case {
                classname: r.journey_name.clone(),
                name: "rollback".to_owned(),
                time: Duration::ZERO,
                outcome: Outcome::Failed {
                    message: e.clone(),
                    detail: e.clone(),
                },
            });
        }
        Suite {
            name: r.journey_name.clone(),
            time: r.duration,
            cases,
        }
    }

    fn junit(self) -> TestSuite {
        let mut suite = TestSuite::new(xml(&self.name));
        suite.set_time(self.time);
        suite.add_test_cases(self.cases.into_iter().map(Case::junit));
        suite
    }
}

impl Case {
    fn junit(self) -> TestCase {
        let status = match self.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed { message, detail } => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(xml(&message))
                    .set_type("journey")
                    .set_description(xml(&detail));
                status
            }
            Outcome::Skipped { message } => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(xml(&message));
                status
            }
        };
        let mut case = TestCase::new(xml(&self.name), status);
        case.set_classname(xml(&self.classname)).set_time(self.time);
        case
    }
}

/// `step <name>: <error>` of the first failed step.
fn first_error(steps: &[&StepResult]) -> Option<String> {
    steps
        .iter()
        .find_map(|s| s.error().map(|e| format!("step {}: {e}", s.name)))
}

/// A path's case: its first failure, with every failed step's exchanges and the path's
/// database changes; or the reason it was skipped.
fn path_outcome(p: &PathResult) -> Outcome {
    match p.status {
        Status::Passed => Outcome::Passed,
        Status::Skipped => Outcome::Skipped {
            message: p.skip_reason.clone().unwrap_or_default(),
        },
        Status::Failed => {
            let failed: Vec<&StepResult> = p
                .step_results
                .iter()
                .filter(|s| s.status == Status::Failed)
                .collect();
            let mut detail = String::new();
            for s in &failed {
                if let Some(f) = &s.failure {
                    let _ = writeln!(detail, "step {}: {}", s.name, f.message);
                    for ex in &s.exchanges {
                        let _ = write!(detail, "{ex:2}");
                    }
                }
            }
            match &p.diff {
                Some(Ok(d)) => {
                    let _ = writeln!(detail, "database changes in this path: {d}");
                    detail.push_str(&diff_details(d, "  "));
                }
                Some(Err(e)) => {
                    let _ = writeln!(detail, "database changes: not available ({e})");
                }
                None => {}
            }
            Outcome::Failed {
                message: first_error(&failed).unwrap_or_default(),
                detail,
            }
        }
    }
}
