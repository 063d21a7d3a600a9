//! The typed backend contract: a backend supplies hooks over its own connection type,
//! and the framework keeps the checkpoint stack, the pool and the sessions.
//!
//! This is the shape of r2d2's `ManageConnection` and deadpool's `Manager`: the backend is
//! a value built once per configuration, connections are values it creates, and a
//! connection is never "not connected". A [`Manager<B>`](crate::Manager) puts one
//! connection and its [`Stack`](crate::checkpoint::Stack) together and implements the
//! reference's [`StateManager`](crate::StateManager) protocol for every backend.

use serde::de::DeserializeOwned;

use crate::capture::diff::Diff;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

/// A database or store that venomqa can checkpoint and roll back.
///
/// Implement the hooks; the framework validates names, refuses duplicates and unknown
/// names, applies the stack rules (a rollback keeps its target and drops later
/// checkpoints, a release drops its target and everything after it), leaves the stack
/// unchanged when a hook fails, and traces every change.
///
/// ```
/// use std::collections::BTreeMap;
/// use venomqa::checkpoint::Point;
/// use venomqa::{Backend, BackendConfig, Manager, Result, StateManager};
///
/// /// A counter whose value is checkpointed: the mark is the saved value.
/// struct Counter;
///
/// impl Backend for Counter {
///     const NAME: &'static str = "counter";
///     type Options = BTreeMap<String, String>;
///     type Conn = i64;
///     type Mark = i64;
///
///     fn new(_: &BackendConfig, _: Self::Options) -> Result<Self> { Ok(Counter) }
///     fn connect(&self) -> Result<i64> { Ok(0) }
///     fn checkpoint(&self, value: &mut i64, _: Point<'_>) -> Result<i64> { Ok(*value) }
///     fn rollback(&self, value: &mut i64, _: Point<'_>, saved: &i64) -> Result<()> {
///         *value = *saved;
///         Ok(())
///     }
///     fn release(&self, _: &mut i64, _: Point<'_>, _: &i64) -> Result<()> { Ok(()) }
/// }
///
/// let mut m = Manager::open(Counter)?;
/// m.checkpoint("start")?;
/// *m.connection()? = 42;
/// m.rollback("start")?;
/// assert_eq!(*m.connection()?, 0);
/// # Ok::<(), venomqa::Error>(())
/// ```
pub trait Backend: Send + Sync + Sized + 'static {
    /// The name it registers under and that messages use (`"mysql"`).
    const NAME: &'static str;

    /// Its settings in `venomqa.yaml`: the keys of its entry other than the common ones
    /// (`backend`, `url`, `pool_size`, `connect_timeout_ms`, `lease_timeout_ms`, `setup`).
    /// Derive `Deserialize` with `#[serde(deny_unknown_fields, default)]`, so a misspelt key
    /// is an error naming it.
    type Options: DeserializeOwned + Default + Send + Sync + 'static;

    /// One connection: what a test's session hands out (through
    /// [`Session::connection`](crate::Session::connection)).
    type Conn: Send + 'static;

    /// What [`checkpoint`](Self::checkpoint) returns and the other hooks get back: a
    /// savepoint's existence, a snapshot, a position in an undo log.
    type Mark: Send + 'static;

    /// Builds the backend from its configuration: parse the URL, check the options. No I/O.
    fn new(config: &BackendConfig, options: Self::Options) -> Result<Self>;

    /// Opens a connection (and whatever it needs to be isolated: a leased database, a
    /// fresh schema).
    fn connect(&self) -> Result<Self::Conn>;

    /// How long the pool keeps trying to connect when [`connect`](Self::connect) fails with
    /// a [transient](Self::is_transient) error (a server restarting). `None` (the default)
    /// uses the entry's `connect_timeout_ms`, else 10 s.
    fn connect_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether a failed [`connect`](Self::connect) may succeed if tried again soon: the
    /// server refused or reset the connection, or said it is starting up or shutting down.
    /// The pool then retries, with a short backoff, until the connect timeout. The default
    /// is [`Error::is_transient`] (the operating system's error kinds in the source
    /// chain); override it to add the driver's own codes.
    fn is_transient(&self, error: &Error) -> bool {
        error.is_transient()
    }

    /// Called before the pool hands a connection to a test: prove it works and clear what
    /// the previous test left in its session. An error drops the connection and the pool
    /// opens another. The default does nothing.
    fn recycle(&self, conn: &mut Self::Conn) -> Result<()> {
        let _ = conn;
        Ok(())
    }

    /// Whether the pool runs [`recycle`](Self::recycle) before every lease (the default).
    /// Return `false` when the first checkpoint of a session proves the connection works
    /// anyway (a SQL `BEGIN`) and nothing needs clearing: a connection that died while it
    /// sat in the pool then fails that first checkpoint, and the session begins again on
    /// another connection, so the lease costs no round trip.
    fn recycle_on_lease(&self) -> bool {
        true
    }

    /// Whether the connection is known to be unusable, without I/O (r2d2's `has_broken`).
    fn is_broken(&self, conn: &Self::Conn) -> bool {
        let _ = conn;
        false
    }

    /// Creates checkpoint `at` and returns its mark. At depth 0 nothing is active yet
    /// (SQL backends begin their transaction there).
    fn checkpoint(&self, conn: &mut Self::Conn, at: Point<'_>) -> Result<Self::Mark>;

    /// Restores the state at `at`. The framework then drops the later checkpoints (and
    /// [`forget`](Self::forget)s their marks); `at` stays active.
    fn rollback(&self, conn: &mut Self::Conn, at: Point<'_>, mark: &Self::Mark) -> Result<()>;

    /// Forgets `at` and the later checkpoints, keeping the changes. At depth 0 it ends
    /// the test's isolation for good (SQL backends commit there).
    fn release(&self, conn: &mut Self::Conn, at: Point<'_>, mark: &Self::Mark) -> Result<()>;

    /// Rolls back to `at` and releases it: the state is as it was just before
    /// `checkpoint(at)`. Sessions end every test and every checkpoint block with this;
    /// override it when both fit in one round trip. The default is
    /// [`rollback`](Self::rollback) then [`release`](Self::release).
    fn discard(&self, conn: &mut Self::Conn, at: Point<'_>, mark: &Self::Mark) -> Result<()> {
        self.rollback(conn, at, mark)?;
        self.release(conn, at, mark)
    }

    /// Frees what a dropped mark holds on the server (a snapshot database, a copy). Called
    /// for every checkpoint a rollback, release or discard dropped; errors are logged. The
    /// default drops the mark.
    fn forget(&self, conn: &mut Self::Conn, mark: Self::Mark) -> Result<()> {
        let _ = (conn, mark);
        Ok(())
    }

    /// Checks, before anything changes, that [`reset`](Self::reset) may run: called
    /// first by [`StateManager::reset`](crate::StateManager::reset), while the test's
    /// checkpoints are still active, so a refusal leaves them and their data as they were.
    /// The default accepts.
    fn check_reset(&self, conn: &mut Self::Conn) -> Result<()> {
        let _ = conn;
        Ok(())
    }

    /// Empties the store for real (committed), as the reference's `reset()` does. Called
    /// with no checkpoint active, after [`check_reset`](Self::check_reset); the connection
    /// may still be inside a transaction the code under test opened. The default refuses.
    fn reset(&self, conn: &mut Self::Conn) -> Result<()> {
        let _ = conn;
        Err(Error::unsupported(
            Self::NAME,
            "reset()",
            "roll back to a checkpoint instead",
        ))
    }

    /// Runs a setup script (a `setup:` file of the entry). The default refuses: register a
    /// setup function with [`register_setup!`](crate::register_setup) instead.
    fn execute_script(&self, conn: &mut Self::Conn, script: &str) -> Result<()> {
        let _ = (conn, script);
        Err(Error::unsupported(
            Self::NAME,
            "setup scripts",
            "register a setup function with venomqa::register_setup! instead",
        ))
    }

    /// Whether each connection sees its own private data (an in-memory database, a leased
    /// database), so the setup step runs on every new connection instead of once per
    /// process. Defaults to `false`.
    fn setup_per_connection(&self) -> bool {
        false
    }

    /// How many connections a pool holds when the configuration sets no `pool_size`.
    /// Defaults to 1: tests that share one store must take turns.
    fn pool_size(&self) -> usize {
        1
    }

    /// Whether a rollback also undoes what other connections and processes wrote (capture
    /// isolation), so code under test may use connections of its own. Defaults to `false`:
    /// only the test's own connection is rolled back.
    fn captures(&self, conn: &Self::Conn) -> bool {
        let _ = conn;
        false
    }

    /// The URL code under test must connect with for its writes to be rolled back with
    /// this connection's checkpoints (capture isolation). The default refuses.
    fn url(&self, conn: &Self::Conn) -> Result<SecretUrl> {
        let _ = conn;
        Err(Error::unsupported(
            Self::NAME,
            "a URL for other connections",
            "the test's changes live in its own connection, which other connections do not see; use `isolation: capture`",
        ))
    }

    /// What changed since checkpoint `at`, row by row (capture isolation). The default
    /// refuses.
    fn diff(&self, conn: &mut Self::Conn, at: Point<'_>, mark: &Self::Mark) -> Result<Diff> {
        let _ = (conn, at, mark);
        Err(Error::unsupported(
            Self::NAME,
            "diff()",
            "only capture isolation keeps a record of changes; use `isolation: capture`",
        ))
    }

    /// Closes a connection for good (the reference's `disconnect()`). The default drops it.
    fn close(&self, conn: Self::Conn) -> Result<()> {
        drop(conn);
        Ok(())
    }
}

/// A backend whose rollbacks also undo what other connections and processes wrote
/// (capture isolation): [`MySqlCapture`](crate::mysql::MySqlCapture) and its siblings.
/// Sessions of a capture backend, and only they, have
/// [`url`](crate::Session::url) (for the code under test) and
/// [`diff`](crate::Session::diff): on a transaction backend's session they are a compile
/// error, since the app's writes would not be rolled back.
///
/// `isolation: capture` in `venomqa.yaml` picks the capture backend of the entry's
/// `backend:` (a MySQL entry with it is a `MySqlCapture`).
pub trait Capture: Backend {
    /// Whether the entry asks for this backend rather than its transaction backend of the
    /// same name (`isolation: capture`).
    fn wanted(config: &BackendConfig) -> Result<bool>;
}
