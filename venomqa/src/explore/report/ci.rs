//! An [`ExplorationResult`] for CI: as JSON, as JUnit XML, and both written to a
//! directory.

use std::fmt::Write as _;
use std::path::Path as FsPath;

use serde_json::{json, Value};

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
            })).collect::<Vec<_>>(),
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
        let suite = format!("explore.{}", self.world);
        let mut cases = String::new();
        let mut failures = 0;
        for v in &self.violations {
            failures += 1;
            let _ = write!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0.000\">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                xml(&suite),
                xml(&format!("invariant {}", v.invariant)),
                xml(&v.message),
                v.severity,
                xml(&violation_text(v))
            );
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
        let out = format!("{}\nstopped: {}", self.summary(), self.stopped_because());
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}\" name=\"exploration\" time=\"{:.3}\">",
            xml(&suite),
            self.duration.as_secs_f64()
        );
        if !problems.is_empty() {
            failures += 1;
            let _ = writeln!(
                cases,
                "      <failure message=\"{}\" type=\"fault\">{}</failure>",
                xml(&problems[0]),
                xml(&problems.join("\n"))
            );
        }
        let _ = write!(
            cases,
            "      <system-out>{}</system-out>\n    </testcase>\n",
            xml(&out)
        );
        let tests = self.violations.len() + 1;
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"venomqa explorations\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{secs:.3}\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{secs:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
            xml(&suite),
            secs = self.duration.as_secs_f64()
        )
    }

    /// Writes `<dir>/explore_<world>.xml` and `<dir>/explore_<world>.json`.
    pub fn write_reports(&self, dir: &FsPath) -> std::io::Result<()> {
        write_report_files(
            dir,
            "explore_",
            &self.world,
            &self.to_junit(),
            &self.to_json(),
        )
    }
}
