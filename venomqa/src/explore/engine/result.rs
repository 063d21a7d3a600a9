//! What the exploration found and what it becomes: each invariant's first violation
//! recorded (later ones counted), and the [`ExplorationResult`] made of them, the
//! counters and the coverage at the end.

use std::time::Duration;

use crate::explore::report::{Coverage, ExplorationResult, PathStep, StateGraph, Violation};
use crate::explore::{repro, Severity, SERVER_ERRORS};
use crate::journey::Exchange;

use super::{Engine, Found};

impl Engine<'_> {
    /// Records a violation of `target` (an invariant index, or `None` for the 5xx rule):
    /// the first of each invariant with its sequence and what the step did, later ones
    /// counted.
    pub(super) fn record(
        &mut self,
        target: Option<usize>,
        message: String,
        sequence: Vec<u16>,
        path: Vec<PathStep>,
        exchanges: Vec<Exchange>,
        check_exchanges: Vec<Exchange>,
    ) {
        let (name, severity) = match target {
            Some(i) => (
                self.world.invariants[i].name().to_owned(),
                self.world.invariants[i].get_severity(),
            ),
            None => (SERVER_ERRORS.to_owned(), Severity::High),
        };
        if let Some(f) = self.found.iter_mut().find(|f| f.name == name) {
            f.occurrences += 1;
            return;
        }
        self.found.push(Found {
            target,
            name,
            severity,
            message,
            found_as: sequence.clone(),
            sequence,
            shrunk: false,
            occurrences: 1,
            path,
            exchanges,
            check_exchanges,
        });
    }

    /// What the exploration found, once it has run and the database is rolled back.
    pub(in crate::explore) fn finish(
        self,
        explored: Duration,
        cleanup: Result<Duration, String>,
    ) -> ExplorationResult {
        let strategy = self.settings.strategy;
        let violations = self
            .found
            .iter()
            .map(|f| Violation {
                invariant: f.name.clone(),
                severity: f.severity,
                message: f.message.clone(),
                found: self.names(&f.found_as),
                sequence: self.names(&f.sequence),
                shrunk: f.shrunk,
                occurrences: f.occurrences,
                path: f.path.clone(),
                exchanges: f.exchanges.clone(),
                check_exchanges: f.check_exchanges.clone(),
                world: self.world.name.clone(),
                strategy,
                journey: repro::journey(
                    self.world,
                    &repro::test_name(&f.name),
                    &f.sequence.iter().map(|&a| a as usize).collect::<Vec<_>>(),
                ),
            })
            .collect();
        ExplorationResult {
            world: self.world.name.clone(),
            strategy,
            max_depth: self.settings.max_depth,
            states: self.nodes.len(),
            steps: self.counters.steps,
            replays: self.counters.replays,
            shrink_steps: self.counters.shrink_steps,
            rollbacks: self.counters.rollbacks,
            rollback_time: self.counters.rollback_time,
            checkpoints: self.counters.checkpoints,
            checkpoint_time: self.counters.checkpoint_time,
            deepest: self.counters.max_depth,
            duration: explored,
            coverage: Coverage {
                actions: self.coverage,
            },
            graph: StateGraph {
                depths: self.nodes.iter().map(|n| n.path.len()).collect(),
                transitions: self.transitions,
            },
            violations,
            fault: self.fault,
            stop: self.stop,
            warnings: self.warnings,
            cleanup,
            budget_is_failure: self.settings.budget_is_failure,
            rust_template: repro::RustTemplate::new("world()"),
        }
    }
}
