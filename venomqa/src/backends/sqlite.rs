//! The embedded default backend: SQLite through `rusqlite` (bundled, no server needed).
//!
//! Isolation is a transaction per test with a SAVEPOINT per checkpoint. URLs:
//!
//! | URL | database |
//! |---|---|
//! | none, `sqlite::memory:`, `:memory:` | a private in-memory database per connection (the default): tests run in parallel, and the setup step runs on every new connection |
//! | `sqlite://path/to/app.db`, `sqlite:///abs/app.db`, `sqlite:app.db`, `app.db` | a file shared by every connection: tests that use it take turns (pool size 1, `BEGIN IMMEDIATE`, and a busy timeout for other processes) |
//!
//! Options (`options:` in `venomqa.yaml`): `busy_timeout_ms` (default 60000).

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;

use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::registry::{test_threads, Backend};
use crate::sql::quote_double;
use crate::state::{BaseStateManager, StateManager};

const NAME: &str = "sqlite";

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

/// SQLite state manager: transaction + SAVEPOINT isolation on one `rusqlite::Connection`.
///
/// ```
/// use venomqa::{sqlite::SqliteStateManager, StateManager};
///
/// let mut db = SqliteStateManager::new("sqlite::memory:");
/// db.connect()?;
/// db.conn().execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)").unwrap();
/// db.checkpoint("start")?;
/// db.conn().execute("DELETE FROM t", []).unwrap();
/// db.rollback("start")?;
/// let n: i64 = db.conn().query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(n, 1);
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug)]
pub struct SqliteStateManager {
    base: BaseStateManager,
    target: Target,
    conn: Option<Connection>,
    tables_to_reset: Vec<String>,
    exclude_tables: Vec<String>,
    busy_timeout: Duration,
}

impl SqliteStateManager {
    /// A disconnected manager for `url` (see the [module docs](self) for URL forms).
    pub fn new(url: &str) -> Self {
        SqliteStateManager {
            base: BaseStateManager::new(NAME, url),
            target: parse_target(url),
            conn: None,
            tables_to_reset: Vec::new(),
            exclude_tables: Vec::new(),
            busy_timeout: Duration::from_secs(60),
        }
    }

    /// A disconnected manager from a resolved configuration entry.
    pub fn from_config(config: &BackendConfig) -> Result<Self> {
        let mut m = Self::new(config.url_or("sqlite::memory:"));
        m.tables_to_reset.clone_from(&config.tables_to_reset);
        m.exclude_tables.clone_from(&config.exclude_tables);
        if let Some(ms) = config.option_parsed::<u64>("busy_timeout_ms")? {
            m.busy_timeout = Duration::from_millis(ms);
        }
        Ok(m)
    }

    /// Tables `reset()` empties (default: every table).
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches.
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Whether this manager's database is a private in-memory one.
    pub fn is_memory(&self) -> bool {
        self.target == Target::Memory
    }

    /// The native connection.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_conn`](Self::try_conn) returns an error instead.
    pub fn conn(&self) -> &Connection {
        self.try_conn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The native connection, or [`Error::NotConnected`].
    pub fn try_conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(|| Error::NotConnected {
            backend: NAME.into(),
        })
    }

    /// Runs SQL as one batch, mapping errors to [`Error::Backend`].
    fn batch(conn: &Connection, operation: impl FnOnce() -> String, sql: &str) -> Result<()> {
        conn.execute_batch(sql).map_err(|e| {
            if e.to_string().contains("no such savepoint") {
                // The code under test ended our transaction and began another one: what it
                // did before that is committed. End the stray transaction too.
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Error::StateLost {
                    backend: NAME.into(),
                    message: format!(
                        "{} found its savepoint gone: the code under test ran COMMIT/ROLLBACK/END and then                          BEGIN, so what it wrote before that was committed or lost. Remove the explicit                          transaction control from the test, or use savepoints instead",
                        operation()
                    ),
                }
            } else {
                Error::backend(NAME, operation(), e)
            }
        })
    }

    /// The transaction ended although checkpoints are active: a COMMIT, ROLLBACK or END
    /// ran inside the test, so there is nothing left to roll back to.
    fn check_transaction(conn: &Connection, active: bool) -> Result<()> {
        if active && conn.is_autocommit() {
            return Err(Error::StateLost {
                backend: NAME.into(),
                message: "the transaction the checkpoints live in has ended: the code under test ran COMMIT, \
                          ROLLBACK or END, so its changes were committed or lost. Remove the explicit \
                          transaction control from the test, or use savepoints instead"
                    .into(),
            });
        }
        Ok(())
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

impl StateManager for SqliteStateManager {
    fn connect(&mut self) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let url = self.base.url().to_owned();
        let conn = match &self.target {
            Target::Memory => Connection::open_in_memory(),
            Target::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::connection(
                            NAME,
                            &url,
                            format!("cannot create directory {}: {e}", dir.display()),
                        )
                    })?;
                }
                Connection::open(path)
            }
        }
        .map_err(|e| Error::connection(NAME, &url, e))?;
        conn.busy_timeout(self.busy_timeout)
            .map_err(|e| Error::connection(NAME, &url, e))?;
        if let Target::File(_) = self.target {
            // WAL lets readers of other processes proceed while a test holds the write lock.
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .map_err(|e| Error::connection(NAME, &url, e))?;
        }
        self.conn = Some(conn);
        self.base.set_connected(true);
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        self.base.set_connected(false);
        if let Some(conn) = self.conn.take() {
            conn.close()
                .map_err(|(_, e)| Error::backend(NAME, "closing the connection", e))?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let conn = self.conn.as_ref();
        let immediate = !self.is_memory();
        self.base.checkpoint(name, |name, active| {
            let conn = conn.expect("connected");
            let savepoint = quote_double(NAME, name)?;
            let sql = if active.is_empty() {
                // IMMEDIATE takes the write lock now, so two tests on one file wait for
                // each other here instead of deadlocking on a lock upgrade later.
                let begin = if immediate {
                    "BEGIN IMMEDIATE"
                } else {
                    "BEGIN"
                };
                format!("{begin}; SAVEPOINT {savepoint}")
            } else {
                Self::check_transaction(conn, true)?;
                format!("SAVEPOINT {savepoint}")
            };
            Self::batch(conn, || format!("checkpoint {name:?}"), &sql)
        })
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let conn = self.conn.as_ref();
        self.base.rollback(name, |_, _| {
            let conn = conn.expect("connected");
            Self::check_transaction(conn, true)?;
            let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_double(NAME, name)?);
            Self::batch(conn, || format!("rollback to checkpoint {name:?}"), &sql)
        })
    }

    fn release(&mut self, name: &str) -> Result<()> {
        let conn = self.conn.as_ref();
        self.base.release(name, |index, _| {
            let conn = conn.expect("connected");
            Self::check_transaction(conn, true)?;
            let sql = if index == 0 {
                "COMMIT".to_owned()
            } else {
                format!("RELEASE SAVEPOINT {}", quote_double(NAME, name)?)
            };
            Self::batch(conn, || format!("release checkpoint {name:?}"), &sql)
        })
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        let conn = self.conn.as_ref();
        self.base.discard(name, |index, _| {
            let conn = conn.expect("connected");
            Self::check_transaction(conn, true)?;
            let q = quote_double(NAME, name)?;
            // For the outermost checkpoint, the ROLLBACK TO first proves the transaction is
            // still ours (a bare ROLLBACK would also end one the test began itself).
            let sql = if index == 0 {
                format!("ROLLBACK TO SAVEPOINT {q}; ROLLBACK")
            } else {
                format!("ROLLBACK TO SAVEPOINT {q}; RELEASE SAVEPOINT {q}")
            };
            Self::batch(conn, || format!("discard checkpoint {name:?}"), &sql)
        })
    }

    /// Empties `tables_to_reset` (default: every table) except `exclude_tables`, in one
    /// transaction with foreign keys deferred, and resets their AUTOINCREMENT counters.
    /// An open transaction is rolled back first. On error nothing changes.
    fn reset(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        let conn = self.conn.as_ref().expect("connected");
        if !conn.is_autocommit() {
            Self::batch(
                conn,
                || "ending the open transaction before reset".into(),
                "ROLLBACK",
            )?;
        }
        self.base.clear_checkpoints();
        let tables: Vec<String> = if self.tables_to_reset.is_empty() {
            Self::table_names(conn)?
        } else {
            self.tables_to_reset.clone()
        }
        .into_iter()
        .filter(|t| !self.exclude_tables.contains(t))
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

    fn is_connected(&self) -> bool {
        self.base.is_connected() && self.conn.is_some()
    }

    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }

    fn health_check(&mut self) -> bool {
        match &self.conn {
            Some(conn) => {
                conn.is_autocommit() && conn.query_row("SELECT 1", [], |_| Ok(())).is_ok()
            }
            None => false,
        }
    }

    fn execute_script(&mut self, script: &str) -> Result<()> {
        let conn = self.try_conn()?;
        Self::batch(conn, || "running a setup script".into(), script)
    }

    fn setup_per_connection(&self) -> bool {
        self.is_memory()
    }
}

impl crate::Session<SqliteStateManager> {
    /// The test's `rusqlite::Connection`: run the code under test through it.
    pub fn conn(&self) -> &Connection {
        self.manager_ref().conn()
    }
}

pub(crate) fn backend() -> Backend {
    Backend::new(NAME, SqliteStateManager::from_config).default_pool_size_with(|config| {
        match parse_target(config.url_or("")) {
            Target::Memory => test_threads(),
            Target::File(_) => 1,
        }
    })
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
