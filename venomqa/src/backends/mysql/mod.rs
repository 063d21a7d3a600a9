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
mod capturing;
mod connect;
mod errors;
mod options;
mod reset;
mod session;
mod statements;
mod transaction;
mod url;

use std::time::Duration;

use crate::backend::Backend;
use crate::backends::sql_capture::{pool_size, url_for_others};
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::redact::SecretUrl;

pub use connect::MySqlConn;
pub use options::{MySqlIsolation, MySqlOptions, ResetStrategy, SessionReset, TransactionMode};

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

/// How long the server may stay silent while a read or write waits, unless `io_timeout_ms`
/// says otherwise.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The MySQL backend's [`StateManager`](crate::StateManager).
pub type MySqlStateManager = Manager<MySql>;

/// A session on the MySQL backend; [`conn`](crate::Session::conn) gives the test the
/// `mysql::Conn` its changes must go through.
pub type MySqlSession = crate::Session<MySqlStateManager>;

capture_backend! {
    /// MySQL / MariaDB with capture isolation (`isolation: capture`): the database's own
    /// triggers record every write, by any connection or process, and a rollback undoes
    /// them. The [`MySql`] backend's URL, options and connections.
    MySqlCapture(MySql), MySqlCaptureStateManager, MySqlCaptureSession,
    is_capture: |b| b.capture(),
    wanted: |o: MySqlOptions| o.isolation == MySqlIsolation::Capture,
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

impl Backend for MySql {
    const NAME: &'static str = NAME;
    type Options = MySqlOptions;
    type Conn = MySqlConn;
    type Mark = MySqlMark;

    /// Parses the URL (a bad one is an [`Error::Config`] naming it, password masked).
    fn new(config: &BackendConfig, options: MySqlOptions) -> Result<Self> {
        Self::build(config, options)
    }

    /// Connects within the connect timeout, the handshake included (the driver's own
    /// timeout bounds only the TCP connect, so the attempt runs on a helper thread).
    fn connect(&self) -> Result<MySqlConn> {
        self.open()
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
        errors::is_transient(error)
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
            .map_err(|e| errors::plain_failure("resetting the session before a lease", e))?;
        conn.transaction_open = false;
        Ok(())
    }

    fn checkpoint(&self, conn: &mut MySqlConn, at: Point<'_>) -> Result<MySqlMark> {
        if self.capture() {
            self.capture_checkpoint(conn, at)
        } else {
            self.savepoint(conn, at)
        }
    }

    fn rollback(&self, conn: &mut MySqlConn, at: Point<'_>, mark: &MySqlMark) -> Result<()> {
        match &mark.0 {
            Some(mark) => self.capture_rollback(conn, at, mark),
            None => self.rollback_to_savepoint(conn, at),
        }
    }

    /// At depth 0 it commits: `RELEASE SAVEPOINT ..; COMMIT` (the RELEASE fails if the
    /// transaction is gone, and then the COMMIT does not run).
    fn release(&self, conn: &mut MySqlConn, at: Point<'_>, mark: &MySqlMark) -> Result<()> {
        match &mark.0 {
            Some(_) => self.capture_release(conn, at),
            None => self.release_savepoint(conn, at),
        }
    }

    /// One round trip: `ROLLBACK TO SAVEPOINT ..; ROLLBACK` at depth 0 (the `ROLLBACK TO`
    /// fails if the savepoint is gone, so a lost transaction is reported instead of a
    /// `ROLLBACK` that undid nothing), `ROLLBACK TO ..; RELEASE ..` deeper.
    fn discard(&self, conn: &mut MySqlConn, at: Point<'_>, mark: &MySqlMark) -> Result<()> {
        match &mark.0 {
            Some(mark) => self.capture_discard(conn, at, mark),
            None => self.discard_savepoint(conn, at),
        }
    }

    /// Refuses, while the test's checkpoints are still active and before anything
    /// changes, a reset that would leave orphans: with foreign key checks off while it
    /// runs, emptying a table that a table it does not empty references (by a foreign
    /// key) would leave that table's rows pointing at nothing.
    fn check_reset(&self, conn: &mut MySqlConn) -> Result<()> {
        self.check_reset_tables(conn)
    }

    /// Empties `tables_to_reset` (default: every base table of the current database, not
    /// views) except `exclude_tables`, with foreign key checks off for the session while
    /// it runs. An open transaction is rolled back first. With [`ResetStrategy::Delete`]
    /// (the default) it is one transaction: on error nothing changes.
    fn reset(&self, conn: &mut MySqlConn) -> Result<()> {
        self.empty_tables(conn)
    }

    /// Runs `script` (statements separated by `;`), reporting an error in any of them.
    /// Afterwards, outside a test's transaction, the session is reset (as
    /// [`recycle`](Self::recycle) does), so the session state a script leaves behind (a
    /// dump's `SET FOREIGN_KEY_CHECKS = 0`, variables, temporary tables) does not outlive
    /// it. Its data and schema changes stay.
    fn execute_script(&self, conn: &mut MySqlConn, script: &str) -> Result<()> {
        self.run_script(conn, script)
    }

    /// One connection under capture (one session at a time rolls the shared database
    /// back), else one per test thread.
    fn pool_size(&self) -> usize {
        pool_size(self.capture())
    }

    fn captures(&self, _: &MySqlConn) -> bool {
        self.capture()
    }

    fn url(&self, _: &MySqlConn) -> Result<SecretUrl> {
        url_for_others(NAME, self.capture(), &self.url)
    }

    fn diff(
        &self,
        conn: &mut MySqlConn,
        at: Point<'_>,
        mark: &MySqlMark,
    ) -> Result<crate::capture::diff::Diff> {
        self.capture_diff(conn, at, mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let m = MySql::from_url("mysql://u:s3cr%40t@h/db").unwrap();
        let text = format!("{m:?} {:?}", Manager::new(m.clone()));
        assert!(!text.contains("s3cr") && text.contains("u:***@h"), "{text}");
    }
}
