//! An [`ExplorationResult`] for CI: as JSON, as JUnit XML, as a self-contained HTML page,
//! and all three written to a directory.

use std::path::Path as FsPath;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::{json, Value};

use crate::html::{self, Kind};
use crate::journey::{diff_json, exchange_json, ms, write_report_files, xml};

use super::{violation_text, ExplorationResult};

impl ExplorationResult {
    /// The report as JSON: counters, coverage, every violation with its sequences,
    /// exchanges (redacted) and diffs, the fault, the stop reason.
    pub fn to_json(&self) -> Value {
        json!({
            "world": self.world,
            "strategy": self.strategy.label(),
            "max_depth": self.max_depth,
            "success": self.passed(),
            "stop": self.stop.name(),
            "stopped_because": self.stopped_because(),
            "states": self.states,
            "steps": self.steps,
            "replays": self.replays,
            "shrink_steps": self.shrink_steps,
            "deepest": self.deepest,
            "duration_ms": ms(self.duration),
            "states_per_second": self.states_per_second(),
            "rollbacks": self.rollbacks,
            "rollback_ms": ms(self.rollback_time),
            "checkpoints": self.checkpoints,
            "checkpoint_ms": ms(self.checkpoint_time),
            "cleanup": match &self.cleanup {
                Ok(d) => json!({"ok": true, "duration_ms": ms(*d)}),
                Err(e) => json!({"ok": false, "error": e}),
            },
            "coverage": {
                "actions_run": self.coverage.actions_run(),
                "actions": self.coverage.actions.len(),
                "never_run": self.coverage.never_run(),
                "outcomes": self.coverage.outcomes(),
                "per_action": self.coverage.actions.iter().map(|a| json!({
                    "name": a.name,
                    "runs": a.runs,
                    "outcomes": a.outcomes,
                    "errors": a.errors,
                    "first_error": a.first_error,
                })).collect::<Vec<_>>(),
            },
            "violations": self.violations.iter().map(|v| json!({
                "invariant": v.invariant,
                "severity": v.severity.to_string(),
                "message": v.message,
                "sequence": v.sequence,
                "found": v.found,
                "shrunk": v.shrunk,
                "occurrences": v.occurrences,
                "path": v.path.iter().map(|p| json!({
                    "action": p.action,
                    "outcome": p.outcome,
                    "diff": p.diff.as_ref().map(|d| diff_json(&Ok(d.clone()))),
                })).collect::<Vec<_>>(),
                "exchanges": v.exchanges.iter().map(exchange_json).collect::<Vec<_>>(),
                "check_exchanges": v.check_exchanges.iter().map(exchange_json).collect::<Vec<_>>(),
                "test_name": v.test_name(),
                "rust": v.to_rust(&self.rust_template),
            })).collect::<Vec<_>>(),
            // Each state's depth; each transition as [from, to, action index, outcome,
            // violated].
            "graph": {
                "depths": self.graph.depths,
                "transitions": self.graph.transitions.iter().map(|t| json!([
                    t.from, t.to, t.action, t.outcome, t.violated,
                ])).collect::<Vec<_>>(),
            },
            "fault": self.fault.as_ref().map(|f| json!({
                "kind": f.kind.name(),
                "action": f.action,
                "sequence": f.sequence,
                "message": f.message,
            })),
            "warnings": self.warnings,
        })
    }

    /// The report as JUnit XML: a `<testsuite>` `explore.<world>` with a `<testcase>` per
    /// violated invariant (`<failure>` with the sequence, the last exchange and the
    /// database along the path), one for the exploration itself (`<failure>` on a fault,
    /// a failed cleanup, or a budget hit with `budget_is_failure`), with the counters in
    /// `<system-out>`.
    pub fn to_junit(&self) -> String {
        let suite_name = format!("explore.{}", self.world);
        let mut suite = TestSuite::new(xml(&suite_name));
        suite.set_time(self.duration);
        for v in &self.violations {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(xml(&v.message))
                .set_type(v.severity.to_string())
                .set_description(xml(&violation_text(v)));
            let mut case = TestCase::new(xml(&format!("invariant {}", v.invariant)), status);
            case.set_classname(xml(&suite_name))
                .set_time(Duration::ZERO);
            suite.add_test_case(case);
        }
        let mut problems = Vec::new();
        if let Some(f) = &self.fault {
            problems.push(format!("fault: {f}"));
        }
        if let Err(e) = &self.cleanup {
            problems.push(e.clone());
        }
        if self.budget_is_failure && self.stop.is_budget() {
            problems.push(format!("budget: {}", self.stopped_because()));
        }
        let status = match problems.first() {
            None => TestCaseStatus::success(),
            Some(first) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(xml(first))
                    .set_type("fault")
                    .set_description(xml(&problems.join("\n")));
                status
            }
        };
        let mut exploration = TestCase::new("exploration", status);
        exploration
            .set_classname(xml(&suite_name))
            .set_time(self.duration)
            .set_system_out(xml(&format!(
                "{}\nstopped: {}",
                self.summary(),
                self.stopped_because()
            )));
        suite.add_test_case(exploration);
        let mut report = Report::new("venomqa explorations");
        report.set_time(self.duration).add_test_suite(suite);
        report
            .to_string()
            .expect("a JUnit report serializes into memory")
    }

    /// The report as one self-contained HTML page (no network: its stylesheet, script
    /// and data are inline): the state graph (states as nodes in a column per depth,
    /// transitions as edges, violations red, the first violation's shrunk path traced),
    /// each violation with its path, requests and responses, database diffs and its
    /// reproducing `#[venom_test]` with a copy button, and the coverage of actions and
    /// statuses. The data is [`to_json`](Self::to_json)'s, so the two cannot disagree.
    pub fn to_html(&self) -> String {
        html::page(
            Kind::Exploration,
            &format!("exploration {}", self.world),
            &self.to_json(),
        )
    }

    /// Writes `<dir>/explore_<world>.xml`, `.json` and `.html`.
    pub fn write_reports(&self, dir: &FsPath) -> std::io::Result<()> {
        let json = self.to_json();
        let html = html::page(
            Kind::Exploration,
            &format!("exploration {}", self.world),
            &json,
        );
        write_report_files(dir, "explore_", &self.world, &self.to_junit(), &json, &html)
    }
}
