//! The MySQL / MariaDB backend, through the [`mysql`](::mysql) crate (re-exported as
//! [`driver`]).
//!
//! Isolation is a transaction per test with a SAVEPOINT per checkpoint, on one
//! connection per pooled manager. The first checkpoint opens the transaction in the same
//! round trip (`USE db; START TRANSACTION; SAVEPOINT ..`), the end of the test is one round
//! trip (`ROLLBACK TO SAVEPOINT ..; ROLLBACK`), and nested checkpoints map to `SAVEPOINT`,
//! `ROLLBACK TO SAVEPOINT` and `RELEASE SAVEPOINT` with backtick-quoted names.
//!
//! URLs: `mysql://user:password@host:port/database` (also `mariadb://`), parsed by the
//! driver's own [`Opts::from_url`](driver::Opts::from_url): user, password and database
//! are percent-decoded, so a password such as `p@ss:w/rd` is written `p%40ss%3Aw%2Frd`.
//! The port defaults to 3306; the default URL (none configured) is [`DEFAULT_URL`]. Query
//! parameters: venomqa's `connect_timeout_ms`, and the driver's (`socket` for a Unix
//! socket path, `prefer_socket=false` to stay on TCP on a loopback host, the TLS and
//! keep-alive settings, ...). An unknown parameter is an error.
//!
//! Keys of its `venomqa.yaml` entry: see [`MySqlOptions`] (`tables_to_reset`,
//! `exclude_tables`, `reset_strategy`, `transaction`), besides the common ones
//! (`connect_timeout_ms` defaults to [`DEFAULT_CONNECT_TIMEOUT`]; the URL's wins).
//!
//! **Implicit commits.** MySQL commits the open transaction before DDL (`CREATE`, `ALTER`,
//! `DROP`, `RENAME`, `TRUNCATE`, ...), which destroys every savepoint. Three lines of
//! defence:
//!
//! - always: the next checkpoint operation finds the savepoint gone and fails with
//!   [`Error::StateLost`] saying so, instead of claiming a rollback;
//! - [`exec`](MySqlStateManager::exec) (on a manager or a session) refuses such
//!   statements before they run;
//! - with `transaction: xa` the server itself refuses them (error 1399) whatever
//!   connection API the code under test uses.
//!
//! **Session state.** Before every lease the pool resets the connection
//! (`COM_RESET_CONNECTION`, see [`MySql::recycle`](crate::Backend::recycle)), so a test's
//! temporary tables, user and session variables (`FOREIGN_KEY_CHECKS`, `sql_mode`), named
//! locks and `USE` never reach the next test; the first checkpoint selects the URL's
//! database again in the same round trip as `START TRANSACTION`.
//!
//! **Not rolled back:** AUTO_INCREMENT counters (InnoDB never gives ids back; a test that
//! inserts moves the counter on), anything committed (DDL, [`commit`](MySqlStateManager::commit)),
//! and session state within a test (a temporary table made inside a checkpoint block
//! outlives the block; it is gone at the next lease).
//!
//! # Capture
//!
//! With `isolation: capture` the test opens no transaction: venomqa installs (once, under
//! the reserved prefix `_vq_`) row triggers that log every change any connection makes to
//! the URL's database into undo tables, and a rollback replays them back to the
//! checkpoint. So an API server in another process, or the app's own pool, can write, and
//! [`Session::url`](crate::Session::url) tells it where. What is restored: every row of
//! every base table (foreign-key cascades included, logged by triggers on the parent since
//! InnoDB cascades fire none; tables without a primary key through an invisible
//! `_vq_rowid` column), and the AUTO_INCREMENT counters. Each rollback is proven by
//! reading the data, inside the restore's transaction: the tables it restored have the
//! row counts they had at the checkpoint (`capture_proof: digest`: every captured table
//! has the content digest it had, at the cost of reading every row at each checkpoint and
//! rollback), else the restore is undone; then the log past the checkpoint is empty, the
//! counters and the schema are as they were. A failed proof runs the rollback again until
//! `quiescence_timeout_ms`, then fails naming the table and what differs.
//! [`Session::diff`](crate::Session::diff) reads the log as a row-level diff.
//!
//! - Checkpoints and rollbacks wait (up to `quiescence_timeout_ms`, default 5000) for
//!   other sessions' uncommitted changes, and then name them.
//! - Sessions on one database take turns, across processes too (`GET_LOCK`); the pool of a
//!   capture entry holds one connection.
//! - DDL belongs in setup: a schema change (or a `TRUNCATE`) between a checkpoint and its
//!   rollback fails the rollback, saying what changed, and restores nothing. Between
//!   tests it is fine: the next session installs capture again.
//! - A test process killed mid-session leaves a record; the next session restores its
//!   first checkpoint before it starts.
//! - Needs the TRIGGER, CREATE, ALTER and DROP privileges on the database (and
//!   `log_bin_trust_function_creators` when binary logging is on); a missing one is named,
//!   and nothing is left half-installed. [`MySql::uninstall_capture`] removes everything.
//! - The one change to the app's own tables: each table without a primary key gets an
//!   invisible `_vq_rowid` column with a unique index of that name (named in an `info`
//!   event of target `venomqa` at install) until [`MySql::uninstall_capture`]. Schema-diff
//!   and migration tools see it; the app's `SELECT *` and `INSERT .. VALUES` do not.
//! - The app's own triggers fire again while venomqa restores rows.
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

mod capture;
mod statements;

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use ::mysql::prelude::Queryable;
use ::mysql::{Opts, OptsBuilder};
use serde::Deserialize;

use crate::backend::Backend;
use crate::checkpoint::{Point, Stack};
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::sql::quote_backtick;
use crate::state::Manager;
use crate::util::test_threads;
use capture::Capture;
use statements::{refusal, Lexing, Refusal};

/// The `mysql` driver crate this backend is built on, for the native API
/// (`driver::prelude::Queryable`, `driver::Conn`, `driver::params!`, ...) and for matching
/// its errors ([`Error::driver`]).
pub use ::mysql as driver;

pub use crate::capture::proof::CaptureProof;

const NAME: &str = "mysql";

/// The URL used when none is configured: the conventional local server.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// How long a connection attempt (TCP connect and handshake) may take unless configured
/// otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// MySQL error codes the backend reacts to.
const ER_SP_DOES_NOT_EXIST: u16 = 1305;
const ER_CON_COUNT_ERROR: u16 = 1040;
const ER_SERVER_SHUTDOWN: u16 = 1053;
const ER_CONNECTION_KILLED: u16 = 1927;
const CR_SERVER_GONE_ERROR: u16 = 2006;
const CR_SERVER_LOST: u16 = 2013;
/// XA_RBROLLBACK, XA_RBTIMEOUT, XA_RBDEADLOCK: the server rolled the XA transaction back.
const XA_ROLLED_BACK: [u16; 3] = [1402, 1613, 1614];

/// What a lost connection means for the test's changes.
const LOST_OUTCOME: &str = "the server rolled back the open transaction: nothing uncommitted survives; a new connection replaces this one";

/// How long the server may stay silent while a read or write waits, unless `io_timeout_ms`
/// says otherwise.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The MySQL backend's [`StateManager`](crate::StateManager).
pub type MySqlStateManager = Manager<MySql>;

/// A session on the MySQL backend; [`conn`](crate::Session::conn) gives the test the
/// `mysql::Conn` its changes must go through.
pub type MySqlSession = crate::Session<MySqlStateManager>;

/// How [`reset`](crate::StateManager::reset) empties tables (`reset_strategy:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// How the test's transaction is opened and ended (`transaction:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TransactionMode {
    /// `START TRANSACTION` ... `COMMIT` / `ROLLBACK` (the default). A statement that
    /// commits implicitly (DDL, `TRUNCATE`) ends it; the backend reports that as
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

/// The keys of a `mysql` entry in `venomqa.yaml`, besides the common ones (`url`,
/// `pool_size`, `connect_timeout_ms`, `lease_timeout_ms`, `setup`).
///
/// ```yaml
/// backends:
///   mysql:
///     tables_to_reset: [users, orders]
///     exclude_tables: [countries]
///     reset_strategy: delete     # or truncate
///     transaction: standard      # or xa
///     session_reset: each_test   # or never
///     capture_proof: count       # or digest (with isolation: capture)
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MySqlOptions {
    /// Tables `reset()` empties (default: every base table of the current database).
    pub tables_to_reset: Vec<String>,
    /// Tables `reset()` never touches.
    pub exclude_tables: Vec<String>,
    /// How `reset()` empties tables (default [`ResetStrategy::Delete`]).
    pub reset_strategy: ResetStrategy,
    /// How each test's transaction is opened (default [`TransactionMode::Standard`]).
    pub transaction: TransactionMode,
    /// The connect timeout as written under the legacy `options:` map (`"5000"`). Write
    /// the entry's common key `connect_timeout_ms` instead; this one wins over it, and the
    /// URL's `connect_timeout_ms` wins over both.
    pub connect_timeout_ms: Option<u64>,
    /// How a test's changes are isolated (default [`MySqlIsolation::Transaction`]).
    pub isolation: MySqlIsolation,
    /// Capture: how long a checkpoint or a rollback waits for other sessions of the
    /// database to finish their write transactions (default 5000).
    pub quiescence_timeout_ms: Option<u64>,
    /// Capture: what a rollback reads of the data to prove the restore, inside its own
    /// transaction (default [`CaptureProof::Count`]: the restored tables' row counts
    /// against those taken at the checkpoint; [`CaptureProof::Digest`]: a digest of every
    /// captured table's rows too, read at every checkpoint and rollback). The counts cost
    /// each checkpoint a scan of every captured table (measured: 15-20 ms per 100,000
    /// rows on a loaded 2-core machine), the digest about ten times that.
    pub capture_proof: CaptureProof,
    /// Whether each test gets a freshly reset session (default [`SessionReset::EachTest`]).
    pub session_reset: SessionReset,
}

/// Whether the pool resets a connection's session before each test (`session_reset:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionReset {
    /// `COM_RESET_CONNECTION` before every lease (the default): what a test left in its
    /// session (temporary tables, user and session variables such as
    /// `FOREIGN_KEY_CHECKS`, named locks) never reaches the next test. It is also the
    /// health check. Three round trips per test: the reset, `START TRANSACTION;
    /// SAVEPOINT`, and `ROLLBACK TO SAVEPOINT; ROLLBACK`. The reset cannot share a round
    /// trip with either (it is a protocol command, not a statement; it must follow the
    /// rollback that proves the test's transaction was still open, and precede the next
    /// `START TRANSACTION`, which it would roll back).
    #[default]
    EachTest,
    /// No reset: two round trips per test, as a hand-written transaction. The first
    /// checkpoint's batch (which selects the URL's database again) is the health check: a
    /// connection that died in the pool fails it and the test begins on another. What a
    /// test changes in its session (variables, temporary tables, named locks) reaches the
    /// next test on the same connection: choose this when tests leave none.
    Never,
}

/// How the MySQL backend isolates a test's changes (`isolation:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MySqlIsolation {
    /// A transaction per test and a SAVEPOINT per checkpoint on the test's connection:
    /// only what goes through that connection is rolled back (the default).
    #[default]
    Transaction,
    /// Generated triggers log every change any connection of any process makes to the
    /// URL's database into undo tables, and a rollback replays them: an API server or an
    /// app's own pool can write, and its writes are rolled back too (foreign-key
    /// cascades, keyless tables and AUTO_INCREMENT counters included). The code under
    /// test connects to [`Session::url`](crate::Session::url). Sessions on one database
    /// take turns, across processes too. See the [capture section](self#capture).
    Capture,
}

/// A checkpoint of the MySQL backend: a savepoint, or a mark in the capture log.
pub struct MySqlMark(Option<capture::Mark>);

/// The MySQL / MariaDB backend: a transaction per test and a SAVEPOINT per checkpoint on
/// one `mysql::Conn`.
///
/// ```
/// use venomqa::mysql::{driver::prelude::Queryable, MySql, MySqlStateManager};
/// use venomqa::StateManager;
///
/// let mut db = MySqlStateManager::new(MySql::from_url("mysql://root@127.0.0.1:3306/test")?);
/// db.connect()?;
/// db.connection()?.query_drop("CREATE TABLE IF NOT EXISTS vq_mysql_doc (v INT) ENGINE=InnoDB").unwrap();
/// db.checkpoint("start")?; // USE `test`; START TRANSACTION; SAVEPOINT `start`
/// db.connection()?.query_drop("INSERT INTO vq_mysql_doc VALUES (1)").unwrap();
/// db.rollback("start")?; // ROLLBACK TO SAVEPOINT `start`
/// let n: Option<i64> = db.connection()?.query_first("SELECT COUNT(*) FROM vq_mysql_doc").unwrap();
/// assert_eq!(n, Some(0));
/// db.discard("start")?; // ROLLBACK TO SAVEPOINT `start`; ROLLBACK
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MySql {
    url: SecretUrl,
    /// The URL's database, selected again (`USE`) when a test's transaction opens.
    database: Option<String>,
    /// The timeout unless the URL sets `connect_timeout_ms`.
    connect_timeout: Duration,
    /// The URL's own `connect_timeout_ms`, which wins.
    url_connect_timeout: Option<Duration>,
    /// The read and write timeout of every connection (`None`: off).
    io_timeout: Option<Duration>,
    /// Capture: how long a session waits for another to finish with the database.
    lock_timeout: Duration,
    options: MySqlOptions,
}

/// One connection of the MySQL backend: the driver's `mysql::Conn` (it derefs to it, so
/// `connection.query_drop(..)` works) and what the backend tracks about it.
pub struct MySqlConn {
    conn: driver::Conn,
    /// The backend's transaction (opened by the outermost checkpoint) has not been ended
    /// by the backend: a setup script must not reset the session, and `reset()` must end
    /// it the way it was opened.
    transaction_open: bool,
    /// Capture isolation: the installation found (or made) by the last session's first
    /// checkpoint.
    capture: Option<Capture>,
}

impl MySqlConn {
    /// The driver's connection.
    pub fn driver(&mut self) -> &mut driver::Conn {
        &mut self.conn
    }
}

impl Deref for MySqlConn {
    type Target = driver::Conn;
    fn deref(&self) -> &driver::Conn {
        &self.conn
    }
}

impl DerefMut for MySqlConn {
    fn deref_mut(&mut self) -> &mut driver::Conn {
        &mut self.conn
    }
}

/// What venomqa takes from a URL: the driver's options (parsed by the driver) and its own
/// `connect_timeout_ms`.
struct Parsed {
    opts: Opts,
    connect_timeout: Option<Duration>,
}

/// Parses `raw` with the driver's [`Opts::from_url`], after taking out what the driver
/// does not know: the `mariadb` scheme (read as `mysql`), venomqa's `connect_timeout_ms`,
/// and an empty host (`127.0.0.1`). The error never shows the password.
fn parse_url(raw: &str) -> std::result::Result<Parsed, String> {
    let scrub = |message: String| crate::redact::scrub(raw, &message);
    let mut url =
        url::Url::parse(raw).map_err(|e| scrub(format!("it does not parse as a URL ({e})")))?;
    match url.scheme() {
        "mysql" => {}
        "mariadb" => url
            .set_scheme("mysql")
            .map_err(|()| "its scheme cannot be read as mysql".to_owned())?,
        other => {
            return Err(scrub(format!(
                "its scheme is {other:?}, not mysql or mariadb"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        url.set_host(Some("127.0.0.1"))
            .map_err(|e| scrub(format!("it has no host ({e})")))?;
    }
    let mut connect_timeout = None;
    if url.query().is_some() {
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            if key == "connect_timeout_ms" {
                let ms = value.parse::<u64>().map_err(|_| {
                    scrub(format!(
                        "connect_timeout_ms={value:?} is not a whole number of milliseconds"
                    ))
                })?;
                connect_timeout = Some(Duration::from_millis(ms));
            } else {
                kept.push((key.into_owned(), value.into_owned()));
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    let opts = Opts::from_url(url.as_str()).map_err(|e| scrub(url_error(&e)))?;
    Ok(Parsed {
        opts,
        connect_timeout,
    })
}

/// The driver's URL error in words that never echo a value of the URL (which may be a
/// password written where a parameter was expected); a parameter's name is shown only
/// when it is a plain word.
fn url_error(e: &driver::UrlError) -> String {
    let word = |s: &str| {
        if !s.is_empty()
            && s.len() <= 40
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            format!(" `{s}`")
        } else {
            String::new()
        }
    };
    match e {
        driver::UrlError::UnknownParameter(name) => format!("unknown URL parameter{}", word(name)),
        driver::UrlError::InvalidValue(name, _) => {
            format!("invalid value of URL parameter{}", word(name))
        }
        driver::UrlError::FeatureRequired(feature, name) => {
            format!(
                "URL parameter{} needs the driver's feature{}",
                word(name),
                word(feature)
            )
        }
        driver::UrlError::UnsupportedScheme(_) => "unsupported scheme".to_owned(),
        driver::UrlError::ParseError(p) => format!("it does not parse ({p})"),
        _ => "it is not a valid MySQL URL".to_owned(),
    }
}

/// The statements that open, commit and roll back the test's transaction.
struct TxSql {
    begin: String,
    commit: String,
    rollback: String,
}

/// Runs a (multi-statement) batch and reads every result, so an error in any statement
/// is returned (`query_drop` would swallow errors after the first statement).
fn run_batch(conn: &mut driver::Conn, sql: &str) -> std::result::Result<(), driver::Error> {
    let mut result = conn.query_iter(sql)?;
    while let Some(set) = result.iter() {
        for row in set {
            row?;
        }
    }
    Ok(())
}

/// Whether the error means the connection itself is gone.
fn is_connection_lost(e: &driver::Error) -> bool {
    match e {
        driver::Error::IoError(_)
        | driver::Error::CodecError(_)
        | driver::Error::DriverError(_) => true,
        driver::Error::MySqlError(e) => matches!(
            e.code,
            ER_CONNECTION_KILLED | ER_SERVER_SHUTDOWN | CR_SERVER_GONE_ERROR | CR_SERVER_LOST
        ),
        _ => false,
    }
}

fn server_code(e: &driver::Error) -> Option<u16> {
    match e {
        driver::Error::MySqlError(e) => Some(e.code),
        _ => None,
    }
}

/// The [`Error::StateLost`] of a transaction that ended behind the backend's back.
fn savepoint_gone(savepoint: &str) -> Error {
    Error::state_lost(
        NAME,
        format!(
            "savepoint `{savepoint}` is gone: a statement of the test (DDL, TRUNCATE, COMMIT, BEGIN) committed, so its writes are PERMANENT and nothing was rolled back (unless a deadlock undid it all); create tables in setup, use DELETE, or postgres"
        ),
    )
}

/// Maps a driver error of `operation`, done while savepoint `savepoint` should exist.
fn failure(operation: impl Into<String>, savepoint: &str, e: driver::Error) -> Error {
    let operation = operation.into();
    if is_connection_lost(&e) {
        lost(operation, e)
    } else if let Some(code) = server_code(&e).filter(|c| XA_ROLLED_BACK.contains(c)) {
        Error::state_lost(
            NAME,
            format!(
                "{operation} failed: the server rolled the transaction back after a deadlock or lock wait timeout (error {code}), so its changes and checkpoints are gone; see SHOW ENGINE INNODB STATUS, or run those tests one at a time"
            ),
        )
    } else if server_code(&e) == Some(ER_SP_DOES_NOT_EXIST) {
        savepoint_gone(savepoint)
    } else {
        Error::backend(NAME, operation, e)
    }
}

/// The kind of the I/O error behind a driver error, if there is one.
fn io_kind(e: &driver::Error) -> Option<std::io::ErrorKind> {
    match e {
        driver::Error::IoError(io) => Some(io.kind()),
        driver::Error::CodecError(codec) => std::error::Error::source(codec)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind),
        _ => None,
    }
}

/// The [`Error::ConnectionLost`] of `operation` (a read or write that timed out shows as
/// "no answer within io_timeout_ms").
fn lost(operation: String, e: driver::Error) -> Error {
    Error::connection_lost(NAME, operation, LOST_OUTCOME, Described::new(e))
}

/// Maps a driver error of `operation` where no savepoint is involved.
fn plain_failure(operation: impl Into<String>, e: driver::Error) -> Error {
    if is_connection_lost(&e) {
        lost(operation.into(), e)
    } else {
        Error::backend(NAME, operation, e)
    }
}

/// A driver error shown as the server or the operating system put it (`ERROR 1044
/// (42000): Access denied ...`, `Connection reset by peer (os error 104)`), not as the
/// driver's `Debug`-like text; its [`source`](std::error::Error::source) is the driver's
/// error, which [`Error::driver`] finds.
#[derive(Debug)]
pub(crate) struct Described {
    text: String,
    error: driver::Error,
}

impl Described {
    pub(crate) fn new(error: driver::Error) -> Self {
        let text = match &error {
            e if matches!(
                io_kind(e),
                Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            ) =>
            {
                "no answer within io_timeout_ms".to_owned()
            }
            driver::Error::IoError(io) => io.to_string(),
            driver::Error::CodecError(codec) => std::error::Error::source(codec)
                .map_or_else(|| codec.to_string(), ToString::to_string),
            driver::Error::MySqlError(server) => server.to_string(),
            driver::Error::DriverError(d) => d.to_string(),
            other => other.to_string(),
        };
        Described { text, error }
    }
}

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Described {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The refusal of [`exec`](MySqlStateManager::exec) to run `refused` while checkpoint
/// `active` is active.
fn exec_refusal(refused: &Refusal, active: &str) -> Error {
    let (statement, hint) = match refused {
        Refusal::Commits(statement) => (
            statement,
            "it was NOT run: it commits implicitly, which would make the test's writes permanent; create tables in setup, use DELETE, not TRUNCATE, or CREATE TEMPORARY TABLE",
        ),
        Refusal::Opaque(statement) => (
            statement,
            "it was NOT run: exec() cannot see what it runs, which may commit implicitly; run it through conn(), or set transaction: xa so the server refuses implicit commits",
        ),
    };
    Error::unsupported(
        NAME,
        format!("`{statement}` in exec() inside checkpoint {active:?}"),
        hint,
    )
}

/// The refusal of `reset()` to empty `parent` while `schema`.`child`, which it does not
/// empty, references it by foreign key `constraint`.
fn orphan_refusal(schema: &str, child: &str, constraint: &str, parent: &str) -> Error {
    Error::unsupported(
        NAME,
        format!("reset() of `{parent}` while `{schema}`.`{child}` (not reset) references it by {constraint:?}"),
        format!("its rows would point at nothing; reset `{child}` too, or exclude `{parent}`. Nothing was changed"),
    )
}

impl MySql {
    /// The backend for `url` (see the [module docs](self) for URL forms), default options.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            MySqlOptions::default(),
        )
    }

    /// Tables `reset()` empties (default: every base table of the current database).
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches.
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// How long a connection attempt may take (default [`DEFAULT_CONNECT_TIMEOUT`]; the
    /// URL's `connect_timeout_ms` wins over this).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How `reset()` empties tables (default [`ResetStrategy::Delete`]).
    pub fn reset_strategy(mut self, strategy: ResetStrategy) -> Self {
        self.options.reset_strategy = strategy;
        self
    }

    /// How the test's transaction is opened (default [`TransactionMode::Standard`]).
    pub fn transaction_mode(mut self, mode: TransactionMode) -> Self {
        self.options.transaction = mode;
        self
    }

    /// Whether each test gets a freshly reset session (default [`SessionReset::EachTest`]).
    pub fn session_reset(mut self, reset: SessionReset) -> Self {
        self.options.session_reset = reset;
        self
    }

    /// Capture: what a rollback reads of the data to prove the restore (default
    /// [`CaptureProof::Count`]; [`CaptureProof::Digest`] reads every row of every
    /// captured table at each checkpoint and rollback). See the
    /// [capture section](self#capture).
    pub fn capture_proof(mut self, proof: CaptureProof) -> Self {
        self.options.capture_proof = proof;
        self
    }

    /// The database the URL names, which every test's transaction selects.
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The options in effect.
    pub fn options(&self) -> &MySqlOptions {
        &self.options
    }

    fn capture(&self) -> bool {
        self.options.isolation == MySqlIsolation::Capture
    }

    fn quiescence(&self) -> Duration {
        Duration::from_millis(self.options.quiescence_timeout_ms.unwrap_or(5000))
    }

    /// The captured database (checked in `new`).
    fn captured(&self) -> &str {
        self.database
            .as_deref()
            .expect("capture needs a database; checked in new()")
    }

    /// Removes everything capture installed in the URL's database (triggers, undo tables,
    /// the invisible row ids of keyless tables, bookkeeping), leaving the app's data as it
    /// is. Capture installs itself again on its next use.
    pub fn uninstall_capture(&self) -> Result<()> {
        let database = self.database.as_deref().ok_or_else(|| {
            Error::unsupported(
                NAME,
                "uninstall_capture() without a database in the URL",
                "put the database in the URL",
            )
        })?;
        let mut conn = self.connect()?;
        Capture::lock(&mut conn, database, self.lock_timeout)?;
        let result = Capture::uninstall_from(&mut conn, database);
        let _ = Capture::unlock(&mut conn, database);
        result
    }

    /// A capture session's first checkpoint: the lock, then the root mark.
    fn begin_capture(&self, conn: &mut MySqlConn) -> Result<capture::Mark> {
        let database = self.captured();
        Capture::lock(conn, database, self.lock_timeout)?;
        let MySqlConn {
            conn: driver,
            capture,
            ..
        } = conn;
        Capture::begin(
            driver,
            capture,
            database,
            self.quiescence(),
            self.options.capture_proof,
        )
        .inspect_err(|_| {
            let _ = Capture::unlock(driver, database);
        })
    }

    /// A capture session's end: forget the root, give the lock back.
    fn end_capture(&self, conn: &mut MySqlConn) -> Result<()> {
        let MySqlConn {
            conn: driver,
            capture,
            ..
        } = conn;
        let cleared = match capture {
            Some(capture) => capture.clear_root(driver),
            None => Ok(()),
        };
        let unlocked = Capture::unlock(driver, self.captured());
        cleared.and(unlocked)
    }

    fn installed(conn: &mut MySqlConn) -> Result<(&mut driver::Conn, &Capture)> {
        let MySqlConn {
            conn: driver,
            capture,
            ..
        } = conn;
        let capture = capture.as_ref().ok_or_else(|| {
            Error::state_lost(
                NAME,
                "capture is not attached: the session's first checkpoint did not complete",
            )
        })?;
        Ok((driver, capture))
    }

    fn tx_sql(&self, conn: &MySqlConn) -> TxSql {
        match self.options.transaction {
            TransactionMode::Standard => TxSql {
                begin: "START TRANSACTION".into(),
                commit: "COMMIT".into(),
                rollback: "ROLLBACK".into(),
            },
            TransactionMode::Xa => {
                let x = format!("'venomqa-{}'", conn.connection_id());
                TxSql {
                    begin: format!("XA START {x}"),
                    commit: format!("XA END {x}; XA COMMIT {x} ONE PHASE"),
                    rollback: format!("XA END {x}; XA ROLLBACK {x}"),
                }
            }
        }
    }

    /// Ends whatever transaction is open, ignoring errors (after a failure).
    fn abandon(&self, conn: &mut MySqlConn) {
        let tx = self.tx_sql(conn);
        for sql in tx.rollback.split("; ").chain(["ROLLBACK"]) {
            let _ = run_batch(conn, sql);
        }
        conn.transaction_open = false;
    }

    /// The tables `reset()` empties: `tables_to_reset`, or every base table of the
    /// current database, minus `exclude_tables`.
    fn reset_tables(&self, conn: &mut driver::Conn) -> Result<Vec<String>> {
        let tables = if self.options.tables_to_reset.is_empty() {
            let database: Option<String> = conn
                .query_first("SELECT DATABASE()")
                .map_err(|e| plain_failure("reset: reading the current database", e))?
                .flatten();
            if database.is_none() {
                return Err(Error::unsupported(
                    NAME,
                    "reset() with no database selected",
                    "put the database in the URL (mysql://user@host/database) or set tables_to_reset",
                ));
            }
            conn.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            )
            .map_err(|e| plain_failure("reset: listing the tables", e))?
        } else {
            self.options.tables_to_reset.clone()
        };
        Ok(tables
            .into_iter()
            .filter(|t| !self.options.exclude_tables.contains(t) && !t.starts_with(capture::PREFIX))
            .collect())
    }

    /// `exec()`: refuses, before it runs, SQL that would commit the transaction of an
    /// active checkpoint.
    fn exec(&self, conn: &mut MySqlConn, stack: &Stack<MySqlMark>, sql: &str) -> Result<()> {
        if let Some(active) = stack.names().last() {
            let server_lexing = || {
                conn.query_first::<String, _>("SELECT @@SESSION.sql_mode")
                    .ok()
                    .flatten()
                    .map(|mode| Lexing::from_sql_mode(&mode))
            };
            if let Some(refused) = refusal(sql, server_lexing) {
                return Err(exec_refusal(&refused, active));
            }
        }
        run_batch(conn, sql).map_err(|e| plain_failure("exec", e))
    }

    /// `commit()`: commits, then re-opens the transaction and every active savepoint in
    /// the same round trip.
    fn commit(&self, conn: &mut MySqlConn, stack: &Stack<MySqlMark>) -> Result<()> {
        if self.capture() {
            return Err(Error::unsupported(
                NAME,
                "commit() with capture isolation",
                "capture opens no transaction: every write is committed and visible at once, and the rollback undoes it",
            ));
        }
        let Some(first) = stack.names().first() else {
            return run_batch(conn, "COMMIT").map_err(|e| plain_failure("commit", e));
        };
        let tx = self.tx_sql(conn);
        // RELEASE fails if the outermost savepoint (so the transaction) is gone, and then
        // nothing else runs.
        let mut sql = format!(
            "RELEASE SAVEPOINT {}; {}; {}",
            quote_backtick(NAME, first)?,
            tx.commit,
            tx.begin
        );
        for name in stack.names() {
            sql.push_str(&format!("; SAVEPOINT {}", quote_backtick(NAME, name)?));
        }
        run_batch(conn, &sql).map_err(|e| failure("commit", first, e))
    }

    /// Refuses a reset that would leave orphans: with foreign key checks off, emptying a
    /// table that a table outside the set references would leave the outside table's
    /// rows pointing at nothing (and with them on, ON DELETE CASCADE would empty it).
    fn refuse_orphans(conn: &mut driver::Conn, tables: &[String]) -> Result<()> {
        let references: Vec<(String, String, String, String, String)> = conn
            .query(
                "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DATABASE() \
                 FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL \
                 ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME",
            )
            .map_err(|e| plain_failure("reset: reading the foreign keys", e))?;
        for (schema, child, constraint, parent, db) in references {
            let inside = schema == db && tables.contains(&child);
            if tables.contains(&parent) && !inside {
                return Err(orphan_refusal(&schema, &child, &constraint, &parent));
            }
        }
        Ok(())
    }
}

impl Backend for MySql {
    const NAME: &'static str = NAME;
    type Options = MySqlOptions;
    type Conn = MySqlConn;
    type Mark = MySqlMark;

    /// Parses the URL (a bad one is an [`Error::Config`] naming it, password masked).
    fn new(config: &BackendConfig, options: MySqlOptions) -> Result<Self> {
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        let parsed = parse_url(url.expose()).map_err(|why| {
            // Shown (redacted) only with its scheme: without it, where the password ends is
            // a guess.
            let raw = url.expose();
            let shown = if raw.starts_with("mysql://") || raw.starts_with("mariadb://") {
                url.to_string()
            } else {
                "the URL (not shown)".to_owned()
            };
            Error::config(
                &config.source,
                format!("backends.{}.url", config.entry),
                format!("{shown} is not a MySQL URL: {why}; write mysql://user:password@host:port/database, with @ : / in the password as %40 %3A %2F"),
            )
        })?;
        let connect_timeout = options
            .connect_timeout_ms
            .map(Duration::from_millis)
            .or(config.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let database = parsed.opts.get_db_name().map(str::to_owned);
        let io_timeout = match config.io_timeout {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
            None => Some(DEFAULT_IO_TIMEOUT),
        };
        if options.isolation == MySqlIsolation::Capture && database.is_none() {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.url", config.entry),
                "capture needs the database in the URL (mysql://user@host/database): it is the one whose writes are rolled back",
            ));
        }
        Ok(MySql {
            database,
            url,
            connect_timeout,
            url_connect_timeout: parsed.connect_timeout,
            io_timeout,
            lock_timeout: config.lease_timeout.unwrap_or(Duration::from_secs(300)),
            options,
        })
    }

    /// Connects within the connect timeout, the handshake included (the driver's own
    /// timeout bounds only the TCP connect, so the attempt runs on a helper thread).
    fn connect(&self) -> Result<MySqlConn> {
        let url = self.url.expose();
        let parsed = parse_url(url).map_err(|why| Error::connect(NAME, url, why))?;
        let timeout = parsed.connect_timeout.unwrap_or(self.connect_timeout);
        let tcp_timeout = parsed.opts.get_tcp_connect_timeout().or(Some(timeout));
        // Reads and writes that stall (a server that accepted and stopped answering) fail
        // after the I/O timeout instead of hanging the test, unless the URL sets its own.
        let read_timeout = parsed.opts.get_read_timeout().copied().or(self.io_timeout);
        let write_timeout = parsed.opts.get_write_timeout().copied().or(self.io_timeout);
        let opts = OptsBuilder::from_opts(parsed.opts)
            .tcp_connect_timeout(tcp_timeout)
            .read_timeout(read_timeout)
            .write_timeout(write_timeout);
        let attempt = super::within("venomqa-mysql-connect", timeout, move || {
            driver::Conn::new(opts)
        })
        .map_err(|e| Error::connect(NAME, url, e))?;
        match attempt {
            Some(Ok(conn)) => Ok(MySqlConn {
                conn,
                transaction_open: false,
                capture: None,
            }),
            Some(Err(e)) => Err(Error::connect(NAME, url, Described::new(e))),
            None => Err(Error::connect(
                NAME,
                url,
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no completed handshake within the connect timeout of {} ms",
                        timeout.as_millis()
                    ),
                ),
            )),
        }
    }

    fn connect_timeout(&self) -> Option<Duration> {
        Some(self.url_connect_timeout.unwrap_or(self.connect_timeout))
    }

    /// Only with `session_reset: each_test` (the default), whose reset is also the health
    /// check; with `never` the first checkpoint's batch proves the connection instead.
    fn recycle_on_lease(&self) -> bool {
        self.options.session_reset == SessionReset::EachTest || self.capture()
    }

    /// Refused, reset or closed connections, and the server's "shutdown in progress" and
    /// "too many connections": what a restart (or a burst) shows for a moment.
    fn is_transient(&self, error: &Error) -> bool {
        match error.driver::<driver::Error>() {
            Some(e @ (driver::Error::IoError(_) | driver::Error::CodecError(_))) => {
                io_kind(e).is_none_or(crate::error::is_transient_io)
            }
            Some(driver::Error::DriverError(driver::DriverError::CouldNotConnect(Some((
                _,
                _,
                kind,
            ))))) => crate::error::is_transient_io(*kind),
            Some(driver::Error::MySqlError(e)) => matches!(
                e.code,
                ER_SERVER_SHUTDOWN | ER_CON_COUNT_ERROR | ER_CONNECTION_KILLED
            ),
            _ => error.is_transient(),
        }
    }

    /// One round trip that proves the connection works AND wipes what the previous test
    /// left in its session: `COM_RESET_CONNECTION` (the driver's `Conn::reset`, which
    /// falls back to `COM_CHANGE_USER` on servers without it) drops temporary tables,
    /// clears user variables (`@v`), puts session variables (`FOREIGN_KEY_CHECKS`,
    /// `sql_mode`, the isolation level, `SET NAMES`, ...) back to the global values,
    /// releases named locks (`GET_LOCK`) and table locks, rolls back an open transaction,
    /// and empties the driver's prepared-statement cache. It keeps the selected database,
    /// which the next test's first checkpoint selects again.
    fn recycle(&self, conn: &mut MySqlConn) -> Result<()> {
        conn.conn
            .reset()
            .map_err(|e| plain_failure("resetting the session before a lease", e))?;
        conn.transaction_open = false;
        Ok(())
    }

    fn checkpoint(&self, conn: &mut MySqlConn, at: Point<'_>) -> Result<MySqlMark> {
        if self.capture() {
            let mark = if at.is_outermost() {
                self.begin_capture(conn)?
            } else {
                let (driver, capture) = Self::installed(conn)?;
                capture.mark(driver, &format!("checkpoint {:?}", at.name()))?
            };
            return Ok(MySqlMark(Some(mark)));
        }
        let q = quote_backtick(NAME, at.name())?;
        let sql = if at.is_outermost() {
            // A test that ran `USE other_db` left it selected on the pooled connection
            // (COM_RESET_CONNECTION keeps the database): select the URL's again, in the
            // same round trip as the transaction.
            let use_db = match &self.database {
                Some(db) => format!("USE {}; ", quote_backtick(NAME, db)?),
                None => String::new(),
            };
            format!("{use_db}{}; SAVEPOINT {q}", self.tx_sql(conn).begin)
        } else {
            // Outside a transaction SAVEPOINT is a silent no-op and RELEASE fails: the
            // pair proves the transaction is still open, in the same round trip.
            format!("SAVEPOINT {q}; RELEASE SAVEPOINT {q}; SAVEPOINT {q}")
        };
        let outer = at.parent().unwrap_or(at.name());
        run_batch(conn, &sql)
            .map_err(|e| failure(format!("checkpoint {:?}", at.name()), outer, e))?;
        if at.is_outermost() {
            conn.transaction_open = true;
        }
        Ok(MySqlMark(None))
    }

    fn rollback(&self, conn: &mut MySqlConn, at: Point<'_>, mark: &MySqlMark) -> Result<()> {
        if let Some(mark) = &mark.0 {
            let (driver, capture) = Self::installed(conn)?;
            return capture.rollback(
                driver,
                mark,
                &format!("rollback to checkpoint {:?}", at.name()),
            );
        }
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_backtick(NAME, at.name())?);
        run_batch(conn, &sql).map_err(|e| {
            failure(
                format!("rollback to checkpoint {:?}", at.name()),
                at.name(),
                e,
            )
        })
    }

    /// At depth 0 it commits: `RELEASE SAVEPOINT ..; COMMIT` (the RELEASE fails if the
    /// transaction is gone, and then the COMMIT does not run).
    fn release(&self, conn: &mut MySqlConn, at: Point<'_>, mark: &MySqlMark) -> Result<()> {
        if mark.0.is_some() {
            return if at.is_outermost() {
                self.end_capture(conn)
            } else {
                Ok(())
            };
        }
        let q = quote_backtick(NAME, at.name())?;
        let sql = if at.is_outermost() {
            format!("RELEASE SAVEPOINT {q}; {}", self.tx_sql(conn).commit)
        } else {
            format!("RELEASE SAVEPOINT {q}")
        };
        run_batch(conn, &sql).map_err(|e| {
            failure(
                format!("release of checkpoint {:?}", at.name()),
                at.name(),
                e,
            )
        })?;
        if at.is_outermost() {
            conn.transaction_open = false;
        }
        Ok(())
    }

    /// One round trip: `ROLLBACK TO SAVEPOINT ..; ROLLBACK` at depth 0 (the `ROLLBACK TO`
    /// fails if the savepoint is gone, so a lost transaction is reported instead of a
    /// `ROLLBACK` that undid nothing), `ROLLBACK TO ..; RELEASE ..` deeper.
    fn discard(&self, conn: &mut MySqlConn, at: Point<'_>, mark: &MySqlMark) -> Result<()> {
        if mark.0.is_some() {
            self.rollback(conn, at, mark)?;
            return if at.is_outermost() {
                self.end_capture(conn)
            } else {
                Ok(())
            };
        }
        let q = quote_backtick(NAME, at.name())?;
        let sql = if at.is_outermost() {
            format!("ROLLBACK TO SAVEPOINT {q}; {}", self.tx_sql(conn).rollback)
        } else {
            format!("ROLLBACK TO SAVEPOINT {q}; RELEASE SAVEPOINT {q}")
        };
        match run_batch(conn, &sql) {
            Ok(()) => {
                if at.is_outermost() {
                    conn.transaction_open = false;
                }
                Ok(())
            }
            Err(e) => {
                let lost = is_connection_lost(&e);
                let error = failure(
                    format!("rollback of checkpoint {:?}", at.name()),
                    at.name(),
                    e,
                );
                if at.is_outermost() && !lost {
                    // End whatever transaction is left (one the test opened after an
                    // implicit commit, or an XA transaction the server marked
                    // rollback-only).
                    self.abandon(conn);
                }
                Err(error)
            }
        }
    }

    /// Refuses, while the test's checkpoints are still active and before anything
    /// changes, a reset that would leave orphans: with foreign key checks off while it
    /// runs, emptying a table that a table it does not empty references (by a foreign
    /// key) would leave that table's rows pointing at nothing.
    fn check_reset(&self, conn: &mut MySqlConn) -> Result<()> {
        let tables = self.reset_tables(conn)?;
        if tables.is_empty() {
            return Ok(());
        }
        Self::refuse_orphans(conn, &tables)
    }

    /// Empties `tables_to_reset` (default: every base table of the current database, not
    /// views) except `exclude_tables`, with foreign key checks off for the session while
    /// it runs. An open transaction is rolled back first. With [`ResetStrategy::Delete`]
    /// (the default) it is one transaction: on error nothing changes.
    fn reset(&self, conn: &mut MySqlConn) -> Result<()> {
        if conn.transaction_open {
            // The discard before the reset failed: end the transaction as it was opened.
            self.abandon(conn);
        } else {
            run_batch(conn, "ROLLBACK")
                .map_err(|e| plain_failure("reset: ending the open transaction", e))?;
        }
        let tables = self.reset_tables(conn)?;
        if tables.is_empty() {
            return Ok(());
        }
        // With capture installed, the reset itself is not logged (its deletes are final).
        let mut sql = String::from("SET @venomqa_replay = 1, FOREIGN_KEY_CHECKS = 0;");
        match self.options.reset_strategy {
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
        sql.push_str(" SET FOREIGN_KEY_CHECKS = 1, @venomqa_replay = NULL");
        run_batch(conn, &sql).map_err(|e| {
            if !is_connection_lost(&e) {
                let _ = run_batch(
                    conn,
                    "ROLLBACK; SET FOREIGN_KEY_CHECKS = 1, @venomqa_replay = NULL",
                );
            }
            plain_failure(format!("reset of tables {tables:?}"), e)
        })
    }

    /// Runs `script` (statements separated by `;`), reporting an error in any of them.
    /// Afterwards, outside a test's transaction, the session is reset (as
    /// [`recycle`](Self::recycle) does), so the session state a script leaves behind (a
    /// dump's `SET FOREIGN_KEY_CHECKS = 0`, variables, temporary tables) does not outlive
    /// it. Its data and schema changes stay.
    fn execute_script(&self, conn: &mut MySqlConn, script: &str) -> Result<()> {
        let ran = run_batch(conn, script).map_err(|e| plain_failure("a setup script", e));
        if conn.transaction_open {
            return ran;
        }
        let reset = conn
            .conn
            .reset()
            .map_err(|e| plain_failure("resetting the session after a setup script", e));
        ran.and(reset)
    }

    fn pool_size(&self) -> usize {
        if self.capture() {
            // One session at a time rolls the shared database back.
            1
        } else {
            test_threads()
        }
    }

    fn captures(&self, _: &MySqlConn) -> bool {
        self.capture()
    }

    fn url(&self, _: &MySqlConn) -> Result<SecretUrl> {
        if self.capture() {
            Ok(self.url.clone())
        } else {
            Err(Error::unsupported(
                NAME,
                "a URL for other connections",
                "the test's changes live in its own connection's transaction, which other connections do not see; use `isolation: capture`",
            ))
        }
    }

    fn diff(
        &self,
        conn: &mut MySqlConn,
        at: Point<'_>,
        mark: &MySqlMark,
    ) -> Result<crate::capture::diff::Diff> {
        match &mark.0 {
            Some(mark) => {
                let (driver, capture) = Self::installed(conn)?;
                capture.diff(driver, mark)
            }
            None => Err(Error::unsupported(
                NAME,
                format!("diff() since checkpoint {:?}", at.name()),
                "only capture isolation keeps a record of changes; use `isolation: capture`",
            )),
        }
    }
}

impl Manager<MySql> {
    /// Runs `sql` (one statement or several separated by `;`), reading every result so an
    /// error in any statement is returned (the driver's `query_drop` drops errors after
    /// the first statement of a batch).
    ///
    /// While a checkpoint is active, a statement that would commit the transaction
    /// implicitly (DDL such as `CREATE TABLE`, `TRUNCATE`, `LOCK TABLES`, or `COMMIT`,
    /// `BEGIN`, `SET autocommit = 1`, ...) is refused **before it runs** with
    /// [`Error::Unsupported`], so the test's isolation survives. `CREATE TEMPORARY TABLE`
    /// is allowed. The text is read as the server reads it: the bodies of executable
    /// comments (`/*!40000 ... */`) count, `--` needs a space after it to start a comment,
    /// and when the meaning of the batch depends on `NO_BACKSLASH_ESCAPES` or
    /// `ANSI_QUOTES` the session's `sql_mode` is asked (one extra round trip, only then).
    /// `CALL`, `PREPARE`, `EXECUTE` and compound statements (`IF`, `BEGIN NOT ATOMIC`,
    /// labels, loops) are refused too, since their text does not show what they run; run
    /// them on the connection itself.
    ///
    /// A driver error is the [`source`](std::error::Error::source) of the error returned:
    ///
    /// ```
    /// use venomqa::mysql::{driver, MySqlStateManager};
    /// use venomqa::StateManager;
    ///
    /// let mut db = MySqlStateManager::from_url("mysql://root@127.0.0.1/test")?;
    /// db.connect()?;
    /// db.checkpoint("start")?;
    /// let refused = db.exec("CREATE TEMPORARY TABLE vq_mysql_scratch (v INT PRIMARY KEY); CREATE TABLE vq_mysql_never (v INT)");
    /// assert!(refused.unwrap_err().to_string().contains("CREATE TABLE"));
    /// db.exec("CREATE TEMPORARY TABLE vq_mysql_scratch (v INT PRIMARY KEY); INSERT INTO vq_mysql_scratch VALUES (1)")?;
    /// let duplicate = db.exec("INSERT INTO vq_mysql_scratch VALUES (1)").unwrap_err();
    /// assert!(matches!(duplicate.driver::<driver::Error>(), Some(driver::Error::MySqlError(e)) if e.code == 1062));
    /// db.discard("start")?;
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn exec(&mut self, sql: &str) -> Result<()> {
        self.with(|backend, conn, stack| backend.exec(conn, stack, sql))
    }

    /// Commits the current transaction, making every change so far permanent, and keeps
    /// the active checkpoints usable: the transaction and its savepoints are re-opened in
    /// the same round trip, so later changes are still rolled back. For the rare test that
    /// needs data committed (for example, to be seen by another connection).
    pub fn commit(&mut self) -> Result<()> {
        self.with(|backend, conn, stack| backend.commit(conn, stack))
    }
}

impl crate::Session<MySqlStateManager> {
    /// The test's `mysql::Conn`: run the code under test through it, with the `mysql`
    /// crate's API (import [`driver::prelude::Queryable`]).
    pub fn conn(&mut self) -> &mut driver::Conn {
        &mut self.connection().conn
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> Parsed {
        parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn url_forms() {
        let o = parsed("mysql://root@127.0.0.1:3306/test").opts;
        assert_eq!(
            (
                &*o.get_ip_or_hostname(),
                o.get_tcp_port(),
                o.get_user(),
                o.get_pass(),
                o.get_db_name()
            ),
            ("127.0.0.1", 3306, Some("root"), None, Some("test"))
        );
        let p = parsed(
            "mysql://vq:p%40ss%3Aw%2Frd@db.example:3307/my%20db?connect_timeout_ms=250&prefer_socket=false",
        );
        assert_eq!(p.opts.get_pass(), Some("p@ss:w/rd"));
        assert_eq!(p.opts.get_db_name(), Some("my db"));
        assert_eq!(
            (&*p.opts.get_ip_or_hostname(), p.opts.get_tcp_port()),
            ("db.example", 3307)
        );
        assert_eq!(p.connect_timeout, Some(Duration::from_millis(250)));
        assert!(!p.opts.get_prefer_socket());
        let o = parsed("mariadb://u:a%2Fb%3Fc%23d@[::1]/x").opts;
        assert_eq!((o.get_tcp_port(), o.get_pass()), (3306, Some("a/b?c#d")));
        assert_eq!(o.get_ip_or_hostname(), "[::1]");
        let o = parsed("mysql://root@localhost/test?socket=%2Frun%2Fmysqld%2Fmysqld.sock").opts;
        assert_eq!(o.get_socket(), Some("/run/mysqld/mysqld.sock"));
        assert!(o.get_prefer_socket(), "the driver's default");
        let o = parsed("mysql:///test").opts;
        assert_eq!(
            (&*o.get_ip_or_hostname(), o.get_db_name()),
            ("127.0.0.1", Some("test"))
        );

        // (Parsed has no Debug: the driver's options hold the password.)
        let error = |url: &str| parse_url(url).err().expect(url);
        assert!(error("postgres://h/db").contains("postgres"));
        assert!(error("mysql://h/db?bogus=1").contains("bogus"));
        for bad in [
            "mysql://u:s3cret@h/db?connect_timeout_ms=x",
            "mysql://u:s3cret@h/db?prefer_socket=maybe",
            "mysql://u:s3cret@h:99999/db",
        ] {
            let e = error(bad);
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn options_from_config() {
        let mut config = BackendConfig::new("mysql")
            .with_option("reset_strategy", "truncate")
            .with_option("transaction", "xa")
            .with_option("exclude_tables", vec!["a"]);
        config.connect_timeout = Some(Duration::from_millis(1500));
        let m = crate::state::build::<MySql>(&config).unwrap();
        assert_eq!(m.url.expose(), DEFAULT_URL);
        assert_eq!(m.database(), Some("test"));
        assert_eq!(m.connect_timeout, Duration::from_millis(1500));
        assert_eq!(m.options.reset_strategy, ResetStrategy::Truncate);
        assert_eq!(m.options.transaction, TransactionMode::Xa);
        assert_eq!(m.options.exclude_tables, ["a"]);

        let legacy = config.clone().with_option(
            "options",
            serde_yaml_ng::to_value(
                [("connect_timeout_ms", "60000")]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .unwrap(),
        );
        let m = crate::state::build::<MySql>(&legacy).unwrap();
        assert_eq!(m.connect_timeout, Duration::from_secs(60));

        let e = crate::state::build::<MySql>(
            &config.clone().with_option("transaction", "serializable"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("backends.mysql.transaction") && e.contains("xa"),
            "{e}"
        );
        let e = crate::state::build::<MySql>(&config.with_option("reset_stratgy", "delete"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reset_stratgy") && e.contains("reset_strategy"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_url_is_a_config_error_without_the_password() {
        let config = BackendConfig::new("mysql").with_url("mysql://u:s3cr%40t@h/db?nonsense=1");
        let e = MySql::new(&config, MySqlOptions::default()).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Config { .. }), "{text}");
        assert!(
            text.contains("nonsense") && text.contains("backends.mysql.url"),
            "{text}"
        );
        assert!(!text.contains("s3cr"), "{text}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let m = MySql::from_url("mysql://u:s3cr%40t@h/db").unwrap();
        let text = format!("{m:?} {:?}", Manager::new(m.clone()));
        assert!(!text.contains("s3cr") && text.contains("u:***@h"), "{text}");
    }

    /// Every message of the backend's own making is one line of at most 300 characters.
    #[test]
    fn messages_are_one_short_line() {
        let io = || {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "Connection reset by peer (os error 104)",
            )
        };
        let server = |code: u16, message: &str| {
            driver::Error::MySqlError(driver::MySqlError {
                state: "HY000".into(),
                code,
                message: message.into(),
            })
        };
        let long_name = "a".repeat(63);
        let samples = [
            savepoint_gone(&long_name),
            failure(
                format!("rollback of checkpoint {long_name:?}"),
                &long_name,
                driver::Error::IoError(io()),
            ),
            failure(
                format!("rollback of checkpoint {long_name:?}"),
                &long_name,
                server(
                    1614,
                    "XA_RBDEADLOCK: Transaction branch was rolled back: deadlock was detected",
                ),
            ),
            failure(
                format!("rollback to checkpoint {long_name:?}"),
                &long_name,
                server(
                    ER_SP_DOES_NOT_EXIST,
                    "SAVEPOINT venomqa_root does not exist",
                ),
            ),
            failure(
                "exec",
                &long_name,
                server(1062, "Duplicate entry '1' for key 'PRIMARY'"),
            ),
            exec_refusal(&Refusal::Commits("CREATE TABLE".into()), &long_name),
            exec_refusal(&Refusal::Opaque("EXECUTE".into()), &long_name),
            // Its length grows with the names (of the user's tables): typical ones here.
            orphan_refusal("shop_test", "order_items", "order_items_ibfk_1", "orders"),
            Error::connect(
                NAME,
                "mysql://root:s3cret@127.0.0.1:1/test",
                driver::Error::IoError(io()),
            ),
        ];
        for e in samples {
            check_shape(&e.to_string());
        }
    }

    pub(super) fn check_shape(text: &str) {
        assert!(!text.contains('\n') && !text.contains("  "), "{text}");
        assert!(text.len() <= 300, "{} chars: {text}", text.len());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text as a URL: a backend or a configuration error naming the key, never a
        /// panic, and never the password.
        #[test]
        fn any_url_builds_or_errs_without_the_password(
            prefix in prop_oneof![Just("mysql://".to_owned()), Just("mariadb://".to_owned()), Just("".to_owned()), "\\PC{0,8}"],
            user in "\\PC{0,8}",
            password in "[^\\x00]{3,16}",
            rest in "\\PC{0,40}",
        ) {
            let url = format!("{prefix}{user}:{password}@{rest}");
            let config = BackendConfig::new("mysql").with_url(url.as_str());
            match MySql::new(&config, MySqlOptions::default()) {
                Ok(backend) => {
                    let shown = format!("{backend:?}");
                    prop_assert!(!shown.contains(&password), "{}", shown);
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(matches!(e, Error::Config { .. }), "{}", text);
                    prop_assert!(text.contains("backends.mysql.url"), "{}", text);
                    prop_assert!(!text.contains(&password), "{}", text);
                    prop_assert!(!text.contains('\n'), "{}", text);
                }
            }
        }
    }
}
