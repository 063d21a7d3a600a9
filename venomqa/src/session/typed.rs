//! What a [`Session`](crate::Session) can be typed by ([`SessionManager`]), and what its lease gives it.

use std::sync::Arc;

use crate::backend::Backend;
use crate::connected::Connected;
use crate::error::Result;
use crate::manager::Manager;
use crate::pool::{AnyLease, AnyPool, Lease, LeaseTiming, Pool};
use crate::state::StateManager;

/// The manager types a [`Session`](crate::Session) can be typed by: `dyn StateManager` (any backend), a
/// typed backend's [`Manager<B>`] (such as
/// [`SqliteStateManager`](crate::sqlite::SqliteStateManager)), or a hand-written manager
/// marked [`HandWritten`].
///
/// Implemented for you, and sealed: it cannot be implemented outside venomqa.
#[diagnostic::on_unimplemented(
    message = "`Session<{Self}>` is not a session type",
    label = "not `dyn StateManager`, a `Manager<B>` or a hand-written manager marked `HandWritten`",
    note = "for a hand-written StateManager, add `impl venomqa::HandWritten for {Self} {{}}`"
)]
pub trait SessionManager: sealed::Sealed + 'static {
    /// What the session leases and [`Session::manager`](crate::Session::manager) returns: a
    /// [`Connected<B>`](crate::Connected) for `Manager<B>`, the manager itself otherwise.
    type Leased: ?Sized + StateManager;
    /// The lease the session holds.
    #[doc(hidden)]
    type Lease: SessionLease<Self::Leased>;
    /// A lease from `pool`, or `None` when the pool holds something else (another
    /// backend's connections).
    #[doc(hidden)]
    fn lease_from(pool: &Arc<dyn AnyPool>) -> Option<Result<Self::Lease>>;
    /// Whether `pool` holds what this type leases (no lease taken).
    #[doc(hidden)]
    fn holds(pool: &Arc<dyn AnyPool>) -> bool;
    /// The type's name, for messages.
    #[doc(hidden)]
    fn type_name() -> &'static str;
    /// The backend a session of this type runs on when the test names none.
    #[doc(hidden)]
    fn default_backend() -> Option<&'static str>;
}

/// Marks a hand-written [`StateManager`] that tests take as a typed session
/// (`Session<MyManager>`, leased from the pool of its
/// [`register_backend!`](crate::register_backend) factory). A typed [`Backend`] needs
/// nothing: its session is `Session<Manager<B>>`.
///
/// ```
/// use venomqa::{checkpoint::Name, HandWritten, Result, Session, StateManager};
///
/// #[derive(Default)]
/// struct Notes { checkpoints: Vec<Name> }
/// # impl StateManager for Notes {
/// #     fn connect(&mut self) -> Result<()> { Ok(()) }
/// #     fn disconnect(&mut self) -> Result<()> { Ok(()) }
/// #     fn checkpoint(&mut self, name: &str) -> Result<()> { self.checkpoints.push(Name::new(name)?); Ok(()) }
/// #     fn rollback(&mut self, name: &str) -> Result<()> { let i = self.checkpoints.iter().position(|c| c == name).unwrap(); self.checkpoints.truncate(i + 1); Ok(()) }
/// #     fn release(&mut self, name: &str) -> Result<()> { let i = self.checkpoints.iter().position(|c| c == name).unwrap(); self.checkpoints.truncate(i); Ok(()) }
/// #     fn reset(&mut self) -> Result<()> { self.checkpoints.clear(); Ok(()) }
/// #     fn is_connected(&self) -> bool { true }
/// #     fn checkpoints(&self) -> &[Name] { &self.checkpoints }
/// # }
/// impl HandWritten for Notes {}
///
/// venomqa::register_backend!("notes_doc", |_config| Ok(Notes::default()));
/// let mut db = Session::<Notes>::start("notes_doc")?;
/// assert_eq!(db.manager().checkpoints.len(), 1); // the session's root checkpoint
/// # Ok::<(), venomqa::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`Session<{Self}>` needs `{Self}` marked as a hand-written session type",
    label = "a hand-written StateManager taken as a typed session",
    note = "add `impl venomqa::HandWritten for {Self} {{}}` (or take `&mut venomqa::Session`)"
)]
pub trait HandWritten: StateManager {}

mod sealed {
    /// Seals [`SessionManager`](super::SessionManager): only the impls below exist.
    pub trait Sealed {}
    impl Sealed for dyn crate::StateManager {}
    impl<B: crate::Backend> Sealed for crate::Manager<B> {}
    impl<M: super::HandWritten> Sealed for M {}
}

/// What a [`Session`](crate::Session) needs of its lease.
#[doc(hidden)]
pub trait SessionLease<T: ?Sized>: Send {
    /// The leased item.
    fn get(&mut self) -> &mut T;
    /// The leased item.
    fn get_ref(&self) -> &T;
    /// The leased item as a `dyn StateManager`.
    fn state(&mut self) -> &mut dyn StateManager;
    /// The leased item as a `dyn StateManager`.
    fn state_ref(&self) -> &dyn StateManager;
    /// The configuration of the pool it came from.
    fn config(&self) -> &crate::BackendConfig;
    /// How long taking the lease took.
    fn timing(&self) -> LeaseTiming;
    /// Makes the pool drop the item instead of reusing it.
    fn mark_broken(&mut self);
}

impl<T: StateManager> SessionLease<T> for Lease<T> {
    fn get(&mut self) -> &mut T {
        Lease::<T>::manager(self)
    }
    fn get_ref(&self) -> &T {
        Lease::<T>::manager_ref(self)
    }
    fn state(&mut self) -> &mut dyn StateManager {
        Lease::<T>::manager(self)
    }
    fn state_ref(&self) -> &dyn StateManager {
        Lease::<T>::manager_ref(self)
    }
    fn config(&self) -> &crate::BackendConfig {
        Lease::<T>::config(self)
    }
    fn timing(&self) -> LeaseTiming {
        Lease::<T>::timing(self)
    }
    fn mark_broken(&mut self) {
        Lease::<T>::mark_broken(self);
    }
}

impl SessionLease<dyn StateManager> for Box<dyn AnyLease> {
    fn get(&mut self) -> &mut dyn StateManager {
        self.as_mut().manager()
    }
    fn get_ref(&self) -> &dyn StateManager {
        self.as_ref().manager_ref()
    }
    fn state(&mut self) -> &mut dyn StateManager {
        self.as_mut().manager()
    }
    fn state_ref(&self) -> &dyn StateManager {
        self.as_ref().manager_ref()
    }
    fn config(&self) -> &crate::BackendConfig {
        self.as_ref().config()
    }
    fn timing(&self) -> LeaseTiming {
        self.as_ref().timing()
    }
    fn mark_broken(&mut self) {
        self.as_mut().mark_broken();
    }
}

/// A lease from `pool` if it is a `Pool<T>`.
fn typed_lease<T: StateManager>(pool: &Arc<dyn AnyPool>) -> Option<Result<Lease<T>>> {
    let pool = pool.clone().as_any().downcast::<Pool<T>>().ok()?;
    Some(pool.lease())
}

impl SessionManager for dyn StateManager {
    type Leased = dyn StateManager;
    type Lease = Box<dyn AnyLease>;
    fn lease_from(pool: &Arc<dyn AnyPool>) -> Option<Result<Self::Lease>> {
        Some(pool.clone().lease_any())
    }
    fn holds(_: &Arc<dyn AnyPool>) -> bool {
        true
    }
    fn type_name() -> &'static str {
        "venomqa::Session"
    }
    fn default_backend() -> Option<&'static str> {
        None
    }
}

impl<B: Backend> SessionManager for Manager<B> {
    type Leased = Connected<B>;
    type Lease = Lease<Connected<B>>;
    fn lease_from(pool: &Arc<dyn AnyPool>) -> Option<Result<Self::Lease>> {
        typed_lease(pool)
    }
    fn holds(pool: &Arc<dyn AnyPool>) -> bool {
        pool.clone().as_any().is::<Pool<Self::Leased>>()
    }
    fn type_name() -> &'static str {
        std::any::type_name::<Manager<B>>()
    }
    fn default_backend() -> Option<&'static str> {
        Some(B::NAME)
    }
}

impl<M: HandWritten> SessionManager for M {
    type Leased = M;
    type Lease = Lease<M>;
    fn lease_from(pool: &Arc<dyn AnyPool>) -> Option<Result<Self::Lease>> {
        typed_lease(pool)
    }
    fn holds(pool: &Arc<dyn AnyPool>) -> bool {
        pool.clone().as_any().is::<Pool<Self::Leased>>()
    }
    fn type_name() -> &'static str {
        std::any::type_name::<M>()
    }
    fn default_backend() -> Option<&'static str> {
        M::registered_name()
    }
}
