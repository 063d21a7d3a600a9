//! [`JourneyRunner`]: runs a [`Journey`] against an API, rolling the database back to the
//! checkpoint before each path of a branch, checking invariants after each step.

mod error;
mod exec;
mod invariant;
mod lanes;
mod paths;
mod state;
mod step;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::state::StateManager;

use super::call::now;
use super::client::Client;
use super::report::{append_step_summary, JourneyResult};
use super::{Item, Journey};
use exec::Settings;
use lanes::{merge, prepare, run_lane, Lane};

pub use error::JourneyError;
#[cfg(feature = "explore")]
pub(crate) use invariant::CheckFn;
pub use invariant::{Check, Invariant};
pub use state::StateHandle;
#[cfg(any(test, feature = "explore"))]
pub(crate) use step::panic_message;

/// The checkpoint the runner makes before a journey and discards after it, so a journey
/// leaves the database as it found it. Inside a session it nests under the session's root.
pub const JOURNEY_CHECKPOINT: &str = "venomqa_journey";

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
/// use venomqa::sqlite::SqliteCaptureSession;
///
/// # fn journey() -> Journey { Journey::new("x") }
/// # fn start_server(url: &str) -> String { url.to_owned() }
/// #[venomqa::venom_test(config = "shop")] // an entry with `isolation: capture`
/// fn checkout(db: &mut SqliteCaptureSession) {
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
    /// a failed first checkpoint, async steps: those need
    /// [`run_async`](Self::run_async)). Parallel paths run on threads of their own.
    pub fn run(&mut self, journey: &Journey) -> Result<JourneyResult, JourneyError> {
        let step = journey.first_async_step();
        let what = step
            .map(|s| format!("the async step {:?}", s.name))
            .or_else(|| {
                self.invariants
                    .iter()
                    .find(|i| i.is_async())
                    .map(|i| format!("the async invariant {:?}", i.name()))
            });
        if let Some(what) = what {
            return Err(JourneyError::Async {
                journey: journey.name.clone(),
                what,
            });
        }
        now(self.drive(journey, true))
    }

    /// Runs `journey` on the current task, `.await`ing its async steps and invariants
    /// (blocking ones run in place), and returns what happened, as [`run`](Self::run)
    /// does (feature `journey-async`). Parallel paths run concurrently on this task. On a
    /// multi-threaded runtime, checkpoints and rollbacks hand the thread's other tasks to
    /// another worker while they block (`block_in_place`), so an app served on the
    /// runtime keeps serving.
    ///
    /// The future is not `Send` (async closures cannot promise it): await it in the test
    /// (`#[tokio::test]`, an async `#[venom_test]`), don't spawn it.
    #[cfg(feature = "journey-async")]
    pub async fn run_async(&mut self, journey: &Journey) -> Result<JourneyResult, JourneyError> {
        self.drive(journey, false).await
    }

    /// The run: on threads when `threads` (parallel paths), else concurrently on the task.
    async fn drive(
        &mut self,
        journey: &Journey,
        threads: bool,
    ) -> Result<JourneyResult, JourneyError> {
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
        let outputs: Vec<Lane> =
            if n == 1 {
                let (client, manager) = lanes.pop().expect("one lane");
                vec![run_lane(settings, 0, client, manager, journey).await]
            } else if threads || cfg!(not(feature = "journey-async")) {
                std::thread::scope(|scope| {
                    let spawned: Vec<_> = lanes
                        .into_iter()
                        .enumerate()
                        .map(|(w, (client, manager))| {
                            std::thread::Builder::new()
                                .name(format!("venomqa-journey-worker-{w}"))
                                .spawn_scoped(scope, move || {
                                    now(run_lane(settings, w, client, manager, journey))
                                })
                                .expect("spawning a journey worker")
                        })
                        .collect();
                    spawned
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect()
                })
            } else {
                #[cfg(feature = "journey-async")]
                {
                    futures_util::future::join_all(lanes.into_iter().enumerate().map(
                        |(w, (client, manager))| run_lane(settings, w, client, manager, journey),
                    ))
                    .await
                }
                #[cfg(not(feature = "journey-async"))]
                unreachable!("without journey-async, parallel paths run on threads")
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
        append_step_summary(|| result.to_markdown());
        Ok(result)
    }
}
