//! What a test receives: a leased manager under a root checkpoint, with nested checkpoint
//! blocks and explicit checkpoint / rollback / release.

mod builder;
mod typed;

use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::backend::{Backend, Capture};
use crate::checkpoint::Name;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::registry;
use crate::state::StateManager;
use crate::util::micros;

pub use builder::SessionBuilder;
pub use typed::{HandWritten, SessionLease, SessionManager};

/// The checkpoint every session opens first and discards last. Tests may roll back to
/// it (undoing everything so far) but not release it.
pub const ROOT_CHECKPOINT: &str = "venomqa_root";

/// One test's lease of a backend, under a root checkpoint that is rolled back when the
/// session ends (when the test returns, returns `Err`, or panics).
///
/// `Session` (that is, `Session<dyn StateManager>`) accepts any backend. A session typed
/// by a concrete manager, such as [`SqliteSession`](crate::sqlite::SqliteSession), gives
/// access to that backend's native connection.
///
/// ```
/// use venomqa::sqlite::SqliteSession;
///
/// // In a test, #[venom_test] opens and finishes the session; by hand it looks like this.
/// let mut db = SqliteSession::start("sqlite")?;
/// db.conn().execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)").unwrap();
///
/// // A block: whatever it changes is undone when it ends, even if it panics.
/// db.checkpoint("empty", |db| {
///     db.conn().execute("DELETE FROM t", []).unwrap();
/// })?;
///
/// // Explicit checkpoints, for exploring branch after branch from one state.
/// db.create_checkpoint("branch")?;
/// db.conn().execute("INSERT INTO t VALUES (2)", []).unwrap();
/// db.rollback("branch")?;
/// db.conn().execute("INSERT INTO t VALUES (3)", []).unwrap();
/// db.release("branch")?;
///
/// let sum: i64 = db.conn().query_row("SELECT SUM(v) FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(sum, 4);
/// db.finish()?; // rolls everything back, table included
/// # Ok::<(), venomqa::Error>(())
/// ```
pub struct Session<M: ?Sized + SessionManager = dyn StateManager> {
    lease: M::Lease,
    test: String,
    finished: bool,
    costs: Costs,
    _manager: PhantomData<fn(&mut M)>,
    /// The worker slot of a capture entry with `workers`: released after the lease (the
    /// fields drop in order), so the next test on it finds it rolled back.
    worker: Option<crate::workers::Slot>,
}

/// Where a session's time went, reported in its `session finished` event (target
/// `venomqa::test`), which the cost report reads.
#[derive(Debug, Clone, Copy)]
struct Costs {
    /// When the session began (after the lease).
    began: Instant,
    /// Checkpoints created, the root one included, and the time they took.
    checkpoints: u32,
    checkpoint_time: Duration,
    /// Rollbacks (rollback, discard, the final one included) and the time they took.
    rollbacks: u32,
    rollback_time: Duration,
    /// How the test ended, when `run` knows it.
    outcome: Option<&'static str>,
}

impl Costs {
    fn timed<T>(time: &mut Duration, count: &mut u32, op: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let value = op();
        *time += started.elapsed();
        *count += 1;
        value
    }
}

impl<M: ?Sized + SessionManager> std::fmt::Debug for Session<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("test", &self.test)
            .field("backend", &self.backend_name())
            .field("checkpoints", &self.checkpoints())
            .finish()
    }
}

impl<M: ?Sized + SessionManager> Session<M> {
    /// A builder for a session outside `#[venom_test]`: on a backend, a named entry of
    /// `venomqa.yaml`, a URL.
    ///
    /// ```
    /// use venomqa::sqlite::SqliteSession;
    ///
    /// let mut db = SqliteSession::builder().url("sqlite::memory:").name("by_hand").open()?;
    /// db.conn().execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
    /// assert_eq!(db.test_name(), "by_hand");
    /// db.finish()?; // rolled back, as at the end of a test
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn builder() -> SessionBuilder<M> {
        SessionBuilder::new()
    }

    /// Opens a session on `backend` outside `#[venom_test]`, configured as a test of the
    /// current crate would be (the environment, and the `venomqa.yaml` found from
    /// `CARGO_MANIFEST_DIR` or the current directory upward). Dropping or
    /// [finishing](Self::finish) it rolls back.
    pub fn start(backend: &str) -> Result<Self> {
        Self::builder().backend(backend).open()
    }

    /// Opens a session on `config`'s pool.
    pub(crate) fn lease(config: &crate::BackendConfig, test: &str) -> Result<Self> {
        let (config, worker) = match crate::workers::assign(config)? {
            Some((worker_config, slot)) => (std::borrow::Cow::Owned(worker_config), Some(slot)),
            None => (std::borrow::Cow::Borrowed(config), None),
        };
        let config = config.as_ref();
        let pool = registry::pool(config)?;
        let wrong_type = || Error::SessionType {
            test: test.to_owned(),
            expected: M::type_name().to_owned(),
            backend: config.backend.clone(),
            found: pool.item_type().to_owned(),
        };
        // The first checkpoint is the health check of a pooled connection: one that died
        // while it sat in the pool (a server restart, a KILL) fails it, is dropped, and the
        // test begins again on another, so only a test in flight sees a restart. A restart
        // kills every idle connection at once, so a lost reused connection is retried
        // (at most once per pooled connection); any other failure once.
        let mut attempts = 0;
        let mut lost_reused = 0;
        loop {
            attempts += 1;
            let lease = M::lease_from(&pool).ok_or_else(wrong_type)??;
            let reused = lease.timing().connect.is_none();
            match Self::begin(lease, test) {
                Err(e) => {
                    let lost = reused && e.is_connection_lost();
                    if lost {
                        lost_reused += 1;
                    }
                    let again = (lost && lost_reused <= pool.stats().size + 1) || attempts < 2;
                    if !again {
                        return Err(e);
                    }
                    tracing::debug!(target: "venomqa", error = %e, reused, "could not open the root checkpoint; beginning again on another connection");
                }
                Ok(mut session) => {
                    session.worker = worker;
                    return Ok(session);
                }
            }
        }
    }

    /// Starts a session on a leased manager: opens the root checkpoint.
    #[doc(hidden)]
    pub fn begin(mut lease: M::Lease, test: &str) -> Result<Self> {
        let began = Instant::now();
        if let Err(e) = lease.state().checkpoint(ROOT_CHECKPOINT) {
            lease.mark_broken();
            return Err(e);
        }
        Ok(Session {
            lease,
            test: test.to_owned(),
            finished: false,
            costs: Costs {
                began,
                checkpoints: 1,
                checkpoint_time: began.elapsed(),
                rollbacks: 0,
                rollback_time: Duration::ZERO,
                outcome: None,
            },
            _manager: PhantomData,
            worker: None,
        })
    }

    /// The leased manager, typed: a [`Connected<B>`](crate::Connected) in a
    /// `Session<Manager<B>>`, the manager itself in a hand-written manager's session, a
    /// `dyn StateManager` in a `Session`.
    pub fn manager(&mut self) -> &mut M::Leased {
        self.lease.get()
    }

    /// The leased manager, typed.
    pub fn manager_ref(&self) -> &M::Leased {
        self.lease.get_ref()
    }

    /// The leased manager as a `dyn StateManager`.
    pub fn state_manager(&mut self) -> &mut dyn StateManager {
        self.lease.state()
    }

    /// The backend's registered name.
    pub fn backend_name(&self) -> &str {
        &self.lease.config().backend
    }

    /// The configuration the manager was built from.
    pub fn config(&self) -> &crate::BackendConfig {
        self.lease.config()
    }

    /// The test's full name (`module::path::test_name`).
    pub fn test_name(&self) -> &str {
        &self.test
    }

    /// The active checkpoints, oldest first; the first is [`ROOT_CHECKPOINT`].
    pub fn checkpoints(&self) -> &[Name] {
        self.lease.state_ref().checkpoints()
    }

    /// Runs `block` inside checkpoint `name`, then rolls back to it and releases it, so the
    /// block's changes are undone and the test's earlier changes stay. The rollback
    /// happens even when the block panics; the panic then continues.
    ///
    /// Returns the block's value, or the error of creating or undoing the checkpoint.
    pub fn checkpoint<R>(&mut self, name: &str, block: impl FnOnce(&mut Self) -> R) -> Result<R> {
        self.create_checkpoint(name)?;
        let outcome = catch_unwind(AssertUnwindSafe(|| block(self)));
        if !self.checkpoints().iter().any(|c| c == name) {
            // The block released its checkpoint (keeping its changes) or rolled back past
            // it (undoing them): nothing is left to undo.
            return match outcome {
                Ok(value) => Ok(value),
                Err(panic) => resume_unwind(panic),
            };
        }
        let undone = self.discard(name);
        // A failed discard leaves the connection in an unknown state: the pool must not
        // reuse it.
        if undone.is_err() {
            self.lease.mark_broken();
        }
        match (outcome, undone) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) => Err(e),
            (Err(panic), Ok(())) => resume_unwind(panic),
            (Err(panic), Err(e)) => {
                eprintln!(
                    "venomqa: checkpoint block {name:?} panicked and could not be undone: {e}"
                );
                resume_unwind(panic)
            }
        }
    }

    /// Whether the session's rollbacks also undo what other connections and processes
    /// wrote (capture isolation).
    pub fn captures(&self) -> bool {
        self.lease.state_ref().captures()
    }

    /// Creates checkpoint `name` (explicit form, for exploring branches).
    pub fn create_checkpoint(&mut self, name: &str) -> Result<()> {
        let Costs {
            checkpoint_time,
            checkpoints,
            ..
        } = &mut self.costs;
        let manager = self.lease.state();
        Costs::timed(checkpoint_time, checkpoints, || manager.checkpoint(name))
    }

    /// Restores the state at checkpoint `name`; later checkpoints are discarded. Rolling
    /// back to [`ROOT_CHECKPOINT`] undoes everything the test did so far.
    pub fn rollback(&mut self, name: &str) -> Result<()> {
        let Costs {
            rollback_time,
            rollbacks,
            ..
        } = &mut self.costs;
        let manager = self.lease.state();
        Costs::timed(rollback_time, rollbacks, || manager.rollback(name))
    }

    /// Rolls back to `name` and releases it, timed as a rollback.
    fn discard(&mut self, name: &str) -> Result<()> {
        let Costs {
            rollback_time,
            rollbacks,
            ..
        } = &mut self.costs;
        let manager = self.lease.state();
        Costs::timed(rollback_time, rollbacks, || manager.discard(name))
    }

    /// Forgets checkpoint `name` and the later ones, keeping their changes (until the test
    /// ends). The root checkpoint cannot be released.
    pub fn release(&mut self, name: &str) -> Result<()> {
        if name == ROOT_CHECKPOINT {
            return Err(Error::unsupported(
                self.backend_name(),
                "releasing the root checkpoint",
                "the session rolls it back when the test ends; release your own checkpoints",
            ));
        }
        self.lease.state().release(name)
    }

    /// Rolls the test's changes back and returns the manager to the pool. Dropping the
    /// session does the same, but cannot report an error.
    pub fn finish(mut self) -> Result<()> {
        self.end()
    }

    fn end(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let result = match self.lease.state_ref().checkpoints().first() {
            Some(first) if first == ROOT_CHECKPOINT => self.discard(ROOT_CHECKPOINT),
            _ => Err(Error::state_lost(
                self.backend_name(),
                format!("the root checkpoint {ROOT_CHECKPOINT:?} is gone (released or reset inside the test), so the test's changes were not rolled back; do not release it or reset() inside a test"),
            )),
        };
        if result.is_err() {
            self.lease.mark_broken();
        }
        self.report(result.is_ok());
        result
    }

    /// The event the cost report (and `RUST_LOG=venomqa=debug`) reads: one per session.
    fn report(&self, rolled_back: bool) {
        let costs = &self.costs;
        let lease = self.lease.timing();
        let config = self.lease.config();
        tracing::debug!(
            target: "venomqa::test",
            test = %self.test,
            backend = %config.backend,
            entry = %config.entry,
            isolation = if self.captures() { "capture" } else { "transaction" },
            outcome = costs.outcome.unwrap_or("finished"),
            rolled_back,
            lease_us = micros(lease.total),
            connect_us = lease.connect.map(micros),
            checkpoints = costs.checkpoints,
            checkpoint_us = micros(costs.checkpoint_time),
            rollbacks = costs.rollbacks,
            rollback_us = micros(costs.rollback_time),
            session_us = micros(costs.began.elapsed()),
            "session finished"
        );
    }
}

impl<M: ?Sized + SessionManager> Drop for Session<M> {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            tracing::error!(target: "venomqa", test = %self.test, error = %e, "rollback at the end of the session failed");
        }
    }
}

impl Session<dyn StateManager> {
    /// The URL code under test must connect with (an API server in another process, an
    /// app's own pool) for its writes to be rolled back with this test's checkpoints.
    /// Only capture isolation (`isolation: capture`) hands one out; other isolations
    /// return an error saying why, since the app's writes would not be rolled back. (On a
    /// typed session it exists only for a [`Capture`] backend.)
    pub fn url(&self) -> Result<crate::SecretUrl> {
        self.lease.state_ref().url()
    }

    /// What changed since the test began, row by row, by any connection (capture
    /// isolation).
    pub fn diff(&mut self) -> Result<crate::capture::diff::Diff> {
        self.diff_since(ROOT_CHECKPOINT)
    }

    /// What changed since checkpoint `name`, row by row, by any connection (capture
    /// isolation).
    pub fn diff_since(&mut self, name: &str) -> Result<crate::capture::diff::Diff> {
        self.lease.state().diff(name)
    }
}

impl<B: Capture> Session<Manager<B>> {
    /// The URL code under test must connect with (an API server in another process, an
    /// app's own pool): its writes are rolled back with this test's checkpoints.
    ///
    /// ```
    /// use venomqa::sqlite::SqliteCaptureSession;
    /// # let dir = std::env::temp_dir().join(format!("venomqa-url-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let file = dir.join("app.sqlite");
    /// let config = venomqa::BackendConfig::new("sqlite")
    ///     .with_url(format!("sqlite://{}", file.display()))
    ///     .with_option("isolation", "capture");
    /// let db = SqliteCaptureSession::builder().with_config(config).open()?;
    /// let url = db.url()?; // give it to the app under test
    /// assert!(url.expose().ends_with("app.sqlite"));
    /// # drop(db); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn url(&self) -> Result<crate::SecretUrl> {
        self.lease.state_ref().url()
    }

    /// What changed since the test began, row by row, by any connection.
    pub fn diff(&mut self) -> Result<crate::capture::diff::Diff> {
        self.diff_since(ROOT_CHECKPOINT)
    }

    /// What changed since checkpoint `name`, row by row, by any connection.
    pub fn diff_since(&mut self, name: &str) -> Result<crate::capture::diff::Diff> {
        self.lease.state().diff(name)
    }
}

impl<B: Backend> Session<Manager<B>> {
    /// The test's connection: run the code under test through it.
    pub fn connection(&mut self) -> &mut B::Conn {
        self.lease.get().connection()
    }

    /// The test's connection.
    pub fn connection_ref(&self) -> &B::Conn {
        self.lease.get_ref().connection_ref()
    }

    /// The backend the session runs on.
    pub fn backend(&self) -> &B {
        self.lease.get_ref().backend()
    }
}

/// The return types a test body may have: `()` and `Result<T, E>`.
#[diagnostic::on_unimplemented(
    message = "a #[venom_test] function must return `()` or a `Result`, not `{Self}`",
    label = "this return type",
    note = "return `()`, or `Result<(), E>` with `E: Debug` to fail the test with an error"
)]
pub trait TestOutcome {
    /// How the test body ended, for a message.
    fn describe(&self) -> String;

    /// Whether the body succeeded (`()`, or `Ok`).
    fn is_ok(&self) -> bool;
}

impl TestOutcome for () {
    fn describe(&self) -> String {
        "its body finished without error".to_owned()
    }

    fn is_ok(&self) -> bool {
        true
    }
}

impl<T, E: std::fmt::Debug> TestOutcome for std::result::Result<T, E> {
    fn is_ok(&self) -> bool {
        self.is_ok()
    }

    fn describe(&self) -> String {
        match self {
            Ok(_) => "its body returned Ok".to_owned(),
            Err(e) => format!("its body returned Err({e:?})"),
        }
    }
}
