//! What an exploration produced: [`ExplorationResult`], its [`Violation`]s and [`Fault`],
//! shown as a summary in the terminal (`Display`); the JSON and JUnit XML for CI are in
//! the child `ci`.

mod ci;
mod graph;
mod markdown;

pub use graph::{StateGraph, Transition};

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::capture::Diff;
use crate::journey::{cut, diff_details, fmt_duration, Exchange, Journey, Severity};

use super::repro::RustTemplate;
use super::Strategy;

/// Why the exploration stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// Every enabled action of every state up to the maximum depth was tried.
    Exhausted,
    /// The step budget ran out ([`Explorer::max_steps`](super::Explorer::max_steps)).
    MaxSteps,
    /// The state budget ran out ([`Explorer::max_states`](super::Explorer::max_states)).
    MaxStates,
    /// The time budget ran out ([`Explorer::time_limit`](super::Explorer::time_limit)).
    TimeLimit,
    /// A violation, with [`Explorer::stop_on_violation`](super::Explorer::stop_on_violation).
    Violation,
    /// A [`Fault`].
    Fault,
}

impl StopReason {
    /// Whether a budget stopped it.
    pub fn is_budget(self) -> bool {
        matches!(
            self,
            StopReason::MaxSteps | StopReason::MaxStates | StopReason::TimeLimit
        )
    }

    fn name(self) -> &'static str {
        match self {
            StopReason::Exhausted => "exhausted",
            StopReason::MaxSteps => "max_steps",
            StopReason::MaxStates => "max_states",
            StopReason::TimeLimit => "time_limit",
            StopReason::Violation => "violation",
            StopReason::Fault => "fault",
        }
    }
}

/// What stopped an exploration that could not go on: not a finding about the API, but a
/// problem of the world, the server or the state manager, each named as what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// The world's setup returned an error or panicked.
    Setup,
    /// An action's precondition panicked.
    PreconditionPanicked,
    /// An action panicked.
    ActionPanicked,
    /// An invariant panicked, or returned an error that is not a violation (a failed
    /// query): it could not check.
    InvariantFailed,
    /// An observation of the world failed.
    ObservationFailed,
    /// The API did not answer: not reachable, or no response in time (the server died,
    /// or was never there: during the setup too).
    ServerUnreachable,
    /// A checkpoint, rollback or diff of the state manager failed.
    StateManager,
    /// Replaying a path did not reach the state it reached before.
    Nondeterministic,
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::Setup => "setup",
            FaultKind::PreconditionPanicked => "precondition_panicked",
            FaultKind::ActionPanicked => "action_panicked",
            FaultKind::InvariantFailed => "invariant_failed",
            FaultKind::ObservationFailed => "observation_failed",
            FaultKind::ServerUnreachable => "server_unreachable",
            FaultKind::StateManager => "state_manager",
            FaultKind::Nondeterministic => "nondeterministic",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault that stopped the exploration: what it is, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fault {
    /// Its kind.
    pub kind: FaultKind,
    /// The action running when it happened, if any.
    pub action: Option<String>,
    /// The sequence of actions from the root state up to it (the action included).
    pub sequence: Vec<String>,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)?;
        if !self.sequence.is_empty() {
            write!(f, " after [{}]", self.sequence.join(", "))?;
        }
        Ok(())
    }
}

/// How often one action ran, and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionCoverage {
    /// The action.
    pub name: String,
    /// How many times it ran (replays and shrinking not counted).
    pub runs: usize,
    /// Per outcome, how many times: the status of its last response (`"201"`), `"error"`
    /// (an `Err` without a response) or `"no request"`.
    pub outcomes: BTreeMap<String, usize>,
    /// How many times it returned `Err`.
    pub errors: usize,
    /// The first of those errors.
    pub first_error: Option<String>,
}

impl ActionCoverage {
    pub(crate) fn new(name: &str) -> Self {
        ActionCoverage {
            name: name.to_owned(),
            runs: 0,
            outcomes: BTreeMap::new(),
            errors: 0,
            first_error: None,
        }
    }

    fn outcomes_line(&self) -> String {
        self.outcomes
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which actions ran, how often, and which statuses they saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Coverage {
    /// Every action of the world, in its order.
    pub actions: Vec<ActionCoverage>,
}

impl Coverage {
    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&ActionCoverage> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The actions that never ran (their preconditions never held, or the budget ran
    /// out first).
    pub fn never_run(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter(|a| a.runs == 0)
            .map(|a| a.name.as_str())
            .collect()
    }

    /// How many actions ran at least once.
    pub fn actions_run(&self) -> usize {
        self.actions.iter().filter(|a| a.runs > 0).count()
    }

    /// Every outcome over all actions (`"201"` → 40), statuses first.
    pub fn outcomes(&self) -> BTreeMap<String, usize> {
        let mut all = BTreeMap::new();
        for a in &self.actions {
            for (k, n) in &a.outcomes {
                *all.entry(k.clone()).or_default() += n;
            }
        }
        all
    }

    /// The distinct (action, outcome) pairs seen.
    pub fn pairs(&self) -> usize {
        self.actions.iter().map(|a| a.outcomes.len()).sum()
    }
}

/// One step of a violation's sequence, as run: the action, what came back, and the
/// capture diff since the exploration's root after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathStep {
    /// The action.
    pub action: String,
    /// Its last request and response (`POST http://.../orders -> 201 Created`), and its
    /// error if it returned one.
    pub outcome: String,
    /// What the database holds after it, against the root state (when the state
    /// manager can tell).
    pub diff: Option<Diff>,
}

/// An invariant violated: which, how, the exact sequence from the root state (shrunk),
/// the requests and responses of its last step, the database along the path, and a
/// journey that reproduces it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Violation {
    /// The invariant (or [`SERVER_ERRORS`](super::SERVER_ERRORS)).
    pub invariant: String,
    /// Its severity.
    pub severity: Severity,
    /// What the invariant said.
    pub message: String,
    /// The sequence the exploration found it with.
    pub found: Vec<String>,
    /// The shortest sequence found that still violates it: no action can be removed
    /// (when shrinking ran; else the same as `found`).
    pub sequence: Vec<String>,
    /// Whether shrinking ran on it.
    pub shrunk: bool,
    /// How many steps of the exploration violated it.
    pub occurrences: usize,
    /// The steps of `sequence`, with the database after each.
    pub path: Vec<PathStep>,
    /// The requests and responses of the last action.
    pub exchanges: Vec<Exchange>,
    /// The requests the invariants sent after it.
    pub check_exchanges: Vec<Exchange>,
    pub(crate) world: String,
    pub(crate) strategy: Strategy,
    pub(crate) journey: Journey,
}

impl Violation {
    /// The shrunk sequence of action names.
    pub fn sequence(&self) -> &[String] {
        &self.sequence
    }

    /// A journey that reproduces it: the world's setup, then one step per action of
    /// [`sequence`](Self::sequence). Run it with the world's invariants; it fails while
    /// the bug is there and passes once it is fixed:
    ///
    /// ```no_run
    /// # fn f(v: &venomqa::explore::Violation, world: &venomqa::explore::World, client: venomqa::journey::Client, db: &mut venomqa::sqlite::SqliteStateManager) -> Result<(), Box<dyn std::error::Error>> {
    /// use venomqa::journey::JourneyRunner;
    /// let result = JourneyRunner::new(client)
    ///     .state_manager(db)
    ///     .invariants(world.invariants())
    ///     .run(v.journey())?;
    /// assert!(!result.passed(), "the bug is still there");
    /// # Ok(()) }
    /// ```
    pub fn journey(&self) -> &Journey {
        &self.journey
    }

    /// The name a test reproducing it gets: `repro_` and the invariant's name in
    /// snake case.
    pub fn test_name(&self) -> String {
        super::repro::test_name(&self.invariant)
    }

    /// The Rust source of a `#[venom_test]` that reproduces it, to paste into a test file:
    /// it builds the journey from the world by name, runs it with the world's
    /// invariants and asserts that it passes (so it fails until the bug is fixed).
    pub fn to_rust(&self, template: &RustTemplate) -> String {
        template.render(&self.world, self.strategy, &self.invariant, &self.sequence)
    }
}

/// What an exploration found and what it cost: the Python `ExplorationResult`.
///
/// `Display` is a summary (states, steps, states per second, rollbacks and their time,
/// why it stopped), the coverage of actions and statuses, each violation with its
/// shrunk sequence, last request and response and the database along the path, and any
/// fault. [`to_json`](Self::to_json) and [`to_junit`](Self::to_junit) are for CI.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExplorationResult {
    /// The world.
    pub world: String,
    /// The strategy.
    pub strategy: Strategy,
    /// The maximum depth.
    pub max_depth: usize,
    /// Distinct states reached (the root included).
    pub states: usize,
    /// Actions run to explore (replays and shrinking not counted).
    pub steps: usize,
    /// Actions run again to reach a state by its path (after a rollback).
    pub replays: usize,
    /// Actions run while shrinking.
    pub shrink_steps: usize,
    /// Rollbacks (exploration and shrinking; the final one not counted).
    pub rollbacks: usize,
    /// Their time.
    pub rollback_time: Duration,
    /// Checkpoints made.
    pub checkpoints: usize,
    /// Their time.
    pub checkpoint_time: Duration,
    /// The longest sequence run.
    pub deepest: usize,
    /// The exploration's time, shrinking included, the final rollback not.
    pub duration: Duration,
    /// Actions and statuses seen.
    pub coverage: Coverage,
    /// The states reached and the transitions tried between them.
    pub graph: StateGraph,
    /// The first violation of each invariant, shrunk.
    pub violations: Vec<Violation>,
    /// What stopped the exploration, if it could not go on.
    pub fault: Option<Fault>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Things worth knowing that did not stop it (a replay that went elsewhere).
    pub warnings: Vec<String>,
    /// The final rollback to the baseline: its time, or why it failed.
    pub cleanup: Result<Duration, String>,
    pub(crate) budget_is_failure: bool,
    /// How the reports write the reproducing tests ([`Explorer::rust_template`]).
    ///
    /// [`Explorer::rust_template`]: super::Explorer::rust_template
    pub(crate) rust_template: RustTemplate,
}

impl ExplorationResult {
    /// No violation, no fault, the database rolled back; and, if the explorer was told
    /// [`budget_is_failure`](super::Explorer::budget_is_failure), no budget ran out.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
            && self.fault.is_none()
            && self.cleanup.is_ok()
            && !(self.budget_is_failure && self.stop.is_budget())
    }

    /// The violation of the invariant named `name`.
    pub fn violation(&self, name: &str) -> Option<&Violation> {
        self.violations.iter().find(|v| v.invariant == name)
    }

    /// Distinct states per second of exploration.
    pub fn states_per_second(&self) -> f64 {
        self.states as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// Steps per second of exploration.
    pub fn steps_per_second(&self) -> f64 {
        self.steps as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// Why it stopped, in words.
    pub fn stopped_because(&self) -> String {
        match self.stop {
            StopReason::Exhausted => format!(
                "every enabled action of every state up to depth {} was tried",
                self.max_depth
            ),
            StopReason::MaxSteps => format!("the step budget ran out ({} steps)", self.steps),
            StopReason::MaxStates => {
                format!("the state budget ran out ({} states)", self.states)
            }
            StopReason::TimeLimit => "the time budget ran out".to_owned(),
            StopReason::Violation => "a violation was found (stop_on_violation)".to_owned(),
            StopReason::Fault => "a fault stopped it".to_owned(),
        }
    }

    /// One line: `exploration shop FAILED: 1 violation; 43 states, 388 steps in 0.84 s
    /// (51 states/s; 402 rollbacks, 0.21 s; bfs, depth ≤ 6)`.
    pub fn summary(&self) -> String {
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        let mut s = format!("exploration {} {verdict}: ", self.world);
        let v = self.violations.len();
        match (v, &self.fault) {
            (0, None) => s.push_str("no violation"),
            (0, Some(_)) => s.push_str("a fault stopped it"),
            (n, f) => {
                let _ = write!(s, "{n} violation{}", if n == 1 { "" } else { "s" });
                if f.is_some() {
                    s.push_str(" and a fault");
                }
            }
        }
        let _ = write!(
            s,
            "; {} states, {} steps in {} ({:.0} states/s; {} rollbacks, {}; {}, depth ≤ {})",
            self.states,
            self.steps,
            fmt_duration(self.duration),
            self.states_per_second(),
            self.rollbacks,
            fmt_duration(self.rollback_time),
            self.strategy,
            self.max_depth
        );
        s
    }

    /// Panics with the whole report unless it passed.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{self}");
        }
    }
}

/// A violation's details, several lines, for the terminal and JUnit.
fn violation_text(v: &Violation) -> String {
    let mut out = String::new();
    if v.shrunk && v.found.len() != v.sequence.len() {
        let _ = writeln!(
            out,
            "found after {} actions, shrunk to {}:",
            v.found.len(),
            v.sequence.len()
        );
    } else if v.shrunk {
        let _ = writeln!(
            out,
            "found after {} actions (none can be removed):",
            v.sequence.len()
        );
    } else {
        let _ = writeln!(out, "found after {} actions:", v.sequence.len());
    }
    if v.sequence.is_empty() {
        let _ = writeln!(out, "  (in the state right after the world's setup)");
    }
    for (i, p) in v.path.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {:<26} {}",
            i + 1,
            p.action,
            cut(&p.outcome, 200)
        );
    }
    if v.path.is_empty() && !v.sequence.is_empty() {
        let _ = writeln!(out, "  {}", v.sequence.join(", "));
    }
    if !v.exchanges.is_empty() {
        let _ = writeln!(out, "last step ({}):", v.sequence.last().map_or("", |s| s));
        let shown = v.exchanges.len().saturating_sub(3);
        if shown > 0 {
            let _ = writeln!(out, "  ({shown} earlier requests of this step not shown)");
        }
        for ex in &v.exchanges[shown..] {
            let _ = write!(out, "{ex:2}");
        }
    }
    if !v.check_exchanges.is_empty() {
        let _ = writeln!(out, "what the invariants saw:");
        let shown = v.check_exchanges.len().saturating_sub(2);
        for ex in &v.check_exchanges[shown..] {
            let _ = write!(out, "{ex:2}");
        }
    }
    if v.path.iter().any(|p| p.diff.is_some()) {
        let _ = writeln!(
            out,
            "database along the path (against the state after setup):"
        );
        for p in &v.path {
            if let Some(d) = &p.diff {
                let _ = writeln!(out, "  after {}: {d}", p.action);
            }
        }
        if let Some(d) = v.path.last().and_then(|p| p.diff.as_ref()) {
            out.push_str(&diff_details(d, "    "));
        }
    }
    out
}

impl fmt::Display for ExplorationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}",
            if self.passed() { "✓" } else { "✗" },
            self.summary()
        )?;
        writeln!(f, "  stopped: {}", self.stopped_because())?;
        writeln!(
            f,
            "  {} replays, {} checkpoints ({}), deepest sequence {}, {} shrink steps",
            self.replays,
            self.checkpoints,
            fmt_duration(self.checkpoint_time),
            self.deepest,
            self.shrink_steps
        )?;
        let c = &self.coverage;
        writeln!(
            f,
            "  coverage: {} of {} actions run, {} (action, status) pairs; statuses: {}",
            c.actions_run(),
            c.actions.len(),
            c.pairs(),
            c.outcomes()
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        for a in &c.actions {
            writeln!(f, "    {:<28} {:>6}  {}", a.name, a.runs, a.outcomes_line())?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        if let Err(e) = &self.cleanup {
            writeln!(f, "  ✗ {e}")?;
        }
        if let Some(fault) = &self.fault {
            writeln!(f, "\nFault ({}):\n   {}", fault.kind, fault.message)?;
            if !fault.sequence.is_empty() {
                writeln!(f, "   after: {}", fault.sequence.join(", "))?;
            }
        }
        if !self.violations.is_empty() {
            writeln!(f, "\nViolations ({}):", self.violations.len())?;
            for (i, v) in self.violations.iter().enumerate() {
                writeln!(
                    f,
                    "\n{}) [{}] invariant {:?} violated: {}",
                    i + 1,
                    v.severity,
                    v.invariant,
                    v.message
                )?;
                if v.occurrences > 1 {
                    writeln!(
                        f,
                        "   ({} steps of the exploration violated it)",
                        v.occurrences
                    )?;
                }
                for line in violation_text(v).lines() {
                    writeln!(f, "   {line}")?;
                }
                writeln!(
                    f,
                    "   reproduce: violation.journey() (a Journey), or violation.to_rust(..) for a #[venom_test] named {}",
                    v.test_name()
                )?;
            }
        }
        Ok(())
    }
}
