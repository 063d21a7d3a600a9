//! [`Explorer`]: the builder an exploration is configured with (strategy, depth, budgets,
//! shrinking, reports) and its [`run`](Explorer::run), which checks the state manager,
//! makes the exploration's checkpoint, lets the engine explore, and rolls everything back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::journey::{Client, StateHandle};

use super::engine::{Engine, Settings};
use super::error::ExploreError;
use super::report::ExplorationResult;
use super::repro::RustTemplate;
use super::{Strategy, World};

/// The checkpoint the explorer makes before anything runs and discards at the end, so an
/// exploration leaves the database as it found it. Inside a session it nests under the
/// session's root. The states of the exploration are checkpoints `venomqa_x0` (the root,
/// after the world's setup), `venomqa_x1`, ... nested under it.
pub const EXPLORE_CHECKPOINT: &str = "venomqa_explore";

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
/// use venomqa::sqlite::SqliteCaptureSession;
///
/// # fn shop_world() -> World { World::new("x") }
/// #[venomqa::venom_test(config = "shop")] // an entry with `isolation: capture`
/// fn explore_the_shop(db: &mut SqliteCaptureSession) {
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
    rust_template: RustTemplate,
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
            rust_template: RustTemplate::new("world()"),
        }
    }
}

impl<'a> Explorer<'a> {
    /// The state manager to checkpoint and roll back with: a manager (owned or `&mut`),
    /// `Box<dyn StateManager>`, or `&mut` a session. It must capture other connections'
    /// writes ([`StateManager::captures`](crate::StateManager::captures)).
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
            rust_template: self.rust_template,
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

    /// Writes `explore_<world>.xml` (JUnit), `.json` and `.html` into `dir` after
    /// the run (default: the `VENOMQA_EXPLORE_REPORTS` environment variable, if set).
    pub fn report_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.report_dir = Some(dir.into());
        self
    }

    /// How the reports write each violation's reproducing `#[venom_test]` (default
    /// `RustTemplate::new("world()")`: name the function of your tests that builds the
    /// world, and how the test starts its server). [`Violation::to_rust`](super::Violation::to_rust) takes any
    /// template after the run.
    pub fn rust_template(mut self, template: RustTemplate) -> Self {
        self.rust_template = template;
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
        if let Some(what) = self.world.first_async() {
            return Err(ExploreError::Async {
                world: self.world.name.clone(),
                what,
            });
        }
        crate::journey::now(self.drive())
    }

    /// Explores on the current task, `.await`ing the world's async setup, actions and
    /// invariants (blocking ones run in place), and returns what [`run`](Self::run)
    /// returns (feature `journey-async`). Checkpoints and rollbacks run outside the
    /// runtime as in [`JourneyRunner::run_async`](crate::journey::JourneyRunner::run_async).
    /// The future is not `Send`: await it in the test, don't spawn it.
    #[cfg(feature = "journey-async")]
    pub async fn run_async(&mut self) -> Result<ExplorationResult, ExploreError> {
        self.world.validate()?;
        self.drive().await
    }

    async fn drive(&mut self) -> Result<ExplorationResult, ExploreError> {
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
        let manager = handle.get();
        crate::journey::offload(|| manager.checkpoint(EXPLORE_CHECKPOINT)).map_err(|source| {
            ExploreError::State {
                world: name.clone(),
                operation: format!("checkpoint {EXPLORE_CHECKPOINT:?} before the exploration"),
                source: Box::new(source),
            }
        })?;
        let started = Instant::now();
        let manager = handle.get();
        let mut engine = Engine::new(&self.world, &self.client, manager, self.settings, started);
        engine.run().await;
        let explored = started.elapsed();
        let t = Instant::now();
        let manager = engine.manager();
        let cleanup = match crate::journey::offload(|| manager.discard(EXPLORE_CHECKPOINT)) {
            Ok(()) => Ok(t.elapsed()),
            Err(e) => Err(format!(
                "rolling back to {EXPLORE_CHECKPOINT:?} at the end of the exploration failed, so the database may keep the exploration's writes: {e}"
            )),
        };
        let mut result = engine.finish(explored, cleanup);
        result.rust_template = self.rust_template.clone();
        if let Some(dir) = &self.report_dir {
            if let Err(e) = result.write_reports(dir) {
                tracing::warn!(target: "venomqa", error = %e, dir = %dir.display(), "writing the exploration reports failed");
            }
        }
        crate::journey::append_step_summary(|| result.to_markdown());
        Ok(result)
    }
}
