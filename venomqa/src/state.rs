//! The reference's [`StateManager`] protocol, object safe, and [`Manager`], which
//! implements it once for every typed [`Backend`].

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::backend::Backend;
use crate::capture::diff::Diff;
use crate::checkpoint::{Name, Stack};
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

/// The protocol of the reference document: connect, disconnect, checkpoint, rollback,
/// release, reset and is_connected, plus what the pool needs (a health check, a one-step
/// discard, setup scripts).
///
/// Checkpoints form a stack with database semantics:
///
/// - [`checkpoint`](Self::checkpoint) pushes a new name (duplicates are an error);
/// - [`rollback`](Self::rollback) to `x` restores the state at `x`, keeps `x` and discards
///   every checkpoint made after it;
/// - [`release`](Self::release) of `x` discards `x` and every later checkpoint and keeps
///   the changes. On SQL backends, releasing the outermost checkpoint commits;
/// - [`discard`](Self::discard) of `x` rolls back to `x` and then releases it, leaving
///   the state exactly as it was before `checkpoint(x)`.
///
/// Every typed [`Backend`] gets this through [`Manager`]. You can also implement it by
/// hand, as the reference document does; a [`Stack`] keeps the rules for you (see
/// `examples/filestore_backend.rs`). The trait is object safe: the registry stores
/// `Box<dyn StateManager>`, and [`downcast_mut`](trait.StateManager.html#method.downcast_mut)
/// gets the concrete type back.
pub trait StateManager: Any + Send {
    /// Establishes the connection to the database or service.
    fn connect(&mut self) -> Result<()>;

    /// Closes the connection. Active checkpoints are forgotten.
    fn disconnect(&mut self) -> Result<()>;

    /// Creates a checkpoint named `name` (see [`Name`] for the rule).
    fn checkpoint(&mut self, name: &str) -> Result<()>;

    /// Restores the state saved at checkpoint `name`; keeps `name`, discards later ones.
    fn rollback(&mut self, name: &str) -> Result<()>;

    /// Forgets checkpoint `name` and every later one, keeping the changes made since.
    fn release(&mut self, name: &str) -> Result<()>;

    /// Resets the store to a clean state (for SQL: empties the chosen tables, committed)
    /// and forgets every checkpoint.
    fn reset(&mut self) -> Result<()>;

    /// Whether the manager is connected and usable (no round trip; see
    /// [`health_check`](Self::health_check)).
    fn is_connected(&self) -> bool;

    /// The active checkpoints, oldest first.
    fn checkpoints(&self) -> &[Name];

    /// Checks that the connection really works and clears what a previous user left in
    /// its session. The pool calls this before it hands a manager to a test; a manager
    /// that fails is dropped and replaced. The default asks
    /// [`is_connected`](Self::is_connected).
    fn health_check(&mut self) -> bool {
        self.is_connected()
    }

    /// What the pool runs before it hands a manager to a test: the
    /// [`health_check`](Self::health_check), unless the backend proves the connection at
    /// the session's first checkpoint anyway (see
    /// [`Backend::recycle_on_lease`](crate::Backend::recycle_on_lease)); then only
    /// [`is_connected`](Self::is_connected), no I/O.
    fn lease_check(&mut self) -> bool {
        self.health_check()
    }

    /// Rolls back to `name` and releases it: the state is as it was just before
    /// `checkpoint(name)`. Sessions end every test and every checkpoint block with this.
    /// The default calls [`rollback`](Self::rollback) then [`release`](Self::release).
    fn discard(&mut self, name: &str) -> Result<()> {
        self.rollback(name)?;
        self.release(name)
    }

    /// Runs a setup script (a `setup:` file). The default refuses: register a setup
    /// function with [`register_setup!`](crate::register_setup) instead.
    fn execute_script(&mut self, script: &str) -> Result<()> {
        let _ = script;
        Err(Error::unsupported(
            std::any::type_name::<Self>(),
            "setup scripts",
            "register a setup function with venomqa::register_setup! instead",
        ))
    }

    /// Whether each connection sees its own private data, so the setup step runs on every
    /// new connection instead of once per process. Defaults to `false`.
    fn setup_per_connection(&self) -> bool {
        false
    }

    /// Whether a rollback also undoes what other connections and processes wrote
    /// (capture isolation). Defaults to `false`.
    fn captures(&self) -> bool {
        false
    }

    /// The URL code under test must connect with for its writes to be rolled back
    /// (capture isolation). The default refuses.
    fn url(&self) -> Result<SecretUrl> {
        Err(Error::unsupported(
            std::any::type_name::<Self>(),
            "a URL for other connections",
            "use a backend with `isolation: capture`",
        ))
    }

    /// What changed since checkpoint `name`, row by row (capture isolation). The default
    /// refuses.
    fn diff(&mut self, name: &str) -> Result<Diff> {
        let _ = name;
        Err(Error::unsupported(
            std::any::type_name::<Self>(),
            "diff()",
            "use a backend with `isolation: capture`",
        ))
    }

    /// The backend a session of this type runs on when a test names none (`Some("mysql")`
    /// for [`Manager<MySql>`](crate::Manager)). Defaults to `None`.
    fn registered_name() -> Option<&'static str>
    where
        Self: Sized,
    {
        None
    }
}

impl dyn StateManager {
    /// The concrete manager behind a `dyn StateManager`, if it is an `M`.
    pub fn downcast_mut<M: StateManager>(&mut self) -> Option<&mut M> {
        (self as &mut dyn Any).downcast_mut::<M>()
    }

    /// The concrete manager behind a `dyn StateManager`, if it is an `M`.
    pub fn downcast_ref<M: StateManager>(&self) -> Option<&M> {
        (self as &dyn Any).downcast_ref::<M>()
    }

    /// Whether the manager is an `M`.
    pub fn is<M: StateManager>(&self) -> bool {
        (self as &dyn Any).is::<M>()
    }
}

/// A typed [`Backend`]'s [`StateManager`]: one connection and its checkpoint stack.
///
/// The pool builds these for you. By hand, it is the reference document's standalone use:
///
/// ```
/// use venomqa::sqlite::{Sqlite, SqliteStateManager};
/// use venomqa::StateManager;
///
/// let mut db = SqliteStateManager::from_url("sqlite::memory:")?; // Manager<Sqlite>
/// db.connect()?;
/// db.connection()?.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)").unwrap();
/// db.checkpoint("start")?;
/// db.connection()?.execute("DELETE FROM t", []).unwrap();
/// db.rollback("start")?;
/// let n: i64 = db.connection()?.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(n, 1);
/// # Ok::<(), venomqa::Error>(())
/// ```
pub struct Manager<B: Backend> {
    pub(crate) backend: Arc<B>,
    pub(crate) conn: Option<B::Conn>,
    pub(crate) stack: Stack<B::Mark>,
    broken: bool,
}

impl<B: Backend> fmt::Debug for Manager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("backend", &B::NAME)
            .field("connected", &self.is_connected())
            .field("checkpoints", &self.stack.names())
            .finish()
    }
}

impl<B: Backend> Manager<B> {
    /// A manager of `backend`, not connected yet (call [`connect`](StateManager::connect)).
    pub fn new(backend: B) -> Self {
        Self::shared(Arc::new(backend))
    }

    /// A manager of a backend shared with other managers (as a pool's are).
    pub fn shared(backend: Arc<B>) -> Self {
        Manager {
            backend,
            conn: None,
            stack: Stack::new(B::NAME),
            broken: false,
        }
    }

    /// A manager of `backend`, connected.
    pub fn open(backend: B) -> Result<Self> {
        let mut manager = Self::new(backend);
        manager.connect()?;
        Ok(manager)
    }

    /// A manager for `url` with the backend's default options, not connected yet.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_config(&BackendConfig::new(B::NAME).with_url(url))
    }

    /// A manager built from a resolved configuration entry (its URL and options), not
    /// connected yet.
    pub fn from_config(config: &BackendConfig) -> Result<Self> {
        Ok(Self::new(build::<B>(config)?))
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The connection, or [`Error::NotConnected`].
    pub fn connection(&mut self) -> Result<&mut B::Conn> {
        self.conn.as_mut().ok_or_else(not_connected::<B>)
    }

    /// The connection, or [`Error::NotConnected`].
    pub fn connection_ref(&self) -> Result<&B::Conn> {
        self.conn.as_ref().ok_or_else(not_connected::<B>)
    }

    /// Runs a backend-specific operation on the connection, with the checkpoint stack to
    /// look at. An error that means the connection is lost makes the pool replace it.
    #[cfg_attr(not(any(feature = "mysql", feature = "mongodb")), allow(dead_code))]
    pub(crate) fn with<T>(
        &mut self,
        op: impl FnOnce(&B, &mut B::Conn, &Stack<B::Mark>) -> Result<T>,
    ) -> Result<T> {
        let conn = self.conn.as_mut().ok_or_else(not_connected::<B>)?;
        let result = op(&self.backend, conn, &self.stack);
        self.note(result)
    }

    fn note<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.is_connection_lost() {
                self.broken = true;
            }
        }
        result
    }

    /// Gives the marks a rollback or release dropped back to the backend.
    fn forget(&mut self, marks: Vec<B::Mark>) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        for mark in marks {
            if let Err(e) = self.backend.forget(conn, mark) {
                tracing::warn!(target: "venomqa", backend = B::NAME, error = %e, "freeing a dropped checkpoint failed");
            }
        }
    }

    /// Runs a stack operation whose hook needs the backend and the connection, then frees
    /// the marks it dropped.
    fn stack_op(
        &mut self,
        op: impl FnOnce(&B, &mut B::Conn, &mut Stack<B::Mark>) -> Result<Vec<B::Mark>>,
    ) -> Result<()> {
        let conn = self.conn.as_mut().ok_or_else(not_connected::<B>)?;
        let result = op(&self.backend, conn, &mut self.stack);
        let dropped = self.note(result)?;
        self.forget(dropped);
        Ok(())
    }
}

/// The error of an operation on a standalone manager that is not connected.
fn not_connected<B: Backend>() -> Error {
    Error::NotConnected {
        backend: B::NAME.to_owned(),
    }
}

/// The backend `B` of a configuration entry, its options read from the entry.
pub(crate) fn build<B: Backend>(config: &BackendConfig) -> Result<B> {
    let options = config.options::<B::Options>()?;
    B::new(config, options)
}

impl<B: Backend> StateManager for Manager<B> {
    /// Opens the connection; a manager already connected and not broken keeps its own.
    fn connect(&mut self) -> Result<()> {
        if self.conn.is_some() && !self.broken {
            return Ok(());
        }
        self.drop_connection();
        self.conn = Some(self.backend.connect()?);
        self.broken = false;
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        let marks = self.stack.clear();
        if !self.broken {
            self.forget(marks);
        }
        match self.conn.take() {
            Some(conn) => self.backend.close(conn),
            None => Ok(()),
        }
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let conn = self.conn.as_mut().ok_or_else(not_connected::<B>)?;
        let backend = &self.backend;
        let result = self.stack.push(name, |at| backend.checkpoint(conn, at));
        self.note(result)
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        self.stack_op(|backend, conn, stack| {
            stack.rollback(name, |at, mark| backend.rollback(conn, at, mark))
        })
    }

    fn release(&mut self, name: &str) -> Result<()> {
        self.stack_op(|backend, conn, stack| {
            stack.release(name, |at, mark| backend.release(conn, at, mark))
        })
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        self.stack_op(|backend, conn, stack| {
            stack.discard(name, |at, mark| backend.discard(conn, at, mark))
        })
    }

    /// Lets the backend refuse first (changing nothing), then undoes and forgets every
    /// checkpoint and lets the backend empty the store.
    fn reset(&mut self) -> Result<()> {
        let conn = self.conn.as_mut().ok_or_else(not_connected::<B>)?;
        let checked = self.backend.check_reset(conn);
        self.note(checked)?;
        if let Some(outermost) = self.stack.names().first().cloned() {
            if let Err(e) = self.discard(&outermost) {
                tracing::warn!(target: "venomqa", backend = B::NAME, error = %e, "undoing the checkpoints before reset failed");
                let marks = self.stack.clear();
                self.forget(marks);
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(not_connected::<B>());
        };
        let result = self.backend.reset(conn);
        self.note(result)
    }

    fn is_connected(&self) -> bool {
        match &self.conn {
            Some(conn) => !self.broken && !self.backend.is_broken(conn),
            None => false,
        }
    }

    fn checkpoints(&self) -> &[Name] {
        self.stack.names()
    }

    /// [`Backend::recycle`] on a connection with no checkpoint active.
    fn health_check(&mut self) -> bool {
        if !self.stack.is_empty() || !self.is_connected() {
            return false;
        }
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        match self.backend.recycle(conn) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(target: "venomqa", backend = B::NAME, error = %e, "health check failed");
                self.broken = true;
                false
            }
        }
    }

    fn lease_check(&mut self) -> bool {
        if self.backend.recycle_on_lease() {
            self.health_check()
        } else {
            self.stack.is_empty() && self.is_connected()
        }
    }

    fn execute_script(&mut self, script: &str) -> Result<()> {
        let conn = self.conn.as_mut().ok_or_else(not_connected::<B>)?;
        let result = self.backend.execute_script(conn, script);
        self.note(result)
    }

    fn setup_per_connection(&self) -> bool {
        self.backend.setup_per_connection()
    }

    fn captures(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|conn| self.backend.captures(conn))
    }

    fn url(&self) -> Result<SecretUrl> {
        self.backend.url(self.connection_ref()?)
    }

    fn diff(&mut self, name: &str) -> Result<Diff> {
        let conn = self.conn.as_mut().ok_or_else(not_connected::<B>)?;
        let (at, mark) = self.stack.get(name)?;
        let result = self.backend.diff(conn, at, mark);
        self.note(result)
    }

    fn registered_name() -> Option<&'static str> {
        Some(B::NAME)
    }
}

impl<B: Backend> Manager<B> {
    /// Drops a connection that is broken (or about to be replaced) without I/O on it.
    fn drop_connection(&mut self) {
        self.stack.clear();
        self.conn = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Point;

    /// A counter whose reset is refused while it is negative.
    struct Picky;

    impl Backend for Picky {
        const NAME: &'static str = "picky";
        type Options = std::collections::BTreeMap<String, String>;
        type Conn = i64;
        type Mark = i64;

        fn new(_: &BackendConfig, _: Self::Options) -> Result<Self> {
            Ok(Picky)
        }
        fn connect(&self) -> Result<i64> {
            Ok(0)
        }
        fn checkpoint(&self, value: &mut i64, _: Point<'_>) -> Result<i64> {
            Ok(*value)
        }
        fn rollback(&self, value: &mut i64, _: Point<'_>, saved: &i64) -> Result<()> {
            *value = *saved;
            Ok(())
        }
        fn release(&self, _: &mut i64, _: Point<'_>, _: &i64) -> Result<()> {
            Ok(())
        }
        fn check_reset(&self, value: &mut i64) -> Result<()> {
            if *value < 0 {
                return Err(Error::unsupported("picky", "reset()", "not now"));
            }
            Ok(())
        }
        fn reset(&self, value: &mut i64) -> Result<()> {
            *value = 100;
            Ok(())
        }
    }

    #[test]
    fn a_refused_reset_changes_nothing() {
        let mut m = Manager::open(Picky).unwrap();
        m.checkpoint("a").unwrap();
        *m.connection().unwrap() = -1;
        assert!(m.reset().is_err());
        assert_eq!(m.checkpoints(), ["a"], "the checkpoints are still active");
        assert_eq!(*m.connection().unwrap(), -1, "the data is untouched");
        *m.connection().unwrap() = 5;
        m.reset().unwrap();
        assert!(m.checkpoints().is_empty());
        assert_eq!(*m.connection().unwrap(), 100);
    }
}
