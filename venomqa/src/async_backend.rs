//! [`AsyncBackend`]: the backend contract with async hooks (the reference's best practice
//! 4, `connect_async` / `checkpoint_async`), for a backend written on an async driver, and
//! [`Async`], which makes one a [`Backend`] registered, pooled and checked like any other.

use std::future::Future;

use serde::de::DeserializeOwned;

use crate::backend::Backend;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::runtime::block_on;
use crate::session::Session;
use crate::Manager;

/// A backend whose hooks are async: [`Backend`] for a store reached through an async
/// driver (sqlx, tokio-postgres, an async Redis or HTTP client). Implement it with
/// `async fn`s, wrap it in [`Async`], and register `Async<YourBackend>`: the pool,
/// sessions, `#[venom_test]` and the [conformance](crate::conformance) suite run it as
/// any backend. Its connections live on venomqa's own runtime ([`crate::runtime`]), so
/// a hook can be called from a blocking test, a setup function, or inside an `async fn`
/// test or journey, where blocking on a runtime of one's own would panic.
///
/// The hooks mean what [`Backend`]'s do; each future must be `Send`.
///
/// ```
/// use std::collections::BTreeMap;
/// use std::sync::Arc;
/// use tokio::sync::Mutex;
/// use venomqa::checkpoint::Point;
/// use venomqa::{Async, AsyncBackend, BackendConfig, Manager, Result, StateManager};
///
/// /// A shared async store (a `tokio::sync::Mutex`), checkpointed by copy.
/// struct Notes;
///
/// impl AsyncBackend for Notes {
///     const NAME: &'static str = "notes";
///     type Options = BTreeMap<String, String>;
///     type Conn = Arc<Mutex<Vec<String>>>;
///     type Mark = Vec<String>;
///
///     fn new(_: &BackendConfig, _: Self::Options) -> Result<Self> { Ok(Notes) }
///     async fn connect(&self) -> Result<Self::Conn> { Ok(Arc::default()) }
///     async fn checkpoint(&self, notes: &mut Self::Conn, _: Point<'_>) -> Result<Vec<String>> {
///         Ok(notes.lock().await.clone())
///     }
///     async fn rollback(&self, notes: &mut Self::Conn, _: Point<'_>, saved: &Vec<String>) -> Result<()> {
///         *notes.lock().await = saved.clone();
///         Ok(())
///     }
///     async fn release(&self, _: &mut Self::Conn, _: Point<'_>, _: &Vec<String>) -> Result<()> { Ok(()) }
/// }
///
/// let mut m = Manager::open(Async(Notes))?;
/// m.checkpoint("empty")?;
/// venomqa::runtime::block_on(async { m.connection()?.lock().await.push("x".into()); Ok::<_, venomqa::Error>(()) })?;
/// m.rollback("empty")?;
/// assert!(venomqa::runtime::block_on(m.connection()?.lock()).is_empty());
/// # Ok::<(), venomqa::Error>(())
/// ```
pub trait AsyncBackend: Send + Sync + Sized + 'static {
    /// The registered backend name ([`Backend::NAME`]).
    const NAME: &'static str;
    /// The entry's own keys ([`Backend::Options`]).
    type Options: DeserializeOwned + Default + Send + Sync + 'static;
    /// One open connection ([`Backend::Conn`]).
    type Conn: Send + 'static;
    /// What a checkpoint saves ([`Backend::Mark`]); `Sync` too, as the hooks' futures
    /// hold it by reference and are `Send`.
    type Mark: Send + Sync + 'static;

    /// Builds the backend from its entry ([`Backend::new`]); not async: no I/O here.
    fn new(config: &BackendConfig, options: Self::Options) -> Result<Self>;

    /// Opens a connection ([`Backend::connect`]).
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Creates checkpoint `at` ([`Backend::checkpoint`]).
    fn checkpoint(
        &self,
        conn: &mut Self::Conn,
        at: Point<'_>,
    ) -> impl Future<Output = Result<Self::Mark>> + Send;

    /// Restores the state at `at` ([`Backend::rollback`]).
    fn rollback(
        &self,
        conn: &mut Self::Conn,
        at: Point<'_>,
        mark: &Self::Mark,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Forgets `at`, keeping the changes ([`Backend::release`]).
    fn release(
        &self,
        conn: &mut Self::Conn,
        at: Point<'_>,
        mark: &Self::Mark,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Rolls back to `at` and releases it ([`Backend::discard`]); the default is
    /// [`rollback`](Self::rollback) then [`release`](Self::release).
    fn discard(
        &self,
        conn: &mut Self::Conn,
        at: Point<'_>,
        mark: &Self::Mark,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            self.rollback(conn, at, mark).await?;
            self.release(conn, at, mark).await
        }
    }

    /// Proves a pooled connection works before a lease ([`Backend::recycle`]); the default
    /// does nothing.
    fn recycle(&self, conn: &mut Self::Conn) -> impl Future<Output = Result<()>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    /// Whether the connection is known to be unusable, without I/O
    /// ([`Backend::is_broken`]).
    fn is_broken(&self, conn: &Self::Conn) -> bool {
        let _ = conn;
        false
    }

    /// Empties the store for real ([`Backend::reset`]); the default refuses.
    fn reset(&self, conn: &mut Self::Conn) -> impl Future<Output = Result<()>> + Send {
        let _ = conn;
        async {
            Err(Error::unsupported(
                Self::NAME,
                "reset()",
                "roll back to a checkpoint instead",
            ))
        }
    }

    /// Runs a setup script ([`Backend::execute_script`]); the default refuses.
    fn execute_script(
        &self,
        conn: &mut Self::Conn,
        script: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (conn, script);
        async {
            Err(Error::unsupported(
                Self::NAME,
                "setup scripts",
                "register a setup function with venomqa::register_setup! instead",
            ))
        }
    }

    /// Closes a connection for good ([`Backend::close`]); the default drops it.
    fn close(&self, conn: Self::Conn) -> impl Future<Output = Result<()>> + Send {
        drop(conn);
        async { Ok(()) }
    }

    /// How many connections a pool holds by default ([`Backend::pool_size`]).
    fn pool_size(&self) -> usize {
        1
    }

    /// Whether a failed connect may succeed soon ([`Backend::is_transient`]).
    fn is_transient(&self, error: &Error) -> bool {
        error.is_transient()
    }
}

/// An [`AsyncBackend`] as a [`Backend`]: each hook runs to completion on venomqa's async
/// runtime ([`crate::runtime::block_on`]). Register it as `Async<YourBackend>`
/// (`venomqa::register_backend!(venomqa::Async<YourBackend>)`); its typed session is
/// [`AsyncSession<YourBackend>`], whose `connection()` is your async connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Async<A>(pub A);

/// The standalone manager of an [`AsyncBackend`].
pub type AsyncStateManager<A> = Manager<Async<A>>;

/// The typed session of an [`AsyncBackend`] (`#[venom_test]` takes `&mut AsyncSession<A>`).
pub type AsyncSession<A> = Session<Manager<Async<A>>>;

impl<A: AsyncBackend> Backend for Async<A> {
    const NAME: &'static str = A::NAME;
    type Options = A::Options;
    type Conn = A::Conn;
    type Mark = A::Mark;

    fn new(config: &BackendConfig, options: A::Options) -> Result<Self> {
        A::new(config, options).map(Async)
    }

    fn connect(&self) -> Result<A::Conn> {
        block_on(self.0.connect())
    }

    fn is_transient(&self, error: &Error) -> bool {
        self.0.is_transient(error)
    }

    fn recycle(&self, conn: &mut A::Conn) -> Result<()> {
        block_on(self.0.recycle(conn))
    }

    fn is_broken(&self, conn: &A::Conn) -> bool {
        self.0.is_broken(conn)
    }

    fn checkpoint(&self, conn: &mut A::Conn, at: Point<'_>) -> Result<A::Mark> {
        block_on(self.0.checkpoint(conn, at))
    }

    fn rollback(&self, conn: &mut A::Conn, at: Point<'_>, mark: &A::Mark) -> Result<()> {
        block_on(self.0.rollback(conn, at, mark))
    }

    fn release(&self, conn: &mut A::Conn, at: Point<'_>, mark: &A::Mark) -> Result<()> {
        block_on(self.0.release(conn, at, mark))
    }

    fn discard(&self, conn: &mut A::Conn, at: Point<'_>, mark: &A::Mark) -> Result<()> {
        block_on(self.0.discard(conn, at, mark))
    }

    fn reset(&self, conn: &mut A::Conn) -> Result<()> {
        block_on(self.0.reset(conn))
    }

    fn execute_script(&self, conn: &mut A::Conn, script: &str) -> Result<()> {
        block_on(self.0.execute_script(conn, script))
    }

    fn pool_size(&self) -> usize {
        self.0.pool_size()
    }

    fn close(&self, conn: A::Conn) -> Result<()> {
        block_on(self.0.close(conn))
    }
}
