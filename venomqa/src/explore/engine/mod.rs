//! The exploration's engine: its state (the states reached, the current position, the
//! coverage, what was found) and its loop (setup and the root state, then pick a (state,
//! action) pair from the [`Frontier`](frontier::Frontier), go there, try the action, record
//! what it did, until the frontier is empty or a budget, a fault or a violation stops it;
//! then shrink). The parts live in the children: the frontiers, navigation between states,
//! a step and its checks, fingerprints, shrinking.

mod fingerprint;
mod frontier;
mod navigate;
mod result;
mod shrink;
mod step;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::capture::Diff;
use crate::explore::outcome::transport;
use crate::explore::report::{ActionCoverage, Fault, FaultKind, PathStep, StopReason, Transition};
use crate::explore::{Severity, Strategy, World};
use crate::journey::{panic_message, Client, Context, Exchange};
use crate::state::StateManager;

#[cfg(test)]
pub(super) use fingerprint::{add_json, Fingerprint};
use frontier::{Frontier, View};
use navigate::ROOT;
use step::Checks;

/// How an exploration runs: the [`Explorer`](super::Explorer)'s settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    /// The order of the pairs tried.
    pub(super) strategy: Strategy,
    /// The longest sequence from the root.
    pub(super) max_depth: usize,
    /// The state budget.
    pub(super) max_states: Option<usize>,
    /// The step budget (replays not counted).
    pub(super) max_steps: Option<usize>,
    /// The time budget.
    pub(super) time_limit: Option<Duration>,
    /// Whether a budget that runs out fails the result.
    pub(super) budget_is_failure: bool,
    /// Whether the first violation stops the exploration.
    pub(super) stop_on_violation: bool,
    /// Whether violations are shrunk.
    pub(super) shrink: bool,
    /// Whether fingerprints include the capture diff since the root.
    pub(super) use_diff: bool,
}

/// A state the exploration has reached.
struct Node {
    /// The shortest path known to it, as action indices from the root.
    path: Vec<u16>,
    /// Enabled actions not tried from it yet.
    untried: Vec<u16>,
    /// Whether the step that found it showed a new (action, status) pair.
    novel: bool,
}

/// One level of the current position: the state at that depth, how it was reached, its
/// context, whether its checkpoint exists.
struct Frame {
    node: Option<usize>,
    via: Option<u16>,
    ctx: Context,
    checkpoint: bool,
    outcome: String,
    diff: Option<Diff>,
}

/// A violation as first found, before shrinking.
struct Found {
    target: Option<usize>,
    name: String,
    severity: Severity,
    message: String,
    sequence: Vec<u16>,
    /// The sequence as found, before shrinking.
    found_as: Vec<u16>,
    shrunk: bool,
    occurrences: usize,
    path: Vec<PathStep>,
    exchanges: Vec<Exchange>,
    check_exchanges: Vec<Exchange>,
}

/// What the run counts, for the result.
#[derive(Default)]
struct Counters {
    steps: usize,
    replays: usize,
    shrink_steps: usize,
    rollbacks: usize,
    rollback_time: Duration,
    checkpoints: usize,
    checkpoint_time: Duration,
    max_depth: usize,
}

/// One exploration in progress, over the explorer's world, client and state manager.
pub(super) struct Engine<'e> {
    world: &'e World,
    client: &'e Client,
    manager: &'e mut dyn StateManager,
    settings: Settings,
    started: Instant,
    nodes: Vec<Node>,
    seen: HashMap<u128, usize>,
    stack: Vec<Frame>,
    frontier: Box<dyn Frontier>,
    counters: Counters,
    coverage: Vec<ActionCoverage>,
    pairs: HashSet<(u16, String)>,
    /// The transitions tried, once per (state, action), for the report's graph.
    transitions: Vec<Transition>,
    tried: HashSet<(usize, u16)>,
    found: Vec<Found>,
    fault: Option<Fault>,
    stop: StopReason,
    warnings: Vec<String>,
    warned: HashSet<usize>,
}

impl<'e> Engine<'e> {
    /// An engine that has not started: [`run`](Self::run) explores.
    pub(super) fn new(
        world: &'e World,
        client: &'e Client,
        manager: &'e mut dyn StateManager,
        settings: Settings,
        started: Instant,
    ) -> Self {
        Engine {
            world,
            client,
            manager,
            settings,
            started,
            nodes: Vec::new(),
            seen: HashMap::new(),
            stack: Vec::new(),
            frontier: frontier::for_strategy(settings.strategy),
            counters: Counters::default(),
            coverage: world
                .actions
                .iter()
                .map(|a| ActionCoverage::new(&a.name))
                .collect(),
            pairs: HashSet::new(),
            transitions: Vec::new(),
            tried: HashSet::new(),
            found: Vec::new(),
            fault: None,
            stop: StopReason::Exhausted,
            warnings: Vec::new(),
            warned: HashSet::new(),
        }
    }

    /// The state manager, for the explorer's final rollback.
    pub(super) fn manager(&mut self) -> &mut dyn StateManager {
        &mut *self.manager
    }

    fn names(&self, seq: &[u16]) -> Vec<String> {
        seq.iter()
            .map(|&a| self.world.actions[a as usize].name.clone())
            .collect()
    }

    fn current_path(&self) -> Vec<u16> {
        self.stack.iter().filter_map(|f| f.via).collect()
    }

    fn fault(&self, kind: FaultKind, action: Option<u16>, message: String) -> Fault {
        let mut sequence = self.names(&self.current_path());
        if let Some(a) = action {
            sequence.push(self.world.actions[a as usize].name.clone());
        }
        Fault {
            kind,
            action: action.map(|a| self.world.actions[a as usize].name.clone()),
            sequence,
            message,
        }
    }

    /// Setup, the root state, then pairs until the strategy is done or a budget, a fault
    /// or a violation (with `stop_on_violation`) stops it; then shrinking.
    pub(super) async fn run(&mut self) {
        if let Err(f) = self.explore().await {
            self.stop = StopReason::Fault;
            self.fault = Some(f);
        }
        if self.fault.is_none() && self.settings.shrink {
            if let Err(f) = self.shrink_all().await {
                self.fault = Some(f);
            }
        }
    }

    async fn explore(&mut self) -> Result<(), Fault> {
        let mut ctx = Context::new();
        let world = self.world;
        if let Some(setup) = &world.setup {
            let _ = self.client.take_exchanges();
            let outcome = setup.call(self.client, &mut ctx).await;
            let exchanges = self.client.take_exchanges();
            let last = exchanges
                .last()
                .map(|e| format!(" (last request: {})", e.summary()))
                .unwrap_or_default();
            let (kind, problem) = match outcome {
                Ok(Ok(())) => (FaultKind::Setup, None),
                Ok(Err(e)) => (
                    if transport(&e) {
                        FaultKind::ServerUnreachable
                    } else {
                        FaultKind::Setup
                    },
                    Some(format!("it returned an error: {}{last}", e.chain())),
                ),
                Err(p) => (
                    FaultKind::Setup,
                    Some(format!("it panicked: {}{last}", panic_message(&*p))),
                ),
            };
            if let Some(problem) = problem {
                return Err(Fault {
                    kind,
                    action: None,
                    sequence: Vec::new(),
                    message: format!(
                        "the world's setup failed, so there is no state to explore: {problem}"
                    ),
                });
            }
        }
        self.checkpoint(ROOT)?;
        let mut root = Frame {
            node: None,
            via: None,
            ctx,
            checkpoint: true,
            outcome: "setup".to_owned(),
            diff: None,
        };
        // The state after setup must satisfy the invariants too.
        let root_ctx = root.ctx.clone();
        let violations = self.check(&root_ctx, "setup", Checks::All, None).await?;
        let _ = self.client.take_exchanges();
        let (fp, diff) = self.fingerprint(&root.ctx, None).await?;
        root.diff = diff;
        let untried = if violations.is_empty() && self.settings.max_depth > 0 {
            self.enabled(&root.ctx)?
        } else {
            Vec::new()
        };
        for (target, message) in violations {
            self.record(
                target,
                message,
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
        }
        self.nodes.push(Node {
            path: Vec::new(),
            untried,
            novel: true,
        });
        self.seen.insert(fp, 0);
        root.node = Some(0);
        self.stack.push(root);
        self.frontier.push(0);
        loop {
            if let Some(reason) = self.budget_hit() {
                self.stop = reason;
                return Ok(());
            }
            let mut view = View {
                nodes: &mut self.nodes,
                stack: &self.stack,
                coverage: &self.coverage,
            };
            let Some((at, action)) = self.frontier.pick(&mut view) else {
                self.stop = StopReason::Exhausted;
                return Ok(());
            };
            self.go(at).await?;
            if self.try_action(action).await? {
                self.stop = StopReason::Violation;
                return Ok(());
            }
        }
    }

    fn budget_hit(&self) -> Option<StopReason> {
        let s = &self.settings;
        if s.max_steps.is_some_and(|m| self.counters.steps >= m) {
            return Some(StopReason::MaxSteps);
        }
        if s.max_states.is_some_and(|m| self.nodes.len() >= m) {
            return Some(StopReason::MaxStates);
        }
        if s.time_limit.is_some_and(|t| self.started.elapsed() >= t) {
            return Some(StopReason::TimeLimit);
        }
        None
    }

    /// Runs `a` from the current position; records coverage, violations and the new
    /// state. Returns whether the exploration must stop (`stop_on_violation`).
    async fn try_action(&mut self, a: u16) -> Result<bool, Fault> {
        self.ensure_checkpoint()?;
        let mut ctx = self.stack.last().expect("root").ctx.clone();
        if !self.precondition(a, &ctx)? {
            return Ok(false);
        }
        let run = self.step(a, &mut ctx, Checks::All).await?;
        self.counters.steps += 1;
        let depth = self.stack.len();
        self.counters.max_depth = self.counters.max_depth.max(depth);
        let cov = &mut self.coverage[a as usize];
        cov.runs += 1;
        *cov.outcomes.entry(run.class.clone()).or_default() += 1;
        if let Some(e) = &run.error {
            cov.errors += 1;
            if cov.first_error.is_none() {
                cov.first_error = Some(e.clone());
            }
        }
        let novel = self.pairs.insert((a, run.class.clone()));
        let from = self.stack.last().and_then(|f| f.node);
        let mut path = self.current_path();
        path.push(a);
        let violated = !run.violations.is_empty();
        // The new position first, so a fault while enabling its actions names its path.
        self.stack.push(Frame {
            node: None,
            via: Some(a),
            ctx,
            checkpoint: false,
            outcome: run.outcome.clone(),
            diff: run.diff.clone(),
        });
        let node = match self.seen.get(&run.fp).copied() {
            Some(id) if self.nodes[id].path.len() <= path.len() || violated => id,
            found => {
                // A new state, or one reached by a shorter path than before (re-opened, so
                // its actions are tried within the depth they now have).
                let untried = if violated || path.len() >= self.settings.max_depth {
                    Vec::new()
                } else {
                    let ctx = self.stack.last().expect("pushed").ctx.clone();
                    self.enabled(&ctx)?
                };
                let id = match found {
                    Some(id) => {
                        let n = &mut self.nodes[id];
                        n.path = path.clone();
                        n.untried = untried;
                        id
                    }
                    None => {
                        self.nodes.push(Node {
                            path: path.clone(),
                            untried,
                            novel,
                        });
                        self.seen.insert(run.fp, self.nodes.len() - 1);
                        self.nodes.len() - 1
                    }
                };
                self.frontier.push(id);
                id
            }
        };
        self.stack.last_mut().expect("pushed").node = Some(node);
        if let Some(from) = from.filter(|&from| self.tried.insert((from, a))) {
            self.transitions.push(Transition {
                from,
                to: node,
                action: a as usize,
                outcome: run.class.clone(),
                violated,
            });
        }
        if violated {
            let steps = self.path_steps();
            for (target, message) in run.violations {
                self.record(
                    target,
                    message,
                    path.clone(),
                    steps.clone(),
                    run.exchanges.clone(),
                    run.check_exchanges.clone(),
                );
            }
            return Ok(self.settings.stop_on_violation);
        }
        Ok(false)
    }

    /// The steps of the current position, as a report shows them.
    fn path_steps(&self) -> Vec<PathStep> {
        self.stack
            .iter()
            .filter_map(|f| {
                f.via.map(|a| PathStep {
                    action: self.world.actions[a as usize].name.clone(),
                    outcome: f.outcome.clone(),
                    diff: f.diff.clone(),
                })
            })
            .collect()
    }
}
