//! [`Connected`]: one open connection of a typed [`Backend`] and its checkpoint stack. It
//! is what a pool holds and a typed session leases (deadpool's `Object`, r2d2's
//! `PooledConnection`): there is no "not connected" state to check on the test path.

use std::fmt;
use std::sync::Arc;

use crate::backend::Backend;
use crate::capture::diff::Diff;
use crate::checkpoint::{Name, Stack};
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::state::StateManager;

/// A typed [`Backend`]'s open connection and the checkpoints active on it.
///
/// Pools hold these, and a typed session ([`SqliteSession`](crate::sqlite::SqliteSession),
/// `Session<Manager<B>>`) leases one: [`Session::connection`](crate::Session::connection)
/// is a field access. A setup function or a probe that receives a pooled connection as a
/// `&mut dyn StateManager` gets it back with
/// [`downcast_mut::<Connected<B>>()`](trait.StateManager.html#method.downcast_mut), or its
/// native connection with [`connection::<B>()`](trait.StateManager.html#method.connection).
///
/// The standalone [`Manager<B>`](crate::Manager) is a `Connected<B>` once it is connected.
///
/// ```
/// use venomqa::memory::Memory;
/// use venomqa::{Connected, StateManager};
///
/// venomqa::register_setup!("memory_connected_doc", |m: &mut dyn StateManager| {
///     let store = m.connection::<Memory>()?; // the same as:
///     store.set("greeting", "hello");
///     assert!(m.downcast_mut::<Connected<Memory>>().is_some());
///     Ok(())
/// });
/// ```
pub struct Connected<B: Backend> {
    backend: Arc<B>,
    conn: B::Conn,
    stack: Stack<B::Mark>,
    health: Health,
}

/// Whether a [`Connected`] may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Usable.
    Ok,
    /// An operation reported the connection lost: the pool drops it.
    Broken,
    /// [`StateManager::disconnect`] was called: operations fail until
    /// [`connect`](StateManager::connect) opens a new connection.
    Closed,
}

impl<B: Backend> fmt::Debug for Connected<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected")
            .field("backend", &B::NAME)
            .field("health", &self.health)
            .field("checkpoints", &self.stack.names())
            .finish()
    }
}

impl<B: Backend> Connected<B> {
    /// Opens a connection of `backend`.
    pub fn open(backend: Arc<B>) -> Result<Self> {
        let conn = backend.connect()?;
        Ok(Connected {
            backend,
            conn,
            stack: Stack::new(B::NAME),
            health: Health::Ok,
        })
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, shared.
    pub(crate) fn shared_backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// The connection: run the code under test through it.
    pub fn connection(&mut self) -> &mut B::Conn {
        &mut self.conn
    }

    /// The connection.
    pub fn connection_ref(&self) -> &B::Conn {
        &self.conn
    }

    /// The error of an operation after [`disconnect`](StateManager::disconnect), if it was
    /// called.
    fn usable(&self) -> Result<()> {
        match self.health {
            Health::Closed => Err(not_connected::<B>()),
            Health::Ok | Health::Broken => Ok(()),
        }
    }

    /// Runs a backend-specific operation on the connection, with the checkpoint stack to
    /// look at. An error that means the connection is lost makes the pool replace it.
    #[cfg_attr(not(any(feature = "mysql", feature = "mongodb")), allow(dead_code))]
    pub(crate) fn with<T>(
        &mut self,
        op: impl FnOnce(&B, &mut B::Conn, &Stack<B::Mark>) -> Result<T>,
    ) -> Result<T> {
        self.usable()?;
        let result = op(&self.backend, &mut self.conn, &self.stack);
        self.note(result)
    }

    fn note<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.is_connection_lost() {
                self.health = Health::Broken;
            }
        }
        result
    }

    /// Gives the marks a rollback or release dropped back to the backend.
    fn forget(&mut self, marks: Vec<B::Mark>) {
        for mark in marks {
            if let Err(e) = self.backend.forget(&mut self.conn, mark) {
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
        self.usable()?;
        let result = op(&self.backend, &mut self.conn, &mut self.stack);
        let dropped = self.note(result)?;
        self.forget(dropped);
        Ok(())
    }

    /// Forgets every checkpoint (freeing their marks while the connection works) and
    /// closes the connection: the reference's `disconnect()`, by value.
    pub(crate) fn close(mut self) -> Result<()> {
        let marks = self.stack.clear();
        match self.health {
            Health::Ok => self.forget(marks),
            // A lost connection cannot free anything; a closed one already did.
            Health::Broken | Health::Closed => drop(marks),
        }
        self.backend.close(self.conn)
    }
}

/// The error of an operation on a manager that is not connected.
pub(crate) fn not_connected<B: Backend>() -> Error {
    Error::NotConnected {
        backend: B::NAME.to_owned(),
    }
}

impl<B: Backend> StateManager for Connected<B> {
    /// A usable connection keeps itself; a broken or disconnected one is replaced by a new
    /// connection (the old one is closed once the new one is open).
    fn connect(&mut self) -> Result<()> {
        if self.health == Health::Ok {
            return Ok(());
        }
        let fresh = self.backend.connect()?;
        let old = std::mem::replace(&mut self.conn, fresh);
        // What the old connection held is gone with it: a lost connection lost its
        // checkpoints, and a disconnect forgot them.
        self.stack.clear();
        let closed = std::mem::replace(&mut self.health, Health::Ok);
        if closed == Health::Closed {
            if let Err(e) = self.backend.close(old) {
                tracing::debug!(target: "venomqa", backend = B::NAME, error = %e, "closing the replaced connection failed");
            }
        }
        Ok(())
    }

    /// Forgets the checkpoints and refuses every operation until
    /// [`connect`](StateManager::connect); the pool closes the connection when the lease
    /// ends.
    fn disconnect(&mut self) -> Result<()> {
        let marks = self.stack.clear();
        if self.health == Health::Ok {
            self.forget(marks);
        }
        self.health = Health::Closed;
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        self.usable()?;
        let (backend, conn) = (&self.backend, &mut self.conn);
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
        self.usable()?;
        let checked = self.backend.check_reset(&mut self.conn);
        self.note(checked)?;
        if let Some(outermost) = self.stack.names().first().cloned() {
            if let Err(e) = self.discard(&outermost) {
                tracing::warn!(target: "venomqa", backend = B::NAME, error = %e, "undoing the checkpoints before reset failed");
                let marks = self.stack.clear();
                self.forget(marks);
            }
        }
        let result = self.backend.reset(&mut self.conn);
        self.note(result)
    }

    fn is_connected(&self) -> bool {
        self.health == Health::Ok && !self.backend.is_broken(&self.conn)
    }

    fn checkpoints(&self) -> &[Name] {
        self.stack.names()
    }

    /// [`Backend::recycle`] on a connection with no checkpoint active.
    fn health_check(&mut self) -> bool {
        if !self.stack.is_empty() || !self.is_connected() {
            return false;
        }
        match self.backend.recycle(&mut self.conn) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(target: "venomqa", backend = B::NAME, error = %e, "health check failed");
                self.health = Health::Broken;
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
        self.usable()?;
        let result = self.backend.execute_script(&mut self.conn, script);
        self.note(result)
    }

    fn setup_per_connection(&self) -> bool {
        self.backend.setup_per_connection()
    }

    fn captures(&self) -> bool {
        self.health != Health::Closed && self.backend.captures(&self.conn)
    }

    fn url(&self) -> Result<SecretUrl> {
        self.usable()?;
        self.backend.url(&self.conn)
    }

    fn diff(&mut self, name: &str) -> Result<Diff> {
        self.usable()?;
        let (at, mark) = self.stack.get(name)?;
        let result = self.backend.diff(&mut self.conn, at, mark);
        self.note(result)
    }

    fn registered_name() -> Option<&'static str> {
        Some(B::NAME)
    }

    fn close_pooled(self)
    where
        Self: Sized,
    {
        let lost = match self.health {
            Health::Broken => true,
            Health::Ok => self.backend.is_broken(&self.conn),
            Health::Closed => false,
        };
        if lost {
            return; // dropped without I/O, as a lost connection must be
        }
        if let Err(e) = self.close() {
            tracing::debug!(target: "venomqa", backend = B::NAME, error = %e, "closing a pooled connection failed");
        }
    }

    fn native_connection(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(&mut self.conn)
    }

    fn backend_type(&self) -> Option<std::any::TypeId> {
        Some(std::any::TypeId::of::<B>())
    }
}
