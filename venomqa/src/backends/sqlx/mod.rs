//! Sessions on [sqlx](::sqlx) connections: a test written for `#[sqlx::test]` runs in a
//! transaction on a pooled connection instead of in a fresh database.
//!
//! | feature | backend | session | `db.conn()` |
//! |---|---|---|---|
//! | `sqlx-postgres` | `sqlx_postgres` | [`SqlxPostgresSession`] | `&mut sqlx::PgConnection` |
//! | `sqlx-mysql` | `sqlx_mysql` | [`SqlxMySqlSession`] | `&mut sqlx::MySqlConnection` |
//! | `sqlx-sqlite` | `sqlx_sqlite` | [`SqlxSqliteSession`] | `&mut sqlx::SqliteConnection` |
//!
//! ```
//! # #[cfg(feature = "sqlx-sqlite")] {
//! use venomqa::sqlx::SqlxSqliteSession;
//! use venomqa::venom_test;
//!
//! // Was: #[sqlx::test] async fn adds_a_user(mut conn: PoolConnection<Sqlite>)
//! #[venom_test] // the backend comes from the parameter's type: sqlx_sqlite
//! async fn adds_a_user(conn: &mut SqlxSqliteSession) -> sqlx::Result<()> {
//!     sqlx::query("CREATE TABLE users (email TEXT)").execute(&mut *conn).await?;
//!     sqlx::query("INSERT INTO users VALUES ('ann@example.com')").execute(conn.conn()).await?;
//!     let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *conn).await?;
//!     assert_eq!(n, 1);
//!     Ok(())
//! } // rolled back here
//!
//! adds_a_user().unwrap(); // outside `cargo test`, the attribute leaves a plain function
//! # }
//! ```
//!
//! # How a test is isolated
//!
//! The test runs inside a transaction on its own connection, and each checkpoint is a
//! savepoint. They are made through sqlx's own transaction manager, so the connection's
//! transaction depth stays right: `conn.begin()` inside a test opens a savepoint, and
//! `tx.commit()` releases it. Code under test that takes a `&mut PgConnection` and
//! manages its own transactions keeps working, and its writes are still rolled back.
//!
//! | operation | SQL |
//! |---|---|
//! | first checkpoint (test start) | `BEGIN; SAVEPOINT venomqa_root` (SQLite files: `BEGIN IMMEDIATE; ..`) |
//! | later checkpoint | `SAVEPOINT _sqlx_savepoint_N` (sqlx's name for depth `N`) |
//! | rollback to a checkpoint | `ROLLBACK TO SAVEPOINT` of its savepoint |
//! | end of a block | `ROLLBACK TO SAVEPOINT ..` |
//! | end of the test | PostgreSQL: `ROLLBACK TO SAVEPOINT venomqa_root; SELECT pg_advisory_unlock_all()`, then `ROLLBACK`; MySQL: `ROLLBACK TO SAVEPOINT venomqa_root; ROLLBACK`; SQLite: `ROLLBACK` |
//!
//! The `ROLLBACK TO SAVEPOINT venomqa_root` at the end proves the transaction is still
//! the test's: if code under test ran a bare `COMMIT` (or, on MySQL, DDL, which commits),
//! the test fails with [`Error::StateLost`](crate::Error::StateLost) instead of passing
//! with its data committed. Tables a test creates on PostgreSQL and SQLite are rolled back
//! with its rows. Only writes made through `db.conn()` are rolled back: another connection
//! (the app's own `PgPool`) does not see them and is not rolled back. For an app that
//! must use its own pool, use the `postgres` or `mysql` backend with `isolation: capture`.
//!
//! # The runtime
//!
//! A pooled connection outlives each test, and each `async fn` test runs on a Tokio
//! runtime of its own that ends with it. So connections are opened on one runtime that
//! venomqa starts for the process (one worker thread, named `venomqa-sqlx`), whose I/O
//! driver keeps running between tests: an `async fn` test awaits `db.conn()` from its own
//! runtime, and checkpoints and rollbacks (synchronous calls) block the calling thread on
//! [`block_on`], which also works inside an async test. Sync tests use [`block_on`] too.
//! A current-thread runtime per connection would save the wake-up from the worker thread
//! (a debug-build `SELECT 1` took 31 us on one, 85 us through [`block_on`], 44 us awaited
//! from a test's runtime), but a checkpoint inside an `async fn` test could not block on
//! it (Tokio's `block_on` panics inside a runtime), and its I/O driver would run only
//! while something blocks on it, so nothing would drive it while the test awaits.
//!
//! # Migrations and setup
//!
//! They run once per database, before the first test:
//!
//! - `sqlx::migrate!` migrations: register the migrator for the entry with
//!   [`migrate`] and [`register_setup!`](crate::register_setup):
//!   `venomqa::register_setup!("sqlx_postgres", venomqa::sqlx::migrate(&MIGRATOR));`
//! - a directory of sqlx migrations named in `venomqa.yaml` (`migrations: migrations`,
//!   relative to the file), run with sqlx's migrator at run time;
//! - `setup:` files, run as the other SQL backends run them (once per process, or per
//!   connection for in-memory SQLite).
//!
//! sqlx's migrator records what it applied in `_sqlx_migrations` and locks the database
//! while it runs, so many test processes at once (as under nextest) apply each migration
//! once. Keys of the entry: the common ones and those of [`SqlxOptions`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The sqlx crate venomqa is built with, so tests can name its types without depending on
/// a matching version.
pub use ::sqlx as driver;

mod connect;
mod dialect;
mod file_lock;
mod hooks;
mod macros;
mod migrate;

#[cfg(feature = "sqlx-mysql")]
mod mysql;
#[cfg(feature = "sqlx-postgres")]
mod postgres;
#[cfg(feature = "sqlx-sqlite")]
mod sqlite;

#[cfg(feature = "sqlx-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-mysql")))]
pub use mysql::{SqlxMySql, SqlxMySqlSession, SqlxMySqlStateManager};
#[cfg(feature = "sqlx-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-postgres")))]
pub use postgres::{SqlxPostgres, SqlxPostgresSession, SqlxPostgresStateManager};
#[cfg(feature = "sqlx-sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx-sqlite")))]
pub use sqlite::{SqlxSqlite, SqlxSqliteSession, SqlxSqliteStateManager};

pub use self::migrate::{migrate, run_migrator};
pub use crate::runtime::block_on;

/// How long a connection attempt may take unless `connect_timeout_ms` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The keys of an sqlx entry in `venomqa.yaml`, besides the common ones (`url`,
/// `pool_size`, `connect_timeout_ms`, `setup`, ...).
///
/// ```yaml
/// backends:
///   sqlx_postgres:
///     url: postgres://postgres@127.0.0.1:5432/test
///     migrations: ../migrations     # as `sqlx migrate add` writes them
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SqlxOptions {
    /// A directory of sqlx migrations (`<VERSION>_<DESCRIPTION>.sql`), relative to the
    /// `venomqa.yaml` that names it. sqlx's migrator applies what is new on the first
    /// connection of each pool (on every connection of an in-memory SQLite database).
    pub migrations: Option<PathBuf>,
}

/// A checkpoint of an sqlx session: sqlx's transaction depth once it was made (1 for the
/// outermost checkpoint, whose transaction holds savepoint `venomqa_root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlxMark {
    depth: usize,
}

impl SqlxMark {
    /// sqlx's transaction depth just after the checkpoint was made.
    pub fn depth(&self) -> usize {
        self.depth
    }
}
