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

use std::borrow::Cow;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use ::sqlx::error::DatabaseError;
use ::sqlx::migrate::Migrator;
use ::sqlx::{Connection, Database, Executor, TransactionManager};
use parking_lot::Mutex;
use serde::Deserialize;

use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::state::StateManager;

/// The sqlx crate venomqa is built with, so tests can name its types without depending on
/// a matching version.
pub use ::sqlx as driver;

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

/// How long a connection attempt may take unless `connect_timeout_ms` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The savepoint that the first checkpoint opens with the transaction, and that the last
/// rollback goes back to first, proving the transaction is still the test's.
const ROOT_SAVEPOINT: &str = "venomqa_root";

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

/// The runtime the sqlx connections are opened on: one per process, with a worker thread
/// whose I/O driver runs between tests, so a connection can be awaited from any runtime.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("venomqa-sqlx")
            .enable_all()
            .build()
            .expect("venomqa could not start the Tokio runtime of its sqlx connections (no thread could be spawned)")
    })
}

/// Wakes the thread blocked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on the calling thread, inside venomqa's sqlx runtime.
///
/// Works anywhere: in a sync test, in a setup function, and inside an `async fn` test (in a
/// checkpoint block, say), where Tokio's own `block_on` would panic. It blocks the
/// calling thread, so inside an `async fn` test prefer `.await`.
///
/// ```
/// # #[cfg(feature = "sqlx-sqlite")] {
/// use venomqa::sqlx::{block_on, SqlxSqliteSession};
///
/// #[venomqa::venom_test]
/// fn a_sync_test(db: &mut SqlxSqliteSession) {
///     block_on(sqlx::query("CREATE TABLE t (v INTEGER)").execute(db.conn())).unwrap();
///     db.checkpoint("empty", |db| {
///         block_on(sqlx::query("DROP TABLE t").execute(db.conn())).unwrap();
///     }).unwrap();
///     let n: i64 = block_on(sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(db.conn())).unwrap();
///     assert_eq!(n, 0); // the table is back
/// }
/// a_sync_test();
/// # }
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let _context = runtime().handle().enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

/// A setup function that runs `migrator` (from `sqlx::migrate!`) on the entry's database:
/// register it with [`register_setup!`](crate::register_setup). sqlx's migrator applies
/// only what `_sqlx_migrations` does not list, under a database lock, so it runs once per
/// database however many test processes start at once.
///
/// ```
/// # #[cfg(feature = "sqlx-sqlite")] {
/// use std::sync::LazyLock;
/// use sqlx::migrate::Migrator;
/// use venomqa::sqlx::{block_on, SqlxSqliteSession};
///
/// // In a test crate: static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
/// // here, a directory of one migration, read at run time.
/// static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
///     let dir = std::env::temp_dir().join(format!("vq_migrate_doc_{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     std::fs::write(dir.join("1_users.sql"), "CREATE TABLE users (email TEXT)").unwrap();
///     block_on(Migrator::new(dir)).unwrap()
/// });
/// venomqa::register_setup!("sqlx_sqlite", venomqa::sqlx::migrate(&MIGRATOR));
///
/// let mut db = SqlxSqliteSession::builder().open()?;
/// let users: i64 = block_on(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(db.conn())).unwrap();
/// assert_eq!(users, 0); // the table the migration created
/// # let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("vq_migrate_doc_{}", std::process::id())));
/// # }
/// # Ok::<(), venomqa::Error>(())
/// ```
///
/// A setup function of your own can call [`run_migrator`] instead.
pub fn migrate(
    migrator: &'static Migrator,
) -> impl Fn(&mut dyn StateManager) -> Result<()> + Send + Sync + 'static {
    move |manager: &mut dyn StateManager| run_migrator(manager, migrator)
}

/// Runs `migrator` on the connection of `manager`, an sqlx manager of any database.
/// Fails, saying so, for a manager of another backend.
pub fn run_migrator(manager: &mut dyn StateManager, migrator: &Migrator) -> Result<()> {
    #[cfg(feature = "sqlx-postgres")]
    if let Some(m) = manager.downcast_mut::<SqlxPostgresStateManager>() {
        let _lock = m.backend().migration_lock()?;
        return migrate_on::<SqlxPostgres>(m.connection()?, migrator);
    }
    #[cfg(feature = "sqlx-mysql")]
    if let Some(m) = manager.downcast_mut::<SqlxMySqlStateManager>() {
        let _lock = m.backend().migration_lock()?;
        return migrate_on::<SqlxMySql>(m.connection()?, migrator);
    }
    #[cfg(feature = "sqlx-sqlite")]
    if let Some(m) = manager.downcast_mut::<SqlxSqliteStateManager>() {
        let _lock = m.backend().migration_lock()?;
        return migrate_on::<SqlxSqlite>(m.connection()?, migrator);
    }
    let _ = migrator;
    Err(Error::unsupported(
        "this backend",
        "sqlx migrations",
        "register venomqa::sqlx::migrate for an sqlx entry (sqlx_postgres, sqlx_mysql, sqlx_sqlite, or an entry with one of them as its backend)",
    ))
}

/// What each database adds to the shared sqlx machinery.
pub(crate) trait Dialect: crate::Backend + Sized {
    /// sqlx's database.
    type Db: Database;

    /// The shared settings.
    fn core(&self) -> &Core;

    /// The connect options for one new connection.
    fn options(&self) -> Result<<<Self::Db as Database>::Connection as Connection>::Options>;

    /// What opens a test's transaction (the BEGIN and the root savepoint).
    fn begin_sql(&self) -> &'static str {
        "BEGIN; SAVEPOINT venomqa_root"
    }

    /// What the end of a test runs before its `ROLLBACK`, in one round trip; `None` where
    /// a `ROLLBACK` outside a transaction already fails (SQLite).
    fn end_sql(&self) -> Option<&'static str> {
        Some("ROLLBACK TO SAVEPOINT venomqa_root")
    }

    /// A lock held while migrations run, where sqlx's migrator takes none that other
    /// processes see (an SQLite file): sessions of every process take turns.
    fn migration_lock(&self) -> Result<Option<std::fs::File>> {
        Ok(None)
    }

    /// Makes sqlx's transaction depth current: SQLite's worker thread applies a dropped
    /// `Transaction`'s rollback (and its depth) only when it gets to it.
    fn settle(conn: &mut Conn<Self>) -> std::result::Result<(), ::sqlx::Error> {
        let _ = conn;
        Ok(())
    }

    /// Whether [`end_sql`](Self::end_sql) also ends the transaction (its last statement is
    /// a `ROLLBACK`), saving a round trip where a `ROLLBACK` with no transaction is silent.
    fn end_sql_rolls_back(&self) -> bool {
        false
    }

    /// Whether a database error means the transaction or a savepoint is gone.
    fn gone(error: &dyn DatabaseError) -> bool;

    /// Whether a database error means the connection cannot be used again.
    fn lost(error: &dyn DatabaseError) -> bool;
}

type Conn<D> = <<D as Dialect>::Db as Database>::Connection;
type Tm<D> = <<D as Dialect>::Db as Database>::TransactionManager;

/// What the three backends share: the URL, timeouts and the migrations directory.
#[derive(Debug)]
pub(crate) struct Core {
    entry: String,
    pub(crate) url: SecretUrl,
    pub(crate) timeout: Duration,
    migrations: Option<PathBuf>,
    /// Whether the migrations directory was applied by a connection of this pool.
    migrated: Mutex<bool>,
}

impl Core {
    pub(crate) fn new(config: &BackendConfig, options: SqlxOptions, default_url: &str) -> Self {
        let base = Path::new(&config.source)
            .parent()
            .filter(|_| Path::new(&config.source).is_file())
            .map(Path::to_owned);
        let migrations = options.migrations.map(|dir| match &base {
            Some(base) if dir.is_relative() => base.join(dir),
            _ => dir,
        });
        Core {
            entry: config.entry.clone(),
            url: config
                .url
                .clone()
                .unwrap_or_else(|| SecretUrl::from(default_url)),
            timeout: config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            migrations,
            migrated: Mutex::new(false),
        }
    }
}

/// Applies `migrator` on `conn`, as the entry's setup.
fn migrate_on<D: Dialect>(conn: &mut Conn<D>, migrator: &Migrator) -> Result<()>
where
    Conn<D>: ::sqlx::migrate::Migrate,
{
    // `run_direct` is what `run` calls once it holds a connection; `run` itself cannot be
    // named for a connection type that is generic here.
    block_on(migrator.run_direct(conn))
        .map_err(|e| Error::backend(D::NAME, "running the sqlx migrations", e))
}

/// Opens a connection within the connect timeout and applies the entry's migrations
/// directory if this pool has not yet (or on every connection, for private databases).
pub(crate) fn connect<D: Dialect>(backend: &D, every_connection: bool) -> Result<Conn<D>>
where
    Conn<D>: ::sqlx::migrate::Migrate,
{
    let core = backend.core();
    let url = core.url.expose();
    let options = backend.options()?;
    let mut conn = block_on(async {
        tokio::time::timeout(
            core.timeout,
            <Conn<D> as Connection>::connect_with(&options),
        )
        .await
    })
    .map_err(|_| {
        Error::connect(
            D::NAME,
            url,
            format!(
                "no connection within the connect timeout ({} ms)",
                core.timeout.as_millis()
            ),
        )
    })?
    .map_err(|e| Error::connect(D::NAME, url, e))?;
    if let Some(dir) = &core.migrations {
        let mut migrated = core.migrated.lock();
        if every_connection || !*migrated {
            let _lock = backend.migration_lock()?;
            let step = || format!("the migrations in {}", dir.display());
            let migrator = block_on(Migrator::new(dir.as_path())).map_err(|e| Error::Setup {
                entry: core.entry.clone(),
                step: step(),
                source: e.into(),
            })?;
            block_on(migrator.run_direct(&mut conn)).map_err(|e| Error::Setup {
                entry: core.entry.clone(),
                step: step(),
                source: e.into(),
            })?;
            *migrated = true;
        }
    }
    Ok(conn)
}

/// Locks `path` (created if missing), waiting up to 300 s for another process to let go.
#[cfg_attr(not(feature = "sqlx-sqlite"), allow(dead_code))]
fn lock_file(backend: &str, path: &Path) -> Result<std::fs::File> {
    let failed =
        |e: std::io::Error| Error::backend(backend, format!("locking {}", path.display()), e);
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(failed)?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < Duration::from_secs(300) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::backend(
                    backend,
                    format!("locking {}", path.display()),
                    "another process held it for 300 s while migrating; look for a test process that hangs",
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
    }
}

/// Where a statement ran, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Opening the test's transaction: nothing of the test has run yet.
    Begin,
    /// Inside the test's transaction.
    Nested,
    /// The COMMIT of a release of the outermost checkpoint.
    Commit,
    /// Outside any checkpoint: the health check, a setup script.
    Other,
}

/// Maps an sqlx error of `operation` to the error venomqa reports.
fn fail<D: Dialect>(operation: String, error: ::sqlx::Error, stage: Stage) -> Error {
    let lost = match &error {
        ::sqlx::Error::Io(_)
        | ::sqlx::Error::Tls(_)
        | ::sqlx::Error::Protocol(_)
        | ::sqlx::Error::WorkerCrashed => true,
        ::sqlx::Error::Database(db) => D::lost(db.as_ref()),
        _ => false,
    };
    if lost {
        let outcome = match stage {
            Stage::Begin => "no transaction was open yet, so nothing was changed",
            Stage::Commit => "whether the COMMIT took effect is unknown: check the data",
            Stage::Nested | Stage::Other => {
                "the server rolled back what was not committed; the pool opens a new connection"
            }
        };
        return Error::connection_lost(D::NAME, operation, outcome, error);
    }
    if let ::sqlx::Error::Database(db) = &error {
        if stage != Stage::Other && D::gone(db.as_ref()) {
            return Error::state_lost(
                D::NAME,
                format!(
                    "{operation} found the test's transaction or savepoint gone ({}): code on the test's connection ran COMMIT or ROLLBACK (or DDL, which commits on MySQL), so what it wrote may be committed; use conn.begin() (a savepoint) instead",
                    db.message()
                ),
            );
        }
    }
    Error::backend(D::NAME, operation, error)
}

fn depth<D: Dialect>(conn: &Conn<D>) -> usize {
    <Tm<D> as TransactionManager>::get_transaction_depth(conn)
}

/// sqlx's transaction depth once what code under test queued (a dropped `Transaction`'s
/// rollback) has run.
fn settled<D: Dialect>(conn: &mut Conn<D>, operation: &dyn Fn() -> String) -> Result<usize> {
    D::settle(conn).map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
    Ok(depth::<D>(conn))
}

/// Rolls back sqlx's transaction stack to `target` (the depth of a checkpoint): the later
/// checkpoints and the savepoints code under test left open are undone, one at a time.
fn unwind<D: Dialect>(
    conn: &mut Conn<D>,
    target: usize,
    operation: &dyn Fn() -> String,
) -> Result<()> {
    let now = settled::<D>(conn, operation)?;
    if now < target {
        return Err(Error::state_lost(
            D::NAME,
            format!(
                "{} found sqlx's transaction depth {now} below the checkpoint's {target}: code under test committed or rolled back a transaction it did not begin (TransactionManager calls); leave venomqa's transaction alone",
                operation()
            ),
        ));
    }
    while depth::<D>(conn) > target {
        block_on(<Tm<D> as TransactionManager>::rollback(conn))
            .map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
    }
    Ok(())
}

fn execute<D: Dialect>(conn: &mut Conn<D>, sql: &str) -> std::result::Result<(), ::sqlx::Error>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    block_on(conn.execute(::sqlx::raw_sql(sql))).map(drop)
}

/// The savepoint of a checkpoint made at sqlx depth `depth - 1`.
fn savepoint(depth: usize) -> Cow<'static, str> {
    if depth <= 1 {
        Cow::Borrowed(ROOT_SAVEPOINT)
    } else {
        Cow::Owned(format!("_sqlx_savepoint_{}", depth - 1))
    }
}

pub(crate) fn checkpoint<D: Dialect>(
    backend: &D,
    conn: &mut Conn<D>,
    at: Point<'_>,
) -> Result<SqlxMark> {
    let operation = || format!("checkpoint {:?}", at.name().as_str());
    let before = settled::<D>(conn, &operation)?;
    if at.is_outermost() {
        if before != 0 {
            return Err(Error::state_lost(
                D::NAME,
                format!(
                    "{} found the connection already in a transaction (sqlx depth {before})",
                    operation()
                ),
            ));
        }
        block_on(<Tm<D> as TransactionManager>::begin(
            conn,
            Some(Cow::Borrowed(backend.begin_sql())),
        ))
        .map_err(|e| fail::<D>(operation(), e, Stage::Begin))?;
    } else {
        if before == 0 {
            return Err(Error::state_lost(
                D::NAME,
                format!("{} found the test's transaction gone: code under test ended it; use conn.begin() (a savepoint) instead", operation()),
            ));
        }
        block_on(<Tm<D> as TransactionManager>::begin(conn, None))
            .map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
    }
    // Read back rather than computed: what sqlx did is what later hooks undo.
    Ok(SqlxMark {
        depth: depth::<D>(conn),
    })
}

pub(crate) fn rollback<D: Dialect>(conn: &mut Conn<D>, at: Point<'_>, mark: &SqlxMark) -> Result<()>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    let operation = || format!("rollback to checkpoint {:?}", at.name().as_str());
    unwind::<D>(conn, mark.depth, &operation)?;
    let sql = format!("ROLLBACK TO SAVEPOINT {}", savepoint(mark.depth));
    execute::<D>(conn, &sql).map_err(|e| fail::<D>(operation(), e, Stage::Nested))
}

pub(crate) fn release<D: Dialect>(
    conn: &mut Conn<D>,
    at: Point<'_>,
    mark: &SqlxMark,
) -> Result<()> {
    let operation = || format!("release of checkpoint {:?}", at.name().as_str());
    let now = settled::<D>(conn, &operation)?;
    if now < mark.depth {
        return Err(Error::state_lost(
            D::NAME,
            format!("{} found sqlx's transaction depth {now} below the checkpoint's {}: code under test ended a transaction it did not begin", operation(), mark.depth),
        ));
    }
    while depth::<D>(conn) >= mark.depth {
        let stage = if depth::<D>(conn) == 1 {
            Stage::Commit
        } else {
            Stage::Nested
        };
        block_on(<Tm<D> as TransactionManager>::commit(conn))
            .map_err(|e| fail::<D>(operation(), e, stage))?;
    }
    Ok(())
}

pub(crate) fn discard<D: Dialect>(
    backend: &D,
    conn: &mut Conn<D>,
    at: Point<'_>,
    mark: &SqlxMark,
) -> Result<()>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    let operation = || format!("rollback of checkpoint {:?}", at.name().as_str());
    unwind::<D>(conn, mark.depth, &operation)?;
    if mark.depth == 1 {
        if let Some(probe) = backend.end_sql() {
            execute::<D>(conn, probe).map_err(|e| fail::<D>(operation(), e, Stage::Nested))?;
            if backend.end_sql_rolls_back() {
                // The transaction has ended; sqlx's depth goes back to 0 with a ROLLBACK
                // queued (a silent no-op) that goes out with the next statement.
                <Tm<D> as TransactionManager>::start_rollback(conn);
                return Ok(());
            }
        }
    }
    block_on(<Tm<D> as TransactionManager>::rollback(conn))
        .map_err(|e| fail::<D>(operation(), e, Stage::Nested))
}

/// A connection is handed out only outside a transaction, after a ping.
pub(crate) fn recycle<D: Dialect>(conn: &mut Conn<D>) -> Result<()> {
    let now = depth::<D>(conn);
    if now != 0 {
        return Err(Error::state_lost(
            D::NAME,
            format!("the pooled connection is still in a transaction (sqlx depth {now})"),
        ));
    }
    block_on(conn.ping()).map_err(|e| fail::<D>("the health check".to_owned(), e, Stage::Other))
}

pub(crate) fn execute_script<D: Dialect>(conn: &mut Conn<D>, script: &str) -> Result<()>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
{
    execute::<D>(conn, script)
        .map_err(|e| fail::<D>("running a script".to_owned(), e, Stage::Other))
}

pub(crate) fn close<D: Dialect>(conn: Conn<D>) -> Result<()> {
    block_on(conn.close()).map_err(|e| Error::backend(D::NAME, "closing the connection", e))
}

pub(crate) fn no_url(backend: &str) -> Error {
    Error::unsupported(
        backend,
        "a URL for other connections",
        "an sqlx session's changes live in its connection's transaction, which other connections do not see; an app that needs its own pool can use the postgres or mysql backend with `isolation: capture`",
    )
}

/// The [`Backend`](crate::Backend) of an sqlx dialect, and its session's `Executor`.
macro_rules! sqlx_backend {
    ($backend:ty, $db:ty, $session:ty) => {
        impl $crate::Backend for $backend {
            const NAME: &'static str = NAME;
            type Options = $crate::sqlx::SqlxOptions;
            type Conn = <$db as ::sqlx::Database>::Connection;
            type Mark = $crate::sqlx::SqlxMark;

            fn new(
                config: &$crate::BackendConfig,
                options: $crate::sqlx::SqlxOptions,
            ) -> $crate::Result<Self> {
                Self::build(config, options)
            }

            fn connect(&self) -> $crate::Result<Self::Conn> {
                super::connect(self, self.private_databases())
            }

            fn recycle(&self, conn: &mut Self::Conn) -> $crate::Result<()> {
                super::recycle::<Self>(conn)
            }

            fn checkpoint(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
            ) -> $crate::Result<$crate::sqlx::SqlxMark> {
                super::checkpoint(self, conn, at)
            }

            fn rollback(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &$crate::sqlx::SqlxMark,
            ) -> $crate::Result<()> {
                super::rollback::<Self>(conn, at, mark)
            }

            fn release(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &$crate::sqlx::SqlxMark,
            ) -> $crate::Result<()> {
                super::release::<Self>(conn, at, mark)
            }

            fn discard(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &$crate::sqlx::SqlxMark,
            ) -> $crate::Result<()> {
                super::discard(self, conn, at, mark)
            }

            fn execute_script(&self, conn: &mut Self::Conn, script: &str) -> $crate::Result<()> {
                super::execute_script::<Self>(conn, script)
            }

            fn setup_per_connection(&self) -> bool {
                self.private_databases()
            }

            fn pool_size(&self) -> usize {
                self.default_pool_size()
            }

            fn url(&self, _: &Self::Conn) -> $crate::Result<$crate::SecretUrl> {
                Err(super::no_url(NAME))
            }

            fn close(&self, conn: Self::Conn) -> $crate::Result<()> {
                super::close::<Self>(conn)
            }
        }

        impl $session {
            /// The test's connection, inside its transaction: run the code under test
            /// through it (`sqlx::query(..).execute(db.conn())`). `&mut *db` works too:
            /// the session is an sqlx `Executor`.
            pub fn conn(&mut self) -> &mut <$db as ::sqlx::Database>::Connection {
                self.connection()
            }
        }

        /// The session stands where a `PoolConnection` stood: `&mut conn` and `&mut *conn`
        /// coerce to the connection, so a ported test's calls of functions taking
        /// `&mut PgConnection` (and the like) stay as they were.
        impl ::std::ops::Deref for $session {
            type Target = <$db as ::sqlx::Database>::Connection;

            fn deref(&self) -> &Self::Target {
                self.connection_ref()
            }
        }

        impl ::std::ops::DerefMut for $session {
            fn deref_mut(&mut self) -> &mut Self::Target {
                self.connection()
            }
        }

        /// `db.begin()` (with `sqlx::Acquire` in scope), as on a `PoolConnection`: a
        /// savepoint inside the test's transaction, released by `commit()`, rolled back by
        /// `rollback()` or drop. Code generic over `A: Acquire` takes `&mut *db` too.
        impl<'c> ::sqlx::Acquire<'c> for &'c mut $session {
            type Database = $db;
            type Connection = &'c mut <$db as ::sqlx::Database>::Connection;

            fn acquire(
                self,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<Output = ::sqlx::Result<Self::Connection>>
                        + Send
                        + 'c,
                >,
            > {
                let conn = self.conn();
                Box::pin(async move { Ok(conn) })
            }

            fn begin(
                self,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<Output = ::sqlx::Result<::sqlx::Transaction<'c, $db>>>
                        + Send
                        + 'c,
                >,
            > {
                ::sqlx::Connection::begin(self.conn())
            }
        }

        /// The session runs queries on its connection, so the body of a test written for
        /// a `PoolConnection` (`.execute(&mut *conn)`) works unchanged.
        impl<'c> ::sqlx::Executor<'c> for &'c mut $session {
            type Database = $db;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::futures_core::Stream<
                            Item = ::sqlx::Result<
                                ::sqlx::Either<
                                    <$db as ::sqlx::Database>::QueryResult,
                                    <$db as ::sqlx::Database>::Row,
                                >,
                            >,
                        > + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
                E: 'q + ::sqlx::Execute<'q, $db>,
            {
                self.conn().fetch_many(query)
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<
                            Output = ::sqlx::Result<Option<<$db as ::sqlx::Database>::Row>>,
                        > + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
                E: 'q + ::sqlx::Execute<'q, $db>,
            {
                self.conn().fetch_optional(query)
            }

            fn prepare_with<'e, 'q: 'e>(
                self,
                sql: &'q str,
                parameters: &'e [<$db as ::sqlx::Database>::TypeInfo],
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<
                            Output = ::sqlx::Result<<$db as ::sqlx::Database>::Statement<'q>>,
                        > + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
            {
                self.conn().prepare_with(sql, parameters)
            }

            fn describe<'e, 'q: 'e>(
                self,
                sql: &'q str,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<Output = ::sqlx::Result<::sqlx::Describe<$db>>>
                        + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
            {
                self.conn().describe(sql)
            }
        }
    };
}
pub(crate) use sqlx_backend;
