//! SQLite through `sqlx::SqliteConnection` (feature `sqlx-sqlite`).

use std::str::FromStr;

use ::sqlx::error::DatabaseError;
use ::sqlx::sqlite::SqliteConnectOptions;
use ::sqlx::{Sqlite, SqliteConnection};

use super::dialect::{Core, Dialect};
use super::SqlxOptions;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::util::test_threads;

const NAME: &str = "sqlx_sqlite";

/// The URL used when none is configured: a private in-memory database per connection.
pub const DEFAULT_URL: &str = "sqlite::memory:";

/// SQLite through sqlx: a transaction per test and a savepoint per checkpoint on a pooled
/// `sqlx::SqliteConnection` (see the [module docs](super)). Registered as `sqlx_sqlite`.
///
/// | URL | database |
/// |---|---|
/// | none, `sqlite::memory:` | a private in-memory database per connection: tests run in parallel, and setup and migrations run on every new connection |
/// | `sqlite://path/app.db`, `sqlite:app.db` | a file (created if missing) shared by every connection: tests take turns (pool size 1, `BEGIN IMMEDIATE`) |
#[derive(Debug)]
pub struct SqlxSqlite {
    core: Core,
    memory: bool,
}

/// The [`StateManager`](crate::StateManager) of [`SqlxSqlite`].
pub type SqlxSqliteStateManager = Manager<SqlxSqlite>;

/// A session on [`SqlxSqlite`]: [`conn`](crate::Session::conn) is the test's
/// `&mut sqlx::SqliteConnection`, inside its transaction.
///
/// ```
/// use venomqa::sqlx::SqlxSqliteSession;
///
/// #[venomqa::venom_test] // backend sqlx_sqlite, from the type
/// async fn nested(db: &mut SqlxSqliteSession) -> venomqa::Result<()> {
///     sqlx::query("CREATE TABLE t (v INTEGER)").execute(db.conn()).await.unwrap();
///     db.create_checkpoint("filled")?;
///     sqlx::query("INSERT INTO t VALUES (1)").execute(db.conn()).await.unwrap();
///     db.rollback("filled")?; // the row is gone, the table stays
///     let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(db.conn()).await.unwrap();
///     assert_eq!(n, 0);
///     Ok(())
/// }
/// nested().unwrap();
/// ```
pub type SqlxSqliteSession = crate::Session<SqlxSqliteStateManager>;

impl SqlxSqlite {
    /// The backend for `url` (`sqlite::memory:`, `sqlite://app.db`), default options.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::build(
            &BackendConfig::new(NAME).with_url(url),
            SqlxOptions::default(),
        )
    }

    fn build(config: &BackendConfig, options: SqlxOptions) -> Result<Self> {
        let core = Core::new(config, options, DEFAULT_URL);
        let url = core.url.expose();
        let memory = matches!(url, "sqlite::memory:" | "sqlite://:memory:" | ":memory:")
            || url.contains("mode=memory");
        let backend = SqlxSqlite { core, memory };
        backend.options()?;
        Ok(backend)
    }

    fn private_databases(&self) -> bool {
        self.memory
    }

    fn default_pool_size(&self) -> usize {
        if self.memory {
            test_threads()
        } else {
            1
        }
    }
}

impl Dialect for SqlxSqlite {
    type Db = Sqlite;

    fn core(&self) -> &Core {
        &self.core
    }

    /// Parsed for each connection: sqlx names each parsed `sqlite::memory:` database
    /// anew, which is what keeps every connection's database private.
    fn options(&self) -> Result<SqliteConnectOptions> {
        let url = self.core.url.expose();
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite:{url}")
        };
        SqliteConnectOptions::from_str(&url)
            .map(|o| o.create_if_missing(true))
            .map_err(|e| Error::connect(NAME, &url, e))
    }

    /// IMMEDIATE on a shared file takes the write lock at once, so two sessions wait for
    /// each other there instead of failing on a lock upgrade later.
    fn begin_sql(&self) -> &'static str {
        if self.memory {
            "BEGIN; SAVEPOINT venomqa_root"
        } else {
            "BEGIN IMMEDIATE; SAVEPOINT venomqa_root"
        }
    }

    /// A `ROLLBACK` with no transaction fails on SQLite: it is its own proof.
    fn end_sql(&self) -> Option<&'static str> {
        None
    }

    /// sqlx's migrator locks nothing on SQLite: on a file, processes that start at once
    /// (nextest) take turns through a lock file next to it, so each migration runs once.
    fn migration_lock(&self) -> Result<Option<std::fs::File>> {
        if self.memory {
            return Ok(None);
        }
        let mut path = self.options()?.get_filename().as_os_str().to_owned();
        path.push(".venomqa-migrate-lock");
        super::file_lock::lock_file(NAME, std::path::Path::new(&path)).map(Some)
    }

    /// A ping goes through the worker's queue: once it is answered, what code under test
    /// queued before it (a dropped `Transaction`'s rollback) has run.
    fn settle(conn: &mut SqliteConnection) -> std::result::Result<(), ::sqlx::Error> {
        crate::runtime::block_on(::sqlx::Connection::ping(conn))
    }

    fn gone(error: &dyn DatabaseError) -> bool {
        let message = error.message();
        message.contains("no such savepoint") || message.contains("no transaction is active")
    }

    fn lost(_: &dyn DatabaseError) -> bool {
        false
    }
}

super::macros::sqlx_backend!(SqlxSqlite, Sqlite, SqlxSqliteSession);
