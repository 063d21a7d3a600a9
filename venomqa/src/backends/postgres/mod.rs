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

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

mod capture;
mod stall;

use ::postgres::config::{Host, SslMode, SslNegotiation};
use ::postgres::error::{DbError, SqlState};
use ::postgres::{Client, Config, NoTls, SimpleQueryMessage};
use parking_lot::Mutex;
use serde::Deserialize;

use crate::backend::Backend;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::sql::quote_double;
use crate::state::Manager;
use crate::util::test_threads;

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

/// The keys of a `postgres` entry in `venomqa.yaml`, besides the common ones.
///
/// ```yaml
/// backends:
///   postgres:
///     schemas: [public, billing]
///     tables_to_reset: [users, billing.invoices]
///     exclude_tables: [schema_migrations]
///     restore_sequences: false
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Schemas whose tables `reset()` covers and whose sequences `restore_sequences`
    /// restores (default `[public]`; an empty list means the default).
    pub schemas: Vec<String>,
    /// Tables `reset()` empties: names (`users`, matched in every chosen schema) or
    /// schema-qualified names (`billing.invoices`). Default: every table of `schemas`.
    pub tables_to_reset: Vec<String>,
    /// Tables `reset()` never touches (names or schema-qualified names).
    pub exclude_tables: Vec<String>,
    /// Put back the sequences of `schemas` that a test advanced, when its outermost
    /// checkpoint is rolled back (default `false`); see [`Postgres::restore_sequences`].
    /// Capture isolation always restores them.
    pub restore_sequences: bool,
    /// How a test's changes are isolated (default [`PostgresIsolation::Transaction`]).
    pub isolation: PostgresIsolation,
    /// Capture: how long a rollback waits for rows other sessions keep locked (default
    /// 5000).
    pub quiescence_timeout_ms: Option<u64>,
    /// Capture: how a rollback proves the data is back, beyond its log (default
    /// [`CaptureProof::Count`]; see [`Postgres::capture_proof`]).
    pub capture_proof: CaptureProof,
}

/// How the PostgreSQL backend isolates a test's changes (`isolation:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PostgresIsolation {
    /// A transaction per test and a SAVEPOINT per checkpoint on the test's connection:
    /// only what goes through that connection is rolled back (the default).
    #[default]
    Transaction,
    /// Generated statement triggers log every change any connection of any process
    /// makes to the tables of `schemas` into undo tables, and a rollback restores them: an
    /// API server or an app's own pool can write, and its writes are rolled back too
    /// (sequences, TRUNCATE and keyless tables included). The code under test connects to
    /// [`Session::url`](crate::Session::url). Sessions on one database take turns, across
    /// processes too. See the [capture section](self#capture).
    Capture,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schemas: vec!["public".to_owned()],
            tables_to_reset: Vec::new(),
            exclude_tables: Vec::new(),
            restore_sequences: false,
            isolation: PostgresIsolation::Transaction,
            quiescence_timeout_ms: None,
            capture_proof: CaptureProof::Count,
        }
    }
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

/// The sequences `restore_sequences` covers, as (oid, start value).
type SequenceList = Arc<[(u32, i64)]>;

/// What a checkpoint keeps: for the outermost one when
/// [`restore_sequences`](Postgres::restore_sequences) is on, the position of every sequence
/// of the chosen schemas; otherwise nothing (the savepoint lives on the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostgresMark {
    sequences: Vec<SequenceState>,
    /// Capture isolation: the mark in the capture log.
    capture: Option<capture::Mark>,
}

/// One sequence's position at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SequenceState {
    oid: u32,
    /// `None` when `nextval` was never called (`is_called = false`).
    last_value: Option<i64>,
    start_value: i64,
}

impl Postgres {
    /// The backend for `url` (`postgres://` or `postgresql://`), default options. The URL
    /// is parsed now; nothing connects until [`connect`](crate::StateManager::connect).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            PostgresOptions::default(),
        )
    }

    /// Schemas whose tables `reset()` covers and whose sequences
    /// [`restore_sequences`](Self::restore_sequences) restores (default `["public"]`).
    pub fn schemas(mut self, schemas: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.schemas = schemas.into_iter().map(Into::into).collect();
        *self.sequence_list.get_mut() = None;
        self
    }

    /// Tables `reset()` empties: names (`users`) or schema-qualified names
    /// (`billing.invoices`) of tables in the chosen [`schemas`](Self::schemas). Default:
    /// every table of those schemas.
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches (names or schema-qualified names).
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// How long a connection attempt may take, the startup and authentication handshake
    /// included (default [`DEFAULT_CONNECT_TIMEOUT`], or the URL's `connect_timeout`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.config.connect_timeout(timeout);
        self
    }

    /// Restores the sequences of the chosen schemas when the outermost checkpoint is
    /// rolled back (default off; `restore_sequences: true` in the entry).
    ///
    /// PostgreSQL never rolls a sequence back: a test that inserts into a `serial` column
    /// advances it for good. With this on, the outermost checkpoint reads the position of
    /// every sequence (in the same round trip as its `BEGIN`) and the rollback at the end
    /// of the test puts back the ones that moved (in the same round trip as its
    /// `ROLLBACK`).
    ///
    /// The list of sequences is read once per pool, on the first test (one more round
    /// trip, once), and again after `reset()` or when a listed sequence is gone, so a
    /// sequence created later outside the tests is restored only after that.
    ///
    /// Only turn it on when tests that use the same sequences run one at a time
    /// (`pool_size: 1`, and one test process at a time): sequences are shared by every
    /// connection, so restoring one while another test is still running hands that test
    /// ids it already used, and its next insert fails with a duplicate key.
    pub fn restore_sequences(mut self, on: bool) -> Self {
        self.options.restore_sequences = on;
        self
    }

    /// Capture: how a rollback proves that the data is back at the checkpoint, beyond its
    /// log (`capture_proof:` in the entry; default [`CaptureProof::Count`]).
    ///
    /// Every checkpoint reads the row count of every captured table (one `count(*)` each,
    /// in the checkpoint's round trip), and every rollback compares the tables it restored
    /// with them before it commits. [`CaptureProof::Digest`] also reads a digest of every
    /// row of every captured table at each checkpoint and rollback: it catches any value
    /// restored wrong, for the price of reading the whole captured data twice per cycle
    /// (docs/benchmarks.md has the measured cost).
    pub fn capture_proof(mut self, proof: CaptureProof) -> Self {
        self.options.capture_proof = proof;
        self
    }

    /// The options in effect.
    pub fn options(&self) -> &PostgresOptions {
        &self.options
    }

    /// The chosen schemas (an empty list means the default, `public`).
    fn capture(&self) -> bool {
        self.options.isolation == PostgresIsolation::Capture
    }

    fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or("postgres")
    }

    fn quiescence(&self) -> Duration {
        Duration::from_millis(self.options.quiescence_timeout_ms.unwrap_or(5000))
    }

    /// The installed capture, cloned out of its slot (it changes only at a session's
    /// first checkpoint).
    fn installed(&self) -> Result<capture::Capture> {
        self.capture.lock().clone().ok_or_else(|| {
            Error::state_lost(
                NAME,
                "capture is not attached: the session's first checkpoint did not complete",
            )
        })
    }

    /// Removes everything capture installed in the chosen schemas (triggers, their
    /// functions, undo tables, bookkeeping), leaving the app's data as it is. Capture
    /// installs itself again on its next use.
    pub fn uninstall_capture(&self) -> Result<()> {
        let mut client = self.connect()?;
        let schemas = self.schema_list();
        capture::Capture::lock(&mut client, self.database(), &schemas, self.lock_timeout)?;
        let result = capture::Capture::uninstall(&mut client, &schemas);
        *self.capture.lock() = None;
        let _ = capture::Capture::unlock(&mut client, self.database(), &schemas);
        result
    }

    /// A capture session's first checkpoint: the lock, then the root mark.
    fn begin_capture(&self, client: &mut Client) -> Result<capture::Mark> {
        let schemas = self.schema_list();
        capture::Capture::lock(client, self.database(), &schemas, self.lock_timeout)?;
        let mut slot = self.capture.lock();
        capture::Capture::begin(
            client,
            &mut slot,
            &schemas,
            self.quiescence(),
            self.options.capture_proof,
        )
        .inspect_err(|_| {
            let _ = capture::Capture::unlock(client, self.database(), &schemas);
        })
    }

    /// A capture session's end: forget the root, clear the session (which gives the
    /// lock back too).
    fn end_capture(&self, client: &mut Client) -> Result<()> {
        let cleared = match self.capture.lock().as_ref() {
            Some(capture) => capture.clear_root(client),
            None => Ok(()),
        };
        let cleanup = run(
            client,
            || "the end of the session".to_owned(),
            SESSION_CLEANUP,
            Stage::Other,
        )
        .map(drop);
        cleared.and(cleanup)
    }

    fn schema_list(&self) -> Vec<String> {
        if self.options.schemas.is_empty() {
            PostgresOptions::default().schemas
        } else {
            self.options.schemas.clone()
        }
    }

    /// The catalog query listing the sequences of the chosen schemas that the session may
    /// read and set, as (oid, start value).
    fn sequence_list_sql(&self) -> Result<String> {
        let schemas = self
            .schema_list()
            .iter()
            .map(|s| quote_literal(s))
            .collect::<Result<Vec<_>>>()?;
        Ok(format!(
            // Every row of pg_sequence is a sequence, so has_sequence_privilege never sees
            // another kind of relation (on which it fails).
            "SELECT s.seqrelid, s.seqstart FROM pg_sequence s \
             JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname IN ({}) AND has_sequence_privilege(s.seqrelid, 'SELECT,UPDATE')",
            schemas.join(", ")
        ))
    }

    /// The sequences `restore_sequences` covers: the pool's list, read now if it was
    /// not read yet (or `fresh` asks for it again).
    fn sequences(&self, client: &mut Client, fresh: bool) -> Result<SequenceList> {
        if !fresh {
            if let Some(list) = self.sequence_list.lock().clone() {
                return Ok(list);
            }
        }
        let messages = run(
            client,
            || "listing the sequences to restore".into(),
            &self.sequence_list_sql()?,
            Stage::Other,
        )?;
        let list = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .map(|row| Ok((parse(row.get(0), "oid")?, parse(row.get(1), "start value")?)))
            .collect::<Result<SequenceList>>()?;
        *self.sequence_list.lock() = Some(list.clone());
        Ok(list)
    }

    /// Opens the test's transaction with `BEGIN; SAVEPOINT` and, in the same round trip,
    /// reads the position of every sequence of `list`. On failure the connection is left
    /// idle.
    fn begin(
        &self,
        client: &mut Client,
        at: Point<'_>,
        list: &[(u32, i64)],
    ) -> Result<PostgresMark> {
        let mut sql = format!("BEGIN; SAVEPOINT {}", quote_double(NAME, at.name())?);
        if !list.is_empty() {
            let reads: Vec<String> = list
                .iter()
                .map(|(oid, _)| format!("pg_sequence_last_value({oid}::oid::regclass)"))
                .collect();
            let _ = write!(sql, "; SELECT {}", reads.join(", "));
        }
        let operation = || format!("checkpoint {:?}", at.name().as_str());
        let result = run(client, operation, &sql, Stage::Begin).and_then(|messages| {
            if list.is_empty() {
                return Ok(PostgresMark::default());
            }
            let row = messages
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row),
                    _ => None,
                })
                .ok_or_else(|| {
                    Error::backend(NAME, "reading the sequences", "no row in the reply")
                })?;
            let sequences = list
                .iter()
                .enumerate()
                .map(|(i, &(oid, start_value))| {
                    Ok(SequenceState {
                        oid,
                        last_value: row
                            .get(i)
                            .map(|v| parse(Some(v), "sequence value"))
                            .transpose()?,
                        start_value,
                    })
                })
                .collect::<Result<_>>()?;
            Ok(PostgresMark {
                sequences,
                capture: None,
            })
        });
        if result.is_err() && !client.is_closed() {
            let _ = client.batch_execute("ROLLBACK");
        }
        result
    }

    /// The tables `reset()` empties, as `(oid, schema, table)`, after checking that no
    /// table outside the set references one inside it.
    fn reset_plan(&self, client: &mut Client) -> Result<Vec<(u32, String, String)>> {
        let schemas = self.schema_list();
        let rows = client
            .query(
                "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY($1) \
                 AND left(c.relname, 4) <> '_vq_' \
                 ORDER BY n.nspname, c.relname",
                &[&schemas],
            )
            .map_err(|e| fail(client, "reset (listing tables)", e, Stage::Other))?;
        let all: Vec<(u32, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let matches = |entry: &str, schema: &str, table: &str| {
            entry == table || entry == format!("{schema}.{table}")
        };

        let mut chosen: Vec<(u32, String, String)> = if self.options.tables_to_reset.is_empty() {
            all.clone()
        } else {
            let mut chosen = Vec::new();
            for entry in &self.options.tables_to_reset {
                let found: Vec<_> = all
                    .iter()
                    .filter(|(_, s, t)| matches(entry, s, t))
                    .collect();
                if found.is_empty() {
                    return Err(Error::backend(
                        NAME,
                        "reset",
                        format!(
                            "tables_to_reset names {entry:?}, but no table of schemas {schemas:?} is called that; \
                             fix the name (schema.table picks one schema) or add its schema to `schemas`. Nothing was changed"
                        ),
                    ));
                }
                for t in found {
                    if !chosen.contains(t) {
                        chosen.push(t.clone());
                    }
                }
            }
            chosen
        };
        chosen.retain(|(_, s, t)| !self.options.exclude_tables.iter().any(|e| matches(e, s, t)));
        if chosen.is_empty() {
            return Ok(chosen);
        }

        // Every foreign key whose referenced table (or its partition root) is in the set.
        let oids: Vec<u32> = chosen.iter().map(|(oid, _, _)| *oid).collect();
        let refs = client
            .query(
                "SELECT con.conname::text, rn.nspname::text, r.relname::text, fn.nspname::text, f.relname::text \
                 FROM pg_constraint con \
                 JOIN pg_class r ON r.oid = COALESCE(pg_partition_root(con.conrelid), con.conrelid) \
                 JOIN pg_namespace rn ON rn.oid = r.relnamespace \
                 JOIN pg_class f ON f.oid = COALESCE(pg_partition_root(con.confrelid), con.confrelid) \
                 JOIN pg_namespace fn ON fn.oid = f.relnamespace \
                 WHERE con.contype = 'f' AND f.oid = ANY($1) AND NOT (r.oid = ANY($1)) \
                 ORDER BY 2, 3, 1",
                &[&oids],
            )
            .map_err(|e| fail(client, "reset (checking foreign keys)", e, Stage::Other))?;
        if let Some(row) = refs.first() {
            let (constraint, from_schema, from_table): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let (to_schema, to_table): (String, String) = (row.get(3), row.get(4));
            let (from, to) = (
                format!("{from_schema}.{from_table}"),
                format!("{to_schema}.{to_table}"),
            );
            let excluded = self
                .options
                .exclude_tables
                .iter()
                .any(|e| matches(e, &from_schema, &from_table));
            let (why, fix) = if excluded {
                (
                    "is in exclude_tables",
                    "remove it from exclude_tables".to_owned(),
                )
            } else if schemas.contains(&from_schema) {
                (
                    "is not in tables_to_reset",
                    "add it to tables_to_reset".to_owned(),
                )
            } else {
                (
                    "is in a schema reset() does not cover",
                    format!("add schema {from_schema} to `schemas`"),
                )
            };
            return Err(Error::backend(
                NAME,
                "reset",
                format!(
                    "{from} references {to} ({constraint}) but {why}; nothing was changed (venomqa never uses \
                     TRUNCATE .. CASCADE): {fix}, or exclude {to} too"
                ),
            ));
        }
        Ok(chosen)
    }
}

impl Backend for Postgres {
    const NAME: &'static str = NAME;
    type Options = PostgresOptions;
    type Conn = Client;
    type Mark = PostgresMark;

    fn new(config: &BackendConfig, options: PostgresOptions) -> Result<Self> {
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        let mut parsed = parse_url(url.expose())?;
        let timeout = config
            .connect_timeout
            .or_else(|| parsed.get_connect_timeout().copied())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        parsed.connect_timeout(timeout);
        if options.isolation == PostgresIsolation::Capture && parsed.get_dbname().is_none() {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.url", config.entry),
                "capture needs the database in the URL (postgres://user@host/database): it is the one whose writes are rolled back",
            ));
        }
        Ok(Postgres {
            url,
            config: parsed,
            timeout,
            io_timeout: match config.io_timeout {
                Some(t) if t.is_zero() => None,
                Some(t) => Some(t),
                None => Some(DEFAULT_IO_TIMEOUT),
            },
            options,
            sequence_list: Mutex::new(None),
            capture: Mutex::new(None),
            lock_timeout: config.lease_timeout.unwrap_or(Duration::from_secs(300)),
        })
    }

    /// Connects within the connect timeout, the startup and authentication handshake
    /// included.
    fn connect(&self) -> Result<Client> {
        let url = self.url.expose();
        // The driver's timeout bounds only the socket connect, not the startup and
        // authentication exchange (a server that accepts and never answers would block
        // forever), so the whole attempt runs on a helper thread and is abandoned when the
        // timeout passes.
        let config = self.config.clone();
        let timeout = self.timeout;
        let guard = self.io_timeout.filter(|_| stall_guard_applies(&config));
        let attempt = super::within("venomqa-postgres-connect", timeout, move || match guard {
            // Reads and writes that stall fail after the I/O timeout (see stall.rs).
            Some(timeout) => {
                let mut config = config;
                config
                    .ssl_mode(SslMode::Require)
                    .ssl_negotiation(SslNegotiation::Direct);
                config.connect(stall::Guard { timeout })
            }
            None => config.connect(NoTls),
        })
        .map_err(|e| Error::connect(NAME, url, e))?;
        match attempt {
            Some(Ok(client)) => Ok(client),
            Some(Err(e)) => Err(Error::connect(
                NAME,
                url,
                DriverError::new(e, format!(" (connect timeout {} ms)", timeout.as_millis())),
            )),
            None => Err(Error::connect(
                NAME,
                url,
                format!(
                    "no completed startup and authentication handshake within the connect timeout ({} ms): \
                     the host did not answer, or is not a PostgreSQL server",
                    timeout.as_millis()
                ),
            )),
        }
    }

    fn connect_timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    /// Refused or reset connections, and the server saying it is starting up, shutting
    /// down or out of connections (SQLSTATE 57P01, 57P02, 57P03, 53300): a restart.
    fn is_transient(&self, error: &Error) -> bool {
        if let Some(code) = error.driver::<::postgres::Error>().and_then(|e| e.code()) {
            return [
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code);
        }
        error.is_transient()
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
            let mark = if at.is_outermost() {
                self.begin_capture(client)?
            } else {
                self.installed()?
                    .mark(client, &format!("checkpoint {:?}", at.name().as_str()))?
            };
            return Ok(PostgresMark {
                sequences: Vec::new(),
                capture: Some(mark),
            });
        }
        if !at.is_outermost() {
            let sql = format!("SAVEPOINT {}", quote_double(NAME, at.name())?);
            let operation = || format!("checkpoint {:?}", at.name().as_str());
            run(client, operation, &sql, Stage::Nested)?;
            return Ok(PostgresMark::default());
        }
        if !self.options.restore_sequences {
            return self.begin(client, at, &[]);
        }
        let list = self.sequences(client, false)?;
        match self.begin(client, at, &list) {
            // A listed sequence may have been dropped since the list was read: read it
            // again and retry once.
            Err(e) if !e.is_connection_lost() && !list.is_empty() => {
                let list = self.sequences(client, true)?;
                self.begin(client, at, &list)
            }
            other => other,
        }
    }

    fn rollback(&self, client: &mut Client, at: Point<'_>, mark: &PostgresMark) -> Result<()> {
        if let Some(mark) = &mark.capture {
            let operation = format!("rollback to checkpoint {:?}", at.name().as_str());
            return self.installed()?.rollback(client, mark, &operation);
        }
        let mut sql = format!("ROLLBACK TO SAVEPOINT {}", quote_double(NAME, at.name())?);
        if let Some(restore) = sequence_restore_sql(&mark.sequences) {
            sql.push_str("; ");
            sql.push_str(&restore);
        }
        run(
            client,
            || format!("rollback to checkpoint {:?}", at.name().as_str()),
            &sql,
            Stage::Nested,
        )
        .map(drop)
    }

    fn release(&self, client: &mut Client, at: Point<'_>, mark: &PostgresMark) -> Result<()> {
        if mark.capture.is_some() {
            return if at.is_outermost() {
                self.end_capture(client)
            } else {
                Ok(())
            };
        }
        let savepoint = quote_double(NAME, at.name())?;
        // For the outermost checkpoint, RELEASE first: it fails if the transaction is
        // aborted (where a bare COMMIT would silently roll back) or no longer ours (where
        // COMMIT would only warn).
        let (sql, stage) = if at.is_outermost() {
            (
                format!("RELEASE SAVEPOINT {savepoint}; COMMIT"),
                Stage::Commit,
            )
        } else {
            (format!("RELEASE SAVEPOINT {savepoint}"), Stage::Nested)
        };
        run(
            client,
            || format!("release of checkpoint {:?}", at.name().as_str()),
            &sql,
            stage,
        )
        .map(drop)
    }

    fn discard(&self, client: &mut Client, at: Point<'_>, mark: &PostgresMark) -> Result<()> {
        if mark.capture.is_some() {
            self.rollback(client, at, mark)?;
            return if at.is_outermost() {
                self.end_capture(client)
            } else {
                Ok(())
            };
        }
        let savepoint = quote_double(NAME, at.name())?;
        let operation = || format!("rollback of checkpoint {:?}", at.name().as_str());
        if !at.is_outermost() {
            let sql = format!("ROLLBACK TO SAVEPOINT {savepoint}; RELEASE SAVEPOINT {savepoint}");
            return run(client, operation, &sql, Stage::Nested).map(drop);
        }
        // The ROLLBACK TO proves the transaction is still ours (a bare ROLLBACK outside one
        // only warns) and costs no extra round trip; the session cleanup clears what the
        // next test on this pooled connection would otherwise inherit.
        let mut sql = format!("ROLLBACK TO SAVEPOINT {savepoint}; ROLLBACK");
        if let Some(restore) = sequence_restore_sql(&mark.sequences) {
            // After the ROLLBACK, so a sequence the test reset (a new relfilenode, which
            // the ROLLBACK throws away) is set too. Committed without waiting for the WAL
            // flush: a crash could only lose the restore itself.
            let _ = write!(
                sql,
                "; BEGIN; SET LOCAL synchronous_commit TO off; {restore}; COMMIT"
            );
        }
        sql.push_str("; ");
        sql.push_str(SESSION_CLEANUP);
        run(client, operation, &sql, Stage::End).map(drop)
    }

    /// Empties the chosen tables of the chosen schemas with one
    /// `TRUNCATE .. RESTART IDENTITY` (never `CASCADE`), after rolling back a transaction
    /// the code under test left open. If a table outside the set has a foreign key to a
    /// table in it, fails naming both and changes nothing.
    fn reset(&self, client: &mut Client) -> Result<()> {
        *self.sequence_list.lock() = None;
        // Outside a transaction this only warns.
        client.batch_execute("ROLLBACK").map_err(|e| {
            fail(
                client,
                "reset (ending an open transaction)",
                e,
                Stage::Other,
            )
        })?;
        let tables = self.reset_plan(client)?;
        if tables.is_empty() {
            return Ok(());
        }
        let names = tables
            .iter()
            .map(|(_, s, t)| {
                Ok(format!(
                    "{}.{}",
                    quote_double(NAME, s)?,
                    quote_double(NAME, t)?
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // With capture installed, the reset itself is not logged (its TRUNCATE is final).
        let sql = format!(
            "BEGIN; SET LOCAL venomqa.replay = 'on'; TRUNCATE TABLE {} RESTART IDENTITY; COMMIT",
            names.join(", ")
        );
        client.batch_execute(&sql).map_err(|e| {
            let operation = format!("reset (TRUNCATE of {} tables)", names.len());
            fail(client, &operation, e, Stage::Other)
        })
    }

    fn execute_script(&self, client: &mut Client, script: &str) -> Result<()> {
        client
            .batch_execute(script)
            .map_err(|e| fail(client, "running a script", e, Stage::Other))
    }

    fn pool_size(&self) -> usize {
        if self.capture() {
            // One session at a time rolls the shared database back.
            1
        } else {
            test_threads()
        }
    }

    fn captures(&self, _: &Client) -> bool {
        self.capture()
    }

    fn url(&self, _: &Client) -> Result<SecretUrl> {
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
        client: &mut Client,
        at: Point<'_>,
        mark: &PostgresMark,
    ) -> Result<crate::capture::diff::Diff> {
        match &mark.capture {
            Some(mark) => self.installed()?.diff(client, mark),
            None => Err(Error::unsupported(
                NAME,
                format!("diff() since checkpoint {:?}", at.name().as_str()),
                "only capture isolation keeps a record of changes; use `isolation: capture`",
            )),
        }
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

impl crate::Session<PostgresStateManager> {
    /// The test's `postgres::Client`: run the code under test through it.
    ///
    /// Do not end the transaction on it (`COMMIT`, `ROLLBACK`, or
    /// `postgres::Client::transaction()`, whose commit or drop ends the test's transaction
    /// too): the test then fails with [`Error::StateLost`]. Write the code under test
    /// against `&mut impl postgres::GenericClient` and use checkpoints for nested undo.
    pub fn client(&mut self) -> &mut Client {
        self.connection()
    }
}

fn parse_url(url: &str) -> Result<Config> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        // Not a URL: never show it, whatever secrets it holds.
        return Err(Error::connect(
            NAME,
            "(a connection string that is not a URL; not shown)",
            "the URL must start with postgres:// or postgresql:// (key=value strings are not accepted)",
        ));
    }
    url.parse::<Config>().map_err(|e| {
        Error::connect(
            NAME,
            url,
            DriverError::new(
                e,
                "; the form is postgres://user:password@host:port/database",
            ),
        )
    })
}

/// Whether the I/O timeout can watch connections of `config`: every host is reached over
/// TCP (a Unix socket has no host name to pass through the TLS hook the watch uses), and
/// the URL does not ask for TLS (`sslmode=require`, which this backend does not speak: the
/// connection then fails as before, instead of going on in plain text).
fn stall_guard_applies(config: &Config) -> bool {
    config.get_ssl_mode() != SslMode::Require
        && !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|h| matches!(h, Host::Tcp(_)))
}

/// Where a statement ran, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The outermost checkpoint's `BEGIN`: nothing of the test has run yet.
    Begin,
    /// Inside the test's transaction: a nested checkpoint, a rollback, a release.
    Nested,
    /// The `COMMIT` of a release of the outermost checkpoint.
    Commit,
    /// The final rollback of the outermost checkpoint, which ends the transaction for good.
    End,
    /// Outside any checkpoint: the health check, reset, a setup script.
    Other,
}

/// Runs `sql` as one simple-query batch (one round trip).
fn run(
    client: &mut Client,
    operation: impl FnOnce() -> String,
    sql: &str,
    stage: Stage,
) -> Result<Vec<SimpleQueryMessage>> {
    client
        .simple_query(sql)
        .map_err(|e| fail(client, &operation(), e, stage))
}

/// A driver error shown on one line: the server's severity, SQLSTATE, message and detail
/// (or the driver's message and its causes), then what to do. Its
/// [`source`](std::error::Error::source) is the `postgres::Error` itself, which
/// [`Error::driver`] finds.
#[derive(Debug)]
struct DriverError {
    text: String,
    error: ::postgres::Error,
}

impl DriverError {
    /// `error`, described, followed by `remedy` (which starts with its own separator).
    fn new(error: ::postgres::Error, remedy: impl fmt::Display) -> Self {
        let text = format!("{}{remedy}", describe(&error));
        DriverError { text, error }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// At most `max` characters of `s`, on one line with single spaces.
fn one_line(s: &str, max: usize) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// A driver error as one short line: the server's severity, SQLSTATE, message and detail,
/// or the driver's message followed by its causes.
fn describe(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return describe_db(db);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    one_line(&text, 160)
}

fn describe_db(db: &DbError) -> String {
    let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    if let Some(detail) = db.detail() {
        let _ = write!(text, " ({detail})");
    }
    one_line(&text, 160)
}

/// Whether `e` means the connection is gone: closed, an I/O failure, or a FATAL error
/// (pg_terminate_backend, a shutdown, idle_in_transaction_session_timeout).
fn connection_lost(client: &Client, e: &::postgres::Error) -> bool {
    if e.is_closed() || client.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => {
            matches!(db.severity(), "FATAL" | "PANIC") || db.code().code().starts_with("57P")
        }
        // Kind::Io, whose message is the only public way to tell it apart.
        None => e.to_string().starts_with("error communicating"),
    }
}

/// Maps a driver error of `operation` to the error venomqa reports.
///
/// A lost connection is [`Error::ConnectionLost`], saying what it means for the test's
/// changes. A transaction that ended behind venomqa's back (a `COMMIT` in the test) is
/// [`Error::StateLost`]. A statement refused because the transaction is aborted, or a
/// savepoint the code under test removed, is an [`Error::Backend`] that says how to go on:
/// the transaction is still open, so nothing the test writes afterwards can commit, and
/// the rollback at its end still undoes everything. Only at [`Stage::End`] is a
/// best-effort `ROLLBACK` run (for a transaction that is not venomqa's), so the connection
/// is left idle; anywhere else it would end the test's transaction and let every later
/// write autocommit.
fn fail(client: &mut Client, operation: &str, e: ::postgres::Error, stage: Stage) -> Error {
    if connection_lost(client, &e) {
        let outcome = match stage {
            Stage::Begin => "no transaction was open yet, so nothing was changed",
            Stage::Nested | Stage::End => {
                "the server rolled back the open transaction, so nothing of this test was committed; the pool opens a new connection"
            }
            Stage::Commit => "whether the COMMIT took effect is unknown: check the data",
            Stage::Other => "the server rolled back what was not committed; the pool opens a new connection",
        };
        return Error::connection_lost(NAME, operation, outcome, DriverError::new(e, ""));
    }
    let code = e.code().cloned();
    let gone = code == Some(SqlState::NO_ACTIVE_SQL_TRANSACTION)
        || (code == Some(SqlState::S_E_INVALID_SPECIFICATION) && stage == Stage::End);
    if gone && stage != Stage::Other {
        if stage == Stage::End {
            // A transaction the code under test began after ending ours: end it too.
            let _ = client.batch_execute("ROLLBACK");
        }
        return Error::state_lost(
            NAME,
            format!(
                "{operation} found the test's transaction gone ({}): code on the test's connection ran COMMIT, \
                 ROLLBACK or RELEASE SAVEPOINT (Client::transaction() does), so what it wrote may be committed for good; \
                 take transaction control out of the code under test",
                code.as_ref().map_or("", SqlState::code)
            ),
        );
    }
    let remedy = match code {
        Some(SqlState::IN_FAILED_SQL_TRANSACTION) => {
            "; a statement failed earlier in this transaction: roll back to a checkpoint made before it (or end its block)"
        }
        Some(SqlState::S_E_INVALID_SPECIFICATION) if stage != Stage::Other => {
            "; code under test released or rolled back past it. The transaction is still open (aborted): roll back to an earlier checkpoint"
        }
        _ => "",
    };
    Error::backend(NAME, operation, DriverError::new(e, remedy))
}

/// The statement putting back the sequences that moved since the snapshot.
fn sequence_restore_sql(sequences: &[SequenceState]) -> Option<String> {
    if sequences.is_empty() {
        return None;
    }
    let mut values = String::new();
    for (i, s) in sequences.iter().enumerate() {
        let last = s.last_value.map_or("NULL".to_owned(), |v| v.to_string());
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(
            values,
            "{sep}({}::oid, {last}::int8, {}::int8)",
            s.oid, s.start_value
        );
    }
    Some(format!(
        "SELECT setval(v.seq::regclass, COALESCE(v.last, v.start), v.last IS NOT NULL) \
         FROM (VALUES {values}) AS v(seq, last, start) \
         WHERE pg_sequence_last_value(v.seq::regclass) IS DISTINCT FROM v.last"
    ))
}

/// A value of a simple-query row.
fn parse<T: std::str::FromStr>(value: Option<&str>, what: &str) -> Result<T> {
    value.and_then(|v| v.parse().ok()).ok_or_else(|| {
        Error::backend(
            NAME,
            "reading the sequences",
            format!("unexpected {what} {value:?} in the reply"),
        )
    })
}

/// `s` as a string literal that means the same whatever `standard_conforming_strings` is.
fn quote_literal(s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(Error::backend(
            NAME,
            format!("quoting {s:?}"),
            "a schema name must not contain NUL bytes; fix `schemas`",
        ));
    }
    Ok(format!(
        "E'{}'",
        s.replace('\\', "\\\\").replace('\'', "''")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> BackendConfig {
        let mut config = BackendConfig::new(NAME);
        let map: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(yaml).unwrap();
        for (k, v) in map {
            config = config.with_option(k.as_str().unwrap(), v);
        }
        config
    }

    #[test]
    fn url_forms() {
        for url in ["postgres://u:pw@h:5433/db", "postgresql://u:pw@h:5433/db"] {
            let c = parse_url(url).unwrap();
            assert_eq!(c.get_ports(), [5433]);
        }
        let e = parse_url("host=h password=hunter2")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("postgres://"), "{e}");
        let e = parse_url("postgres://u:hunter2@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("invalid connection string"), "{e}");
    }

    #[test]
    fn the_connect_timeout_comes_from_the_entry_then_the_url_then_the_default() {
        let pg = Postgres::from_url("postgres://h/db").unwrap();
        assert_eq!(pg.timeout, DEFAULT_CONNECT_TIMEOUT);
        let pg = Postgres::from_url("postgres://h/db?connect_timeout=3").unwrap();
        assert_eq!(pg.timeout, Duration::from_secs(3));
        let mut entry = BackendConfig::new(NAME).with_url("postgres://h/db?connect_timeout=3");
        entry.connect_timeout = Some(Duration::from_millis(1500));
        let pg = Postgres::new(&entry, PostgresOptions::default()).unwrap();
        assert_eq!(pg.timeout, Duration::from_millis(1500));
        assert_eq!(
            pg.config.get_connect_timeout(),
            Some(&Duration::from_millis(1500))
        );
        let pg = pg.connect_timeout(Duration::from_millis(700));
        assert_eq!(
            pg.config.get_connect_timeout(),
            Some(&Duration::from_millis(700))
        );
    }

    #[test]
    fn options_are_typed() {
        let o: PostgresOptions = BackendConfig::new(NAME).options().unwrap();
        assert_eq!(o.schemas, ["public"]);
        assert!(!o.restore_sequences);

        let o: PostgresOptions = config(
            "{schemas: [a, b], tables_to_reset: [a.t], exclude_tables: [m], restore_sequences: true}",
        )
        .options()
        .unwrap();
        assert_eq!(
            (o.schemas, o.tables_to_reset, o.exclude_tables),
            (
                vec!["a".to_owned(), "b".to_owned()],
                vec!["a.t".to_owned()],
                vec!["m".to_owned()]
            )
        );
        assert!(o.restore_sequences);

        // The legacy `options:` map, with its string values.
        let o: PostgresOptions = config("{options: {restore_sequences: \"true\"}}")
            .options()
            .unwrap();
        assert!(o.restore_sequences);

        let e = config("{restore_sequences: maybe}")
            .options::<PostgresOptions>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("backends.postgres.restore_sequences"), "{e}");
        let e = config("{options: {restore_sequences: maybe}}")
            .options::<PostgresOptions>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backends.postgres.options.restore_sequences"),
            "{e}"
        );
        let e = config("{schema: [a]}")
            .options::<PostgresOptions>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backends.postgres.schema") && e.contains("schemas"),
            "{e}"
        );
    }

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

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("a'b\\c").unwrap(), "E'a''b\\\\c'");
        assert!(quote_literal("a\0").is_err());
        let sql = Postgres::from_url("postgres://h/db")
            .unwrap()
            .schemas(["x'; DROP TABLE t; --"])
            .sequence_list_sql()
            .unwrap();
        assert!(sql.contains("IN (E'x''; DROP TABLE t; --')"), "{sql}");
    }

    #[test]
    fn sequence_restore_statement() {
        assert_eq!(sequence_restore_sql(&[]), None);
        let sql = sequence_restore_sql(&[
            SequenceState {
                oid: 10,
                last_value: Some(5),
                start_value: 1,
            },
            SequenceState {
                oid: 11,
                last_value: None,
                start_value: 100,
            },
        ])
        .unwrap();
        assert!(
            sql.contains("(10::oid, 5::int8, 1::int8), (11::oid, NULL::int8, 100::int8)"),
            "{sql}"
        );
    }

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("a\nDETAIL:  b", 100), "a DETAIL: b");
        assert_eq!(one_line("abcdefghij", 6), "abc...");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text as a URL: a backend or an error, never a panic, and never the
        /// password.
        #[test]
        fn any_url_builds_or_errs_without_the_password(
            prefix in prop_oneof![Just("postgres://".to_owned()), Just("postgresql://".to_owned()), Just("".to_owned()), Just("host=h password=".to_owned()), "\\PC{0,8}"],
            user in "\\PC{0,8}",
            password in "[^\\x00]{3,16}",
            rest in "\\PC{0,40}",
        ) {
            let url = format!("{prefix}{user}:{password}@{rest}");
            let config = BackendConfig::new("postgres").with_url(url.as_str());
            match Postgres::new(&config, PostgresOptions::default()) {
                Ok(backend) => {
                    let shown = format!("{backend:?}");
                    prop_assert!(!shown.contains(&password), "{}", shown);
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(!text.contains(&password), "{}", text);
                    prop_assert!(!text.contains('\n'), "{}", text);
                }
            }
        }
    }
}
