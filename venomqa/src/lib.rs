//! # venomqa
//!
//! Checkpoint a database before each test and roll it back after, so every test starts
//! from the same state: `#[venom_test]` wraps a test in a checkpoint on a pooled
//! connection and rolls it back when the test returns, returns `Err`, or panics.
//!
//! ```
//! use venomqa::{venom_test, sqlite::SqliteSession};
//!
//! #[venom_test] // the embedded SQLite default: no server needed
//! fn signup_creates_a_user(db: &mut SqliteSession) {
//!     db.conn().execute_batch("CREATE TABLE users (email TEXT)").unwrap();
//!     db.conn().execute("INSERT INTO users VALUES ('ann@example.com')", []).unwrap();
//! } // rolled back here: the next test sees no users table
//!
//! // In a test build the function is a #[test]; here it is a plain function we can call.
//! signup_creates_a_user();
//!
//! // Look at the database the same way the attribute does: a session, by hand.
//! let db = SqliteSession::start("sqlite")?;
//! let tables: i64 = db.conn().query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
//! assert_eq!(tables, 0, "the test's table was rolled back");
//! # Ok::<(), venomqa::Error>(())
//! ```
//!
//! The pieces, each in its module:
//!
//! - [`StateManager`]: the protocol every backend implements, and [`BaseStateManager`],
//!   the reusable base that keeps the checkpoint stack;
//! - [`registry`]: backends by name and the shared, lazily built connection pools;
//! - [`Session`]: what a test receives, with nested checkpoint blocks;
//! - [`config`]: `venomqa.yaml` and the `VENOMQA_*` environment variables;
//! - the backends: [`sqlite`] (default), [`memory`], and behind cargo features `mysql`,
//!   `postgres`, `redis` and `mongodb`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod backends;
pub mod config;
mod error;
pub mod registry;
mod session;
#[cfg_attr(
    not(any(feature = "sqlite", feature = "mysql", feature = "postgres")),
    allow(dead_code)
)]
mod sql;
mod state;

pub use backends::*;
pub use config::BackendConfig;
pub use error::{redact_url, Error, Result};
pub use registry::Backend;
pub use session::{Session, SessionManager, ROOT_CHECKPOINT};
pub use state::{
    validate_checkpoint_name, BaseStateManager, Connected, StateManager, MAX_CHECKPOINT_NAME_LEN,
};
pub use venomqa_macros::venom_test;

/// Registers a backend at program start-up, before `main` and before any test runs (the
/// equivalent of the Python original's entry points), using `ctor`.
///
/// The factory receives the resolved [`BackendConfig`] and returns
/// `Result<impl StateManager>`; the registry connects what it returns. An optional third
/// argument sets the pool size used when the configuration sets none (default 1: tests
/// that share one manager run one at a time).
///
/// ```
/// use venomqa::memory::MemoryStateManager;
///
/// venomqa::register_backend!("notes", |_config| Ok(MemoryStateManager::new()));
/// venomqa::register_backend!("wide_notes", |_config| Ok(MemoryStateManager::new()), 8);
///
/// assert!(venomqa::registry::backends().contains(&"notes".to_owned()));
/// ```
#[macro_export]
macro_rules! register_backend {
    ($name:expr, $factory:expr $(,)?) => {
        $crate::register_backend!(@ctor $crate::registry::register($crate::Backend::new($name, $factory)));
    };
    ($name:expr, $factory:expr, $pool_size:expr $(,)?) => {
        $crate::register_backend!(@ctor $crate::registry::register(
            $crate::Backend::new($name, $factory).default_pool_size($pool_size)
        ));
    };
    (@ctor $register:expr) => {
        $crate::__private::ctor::declarative::ctor! {
            #[ctor(unsafe, anonymous)]
            fn __venomqa_register_backend() {
                $register;
            }
        }
    };
}

/// Registers a setup function for a configuration entry at program start-up: it runs
/// once per process on the first connected manager of that entry (a backend's name, or a
/// named entry of `venomqa.yaml`), after the entry's `setup:` files.
///
/// ```
/// use venomqa::{memory::MemoryStateManager, StateManager};
///
/// venomqa::register_setup!("memory", |manager: &mut dyn StateManager| {
///     if let Some(store) = manager.downcast_mut::<MemoryStateManager>() {
///         store.set("greeting", "hello");
///     }
///     Ok(())
/// });
/// ```
#[macro_export]
macro_rules! register_setup {
    ($entry:expr, $setup:expr $(,)?) => {
        $crate::register_backend!(@ctor $crate::registry::register_setup($entry, $setup));
    };
}
