//! [`Manager`]: a typed [`Backend`]'s [`StateManager`] for standalone use, the reference
//! document's manager, which may be not connected yet; and the typed accessors of any
//! `dyn StateManager` ([`connected`](trait.StateManager.html#method.connected),
//! [`connection`](trait.StateManager.html#method.connection)).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use crate::backend::Backend;
use crate::capture::diff::Diff;
use crate::checkpoint::Name;
use crate::config::BackendConfig;
use crate::connected::{not_connected, Connected};
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::state::{MakePool, Open, StateManager};

impl dyn StateManager {
    /// The open connection of a typed backend `B`'s manager: a pooled
    /// [`Connected<B>`](crate::Connected), or what a connected standalone [`Manager<B>`]
    /// holds. A manager of another backend is an [`Error::Unsupported`]; a standalone one
    /// not connected, [`Error::NotConnected`].
    pub fn connected<B: Backend>(&mut self) -> Result<&mut Connected<B>> {
        let other = || {
            Error::unsupported(
                B::NAME,
                "its connection",
                "the state manager is of another backend; ask for the connection of its own",
            )
        };
        let any = self as &mut dyn Any;
        if any.is::<Manager<B>>() {
            return any
                .downcast_mut::<Manager<B>>()
                .ok_or_else(other)?
                .connected();
        }
        any.downcast_mut::<Connected<B>>().ok_or_else(other)
    }

    /// The native connection (a `B::Conn`) of a typed backend's manager: a pooled
    /// [`Connected`], or a connected standalone [`Manager`], of `B` or of any backend on the
    /// same connection type (a capture backend and its transaction backend share one).
    ///
    /// ```
    /// use venomqa::memory::Memory;
    /// use venomqa::{registry, BackendConfig};
    ///
    /// let mut m = registry::connect(&BackendConfig::new("memory"))?;
    /// m.connection::<Memory>()?.set("k", "v");
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn connection<B: Backend>(&mut self) -> Result<&mut B::Conn> {
        let connected = self.is_connected();
        match self.native_connection() {
            Some(conn) => conn.downcast_mut::<B::Conn>().ok_or_else(|| {
                Error::unsupported(
                    B::NAME,
                    "its connection",
                    "the state manager is of another backend; ask for the connection of its own",
                )
            }),
            None if !connected => Err(not_connected::<B>()),
            None => Err(Error::unsupported(
                B::NAME,
                "its connection",
                "the state manager is hand-written: downcast it to its own type",
            )),
        }
    }
}

/// A typed [`Backend`]'s [`StateManager`] for standalone use: the reference document's
/// manager, which may be not connected yet, or disconnected. Once connected it holds a
/// [`Connected<B>`](crate::Connected), which is what pools and sessions use.
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
    backend: Arc<B>,
    live: Option<Connected<B>>,
}

impl<B: Backend> fmt::Debug for Manager<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("backend", &B::NAME)
            .field("connected", &self.is_connected())
            .field("checkpoints", &self.checkpoints())
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
            live: None,
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

    /// A manager of an open connection.
    pub(crate) fn of(live: Connected<B>) -> Self {
        Manager {
            backend: live.shared_backend().clone(),
            live: Some(live),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The open connection and its checkpoints, or [`Error::NotConnected`].
    pub fn connected(&mut self) -> Result<&mut Connected<B>> {
        self.live.as_mut().ok_or_else(not_connected::<B>)
    }

    /// The open connection and its checkpoints, or [`Error::NotConnected`].
    pub fn connected_ref(&self) -> Result<&Connected<B>> {
        self.live.as_ref().ok_or_else(not_connected::<B>)
    }

    /// The connection, or [`Error::NotConnected`].
    pub fn connection(&mut self) -> Result<&mut B::Conn> {
        Ok(self.connected()?.connection())
    }

    /// The connection, or [`Error::NotConnected`].
    pub fn connection_ref(&self) -> Result<&B::Conn> {
        Ok(self.connected_ref()?.connection_ref())
    }

    /// Runs a backend-specific operation on the connection (see [`Connected::with`]).
    #[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
    pub(crate) fn with<T>(
        &mut self,
        op: impl FnOnce(&B, &mut B::Conn, &crate::checkpoint::Stack<B::Mark>) -> Result<T>,
    ) -> Result<T> {
        self.connected()?.with(op)
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
        if self.live.as_ref().is_some_and(|c| c.is_connected()) {
            return Ok(());
        }
        // A broken connection is dropped without I/O on it.
        self.live = None;
        self.live = Some(Connected::open(self.backend.clone())?);
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        match self.live.take() {
            Some(live) => live.close(),
            None => Ok(()),
        }
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        self.connected()?.checkpoint(name)
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        self.connected()?.rollback(name)
    }

    fn release(&mut self, name: &str) -> Result<()> {
        self.connected()?.release(name)
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        self.connected()?.discard(name)
    }

    fn reset(&mut self) -> Result<()> {
        self.connected()?.reset()
    }

    fn is_connected(&self) -> bool {
        self.live.as_ref().is_some_and(|c| c.is_connected())
    }

    fn checkpoints(&self) -> &[Name] {
        self.live.as_ref().map_or(&[], |c| c.checkpoints())
    }

    fn health_check(&mut self) -> bool {
        self.live.as_mut().is_some_and(|c| c.health_check())
    }

    fn lease_check(&mut self) -> bool {
        self.live.as_mut().is_some_and(|c| c.lease_check())
    }

    fn execute_script(&mut self, script: &str) -> Result<()> {
        self.connected()?.execute_script(script)
    }

    fn setup_per_connection(&self) -> bool {
        self.backend.setup_per_connection()
    }

    fn captures(&self) -> bool {
        self.live.as_ref().is_some_and(|c| c.captures())
    }

    fn url(&self) -> Result<SecretUrl> {
        self.connected_ref()?.url()
    }

    fn diff(&mut self, name: &str) -> Result<Diff> {
        self.connected()?.diff(name)
    }

    fn registered_name() -> Option<&'static str> {
        Some(B::NAME)
    }

    fn managed_backend() -> Option<TypeId> {
        Some(TypeId::of::<B>())
    }

    fn native_connection(&mut self) -> Option<&mut dyn Any> {
        Some(self.live.as_mut()?.connection())
    }

    /// A pool of the connections the factory's managers hold, as a typed backend's pool
    /// is: typed sessions of `B` lease from it.
    fn factory_pool<P: MakePool>(open: Open<Self>, make: P) -> P::Pool {
        make.make::<Connected<B>>(Arc::new(move || {
            open()?.live.ok_or_else(not_connected::<B>)
        }))
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
