//! The reference's [`StateManager`] protocol, object safe. A typed backend gets it
//! through [`Connected`](crate::Connected) (a pooled connection) and
//! [`Manager`](crate::Manager) (standalone use).

use std::any::{Any, TypeId};

use crate::capture::diff::Diff;
use crate::checkpoint::Name;
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
/// Every typed [`Backend`](crate::Backend) gets this through [`Connected`](crate::Connected)
/// and [`Manager`](crate::Manager). You can also implement it by
/// hand, as the reference document does; a [`Stack`](crate::checkpoint::Stack) keeps the rules for you (see
/// `examples/filestore_backend.rs`). The trait is object safe: the registry stores
/// each pool once behind one type erasure, and
/// [`downcast_mut`](trait.StateManager.html#method.downcast_mut) gets the concrete type back
/// from a `dyn StateManager`.
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

    /// Ends a manager the pool will not reuse: [`disconnect`](Self::disconnect) if it is
    /// connected, then drop it.
    #[doc(hidden)]
    fn close_pooled(mut self)
    where
        Self: Sized,
    {
        if self.is_connected() {
            let _ = self.disconnect();
        }
    }

    /// The `TypeId` of the typed backend behind a pooled connection (a
    /// [`Connected<B>`](crate::Connected)), for the message of a downcast to the wrong type.
    #[doc(hidden)]
    fn backend_type(&self) -> Option<TypeId> {
        None
    }

    /// The `TypeId` of `B` for a [`Manager<B>`](crate::Manager), for the same message.
    #[doc(hidden)]
    fn managed_backend() -> Option<TypeId>
    where
        Self: Sized,
    {
        None
    }

    /// The native connection of a typed backend's manager, as `Any` (what
    /// [`connection::<B>()`](trait.StateManager.html#method.connection) downcasts to
    /// `B::Conn`); `None` for a hand-written manager or one not connected.
    #[doc(hidden)]
    fn native_connection(&mut self) -> Option<&mut dyn Any> {
        None
    }

    /// Builds the pool of a factory registration that opens managers of this type with
    /// `open`: a pool of the managers themselves, or, for a
    /// [`Manager<B>`](crate::Manager), of the [`Connected<B>`](crate::Connected) each one
    /// holds (so typed sessions lease from it).
    #[doc(hidden)]
    fn factory_pool<P: MakePool>(open: Open<Self>, make: P) -> P::Pool
    where
        Self: Sized,
    {
        make.make(open)
    }
}

/// How a factory opens a connected manager.
#[doc(hidden)]
pub type Open<T> = std::sync::Arc<dyn Fn() -> Result<T> + Send + Sync>;

/// Builds a pool of any item type (the registry's, for
/// [`StateManager::factory_pool`]).
#[doc(hidden)]
pub trait MakePool {
    /// The pool, type-erased.
    type Pool;
    /// A pool of the items `open` opens.
    fn make<T: StateManager>(self, open: Open<T>) -> Self::Pool;
}

impl dyn StateManager {
    /// The concrete manager behind a `dyn StateManager`, if it is an `M`.
    ///
    /// # Panics
    ///
    /// When `M` is a [`Manager<B>`](crate::Manager) and `self` is a pooled [`Connected<B>`](crate::Connected)
    /// (what setup functions, probes and sessions get): the answer would be `None` for a
    /// manager that is there, so it says which type to ask for instead.
    pub fn downcast_mut<M: StateManager>(&mut self) -> Option<&mut M> {
        self.check_downcast::<M>();
        (self as &mut dyn Any).downcast_mut::<M>()
    }

    /// The concrete manager behind a `dyn StateManager`, if it is an `M`; panics as
    /// [`downcast_mut`](trait.StateManager.html#method.downcast_mut) does.
    pub fn downcast_ref<M: StateManager>(&self) -> Option<&M> {
        self.check_downcast::<M>();
        (self as &dyn Any).downcast_ref::<M>()
    }

    /// Whether the manager is an `M`.
    pub fn is<M: StateManager>(&self) -> bool {
        (self as &dyn Any).is::<M>()
    }

    fn check_downcast<M: StateManager>(&self) {
        if let (Some(wanted), Some(held)) = (M::managed_backend(), self.backend_type()) {
            if wanted == held {
                panic!(
                    "venomqa: downcast to {} on a pooled connection, which is a venomqa::Connected<..> of the same backend: downcast to Connected<B> instead, or call connection::<B>() (see the README's migration section)",
                    std::any::type_name::<M>()
                );
            }
        }
    }
}
