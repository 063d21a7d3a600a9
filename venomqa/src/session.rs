//! What a test receives: a leased manager under a root checkpoint, with nested checkpoint
//! blocks and explicit checkpoint / rollback / release.

use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::config::{Config, Selection};
use crate::error::{Error, Result};
use crate::registry::{self, Lease};
use crate::state::StateManager;

/// The checkpoint every session opens first and discards last. Tests may roll back to
/// it (undoing everything so far) but not release it.
pub const ROOT_CHECKPOINT: &str = "venomqa_root";

/// The manager types a [`Session`] can be typed by: `dyn StateManager` (any backend) or a
/// concrete manager such as [`SqliteStateManager`](crate::sqlite::SqliteStateManager).
///
/// Implemented for you; you never implement it.
pub trait SessionManager: 'static {
    /// `m` as `Self`, if it is one.
    #[doc(hidden)]
    fn cast(m: &mut dyn StateManager) -> Option<&mut Self>;
    /// `m` as `Self`, if it is one.
    #[doc(hidden)]
    fn cast_ref(m: &dyn StateManager) -> Option<&Self>;
    /// The type's name, for messages.
    #[doc(hidden)]
    fn type_name() -> &'static str;
}

impl SessionManager for dyn StateManager {
    fn cast(m: &mut dyn StateManager) -> Option<&mut Self> {
        Some(m)
    }
    fn cast_ref(m: &dyn StateManager) -> Option<&Self> {
        Some(m)
    }
    fn type_name() -> &'static str {
        "venomqa::Session"
    }
}

impl<M: StateManager> SessionManager for M {
    fn cast(m: &mut dyn StateManager) -> Option<&mut Self> {
        m.downcast_mut::<M>()
    }
    fn cast_ref(m: &dyn StateManager) -> Option<&Self> {
        m.downcast_ref::<M>()
    }
    fn type_name() -> &'static str {
        std::any::type_name::<M>()
    }
}

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
    lease: Lease,
    test: String,
    finished: bool,
    _manager: PhantomData<fn(&mut M)>,
}

impl<M: ?Sized + SessionManager> std::fmt::Debug for Session<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("test", &self.test)
            .field("backend", &self.backend())
            .field("checkpoints", &self.checkpoints())
            .finish()
    }
}

impl<M: ?Sized + SessionManager> Session<M> {
    /// Opens a session outside `#[venom_test]`: resolves `selection` against the
    /// configuration found from `dir` upward (and the environment), leases a manager from
    /// the shared pool and opens the root checkpoint. Dropping the session rolls back.
    pub fn open(dir: &Path, selection: Selection<'_>, test: &str) -> Result<Self> {
        let config = Config::discover_cached(dir)?.resolve(selection)?;
        let pool = registry::pool(&config)?;
        // A pooled connection can die between a health check and its first statement (a
        // server restart); one retry on a fresh lease makes that invisible to the test.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::begin(pool.lease()?, test) {
                Err(e) if attempts < 2 && !matches!(e, Error::SessionType { .. }) => {
                    tracing::warn!(target: "venomqa", error = %e, "could not open the root checkpoint; retrying on another connection");
                }
                other => return other,
            }
        }
    }

    /// Opens a session on `backend` outside `#[venom_test]`, configured from the
    /// environment and the `venomqa.yaml` found from `CARGO_MANIFEST_DIR` (or the current
    /// directory) upward. Dropping or [finishing](Self::finish) it rolls back.
    pub fn start(backend: &str) -> Result<Self> {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let selection = Selection {
            backend: Some(backend),
            ..Selection::default()
        };
        Self::open(&dir, selection, backend)
    }

    /// Starts a session on a leased manager: checks its type and opens the root checkpoint.
    pub fn begin(mut lease: Lease, test: &str) -> Result<Self> {
        if M::cast(lease.manager()).is_none() {
            return Err(Error::SessionType {
                test: test.to_owned(),
                expected: M::type_name().to_owned(),
                backend: lease.config().backend.clone(),
            });
        }
        if let Err(e) = lease.manager().checkpoint(ROOT_CHECKPOINT) {
            lease.mark_broken();
            return Err(e);
        }
        Ok(Session {
            lease,
            test: test.to_owned(),
            finished: false,
            _manager: PhantomData,
        })
    }

    /// The leased manager, typed.
    pub fn manager(&mut self) -> &mut M {
        M::cast(self.lease.manager()).expect("type checked when the session began")
    }

    /// The leased manager, typed.
    pub fn manager_ref(&self) -> &M {
        M::cast_ref(self.lease.manager_ref()).expect("type checked when the session began")
    }

    /// The leased manager as a `dyn StateManager`.
    pub fn state_manager(&mut self) -> &mut dyn StateManager {
        self.lease.manager()
    }

    /// The backend's registered name.
    pub fn backend(&self) -> &str {
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
    pub fn checkpoints(&self) -> &[String] {
        self.lease.manager_ref().checkpoints()
    }

    /// Runs `block` inside checkpoint `name`, then rolls back to it and releases it, so the
    /// block's changes are undone and the test's earlier changes stay. The rollback
    /// happens even when the block panics; the panic then continues.
    ///
    /// Returns the block's value, or the error of creating or undoing the checkpoint.
    pub fn checkpoint<R>(&mut self, name: &str, block: impl FnOnce(&mut Self) -> R) -> Result<R> {
        self.lease.manager().checkpoint(name)?;
        let outcome = catch_unwind(AssertUnwindSafe(|| block(self)));
        let undone = self.lease.manager().discard(name);
        // If the block released its own checkpoint (or rolled back past it), the discard
        // fails with UnknownCheckpoint and the manager is fine; any other failure leaves
        // the connection in an unknown state, so the pool must not reuse it.
        if undone.is_err() && self.checkpoints().iter().any(|c| c == name) {
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

    /// Creates checkpoint `name` (explicit form, for exploring branches).
    pub fn create_checkpoint(&mut self, name: &str) -> Result<()> {
        self.lease.manager().checkpoint(name)
    }

    /// Restores the state at checkpoint `name`; later checkpoints are discarded. Rolling
    /// back to [`ROOT_CHECKPOINT`] undoes everything the test did so far.
    pub fn rollback(&mut self, name: &str) -> Result<()> {
        self.lease.manager().rollback(name)
    }

    /// Forgets checkpoint `name` and the later ones, keeping their changes (until the test
    /// ends). The root checkpoint cannot be released.
    pub fn release(&mut self, name: &str) -> Result<()> {
        if name == ROOT_CHECKPOINT {
            return Err(Error::unsupported(
                self.backend(),
                "releasing the root checkpoint",
                "the session owns it and rolls it back when the test ends; release your own checkpoints",
            ));
        }
        self.lease.manager().release(name)
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
        let result = match self.lease.manager_ref().checkpoints().first() {
            Some(first) if first == ROOT_CHECKPOINT => self.lease.manager().discard(ROOT_CHECKPOINT),
            _ => Err(Error::StateLost {
                backend: self.backend().to_owned(),
                message: format!(
                    "the root checkpoint {ROOT_CHECKPOINT:?} is gone (released or reset inside the test), so the \
                     test's changes were not rolled back; do not call release() on it or reset() inside a test"
                ),
            }),
        };
        if result.is_err() {
            self.lease.mark_broken();
        }
        result
    }
}

impl<M: ?Sized + SessionManager> Drop for Session<M> {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            tracing::error!(target: "venomqa", test = %self.test, error = %e, "rollback at the end of the session failed");
        }
    }
}
