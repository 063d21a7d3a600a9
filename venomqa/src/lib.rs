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
//! - [`StateManager`]: the reference document's protocol (connect, checkpoint, rollback,
//!   release, reset, ...), object safe;
//! - [`Backend`]: the typed contract a backend implements (hooks over its own connection
//!   type), and [`Manager`], which turns any backend into a `StateManager`;
//! - [`checkpoint`]: checkpoint names and the stack rules every backend shares;
//! - [`registry`]: backends by name; [`Session`]: what a test receives, leased from a
//!   lazily built pool, with nested checkpoint blocks;
//! - [`config`]: `venomqa.yaml` and the `VENOMQA_*` environment variables;
//! - the backends: [`sqlite`] (default), [`memory`], and behind cargo features `mysql`,
//!   `postgres`, `redis` and `mongodb`;
//! - `conformance` (feature `conformance`): the checkpoint-semantics suite any backend
//!   can run;
//! - `journey` (feature `journey`): journeys of steps, checkpoints and branches run
//!   against a real API server, rolled back between paths by capture isolation;
//! - [`report`]: the cost report, one JSON line per test when `VENOMQA_REPORT` names a
//!   file. With `RUST_LOG` or `VENOMQA_LOG` set (feature `logs`, on by default), a
//!   failing test's output shows venomqa's events.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
#[cfg(feature = "tokio")]
mod async_backend;
mod backend;
mod backends;
pub mod capture;
pub mod checkpoint;
pub mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod connected;
mod error;
#[cfg(feature = "explore")]
pub mod explore;
mod html;
#[cfg(feature = "journey")]
#[cfg_attr(docsrs, doc(cfg(feature = "journey")))]
pub mod journey;
mod log;
mod manager;
#[cfg(feature = "openapi")]
pub mod openapi;
#[doc(hidden)]
pub mod pool;
mod redact;
pub mod registry;
pub mod report;
#[cfg(feature = "tokio")]
pub mod runtime;
mod session;
#[cfg_attr(
    not(any(feature = "sqlite", feature = "mysql", feature = "postgres")),
    allow(dead_code)
)]
mod sql;
mod state;
mod util;
pub mod workers;

#[cfg(feature = "tokio")]
pub use async_backend::{Async, AsyncBackend, AsyncSession, AsyncStateManager};
pub use backend::{Backend, Capture};
pub use backends::*;
pub use checkpoint::validate_checkpoint_name;
pub use config::BackendConfig;
pub use connected::Connected;
pub use error::{BoxError, Error, Result, Scrubbed};
pub use manager::Manager;
pub use redact::{redact_url, SecretUrl};
pub use session::{
    HandWritten, Session, SessionBuilder, SessionManager, TestOutcome, ROOT_CHECKPOINT,
};
pub use state::StateManager;
pub use venomqa_macros::venom_test;

/// Registers a backend at link time (the equivalent of the Python original's entry points),
/// with `inventory`: the registry applies it when it is first used, before any test gets a
/// session. Like [`register_setup!`], it applies to the binary it is compiled into.
///
/// - `register_backend!(MyBackend)`: a typed [`Backend`], under its
///   [`NAME`](Backend::NAME);
/// - `register_backend!("name", factory)`: a hand-written [`StateManager`]; the factory
///   receives the resolved [`BackendConfig`] and returns `Result<impl StateManager>`, and
///   the registry connects what it returns. An optional third argument sets the pool size
///   used when the configuration sets none (default 1: tests that share one manager run
///   one at a time).
///
/// ```
/// use venomqa::{memory::Memory, Manager};
///
/// venomqa::register_backend!(Memory); // a typed backend (this one replaces the built-in)
/// venomqa::register_backend!("notes", |_config| Ok(Manager::new(Memory)));
/// venomqa::register_backend!("wide_notes", |_config| Ok(Manager::new(Memory)), 8);
///
/// assert!(venomqa::registry::backends().contains(&"notes".to_owned()));
/// ```
#[macro_export]
macro_rules! register_backend {
    ($backend:ty $(,)?) => {
        $crate::register_backend!(@submit $crate::registry::AtLinkTime::Backend(
            || $crate::registry::Registration::of::<$backend>()
        ));
    };
    ($name:expr, $factory:expr $(,)?) => {
        $crate::register_backend!(@submit $crate::registry::AtLinkTime::Backend(
            || $crate::registry::Registration::factory($name, 1, $factory)
        ));
    };
    ($name:expr, $factory:expr, $pool_size:expr $(,)?) => {
        $crate::register_backend!(@submit $crate::registry::AtLinkTime::Backend(
            || $crate::registry::Registration::factory($name, $pool_size, $factory)
        ));
    };
    (@submit $item:expr) => {
        $crate::__private::inventory::submit! { $item }
    };
}

/// Registers a setup function for a configuration entry at link time (applied when the
/// registry is first used): it runs once per process on the first connected manager of that entry (a backend's name, or a
/// named entry of `venomqa.yaml`), after the entry's `setup:` files.
///
/// It registers in the binary it is compiled into, so it applies to that test binary
/// only: each file under `tests/` is a binary of its own (and unit tests another). Setup
/// every test binary needs belongs in the entry's `setup:` files, or in a module each test
/// file includes (`mod common;`).
///
/// ```
/// use venomqa::{memory::Memory, StateManager};
///
/// // A pooled connection arrives as a `&mut dyn StateManager` (a `Connected<Memory>`).
/// venomqa::register_setup!("memory", |manager: &mut dyn StateManager| {
///     manager.connection::<Memory>()?.set("greeting", "hello");
///     Ok(())
/// });
/// ```
#[macro_export]
macro_rules! register_setup {
    ($entry:expr, $setup:expr $(,)?) => {
        $crate::register_backend!(@submit $crate::registry::AtLinkTime::Setup(|| (
            ::std::string::String::from($entry),
            $crate::registry::setup_fn($setup),
        )));
    };
}
