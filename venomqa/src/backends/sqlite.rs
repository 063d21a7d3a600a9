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

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::types::Value;
use rusqlite::Connection;
use serde::Deserialize;

use crate::backend::Backend;
use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::redact::SecretUrl;
use crate::sql::quote_double;
use crate::util::test_threads;

const NAME: &str = "sqlite";

/// The busy timeout unless `busy_timeout_ms` says otherwise.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The SQLite backend's [`StateManager`](crate::StateManager).
pub type SqliteStateManager = Manager<Sqlite>;

/// A session on the SQLite backend; [`conn`](crate::Session::conn) gives the test the
/// `rusqlite::Connection` its changes must go through.
pub type SqliteSession = crate::Session<SqliteStateManager>;

capture_backend! {
    /// SQLite on a file with capture isolation (`isolation: capture`): what other
    /// connections and processes write to the file is rolled back. The [`Sqlite`]
    /// backend's URL, options and connections.
    SqliteCapture(Sqlite), SqliteCaptureStateManager, SqliteCaptureSession,
    is_capture: |b| b.capture(),
    wanted: |o: SqliteOptions| o.isolation == SqliteIsolation::Capture,
}

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
    /// How a test's changes are isolated (default [`SqliteIsolation::Transaction`]).
    pub isolation: SqliteIsolation,
}

/// How the SQLite backend isolates a test's changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SqliteIsolation {
    /// A transaction per test and a SAVEPOINT per checkpoint on the test's connection: only
    /// what goes through that connection is rolled back (the default).
    #[default]
    Transaction,
    /// Snapshots of a file database through SQLite's online backup API: a checkpoint
    /// copies the database into memory, a rollback copies it back, so whatever any
    /// connection of any process wrote to the file is undone, schema and AUTOINCREMENT
    /// counters included. Needs a file URL; the code under test connects to
    /// [`Session::url`](crate::Session::url). Sessions on one file take turns, across
    /// processes too (a lock file next to the database).
    Capture,
}

/// A checkpoint of the SQLite backend: a savepoint, or a snapshot of the database.
pub struct SqliteMark(MarkKind);

enum MarkKind {
    Savepoint,
    Snapshot {
        /// An in-memory database (shared cache, so a diff can attach it by name).
        copy: Connection,
        name: String,
        /// Held by the outermost checkpoint: sessions on the same file take turns.
        _lock: Option<LiveLock>,
    },
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

    fn capture(&self) -> bool {
        self.options.isolation == SqliteIsolation::Capture
    }

    fn busy_timeout(&self) -> Duration {
        self.options
            .busy_timeout_ms
            .map_or(DEFAULT_BUSY_TIMEOUT, Duration::from_millis)
    }

    /// A capture checkpoint: waits for writers, copies the database into memory. The
    /// outermost one first takes the file's lock, so sessions on it take turns.
    fn snapshot(&self, conn: &mut Connection, at: Point<'_>) -> Result<SqliteMark> {
        let lock = if at.is_outermost() {
            Some(self.lock_file()?)
        } else {
            None
        };
        // No write transaction of another connection is open once we hold the write lock.
        batch(
            conn,
            || "waiting for other writers".into(),
            "BEGIN IMMEDIATE; ROLLBACK",
        )?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "venomqa_snapshot_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut copy = Connection::open(format!("file:{name}?mode=memory&cache=shared"))
            .map_err(|e| Error::backend(NAME, "opening a snapshot", e))?;
        copy_database(conn, &mut copy, self.busy_timeout())
            .map_err(|e| Error::backend(NAME, format!("checkpoint {:?}", at.name()), e))?;
        Ok(SqliteMark(MarkKind::Snapshot {
            copy,
            name,
            _lock: lock,
        }))
    }

    /// A capture rollback: copies the snapshot back over the file, whatever wrote to it.
    fn restore(&self, copy: &Connection, conn: &mut Connection, at: Point<'_>) -> Result<()> {
        if !conn.is_autocommit() {
            // The test's own connection left a transaction open: end it first.
            batch(
                conn,
                || "ending the test's open transaction".into(),
                "ROLLBACK",
            )?;
        }
        copy_database(copy, conn, self.busy_timeout())
            .map_err(|e| Error::backend(NAME, format!("rollback to checkpoint {:?}", at.name()), e))
    }

    /// The lock file next to the database, locked: the outermost capture checkpoint holds
    /// it, so sessions of every process on this file take turns. While held it says which
    /// process holds it; a session that ends empties it. A lock file that still names a
    /// process when the next session takes it was held by a session whose process died
    /// mid-test: its writes may still be in the file, and SQLite capture keeps its
    /// checkpoints in memory, so they died with it. That session refuses, naming the way
    /// out, rather than start on that data.
    fn lock_file(&self) -> Result<LiveLock> {
        let Target::File(path) = &self.target else {
            unreachable!("capture needs a file; checked in new()")
        };
        let lock_path = lock_path(path);
        let mut file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::backend(NAME, format!("opening {}", lock_path.display()), e))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < Duration::from_secs(300) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::backend(
                        NAME,
                        format!("locking {}", lock_path.display()),
                        "another session held the database for 300 s; look for a test that never finishes",
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::backend(NAME, format!("locking {}", lock_path.display()), e))
                }
            }
        }
        let io =
            |e: std::io::Error| Error::backend(NAME, format!("writing {}", lock_path.display()), e);
        let mut held = String::new();
        file.read_to_string(&mut held).map_err(io)?;
        if let Some(pid) = held.trim().strip_prefix("pid ") {
            return Err(Error::backend(
                NAME,
                format!("checkpoint of {}", path.display()),
                format!("a capture session of process {pid} ended without rolling back (the process died mid-test), so the file may keep its writes, and SQLite capture's checkpoints died with it; re-create the file (its setup), then delete {}; worker databases (workers:) are re-created by themselves", lock_path.display()),
            ));
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(format!("pid {}\n", std::process::id()).as_bytes())
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(LiveLock(file))
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

/// The held lock file of a capture session: emptied when the session ends, so that what is
/// left in it names a session that died.
struct LiveLock(File);

impl Drop for LiveLock {
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}

/// Whether the database at `path` was left by a capture session whose process died: its
/// lock file still names a process, and no session holds the lock now.
pub(crate) fn left_by_a_dead_session(path: &Path) -> bool {
    let Ok(mut file) = File::options().read(true).write(true).open(lock_path(path)) else {
        return false;
    };
    if file.try_lock().is_err() {
        return false;
    }
    let mut held = String::new();
    file.read_to_string(&mut held).is_ok() && held.starts_with("pid ")
}

/// The lock file of the database at `path`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".venomqa-lock");
    PathBuf::from(name)
}

/// Copies the whole database of `from` over `to` with the online backup API, retrying
/// while the destination is busy, for at most `timeout`.
fn copy_database(
    from: &Connection,
    to: &mut Connection,
    timeout: Duration,
) -> rusqlite::Result<()> {
    let started = Instant::now();
    let backup = Backup::new(from, to)?;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(2));
            }
            StepResult::Busy | StepResult::Locked => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some(format!(
                        "the database stayed locked by another connection for {} ms",
                        timeout.as_millis()
                    )),
                ))
            }
            _ => {}
        }
    }
}

/// How many changed rows of each table a diff lists.
const DIFF_ROWS: usize = 20;

/// What changed in `conn`'s database since the snapshot named `snapshot`, row by row.
fn diff(conn: &Connection, snapshot: &str) -> Result<Diff> {
    let failed = |e: rusqlite::Error| Error::backend(NAME, "diff", e);
    conn.execute(
        "ATTACH DATABASE ?1 AS venomqa_snapshot",
        [format!("file:{snapshot}?mode=memory&cache=shared")],
    )
    .map_err(failed)?;
    let result = diff_attached(conn);
    let _ = conn.execute_batch("DETACH DATABASE venomqa_snapshot");
    result
}

fn diff_attached(conn: &Connection) -> Result<Diff> {
    let failed = |e: rusqlite::Error| Error::backend(NAME, "diff", e);
    let names = |schema: &str| -> Result<Vec<String>> {
        let sql = format!("SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
        let mut stmt = conn.prepare(&sql).map_err(failed)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(failed)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(failed)
    };
    let (then, now) = (names("venomqa_snapshot")?, names("main")?);
    let mut tables = Vec::new();
    for table in now.iter().filter(|t| then.contains(t)) {
        tables.push(table_diff(conn, table)?);
    }
    for table in now.iter().filter(|t| !then.contains(t)) {
        let mut created = TableDiff::new(table.clone());
        let rows: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM main.{}", quote_double(NAME, table)?),
                [],
                |r| r.get(0),
            )
            .map_err(failed)?;
        for i in 0..rows.max(1) {
            created.push(
                RowChange::new(
                    ChangeKind::Inserted,
                    format!("row {} (table created)", i + 1),
                ),
                1,
            );
        }
        tables.push(created);
    }
    for table in then.iter().filter(|t| !now.contains(t)) {
        let mut dropped = TableDiff::new(table.clone());
        dropped.push(RowChange::new(ChangeKind::Deleted, "table dropped"), 1);
        tables.push(dropped);
    }
    Ok(Diff::from_tables(tables))
}

fn table_diff(conn: &Connection, table: &str) -> Result<TableDiff> {
    let failed = |e: rusqlite::Error| Error::backend(NAME, format!("diff of {table}"), e);
    let t = quote_double(NAME, table)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT name, pk FROM main.pragma_table_info({})",
            lit(table)
        ))
        .map_err(failed)?;
    let info: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(failed)?;
    let columns: Vec<String> = info.iter().map(|(n, _)| n.clone()).collect();
    let mut pk: Vec<(i64, String)> = info
        .iter()
        .filter(|(_, k)| *k > 0)
        .map(|(n, k)| (*k, n.clone()))
        .collect();
    pk.sort();
    let key: Vec<String> = if pk.is_empty() {
        vec!["rowid".to_owned()]
    } else {
        pk.into_iter().map(|(_, n)| n).collect()
    };
    let quoted = |names: &[String], alias: &str| -> Result<String> {
        Ok(names
            .iter()
            .map(|n| {
                Ok(format!(
                    "{alias}.{}",
                    if n == "rowid" {
                        n.clone()
                    } else {
                        quote_double(NAME, n)?
                    }
                ))
            })
            .collect::<Result<Vec<_>>>()?
            .join(", "))
    };
    let (km, ks, cm, cs) = (
        quoted(&key, "m")?,
        quoted(&key, "s")?,
        quoted(&columns, "m")?,
        quoted(&columns, "s")?,
    );
    let sql = format!(
        "SELECT 'I', {km}, NULL FROM main.{t} m WHERE NOT EXISTS (SELECT 1 FROM venomqa_snapshot.{t} s WHERE ({ks}) = ({km}))
         UNION ALL SELECT 'D', {ks}, NULL FROM venomqa_snapshot.{t} s WHERE NOT EXISTS (SELECT 1 FROM main.{t} m WHERE ({km}) = ({ks}))
         UNION ALL SELECT 'U', {km}, NULL FROM main.{t} m JOIN venomqa_snapshot.{t} s ON ({ks}) = ({km}) WHERE ({cm}) IS NOT ({cs})"
    );
    let mut stmt = conn.prepare(&sql).map_err(failed)?;
    let n = key.len();
    let rows: Vec<(String, Vec<Value>)> = stmt
        .query_map([], |r| {
            let keys = (0..n)
                .map(|i| r.get::<_, Value>(i + 1))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((r.get(0)?, keys))
        })
        .and_then(|rows| rows.collect())
        .map_err(failed)?;
    let mut diff = TableDiff::new(table);
    let cond = key
        .iter()
        .map(|k| {
            Ok(format!(
                "{} = ?",
                if k == "rowid" {
                    k.clone()
                } else {
                    quote_double(NAME, k)?
                }
            ))
        })
        .collect::<Result<Vec<_>>>()?
        .join(" AND ");
    let row_of = |schema: &str, keys: &[Value]| -> Result<Vec<Value>> {
        conn.query_row(
            &format!(
                "SELECT {} FROM {schema}.{t} AS x WHERE {cond}",
                quoted(&columns, "x")?
            ),
            rusqlite::params_from_iter(keys.iter()),
            |r| (0..columns.len()).map(|i| r.get::<_, Value>(i)).collect(),
        )
        .map_err(failed)
    };
    for (op, keys) in rows {
        let key_text = key
            .iter()
            .zip(&keys)
            .map(|(k, v)| format!("{k}={}", show(v)))
            .collect::<Vec<_>>()
            .join(",");
        let kind = match op.as_str() {
            "I" => ChangeKind::Inserted,
            "D" => ChangeKind::Deleted,
            _ => ChangeKind::Updated,
        };
        let mut change = RowChange::new(kind, key_text);
        if kind == ChangeKind::Updated && diff.rows.len() < DIFF_ROWS {
            let (then, now) = (row_of("venomqa_snapshot", &keys)?, row_of("main", &keys)?);
            for (i, c) in columns.iter().enumerate() {
                if then[i] != now[i] {
                    change.columns.push(ColumnChange::new(
                        c.clone(),
                        show(&then[i]),
                        show(&now[i]),
                    ));
                }
            }
        }
        diff.push(change, DIFF_ROWS);
    }
    Ok(diff)
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => format!(
            "x'{}'",
            b.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

/// An SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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
    type Mark = SqliteMark;

    fn new(config: &BackendConfig, options: SqliteOptions) -> Result<Self> {
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from("sqlite::memory:"));
        let target = parse_target(url.expose());
        if options.isolation == SqliteIsolation::Capture && target == Target::Memory {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.isolation", config.entry),
                "capture needs a database file that other connections can open; give the entry a file URL such as sqlite://target/app.db",
            ));
        }
        Ok(Sqlite {
            target,
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

    fn checkpoint(&self, conn: &mut Connection, at: Point<'_>) -> Result<SqliteMark> {
        if self.capture() {
            return self.snapshot(conn, at);
        }
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
        batch(conn, || format!("checkpoint {:?}", at.name()), &sql)?;
        Ok(SqliteMark(MarkKind::Savepoint))
    }

    fn rollback(&self, conn: &mut Connection, at: Point<'_>, mark: &SqliteMark) -> Result<()> {
        if let MarkKind::Snapshot { copy, .. } = &mark.0 {
            return self.restore(copy, conn, at);
        }
        check_transaction(conn)?;
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_double(NAME, at.name())?);
        batch(
            conn,
            || format!("rollback to checkpoint {:?}", at.name()),
            &sql,
        )
    }

    fn release(&self, conn: &mut Connection, at: Point<'_>, mark: &SqliteMark) -> Result<()> {
        if let MarkKind::Snapshot { .. } = mark.0 {
            return Ok(());
        }
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

    fn discard(&self, conn: &mut Connection, at: Point<'_>, mark: &SqliteMark) -> Result<()> {
        if let MarkKind::Snapshot { copy, .. } = &mark.0 {
            return self.restore(copy, conn, at);
        }
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

    fn captures(&self, _: &Connection) -> bool {
        self.capture()
    }

    fn url(&self, _: &Connection) -> Result<SecretUrl> {
        if self.capture() {
            Ok(self.url.clone())
        } else {
            Err(Error::unsupported(
                NAME,
                "a URL for other connections",
                "the test's changes live in its own connection's transaction, which other connections do not see; use `isolation: capture` with a file URL",
            ))
        }
    }

    fn diff(&self, conn: &mut Connection, at: Point<'_>, mark: &SqliteMark) -> Result<Diff> {
        match &mark.0 {
            MarkKind::Snapshot { name, .. } => diff(conn, name),
            MarkKind::Savepoint => Err(Error::unsupported(
                NAME,
                format!("diff() since checkpoint {:?}", at.name()),
                "only capture isolation keeps a copy to compare with; use `isolation: capture`",
            )),
        }
    }

    fn close(&self, conn: Connection) -> Result<()> {
        conn.close()
            .map_err(|(_, e)| Error::backend(NAME, "closing the connection", e))
    }
}

/// What a session of either backend (SqliteStateManager or SqliteCaptureStateManager) reaches.
macro_rules! session_api {
    ($manager:ty) => {
        impl crate::Session<$manager> {
            /// The test's `rusqlite::Connection`: run the code under test through it.
            pub fn conn(&self) -> &Connection {
                self.connection_ref()
            }
        }
    };
}

session_api!(SqliteStateManager);
session_api!(SqliteCaptureStateManager);

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
