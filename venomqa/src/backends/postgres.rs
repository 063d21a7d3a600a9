//! The PostgreSQL backend, through the `postgres` crate (synchronous client, no TLS).
//!
//! Isolation is one transaction per test with a SAVEPOINT per checkpoint, on one
//! `postgres::Client` per pooled manager. PostgreSQL DDL is transactional, so tables,
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
//! [`DEFAULT_URL`]. Key/value connection strings (`host=.. password=..`) are refused,
//! because venomqa could not keep their password out of error messages.
//!
//! Configuration (`backends: postgres:` in `venomqa.yaml`): `url`, `pool_size` (default: the
//! number of test threads), `connect_timeout_ms` (default 10000), `tables_to_reset`,
//! `exclude_tables`, `schemas` (default `[public]`), and `options: { restore_sequences:
//! "true" }` (see [`PostgresStateManager::restore_sequences`]).

use std::fmt::Write as _;
use std::time::Duration;

use ::postgres::error::{DbError, SqlState};
use ::postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::registry::{test_threads, Backend};
use crate::sql::quote_double;
use crate::state::{BaseStateManager, StateManager};

/// The `postgres` crate venomqa is built with, so your tests can name its types (such as
/// `driver::Client` or `driver::GenericClient`) without depending on a matching version.
pub use ::postgres as driver;

const NAME: &str = "postgres";

/// The URL used when none is configured: the conventional local server.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// What the discard of the outermost checkpoint runs after its `ROLLBACK` (same round
/// trip), because a rollback does not undo it: session advisory locks
/// (`pg_advisory_lock`), session settings made outside the transaction, and temporary
/// tables. `RESET ALL` goes back to the session defaults, which include the URL's
/// `options=-c ..` and `application_name`. Not `DISCARD ALL`: it would drop the prepared
/// statements the `postgres` client caches.
const SESSION_CLEANUP: &str = "SELECT pg_advisory_unlock_all(); RESET ALL; DISCARD TEMP";

/// How long a connection attempt may take unless `connect_timeout_ms` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A session on the PostgreSQL backend; [`client`](crate::Session::client) gives the test
/// the `postgres::Client` its changes must go through.
pub type PostgresSession = crate::Session<PostgresStateManager>;

/// One sequence's position at the outermost checkpoint (for `restore_sequences`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SequenceState {
    oid: u32,
    /// `None` when `nextval` was never called (`is_called = false`).
    last_value: Option<i64>,
    start_value: i64,
}

/// PostgreSQL state manager: transaction + SAVEPOINT isolation on one `postgres::Client`.
///
/// ```
/// use venomqa::{postgres::PostgresStateManager, StateManager};
///
/// let mut db = PostgresStateManager::new("postgres://postgres@127.0.0.1:5432/test");
/// db.connect()?;
/// db.checkpoint("start")?;
/// db.client().batch_execute("CREATE TABLE vq_pg_doc (v INT); INSERT INTO vq_pg_doc VALUES (1)").unwrap();
/// db.checkpoint("inner")?;
/// db.client().execute("DELETE FROM vq_pg_doc", &[]).unwrap();
/// db.rollback("inner")?; // the row is back
/// let n: i64 = db.client().query_one("SELECT COUNT(*) FROM vq_pg_doc", &[]).unwrap().get(0);
/// assert_eq!(n, 1);
/// db.discard("start")?; // one ROLLBACK: the table is gone too (DDL is transactional)
/// let gone: Option<String> = db.client()
///     .query_one("SELECT to_regclass('vq_pg_doc')::text", &[]).unwrap().get(0);
/// assert_eq!(gone, None);
/// # Ok::<(), venomqa::Error>(())
/// ```
pub struct PostgresStateManager {
    base: BaseStateManager,
    client: Option<Client>,
    connect_timeout: Option<Duration>,
    tables_to_reset: Vec<String>,
    exclude_tables: Vec<String>,
    schemas: Vec<String>,
    restore_sequences: bool,
    /// The sequences `restore_sequences` covers (oid, start value), read once per connection.
    sequence_list: Option<Vec<(u32, i64)>>,
    sequences: Vec<SequenceState>,
}

impl std::fmt::Debug for PostgresStateManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStateManager")
            .field("url", &self.base.redacted_url())
            .field("connected", &self.is_connected())
            .field("checkpoints", &self.base.checkpoints())
            .field("schemas", &self.schemas)
            .field("tables_to_reset", &self.tables_to_reset)
            .field("exclude_tables", &self.exclude_tables)
            .field("restore_sequences", &self.restore_sequences)
            .finish_non_exhaustive()
    }
}

impl PostgresStateManager {
    /// A disconnected manager for `url` (`postgres://` or `postgresql://`; see the
    /// [module docs](self)). The URL is checked by [`connect`](StateManager::connect).
    pub fn new(url: &str) -> Self {
        PostgresStateManager {
            base: BaseStateManager::new(NAME, url),
            client: None,
            connect_timeout: None,
            tables_to_reset: Vec::new(),
            exclude_tables: Vec::new(),
            schemas: vec!["public".to_owned()],
            restore_sequences: false,
            sequence_list: None,
            sequences: Vec::new(),
        }
    }

    /// A disconnected manager from a resolved configuration entry.
    pub fn from_config(config: &BackendConfig) -> Result<Self> {
        let mut m = Self::new(config.url_or(DEFAULT_URL));
        m.connect_timeout = config.connect_timeout;
        m.tables_to_reset.clone_from(&config.tables_to_reset);
        m.exclude_tables.clone_from(&config.exclude_tables);
        if !config.schemas.is_empty() {
            m.schemas.clone_from(&config.schemas);
        }
        if let Some(on) = config.option_parsed::<bool>("restore_sequences")? {
            m.restore_sequences = on;
        }
        Ok(m)
    }

    /// Tables `reset()` empties: names (`users`) or schema-qualified names
    /// (`billing.invoices`) of tables in the chosen [`schemas`](Self::schemas). Default:
    /// every table of those schemas.
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches (names or schema-qualified names).
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Schemas whose tables `reset()` covers and whose sequences
    /// [`restore_sequences`](Self::restore_sequences) restores (default `["public"]`).
    pub fn schemas(mut self, schemas: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.schemas = schemas.into_iter().map(Into::into).collect();
        self
    }

    /// How long a connection attempt may take (default [`DEFAULT_CONNECT_TIMEOUT`], or the
    /// URL's `connect_timeout` parameter).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Restores the sequences of the chosen schemas when the outermost checkpoint is
    /// rolled back (default off; `options: { restore_sequences: "true" }` in the file).
    ///
    /// PostgreSQL never rolls a sequence back: a test that inserts into a `serial` column
    /// advances it for good. With this on, the outermost checkpoint snapshots every
    /// sequence (in the same round trip as its `BEGIN`) and the rollback at the end of the
    /// test puts back the ones that moved (in the same round trip as its `ROLLBACK`).
    ///
    /// The list of sequences is read once per connection (and again after `reset()`), so
    /// a sequence created later, outside a test, is restored only from the next connection.
    ///
    /// Only turn it on when tests that use the same sequences run one at a time
    /// (`pool_size: 1`, and one test process at a time): sequences are shared by every
    /// connection, so restoring one while another test is still running hands that test
    /// ids it already used, and its next insert fails with a duplicate key.
    pub fn restore_sequences(mut self, on: bool) -> Self {
        self.restore_sequences = on;
        self
    }

    /// The native client: run the code under test through it.
    ///
    /// Do not end the transaction on it (`COMMIT`, `ROLLBACK`, or
    /// `postgres::Client::transaction()`, whose commit or drop ends the test's transaction
    /// too): venomqa then reports [`Error::StateLost`]. Write the code under test against
    /// `&mut impl postgres::GenericClient` and use checkpoints for nested undo instead.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_client`](Self::try_client) returns an error instead.
    pub fn client(&mut self) -> &mut Client {
        self.try_client().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The native client, or [`Error::NotConnected`].
    pub fn try_client(&mut self) -> Result<&mut Client> {
        self.client.as_mut().ok_or_else(|| Error::NotConnected {
            backend: NAME.into(),
        })
    }

    /// The host(s) and port(s) the URL names, for messages (never the password).
    fn target(config: &Config) -> String {
        let ports = config.get_ports();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    ::postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
                    #[cfg(unix)]
                    ::postgres::config::Host::Unix(dir) => {
                        format!("socket {}/.s.PGSQL.{port}", dir.display())
                    }
                }
            })
            .collect();
        if hosts.is_empty() {
            format!(
                "the default host, port {}",
                ports.first().copied().unwrap_or(5432)
            )
        } else {
            hosts.join(", ")
        }
    }

    fn parse_url(url: &str) -> Result<Config> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            // Not a URL, so redaction cannot find its password: never show it.
            return Err(Error::connection(
                NAME,
                "(a connection string that is not a URL; not shown)",
                "the URL must start with postgres:// or postgresql:// (key=value connection strings are \
                 not accepted, so that a password in them can never reach an error message)",
            ));
        }
        url.parse::<Config>().map_err(|e| {
            Error::connection(
                NAME,
                url,
                format!(
                    "it is not a valid PostgreSQL URL ({}); the form is postgres://user:password@host:port/database",
                    describe(&e)
                ),
            )
        })
    }

    /// Runs `sql` as one simple-query batch; maps errors through [`classify`].
    fn run(
        client: &mut Client,
        operation: impl FnOnce() -> String,
        sql: &str,
    ) -> Result<Vec<SimpleQueryMessage>> {
        client
            .simple_query(sql)
            .map_err(|e| classify(client, &operation(), &e, false))
    }

    /// [`run`](Self::run) for the batch that ends the transaction for good (the discard
    /// of the outermost checkpoint): if it fails, the transaction is rolled back.
    fn run_ending(
        client: &mut Client,
        operation: impl FnOnce() -> String,
        sql: &str,
    ) -> Result<Vec<SimpleQueryMessage>> {
        client
            .simple_query(sql)
            .map_err(|e| classify(client, &operation(), &e, true))
    }

    /// The catalog query listing the sequences of the chosen schemas (oid, start value).
    fn sequence_list_sql(&self) -> Result<String> {
        let schemas = self
            .schemas
            .iter()
            .map(|s| quote_literal(s))
            .collect::<Result<Vec<_>>>()?;
        Ok(format!(
            // The CASE keeps has_sequence_privilege away from other relations: the planner
            // may evaluate a plain AND in any order, and it fails on a non-sequence.
            "SELECT c.oid, s.seqstart FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_sequence s ON s.seqrelid = c.oid WHERE c.relkind = 'S' AND n.nspname IN ({}) \
             AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT,UPDATE') ELSE false END",
            schemas.join(", ")
        ))
    }

    fn load_sequence_list(client: &mut Client, sql: &str) -> Result<Vec<(u32, i64)>> {
        let messages = Self::run(client, || "listing sequences".into(), sql)?;
        let bad = || Error::backend(NAME, "listing sequences", "unexpected reply");
        let mut out = Vec::new();
        for m in &messages {
            if let SimpleQueryMessage::Row(row) = m {
                let oid = row.get(0).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
                let start = row.get(1).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
                out.push((oid, start));
            }
        }
        Ok(out)
    }

    /// Opens the transaction with `begin` and, in the same round trip, reads the current
    /// value of every sequence of `list`. On failure the connection is left idle.
    fn begin(
        client: &mut Client,
        operation: impl FnOnce() -> String,
        begin: &str,
        list: &[(u32, i64)],
    ) -> Result<Vec<SequenceState>> {
        let mut sql = begin.to_owned();
        if !list.is_empty() {
            let reads: Vec<String> = list
                .iter()
                .map(|(oid, _)| format!("pg_sequence_last_value({oid}::oid::regclass)"))
                .collect();
            let _ = write!(sql, "; SELECT {}", reads.join(", "));
        }
        let result = Self::run(client, operation, &sql).and_then(|messages| {
            if list.is_empty() {
                return Ok(Vec::new());
            }
            let row = messages
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row),
                    _ => None,
                })
                .ok_or_else(|| {
                    Error::backend(NAME, "snapshotting sequences", "no row in the reply")
                })?;
            list.iter()
                .enumerate()
                .map(|(i, &(oid, start_value))| {
                    let last_value = row
                        .get(i)
                        .map(|v| {
                            v.parse().map_err(|_| {
                                Error::backend(
                                    NAME,
                                    "snapshotting sequences",
                                    format!("unexpected value {v:?}"),
                                )
                            })
                        })
                        .transpose()?;
                    Ok(SequenceState {
                        oid,
                        last_value,
                        start_value,
                    })
                })
                .collect()
        });
        if result.is_err() && !client.is_closed() {
            let _ = client.batch_execute("ROLLBACK");
        }
        result
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

    /// The tables `reset()` empties, as `(oid, schema, table)`, after checking that no
    /// table outside the set references one inside it.
    fn reset_plan(&mut self) -> Result<Vec<(u32, String, String)>> {
        let client = self.client.as_mut().expect("connected");
        let op = "reset: listing tables";
        let rows = client
            .query(
                "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY($1) \
                 ORDER BY n.nspname, c.relname",
                &[&self.schemas],
            )
            .map_err(|e| Error::backend(NAME, op, describe(&e)))?;
        let all: Vec<(u32, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let matches = |entry: &str, schema: &str, table: &str| {
            entry == table || entry == format!("{schema}.{table}")
        };

        let mut chosen: Vec<(u32, String, String)> = if self.tables_to_reset.is_empty() {
            all.clone()
        } else {
            let mut chosen = Vec::new();
            for entry in &self.tables_to_reset {
                let found: Vec<_> = all
                    .iter()
                    .filter(|(_, s, t)| matches(entry, s, t))
                    .collect();
                if found.is_empty() {
                    return Err(Error::backend(
                        NAME,
                        "reset",
                        format!(
                            "tables_to_reset names {entry:?}, but no table of schemas {:?} is called that; fix the \
                             name (a bare name matches the table in every chosen schema, schema.table picks one) \
                             or add its schema to `schemas`. Nothing was changed",
                            self.schemas
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
        chosen.retain(|(_, s, t)| !self.exclude_tables.iter().any(|e| matches(e, s, t)));
        if chosen.is_empty() {
            return Ok(chosen);
        }

        // Every foreign key whose referenced table (or its partition root) is in the set.
        let oids: Vec<u32> = chosen.iter().map(|(oid, _, _)| *oid).collect();
        let op = "reset: checking foreign keys";
        let refs = client
            .query(
                "SELECT con.conname::text, rn.nspname::text, r.relname::text, fn.nspname::text, f.relname::text, f.oid \
                 FROM pg_constraint con \
                 JOIN pg_class r ON r.oid = COALESCE(pg_partition_root(con.conrelid), con.conrelid) \
                 JOIN pg_namespace rn ON rn.oid = r.relnamespace \
                 JOIN pg_class f ON f.oid = COALESCE(pg_partition_root(con.confrelid), con.confrelid) \
                 JOIN pg_namespace fn ON fn.oid = f.relnamespace \
                 WHERE con.contype = 'f' AND f.oid = ANY($1) AND NOT (r.oid = ANY($1)) \
                 ORDER BY 2, 3, 1",
                &[&oids],
            )
            .map_err(|e| Error::backend(NAME, op, describe(&e)))?;
        if let Some(row) = refs.first() {
            let (constraint, from_schema, from_table): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let (to_schema, to_table): (String, String) = (row.get(3), row.get(4));
            let excluded = self
                .exclude_tables
                .iter()
                .any(|e| matches(e, &from_schema, &from_table));
            let (from, to) = (
                format!("{from_schema}.{from_table}"),
                format!("{to_schema}.{to_table}"),
            );
            let (why, fix) = if excluded {
                (
                    "is in exclude_tables",
                    format!("remove {from:?} from exclude_tables so both are reset"),
                )
            } else if self.schemas.contains(&from_schema) {
                (
                    "is not in tables_to_reset",
                    format!("add {from:?} to tables_to_reset"),
                )
            } else {
                (
                    "is in a schema reset() does not cover",
                    format!("add schema {from_schema:?} to `schemas` (and {from:?} to tables_to_reset, if you list tables)"),
                )
            };
            return Err(Error::backend(
                NAME,
                "reset",
                format!(
                    "table {from} references {to} (foreign key {constraint:?}) but {why}, so emptying {to} would \
                     have to empty {from} too (TRUNCATE .. CASCADE, which venomqa never uses). Either {fix}, or \
                     add {to:?} to exclude_tables. Nothing was changed"
                ),
            ));
        }
        Ok(chosen)
    }
}

/// `s` as a string literal that means the same whatever `standard_conforming_strings` is.
fn quote_literal(s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(Error::backend(
            NAME,
            format!("quoting {s:?}"),
            "a name must not contain NUL bytes",
        ));
    }
    Ok(format!(
        "E'{}'",
        s.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// A driver error as one line: the server's severity, SQLSTATE, message, detail and hint,
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
    text
}

fn describe_db(db: &DbError) -> String {
    let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    if let Some(detail) = db.detail() {
        let _ = write!(text, " (detail: {detail})");
    }
    if let Some(hint) = db.hint() {
        let _ = write!(text, " (hint: {hint})");
    }
    text
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

/// Maps a driver error of a checkpoint operation to the error venomqa reports.
///
/// A lost connection or a transaction that ended behind venomqa's back is
/// [`Error::StateLost`]; a statement refused because the transaction is aborted gets a
/// hint on how to recover.
///
/// `ending` says the failing operation was the final discard of the outermost checkpoint:
/// only then is a best-effort `ROLLBACK` run for a missing savepoint, so the connection is
/// left idle. For any other operation the transaction stays open (aborted by the error),
/// so the rollback at the end of the test still undoes whatever the test writes after
/// ignoring the error; a `ROLLBACK` there would end the root checkpoint's transaction
/// too and let every later write autocommit.
fn classify(client: &mut Client, operation: &str, e: &::postgres::Error, ending: bool) -> Error {
    let cause = describe(e);
    if connection_lost(client, e) {
        return Error::StateLost {
            backend: NAME.into(),
            message: format!(
                "the connection to PostgreSQL ended during {operation} ({cause}). The server terminated it \
                 (pg_terminate_backend, a restart, idle_in_transaction_session_timeout) or the network failed. \
                 PostgreSQL rolled back the open transaction when the connection ended, so nothing the test \
                 wrote was committed, but its checkpoints are gone and the test cannot go on. The pool \
                 replaces the connection for the next test; rerun this one"
            ),
        };
    }
    let code = e.code();
    if code == Some(&SqlState::S_E_INVALID_SPECIFICATION) && !ending {
        return Error::StateLost {
            backend: NAME.into(),
            message: format!(
                "{operation} found the checkpoint's savepoint gone ({cause}): code on the session's connection \
                 ran ROLLBACK TO SAVEPOINT or RELEASE SAVEPOINT on it (or on an earlier savepoint). The test's \
                 transaction is still open, so everything the test wrote is still rolled back when it ends, but \
                 this error aborted the transaction: roll back to an earlier checkpoint (or the root, {root:?}) \
                 to go on. Remove the savepoint control from the code under test and use venomqa checkpoints",
                root = crate::ROOT_CHECKPOINT
            ),
        };
    }
    if code == Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION)
        || code == Some(&SqlState::S_E_INVALID_SPECIFICATION)
    {
        // No transaction (harmless), or the outermost savepoint is gone at the end of
        // the test: end the transaction so the connection is left idle.
        let _ = client.batch_execute("ROLLBACK");
        return Error::StateLost {
            backend: NAME.into(),
            message: format!(
                "{operation} found the test's transaction or savepoint gone ({cause}): code on the session's \
                 connection ran COMMIT, ROLLBACK, ROLLBACK TO SAVEPOINT or RELEASE SAVEPOINT (for example \
                 through postgres::Client::transaction(), whose commit or drop ends the test's transaction). \
                 Whatever was committed that way is permanent and must be cleaned up by hand; venomqa rolled \
                 back what was left. Remove the transaction control from the code under test (write it \
                 against postgres::GenericClient) and use venomqa checkpoints for nested undo"
            ),
        };
    }
    if code == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) {
        return Error::backend(
            NAME,
            operation,
            format!(
                "{cause}. A statement failed earlier in this transaction, so PostgreSQL refuses every command \
                 until a rollback. Roll back to a checkpoint made before the failing statement (rollback(name), \
                 or end the checkpoint block it ran in), or let the test end: its changes are still rolled back"
            ),
        );
    }
    Error::backend(NAME, operation, cause)
}

impl StateManager for PostgresStateManager {
    fn connect(&mut self) -> Result<()> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        // A dead connection's transaction, and so its checkpoints, died with it.
        self.client = None;
        self.base.set_connected(false);
        self.sequences.clear();
        self.sequence_list = None;
        let url = self.base.url().to_owned();
        let mut config = Self::parse_url(&url)?;
        match self.connect_timeout {
            Some(t) => {
                config.connect_timeout(t);
            }
            None if config.get_connect_timeout().is_none() => {
                config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
            }
            None => {}
        }
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let failed = |cause: String| {
            Error::connection(
                NAME,
                &url,
                format!(
                    "connecting to {} (timeout {} ms) failed: {cause}",
                    Self::target(&config),
                    timeout.as_millis(),
                ),
            )
        };
        // The driver's timeout bounds only the socket connect, not the startup and
        // authentication exchange (a server that accepts and never answers would block
        // forever), so the whole attempt runs on a helper thread and is abandoned when the
        // timeout passes.
        let attempt = config.clone();
        let attempt = super::within("venomqa-postgres-connect", timeout, move || {
            attempt.connect(NoTls)
        })
        .map_err(|e| failed(format!("could not start the connecting thread: {e}")))?;
        let client = match attempt {
            Some(Ok(client)) => client,
            Some(Err(e)) => return Err(failed(describe(&e))),
            None => {
                return Err(failed(
                    "no connection with a completed startup and authentication handshake within the \
                     timeout (the host did not answer, or accepted the connection and never replied: is \
                     it a PostgreSQL server, and is it overloaded?)"
                        .into(),
                ))
            }
        };
        self.client = Some(client);
        self.sequences.clear();
        self.sequence_list = None;
        self.base.set_connected(true);
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        self.base.set_connected(false);
        self.sequences.clear();
        self.sequence_list = None;
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                client
                    .close()
                    .map_err(|e| Error::backend(NAME, "closing the connection", describe(&e)))?;
            }
        }
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let list_sql = if self.restore_sequences && self.base.checkpoints().is_empty() {
            Some(self.sequence_list_sql()?)
        } else {
            None
        };
        let Self {
            base,
            client,
            sequences,
            sequence_list,
            ..
        } = self;
        base.checkpoint(name, |name, active| {
            let client = client.as_mut().ok_or(Error::NotConnected {
                backend: NAME.into(),
            })?;
            let savepoint = quote_double(NAME, name)?;
            let op = || format!("checkpoint {name:?}");
            if !active.is_empty() {
                return Self::run(client, op, &format!("SAVEPOINT {savepoint}")).map(drop);
            }
            let begin = format!("BEGIN; SAVEPOINT {savepoint}");
            let Some(list_sql) = list_sql else {
                return Self::begin(client, op, &begin, &[]).map(drop);
            };
            // The sequence list is read once per connection; if a listed sequence has been
            // dropped since, the snapshot fails: read the list again and retry once.
            let mut retried = false;
            loop {
                if sequence_list.is_none() || retried {
                    *sequence_list = Some(Self::load_sequence_list(client, &list_sql)?);
                }
                let list = sequence_list.as_deref().unwrap_or_default();
                match Self::begin(client, op, &begin, list) {
                    Ok(snapshot) => {
                        *sequences = snapshot;
                        return Ok(());
                    }
                    Err(e) if retried || matches!(e, Error::StateLost { .. }) => return Err(e),
                    Err(_) => retried = true,
                }
            }
        })
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let Self {
            base,
            client,
            sequences,
            ..
        } = self;
        base.rollback(name, |index, _| {
            let client = client.as_mut().ok_or(Error::NotConnected {
                backend: NAME.into(),
            })?;
            let mut sql = format!("ROLLBACK TO SAVEPOINT {}", quote_double(NAME, name)?);
            if index == 0 {
                if let Some(restore) = Self::sequence_restore_sql(sequences) {
                    sql.push_str("; ");
                    sql.push_str(&restore);
                }
            }
            Self::run(client, || format!("rollback to checkpoint {name:?}"), &sql).map(drop)
        })
    }

    fn release(&mut self, name: &str) -> Result<()> {
        let Self {
            base,
            client,
            sequences,
            ..
        } = self;
        base.release(name, |index, _| {
            let client = client.as_mut().ok_or(Error::NotConnected {
                backend: NAME.into(),
            })?;
            let savepoint = quote_double(NAME, name)?;
            let sql = if index == 0 {
                // RELEASE first: it fails if the transaction is aborted (where a bare COMMIT
                // would silently roll back) or no longer ours (where COMMIT would only warn).
                format!("RELEASE SAVEPOINT {savepoint}; COMMIT")
            } else {
                format!("RELEASE SAVEPOINT {savepoint}")
            };
            Self::run(client, || format!("release checkpoint {name:?}"), &sql)?;
            if index == 0 {
                sequences.clear();
            }
            Ok(())
        })
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        let Self {
            base,
            client,
            sequences,
            ..
        } = self;
        base.discard(name, |index, _| {
            let client = client.as_mut().ok_or(Error::NotConnected {
                backend: NAME.into(),
            })?;
            let savepoint = quote_double(NAME, name)?;
            let mut sql = if index == 0 {
                // The ROLLBACK TO proves the transaction is still ours (a bare ROLLBACK
                // outside one only warns) and costs no extra round trip.
                format!("ROLLBACK TO SAVEPOINT {savepoint}; ROLLBACK")
            } else {
                format!("ROLLBACK TO SAVEPOINT {savepoint}; RELEASE SAVEPOINT {savepoint}")
            };
            if index == 0 {
                if let Some(restore) = Self::sequence_restore_sql(sequences) {
                    sql.push_str("; ");
                    sql.push_str(&restore);
                }
                // Session state a ROLLBACK leaves behind, which the next test on this
                // pooled connection would inherit; same round trip.
                sql.push_str("; ");
                sql.push_str(SESSION_CLEANUP);
                Self::run_ending(client, || format!("discard checkpoint {name:?}"), &sql)?;
                sequences.clear();
            } else {
                Self::run(client, || format!("discard checkpoint {name:?}"), &sql)?;
            }
            Ok(())
        })
    }

    /// Empties the chosen tables of the chosen schemas with one
    /// `TRUNCATE .. RESTART IDENTITY` (never `CASCADE`), after rolling back an open
    /// transaction. If a table outside the set has a foreign key to a table in it, fails
    /// naming both and changes nothing.
    fn reset(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        if !self.base.checkpoints().is_empty() {
            let client = self.client.as_mut().expect("connected");
            Self::run(
                client,
                || "reset: ending the open transaction".into(),
                "ROLLBACK",
            )?;
        }
        self.base.clear_checkpoints();
        self.sequences.clear();
        self.sequence_list = None;
        let tables = self.reset_plan()?;
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
        let sql = format!("TRUNCATE TABLE {} RESTART IDENTITY", names.join(", "));
        let client = self.client.as_mut().expect("connected");
        client.batch_execute(&sql).map_err(|e| {
            Error::backend(
                NAME,
                format!("reset (TRUNCATE of {})", names.join(", ")),
                describe(&e),
            )
        })
    }

    fn is_connected(&self) -> bool {
        self.base.is_connected() && self.client.as_ref().is_some_and(|c| !c.is_closed())
    }

    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }

    fn health_check(&mut self) -> bool {
        match &mut self.client {
            Some(client) if !client.is_closed() => client.simple_query("SELECT 1").is_ok(),
            _ => false,
        }
    }

    fn execute_script(&mut self, script: &str) -> Result<()> {
        let client = self.try_client()?;
        client
            .batch_execute(script)
            .map_err(|e| Error::backend(NAME, "running a setup script", describe(&e)))
    }
}

impl crate::Session<PostgresStateManager> {
    /// The test's `postgres::Client`: run the code under test through it (see
    /// [`PostgresStateManager::client`] for what not to do on it).
    pub fn client(&mut self) -> &mut Client {
        self.manager().client()
    }
}

pub(crate) fn backend() -> Backend {
    Backend::new(NAME, PostgresStateManager::from_config).default_pool_size_with(|_| test_threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        for url in ["postgres://u:pw@h:5433/db", "postgresql://u:pw@h:5433/db"] {
            let c = PostgresStateManager::parse_url(url).unwrap();
            assert_eq!(PostgresStateManager::target(&c), "h:5433");
        }
        let c = PostgresStateManager::parse_url("postgres://u@h/db").unwrap();
        assert_eq!(PostgresStateManager::target(&c), "h:5432");
        let e = PostgresStateManager::parse_url("host=h password=hunter2")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("postgres://"), "{e}");
        let e = PostgresStateManager::parse_url("postgres://u:hunter2@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("a'b\\c").unwrap(), "E'a''b\\\\c'");
        assert!(quote_literal("a\0").is_err());
    }

    #[test]
    fn sequence_restore_statement() {
        assert_eq!(PostgresStateManager::sequence_restore_sql(&[]), None);
        let sql = PostgresStateManager::sequence_restore_sql(&[
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
}
