//! The MySQL / MariaDB backend, through the [`mysql`](::mysql) crate (re-exported as
//! [`driver`]).
//!
//! Isolation is a transaction per test with a SAVEPOINT per checkpoint, on one
//! connection per pooled manager. The first checkpoint opens the transaction in the same
//! round trip (`START TRANSACTION; SAVEPOINT ..`), the end of the test is one round trip
//! (`ROLLBACK TO SAVEPOINT ..; ROLLBACK`), and nested checkpoints map to `SAVEPOINT`,
//! `ROLLBACK TO SAVEPOINT` and `RELEASE SAVEPOINT` with backtick-quoted names.
//!
//! URLs: `mysql://user:password@host:port/database` (also `mariadb://`). User, password
//! and database are percent-decoded, so a password such as `p@ss:w/rd` is written
//! `p%40ss%3Aw%2Frd`. The port defaults to 3306; the default URL (none configured) is
//! [`DEFAULT_URL`]. Query parameters: `connect_timeout_ms`, `socket` (a Unix socket path),
//! `prefer_socket` (`true`/`false`, default `true`: on a loopback host the driver switches
//! to the server's Unix socket).
//!
//! Options (in `venomqa.yaml`): `connect_timeout_ms` on the entry (default 10000),
//! `tables_to_reset`, `exclude_tables`, `pool_size`, and under `options:`
//! `reset_strategy: delete | truncate` (see [`ResetStrategy`]) and
//! `transaction: standard | xa` (see [`TransactionMode`]).
//!
//! **Implicit commits.** MySQL commits the open transaction before DDL (`CREATE`, `ALTER`,
//! `DROP`, `RENAME`, `TRUNCATE`, ...), which destroys every savepoint. Three lines of
//! defence:
//!
//! - always: the manager notices it at the next checkpoint operation (the savepoint is
//!   gone) and fails with [`Error::StateLost`] saying what happened, why, and what to do,
//!   instead of claiming a rollback;
//! - [`MySqlStateManager::exec`] and [`MySqlSession::exec`](crate::Session::exec) refuse
//!   such statements before they run;
//! - with `transaction: xa` the server itself refuses them (error 1399) whatever
//!   connection API the code under test uses.
//!
//! **Session state.** Before every lease the pool resets the connection
//! (`COM_RESET_CONNECTION`, see [`health_check`](MySqlStateManager::health_check)), so a
//! test's temporary tables, user and session variables (`FOREIGN_KEY_CHECKS`, `sql_mode`),
//! named locks and `USE` never reach the next test; the first checkpoint selects the
//! URL's database again in the same round trip as `START TRANSACTION`.
//!
//! **Not rolled back:** AUTO_INCREMENT counters (InnoDB never gives ids back; a test that
//! inserts moves the counter on), anything committed (DDL, [`MySqlStateManager::commit`]),
//! and session state within a test (a temporary table made inside a checkpoint block
//! outlives the block; it is gone at the next lease).
//!
//! ```
//! use venomqa::mysql::{driver::prelude::Queryable, MySqlSession};
//!
//! let mut db = MySqlSession::start("mysql")?; // what #[venom_test(backend = "mysql")] does
//! db.conn().query_drop("CREATE TEMPORARY TABLE vq_mysql_doc_tmp (v INT)").unwrap();
//! db.conn().exec_drop("INSERT INTO vq_mysql_doc_tmp VALUES (?)", (1,)).unwrap();
//! db.checkpoint("emptied", |db| {
//!     db.conn().query_drop("DELETE FROM vq_mysql_doc_tmp").unwrap();
//! })?;
//! let n: Option<i64> = db.conn().query_first("SELECT COUNT(*) FROM vq_mysql_doc_tmp").unwrap();
//! assert_eq!(n, Some(1));
//! db.finish()?; // ROLLBACK
//! # Ok::<(), venomqa::Error>(())
//! ```

use std::time::Duration;

use ::mysql::prelude::Queryable;
use ::mysql::{Conn, OptsBuilder};

use crate::config::BackendConfig;
use crate::error::{percent_decode, Error, Result};
use crate::registry::{test_threads, Backend};
use crate::sql::quote_backtick;
use crate::state::{BaseStateManager, StateManager};

/// The `mysql` driver crate this backend is built on, for the native API
/// (`driver::prelude::Queryable`, `driver::Conn`, `driver::params!`, ...).
pub use ::mysql as driver;

const NAME: &str = "mysql";

/// The URL used when none is configured: the conventional local server.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// How long a connection attempt may take unless configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// MySQL error codes the manager reacts to.
const ER_SP_DOES_NOT_EXIST: u16 = 1305;
const ER_SERVER_SHUTDOWN: u16 = 1053;
const ER_CONNECTION_KILLED: u16 = 1927;

/// A session on the MySQL backend; [`conn`](crate::Session::conn) gives the test the
/// `mysql::Conn` its changes must go through.
pub type MySqlSession = crate::Session<MySqlStateManager>;

/// How [`reset`](StateManager::reset) empties tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResetStrategy {
    /// `DELETE FROM` every table in one transaction (the default). Measured on MariaDB
    /// 10.11 (2 cores, five tables of ten rows): a median of 0.43 ms for all five, against
    /// 5.1 ms for `TRUNCATE` (which drops and re-creates each table, with a file-system
    /// sync; 100 ms under load). AUTO_INCREMENT counters are kept. Slower than `TRUNCATE`
    /// only for big tables.
    #[default]
    Delete,
    /// `TRUNCATE TABLE` each table: also resets AUTO_INCREMENT counters, costs a table
    /// re-creation each (tens of milliseconds), and commits implicitly.
    Truncate,
}

impl std::str::FromStr for ResetStrategy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "delete" => Ok(ResetStrategy::Delete),
            "truncate" => Ok(ResetStrategy::Truncate),
            _ => Err("expected `delete` or `truncate`".into()),
        }
    }
}

/// How the test's transaction is opened and ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransactionMode {
    /// `START TRANSACTION` ... `COMMIT` / `ROLLBACK` (the default). A statement that
    /// commits implicitly (DDL, `TRUNCATE`) ends it; the manager reports that as
    /// [`Error::StateLost`] at the next checkpoint operation.
    #[default]
    Standard,
    /// An XA transaction: `XA START` ... `XA END; XA ROLLBACK` (or `XA COMMIT .. ONE
    /// PHASE`). Inside it the server **refuses** every statement that would commit
    /// implicitly (DDL, `TRUNCATE`, `LOCK TABLES`, `COMMIT`, `BEGIN`, ...) with error 1399
    /// `XAER_RMFAIL` before it runs, so a test can never make its writes permanent by
    /// accident. Savepoints work inside it. Checked on MariaDB 10.11.
    Xa,
}

impl std::str::FromStr for TransactionMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "standard" => Ok(TransactionMode::Standard),
            "xa" => Ok(TransactionMode::Xa),
            _ => Err("expected `standard` or `xa`".into()),
        }
    }
}

/// The statements that open, commit and roll back the test's transaction.
struct TxSql {
    begin: String,
    commit: String,
    rollback: String,
}

/// The parts of a `mysql://` URL (its `Debug` never shows the password).
#[derive(Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    connect_timeout: Option<Duration>,
    socket: Option<String>,
    prefer_socket: Option<bool>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("connect_timeout", &self.connect_timeout)
            .field("socket", &self.socket)
            .field("prefer_socket", &self.prefer_socket)
            .finish()
    }
}

fn parse_url(raw: &str) -> Result<Target> {
    let bad = |message: String| {
        Error::config(
            "the mysql URL",
            crate::redact_url(raw),
            format!("{message}; the form is mysql://user:password@host:port/database, with special characters of the password percent-encoded (@ as %40, : as %3A, / as %2F)"),
        )
    };
    let url = url::Url::parse(raw).map_err(|e| bad(format!("it does not parse as a URL ({e})")))?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(bad(format!(
            "the scheme is {:?}, not mysql or mariadb",
            url.scheme()
        )));
    }
    let decode = |part: &str, what: &str| {
        percent_decode(part).map_err(|_| {
            bad(format!(
                "the {what} is not valid UTF-8 once percent-decoded"
            ))
        })
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let user = match url.username() {
        "" => None,
        u => Some(decode(u, "user name")?),
    };
    let password = url.password().map(|p| decode(p, "password")).transpose()?;
    let database = match url.path().trim_start_matches('/') {
        "" => None,
        db => Some(decode(db, "database name")?),
    };
    let mut target = Target {
        host,
        port: url.port().unwrap_or(3306),
        user,
        password,
        database,
        connect_timeout: None,
        socket: None,
        prefer_socket: None,
    };
    for (key, value) in url.query_pairs() {
        match &*key {
            "connect_timeout_ms" => {
                let ms = value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("connect_timeout_ms={value:?} is not a whole number of milliseconds")))?;
                target.connect_timeout = Some(Duration::from_millis(ms));
            }
            "socket" => target.socket = Some(value.into_owned()),
            "prefer_socket" => {
                target.prefer_socket =
                    Some(value.parse::<bool>().map_err(|_| bad(format!("prefer_socket={value:?} is not true or false")))?)
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter {other:?} (known: connect_timeout_ms, socket, prefer_socket)"
                )))
            }
        }
    }
    Ok(target)
}

/// Runs a (multi-statement) batch and reads every result, so an error in any statement
/// is returned (`query_drop` would swallow errors after the first statement).
fn run_batch(conn: &mut Conn, sql: &str) -> std::result::Result<(), ::mysql::Error> {
    let mut result = conn.query_iter(sql)?;
    while let Some(set) = result.iter() {
        for row in set {
            row?;
        }
    }
    Ok(())
}

/// Whether the error means the connection itself is gone.
fn is_connection_lost(e: &::mysql::Error) -> bool {
    match e {
        ::mysql::Error::IoError(_)
        | ::mysql::Error::CodecError(_)
        | ::mysql::Error::DriverError(_) => true,
        ::mysql::Error::MySqlError(e) => {
            matches!(
                e.code,
                ER_CONNECTION_KILLED | ER_SERVER_SHUTDOWN | 2006 | 2013
            )
        }
        _ => false,
    }
}

/// XA_RBROLLBACK, XA_RBTIMEOUT, XA_RBDEADLOCK: the server rolled the XA transaction back.
fn is_rolled_back_by_server(e: &::mysql::Error) -> bool {
    matches!(e, ::mysql::Error::MySqlError(e) if matches!(e.code, 1402 | 1613 | 1614))
}

fn is_savepoint_missing(e: &::mysql::Error) -> bool {
    matches!(e, ::mysql::Error::MySqlError(e) if e.code == ER_SP_DOES_NOT_EXIST)
}

/// The [`Error::StateLost`] of a transaction that ended behind the manager's back.
fn implicit_commit_error(savepoint: &str) -> Error {
    Error::StateLost {
        backend: NAME.into(),
        message: format!(
            "savepoint `{savepoint}` no longer exists because the transaction it lived in has ended, so \
             nothing was rolled back. What happened: a statement run inside the test committed the transaction \
             (or, rarer, InnoDB rolled it back after a deadlock, error 1213). Why: MySQL and MariaDB commit the \
             open transaction implicitly before DDL and similar statements (CREATE/ALTER/DROP/RENAME TABLE, \
             TRUNCATE, CREATE INDEX, LOCK TABLES, GRANT, ...) and on an explicit COMMIT, ROLLBACK, BEGIN or START \
             TRANSACTION; that destroys every savepoint. So the test's writes made before that statement are now \
             PERMANENT in the database, and so are the ones after it (each ran in autocommit mode). What to do: \
             create the schema in the setup step (`setup:` .sql files or venomqa::register_setup!), not in the \
             test; use DELETE FROM instead of TRUNCATE; use CREATE TEMPORARY TABLE for scratch tables (it does \
             not commit); or use the postgres or sqlite backend, whose DDL is transactional. Running statements \
             through MySqlSession::exec refuses such statements before they run. Clean up the rows left behind \
             with reset() or DELETE"
        ),
    }
}

/// The [`Error::StateLost`] of a connection that died (KILL, server restart, network).
fn connection_lost_error(operation: &str, cause: &::mysql::Error) -> Error {
    Error::StateLost {
        backend: NAME.into(),
        message: format!(
            "the connection to the server was lost during {operation} ({cause}). What happened: the \
             connection was killed (KILL, wait_timeout), the server restarted, or the network dropped. The \
             server rolls back the open transaction of a dead connection, so the changes made since the \
             transaction began are discarded (unless an implicit commit had already made them permanent), \
             but the test's checkpoints are gone and it cannot go on. What to do: nothing for the next tests \
             (the pool replaces the connection); if it repeats, look in the server log for the KILL or \
             restart, and raise wait_timeout if tests sit idle for long"
        ),
    }
}

/// Maps a driver error of a checkpoint operation on savepoint `savepoint`.
fn checkpoint_error(
    broken: &mut bool,
    operation: &str,
    savepoint: &str,
    e: ::mysql::Error,
) -> Error {
    if is_connection_lost(&e) {
        *broken = true;
        connection_lost_error(operation, &e)
    } else if is_rolled_back_by_server(&e) {
        Error::StateLost {
            backend: NAME.into(),
            message: format!(
                "during {operation} the server reported that it rolled the test's transaction back itself \
                 ({e}), after a deadlock or a lock wait timeout, so the test's changes are gone and its \
                 checkpoints with them. Find the statement that deadlocked or waited (SHOW ENGINE INNODB STATUS), \
                 or run the tests that contend for the same rows one at a time"
            ),
        }
    } else if is_savepoint_missing(&e) {
        implicit_commit_error(savepoint)
    } else {
        Error::backend(NAME, operation, e)
    }
}

/// MySQL / MariaDB state manager: transaction + SAVEPOINT isolation on one `mysql::Conn`.
///
/// ```
/// use venomqa::mysql::{driver::prelude::Queryable, MySqlStateManager};
/// use venomqa::StateManager;
///
/// let mut db = MySqlStateManager::new("mysql://root@127.0.0.1:3306/test");
/// db.connect()?;
/// db.conn().query_drop("CREATE TABLE IF NOT EXISTS vq_mysql_doc (v INT) ENGINE=InnoDB").unwrap();
/// db.checkpoint("start")?;
/// db.conn().query_drop("INSERT INTO vq_mysql_doc VALUES (1)").unwrap();
/// db.rollback("start")?;
/// let n: Option<i64> = db.conn().query_first("SELECT COUNT(*) FROM vq_mysql_doc").unwrap();
/// assert_eq!(n, Some(0));
/// db.discard("start")?; // ROLLBACK: the transaction ends
/// # Ok::<(), venomqa::Error>(())
/// ```
pub struct MySqlStateManager {
    base: BaseStateManager,
    /// Never printed: its options hold the password.
    conn: Option<Conn>,
    /// The database the URL names, selected again (`USE`) when a test's transaction opens.
    database: Option<String>,
    tables_to_reset: Vec<String>,
    exclude_tables: Vec<String>,
    connect_timeout: Option<Duration>,
    reset_strategy: ResetStrategy,
    transaction_mode: TransactionMode,
    /// The XA transaction id of this connection (`'venomqa-<connection id>'`).
    xid: String,
    /// The connection died (its driver reported an I/O error): never reuse it.
    broken: bool,
}

/// Written by hand: the connection's options hold the password, so the connection is
/// never printed, and the URL is redacted.
impl std::fmt::Debug for MySqlStateManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlStateManager")
            .field("url", &self.base.redacted_url())
            .field("connected", &self.is_connected())
            .field(
                "connection_id",
                &self.conn.as_ref().map(Conn::connection_id),
            )
            .field("checkpoints", &self.base.checkpoints())
            .field("tables_to_reset", &self.tables_to_reset)
            .field("exclude_tables", &self.exclude_tables)
            .field("connect_timeout", &self.connect_timeout)
            .field("reset_strategy", &self.reset_strategy)
            .field("transaction_mode", &self.transaction_mode)
            .finish()
    }
}

impl MySqlStateManager {
    /// A disconnected manager for `url` (see the [module docs](self) for URL forms). The
    /// URL is parsed by [`connect`](StateManager::connect).
    pub fn new(url: &str) -> Self {
        MySqlStateManager {
            base: BaseStateManager::new(NAME, url),
            conn: None,
            database: None,
            tables_to_reset: Vec::new(),
            exclude_tables: Vec::new(),
            connect_timeout: None,
            reset_strategy: ResetStrategy::default(),
            transaction_mode: TransactionMode::default(),
            xid: String::new(),
            broken: false,
        }
    }

    /// A disconnected manager from a resolved configuration entry; a bad URL or option is
    /// reported here.
    pub fn from_config(config: &BackendConfig) -> Result<Self> {
        let url = config.url_or(DEFAULT_URL);
        parse_url(url)?;
        let mut m = Self::new(url);
        m.tables_to_reset.clone_from(&config.tables_to_reset);
        m.exclude_tables.clone_from(&config.exclude_tables);
        m.connect_timeout = config.connect_timeout;
        if let Some(ms) = config.option_parsed::<u64>("connect_timeout_ms")? {
            m.connect_timeout = Some(Duration::from_millis(ms));
        }
        if let Some(strategy) = config.option_parsed::<ResetStrategy>("reset_strategy")? {
            m.reset_strategy = strategy;
        }
        if let Some(mode) = config.option_parsed::<TransactionMode>("transaction")? {
            m.transaction_mode = mode;
        }
        Ok(m)
    }

    /// Tables `reset()` empties (default: every base table of the database).
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches.
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// How long a connection attempt may take (default [`DEFAULT_CONNECT_TIMEOUT`]; the
    /// URL's `connect_timeout_ms` wins over this).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How `reset()` empties tables (default [`ResetStrategy::Delete`]).
    pub fn reset_strategy(mut self, strategy: ResetStrategy) -> Self {
        self.reset_strategy = strategy;
        self
    }

    /// How the test's transaction is opened (default [`TransactionMode::Standard`];
    /// `transaction: xa` under `options:` in `venomqa.yaml`).
    pub fn transaction_mode(mut self, mode: TransactionMode) -> Self {
        self.transaction_mode = mode;
        self
    }

    fn tx_sql(&self) -> TxSql {
        match self.transaction_mode {
            TransactionMode::Standard => TxSql {
                begin: "START TRANSACTION".into(),
                commit: "COMMIT".into(),
                rollback: "ROLLBACK".into(),
            },
            TransactionMode::Xa => {
                let x = &self.xid;
                TxSql {
                    begin: format!("XA START {x}"),
                    commit: format!("XA END {x}; XA COMMIT {x} ONE PHASE"),
                    rollback: format!("XA END {x}; XA ROLLBACK {x}"),
                }
            }
        }
    }

    /// Ends whatever transaction is open, ignoring errors (after a failure).
    fn abandon(conn: &mut Conn, tx: &TxSql) {
        for sql in tx.rollback.split("; ").chain(["ROLLBACK"]) {
            let _ = run_batch(conn, sql);
        }
    }

    /// The native connection: use the `mysql` crate's API on it (`query_drop`,
    /// `exec_first`, ...; import [`driver::prelude::Queryable`]).
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_conn`](Self::try_conn) returns an error instead.
    pub fn conn(&mut self) -> &mut Conn {
        self.try_conn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The native connection, or [`Error::NotConnected`].
    pub fn try_conn(&mut self) -> Result<&mut Conn> {
        self.conn.as_mut().ok_or_else(|| Error::NotConnected {
            backend: NAME.into(),
        })
    }

    /// Runs `sql` (one statement or several separated by `;`), reading every result so an
    /// error in any statement is returned.
    ///
    /// While a checkpoint is active, a statement that would commit the transaction
    /// implicitly (DDL such as `CREATE TABLE`, `TRUNCATE`, `LOCK TABLES`, or `COMMIT`,
    /// `BEGIN`, ...) is refused **before it runs** with [`Error::Unsupported`], so the
    /// test's isolation survives. `CREATE TEMPORARY TABLE` is allowed. The text is read as
    /// the server reads it: the bodies of executable comments (`/*!40000 ... */`) count,
    /// `--` needs a space after it to start a comment, and when the meaning of the batch
    /// depends on `NO_BACKSLASH_ESCAPES` or `ANSI_QUOTES` the session's `sql_mode` is asked
    /// (one extra round trip, only then). `CALL`, `PREPARE`, `EXECUTE` and compound
    /// statements (`IF`, `BEGIN NOT ATOMIC`, labels, loops) are refused too, since their
    /// text does not show what they run; use [`conn`](Self::conn) for them.
    ///
    /// ```
    /// use venomqa::{mysql::MySqlStateManager, StateManager};
    ///
    /// let mut db = MySqlStateManager::new("mysql://root@127.0.0.1/test");
    /// db.connect()?;
    /// db.checkpoint("start")?;
    /// let refused = db.exec("INSERT INTO t VALUES (1); CREATE TABLE vq_mysql_never (v INT)");
    /// assert!(refused.unwrap_err().to_string().contains("CREATE TABLE"));
    /// db.exec("CREATE TEMPORARY TABLE vq_mysql_scratch (v INT); INSERT INTO vq_mysql_scratch VALUES (1)")?;
    /// db.discard("start")?;
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn exec(&mut self, sql: &str) -> Result<()> {
        self.base.ensure_connected()?;
        if let Some(active) = self.base.checkpoints().last() {
            let conn = self.conn.as_mut().expect("connected");
            let server_lexing = || {
                conn.query_first::<String, _>("SELECT @@SESSION.sql_mode")
                    .ok()
                    .flatten()
                    .map(|mode| Lexing::from_sql_mode(&mode))
            };
            match refusal(sql, server_lexing) {
                None => {}
                Some(Refusal::Commits(statement)) => {
                    return Err(Error::unsupported(
                        NAME,
                        format!("`{statement}` while checkpoint {active:?} is active"),
                        format!(
                            "the statement was NOT run. MySQL and MariaDB commit the open transaction before `{statement}`, \
                             which would make the test's writes permanent and destroy its savepoints. Create the schema in \
                             the setup step (`setup:` .sql files or venomqa::register_setup!), use DELETE FROM instead of \
                             TRUNCATE, use CREATE TEMPORARY TABLE for scratch tables, or use the postgres or sqlite backend \
                             for tests that need transactional DDL"
                        ),
                    ));
                }
                Some(Refusal::Opaque(statement)) => {
                    return Err(Error::unsupported(
                        NAME,
                        format!("`{statement}` through exec() while checkpoint {active:?} is active"),
                        format!(
                            "the statement was NOT run. exec() refuses statements that would commit the test's \
                             transaction, and cannot see what `{statement}` runs (a stored procedure, a prepared \
                             statement or a compound statement may contain DDL, which commits implicitly and makes the \
                             test's writes permanent). Run it through conn() instead (an implicit commit is then \
                             reported as StateLost at the next checkpoint operation, after the fact), or set \
                             `transaction: xa`, under which the server itself refuses every implicit commit"
                        ),
                    ));
                }
            }
        }
        let conn = self.conn.as_mut().expect("connected");
        run_batch(conn, sql).map_err(|e| {
            if is_connection_lost(&e) {
                self.broken = true;
            }
            Error::backend(NAME, "exec", e)
        })
    }

    /// Commits the current transaction, making every change so far permanent, and keeps
    /// the active checkpoints usable: the transaction and its savepoints are re-opened in
    /// the same round trip, so later changes are still rolled back. For the rare test that
    /// needs data committed (for example, to be seen by another connection).
    pub fn commit(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        let tx = self.tx_sql();
        let mut sql = String::from("COMMIT");
        if !self.base.checkpoints().is_empty() {
            // The outermost savepoint must still exist, or there is nothing to commit.
            let first = quote_backtick(NAME, &self.base.checkpoints()[0])?;
            sql = format!("RELEASE SAVEPOINT {first}; {}; {}", tx.commit, tx.begin);
            for name in self.base.checkpoints() {
                sql.push_str(&format!("; SAVEPOINT {}", quote_backtick(NAME, name)?));
            }
        }
        let first = self.base.checkpoints().first().cloned().unwrap_or_default();
        let conn = self.conn.as_mut().expect("connected");
        run_batch(conn, &sql).map_err(|e| checkpoint_error(&mut self.broken, "commit", &first, e))
    }

    /// Refuses a reset that would leave orphans: with foreign key checks off, emptying a
    /// table that a table outside the set references would leave the outside table's
    /// rows pointing at nothing (and with them on, ON DELETE CASCADE would empty it).
    fn refuse_orphans(conn: &mut Conn, tables: &[String]) -> Result<()> {
        let references: Vec<(String, String, String, String, String)> = conn
            .query(
                "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DATABASE() \
                 FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL \
                 ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME",
            )
            .map_err(|e| Error::backend(NAME, "reset: reading the foreign keys", e))?;
        for (schema, child, constraint, parent, db) in references {
            let inside = schema == db && tables.contains(&child);
            if tables.contains(&parent) && !inside {
                return Err(Error::backend(
                    NAME,
                    "reset",
                    format!(
                        "table `{schema}`.`{child}` references `{db}`.`{parent}` (foreign key {constraint:?}) but is \
                         not among the tables reset() empties (it is in exclude_tables, missing from tables_to_reset, \
                         or in another database), so emptying {parent:?} would leave its rows pointing at nothing. \
                         Either reset {child:?} too (remove it from exclude_tables or add it to tables_to_reset), or \
                         add {parent:?} to exclude_tables. Nothing was changed"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn table_names(conn: &mut Conn) -> Result<Vec<String>> {
        let database: Option<String> = conn
            .query_first("SELECT DATABASE()")
            .map_err(|e| Error::backend(NAME, "reset: reading the current database", e))?
            .flatten();
        if database.is_none() {
            return Err(Error::backend(
                NAME,
                "reset",
                "no database is selected, so there are no tables to reset; put the database in the URL (mysql://user@host/database) or set tables_to_reset",
            ));
        }
        conn.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        )
        .map_err(|e| Error::backend(NAME, "reset: listing the tables", e))
    }
}

impl StateManager for MySqlStateManager {
    /// Connects; on a manager already connected, keeps the connection if it still
    /// answers a ping, and otherwise (killed, timed out, marked broken) drops it, forgets
    /// its checkpoints (their transaction died with it) and connects again.
    fn connect(&mut self) -> Result<()> {
        if let Some(conn) = &mut self.conn {
            if !self.broken && conn.ping().is_ok() {
                return Ok(());
            }
            self.conn = None;
            self.base.set_connected(false);
            self.base.clear_checkpoints();
        }
        let url = self.base.url().to_owned();
        let target = parse_url(&url)?;
        let timeout = target
            .connect_timeout
            .or(self.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let mut opts = OptsBuilder::new()
            .ip_or_hostname(Some(target.host.clone()))
            .tcp_port(target.port)
            .user(target.user.clone())
            .pass(target.password.clone())
            .db_name(target.database.clone())
            .tcp_connect_timeout(Some(timeout))
            .socket(target.socket.clone());
        if let Some(prefer) = target.prefer_socket {
            opts = opts.prefer_socket(prefer);
        }
        let failed = |cause: String| {
            Error::connection(
                NAME,
                &url,
                format!(
                    "{host}:{port} (connect timeout {ms} ms) {cause}",
                    host = target.host,
                    port = target.port,
                    ms = timeout.as_millis()
                ),
            )
        };
        // The driver's TCP timeout does not cover the handshake (a host that accepts the
        // connection and never answers would block for minutes), so the whole attempt
        // runs on a helper thread and is abandoned when the timeout passes.
        let attempt = super::within("venomqa-mysql-connect", timeout, move || Conn::new(opts))
            .map_err(|e| failed(format!("could not start the connecting thread: {e}")))?;
        let conn = match attempt {
            Some(Ok(conn)) => conn,
            Some(Err(e)) => {
                return Err(failed(format!("refused the connection or the login: {e}")))
            }
            None => {
                return Err(failed(
                    "did not complete the connection handshake in time".into(),
                ))
            }
        };
        self.xid = format!("'venomqa-{}'", conn.connection_id());
        self.database = target.database;
        self.conn = Some(conn);
        self.broken = false;
        self.base.set_connected(true);
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        self.base.set_connected(false);
        // Dropping the connection closes it; the server rolls back an open transaction.
        self.conn = None;
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let tx = self.tx_sql();
        // A test that ran `USE other_db` left it selected on the pooled connection
        // (COM_RESET_CONNECTION keeps the database): select the URL's again, in the same
        // round trip as the transaction.
        let use_db = match &self.database {
            Some(db) => format!("USE {}; ", quote_backtick(NAME, db)?),
            None => String::new(),
        };
        let (conn, broken) = (&mut self.conn, &mut self.broken);
        self.base.checkpoint(name, |name, active| {
            let conn = conn.as_mut().expect("connected");
            let q = quote_backtick(NAME, name)?;
            let sql = if active.is_empty() {
                format!("{use_db}{}; SAVEPOINT {q}", tx.begin)
            } else {
                // Outside a transaction SAVEPOINT is a silent no-op and RELEASE fails: the
                // pair proves the transaction is still open, in the same round trip.
                format!("SAVEPOINT {q}; RELEASE SAVEPOINT {q}; SAVEPOINT {q}")
            };
            run_batch(conn, &sql).map_err(|e| {
                let outer = active.last().map_or(name, String::as_str);
                checkpoint_error(broken, &format!("checkpoint {name:?}"), outer, e)
            })
        })
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let (conn, broken) = (&mut self.conn, &mut self.broken);
        self.base.rollback(name, |_, _| {
            let conn = conn.as_mut().expect("connected");
            let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_backtick(NAME, name)?);
            run_batch(conn, &sql).map_err(|e| {
                checkpoint_error(broken, &format!("rollback to checkpoint {name:?}"), name, e)
            })
        })
    }

    fn release(&mut self, name: &str) -> Result<()> {
        let tx = self.tx_sql();
        let (conn, broken) = (&mut self.conn, &mut self.broken);
        self.base.release(name, |index, _| {
            let conn = conn.as_mut().expect("connected");
            let q = quote_backtick(NAME, name)?;
            // RELEASE fails if the savepoint (so the transaction) is gone; then COMMIT does not run.
            let sql = if index == 0 {
                format!("RELEASE SAVEPOINT {q}; {}", tx.commit)
            } else {
                format!("RELEASE SAVEPOINT {q}")
            };
            run_batch(conn, &sql).map_err(|e| {
                checkpoint_error(broken, &format!("release checkpoint {name:?}"), name, e)
            })
        })
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        let tx = self.tx_sql();
        let (conn, broken) = (&mut self.conn, &mut self.broken);
        self.base.discard(name, |index, _| {
            let conn = conn.as_mut().expect("connected");
            let q = quote_backtick(NAME, name)?;
            // ROLLBACK TO fails if the savepoint is gone (an implicit commit), so a lost
            // transaction is reported instead of a ROLLBACK that undoes nothing.
            let sql = if index == 0 {
                format!("ROLLBACK TO SAVEPOINT {q}; {}", tx.rollback)
            } else {
                format!("ROLLBACK TO SAVEPOINT {q}; RELEASE SAVEPOINT {q}")
            };
            run_batch(conn, &sql).map_err(|e| {
                let error =
                    checkpoint_error(broken, &format!("discard checkpoint {name:?}"), name, e);
                if index == 0 && !*broken {
                    // End whatever transaction is left (one the test opened after an
                    // implicit commit, or an XA transaction the server marked rollback-only).
                    Self::abandon(conn, &tx);
                }
                error
            })
        })
    }

    /// Empties `tables_to_reset` (default: every base table of the current database, not
    /// views) except `exclude_tables`, with foreign key checks off for the session while
    /// it runs, and forgets every checkpoint (an open transaction is rolled back first).
    /// Refuses, changing nothing, when a table it would not empty has a foreign key to
    /// one it would (that table's rows would be left pointing at nothing).
    /// With [`ResetStrategy::Delete`] (the default) it is one transaction: on error
    /// nothing changes.
    fn reset(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        let tx = self.tx_sql();
        let conn = self.conn.as_mut().expect("connected");
        let tables: Vec<String> = if self.tables_to_reset.is_empty() {
            Self::table_names(conn)?
        } else {
            self.tables_to_reset.clone()
        }
        .into_iter()
        .filter(|t| !self.exclude_tables.contains(t))
        .collect();
        // Checked before anything changes (the open transaction included).
        if !tables.is_empty() {
            Self::refuse_orphans(conn, &tables)?;
        }
        if self.base.checkpoints().is_empty() {
            run_batch(conn, "ROLLBACK")
                .map_err(|e| Error::backend(NAME, "reset: ending the open transaction", e))?;
        } else {
            Self::abandon(conn, &tx);
        }
        self.base.clear_checkpoints();
        if tables.is_empty() {
            return Ok(());
        }
        let mut sql = String::from("SET FOREIGN_KEY_CHECKS = 0;");
        match self.reset_strategy {
            ResetStrategy::Delete => {
                sql.push_str(" START TRANSACTION;");
                for table in &tables {
                    sql.push_str(&format!(" DELETE FROM {};", quote_backtick(NAME, table)?));
                }
                sql.push_str(" COMMIT;");
            }
            ResetStrategy::Truncate => {
                for table in &tables {
                    sql.push_str(&format!(
                        " TRUNCATE TABLE {};",
                        quote_backtick(NAME, table)?
                    ));
                }
            }
        }
        sql.push_str(" SET FOREIGN_KEY_CHECKS = 1");
        if let Err(e) = run_batch(conn, &sql) {
            if is_connection_lost(&e) {
                self.broken = true;
            } else {
                let _ = run_batch(conn, "ROLLBACK; SET FOREIGN_KEY_CHECKS = 1");
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
        self.base.is_connected() && self.conn.is_some() && !self.broken
    }

    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }

    /// One round trip that proves the connection works AND wipes what the previous test
    /// left in its session: `COM_RESET_CONNECTION` (the driver's `Conn::reset`, which
    /// falls back to `COM_CHANGE_USER` on servers without it) drops temporary tables,
    /// clears user variables (`@v`), puts session variables (`FOREIGN_KEY_CHECKS`,
    /// `sql_mode`, the isolation level, `SET NAMES`, ...) back to the global values,
    /// releases named locks (`GET_LOCK`) and table locks, rolls back an open transaction,
    /// and empties the driver's prepared-statement cache. It keeps the selected database,
    /// which the next test's first checkpoint selects again. The pool calls it before
    /// every lease; a connection with an active checkpoint fails it.
    fn health_check(&mut self) -> bool {
        if self.broken || !self.base.checkpoints().is_empty() {
            return false;
        }
        match &mut self.conn {
            Some(conn) => match conn.reset() {
                Ok(()) => true,
                Err(_) => {
                    self.broken = true;
                    false
                }
            },
            None => false,
        }
    }

    /// Runs `script` (statements separated by `;`), reporting an error in any of them.
    /// Afterwards, when no checkpoint is active, the session is reset (as
    /// [`health_check`](Self::health_check) does), so the session state a script leaves
    /// behind (a dump's `SET FOREIGN_KEY_CHECKS = 0`, variables, temporary tables) does
    /// not reach the first test, which the pool hands this fresh connection without a
    /// health check. Its data and schema changes stay.
    fn execute_script(&mut self, script: &str) -> Result<()> {
        let idle = self.base.checkpoints().is_empty();
        let conn = self.try_conn()?;
        let result =
            run_batch(conn, script).map_err(|e| Error::backend(NAME, "running a setup script", e));
        if idle && conn.reset().is_err() {
            self.broken = true;
        }
        result
    }
}

impl crate::Session<MySqlStateManager> {
    /// The test's `mysql::Conn`: run the code under test through it, with the `mysql`
    /// crate's API (import [`driver::prelude::Queryable`]).
    pub fn conn(&mut self) -> &mut Conn {
        self.manager().conn()
    }

    /// Runs SQL on the test's connection, refusing statements that would commit the
    /// transaction implicitly before they run (see [`MySqlStateManager::exec`]).
    pub fn exec(&mut self, sql: &str) -> Result<()> {
        self.manager().exec(sql)
    }

    /// Commits the test's changes so far, keeping its checkpoints (see
    /// [`MySqlStateManager::commit`]). Committed changes are NOT rolled back.
    pub fn commit(&mut self) -> Result<()> {
        self.manager().commit()
    }
}

/// How the server reads string literals, from `@@sql_mode`: whether a backslash escapes
/// the next character in `'..'` and in `".."` (`NO_BACKSLASH_ESCAPES` turns both off;
/// `ANSI_QUOTES` makes `".."` an identifier, where a backslash is literal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lexing {
    backslash_in_single: bool,
    backslash_in_double: bool,
}

impl Lexing {
    const DEFAULT: Lexing = Lexing {
        backslash_in_single: true,
        backslash_in_double: true,
    };
    const ANSI_QUOTES: Lexing = Lexing {
        backslash_in_single: true,
        backslash_in_double: false,
    };
    const NO_BACKSLASH_ESCAPES: Lexing = Lexing {
        backslash_in_single: false,
        backslash_in_double: false,
    };

    fn from_sql_mode(mode: &str) -> Lexing {
        let has = |flag: &str| mode.split(',').any(|m| m.trim().eq_ignore_ascii_case(flag));
        if has("NO_BACKSLASH_ESCAPES") {
            Lexing::NO_BACKSLASH_ESCAPES
        } else if has("ANSI_QUOTES") {
            Lexing::ANSI_QUOTES
        } else {
            Lexing::DEFAULT
        }
    }
}

/// A statement [`MySqlStateManager::exec`] refuses to run while a checkpoint is active.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// It commits (or ends) the open transaction implicitly; its leading keywords.
    Commits(String),
    /// What it runs is not in its text (a stored procedure, a prepared statement, a
    /// compound statement), so it may commit; its leading keyword.
    Opaque(String),
}

/// The refusal of the first statement of `sql` that [`MySqlStateManager::exec`] must not
/// run inside a transaction, if any. `sql` is read the three ways the server can read it
/// (see [`Lexing`]); when they disagree (a backslash or a double quote inside a literal
/// hides or shows a statement), `server_lexing` is asked for the session's actual
/// `sql_mode`, unless the batch itself changes `sql_mode`, or the server cannot say: then
/// the statement is refused.
fn refusal(sql: &str, server_lexing: impl FnOnce() -> Option<Lexing>) -> Option<Refusal> {
    let found = [
        Lexing::DEFAULT,
        Lexing::ANSI_QUOTES,
        Lexing::NO_BACKSLASH_ESCAPES,
    ]
    .map(|lexing| (lexing, statements(sql, lexing)));
    let verdicts = found
        .iter()
        .map(|(_, statements)| statements.iter().find_map(|w| refusal_of(w)))
        .collect::<Vec<_>>();
    if verdicts
        .iter()
        .all(|v| v.is_some() == verdicts[0].is_some())
    {
        return verdicts.into_iter().flatten().next();
    }
    let changes_mode = found.iter().any(|(_, statements)| {
        statements
            .iter()
            .any(|w| w.iter().any(|word| word.contains("SQL_MODE")))
    });
    let conservative = verdicts.iter().flatten().next().cloned();
    if changes_mode {
        return conservative;
    }
    match server_lexing() {
        Some(lexing) => statements(sql, lexing).iter().find_map(|w| refusal_of(w)),
        None => conservative,
    }
}

/// Whether one statement (its upper-cased words; string literals as `'`, `"` or `` ` ``,
/// and `:` kept) must be refused.
fn refusal_of(words: &[String]) -> Option<Refusal> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let first = *w.first()?;
    let second = w.get(1).copied().unwrap_or("");
    let lead = || w.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    if second == ":" {
        // `label: BEGIN ... END`, `label: LOOP ...`: a compound statement (MariaDB runs
        // them outside stored programs).
        return Some(Refusal::Opaque(format!("{first}:")));
    }
    let commits = match first {
        // MariaDB's `SET STATEMENT var = value [, ...] FOR statement`: judge `statement`.
        "SET" if second == "STATEMENT" => {
            let at = w.iter().position(|&x| x == "FOR")?;
            return refusal_of(&words[at + 1..]);
        }
        "PREPARE" | "EXECUTE" | "CALL" | "IF" | "CASE" | "WHILE" | "LOOP" | "REPEAT" | "FOR" => {
            return Some(Refusal::Opaque(first.to_owned()))
        }
        "CREATE" | "DROP" => {
            // CREATE [OR REPLACE] TEMPORARY TABLE and DROP TEMPORARY TABLE do not commit.
            !(second == "TEMPORARY" || (second == "OR" && w.get(3) == Some(&"TEMPORARY")))
        }
        "ROLLBACK" => !w.contains(&"TO"),
        "ALTER" | "RENAME" | "TRUNCATE" | "GRANT" | "REVOKE" | "LOCK" | "UNLOCK" | "BEGIN"
        | "COMMIT" | "ANALYZE" | "CHECK" | "OPTIMIZE" | "REPAIR" | "FLUSH" | "RESET"
        | "INSTALL" | "UNINSTALL" | "XA" | "START" | "STOP" | "CHANGE" | "IMPORT" => true,
        "CACHE" | "LOAD" => second == "INDEX",
        // SET PASSWORD; SET [SESSION] autocommit = 1, SET @@autocommit := 1, SET a = 1,
        // autocommit = 1, ...
        "SET" if second == "PASSWORD" => true,
        "SET" => {
            let autocommit = w.iter().any(|x| {
                let user_variable = x.starts_with('@') && !x.starts_with("@@");
                x.ends_with("AUTOCOMMIT") && !user_variable
            });
            return autocommit.then(|| Refusal::Commits("SET autocommit".into()));
        }
        _ => false,
    };
    commits.then(lead).map(Refusal::Commits)
}

/// The upper-cased words of each statement of `sql`, read as the server reads it under
/// `lexing`: comments are skipped, except that the body of an executable comment
/// (`/*! ... */`, `/*!40000 ... */`, `/*M! ... */`) is read as SQL, because the server
/// runs it; `--` starts a comment only before whitespace, a control character or the
/// end (`1--1` is arithmetic); a string literal or quoted identifier becomes one word
/// (`'`, `"` or `` ` ``), and `:` is kept (labels).
fn statements(sql: &str, lexing: Lexing) -> Vec<Vec<String>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = vec![Vec::new()];
    let mut word = String::new();
    let mut in_executable_comment = false;
    let mut i = 0;
    let flush = |word: &mut String, out: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            out.last_mut()
                .expect("non-empty")
                .push(word.to_ascii_uppercase());
            word.clear();
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let dash_comment = c == '-'
            && next == Some('-')
            && chars
                .get(i + 2)
                .is_none_or(|&c| c.is_whitespace() || c.is_control());
        if c == '#' || dash_comment {
            flush(&mut word, &mut out);
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            flush(&mut word, &mut out);
            i += 2;
            let executable = match chars.get(i) {
                Some('!') => 1,
                Some('M') if chars.get(i + 1) == Some(&'!') => 2,
                _ => 0,
            };
            if executable > 0 {
                // The body runs (when the server is at least the version that may follow).
                i += executable;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                in_executable_comment = true;
                continue;
            }
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            continue;
        } else if in_executable_comment && c == '*' && next == Some('/') {
            flush(&mut word, &mut out);
            in_executable_comment = false;
            i += 2;
            continue;
        } else if matches!(c, '\'' | '"' | '`') {
            flush(&mut word, &mut out);
            out.last_mut().expect("non-empty").push(c.to_string());
            let backslash = match c {
                '\'' => lexing.backslash_in_single,
                '"' => lexing.backslash_in_double,
                _ => false,
            };
            i += 1;
            while i < chars.len() {
                if backslash && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
        } else if c == ';' {
            flush(&mut word, &mut out);
            out.push(Vec::new());
        } else if c == ':' {
            flush(&mut word, &mut out);
            out.last_mut().expect("non-empty").push(":".into());
        } else if c.is_alphanumeric() || matches!(c, '_' | '@' | '.' | '$') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
        }
        i += 1;
    }
    flush(&mut word, &mut out);
    out.retain(|s| !s.is_empty());
    out
}

pub(crate) fn backend() -> Backend {
    Backend::new(NAME, MySqlStateManager::from_config).default_pool_size_with(|_| test_threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let t = parse_url("mysql://root@127.0.0.1:3306/test").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_deref(),
                t.password,
                t.database.as_deref()
            ),
            ("127.0.0.1", 3306, Some("root"), None, Some("test"))
        );
        let t =
            parse_url("mysql://vq:p%40ss%3Aw%2Frd@db.example:3307/my%20db?connect_timeout_ms=250")
                .unwrap();
        assert_eq!(t.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(t.database.as_deref(), Some("my db"));
        assert_eq!((t.host.as_str(), t.port), ("db.example", 3307));
        assert_eq!(t.connect_timeout, Some(Duration::from_millis(250)));
        let t = parse_url("mariadb://[::1]/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 3306));
        assert!(parse_url("postgres://h/db").is_err());
        assert!(parse_url("mysql://h/db?bogus=1").is_err());
        let e = parse_url("mysql://u:s3cret@h/db?connect_timeout_ms=x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn options_from_config() {
        let mut config = BackendConfig::new("mysql");
        config.connect_timeout = Some(Duration::from_millis(1500));
        config
            .options
            .insert("reset_strategy".into(), "TRUNCATE".into());
        config.options.insert("transaction".into(), "xa".into());
        let m = MySqlStateManager::from_config(&config).unwrap();
        assert_eq!(m.base.url(), DEFAULT_URL);
        assert_eq!(m.connect_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(m.reset_strategy, ResetStrategy::Truncate);
        assert_eq!(m.transaction_mode, TransactionMode::Xa);
        config
            .options
            .insert("transaction".into(), "serializable".into());
        let e = MySqlStateManager::from_config(&config)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backends.mysql.options.transaction") && e.contains("xa"),
            "{e}"
        );
    }

    /// The verdict on `sql` when it means the same in every sql_mode (the server is never asked).
    fn verdict(sql: &str) -> Option<Refusal> {
        refusal(sql, || {
            panic!("{sql:?} is unambiguous: the server must not be asked")
        })
    }

    fn commits(sql: &str) -> Option<String> {
        match verdict(sql) {
            Some(Refusal::Commits(s)) => Some(s),
            Some(Refusal::Opaque(s)) => panic!("{sql:?}: refused as opaque {s:?}"),
            None => None,
        }
    }

    #[test]
    fn implicit_commit_statements_are_recognized() {
        let yes = [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("insert into t values (1); truncate t", "TRUNCATE T"),
            ("/* c */ drop table t", "DROP TABLE"),
            ("-- x\nALTER TABLE t ADD c INT", "ALTER TABLE"),
            ("COMMIT", "COMMIT"),
            ("start transaction", "START TRANSACTION"),
            ("LOCK TABLES t WRITE", "LOCK TABLES"),
            ("CREATE OR REPLACE TABLE t (a INT)", "CREATE OR"),
            ("SET autocommit = 1", "SET autocommit"),
            ("SET @a = 1, @@session.autocommit := 1", "SET autocommit"),
            ("SET PASSWORD = 'x'", "SET PASSWORD"),
            (
                "SET STATEMENT max_statement_time = 5 FOR CREATE TABLE t (a INT)",
                "CREATE TABLE",
            ),
            ("START SLAVE", "START SLAVE"),
        ];
        for (sql, found) in yes {
            assert_eq!(commits(sql).as_deref(), Some(found), "{sql}");
        }
        let no = [
            "INSERT INTO t VALUES ('CREATE TABLE x; DROP TABLE y')",
            "CREATE TEMPORARY TABLE t (a INT)",
            "CREATE OR REPLACE TEMPORARY TABLE t (a INT)",
            "DROP TEMPORARY TABLE IF EXISTS t",
            "ROLLBACK TO SAVEPOINT a",
            "SELECT 1 -- ; DROP TABLE t",
            "SELECT 1 --\t; DROP TABLE t",
            "SELECT 1 # ; DROP TABLE t",
            "SELECT 1 /* ; DROP TABLE t */",
            "SELECT 1 /*+ MAX_EXECUTION_TIME(1) */",
            "UPDATE `drop` SET v = 1",
            "UPDATE `a``; DROP TABLE t; ` SET v = 1",
            "SET @x = 'commit'; DELETE FROM t",
            "SET @autocommit = 1",
            "SET STATEMENT max_statement_time = 5 FOR SELECT 1",
            "INSERT INTO t VALUES ('it''s; DROP TABLE t')",
        ];
        for sql in no {
            assert_eq!(verdict(sql), None, "{sql}");
        }
    }

    /// mysqldump writes `/*!40000 ALTER TABLE t DISABLE KEYS */`: the server runs the body.
    #[test]
    fn executable_comment_bodies_are_read_as_sql() {
        for (sql, found) in [
            ("/*!40000 ALTER TABLE t DISABLE KEYS */", "ALTER TABLE"),
            ("/*! DROP TABLE t */", "DROP TABLE"),
            ("/*!50000CREATE TABLE t (a INT)*/", "CREATE TABLE"),
            ("/*M!100100 TRUNCATE t */", "TRUNCATE T"),
            ("INSERT INTO t VALUES (1); /*!40101 COMMIT */", "COMMIT"),
            ("SELECT 1 /*!, 2 */; /*!40000 DROP TABLE t */", "DROP TABLE"),
            ("/*!40000 SELECT 1 */; RENAME TABLE a TO b", "RENAME TABLE"),
        ] {
            assert_eq!(commits(sql).as_deref(), Some(found), "{sql}");
        }
        assert_eq!(verdict("/*!40101 SET @x = 1 */; SELECT 1"), None);
        assert_eq!(verdict("/*!40101 SET NAMES utf8mb4 */"), None);
    }

    /// MySQL starts a `--` comment only before whitespace or a control character.
    #[test]
    fn double_dash_needs_whitespace_to_start_a_comment() {
        assert_eq!(
            commits("SELECT 1--1; DROP TABLE t").as_deref(),
            Some("DROP TABLE")
        );
        assert_eq!(
            commits("SELECT 1 --x\n; TRUNCATE t").as_deref(),
            Some("TRUNCATE T")
        );
        assert_eq!(verdict("SELECT 1 -- ; DROP TABLE t"), None);
        assert_eq!(verdict("SELECT 1 --\n"), None);
        assert_eq!(verdict("SELECT 1--"), None);
    }

    /// `'a\'; DROP TABLE t; -- '` is one string by default, but under NO_BACKSLASH_ESCAPES
    /// the string ends at the backslash and the DROP runs; with ANSI_QUOTES, `"a\"` is an
    /// identifier that ends there too.
    #[test]
    fn backslashes_are_read_in_the_session_sql_mode() {
        let single = r"INSERT INTO t VALUES ('a\'); DROP TABLE t; -- ')";
        let double = r#"INSERT INTO t VALUES ("a\"); DROP TABLE t; -- ")"#;
        let cases = [
            (single, "", false),
            (single, "STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", true),
            (single, "ANSI_QUOTES", false),
            (double, "STRICT_TRANS_TABLES", false),
            (double, "ANSI_QUOTES", true),
            (double, "NO_BACKSLASH_ESCAPES", true),
        ];
        for (sql, mode, refused) in cases {
            let mut asked = false;
            let found = refusal(sql, || {
                asked = true;
                Some(Lexing::from_sql_mode(mode))
            });
            assert!(asked, "{sql}: ambiguous, so the server is asked");
            assert_eq!(found.is_some(), refused, "{sql} under {mode:?}: {found:?}");
        }
        // The server cannot say: refused.
        assert!(refusal(single, || None).is_some());
        // The batch changes sql_mode itself: refused without asking.
        let sets_mode = format!("SET sql_mode = 'NO_BACKSLASH_ESCAPES'; {single}");
        assert!(refusal(&sets_mode, || panic!("must not ask")).is_some());
        // A backslash that changes nothing: not asked.
        assert_eq!(verdict(r"INSERT INTO t VALUES ('a\b'), ('c')"), None);
    }

    /// Their text does not show what they run.
    #[test]
    fn procedures_prepared_and_compound_statements_are_refused() {
        for (sql, found) in [
            ("CALL make_tables()", "CALL"),
            ("PREPARE s FROM 'CREATE TABLE t (a INT)'", "PREPARE"),
            (
                "SET @q = 'DROP TABLE t'; PREPARE s FROM @q; EXECUTE s",
                "PREPARE",
            ),
            ("EXECUTE IMMEDIATE 'DROP TABLE t'", "EXECUTE"),
            ("IF 1 THEN CREATE TABLE t (a INT); END IF", "IF"),
            ("lbl: LOOP LEAVE lbl; END LOOP", "LBL:"),
            ("WHILE 0 DO SELECT 1; END WHILE", "WHILE"),
            ("/*!50000 CALL p() */", "CALL"),
        ] {
            assert_eq!(verdict(sql), Some(Refusal::Opaque(found.into())), "{sql}");
        }
        assert_eq!(
            verdict("BEGIN NOT ATOMIC CREATE TABLE t (a INT); END"),
            Some(Refusal::Commits("BEGIN NOT".into()))
        );
        assert_eq!(verdict("SELECT 'CALL p()'; DEALLOCATE PREPARE s"), None);
    }

    #[test]
    fn debug_never_shows_the_password() {
        let t = parse_url("mysql://u:s3cr%40t@h/db").unwrap();
        let text = format!("{t:?}");
        assert!(!text.contains("s3cr") && text.contains("***"), "{text}");
        let m = MySqlStateManager::new("mysql://u:s3cr%40t@h/db");
        let text = format!("{m:?}");
        assert!(!text.contains("s3cr") && text.contains("u:***@h"), "{text}");
    }
}
