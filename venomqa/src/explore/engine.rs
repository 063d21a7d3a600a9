//! [`Explorer`]: picks (state, action) pairs by its [`Strategy`], moves between states with
//! nested checkpoints (rollback to the deepest common one, replay the rest), checks the
//! invariants after every step, recognises states by fingerprint, and shrinks what it
//! finds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::capture::Diff;
use crate::journey::{panic_message, Check, Client, Context, Exchange, StateHandle};
use crate::state::StateManager;

use super::outcome::{is_violation, transport};
use super::report::{
    ActionCoverage, Coverage, ExplorationResult, Fault, FaultKind, PathStep, StopReason, Violation,
};
use super::{Severity, Strategy, World, SERVER_ERRORS};

/// The checkpoint the explorer makes before anything runs and discards at the end, so an
/// exploration leaves the database as it found it. Inside a session it nests under the
/// session's root. The states of the exploration are checkpoints `venomqa_x0` (the root,
/// after the world's setup), `venomqa_x1`, ... nested under it.
pub const EXPLORE_CHECKPOINT: &str = "venomqa_explore";

/// The root state's checkpoint: fingerprints and diffs are relative to it.
const ROOT: &str = "venomqa_x0";

fn frame_checkpoint(depth: usize) -> String {
    format!("venomqa_x{depth}")
}

/// Why an exploration did not start. (One that ran and found violations, hit a fault or
/// a budget is an [`ExplorationResult`].)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExploreError {
    /// The world's definition is wrong; every problem is listed.
    #[error("world {world:?} is invalid: {}; fix the world's definition", problems.join("; "))]
    Invalid {
        /// The world.
        world: String,
        /// Each problem.
        problems: Vec<String>,
    },
    /// A sequence names an action the world does not have.
    #[error("world {world:?} has no action {action:?} (its actions: {known}); check the sequence against the world the explorer ran")]
    UnknownAction {
        /// The world.
        world: String,
        /// The name asked for.
        action: String,
        /// The world's actions.
        known: String,
    },
    /// The explorer has no state manager to roll back with.
    #[error("exploring world {world:?} needs a state manager to roll the database back between sequences; give the explorer one with .state_manager(..)")]
    NoStateManager {
        /// The world.
        world: String,
    },
    /// The state manager's rollbacks would not undo what the API server writes.
    #[error("exploring world {world:?} refused: {manager} does not capture what other connections write, so the API server's writes would leak from one sequence into the next and stay after the exploration; use capture isolation (`isolation: capture`) and start the server on the state manager's url()")]
    NoCapture {
        /// The world.
        world: String,
        /// The state manager, for the message.
        manager: String,
    },
    /// The state manager failed before the exploration started.
    #[error("exploring world {world:?}: {operation} failed: {source}")]
    State {
        /// The world.
        world: String,
        /// What the explorer was doing.
        operation: String,
        /// The state manager's error.
        #[source]
        source: Box<crate::Error>,
    },
}

/// Explores a [`World`] against an API: the Python `Agent(world, actions, invariants,
/// strategy, max_steps).explore()`.
///
/// It makes checkpoint [`EXPLORE_CHECKPOINT`], runs the world's setup, and then, until the
/// strategy has nothing left to try up to [`max_depth`](Self::max_depth) or a budget runs
/// out: picks a (state, action) pair, goes to that state (a rollback to the deepest
/// checkpoint it shares with the current one, then a replay of the rest of its path),
/// runs the action, checks every invariant, and fingerprints the new state (the capture
/// diff since the root, the context, the world's observations). A state seen before is
/// not expanded again. Violations are shrunk; at the end everything is rolled back.
///
/// ```no_run
/// use std::time::Duration;
/// use venomqa::explore::{Explorer, Strategy, World};
/// use venomqa::journey::Client;
/// use venomqa::sqlite::SqliteSession;
///
/// # fn shop_world() -> World { World::new("x") }
/// #[venomqa::venom_test(config = "shop")] // an entry with `isolation: capture`
/// fn explore_the_shop(db: &mut SqliteSession) {
///     let server = db.url().unwrap(); // start the API server on this URL
///     # let server = server.expose().to_owned();
///     let result = Explorer::new(&shop_world(), Client::new(server))
///         .state_manager(&mut *db)
///         .strategy(Strategy::Random { seed: 7 })
///         .max_depth(6)
///         .time_limit(Duration::from_secs(60))
///         .run()
///         .unwrap();
///     println!("{result}");
///     result.assert_passed();
/// }
/// ```
pub struct Explorer<'a> {
    world: World,
    client: Client,
    state: Option<StateHandle<'a>>,
    settings: Settings,
    report_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    strategy: Strategy,
    max_depth: usize,
    max_states: Option<usize>,
    max_steps: Option<usize>,
    time_limit: Option<Duration>,
    budget_is_failure: bool,
    stop_on_violation: bool,
    shrink: bool,
    use_diff: bool,
}

impl std::fmt::Debug for Explorer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explorer")
            .field("world", &self.world)
            .field("client", &self.client)
            .field("state", &self.state)
            .field("settings", &self.settings)
            .finish()
    }
}

/// The default [`Explorer::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 8;
/// The default [`Explorer::max_steps`].
pub const DEFAULT_MAX_STEPS: usize = 10_000;

impl Explorer<'static> {
    /// An explorer of `world` sending through `client`: breadth first, depth at most
    /// [`DEFAULT_MAX_DEPTH`], at most [`DEFAULT_MAX_STEPS`] steps, no state or time
    /// limit, violations shrunk, fingerprints with the capture diff. It needs a state
    /// manager before it runs.
    pub fn new(world: &World, client: Client) -> Self {
        Explorer {
            world: world.clone(),
            client,
            state: None,
            settings: Settings {
                strategy: Strategy::Bfs,
                max_depth: DEFAULT_MAX_DEPTH,
                max_states: None,
                max_steps: Some(DEFAULT_MAX_STEPS),
                time_limit: None,
                budget_is_failure: false,
                stop_on_violation: false,
                shrink: true,
                use_diff: true,
            },
            report_dir: std::env::var_os("VENOMQA_EXPLORE_REPORTS").map(PathBuf::from),
        }
    }
}

impl<'a> Explorer<'a> {
    /// The state manager to checkpoint and roll back with: a manager (owned or `&mut`),
    /// `Box<dyn StateManager>`, or `&mut` a session. It must capture other connections'
    /// writes ([`StateManager::captures`]).
    pub fn state_manager<'b>(self, manager: impl Into<StateHandle<'b>>) -> Explorer<'b>
    where
        'a: 'b,
    {
        Explorer {
            world: self.world,
            client: self.client,
            state: Some(manager.into()),
            settings: self.settings,
            report_dir: self.report_dir,
        }
    }

    /// The order in which (state, action) pairs are tried (default [`Strategy::Bfs`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.settings.strategy = strategy;
        self
    }

    /// The longest sequence of actions from the root state (default [`DEFAULT_MAX_DEPTH`]).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.settings.max_depth = depth;
        self
    }

    /// Stop after this many distinct states (default: no limit).
    pub fn max_states(mut self, states: usize) -> Self {
        self.settings.max_states = Some(states);
        self
    }

    /// Stop after this many steps, replays not counted (default [`DEFAULT_MAX_STEPS`];
    /// `None` for no limit).
    pub fn max_steps(mut self, steps: impl Into<Option<usize>>) -> Self {
        self.settings.max_steps = steps.into();
        self
    }

    /// Stop after this much time (default: no limit). Shrinking runs after it.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.settings.time_limit = Some(limit);
        self
    }

    /// Whether running out of a budget fails the result (default: no, a budget hit is a
    /// result: what was explored passed).
    pub fn budget_is_failure(mut self, on: bool) -> Self {
        self.settings.budget_is_failure = on;
        self
    }

    /// Stop at the first violation (default: go on, recording the first violation of
    /// each invariant and counting the others; a violating state is not expanded).
    pub fn stop_on_violation(mut self, on: bool) -> Self {
        self.settings.stop_on_violation = on;
        self
    }

    /// Whether violations are shrunk to a sequence from which no action can be removed
    /// (default: yes).
    pub fn shrink(mut self, on: bool) -> Self {
        self.settings.shrink = on;
        self
    }

    /// Whether the fingerprint of a state includes the capture diff since the root
    /// (default: yes). Without it, states are told apart by the context and the world's
    /// observations only; for a state manager without `diff()`.
    pub fn fingerprint_diff(mut self, on: bool) -> Self {
        self.settings.use_diff = on;
        self
    }

    /// Writes `explore_<world>.xml` (JUnit) and `explore_<world>.json` into `dir` after
    /// the run (default: the `VENOMQA_EXPLORE_REPORTS` environment variable, if set).
    pub fn report_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.report_dir = Some(dir.into());
        self
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Explores, and returns what it found; `Err` only when it could not start (an
    /// invalid world, no state manager, one without capture, a failed first
    /// checkpoint). Faults during the run (a panicking precondition or action, an
    /// invariant that cannot check, a server that died, a failed rollback) stop it
    /// cleanly and are in the result; the database is rolled back either way.
    pub fn run(&mut self) -> Result<ExplorationResult, ExploreError> {
        self.world.validate()?;
        let name = self.world.name.clone();
        let Some(handle) = self.state.as_mut() else {
            return Err(ExploreError::NoStateManager { world: name });
        };
        if !handle.get_ref().is_connected() {
            return Err(ExploreError::State {
                world: name,
                operation: "checking the state manager".to_owned(),
                source: Box::new(crate::Error::unsupported(
                    handle.label(),
                    "an exploration while disconnected",
                    "call connect() first",
                )),
            });
        }
        if !handle.get_ref().captures() {
            return Err(ExploreError::NoCapture {
                world: name,
                manager: handle.label().to_owned(),
            });
        }
        handle
            .get()
            .checkpoint(EXPLORE_CHECKPOINT)
            .map_err(|source| ExploreError::State {
                world: name.clone(),
                operation: format!("checkpoint {EXPLORE_CHECKPOINT:?} before the exploration"),
                source: Box::new(source),
            })?;
        let started = Instant::now();
        let manager = handle.get();
        let mut engine = Engine::new(&self.world, &self.client, manager, self.settings, started);
        engine.run();
        let explored = started.elapsed();
        let t = Instant::now();
        let cleanup = match engine.manager.discard(EXPLORE_CHECKPOINT) {
            Ok(()) => Ok(t.elapsed()),
            Err(e) => Err(format!(
                "rolling back to {EXPLORE_CHECKPOINT:?} at the end of the exploration failed, so the database may keep the exploration's writes: {e}"
            )),
        };
        let result = engine.finish(explored, cleanup);
        if let Some(dir) = &self.report_dir {
            if let Err(e) = result.write_reports(dir) {
                tracing::warn!(target: "venomqa", error = %e, dir = %dir.display(), "writing the exploration reports failed");
            }
        }
        Ok(result)
    }
}

/// A small seeded generator (splitmix64): the same seed gives the same order.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 128-bit fingerprint from two independent SipHash states (fixed keys: the same
/// state gives the same fingerprint in every run).
pub(crate) struct Fingerprint(DefaultHasher, DefaultHasher);

impl Fingerprint {
    pub(crate) fn new() -> Self {
        let mut b = DefaultHasher::new();
        0xA5u8.hash(&mut b);
        Fingerprint(DefaultHasher::new(), b)
    }

    fn add<T: Hash + ?Sized>(&mut self, value: &T) {
        value.hash(&mut self.0);
        value.hash(&mut self.1);
    }

    pub(crate) fn finish(&self) -> u128 {
        (u128::from(self.0.finish()) << 64) | u128::from(self.1.finish())
    }
}

/// A diff in an order that does not depend on the path that made it: tables by name,
/// rows by key, columns by name; cascade marks left out.
fn add_diff(fp: &mut Fingerprint, diff: &Diff) {
    let mut tables: Vec<_> = diff.tables().iter().collect();
    tables.sort_by(|a, b| a.table.cmp(&b.table));
    for t in tables {
        fp.add(&t.table);
        fp.add(&(t.inserted, t.updated, t.deleted, t.omitted));
        let mut rows: Vec<_> = t.rows.iter().collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key).then((a.kind as u8).cmp(&(b.kind as u8))));
        for r in rows {
            fp.add(&(r.kind as u8));
            fp.add(&r.key);
            let mut cols: Vec<_> = r.columns.iter().collect();
            cols.sort_by(|a, b| a.column.cmp(&b.column));
            for c in cols {
                fp.add(&c.column);
                fp.add(&c.old);
                fp.add(&c.new);
            }
        }
    }
}

/// A JSON value in an order that does not depend on how it was built: object keys
/// sorted (serde_json keeps insertion order when a dependency turns on its
/// `preserve_order`).
pub(crate) fn add_json(fp: &mut Fingerprint, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            fp.add("{");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                fp.add(k.as_str());
                add_json(fp, &map[k.as_str()]);
            }
            fp.add("}");
        }
        Value::Array(items) => {
            fp.add("[");
            for v in items {
                add_json(fp, v);
            }
            fp.add("]");
        }
        other => fp.add(&other.to_string()),
    }
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

/// Which invariants a step checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    All,
    /// Only this one (shrinking): an invariant index, or `None` for the 5xx rule.
    One(Option<usize>),
    None,
}

/// What one action did.
struct StepRun {
    exchanges: Vec<Exchange>,
    check_exchanges: Vec<Exchange>,
    class: String,
    outcome: String,
    error: Option<String>,
    /// (invariant index or None for the 5xx rule, message)
    violations: Vec<(Option<usize>, String)>,
    fp: u128,
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

/// Where to run the next action from.
enum At {
    /// Frame `k` of the current position.
    Frame(usize),
    /// A node, reached by its path.
    Node(usize),
}

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

struct Engine<'e> {
    world: &'e World,
    client: &'e Client,
    manager: &'e mut dyn StateManager,
    settings: Settings,
    started: Instant,
    rng: Rng,
    nodes: Vec<Node>,
    seen: HashMap<u128, usize>,
    stack: Vec<Frame>,
    queue: VecDeque<usize>,
    open: Vec<usize>,
    counters: Counters,
    coverage: Vec<ActionCoverage>,
    pairs: HashSet<(u16, String)>,
    found: Vec<Found>,
    fault: Option<Fault>,
    stop: StopReason,
    warnings: Vec<String>,
    warned: HashSet<usize>,
}

impl<'e> Engine<'e> {
    fn new(
        world: &'e World,
        client: &'e Client,
        manager: &'e mut dyn StateManager,
        settings: Settings,
        started: Instant,
    ) -> Self {
        let seed = match settings.strategy {
            Strategy::Random { seed } | Strategy::CoverageGuided { seed } => seed,
            _ => 0,
        };
        Engine {
            world,
            client,
            manager,
            settings,
            started,
            rng: Rng::new(seed),
            nodes: Vec::new(),
            seen: HashMap::new(),
            stack: Vec::new(),
            queue: VecDeque::new(),
            open: Vec::new(),
            counters: Counters::default(),
            coverage: world
                .actions
                .iter()
                .map(|a| ActionCoverage::new(&a.name))
                .collect(),
            pairs: HashSet::new(),
            found: Vec::new(),
            fault: None,
            stop: StopReason::Exhausted,
            warnings: Vec::new(),
            warned: HashSet::new(),
        }
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
    fn run(&mut self) {
        if let Err(f) = self.explore() {
            self.stop = StopReason::Fault;
            self.fault = Some(f);
        }
        if self.fault.is_none() && self.settings.shrink {
            if let Err(f) = self.shrink_all() {
                self.fault = Some(f);
            }
        }
    }

    fn explore(&mut self) -> Result<(), Fault> {
        let mut ctx = Context::new();
        let world = self.world;
        if let Some(setup) = &world.setup {
            let _ = self.client.take_exchanges();
            let outcome = catch_unwind(AssertUnwindSafe(|| setup(self.client, &mut ctx)));
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
        let violations = self.check(&root_ctx, "setup", Checks::All, None)?;
        let _ = self.client.take_exchanges();
        let (fp, diff) = self.fingerprint(&root.ctx, None)?;
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
        self.queue.push_back(0);
        self.open.push(0);
        loop {
            if let Some(reason) = self.budget_hit() {
                self.stop = reason;
                return Ok(());
            }
            let Some((at, action)) = self.pick() else {
                self.stop = StopReason::Exhausted;
                return Ok(());
            };
            self.go(at)?;
            if self.try_action(action)? {
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

    /// The next (where, action) to try, by the strategy; `None` when nothing is left.
    fn pick(&mut self) -> Option<(At, u16)> {
        match self.settings.strategy {
            Strategy::Dfs => {
                for k in (0..self.stack.len()).rev() {
                    if let Some(n) = self.stack[k].node {
                        // Only where the state's own (shortest) path puts it: a state met
                        // again deeper, as on a cycle, is expanded where it was found.
                        if self.nodes[n].path.len() == k && !self.nodes[n].untried.is_empty() {
                            let a = self.nodes[n].untried.remove(0);
                            return Some((At::Frame(k), a));
                        }
                    }
                }
                // Not reached in a depth-first run (a state off the current path is done),
                // but a state re-opened elsewhere is still explored.
                let n = self.nodes.iter().position(|n| !n.untried.is_empty())?;
                let a = self.nodes[n].untried.remove(0);
                Some((At::Node(n), a))
            }
            Strategy::Bfs => {
                while let Some(&n) = self.queue.front() {
                    if self.nodes[n].untried.is_empty() {
                        self.queue.pop_front();
                        continue;
                    }
                    let a = self.nodes[n].untried.remove(0);
                    return Some((At::Node(n), a));
                }
                None
            }
            Strategy::Random { .. } => loop {
                if self.open.is_empty() {
                    return None;
                }
                let i = self.rng.below(self.open.len());
                let n = self.open[i];
                if self.nodes[n].untried.is_empty() {
                    self.open.swap_remove(i);
                    continue;
                }
                let j = self.rng.below(self.nodes[n].untried.len());
                let a = self.nodes[n].untried.remove(j);
                return Some((At::Node(n), a));
            },
            Strategy::CoverageGuided { seed } => {
                self.open.retain(|&n| !self.nodes[n].untried.is_empty());
                // (runs of the action, not novel, not on the current path, depth, tie-break)
                type Key = (usize, u8, u8, usize, u64);
                let mut best: Option<(Key, usize, usize)> = None;
                for &n in &self.open {
                    let node = &self.nodes[n];
                    let depth = node.path.len();
                    let on_stack = self.stack.get(depth).is_some_and(|f| f.node == Some(n));
                    for (j, &a) in node.untried.iter().enumerate() {
                        let key = (
                            self.coverage[a as usize].runs,
                            u8::from(!node.novel),
                            u8::from(!on_stack),
                            depth,
                            mix(seed ^ ((n as u64) << 16) ^ u64::from(a)),
                        );
                        if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                            best = Some((key, n, j));
                        }
                    }
                }
                let (_, n, j) = best?;
                let a = self.nodes[n].untried.remove(j);
                Some((At::Node(n), a))
            }
        }
    }

    /// Goes to `at`: a rollback to the deepest checkpoint the current position shares
    /// with it, then a replay of the rest of its path.
    fn go(&mut self, at: At) -> Result<(), Fault> {
        match at {
            At::Frame(k) => {
                if k + 1 < self.stack.len() {
                    self.rollback_to(k)?;
                }
                Ok(())
            }
            At::Node(n) => {
                let path = self.nodes[n].path.clone();
                let mut common = 0;
                while common < path.len()
                    && common + 1 < self.stack.len()
                    && self.stack[common + 1].via == Some(path[common])
                {
                    common += 1;
                }
                if common + 1 < self.stack.len() {
                    self.rollback_to(common)?;
                }
                for &a in &path[common..] {
                    self.ensure_checkpoint()?;
                    let mut ctx = self.stack.last().expect("root").ctx.clone();
                    if !self.precondition(a, &ctx)? {
                        return Err(self.fault(
                            FaultKind::Nondeterministic,
                            Some(a),
                            format!(
                                "replaying the path to a state, action {:?} is not enabled any more: an action or the API is not deterministic (same sequence, other state)",
                                self.world.actions[a as usize].name
                            ),
                        ));
                    }
                    let run = self.step(a, &mut ctx, Checks::None)?;
                    self.counters.replays += 1;
                    let node = self.seen.get(&run.fp).copied();
                    self.stack.push(Frame {
                        node,
                        via: Some(a),
                        ctx,
                        checkpoint: false,
                        outcome: run.outcome,
                        diff: run.diff,
                    });
                }
                let top = self.stack.last().expect("root").node;
                if top != Some(n) && self.warned.insert(n) {
                    let path = self.names(&self.nodes[n].path).join(", ");
                    self.warnings.push(format!(
                        "replaying [{path}] reached another state than the first time: an action or the API is not deterministic; the exploration goes on from where the replay led"
                    ));
                }
                Ok(())
            }
        }
    }

    /// Runs `a` from the current position; records coverage, violations and the new
    /// state. Returns whether the exploration must stop (`stop_on_violation`).
    fn try_action(&mut self, a: u16) -> Result<bool, Fault> {
        self.ensure_checkpoint()?;
        let mut ctx = self.stack.last().expect("root").ctx.clone();
        if !self.precondition(a, &ctx)? {
            return Ok(false);
        }
        let run = self.step(a, &mut ctx, Checks::All)?;
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
                self.queue.push_back(id);
                self.open.push(id);
                id
            }
        };
        self.stack.last_mut().expect("pushed").node = Some(node);
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

    fn record(
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

    /// The actions enabled in `ctx`, in the world's order.
    fn enabled(&mut self, ctx: &Context) -> Result<Vec<u16>, Fault> {
        let mut out = Vec::new();
        for a in 0..self.world.actions.len() as u16 {
            if self.precondition(a, ctx)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    fn precondition(&self, a: u16, ctx: &Context) -> Result<bool, Fault> {
        let world = self.world;
        let action = &world.actions[a as usize];
        let Some(pre) = &action.precondition else {
            return Ok(true);
        };
        catch_unwind(AssertUnwindSafe(|| pre(ctx))).map_err(|p| {
            self.fault(
                FaultKind::PreconditionPanicked,
                None,
                format!(
                    "the precondition of action {:?} panicked: {}",
                    action.name,
                    panic_message(&*p)
                ),
            )
        })
    }

    /// Runs action `a` on `ctx`, then the checks, then the fingerprint.
    fn step(&mut self, a: u16, ctx: &mut Context, checks: Checks) -> Result<StepRun, Fault> {
        self.step_with(a, ctx, checks, true)
    }

    fn step_with(
        &mut self,
        a: u16,
        ctx: &mut Context,
        checks: Checks,
        fingerprint: bool,
    ) -> Result<StepRun, Fault> {
        let world = self.world;
        let action = &world.actions[a as usize];
        let _ = self.client.take_exchanges();
        let outcome = catch_unwind(AssertUnwindSafe(|| (action.run)(self.client, ctx)));
        let exchanges = self.client.take_exchanges();
        let last = exchanges.last().map(|e| e.summary());
        let error = match outcome {
            Err(p) => {
                return Err(self.fault(
                    FaultKind::ActionPanicked,
                    Some(a),
                    format!(
                        "action {:?} panicked: {}{}",
                        action.name,
                        panic_message(&*p),
                        last.map(|l| format!(" (last request: {l})"))
                            .unwrap_or_default()
                    ),
                ))
            }
            Ok(Err(e)) if transport(&e) => {
                return Err(self.fault(
                    FaultKind::ServerUnreachable,
                    Some(a),
                    format!(
                        "action {:?} could not get an answer: {}",
                        action.name,
                        e.chain()
                    ),
                ))
            }
            Ok(Err(e)) => Some(e.chain()),
            Ok(Ok(())) => None,
        };
        let status = exchanges
            .last()
            .and_then(|e| e.response.as_ref().ok().map(|r| r.status));
        let class = match (status, &error) {
            (Some(s), _) => s.to_string(),
            (None, Some(_)) => "error".to_owned(),
            (None, None) => "no request".to_owned(),
        };
        let outcome = match (&last, &error) {
            (Some(l), None) => l.clone(),
            (Some(l), Some(e)) => format!("{l}; error: {}", crate::journey::cut(e, 160)),
            (None, Some(e)) => format!("error: {}", crate::journey::cut(e, 160)),
            (None, None) => "no request".to_owned(),
        };
        let mut violations = Vec::new();
        if self.world.server_errors && matches!(checks, Checks::All | Checks::One(None)) {
            if let Some(e) = exchanges
                .iter()
                .find(|e| e.response.as_ref().is_ok_and(|r| r.status >= 500))
            {
                let body = e
                    .response
                    .as_ref()
                    .map(|r| r.body.clone())
                    .unwrap_or_default();
                violations.push((
                    None,
                    format!(
                        "{} answered with a server error; response body: {}",
                        e.summary(),
                        crate::journey::cut(&body, 300)
                    ),
                ));
            }
        }
        let name = action.name.clone();
        violations.extend(self.check(ctx, &name, checks, Some(a))?);
        let check_exchanges = self.client.take_exchanges();
        let (fp, diff) = if fingerprint {
            self.fingerprint(ctx, Some(a))?
        } else {
            (0, None)
        };
        Ok(StepRun {
            exchanges,
            check_exchanges,
            class,
            outcome,
            error,
            violations,
            fp,
            diff,
        })
    }

    /// The invariants after a step: which are violated, or a fault when one could not
    /// check.
    fn check(
        &mut self,
        ctx: &Context,
        step: &str,
        checks: Checks,
        action: Option<u16>,
    ) -> Result<Vec<(Option<usize>, String)>, Fault> {
        let world = self.world;
        let mut violated = Vec::new();
        for (i, invariant) in world.invariants.iter().enumerate() {
            match checks {
                Checks::None => break,
                Checks::One(t) if t != Some(i) => continue,
                _ => {}
            }
            let mut check = Check::new(self.client, ctx, Some(&mut *self.manager), step, None);
            let outcome = catch_unwind(AssertUnwindSafe(|| (invariant.check)(&mut check)));
            let problem = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) if transport(&e) => {
                    return Err(self.fault(
                        FaultKind::ServerUnreachable,
                        action,
                        format!(
                            "invariant {:?} could not reach the API after step {step:?}: {}",
                            invariant.name(),
                            e.chain()
                        ),
                    ))
                }
                Ok(Err(e)) if is_violation(&e) => e.chain(),
                Ok(Err(e)) => {
                    return Err(self.fault(
                        FaultKind::InvariantFailed,
                        action,
                        format!(
                            "invariant {:?} could not check after step {step:?}: {} (an invariant reports a violation with Err(StepError::msg(..)) or a response expectation; other errors mean it could not check)",
                            invariant.name(),
                            e.chain()
                        ),
                    ))
                }
                Err(p) => {
                    return Err(self.fault(
                        FaultKind::InvariantFailed,
                        action,
                        format!(
                            "invariant {:?} panicked after step {step:?}: {}",
                            invariant.name(),
                            panic_message(&*p)
                        ),
                    ))
                }
            };
            violated.push((Some(i), problem));
        }
        Ok(violated)
    }

    /// The fingerprint of the current state: the capture diff since the root, the
    /// context (less the ignored keys), the observations.
    fn fingerprint(
        &mut self,
        ctx: &Context,
        action: Option<u16>,
    ) -> Result<(u128, Option<Diff>), Fault> {
        let mut fp = Fingerprint::new();
        let diff = if self.settings.use_diff {
            let diff = self.manager.diff(ROOT).map_err(|e| {
                self.fault(
                    FaultKind::StateManager,
                    action,
                    format!("reading the capture diff since the exploration's root failed: {e} (turn fingerprint_diff off for a state manager without diff())"),
                )
            })?;
            add_diff(&mut fp, &diff);
            Some(diff)
        } else {
            None
        };
        fp.add("context");
        for key in ctx.keys() {
            if self.world.ignored.iter().any(|k| k == key) {
                continue;
            }
            fp.add(key);
            if let Some(v) = ctx.get(key) {
                add_json(&mut fp, v);
            }
        }
        let world = self.world;
        for (name, observe) in &world.observers {
            let mut check = Check::new(self.client, ctx, Some(&mut *self.manager), "observe", None);
            let outcome = catch_unwind(AssertUnwindSafe(|| observe(&mut check)));
            let value = match outcome {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    let kind = if transport(&e) {
                        FaultKind::ServerUnreachable
                    } else {
                        FaultKind::ObservationFailed
                    };
                    return Err(self.fault(
                        kind,
                        action,
                        format!("observation {name:?} failed: {}", e.chain()),
                    ));
                }
                Err(p) => {
                    return Err(self.fault(
                        FaultKind::ObservationFailed,
                        action,
                        format!("observation {name:?} panicked: {}", panic_message(&*p)),
                    ))
                }
            };
            fp.add(name.as_str());
            add_json(&mut fp, &value);
        }
        let _ = self.client.take_exchanges();
        Ok((fp.finish(), diff))
    }

    fn checkpoint(&mut self, name: &str) -> Result<(), Fault> {
        let t = Instant::now();
        let result = self.manager.checkpoint(name);
        self.counters.checkpoint_time += t.elapsed();
        self.counters.checkpoints += 1;
        result.map_err(|e| {
            self.fault(
                FaultKind::StateManager,
                None,
                format!("checkpoint {name:?} failed: {e}"),
            )
        })
    }

    /// Makes the top frame's checkpoint if it has none.
    fn ensure_checkpoint(&mut self) -> Result<(), Fault> {
        let k = self.stack.len() - 1;
        if !self.stack[k].checkpoint {
            self.checkpoint(&frame_checkpoint(k))?;
            self.stack[k].checkpoint = true;
        }
        Ok(())
    }

    /// Restores the state of frame `k` (which has a checkpoint), dropping the frames
    /// above it.
    fn rollback_to(&mut self, k: usize) -> Result<(), Fault> {
        debug_assert!(self.stack[k].checkpoint);
        let name = frame_checkpoint(k);
        let t = Instant::now();
        let result = self.manager.rollback(&name);
        self.counters.rollback_time += t.elapsed();
        self.counters.rollbacks += 1;
        result.map_err(|e| {
            self.fault(
                FaultKind::StateManager,
                None,
                format!("rollback to checkpoint {name:?} failed, so the next states would not start where they should: {e}"),
            )
        })?;
        self.stack.truncate(k + 1);
        Ok(())
    }

    /// Shrinks every violation found; a fault stops shrinking (what is left keeps the
    /// sequence it was found with).
    fn shrink_all(&mut self) -> Result<(), Fault> {
        for i in 0..self.found.len() {
            if self.found[i].sequence.is_empty() {
                continue;
            }
            let target = self.found[i].target;
            let original = self.found[i].sequence.clone();
            let Some(mut cur) = self
                .replay(&original, target)?
                .map(|r| original[..r].to_vec())
            else {
                self.warnings.push(format!(
                    "the violation of {:?} did not happen again when its sequence was replayed: an action or the API is not deterministic; it is reported as found",
                    self.found[i].name
                ));
                continue;
            };
            let mut n = 2;
            while cur.len() >= 2 {
                let chunk = cur.len().div_ceil(n);
                let mut reduced = false;
                let mut start = 0;
                while start < cur.len() {
                    let mut candidate = cur[..start].to_vec();
                    candidate.extend_from_slice(&cur[(start + chunk).min(cur.len())..]);
                    start += chunk;
                    if candidate.is_empty() {
                        continue;
                    }
                    if let Some(r) = self.replay(&candidate, target)? {
                        candidate.truncate(r);
                        cur = candidate;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
                if !reduced {
                    if n >= cur.len() {
                        break;
                    }
                    n = (n * 2).min(cur.len());
                }
            }
            // Run it once more, recording what the report shows.
            if let Some(details) = self.replay_recorded(&cur, target)? {
                let f = &mut self.found[i];
                f.sequence = cur;
                f.shrunk = true;
                f.path = details.path;
                f.exchanges = details.exchanges;
                f.check_exchanges = details.check_exchanges;
                f.message = details.message;
            }
        }
        Ok(())
    }

    /// Runs `seq` from the root state, checking only `target`; the length of the prefix
    /// after which it is violated, or `None` (not violated, or an action not enabled).
    fn replay(&mut self, seq: &[u16], target: Option<usize>) -> Result<Option<usize>, Fault> {
        Ok(self.replay_inner(seq, target, false)?.map(|d| d.len))
    }

    fn replay_recorded(
        &mut self,
        seq: &[u16],
        target: Option<usize>,
    ) -> Result<Option<Replayed>, Fault> {
        self.replay_inner(seq, target, true)
    }

    fn replay_inner(
        &mut self,
        seq: &[u16],
        target: Option<usize>,
        record: bool,
    ) -> Result<Option<Replayed>, Fault> {
        if self.stack.len() > 1 {
            self.rollback_to(0)?;
        }
        let mut ctx = self.stack[0].ctx.clone();
        let mut path = Vec::new();
        for (i, &a) in seq.iter().enumerate() {
            if !self.precondition(a, &ctx)? {
                return Ok(None);
            }
            let run = self.step_unfingerprinted(a, &mut ctx, target, record)?;
            self.counters.shrink_steps += 1;
            // The position moved: the next replay must roll back.
            self.stack.push(Frame {
                node: None,
                via: Some(a),
                ctx: Context::new(),
                checkpoint: false,
                outcome: run.outcome.clone(),
                diff: None,
            });
            if record {
                path.push(PathStep {
                    action: self.world.actions[a as usize].name.clone(),
                    outcome: run.outcome.clone(),
                    diff: run.diff.clone(),
                });
            }
            if let Some((_, message)) = run.violations.into_iter().next() {
                return Ok(Some(Replayed {
                    len: i + 1,
                    path,
                    exchanges: run.exchanges,
                    check_exchanges: run.check_exchanges,
                    message,
                }));
            }
        }
        Ok(None)
    }

    /// A step while shrinking: only the target is checked, no fingerprint; the diff is
    /// read only when recording.
    fn step_unfingerprinted(
        &mut self,
        a: u16,
        ctx: &mut Context,
        target: Option<usize>,
        record: bool,
    ) -> Result<StepRun, Fault> {
        let mut run = self.step_with(a, ctx, Checks::One(target), false)?;
        if record {
            run.diff = self.manager.diff(ROOT).ok();
        }
        Ok(run)
    }

    fn finish(self, explored: Duration, cleanup: Result<Duration, String>) -> ExplorationResult {
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
                journey: super::repro::journey(
                    self.world,
                    &super::repro::test_name(&f.name),
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
            violations,
            fault: self.fault,
            stop: self.stop,
            warnings: self.warnings,
            cleanup,
            budget_is_failure: self.settings.budget_is_failure,
        }
    }
}

/// What a recorded replay saw at the violation.
struct Replayed {
    len: usize,
    path: Vec<PathStep>,
    exchanges: Vec<Exchange>,
    check_exchanges: Vec<Exchange>,
    message: String,
}
