//! The PostgreSQL backend, through the `postgres` crate (synchronous client, no TLS).
//!
//! Isolation is one transaction per test with a SAVEPOINT per checkpoint, on one
//! `postgres::Client` per pooled connection. PostgreSQL DDL is transactional, so tables,
//! indexes and schemas a test creates are rolled back with its rows.
//!
//! | operation | SQL (one round trip each) |
//! |---|---|
//! | first checkpoint `x` | `BEGIN; SAVEPOINT "x"` |
//! | later checkpoint `y` | `SAVEPOINT "y"` |
//! | rollback to `y` | `ROLLBACK TO SAVEPOINT "y"` |
//! | release `y` / release the outermost `x` | `RELEASE SAVEPOINT "y"` / `RELEASE SAVEPOINT "x"; COMMIT` |
//! | discard `y` / discard the outermost `x` (end of test) | `ROLLBACK TO SAVEPOINT "y"; RELEASE SAVEPOINT "y"` / `ROLLBACK TO SAVEPOINT "x"; ROLLBACK; SELECT pg_advisory_unlock_all(); RESET ALL; DISCARD TEMP` |
//!
//! The `ROLLBACK TO SAVEPOINT` before the final `ROLLBACK` (and the `RELEASE` before the
//! `COMMIT`) costs no extra round trip and proves the transaction is still ours: a bare
//! `ROLLBACK` or `COMMIT` outside a transaction only warns, and a `COMMIT` of an aborted
//! transaction silently rolls back, so without the probe a lost transaction would be
//! reported as a successful rollback or commit. With it, venomqa reports
//! [`Error::StateLost`] instead.
//!
//! The statements after the final `ROLLBACK` clear the session state a rollback leaves on
//! the pooled connection (session advisory locks, settings, temporary tables), so the next
//! test on it starts clean.
//!
//! URLs: `postgres://user:password@host:port/database` or `postgresql://...` (the
//! `postgres` crate's URL syntax, including `?connect_timeout=`, `?application_name=` and
//! Unix socket hosts such as `postgresql:///test?host=/var/run/postgresql`). The default is
//! [`DEFAULT_URL`]. Key/value connection strings (`host=.. password=..`) are refused.
//!
//! Keys of its `venomqa.yaml` entry: the common ones (`url`, `pool_size`, default one
//! connection per test thread, `connect_timeout_ms`, default 10000, ...) and those of
//! [`PostgresOptions`].
//!
//! ```
//! use venomqa::postgres::{Postgres, PostgresStateManager};
//! use venomqa::{Manager, StateManager};
//!
//! let mut db: PostgresStateManager = Manager::new(Postgres::from_url("postgres://postgres@127.0.0.1:5432/test")?);
//! db.connect()?;
//! db.checkpoint("start")?;
//! db.connection()?.batch_execute("CREATE TABLE vq_pg_doc (v INT); INSERT INTO vq_pg_doc VALUES (1)").unwrap();
//! db.checkpoint("inner")?;
//! db.connection()?.execute("DELETE FROM vq_pg_doc", &[]).unwrap();
//! db.rollback("inner")?; // the row is back
//! let n: i64 = db.connection()?.query_one("SELECT COUNT(*) FROM vq_pg_doc", &[]).unwrap().get(0);
//! assert_eq!(n, 1);
//! db.discard("start")?; // one ROLLBACK: the table is gone too (DDL is transactional)
//! let gone: Option<String> = db.connection()?
//!     .query_one("SELECT to_regclass('vq_pg_doc')::text", &[]).unwrap().get(0);
//! assert_eq!(gone, None);
//! # Ok::<(), venomqa::Error>(())
//! ```
//!
//! # Capture
//!
//! With `isolation: capture` the test opens no transaction: venomqa installs (once, under
//! the reserved prefix `_vq_`) statement triggers with transition tables that log every
//! change any connection makes to the tables of `schemas` into undo tables, and a
//! rollback restores them. So an API server in another process, or the app's own pool,
//! can write, and [`Session::url`](crate::Session::url) tells it where. What is restored:
//! every row of every table (cascades fire triggers on PostgreSQL; TRUNCATE is copied by a
//! `BEFORE TRUNCATE` trigger; keyless tables are restored as multisets of whole rows),
//! and every sequence of `schemas`.
//!
//! - A checkpoint is the database's snapshot: a transaction that was not committed when
//!   it was taken counts as after it, whole, so no transaction is cut in two. A rollback
//!   waits (up to `quiescence_timeout_ms`, default 5000) for other sessions' write
//!   transactions, then names them.
//! - As a superuser (or with `GRANT SET ON PARAMETER session_replication_role`, PostgreSQL
//!   15+) the restore turns triggers and foreign-key checks off and is exact. Otherwise it
//!   restores in foreign-key order; a cycle it cannot order fails the rollback with nothing
//!   restored.
//! - After each rollback venomqa proves it (no log entry after the checkpoint left, the
//!   sequences and the schema as they were), or runs it again until the timeout and then
//!   fails naming what is wrong.
//! - Sessions on one database take turns, across processes too (an advisory lock); a
//!   test process killed mid-session is restored by the next session.
//! - DDL belongs in setup: a schema change between a checkpoint and its rollback fails the
//!   rollback, saying what changed, and restores nothing.
//! - Capture needs to own the tables (or the TRIGGER privilege on them) and CREATE on
//!   their schemas, and PostgreSQL 13 or later. [`Postgres::uninstall_capture`] removes
//!   everything.

use std::time::Duration;

mod capture;
mod capturing;
mod connect;
mod errors;
mod options;
mod reset;
mod sequences;
mod session;
mod stall;
mod transaction;

use ::postgres::{Client, Config};
use parking_lot::Mutex;

use crate::backend::Backend;
use crate::backends::sql_capture::{pool_size, url_for_others};
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::redact::SecretUrl;
use errors::{fail, DriverError, Stage};
use sequences::{SequenceList, SequenceState};

pub use options::{PostgresIsolation, PostgresOptions};

pub use crate::capture::proof::CaptureProof;
/// The `postgres` crate venomqa is built with, so your tests can name its types (such as
/// `driver::Client`, `driver::GenericClient` or `driver::error::SqlState`) without
/// depending on a matching version.
pub use ::postgres as driver;

const NAME: &str = "postgres";

/// The URL used when none is configured: the conventional local server.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long a connection attempt may take unless `connect_timeout_ms` (or the URL's
/// `connect_timeout`) says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server may stay silent while it owes an answer, unless `io_timeout_ms`
/// says otherwise (0: forever). Only for TCP connections: see `io_timeout_ms` in the README.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(60);

/// What the discard of the outermost checkpoint runs after its `ROLLBACK` (same round
/// trip), because a rollback does not undo it: session advisory locks
/// (`pg_advisory_lock`), session settings made outside the transaction, and temporary
/// tables. `RESET ALL` goes back to the session defaults, which include the URL's
/// `options=-c ..` and `application_name`. Not `DISCARD ALL`: it would drop the prepared
/// statements the `postgres` client caches.
const SESSION_CLEANUP: &str = "SELECT pg_advisory_unlock_all(); RESET ALL; DISCARD TEMP";

/// The PostgreSQL backend's [`StateManager`](crate::StateManager): one `postgres::Client`
/// (its [`connection`](Manager::connection)) and its checkpoints.
pub type PostgresStateManager = Manager<Postgres>;

/// A session on the PostgreSQL backend; [`client`](crate::Session::client) gives the test
/// the `postgres::Client` its changes must go through.
pub type PostgresSession = crate::Session<PostgresStateManager>;

capture_backend! {
    /// PostgreSQL with capture isolation (`isolation: capture`): the database's own
    /// triggers record every write, by any connection or process, and a rollback undoes
    /// them. The [`Postgres`] backend's URL, options and connections.
    PostgresCapture(Postgres), PostgresCaptureStateManager, PostgresCaptureSession,
    is_capture: |b| b.capture(),
    wanted: |o: PostgresOptions| o.isolation == PostgresIsolation::Capture,
}

/// The PostgreSQL backend: a transaction per test and a SAVEPOINT per checkpoint on one
/// `postgres::Client` (see the [module docs](self)).
///
/// Built from a configuration entry by the pool, or by hand with [`from_url`](Self::from_url)
/// and the builder methods:
///
/// ```
/// use std::time::Duration;
/// use venomqa::postgres::{Postgres, PostgresStateManager};
/// use venomqa::Manager;
///
/// let backend = Postgres::from_url("postgresql://postgres@127.0.0.1:5432/test")?
///     .schemas(["public"])
///     .exclude_tables(["schema_migrations"])
///     .connect_timeout(Duration::from_secs(2));
/// let db: PostgresStateManager = Manager::open(backend)?;
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug)]
pub struct Postgres {
    url: SecretUrl,
    /// The parsed URL, with the connect timeout set (its `Debug` hides the password).
    config: Config,
    timeout: Duration,
    /// How long the server may stay silent while it owes an answer (`None`: forever).
    io_timeout: Option<Duration>,
    options: PostgresOptions,
    /// The sequences `restore_sequences` covers, as (oid, start value): read on the first
    /// outermost checkpoint and shared by the pool's connections (sequences belong to the
    /// database), read again when a snapshot fails and after `reset()`.
    sequence_list: Mutex<Option<SequenceList>>,
    /// Capture: the installation found (or made) by the last session's first checkpoint.
    capture: Mutex<Option<capture::Capture>>,
    /// Capture: how long a session waits for another to finish with the database.
    lock_timeout: Duration,
}

/// What a checkpoint keeps: for the outermost one when
/// [`restore_sequences`](Postgres::restore_sequences) is on, the position of every sequence
/// of the chosen schemas; otherwise nothing (the savepoint lives on the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostgresMark {
    sequences: Vec<SequenceState>,
    /// Capture isolation: the mark in the capture log.
    capture: Option<capture::Mark>,
}

impl Backend for Postgres {
    const NAME: &'static str = NAME;
    type Options = PostgresOptions;
    type Conn = Client;
    type Mark = PostgresMark;

    fn new(config: &BackendConfig, options: PostgresOptions) -> Result<Self> {
        Self::build(config, options)
    }

    /// Connects within the connect timeout, the startup and authentication handshake
    /// included.
    fn connect(&self) -> Result<Client> {
        self.open()
    }

    fn connect_timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    /// Refused or reset connections, and the server saying it is starting up, shutting
    /// down or out of connections (SQLSTATE 57P01, 57P02, 57P03, 53300): a restart.
    fn is_transient(&self, error: &Error) -> bool {
        errors::is_transient(error)
    }

    /// One `SELECT 1`: the explicit [`health_check`](crate::StateManager::health_check).
    /// The pool does not run it before a lease (see
    /// [`recycle_on_lease`](Self::recycle_on_lease)).
    fn recycle(&self, client: &mut Client) -> Result<()> {
        client
            .simple_query("SELECT 1")
            .map(drop)
            .map_err(|e| fail(client, "the health check", e, Stage::Other))
    }

    /// No: the first checkpoint's `BEGIN` is the health check (a connection that died in
    /// the pool fails it, and the session begins again on another), and the end of the
    /// previous test already cleared the session. Two round trips per test, not three.
    fn recycle_on_lease(&self) -> bool {
        false
    }

    fn is_broken(&self, client: &Client) -> bool {
        client.is_closed()
    }

    fn checkpoint(&self, client: &mut Client, at: Point<'_>) -> Result<PostgresMark> {
        if self.capture() {
            self.capture_checkpoint(client, at)
        } else {
            self.savepoint(client, at)
        }
    }

    fn rollback(&self, client: &mut Client, at: Point<'_>, mark: &PostgresMark) -> Result<()> {
        match &mark.capture {
            Some(capture) => self.capture_rollback(client, at, capture),
            None => self.rollback_to_savepoint(client, at, mark),
        }
    }

    fn release(&self, client: &mut Client, at: Point<'_>, mark: &PostgresMark) -> Result<()> {
        match &mark.capture {
            Some(_) => self.capture_release(client, at),
            None => self.release_savepoint(client, at),
        }
    }

    fn discard(&self, client: &mut Client, at: Point<'_>, mark: &PostgresMark) -> Result<()> {
        match &mark.capture {
            Some(capture) => self.capture_discard(client, at, capture),
            None => self.discard_savepoint(client, at, mark),
        }
    }

    /// Empties the chosen tables of the chosen schemas with one
    /// `TRUNCATE .. RESTART IDENTITY` (never `CASCADE`), after rolling back a transaction
    /// the code under test left open. If a table outside the set has a foreign key to a
    /// table in it, fails naming both and changes nothing.
    fn reset(&self, client: &mut Client) -> Result<()> {
        self.truncate_tables(client)
    }

    fn execute_script(&self, client: &mut Client, script: &str) -> Result<()> {
        client
            .batch_execute(script)
            .map_err(|e| fail(client, "running a script", e, Stage::Other))
    }

    /// One connection under capture (one session at a time rolls the shared database
    /// back), else one per test thread.
    fn pool_size(&self) -> usize {
        pool_size(self.capture())
    }

    fn captures(&self, _: &Client) -> bool {
        self.capture()
    }

    fn url(&self, _: &Client) -> Result<SecretUrl> {
        url_for_others(NAME, self.capture(), &self.url)
    }

    fn diff(
        &self,
        client: &mut Client,
        at: Point<'_>,
        mark: &PostgresMark,
    ) -> Result<crate::capture::diff::Diff> {
        self.capture_diff(client, at, mark)
    }

    fn close(&self, client: Client) -> Result<()> {
        if client.is_closed() {
            return Ok(());
        }
        client
            .close()
            .map_err(|e| Error::backend(NAME, "closing the connection", DriverError::new(e, "")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let pg = Postgres::from_url("postgres://u:hunter2@h/db")
            .unwrap()
            .schemas(["billing"]);
        let shown = format!("{pg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("u:***@h") && shown.contains("billing"),
            "{shown}"
        );
    }
}
