//! [`JourneyRunner`]: runs a [`Journey`] against an API, rolling the database back to the
//! checkpoint before each path of a branch, checking invariants after each step.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::session::{Session, SessionManager};
use crate::state::StateManager;

use super::client::{Client, HttpError};
use super::context::Context;
use super::report::{
    BranchResult, FailureKind, ItemResult, JourneyResult, PathResult, Place, Severity, Status,
    StepFailure, StepResult,
};
use super::{Item, Journey, Step, StepError};

/// The checkpoint the runner makes before a journey and discards after it, so a journey
/// leaves the database as it found it. Inside a session it nests under the session's root.
pub const JOURNEY_CHECKPOINT: &str = "venomqa_journey";

/// Why a journey did not run. (A journey that ran and failed is a [`JourneyResult`] whose
/// [`passed`](JourneyResult::passed) is false.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JourneyError {
    /// The journey's definition is wrong; every problem is listed.
    #[error("journey {journey:?} is invalid: {}; fix the journey's definition", problems.join("; "))]
    Invalid {
        /// The journey.
        journey: String,
        /// Each problem, naming the step, path, branch or checkpoint it is about.
        problems: Vec<String>,
    },
    /// The journey has branches, and the runner no state manager to roll back with.
    #[error("journey {journey:?} has branches, but the runner has no state manager to roll the database back between paths; give it one with .state_manager(..)")]
    NoStateManager {
        /// The journey.
        journey: String,
    },
    /// The state manager's rollbacks would not undo what the API server writes.
    #[error("journey {journey:?} refused: {manager} does not capture what other connections write, so the API server's writes would leak from one path into the next and stay after the journey; use capture isolation (SQLite: `isolation: capture` on a file URL) and start the server on the state manager's url()")]
    NoCapture {
        /// The journey.
        journey: String,
        /// The state manager, for the message.
        manager: String,
    },
    /// Parallel paths were asked for where the paths would share one database.
    #[error("journey {journey:?}: parallel_paths({workers}) refused: {reason}")]
    Parallel {
        /// The journey.
        journey: String,
        /// How many workers were asked for.
        workers: usize,
        /// Why it cannot run so.
        reason: String,
    },
    /// The state manager failed before the journey started.
    #[error("journey {journey:?}: {operation} failed: {source}")]
    State {
        /// The journey.
        journey: String,
        /// What the runner was doing.
        operation: String,
        /// The state manager's error.
        #[source]
        source: Box<crate::Error>,
    },
}

/// The state manager a runner rolls back with: owned, borrowed, or a session's.
///
/// Built by `From`: a [`Manager`](crate::Manager) (owned), `&mut M` for any manager,
/// `&mut dyn StateManager`,
/// `Box<dyn StateManager>`, or `&mut Session` (any session type; the journey's checkpoints
/// nest under the session's root).
pub struct StateHandle<'a> {
    inner: Inner<'a>,
    label: String,
}

enum Inner<'a> {
    Owned(Box<dyn StateManager>),
    Borrowed(&'a mut dyn StateManager),
}

impl std::fmt::Debug for StateHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateHandle")
            .field("manager", &self.label)
            .finish()
    }
}

impl StateHandle<'_> {
    /// The manager.
    pub fn get(&mut self) -> &mut dyn StateManager {
        match &mut self.inner {
            Inner::Owned(m) => m.as_mut(),
            Inner::Borrowed(m) => &mut **m,
        }
    }

    /// The manager, for reading.
    pub fn get_ref(&self) -> &dyn StateManager {
        match &self.inner {
            Inner::Owned(m) => m.as_ref(),
            Inner::Borrowed(m) => &**m,
        }
    }

    /// What the manager is, for messages (`the state manager venomqa::Manager<..Sqlite>`).
    pub fn label(&self) -> &str {
        &self.label
    }
}

fn type_label<M>() -> String {
    format!("the state manager {}", std::any::type_name::<M>())
}

impl<B: crate::Backend> From<crate::Manager<B>> for StateHandle<'_> {
    fn from(m: crate::Manager<B>) -> Self {
        StateHandle {
            inner: Inner::Owned(Box::new(m)),
            label: type_label::<crate::Manager<B>>(),
        }
    }
}

impl<'a, M: StateManager> From<&'a mut M> for StateHandle<'a> {
    fn from(m: &'a mut M) -> Self {
        StateHandle {
            inner: Inner::Borrowed(m),
            label: type_label::<M>(),
        }
    }
}

impl<'a> From<&'a mut dyn StateManager> for StateHandle<'a> {
    fn from(m: &'a mut dyn StateManager) -> Self {
        StateHandle {
            inner: Inner::Borrowed(m),
            label: "the state manager".to_owned(),
        }
    }
}

impl From<Box<dyn StateManager>> for StateHandle<'_> {
    fn from(m: Box<dyn StateManager>) -> Self {
        StateHandle {
            inner: Inner::Owned(m),
            label: "the state manager".to_owned(),
        }
    }
}

impl<'a, M: ?Sized + SessionManager> From<&'a mut Session<M>> for StateHandle<'a> {
    fn from(s: &'a mut Session<M>) -> Self {
        let label = format!(
            "the {} session of {} (entry {:?})",
            s.backend_name(),
            s.test_name(),
            s.config().entry
        );
        StateHandle {
            inner: Inner::Borrowed(s.state_manager()),
            label,
        }
    }
}

type CheckFn = Arc<dyn Fn(&mut Check<'_>) -> Result<(), StepError> + Send + Sync>;

/// A rule checked after every step that passed: "no order without a user", "stock never
/// below 0". A violation fails the step, naming the invariant and the step.
///
/// ```
/// use venomqa::journey::Invariant;
/// use venomqa::sqlite::SqliteStateManager;
///
/// let stock = Invariant::new("stock never below 0", |check| {
///     let db = check.manager::<SqliteStateManager>()?.connection()?;
///     let n: i64 = db.query_row("SELECT COUNT(*) FROM products WHERE stock < 0", [], |r| r.get(0))?;
///     if n > 0 {
///         return Err(venomqa::journey::StepError::msg(format!("{n} products have negative stock")));
///     }
///     Ok(())
/// });
/// let health = Invariant::new("the API answers", |check| {
///     check.client().get("/health").send()?.expect_status(200)?;
///     Ok(())
/// });
/// # let _ = (stock, health);
/// ```
#[derive(Clone)]
pub struct Invariant {
    name: String,
    pub(crate) check: CheckFn,
    severity: Severity,
}

impl std::fmt::Debug for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invariant")
            .field("name", &self.name)
            .field("severity", &self.severity)
            .finish_non_exhaustive()
    }
}

impl Invariant {
    /// An invariant named `name`: `check` returns `Err` (or panics) when it is violated.
    /// Its severity is [`Severity::Critical`] until [`severity`](Self::severity) says
    /// otherwise.
    pub fn new<F>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn(&mut Check<'_>) -> Result<(), StepError> + Send + Sync + 'static,
    {
        Invariant {
            name: name.into(),
            check: Arc::new(check),
            severity: Severity::Critical,
        }
    }

    /// How bad a violation is, for reports (the explorer's violations carry it; the
    /// journey runner reports every violated invariant as critical).
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The invariant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its severity.
    pub fn get_severity(&self) -> Severity {
        self.severity
    }
}

/// What an [`Invariant`] looks at: the client, the context, the database (through the
/// state manager), and where the journey is.
pub struct Check<'r> {
    client: &'r Client,
    context: &'r Context,
    manager: Option<&'r mut dyn StateManager>,
    step: &'r str,
    path: Option<&'r str>,
}

impl std::fmt::Debug for Check<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("step", &self.step)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'r> Check<'r> {
    /// What an invariant checks after `step` (of `path`, if any): the explorer builds
    /// these too.
    #[cfg(feature = "explore")]
    pub(crate) fn new(
        client: &'r Client,
        context: &'r Context,
        manager: Option<&'r mut dyn StateManager>,
        step: &'r str,
        path: Option<&'r str>,
    ) -> Self {
        Check {
            client,
            context,
            manager,
            step,
            path,
        }
    }
}

impl Check<'_> {
    /// The journey's HTTP client.
    pub fn client(&self) -> &Client {
        self.client
    }

    /// The context after the step.
    pub fn context(&self) -> &Context {
        self.context
    }

    /// The step just run.
    pub fn step(&self) -> &str {
        self.step
    }

    /// The path being run, if the step is in one.
    pub fn path(&self) -> Option<&str> {
        self.path
    }

    /// The runner's state manager, or an error when it has none.
    pub fn state_manager(&mut self) -> Result<&mut dyn StateManager, StepError> {
        match self.manager.as_deref_mut() {
            Some(m) => Ok(m),
            None => Err(StepError::msg(
                "the runner has no state manager; give it one with .state_manager(..)",
            )),
        }
    }

    /// The runner's state manager as an `M` (such as
    /// [`SqliteStateManager`](crate::sqlite::SqliteStateManager), whose `connection()`
    /// reads the database), or an error naming the type asked for.
    pub fn manager<M: StateManager>(&mut self) -> Result<&mut M, StepError> {
        self.state_manager()?.downcast_mut::<M>().ok_or_else(|| {
            StepError::msg(format!(
                "the runner's state manager is not a {}",
                std::any::type_name::<M>()
            ))
        })
    }
}

/// Runs journeys: the Python `JourneyRunner(client, state_manager, parallel_paths,
/// fail_fast)`.
///
/// For each journey it validates the definition, refuses a state manager without capture
/// isolation, makes checkpoint [`JOURNEY_CHECKPOINT`], runs the items in order, and
/// discards that checkpoint at the end, so the database is left as it was found. For each
/// path of a branch it restores the context saved at the checkpoint, runs the steps
/// (checking every [`Invariant`] after each), records what the path changed in the
/// database if it failed, and rolls back to the checkpoint. A panicking step fails its
/// path; the rollback still happens.
///
/// ```no_run
/// use venomqa::journey::{Client, Journey, JourneyRunner};
/// use venomqa::sqlite::SqliteSession;
///
/// # fn journey() -> Journey { Journey::new("x") }
/// # fn start_server(url: &str) -> String { url.to_owned() }
/// #[venomqa::venom_test(config = "shop")] // an entry with `isolation: capture`
/// fn checkout(db: &mut SqliteSession) {
///     let server = start_server(db.url().unwrap().expose());
///     let result = JourneyRunner::new(Client::new(server))
///         .state_manager(db)
///         .fail_fast(false)
///         .run(&journey())
///         .unwrap();
///     result.assert_passed();
/// }
/// ```
pub struct JourneyRunner<'a> {
    client: Client,
    state: Option<StateHandle<'a>>,
    fail_fast: bool,
    parallel_paths: usize,
    workers: Vec<(Client, StateHandle<'a>)>,
    invariants: Vec<Invariant>,
    diffs: bool,
    report_dir: Option<PathBuf>,
}

impl std::fmt::Debug for JourneyRunner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JourneyRunner")
            .field("client", &self.client)
            .field("state", &self.state)
            .field("fail_fast", &self.fail_fast)
            .field("parallel_paths", &self.parallel_paths)
            .field("workers", &self.workers)
            .field("invariants", &self.invariants)
            .finish()
    }
}

impl JourneyRunner<'static> {
    /// A runner sending through `client`, with no state manager yet, `fail_fast` off,
    /// paths one at a time.
    pub fn new(client: Client) -> Self {
        JourneyRunner {
            client,
            state: None,
            fail_fast: false,
            parallel_paths: 1,
            workers: Vec::new(),
            invariants: Vec::new(),
            diffs: true,
            report_dir: std::env::var_os("VENOMQA_JOURNEY_REPORTS").map(PathBuf::from),
        }
    }
}

impl<'a> JourneyRunner<'a> {
    /// The state manager to checkpoint and roll back with: a manager (owned or `&mut`),
    /// `Box<dyn StateManager>`, or `&mut` a session. It must capture other connections'
    /// writes ([`StateManager::captures`]).
    pub fn state_manager<'b>(self, manager: impl Into<StateHandle<'b>>) -> JourneyRunner<'b>
    where
        'a: 'b,
    {
        JourneyRunner {
            client: self.client,
            state: Some(manager.into()),
            fail_fast: self.fail_fast,
            parallel_paths: self.parallel_paths,
            workers: self.workers,
            invariants: self.invariants,
            diffs: self.diffs,
            report_dir: self.report_dir,
        }
    }

    /// Stop at the first failing path: the remaining paths, branches and steps are
    /// reported as skipped. Off by default: every path runs, and a failure stops only the
    /// sequence it is in.
    pub fn fail_fast(mut self, on: bool) -> Self {
        self.fail_fast = on;
        self
    }

    /// Run the paths of each branch on `workers` workers at once. Every worker needs a
    /// database of its own (paths roll their database back, and would undo each other's
    /// writes) and so a server of its own: the runner's client and state manager are
    /// worker 0, and [`worker`](Self::worker) adds the others. The run is refused, with
    /// the reason, when there are fewer workers than asked for or two share a database.
    ///
    /// Each worker runs the main steps on its own database, then the paths of each branch
    /// are dealt round-robin (path `i` on worker `i % workers`); the result lists them in
    /// journey order, as a sequential run does.
    pub fn parallel_paths(mut self, workers: usize) -> Self {
        self.parallel_paths = workers.max(1);
        self
    }

    /// Adds a worker for [`parallel_paths`](Self::parallel_paths): a client of another
    /// server, and the state manager (capture isolation) of that server's own database.
    pub fn worker(mut self, client: Client, state_manager: impl Into<StateHandle<'a>>) -> Self {
        self.workers.push((client, state_manager.into()));
        self
    }

    /// Adds an invariant, checked after every step that passed.
    pub fn invariant(mut self, invariant: Invariant) -> Self {
        self.invariants.push(invariant);
        self
    }

    /// Adds invariants.
    pub fn invariants(mut self, invariants: impl IntoIterator<Item = Invariant>) -> Self {
        self.invariants.extend(invariants);
        self
    }

    /// Whether a failed path's report includes what it changed in the database (the
    /// capture diff; on by default).
    pub fn diffs(mut self, on: bool) -> Self {
        self.diffs = on;
        self
    }

    /// Writes `<journey>.xml` (JUnit) and `<journey>.json` into `dir` after each run
    /// (default: the `VENOMQA_JOURNEY_REPORTS` environment variable, if set).
    pub fn report_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.report_dir = Some(dir.into());
        self
    }

    /// Refuses parallel paths unless `n` workers each have a database and a server of
    /// their own.
    fn check_workers(&self, journey: &str, n: usize) -> Result<(), JourneyError> {
        let refuse = |reason: String| {
            Err(JourneyError::Parallel {
                journey: journey.to_owned(),
                workers: n,
                reason,
            })
        };
        let Some(main) = &self.state else {
            return refuse("the runner has no state manager, and each worker needs a database of its own with capture isolation; give the runner one with .state_manager(..) and each other worker its own with .worker(client, state_manager)".to_owned());
        };
        let have = 1 + self.workers.len();
        if have < n {
            return refuse(format!(
                "every path rolls back the database behind its worker's state manager, and this runner has {have} worker{} ({}{}), so paths running at the same time would see and undo each other's writes; add {} more with .worker(client, state_manager), each with its own server and database, or run paths one at a time (the default)",
                if have == 1 { "" } else { "s" },
                main.label(),
                if have > 1 { " and others" } else { "" },
                n - have
            ));
        }
        let lanes: Vec<(&Client, &StateHandle<'_>)> = std::iter::once((&self.client, main))
            .chain(self.workers.iter().take(n - 1).map(|(c, h)| (c, h)))
            .collect();
        let urls: Vec<Option<crate::SecretUrl>> =
            lanes.iter().map(|(_, h)| h.get_ref().url().ok()).collect();
        for i in 0..n {
            for j in i + 1..n {
                if let (Some(a), Some(b)) = (&urls[i], &urls[j]) {
                    if a == b {
                        return refuse(format!("workers {i} and {j} share the database {a}, so their paths would see and undo each other's writes; give each worker a database of its own"));
                    }
                }
                if lanes[i].0.base_url() == lanes[j].0.base_url() {
                    return refuse(format!(
                        "workers {i} and {j} send to the same server {}, which writes to one database; give each worker a server on its own database",
                        crate::redact_url(lanes[i].0.base_url())
                    ));
                }
            }
        }
        Ok(())
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The state manager, if any.
    pub fn state(&mut self) -> Option<&mut dyn StateManager> {
        self.state.as_mut().map(StateHandle::get)
    }

    /// Runs `journey` and returns what happened; `Err` only when it could not start (an
    /// invalid journey, a state manager without capture, parallel paths on one database,
    /// a failed first checkpoint).
    pub fn run(&mut self, journey: &Journey) -> Result<JourneyResult, JourneyError> {
        journey.validate()?;
        let name = journey.name.as_str();
        let has_branches = journey.items.iter().any(|i| matches!(i, Item::Branch(_)));
        let n = self.parallel_paths;
        if n > 1 {
            self.check_workers(name, n)?;
        }
        match &mut self.state {
            None if has_branches => {
                return Err(JourneyError::NoStateManager {
                    journey: name.to_owned(),
                })
            }
            None => {}
            Some(_) => {
                let handles = std::iter::once(self.state.as_mut().expect("checked"))
                    .chain(self.workers.iter_mut().take(n - 1).map(|(_, h)| h));
                let mut made: Vec<&mut StateHandle<'a>> = Vec::new();
                for handle in handles {
                    if let Err(e) = prepare(handle, name) {
                        for m in made {
                            let _ = m.get().discard(JOURNEY_CHECKPOINT);
                        }
                        return Err(e);
                    }
                    made.push(handle);
                }
            }
        }
        let started = Instant::now();
        let halt = AtomicBool::new(false);
        let settings = Settings {
            invariants: &self.invariants,
            fail_fast: self.fail_fast,
            diffs: self.diffs,
            workers: n,
            halt: &halt,
        };
        let mut lanes: Vec<(&Client, Option<&mut dyn StateManager>)> =
            vec![(&self.client, self.state.as_mut().map(StateHandle::get))];
        for (client, handle) in self.workers.iter_mut().take(n - 1) {
            lanes.push((&*client, Some(handle.get())));
        }
        let outputs: Vec<Lane> = if n == 1 {
            let (client, manager) = lanes.pop().expect("one lane");
            vec![run_lane(settings, 0, client, manager, journey)]
        } else {
            std::thread::scope(|scope| {
                let spawned: Vec<_> = lanes
                    .into_iter()
                    .enumerate()
                    .map(|(w, (client, manager))| {
                        std::thread::Builder::new()
                            .name(format!("venomqa-journey-worker-{w}"))
                            .spawn_scoped(scope, move || {
                                run_lane(settings, w, client, manager, journey)
                            })
                            .expect("spawning a journey worker")
                    })
                    .collect();
                spawned
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        let merged = merge(outputs, n, &self.workers);
        let result = JourneyResult::new(
            name.to_owned(),
            journey.description.clone(),
            merged.items,
            merged.main_diff,
            started.elapsed(),
            merged.rollbacks,
            merged.rollback_time,
            merged.cleanup,
            merged.state_errors,
        )
        .with_workers(n);
        if let Some(dir) = &self.report_dir {
            if let Err(e) = result.write_reports(dir) {
                tracing::warn!(target: "venomqa", error = %e, dir = %dir.display(), "writing the journey reports failed");
            }
        }
        Ok(result)
    }
}

/// What every worker of a run shares.
#[derive(Clone, Copy)]
struct Settings<'r> {
    invariants: &'r [Invariant],
    fail_fast: bool,
    diffs: bool,
    workers: usize,
    /// Set when a worker stops the run (fail_fast, a failed rollback).
    halt: &'r AtomicBool,
}

/// What one worker produced.
struct Lane {
    items: Vec<ItemResult>,
    main_diff: Option<Result<crate::capture::Diff, String>>,
    rollbacks: usize,
    rollback_time: Duration,
    cleanup: Duration,
    state_errors: Vec<String>,
}

/// Checks, and checkpoints, one worker's state manager before the journey.
fn prepare(handle: &mut StateHandle<'_>, journey: &str) -> Result<(), JourneyError> {
    if !handle.get_ref().is_connected() {
        return Err(JourneyError::State {
            journey: journey.to_owned(),
            operation: "checking the state manager".to_owned(),
            source: Box::new(crate::Error::unsupported(
                handle.label(),
                "a journey while disconnected",
                "call connect() first",
            )),
        });
    }
    if !handle.get_ref().captures() {
        return Err(JourneyError::NoCapture {
            journey: journey.to_owned(),
            manager: handle.label().to_owned(),
        });
    }
    handle
        .get()
        .checkpoint(JOURNEY_CHECKPOINT)
        .map_err(|source| JourneyError::State {
            journey: journey.to_owned(),
            operation: format!("checkpoint {JOURNEY_CHECKPOINT:?} before the journey"),
            source: Box::new(source),
        })
}

/// Runs the journey on one worker, then discards its journey checkpoint.
fn run_lane(
    settings: Settings<'_>,
    worker: usize,
    client: &Client,
    manager: Option<&mut dyn StateManager>,
    journey: &Journey,
) -> Lane {
    let mut exec = Exec {
        client,
        manager,
        settings,
        worker,
        rollbacks: 0,
        rollback_time: Duration::ZERO,
        state_errors: Vec::new(),
    };
    let (items, main_diff) = exec.journey(journey);
    let mut cleanup = Duration::ZERO;
    if let Some(m) = exec.manager.as_deref_mut() {
        let t = Instant::now();
        if let Err(e) = m.discard(JOURNEY_CHECKPOINT) {
            exec.state_errors.push(format!(
                "rolling back to {JOURNEY_CHECKPOINT:?} at the end of the journey failed, so the database may keep the journey's writes: {e}"
            ));
        }
        cleanup = t.elapsed();
    }
    Lane {
        items,
        main_diff,
        rollbacks: exec.rollbacks,
        rollback_time: exec.rollback_time,
        cleanup,
        state_errors: exec.state_errors,
    }
}

/// One result from the workers' lanes: the main steps of worker 0, each path from the
/// worker that ran it (path `i` on worker `i % n`), times and errors added up.
fn merge(mut lanes: Vec<Lane>, n: usize, workers: &[(Client, StateHandle<'_>)]) -> Lane {
    let mut first = lanes.remove(0);
    for (k, lane) in lanes.iter_mut().enumerate() {
        let w = k + 1;
        let base = workers.get(k).map_or("", |(c, _)| c.base_url());
        for item in &lane.items {
            if let ItemResult::Step(s) = item {
                if let Some(e) = s.error() {
                    first.state_errors.push(format!(
                        "worker {w} ({base}): main step {:?} failed, so its paths were skipped: {e}",
                        s.name
                    ));
                }
            }
        }
        first.rollbacks += lane.rollbacks;
        first.rollback_time += lane.rollback_time;
        first.cleanup = first.cleanup.max(lane.cleanup);
        first.state_errors.extend(
            lane.state_errors
                .drain(..)
                .map(|e| format!("worker {w} ({base}): {e}")),
        );
    }
    let mut global = 0;
    for (i, item) in first.items.iter_mut().enumerate() {
        let ItemResult::Branch(branch) = item else {
            continue;
        };
        for (j, path) in branch.path_results.iter_mut().enumerate() {
            let owner = global % n;
            global += 1;
            if owner == 0 {
                continue;
            }
            if let Some(ItemResult::Branch(theirs)) = lanes[owner - 1].items.get_mut(i) {
                std::mem::swap(path, &mut theirs.path_results[j]);
                branch.duration = branch.duration.max(theirs.duration);
            }
        }
    }
    first
}

/// One worker's working state.
struct Exec<'r> {
    client: &'r Client,
    manager: Option<&'r mut dyn StateManager>,
    settings: Settings<'r>,
    worker: usize,
    rollbacks: usize,
    rollback_time: Duration,
    state_errors: Vec<String>,
}

/// A checkpoint the journey made: the context then, and whether anything ran since.
struct Saved {
    name: String,
    context: Context,
    dirty: bool,
}

impl Exec<'_> {
    fn journey(
        &mut self,
        journey: &Journey,
    ) -> (
        Vec<ItemResult>,
        Option<Result<crate::capture::Diff, String>>,
    ) {
        let mut ctx = Context::new();
        let mut saved: Vec<Saved> = Vec::new();
        let mut out = Vec::new();
        let mut stop: Option<String> = None;
        let mut main_diff = None;
        let mut next_path = 0;
        for item in &journey.items {
            match item {
                Item::Step(step) => {
                    if let Some(reason) = &stop {
                        out.push(ItemResult::Step(StepResult::skipped(step, reason)));
                        continue;
                    }
                    let place = Place { path: None };
                    let result = self.step(step, &mut ctx, &place);
                    saved.iter_mut().for_each(|s| s.dirty = true);
                    if result.status == Status::Failed {
                        stop = Some(format!("step {:?} failed", step.name));
                        main_diff = self.diff(JOURNEY_CHECKPOINT);
                    }
                    out.push(ItemResult::Step(result));
                }
                Item::Checkpoint(c) => {
                    if stop.is_some() {
                        out.push(ItemResult::Checkpoint {
                            name: c.name.clone(),
                            made: false,
                        });
                        continue;
                    }
                    let made = match self.manager.as_deref_mut() {
                        Some(m) => match m.checkpoint(&c.name) {
                            Ok(()) => true,
                            Err(e) => {
                                self.state_errors
                                    .push(format!("checkpoint {:?} failed: {e}", c.name));
                                stop = Some(format!("checkpoint {:?} failed", c.name));
                                false
                            }
                        },
                        None => true,
                    };
                    if made {
                        saved.push(Saved {
                            name: c.name.clone(),
                            context: ctx.clone(),
                            dirty: false,
                        });
                    }
                    out.push(ItemResult::Checkpoint {
                        name: c.name.clone(),
                        made,
                    });
                }
                Item::Branch(b) => {
                    let started = Instant::now();
                    if let Some(reason) = &stop {
                        out.push(ItemResult::Branch(BranchResult::skipped(b, reason)));
                        continue;
                    }
                    let at = saved
                        .iter()
                        .position(|s| s.name == b.checkpoint)
                        .expect("validated: the checkpoint is active");
                    saved.truncate(at + 1);
                    let mut paths = Vec::new();
                    let mut halt: Option<String> = None;
                    for path in &b.paths {
                        let index = next_path;
                        next_path += 1;
                        if index % self.settings.workers != self.worker {
                            // Another worker runs it; merge() puts its result here.
                            paths.push(PathResult::skipped(
                                path,
                                &b.checkpoint,
                                "run by another worker",
                            ));
                            continue;
                        }
                        if halt.is_none() && self.settings.halt.load(Ordering::Relaxed) {
                            halt = Some("another worker stopped the run".to_owned());
                        }
                        if let Some(reason) = &halt {
                            paths.push(PathResult::skipped(path, &b.checkpoint, reason));
                            continue;
                        }
                        if saved[at].dirty {
                            if let Err(e) = self.rollback(&b.checkpoint) {
                                halt = Some(e);
                                paths.push(PathResult::skipped(
                                    path,
                                    &b.checkpoint,
                                    halt.as_deref().unwrap_or_default(),
                                ));
                                continue;
                            }
                            saved[at].dirty = false;
                        }
                        let path_started = Instant::now();
                        let mut pctx = saved[at].context.clone();
                        let mut steps = Vec::new();
                        let mut failed: Option<String> = None;
                        for step in &path.steps {
                            if let Some(f) = &failed {
                                steps.push(StepResult::skipped(step, f));
                                continue;
                            }
                            let place = Place {
                                path: Some(path.name.clone()),
                            };
                            let r = self.step(step, &mut pctx, &place);
                            saved[at].dirty = true;
                            if r.status == Status::Failed {
                                failed = Some(format!("step {:?} failed", step.name));
                            }
                            steps.push(r);
                        }
                        let diff = if failed.is_some() {
                            self.diff(&b.checkpoint)
                        } else {
                            None
                        };
                        let rolled_back = self.rollback(&b.checkpoint);
                        match &rolled_back {
                            Ok(()) => saved[at].dirty = false,
                            Err(e) => halt = Some(e.clone()),
                        }
                        if failed.is_some() && self.settings.fail_fast && halt.is_none() {
                            halt = Some(format!("fail_fast: path {:?} failed", path.name));
                        }
                        if halt.is_some() {
                            self.settings.halt.store(true, Ordering::Relaxed);
                        }
                        paths.push(PathResult::new(
                            path,
                            &b.checkpoint,
                            steps,
                            path_started.elapsed(),
                            diff,
                        ));
                    }
                    ctx = saved[at].context.clone();
                    if let Some(h) = &halt {
                        if self.settings.fail_fast || !self.state_errors.is_empty() {
                            stop = Some(h.clone());
                        }
                    }
                    out.push(ItemResult::Branch(BranchResult::new(
                        &b.checkpoint,
                        paths,
                        started.elapsed(),
                    )));
                }
            }
        }
        (out, main_diff)
    }

    /// Rolls back to `checkpoint`, timed; an error is recorded and returned as a reason.
    fn rollback(&mut self, checkpoint: &str) -> Result<(), String> {
        let Some(m) = self.manager.as_deref_mut() else {
            return Ok(());
        };
        let t = Instant::now();
        let result = m.rollback(checkpoint);
        self.rollback_time += t.elapsed();
        self.rollbacks += 1;
        result.map_err(|e| {
            let text = format!("rollback to checkpoint {checkpoint:?} failed, so the next paths would not start from it: {e}");
            self.state_errors.push(text.clone());
            text
        })
    }

    fn diff(&mut self, checkpoint: &str) -> Option<Result<crate::capture::Diff, String>> {
        if !self.settings.diffs {
            return None;
        }
        let m = self.manager.as_deref_mut()?;
        Some(m.diff(checkpoint).map_err(|e| e.to_string()))
    }

    fn step(&mut self, step: &Step, ctx: &mut Context, place: &Place) -> StepResult {
        let started = Instant::now();
        let _ = self.client.take_exchanges();
        self.client.set_step_timeout(step.timeout);
        let mut exchanges = Vec::new();
        let mut attempts = 0;
        let mut failure = loop {
            attempts += 1;
            let before = (step.retries > 0).then(|| ctx.clone());
            let outcome = catch_unwind(AssertUnwindSafe(|| (step.action)(self.client, ctx)));
            let mut recorded = self.client.take_exchanges();
            let failure = judge(step, outcome, &recorded);
            exchanges.append(&mut recorded);
            match failure {
                Some(_) if attempts <= step.retries => {
                    if let Some(before) = before {
                        *ctx = before;
                    }
                }
                other => break other,
            }
        };
        self.client.set_step_timeout(None);
        if failure.is_none() {
            failure = self.invariants(step, ctx, place);
            exchanges.append(&mut self.client.take_exchanges());
        }
        StepResult {
            name: step.name.clone(),
            description: step.description.clone(),
            status: if failure.is_some() {
                Status::Failed
            } else {
                Status::Passed
            },
            duration: started.elapsed(),
            attempts,
            exchanges,
            failure,
        }
    }

    fn invariants(&mut self, step: &Step, ctx: &Context, place: &Place) -> Option<StepFailure> {
        for invariant in self.settings.invariants {
            let mut check = Check {
                client: self.client,
                context: ctx,
                manager: self.manager.as_deref_mut(),
                step: &step.name,
                path: place.path.as_deref(),
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| (invariant.check)(&mut check)));
            let problem = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.chain(),
                Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
            };
            return Some(StepFailure::new(
                FailureKind::Invariant,
                format!(
                    "invariant {:?} violated after step {:?}{}: {problem}",
                    invariant.name,
                    step.name,
                    place
                        .path
                        .as_ref()
                        .map(|p| format!(" of path {p:?}"))
                        .unwrap_or_default()
                ),
            ));
        }
        None
    }
}

/// Whether an attempt of `step` failed, and how.
fn judge(
    step: &Step,
    outcome: std::thread::Result<Result<(), StepError>>,
    recorded: &[super::client::Exchange],
) -> Option<StepFailure> {
    let last = recorded.last();
    let last_status = last.and_then(|e| e.response.as_ref().ok().map(|r| r.status));
    match outcome {
        Err(panic) => Some(StepFailure::new(
            FailureKind::Panic,
            format!("the step panicked: {}", panic_message(&*panic)),
        )),
        Ok(Err(_)) if step.expect_failure => None,
        Ok(Err(e)) => {
            let kind = match e.downcast_ref::<HttpError>() {
                Some(HttpError::Unreachable { .. }) => FailureKind::Unreachable,
                Some(HttpError::Timeout { .. }) => FailureKind::Timeout,
                Some(
                    HttpError::Status { .. } | HttpError::Body { .. } | HttpError::Json { .. },
                ) => FailureKind::Expectation,
                _ => FailureKind::Error,
            };
            Some(StepFailure::new(kind, e.chain()))
        }
        Ok(Ok(())) => {
            if let Some(expected) = step.expected_status {
                match (last, last_status) {
                    (Some(_), Some(actual)) if actual == expected => {}
                    (Some(ex), Some(actual)) => {
                        let body = ex
                            .response
                            .as_ref()
                            .map(|r| r.body.clone())
                            .unwrap_or_default();
                        return Some(StepFailure::new(
                            FailureKind::Expectation,
                            format!(
                                "{} {}: expected status {expected}, got {actual}; response body: {}",
                                ex.method,
                                ex.url,
                                if body.is_empty() { "(empty body)".to_owned() } else { super::format::cut(&body, 300) }
                            ),
                        ));
                    }
                    (Some(ex), None) => {
                        return Some(StepFailure::new(
                            FailureKind::Expectation,
                            format!(
                                "{} {}: expected status {expected}, got no response",
                                ex.method, ex.url
                            ),
                        ))
                    }
                    (None, _) => {
                        return Some(StepFailure::new(
                            FailureKind::Expectation,
                            format!("expected status {expected}, but the step sent no request"),
                        ))
                    }
                }
            }
            if step.expect_failure {
                match last_status {
                    Some(s) if s >= 400 => None,
                    _ => Some(StepFailure::new(
                        FailureKind::UnexpectedSuccess,
                        format!(
                            "expected this step to fail, but it succeeded{}",
                            last.map(|e| format!(" ({})", e.summary()))
                                .unwrap_or_default()
                        ),
                    )),
                }
            } else {
                None
            }
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
