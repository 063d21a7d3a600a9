//! The embedded default backend: SQLite through `rusqlite` (bundled, no server needed).
//!
//! Isolation is a transaction per test with a SAVEPOINT per checkpoint. URLs:
//!
//! | URL | database |
//! |---|---|
//! | none, `sqlite::memory:`, `:memory:` | a private in-memory database per connection (the default): tests run in parallel, and the setup step runs on every new connection |
//! | `sqlite://path/to/app.db`, `sqlite:///abs/app.db`, `sqlite:app.db`, `app.db` | a file shared by every connection: tests that use it take turns (pool size 1, `BEGIN IMMEDIATE`, and a busy timeout for other processes) |
//!
//! Keys of its `venomqa.yaml` entry: see [`SqliteOptions`].

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;
use serde::Deserialize;

use crate::backend::Backend;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::registry::test_threads;
use crate::sql::quote_double;
use crate::state::Manager;

const NAME: &str = "sqlite";

/// The busy timeout unless `busy_timeout_ms` says otherwise.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The SQLite backend's [`StateManager`](crate::StateManager).
pub type SqliteStateManager = Manager<Sqlite>;

/// A session on the SQLite backend; [`conn`](crate::Session::conn) gives the test the
/// `rusqlite::Connection` its changes must go through.
pub type SqliteSession = crate::Session<SqliteStateManager>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Memory,
    File(PathBuf),
}

fn parse_target(url: &str) -> Target {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    match rest {
        "" | ":memory:" | "memory:" => Target::Memory,
        path => Target::File(PathBuf::from(path)),
    }
}

/// The keys of a `sqlite` entry in `venomqa.yaml`, besides the common ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Tables `reset()` empties (default: every table).
    pub tables_to_reset: Vec<String>,
    /// Tables `reset()` never touches.
    pub exclude_tables: Vec<String>,
    /// How long a connection waits for another process's write lock on a file database
    /// (default [`DEFAULT_BUSY_TIMEOUT`]).
    pub busy_timeout_ms: Option<u64>,
}

/// The SQLite backend: a transaction per test and a SAVEPOINT per checkpoint on one
/// `rusqlite::Connection`.
///
/// ```
/// use venomqa::{sqlite::Sqlite, Manager, StateManager};
///
/// let mut db = Manager::open(Sqlite::from_url("sqlite::memory:")?)?;
/// db.connection()?.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)").unwrap();
/// db.checkpoint("start")?;
/// db.connection()?.execute("DELETE FROM t", []).unwrap();
/// db.rollback("start")?;
/// let n: i64 = db.connection()?.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(n, 1);
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sqlite {
    url: SecretUrl,
    target: Target,
    options: SqliteOptions,
}

impl Sqlite {
    /// The backend for `url` (see the [module docs](self) for URL forms), default options.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            SqliteOptions::default(),
        )
    }

    /// Tables `reset()` empties (default: every table).
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches.
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Whether this backend's databases are private in-memory ones.
    pub fn is_memory(&self) -> bool {
        self.target == Target::Memory
    }

    fn busy_timeout(&self) -> Duration {
        self.options
            .busy_timeout_ms
            .map_or(DEFAULT_BUSY_TIMEOUT, Duration::from_millis)
    }

    fn table_names(conn: &Connection) -> Result<Vec<String>> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .map_err(|e| Error::backend(NAME, "listing tables", e))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::backend(NAME, "listing tables", e))?;
        Ok(names)
    }
}

/// Runs SQL as one batch. A savepoint that is gone means the code under test ended the
/// transaction and began another: that is reported as lost state, not as a driver error.
fn batch(conn: &Connection, operation: impl FnOnce() -> String, sql: &str) -> Result<()> {
    conn.execute_batch(sql).map_err(|e| {
        if e.to_string().contains("no such savepoint") {
            // End the stray transaction too.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Error::state_lost(
                NAME,
                format!("{} found its savepoint gone: the code under test ran COMMIT, ROLLBACK or END and then BEGIN, so what it wrote before was committed or lost; remove the transaction control from the test", operation()),
            )
        } else {
            Error::backend(NAME, operation(), e)
        }
    })
}

/// The transaction ended although checkpoints are active: a COMMIT, ROLLBACK or END ran
/// inside the test, so there is nothing left to roll back to.
fn check_transaction(conn: &Connection) -> Result<()> {
    if conn.is_autocommit() {
        return Err(Error::state_lost(
            NAME,
            "the transaction holding the checkpoints has ended: the code under test ran COMMIT, ROLLBACK or END, so its changes were committed or lost; remove the transaction control from the test",
        ));
    }
    Ok(())
}

impl Backend for Sqlite {
    const NAME: &'static str = NAME;
    type Options = SqliteOptions;
    type Conn = Connection;
    type Mark = ();

    fn new(config: &BackendConfig, options: SqliteOptions) -> Result<Self> {
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from("sqlite::memory:"));
        Ok(Sqlite {
            target: parse_target(url.expose()),
            url,
            options,
        })
    }

    fn connect(&self) -> Result<Connection> {
        let url = self.url.expose();
        let conn = match &self.target {
            Target::Memory => Connection::open_in_memory(),
            Target::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| Error::connect(NAME, url, e))?;
                }
                Connection::open(path)
            }
        }
        .map_err(|e| Error::connect(NAME, url, e))?;
        conn.busy_timeout(self.busy_timeout())
            .map_err(|e| Error::connect(NAME, url, e))?;
        if let Target::File(_) = self.target {
            // WAL lets readers of other processes proceed while a test holds the write lock.
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .map_err(|e| Error::connect(NAME, url, e))?;
        }
        Ok(conn)
    }

    /// A connection is handed out only outside a transaction, after a `SELECT 1`.
    fn recycle(&self, conn: &mut Connection) -> Result<()> {
        if !conn.is_autocommit() {
            return Err(Error::state_lost(
                NAME,
                "the connection is still inside a transaction",
            ));
        }
        conn.query_row("SELECT 1", [], |_| Ok(()))
            .map_err(|e| Error::backend(NAME, "the health check", e))
    }

    fn checkpoint(&self, conn: &mut Connection, at: Point<'_>) -> Result<()> {
        let savepoint = quote_double(NAME, at.name())?;
        let sql = if at.is_outermost() {
            // IMMEDIATE takes the write lock now, so two tests on one file wait for each
            // other here instead of deadlocking on a lock upgrade later.
            let begin = if self.is_memory() {
                "BEGIN"
            } else {
                "BEGIN IMMEDIATE"
            };
            format!("{begin}; SAVEPOINT {savepoint}")
        } else {
            check_transaction(conn)?;
            format!("SAVEPOINT {savepoint}")
        };
        batch(conn, || format!("checkpoint {:?}", at.name()), &sql)
    }

    fn rollback(&self, conn: &mut Connection, at: Point<'_>, _: &()) -> Result<()> {
        check_transaction(conn)?;
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_double(NAME, at.name())?);
        batch(
            conn,
            || format!("rollback to checkpoint {:?}", at.name()),
            &sql,
        )
    }

    fn release(&self, conn: &mut Connection, at: Point<'_>, _: &()) -> Result<()> {
        check_transaction(conn)?;
        let sql = if at.is_outermost() {
            "COMMIT".to_owned()
        } else {
            format!("RELEASE SAVEPOINT {}", quote_double(NAME, at.name())?)
        };
        batch(
            conn,
            || format!("release of checkpoint {:?}", at.name()),
            &sql,
        )
    }

    fn discard(&self, conn: &mut Connection, at: Point<'_>, _: &()) -> Result<()> {
        check_transaction(conn)?;
        let q = quote_double(NAME, at.name())?;
        // For the outermost checkpoint, the ROLLBACK TO first proves the transaction is
        // still ours (a bare ROLLBACK would also end one the test began itself).
        let sql = if at.is_outermost() {
            format!("ROLLBACK TO SAVEPOINT {q}; ROLLBACK")
        } else {
            format!("ROLLBACK TO SAVEPOINT {q}; RELEASE SAVEPOINT {q}")
        };
        batch(
            conn,
            || format!("rollback of checkpoint {:?}", at.name()),
            &sql,
        )
    }

    /// Empties `tables_to_reset` (default: every table) except `exclude_tables`, in one
    /// transaction with foreign keys deferred, and resets their AUTOINCREMENT counters.
    /// An open transaction is rolled back first. On error nothing changes.
    fn reset(&self, conn: &mut Connection) -> Result<()> {
        if !conn.is_autocommit() {
            batch(
                conn,
                || "ending the open transaction before reset".into(),
                "ROLLBACK",
            )?;
        }
        let tables: Vec<String> = if self.options.tables_to_reset.is_empty() {
            Self::table_names(conn)?
        } else {
            self.options.tables_to_reset.clone()
        }
        .into_iter()
        .filter(|t| !self.options.exclude_tables.contains(t))
        .collect();
        let mut sql = String::from("BEGIN IMMEDIATE; PRAGMA defer_foreign_keys = ON;");
        for table in &tables {
            sql.push_str(&format!(" DELETE FROM {};", quote_double(NAME, table)?));
        }
        let has_sequence: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| Error::backend(NAME, "reset", e))?;
        if has_sequence && !tables.is_empty() {
            let list: Vec<String> = tables
                .iter()
                .map(|t| format!("'{}'", t.replace('\'', "''")))
                .collect();
            sql.push_str(&format!(
                " DELETE FROM sqlite_sequence WHERE name IN ({});",
                list.join(", ")
            ));
        }
        sql.push_str(" COMMIT;");
        if let Err(e) = conn.execute_batch(&sql) {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(Error::backend(
                NAME,
                format!("reset of tables {tables:?}"),
                e,
            ));
        }
        Ok(())
    }

    fn execute_script(&self, conn: &mut Connection, script: &str) -> Result<()> {
        batch(conn, || "a setup script".into(), script)
    }

    fn setup_per_connection(&self) -> bool {
        self.is_memory()
    }

    fn pool_size(&self) -> usize {
        match self.target {
            Target::Memory => test_threads(),
            Target::File(_) => 1,
        }
    }

    fn close(&self, conn: Connection) -> Result<()> {
        conn.close()
            .map_err(|(_, e)| Error::backend(NAME, "closing the connection", e))
    }
}

impl crate::Session<SqliteStateManager> {
    /// The test's `rusqlite::Connection`: run the code under test through it.
    pub fn conn(&self) -> &Connection {
        self.connection_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        for url in ["", "sqlite::memory:", ":memory:", "sqlite://:memory:"] {
            assert_eq!(parse_target(url), Target::Memory, "{url}");
        }
        assert_eq!(
            parse_target("sqlite:///tmp/a.db"),
            Target::File("/tmp/a.db".into())
        );
        assert_eq!(
            parse_target("sqlite://rel/a.db"),
            Target::File("rel/a.db".into())
        );
        assert_eq!(parse_target("sqlite:a.db"), Target::File("a.db".into()));
        assert_eq!(parse_target("a.db"), Target::File("a.db".into()));
    }
}
