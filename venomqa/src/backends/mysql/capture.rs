//! Capture isolation for MySQL / MariaDB: roll back what any connection of any process
//! wrote, through an undo log that generated triggers fill.
//!
//! For every base table of the database, venomqa installs (once, reversibly, under the
//! reserved prefix `_vq_`):
//!
//! - an undo table `_vq_u_<table>` with the table's columns (all nullable, no keys), a
//!   sequence number, the operation, and the row's new key;
//! - `AFTER INSERT / UPDATE / DELETE` row triggers that log the row's old image (or its
//!   new key, for an insert), guarded by the session variable `@venomqa_replay` so the
//!   rollback's own statements are not logged;
//! - `BEFORE DELETE / UPDATE` triggers on parent tables that log the child rows an InnoDB
//!   foreign-key cascade will change, since InnoDB cascades fire no triggers;
//! - an invisible `_vq_rowid` column on tables without a primary key, so their rows can be
//!   found again (the app's `SELECT *` and `INSERT .. VALUES` do not see it).
//!
//! A checkpoint is a mark: the undo log's position per table, the AUTO_INCREMENT
//! counters and a schema fingerprint. A rollback replays the log past the mark in one
//! transaction, set-based per table (delete every row a logged change touched, re-insert
//! each row's image as it was at the mark), with foreign-key checks off; then restores the
//! counters, and proves it worked: before the restore commits, the tables it restored
//! have the row counts they had at the mark (with `capture_proof: digest`, every captured
//! table has the content digest it had), or the restore is rolled back; after the commit,
//! the log past the mark is empty, the counters and the schema are as they were. Before a
//! checkpoint and a rollback it waits (bounded) until no other session of the database is
//! inside a write transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, Row, Value};

use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};
use crate::sql::{mask_literals, quote_backtick};
use crate::util::fnv64;

const NAME: &str = "mysql";

/// The reserved name prefix of everything capture installs.
pub(crate) const PREFIX: &str = "_vq_";

/// Installed objects' layout version: a different one is reinstalled.
const VERSION: &str = "1";

/// The invisible row id given to tables without a primary key.
const ROWID: &str = "_vq_rowid";

/// How many rows of each table a diff lists.
const DIFF_ROWS: usize = 20;

fn q(name: &str) -> Result<String> {
    quote_backtick(NAME, name)
}

/// A MySQL string literal.
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A name of at most 64 characters: `prefix + table`, or a shortened form with a hash
/// when the table's name is too long.
fn object_name(prefix: &str, table: &str, suffix: &str) -> String {
    let full = format!("{prefix}{table}{suffix}");
    if full.chars().count() <= 64 {
        return full;
    }
    let short: String = table.chars().take(40).collect();
    format!(
        "{prefix}{short}_{:08x}{suffix}",
        fnv64(table.as_bytes()) as u32
    )
}

/// One stored (not generated) column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    /// `COLUMN_TYPE`, such as `varchar(100)` or `int(10) unsigned`.
    ty: String,
    charset: Option<String>,
    collation: Option<String>,
}

impl Column {
    /// Its definition in an undo table: same type and character set, nullable.
    fn undo_definition(&self, name: &str) -> Result<String> {
        let mut def = format!("{} {}", q(name)?, self.ty);
        if let (Some(cs), Some(co)) = (&self.charset, &self.collation) {
            write!(def, " CHARACTER SET {cs} COLLATE {co}").expect("write to a String");
        }
        def.push_str(" NULL");
        Ok(def)
    }

    /// Its index part: text and blob columns need a prefix length.
    fn index_part(&self, name: &str) -> Result<String> {
        let ty = self.ty.to_ascii_lowercase();
        Ok(if ty.contains("text") || ty.contains("blob") {
            format!("{}(255)", q(name)?)
        } else {
            q(name)?
        })
    }
}

/// A captured table.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    undo: String,
    columns: Vec<Column>,
    /// The primary key's columns, or [`ROWID`].
    key: Vec<String>,
    /// Whether venomqa gave it an invisible row id.
    keyless: bool,
}

impl Table {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn new_key(name: &str) -> String {
        format!("_vq_n_{name}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Cascade,
    SetNull,
    Other,
}

impl Action {
    fn parse(rule: &str) -> Self {
        match rule {
            "CASCADE" => Action::Cascade,
            "SET NULL" => Action::SetNull,
            _ => Action::Other,
        }
    }
}

/// A foreign key between two captured tables.
#[derive(Debug, Clone)]
struct ForeignKey {
    child: String,
    child_cols: Vec<String>,
    parent: String,
    parent_cols: Vec<String>,
    on_delete: Action,
    on_update: Action,
}

/// The mark of a checkpoint: where each table's undo log was, the AUTO_INCREMENT
/// counters, the schema's fingerprint, and what the data looked like (for the proof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    seqs: Vec<u64>,
    counters: Vec<Option<u64>>,
    fingerprint: String,
    /// Each table's content at the mark, read in the transaction that read `seqs`; `None`
    /// when it was not read (a state read, or a dead session's recorded root: `_vq_root`
    /// keeps no counts, so restoring what a dead session left proves only by the log).
    content: Option<Vec<Content>>,
}

/// One table's data as the proof sees it: its exact row count and, with
/// `capture_proof: digest`, an order-independent digest of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    rows: u64,
    /// `sum:count` of a hash of every row (`None` in count mode).
    digest: Option<String>,
}

impl Content {
    /// Parses what [`Capture::content_sql`] selects for one table: `n`, or `n:sum`.
    fn parse(v: &Value) -> Option<Self> {
        let text = text(v);
        let (rows, digest) = match text.split_once(':') {
            Some((rows, sum)) => (rows, Some(sum.to_owned())),
            None => (text.as_str(), None),
        };
        Some(Content {
            rows: rows.parse().ok()?,
            digest,
        })
    }
}

/// Which costly parts of the state to read.
#[derive(Debug, Clone, Copy, Default)]
struct Read {
    /// The schema fingerprint (columns and InnoDB table ids).
    schema: bool,
    /// How many capture triggers are installed.
    triggers: bool,
    /// The other sessions inside a write transaction.
    writers: bool,
}

impl Read {
    const COUNTERS: Read = Read {
        schema: false,
        triggers: false,
        writers: false,
    };
    const SCHEMA: Read = Read {
        schema: true,
        triggers: false,
        writers: false,
    };
    const WRITERS: Read = Read {
        schema: false,
        triggers: false,
        writers: true,
    };
    const INSTALLATION: Read = Read {
        schema: true,
        triggers: true,
        writers: false,
    };
}

/// What the state query returned: the mark now, plus who else is writing.
struct State {
    mark: Mark,
    triggers: u64,
    ids: BTreeMap<String, u64>,
    writers: Vec<String>,
}

/// Capture of one database, as installed.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    database: String,
    tables: Vec<Table>,
    fks: Vec<ForeignKey>,
    fingerprint: String,
    /// InnoDB table ids by table name, as installed: a TRUNCATE or a rebuilding ALTER
    /// gives a table a new id (empty when the server does not show them).
    ids: BTreeMap<String, u64>,
    /// The query listing InnoDB table ids (`name`, `id`), if this server and user can run
    /// it: MariaDB's `INNODB_SYS_TABLES` or MySQL 8's `INNODB_TABLES` (both need the
    /// PROCESS privilege).
    ids_sql: Option<String>,
    /// How long checkpoints and rollbacks wait for other sessions' write transactions.
    quiescence: Duration,
    /// What the proof inside a rollback's transaction reads of the data.
    proof: CaptureProof,
}

/// Reads every result of a (multi-statement) batch, so an error in any is returned.
fn run(conn: &mut Conn, sql: &str) -> std::result::Result<(), mysql::Error> {
    let mut result = conn.query_iter(sql)?;
    while let Some(set) = result.iter() {
        for row in set {
            row?;
        }
    }
    Ok(())
}

/// The result sets of a batch, each a list of rows.
fn sets(conn: &mut Conn, sql: &str) -> std::result::Result<Vec<Vec<Row>>, mysql::Error> {
    let mut out = Vec::new();
    let mut result = conn.query_iter(sql)?;
    while let Some(set) = result.iter() {
        out.push(set.collect::<std::result::Result<Vec<Row>, _>>()?);
    }
    Ok(out)
}

fn text(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".to_owned(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        other => other.as_sql(true),
    }
}

fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::NULL => None,
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::UInt(u) => Some(*u),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// A server error in words: the server's own message and what capture needs, on one line.
/// The driver's error stays its [`source`](std::error::Error::source), so
/// [`Error::driver`] still finds it.
#[derive(Debug)]
struct ServerError {
    message: String,
    source: mysql::Error,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The error of a failed capture statement: a lost connection or a server error.
fn failed(operation: &str, e: mysql::Error) -> Error {
    let mysql::Error::MySqlError(server) = &e else {
        return Error::backend(NAME, operation, e);
    };
    let needs = match server.code {
        1142 | 1227 | 1044 => Some("the TRIGGER, ALTER and CREATE privileges on the database"),
        1419 => Some(
            "SUPER, or the server variable log_bin_trust_function_creators = 1 (binary logging is on)",
        ),
        _ => None,
    };
    // The server's message is one line; a Debug dump of the driver's error is not.
    let text = server.message.replace(['\n', '\r'], " ");
    let message = match needs {
        Some(needs) => format!("{text} (capture needs {needs})"),
        None => format!("{text} (server error {})", server.code),
    };
    Error::backend(NAME, operation, ServerError { message, source: e })
}

impl Capture {
    /// Reads the schema of `database` and installs capture where it is missing or out of
    /// date. Idempotent; on error nothing is left half-installed.
    pub(crate) fn attach(conn: &mut Conn, database: &str, quiescence: Duration) -> Result<Self> {
        // Long enough for a big schema's fingerprint; 0 disables MySQL 8's cache of
        // information_schema statistics (AUTO_INCREMENT values), unknown to MariaDB.
        run(conn, "SET SESSION group_concat_max_len = 1073741824")
            .map_err(|e| failed("setting up the capture session", e))?;
        let _ = run(conn, "SET SESSION information_schema_stats_expiry = 0");
        let mut capture = Self::read(conn, database, quiescence)?;
        let installed: Option<(String, String)> = conn
            .exec_first(
                format!(
                    "SELECT (SELECT v FROM {db}.`_vq_meta` WHERE k = 'version'), (SELECT v FROM {db}.`_vq_meta` WHERE k = 'fingerprint')",
                    db = q(database)?
                ),
                (),
            )
            .ok()
            .flatten()
            .and_then(|(v, f): (Option<String>, Option<String>)| Some((v?, f?)));
        // Up to date when the recorded version and fingerprint match what is there now
        // (a state query fails too when an undo table is missing).
        let up_to_date = match &installed {
            Some((version, fingerprint)) if version == VERSION => {
                capture.state(conn, Read::INSTALLATION).is_ok_and(|now| {
                    now.mark.fingerprint == *fingerprint
                        && now.triggers == capture.expected_triggers()
                })
            }
            _ => false,
        };
        if !up_to_date {
            // A dead session's record would be dropped with the old installation: say so
            // instead of losing its changes silently.
            let left: Option<i64> = conn
                .query_first(format!("SELECT COUNT(*) FROM {}.`_vq_root`", q(database)?))
                .ok()
                .flatten();
            if left.is_some_and(|n| n > 0) {
                return Err(Error::state_lost(
                    NAME,
                    format!("a session that died left changes in database {database}, and the schema changed since, so they cannot be restored; restore the database, call MySql::uninstall_capture(), and run again"),
                ));
            }
            capture.install(conn)?;
            capture = Self::read(conn, database, quiescence)?;
        }
        let state = capture.state(conn, Read::SCHEMA)?;
        capture.fingerprint = state.mark.fingerprint;
        capture.ids = state.ids;
        Ok(capture)
    }

    /// Reads the tables, keys and foreign keys of `database`.
    fn read(conn: &mut Conn, database: &str, quiescence: Duration) -> Result<Self> {
        let db = lit(database);
        let like = "'\\_vq\\_%'";
        let sql = format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE {like} ORDER BY TABLE_NAME;
             SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} AND TABLE_NAME NOT LIKE {like} ORDER BY TABLE_NAME, ORDINAL_POSITION;
             SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = {db} AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION;
             SELECT rc.CONSTRAINT_NAME, rc.TABLE_NAME, rc.REFERENCED_TABLE_NAME, rc.DELETE_RULE, rc.UPDATE_RULE, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME
               FROM information_schema.REFERENTIAL_CONSTRAINTS rc
               JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME AND k.TABLE_NAME = rc.TABLE_NAME
              WHERE rc.CONSTRAINT_SCHEMA = {db} AND k.REFERENCED_TABLE_SCHEMA = {db}
              ORDER BY rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION"
        );
        let results = sets(conn, &sql).map_err(|e| failed("reading the schema for capture", e))?;
        let [tables, columns, keys, fks]: [Vec<Row>; 4] = results.try_into().map_err(|_| {
            Error::backend(
                NAME,
                "reading the schema for capture",
                "expected 4 result sets",
            )
        })?;
        let s = |row: &Row, i: usize| row.as_ref(i).map(text).unwrap_or_default();
        let opt = |row: &Row, i: usize| match row.as_ref(i) {
            Some(Value::NULL) | None => None,
            Some(v) => Some(text(v)),
        };
        let mut by_table: BTreeMap<String, Table> = tables
            .iter()
            .map(|r| {
                let name = s(r, 0);
                (
                    name.clone(),
                    Table {
                        undo: object_name("_vq_u_", &name, ""),
                        name,
                        columns: Vec::new(),
                        key: Vec::new(),
                        keyless: false,
                    },
                )
            })
            .collect();
        for r in &columns {
            let Some(table) = by_table.get_mut(&s(r, 0)) else {
                continue;
            };
            let extra = s(r, 5).to_ascii_uppercase();
            if extra.contains("GENERATED") {
                continue;
            }
            let name = s(r, 1);
            if name == ROWID {
                table.keyless = true;
            }
            table.columns.push(Column {
                name,
                ty: s(r, 2),
                charset: opt(r, 3),
                collation: opt(r, 4),
            });
        }
        for r in &keys {
            if let Some(table) = by_table.get_mut(&s(r, 0)) {
                table.key.push(s(r, 1));
            }
        }
        for table in by_table.values_mut() {
            if table.key.is_empty() {
                table.key = vec![ROWID.to_owned()];
            }
        }
        let mut foreign: Vec<ForeignKey> = Vec::new();
        let mut last: Option<(String, String)> = None;
        for r in &fks {
            let id = (s(r, 1), s(r, 0));
            if last.as_ref() != Some(&id) {
                foreign.push(ForeignKey {
                    child: s(r, 1),
                    child_cols: Vec::new(),
                    parent: s(r, 2),
                    parent_cols: Vec::new(),
                    on_delete: Action::parse(&s(r, 3)),
                    on_update: Action::parse(&s(r, 4)),
                });
                last = Some(id);
            }
            let fk = foreign.last_mut().expect("pushed above");
            fk.child_cols.push(s(r, 5));
            fk.parent_cols.push(s(r, 6));
        }
        foreign.retain(|fk| by_table.contains_key(&fk.child) && by_table.contains_key(&fk.parent));
        let prefix = lit(&format!("{database}/"));
        let ids_sql = [
            format!("SELECT SUBSTRING(NAME, CHAR_LENGTH({prefix}) + 1), TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME LIKE CONCAT({prefix}, '%')"),
            format!("SELECT SUBSTRING(NAME, CHAR_LENGTH({prefix}) + 1), TABLE_ID FROM information_schema.INNODB_TABLES WHERE NAME LIKE CONCAT({prefix}, '%')"),
        ]
        .into_iter()
        .find(|sql| conn.query_drop(sql).is_ok());
        Ok(Capture {
            database: database.to_owned(),
            tables: by_table.into_values().collect(),
            fks: foreign,
            fingerprint: String::new(),
            ids: BTreeMap::new(),
            ids_sql,
            quiescence,
            proof: CaptureProof::default(),
        })
    }

    /// How many `_vq_` triggers a complete installation has.
    fn expected_triggers(&self) -> u64 {
        let parents_delete: BTreeSet<&str> = self
            .fks
            .iter()
            .filter(|f| f.on_delete != Action::Other)
            .map(|f| f.parent.as_str())
            .collect();
        let parents_update: BTreeSet<&str> = self
            .fks
            .iter()
            .filter(|f| f.on_update != Action::Other)
            .map(|f| f.parent.as_str())
            .collect();
        (self.tables.len() * 3 + parents_delete.len() + parents_update.len()) as u64
    }

    fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Installs undo tables, triggers and row ids (dropping an older installation first).
    /// If any step fails, what was installed is removed again.
    fn install(&mut self, conn: &mut Conn) -> Result<()> {
        // Metadata locks on the app's tables: fail in seconds, not in a year.
        let _ = run(conn, "SET SESSION lock_wait_timeout = 10");
        Self::uninstall_from(conn, &self.database)?;
        // The old installation's row ids are gone with it: give them again (a schema
        // change between sessions reinstalls capture on tables that had one).
        for table in &mut self.tables {
            if table.keyless {
                table.keyless = false;
                table.columns.retain(|c| c.name != ROWID);
            }
        }
        let rowids = match self.install_steps(conn) {
            Ok(rowids) => rowids,
            Err(e) => {
                let _ = Self::uninstall_from(conn, &self.database);
                return Err(e);
            }
        };
        tracing::info!(target: "venomqa", database = %self.database, tables = self.tables.len(), "capture installed");
        if !rowids.is_empty() {
            // The one change to the app's own tables: say which, and how it goes away.
            tracing::info!(
                target: "venomqa",
                database = %self.database,
                tables = %rowids.join(", "),
                "capture added the invisible column {ROWID} (and a unique index of that name) to the tables without a primary key; schema-diff tools see it, the app's SELECT * and INSERT .. VALUES do not; MySql::uninstall_capture() removes it"
            );
        }
        Ok(())
    }

    /// The installation's statements, run in order; returns the tables given a row id.
    fn install_steps(&mut self, conn: &mut Conn) -> Result<Vec<String>> {
        let db = q(&self.database)?;
        let mut statements = vec![format!(
            "CREATE TABLE IF NOT EXISTS {db}.`_vq_meta` (k VARCHAR(64) PRIMARY KEY, v TEXT) ENGINE=InnoDB"
        ), format!(
            "CREATE TABLE IF NOT EXISTS {db}.`_vq_root` (tbl VARCHAR(64) PRIMARY KEY, seq BIGINT UNSIGNED NOT NULL, counter BIGINT UNSIGNED NULL) ENGINE=InnoDB"
        )];
        let mut rowids = Vec::new();
        for table in &mut self.tables {
            if table.key == [ROWID] && !table.keyless {
                rowids.push(table.name.clone());
                statements.push(format!(
                    "ALTER TABLE {db}.{} ADD COLUMN `{ROWID}` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT INVISIBLE, ADD UNIQUE KEY `{ROWID}` (`{ROWID}`)",
                    q(&table.name)?
                ));
                table.keyless = true;
                table.columns.push(Column {
                    name: ROWID.to_owned(),
                    ty: "bigint(20) unsigned".to_owned(),
                    charset: None,
                    collation: None,
                });
            }
        }
        for table in &self.tables {
            statements.push(self.undo_table_ddl(table)?);
            statements.extend(self.row_triggers(table)?);
        }
        statements.extend(self.cascade_triggers()?);
        for sql in &statements {
            run(conn, sql).map_err(|e| failed("installing capture", e))?;
        }
        let fingerprint = self.state(conn, Read::SCHEMA)?.mark.fingerprint;
        run(
            conn,
            &format!(
                "REPLACE INTO {db}.`_vq_meta` (k, v) VALUES ('version', {}), ('fingerprint', {})",
                lit(VERSION),
                lit(&fingerprint)
            ),
        )
        .map_err(|e| failed("installing capture", e))?;
        Ok(rowids)
    }

    fn undo_table_ddl(&self, table: &Table) -> Result<String> {
        let mut cols = vec![
            "`_vq_seq` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY".to_owned(),
            "`_vq_op` CHAR(1) NOT NULL".to_owned(),
            "`_vq_cascade` TINYINT NOT NULL DEFAULT 0".to_owned(),
        ];
        for k in &table.key {
            let column = table.column(k).ok_or_else(|| {
                Error::backend(
                    NAME,
                    "installing capture",
                    format!("key column {k} of {} not found", table.name),
                )
            })?;
            cols.push(column.undo_definition(&Table::new_key(k))?);
        }
        for c in &table.columns {
            cols.push(c.undo_definition(&c.name)?);
        }
        let key: Vec<String> = table
            .key
            .iter()
            .map(|k| table.column(k).expect("checked above").index_part(k))
            .collect::<Result<_>>()?;
        let new_key: Vec<String> = table
            .key
            .iter()
            .map(|k| {
                table
                    .column(k)
                    .expect("checked above")
                    .index_part(&Table::new_key(k))
            })
            .collect::<Result<_>>()?;
        cols.push(format!("KEY `_vq_key` ({})", key.join(", ")));
        cols.push(format!("KEY `_vq_new_key` ({})", new_key.join(", ")));
        Ok(format!(
            "CREATE TABLE {}.{} ({}) ENGINE=InnoDB",
            q(&self.database)?,
            q(&table.undo)?,
            cols.join(", ")
        ))
    }

    /// `AFTER INSERT / UPDATE / DELETE` triggers logging `table`'s rows.
    fn row_triggers(&self, table: &Table) -> Result<Vec<String>> {
        let db = q(&self.database)?;
        let undo = format!("{db}.{}", q(&table.undo)?);
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| q(&c.name))
            .collect::<Result<_>>()?;
        let new_keys: Vec<String> = table
            .key
            .iter()
            .map(|k| q(&Table::new_key(k)))
            .collect::<Result<_>>()?;
        let of = |row: &str, names: &[String]| -> Result<String> {
            Ok(names
                .iter()
                .map(|n| Ok(format!("{row}.{}", q(n)?)))
                .collect::<Result<Vec<_>>>()?
                .join(", "))
        };
        let col_names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        let insert = |op: &str, new_key: &str, image: &str| {
            format!(
                "INSERT INTO {undo} (`_vq_op`, {}, {}) VALUES ('{op}', {new_key}, {image})",
                new_keys.join(", "),
                cols.join(", ")
            )
        };
        let nulls = vec!["NULL"; table.key.len()].join(", ");
        let mut out = Vec::new();
        for (suffix, event, op, new_key, image) in [
            (
                "_ai",
                "INSERT",
                "I",
                of("NEW", &table.key)?,
                of("NEW", &col_names)?,
            ),
            (
                "_au",
                "UPDATE",
                "U",
                of("NEW", &table.key)?,
                of("OLD", &col_names)?,
            ),
            ("_ad", "DELETE", "D", nulls.clone(), of("OLD", &col_names)?),
        ] {
            out.push(format!(
                "CREATE TRIGGER {db}.{} AFTER {event} ON {db}.{} FOR EACH ROW BEGIN IF @venomqa_replay IS NULL THEN {}; END IF; END",
                q(&object_name("_vq_", &table.name, suffix))?,
                q(&table.name)?,
                insert(op, &new_key, &image)
            ));
        }
        Ok(out)
    }

    /// `BEFORE DELETE / UPDATE` triggers on parents, logging the rows their cascades change
    /// (children, and their children through further cascades).
    fn cascade_triggers(&self) -> Result<Vec<String>> {
        let db = q(&self.database)?;
        let mut out = Vec::new();
        for (event, suffix) in [("DELETE", "_bd"), ("UPDATE", "_bu")] {
            let parents: BTreeSet<&str> = self
                .fks
                .iter()
                .filter(|f| self.action(f, event) != Action::Other)
                .map(|f| f.parent.as_str())
                .collect();
            for parent in parents {
                let mut body = Vec::new();
                self.cascade_logs(parent, event, &mut Vec::new(), &mut body)?;
                if body.is_empty() {
                    continue;
                }
                out.push(format!(
                    "CREATE TRIGGER {db}.{} BEFORE {event} ON {db}.{} FOR EACH ROW BEGIN IF @venomqa_replay IS NULL THEN {}; END IF; END",
                    q(&object_name("_vq_", parent, suffix))?,
                    q(parent)?,
                    body.join("; ")
                ));
            }
        }
        Ok(out)
    }

    fn action(&self, fk: &ForeignKey, event: &str) -> Action {
        if event == "DELETE" {
            fk.on_delete
        } else {
            fk.on_update
        }
    }

    /// The statements logging what a cascade from the row `OLD` of `path`'s first table
    /// changes. `path` is the chain of foreign keys followed so far (to the current
    /// table), empty at the parent itself.
    fn cascade_logs(
        &self,
        table: &str,
        event: &str,
        path: &mut Vec<ForeignKey>,
        body: &mut Vec<String>,
    ) -> Result<()> {
        if path.len() >= 4 {
            return Ok(());
        }
        // Only the first hop can be an UPDATE cascade (it changes the child's key columns,
        // which a further ON UPDATE cascade would follow; kept to one hop, documented).
        let event_here = if path.is_empty() { event } else { "DELETE" };
        for fk in self.fks.iter().filter(|f| f.parent == table) {
            let action = self.action(fk, event_here);
            if action == Action::Other || path.iter().any(|p| p.child == fk.child) {
                continue;
            }
            let Some(child) = self.table(&fk.child) else {
                continue;
            };
            path.push(fk.clone());
            body.push(self.cascade_log(child, path, event, action)?);
            if action == Action::Cascade && event_here == "DELETE" {
                self.cascade_logs(&fk.child, event, path, body)?;
            }
            path.pop();
        }
        Ok(())
    }

    /// One `INSERT INTO undo SELECT` of the rows of `child` that the cascade along `path`
    /// changes, where `action` is the last hop's rule.
    fn cascade_log(
        &self,
        child: &Table,
        path: &[ForeignKey],
        event: &str,
        action: Action,
    ) -> Result<String> {
        let db = q(&self.database)?;
        // Aliases t0 (the first child) .. tn (this child), joined along the path; the
        // first hop is tied to the parent's row OLD.
        let first = &path[0];
        let mut joins = format!("{db}.{} t0", q(&first.child)?);
        for (i, fk) in path.iter().enumerate().skip(1) {
            let conds: Vec<String> = fk
                .child_cols
                .iter()
                .zip(&fk.parent_cols)
                .map(|(c, p)| Ok(format!("t{i}.{} = t{}.{}", q(c)?, i - 1, q(p)?)))
                .collect::<Result<_>>()?;
            write!(
                joins,
                " JOIN {db}.{} t{i} ON {}",
                q(&fk.child)?,
                conds.join(" AND ")
            )
            .expect("write to a String");
        }
        let mut wheres: Vec<String> = first
            .child_cols
            .iter()
            .zip(&first.parent_cols)
            .map(|(c, p)| Ok(format!("t0.{} = OLD.{}", q(c)?, q(p)?)))
            .collect::<Result<_>>()?;
        if event == "UPDATE" {
            // Only when a referenced column really changes.
            let changed: Vec<String> = first
                .parent_cols
                .iter()
                .map(|p| Ok(format!("NOT (OLD.{0} <=> NEW.{0})", q(p)?)))
                .collect::<Result<_>>()?;
            wheres.push(format!("({})", changed.join(" OR ")));
        }
        let last = format!("t{}", path.len() - 1);
        let cols: Vec<String> = child
            .columns
            .iter()
            .map(|c| q(&c.name))
            .collect::<Result<_>>()?;
        let image: Vec<String> = child
            .columns
            .iter()
            .map(|c| Ok(format!("{last}.{}", q(&c.name)?)))
            .collect::<Result<_>>()?;
        let new_keys: Vec<String> = child
            .key
            .iter()
            .map(|k| q(&Table::new_key(k)))
            .collect::<Result<_>>()?;
        let hop_event = if path.len() == 1 { event } else { "DELETE" };
        let (op, new_key_values): (&str, Vec<String>) = match (action, hop_event) {
            (Action::Cascade, "DELETE") => ("D", vec!["NULL".to_owned(); child.key.len()]),
            (Action::Cascade, _) => {
                // An UPDATE cascade changes the child's referencing columns to the
                // parent's new values; its key changes with them when they are part of it.
                let fk = &path[0];
                let values = child
                    .key
                    .iter()
                    .map(|k| {
                        Ok(match fk.child_cols.iter().position(|c| c == k) {
                            Some(i) => format!("NEW.{}", q(&fk.parent_cols[i])?),
                            None => format!("{last}.{}", q(k)?),
                        })
                    })
                    .collect::<Result<_>>()?;
                ("U", values)
            }
            // SET NULL: the row stays where it is (a key column cannot be set to NULL).
            _ => (
                "U",
                child
                    .key
                    .iter()
                    .map(|k| Ok(format!("{last}.{}", q(k)?)))
                    .collect::<Result<_>>()?,
            ),
        };
        Ok(format!(
            "INSERT INTO {db}.{} (`_vq_op`, `_vq_cascade`, {}, {}) SELECT '{op}', 1, {}, {} FROM {joins} WHERE {}",
            q(&child.undo)?,
            new_keys.join(", "),
            cols.join(", "),
            new_key_values.join(", "),
            image.join(", "),
            wheres.join(" AND ")
        ))
    }

    /// Removes everything capture installed in `database`: triggers, undo tables, row ids
    /// and bookkeeping. The app's data is untouched.
    pub(crate) fn uninstall_from(conn: &mut Conn, database: &str) -> Result<()> {
        let db = lit(database);
        let sql = format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db} AND TRIGGER_NAME LIKE '\\_vq\\_%';
             SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_NAME LIKE '\\_vq\\_%';
             SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} AND COLUMN_NAME = '{ROWID}' AND TABLE_NAME NOT LIKE '\\_vq\\_%'"
        );
        let results = sets(conn, &sql).map_err(|e| failed("reading what capture installed", e))?;
        let qdb = q(database)?;
        let name = |r: &Row| r.as_ref(0).map(text).unwrap_or_default();
        let mut statements = Vec::new();
        for r in &results[0] {
            statements.push(format!("DROP TRIGGER IF EXISTS {qdb}.{}", q(&name(r))?));
        }
        for r in &results[1] {
            statements.push(format!("DROP TABLE IF EXISTS {qdb}.{}", q(&name(r))?));
        }
        for r in &results[2] {
            statements.push(format!(
                "ALTER TABLE {qdb}.{} DROP INDEX `{ROWID}`, DROP COLUMN `{ROWID}`",
                q(&name(r))?
            ));
        }
        for sql in statements {
            run(conn, &sql).map_err(|e| failed("removing capture", e))?;
        }
        Ok(())
    }

    /// The state now: undo positions, counters, fingerprint, installed triggers, and the
    /// other sessions inside a write transaction on this database. One round trip.
    fn state(&self, conn: &mut Conn, read: Read) -> Result<State> {
        let db = lit(&self.database);
        let seqs = if self.tables.is_empty() {
            "SELECT 0".to_owned()
        } else {
            let parts: Vec<String> = self
                .tables
                .iter()
                .map(|t| {
                    Ok(format!(
                        "(SELECT COALESCE(MAX(`_vq_seq`), 0) FROM {}.{})",
                        q(&self.database)?,
                        q(&t.undo)?
                    ))
                })
                .collect::<Result<_>>()?;
            format!("SELECT {}", parts.join(", "))
        };
        // Each part is read only when asked for: the trigger count (several milliseconds
        // on MariaDB, which parses every trigger) and the schema are not needed on the
        // hot path of a nested checkpoint.
        let nothing = "SELECT NULL, NULL FROM DUAL WHERE FALSE";
        let schema = if read.schema {
            format!(
                "SELECT MD5(GROUP_CONCAT(CONCAT_WS(0x1f, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COALESCE(COLUMN_DEFAULT, 0x00), EXTRA) ORDER BY TABLE_NAME, ORDINAL_POSITION SEPARATOR 0x1e))
                   FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} AND TABLE_NAME NOT LIKE '\\_vq\\_%' AND COLUMN_NAME <> '{ROWID}'"
            )
        } else {
            nothing.to_owned()
        };
        let triggers = if read.triggers {
            format!("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db} AND TRIGGER_NAME LIKE '\\_vq\\_%'")
        } else {
            nothing.to_owned()
        };
        let writers = if read.writers {
            format!(
                "SELECT t.trx_mysql_thread_id, COALESCE(p.USER, ''), COALESCE(p.HOST, ''), COALESCE(t.trx_query, ''), t.trx_rows_modified
                   FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
                  WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND (p.DB = {db} OR p.DB IS NULL) AND (t.trx_rows_modified > 0 OR t.trx_query IS NOT NULL)"
            )
        } else {
            nothing.to_owned()
        };
        let ids = match (&self.ids_sql, read.schema) {
            (Some(sql), true) => sql.clone(),
            _ => nothing.to_owned(),
        };
        let sql = format!(
            "SET SESSION group_concat_max_len = 1073741824;
             {schema};
             {triggers};
             {seqs};
             SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_NAME NOT LIKE '\\_vq\\_%';
             {writers};
             {ids}"
        );
        let mut results = sets(conn, &sql).map_err(|e| failed("reading the capture state", e))?;
        // The SET's empty result comes first.
        if results.len() == 7 {
            results.remove(0);
        }
        let [fp, triggers, seqs, counters, writers, ids]: [Vec<Row>; 6] =
            results.try_into().map_err(|_| {
                Error::backend(NAME, "reading the capture state", "expected 6 result sets")
            })?;
        let ids: BTreeMap<String, u64> = ids
            .iter()
            .filter_map(|r| Some((r.as_ref(0).map(text)?, r.as_ref(1).and_then(u64_of)?)))
            .filter(|(name, _)| !name.starts_with(PREFIX))
            .collect();
        let first = |rows: &[Row]| {
            rows.first()
                .and_then(|r| r.as_ref(0))
                .cloned()
                .unwrap_or(Value::NULL)
        };
        let mut fingerprint = text(&first(&fp));
        for (name, id) in &ids {
            write!(fingerprint, "|{name}:{id}").expect("write to a String");
        }
        let triggers = u64_of(&first(&triggers)).unwrap_or(0);
        let seqs: Vec<u64> = match seqs.first() {
            Some(row) if !self.tables.is_empty() => (0..self.tables.len())
                .map(|i| row.as_ref(i).and_then(u64_of).unwrap_or(0))
                .collect(),
            _ => Vec::new(),
        };
        let by_name: HashMap<String, Option<u64>> = counters
            .iter()
            .map(|r| {
                (
                    r.as_ref(0).map(text).unwrap_or_default(),
                    r.as_ref(1).and_then(u64_of),
                )
            })
            .collect();
        let counters = self
            .tables
            .iter()
            .map(|t| by_name.get(&t.name).copied().flatten())
            .collect();
        let writers = writers
            .iter()
            .map(|r| {
                let v = |i| r.as_ref(i).map(text).unwrap_or_default();
                // Another session's statement may hold secrets: its shape only.
                let query = mask_literals(&v(3), 80);
                format!(
                    "connection {} ({}@{}, {} rows changed{})",
                    v(0),
                    v(1),
                    v(2),
                    v(4),
                    if query.is_empty() {
                        String::new()
                    } else {
                        format!(", running `{query}`")
                    }
                )
            })
            .collect();
        Ok(State {
            mark: Mark {
                seqs,
                counters,
                fingerprint,
                content: None,
            },
            triggers,
            ids,
            writers,
        })
    }

    /// Waits until no other session of the database is inside a write transaction, up to
    /// the quiescence timeout; returns the state then.
    /// Reads each undo log's position past `since` (its end, for a new mark) with locking
    /// reads, inside a transaction left open: they wait for other sessions' uncommitted
    /// changes to captured tables (whose log entries they hold locked), so no mark falls
    /// between two transactions' entries and no rollback misses one. The wait is bounded by
    /// the quiescence timeout; then the error names the sessions still writing.
    ///
    /// With `content`, the same round trip then reads every table's [`Content`] (after the
    /// locking reads, so it is the data at exactly those positions: no other session can
    /// log a change until this transaction ends).
    fn locked_positions(
        &self,
        conn: &mut Conn,
        since: &[u64],
        operation: &str,
        content: bool,
    ) -> Result<(Vec<u64>, Option<Vec<Content>>)> {
        let wait = self.quiescence.as_secs_f64().ceil().max(1.0) as u64;
        let mut sql = format!("SET SESSION innodb_lock_wait_timeout = {wait}; START TRANSACTION;");
        for (i, table) in self.tables.iter().enumerate() {
            write!(
                sql,
                " SELECT COUNT(*), COALESCE(MAX(`_vq_seq`), 0) FROM {}.{} WHERE `_vq_seq` > {} FOR UPDATE;",
                q(&self.database)?,
                q(&table.undo)?,
                since[i]
            )
            .expect("write to a String");
        }
        let all: Vec<usize> = (0..self.tables.len()).collect();
        let content_sql = if content {
            self.content_sql(&all, self.proof == CaptureProof::Digest)?
        } else {
            None
        };
        if let Some(read) = &content_sql {
            write!(sql, " {read};").expect("write to a String");
        }
        match sets(conn, &sql) {
            Ok(results) => {
                let positions = results
                    .iter()
                    .skip(2)
                    .zip(since)
                    .map(|(rows, &from)| {
                        rows.first()
                            .and_then(|r| r.as_ref(1))
                            .and_then(u64_of)
                            .unwrap_or(0)
                            .max(from)
                    })
                    .collect();
                let content = match content_sql {
                    Some(_) => {
                        let rows = results.get(2 + self.tables.len());
                        let read = rows.and_then(|rows| Self::parse_content(rows, all.len()));
                        if read.is_none() {
                            let _ = run(conn, "ROLLBACK");
                            return Err(Error::backend(
                                NAME,
                                operation,
                                "reading the captured tables' row counts returned no row",
                            ));
                        }
                        read
                    }
                    None if content && self.tables.is_empty() => Some(Vec::new()),
                    None => None,
                };
                Ok((positions, content))
            }
            Err(e) => {
                let _ = run(conn, "ROLLBACK");
                if matches!(&e, mysql::Error::MySqlError(s) if s.code == 1205) {
                    let writers = self
                        .state(conn, Read::WRITERS)
                        .map(|s| s.writers)
                        .unwrap_or_default();
                    return Err(Error::backend(
                        NAME,
                        operation,
                        format!(
                            "other sessions kept uncommitted changes for {wait} s ({}); let the app finish its requests first, or raise quiescence_timeout_ms",
                            if writers.is_empty() { "sessions unknown".to_owned() } else { writers.join("; ") }
                        ),
                    ));
                }
                Err(lost_or(operation, e))
            }
        }
    }

    /// The schema changed since capture was installed: what changed, in words.
    fn schema_change(&self, conn: &mut Conn, state: &State) -> String {
        let rebuilt: Vec<&str> = self
            .ids
            .iter()
            .filter(|(name, id)| state.ids.get(*name).is_some_and(|now| now != *id))
            .map(|(name, _)| name.as_str())
            .collect();
        match Self::read(conn, &self.database, self.quiescence) {
            Ok(now) => {
                let describe = |c: &Capture| -> BTreeMap<String, Vec<String>> {
                    c.tables
                        .iter()
                        .map(|t| {
                            (
                                t.name.clone(),
                                t.columns
                                    .iter()
                                    .filter(|c| c.name != ROWID)
                                    .map(|c| format!("{} {}", c.name, c.ty))
                                    .collect(),
                            )
                        })
                        .collect()
                };
                let (before, after) = (describe(self), describe(&now));
                let mut changes = Vec::new();
                for (table, cols) in &after {
                    match before.get(table) {
                        None => changes.push(format!("table {table} was created")),
                        Some(old) if old != cols => {
                            let added: Vec<&String> =
                                cols.iter().filter(|c| !old.contains(c)).collect();
                            let removed: Vec<&String> =
                                old.iter().filter(|c| !cols.contains(c)).collect();
                            changes.push(
                                format!(
                                    "table {table}: {}{}",
                                    if added.is_empty() {
                                        String::new()
                                    } else {
                                        format!(
                                            "+[{}] ",
                                            added
                                                .iter()
                                                .map(|s| s.as_str())
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        )
                                    },
                                    if removed.is_empty() {
                                        String::new()
                                    } else {
                                        format!(
                                            "-[{}]",
                                            removed
                                                .iter()
                                                .map(|s| s.as_str())
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        )
                                    }
                                )
                                .trim_end()
                                .to_owned(),
                            );
                        }
                        _ => {}
                    }
                }
                for table in before.keys().filter(|t| !after.contains_key(*t)) {
                    changes.push(format!("table {table} was dropped"));
                }
                for table in rebuilt {
                    changes.push(format!("table {table} was truncated or rebuilt"));
                }
                if changes.is_empty() {
                    "a column's definition or a default changed".to_owned()
                } else {
                    changes.join("; ")
                }
            }
            Err(e) => format!("(could not read the schema: {e})"),
        }
    }

    /// Fails, restoring nothing, when the schema is not the one capture was installed for
    /// (`state` must have been read with [`Read::SCHEMA`]).
    fn check_schema(&self, conn: &mut Conn, state: &State, operation: &str) -> Result<()> {
        if state.mark.fingerprint != self.fingerprint {
            let what = self.schema_change(conn, state);
            return Err(Error::state_lost(
                NAME,
                format!("{operation}: the schema changed since capture was installed ({what}), so nothing was restored; run DDL in setup, not in tests"),
            ));
        }
        Ok(())
    }

    /// A checkpoint: the counters, and the log positions read with locks (waiting for
    /// other sessions' uncommitted changes). The schema is checked when the session
    /// begins and at every rollback, not here (it is the expensive part).
    ///
    /// Also each table's exact row count (and digest, with `capture_proof: digest`), in the
    /// round trip of the locking reads, for the proof inside the rollback.
    pub(crate) fn mark(&self, conn: &mut Conn, operation: &str) -> Result<Mark> {
        let state = self.state(conn, Read::COUNTERS)?;
        let (seqs, content) =
            self.locked_positions(conn, &vec![0; self.tables.len()], operation, true)?;
        run(conn, "COMMIT").map_err(|e| lost_or(operation, e))?;
        Ok(Mark {
            seqs,
            fingerprint: self.fingerprint.clone(),
            content,
            ..state.mark
        })
    }

    /// One `SELECT` of the [`Content`] of the tables at `indexes` (one column each), or
    /// `None` for no table. A digest is `count:sum` of the first 60 bits of an MD5 of every
    /// row: all its columns but [`ROWID`], each with a null flag (so NULL and '' differ),
    /// as binary strings (so no collation is involved), summed exactly (DECIMAL), so the
    /// order of the rows does not matter.
    fn content_sql(&self, indexes: &[usize], digest: bool) -> Result<Option<String>> {
        if indexes.is_empty() {
            return Ok(None);
        }
        let db = q(&self.database)?;
        let mut parts = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let table = &self.tables[i];
            let t = format!("{db}.{}", q(&table.name)?);
            if digest {
                let mut fields = Vec::new();
                for c in table.columns.iter().filter(|c| c.name != ROWID) {
                    let c = q(&c.name)?;
                    fields.push(format!("ISNULL({c}), CAST({c} AS BINARY)"));
                }
                parts.push(format!(
                    "(SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CAST(CONV(LEFT(MD5(CONCAT_WS(0x1f, {})), 15), 16, 10) AS UNSIGNED)), 0)) FROM {t})",
                    fields.join(", ")
                ));
            } else {
                parts.push(format!("(SELECT COUNT(*) FROM {t})"));
            }
        }
        Ok(Some(format!("SELECT {}", parts.join(", "))))
    }

    /// The [`Content`]s of a [`content_sql`](Self::content_sql) result of `n` tables.
    fn parse_content(rows: &[Row], n: usize) -> Option<Vec<Content>> {
        let row = rows.first()?;
        (0..n).map(|i| Content::parse(row.as_ref(i)?)).collect()
    }

    /// Rolls every table back to `mark`, then proves it: before the commit, the restored
    /// tables' row counts (every table's digest, with `capture_proof: digest`) are the
    /// mark's, or the restore is undone; after it, the log past the mark is empty, the
    /// counters and the schema are as they were. A failed proof (a session that writes
    /// during the rollback, or a wrong restore) makes the rollback run again, until the
    /// quiescence timeout (a content proof that fails twice in a row fails at once).
    pub(crate) fn rollback(&self, conn: &mut Conn, mark: &Mark, operation: &str) -> Result<()> {
        let deadline = Instant::now() + self.quiescence;
        let mut unproven = 0;
        loop {
            let proven = match self.rollback_once(conn, mark, operation)? {
                None => self.prove(conn, mark, operation),
                Some(error) => {
                    // A session that committed during the restore is in the log by now, so
                    // one more try restores it too; a second failure in a row is the
                    // restore's own: fail at once instead of until the timeout.
                    unproven += 1;
                    if unproven >= 2 {
                        return Err(error);
                    }
                    Err(error)
                }
            };
            match proven {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One restore: `Ok(Some(error))` when the proof inside its transaction failed (the
    /// restore was rolled back, nothing changed), for the caller to try again.
    fn rollback_once(
        &self,
        conn: &mut Conn,
        mark: &Mark,
        operation: &str,
    ) -> Result<Option<Error>> {
        let state = self.state(conn, Read::SCHEMA)?;
        self.check_schema(conn, &state, operation)?;
        run(conn, "SET @venomqa_replay = 1, FOREIGN_KEY_CHECKS = 0")
            .map_err(|e| lost_or(operation, e))?;
        let restored = (|| -> Result<Option<Error>> {
            let (now, _) = self.locked_positions(conn, &mark.seqs, operation, false)?;
            let mut sql = String::new();
            let mut replayed = Vec::new();
            for (i, table) in self.tables.iter().enumerate() {
                if now[i] > mark.seqs[i] {
                    sql.push_str(&self.replay(table, mark.seqs[i])?);
                    replayed.push(i);
                }
            }
            // The proof reads the data itself, in the restore's transaction: the replayed
            // tables' counts (cheap), or every table's digest (the mark's proof decides).
            let digest = mark
                .content
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c.digest.is_some()));
            let checked: Vec<usize> = match &mark.content {
                None => Vec::new(),
                Some(_) if digest => (0..self.tables.len()).collect(),
                Some(_) => replayed,
            };
            let read = self.content_sql(&checked, digest)?;
            if let Some(read) = &read {
                write!(sql, " {read};").expect("write to a String");
            }
            let results = if sql.is_empty() {
                Vec::new()
            } else {
                sets(conn, &sql).map_err(|e| {
                    let _ = run(conn, "ROLLBACK");
                    lost_or(operation, e)
                })?
            };
            if let (Some(then), Some(_)) = (&mark.content, &read) {
                let now = results
                    .last()
                    .and_then(|rows| Self::parse_content(rows, checked.len()));
                let problem = match now {
                    None => {
                        Some("reading the restored tables' row counts returned no row".to_owned())
                    }
                    Some(now) => checked
                        .iter()
                        .zip(&now)
                        .find_map(|(&i, now)| self.content_problem(i, &then[i], now)),
                };
                if let Some(problem) = problem {
                    run(conn, "ROLLBACK").map_err(|e| lost_or(operation, e))?;
                    return Ok(Some(Error::state_lost(
                        NAME,
                        format!("{operation}: the capture proof failed: {problem}; nothing was restored"),
                    )));
                }
            }
            run(conn, "COMMIT").map_err(|e| lost_or(operation, e))?;
            Ok(None)
        })();
        let _ = run(conn, "SET @venomqa_replay = NULL, FOREIGN_KEY_CHECKS = 1");
        if let Some(unproven) = restored? {
            return Ok(Some(unproven));
        }
        // Counters after the data: ALTER TABLE commits implicitly.
        let counters = self.state(conn, Read::COUNTERS)?.mark.counters;
        let mut alters = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if let (Some(now), Some(then)) = (counters[i], mark.counters[i]) {
                if now != then {
                    alters.push(format!(
                        "ALTER TABLE {}.{} AUTO_INCREMENT = {then}",
                        q(&self.database)?,
                        q(&table.name)?
                    ));
                }
            }
        }
        if !alters.is_empty() {
            run(conn, &alters.join("; ")).map_err(|e| lost_or(operation, e))?;
        }
        Ok(None)
    }

    /// What differs between table `i`'s content at the mark and after the restore.
    fn content_problem(&self, i: usize, then: &Content, now: &Content) -> Option<String> {
        let name = &self.tables[i].name;
        if now.rows != then.rows {
            Some(format!(
                "table {name} has {} rows after the restore, {} at the checkpoint",
                now.rows, then.rows
            ))
        } else if now.digest != then.digest {
            Some(format!(
                "table {name} has its {} rows of the checkpoint but other values (its content digest differs)",
                now.rows
            ))
        } else {
            None
        }
    }

    /// After a rollback: the undo log past the mark is empty and the counters are back
    /// (the schema was checked just before).
    fn prove(&self, conn: &mut Conn, mark: &Mark, operation: &str) -> Result<()> {
        let state = self.state(conn, Read::COUNTERS)?;
        let mut problems = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if state.mark.seqs[i] > mark.seqs[i] {
                problems.push(format!(
                    "{} has changes logged after the rollback",
                    table.name
                ));
            }
            if state.mark.counters[i] != mark.counters[i] && mark.counters[i].is_some() {
                problems.push(format!(
                    "{}'s AUTO_INCREMENT is {:?}, not {:?}",
                    table.name, state.mark.counters[i], mark.counters[i]
                ));
            }
        }
        let writers = if problems.is_empty() {
            Vec::new()
        } else {
            self.state(conn, Read::WRITERS)
                .map(|s| s.writers)
                .unwrap_or_default()
        };
        if !writers.is_empty() {
            problems.push(format!(
                "other sessions are writing: {}",
                writers.join("; ")
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::state_lost(
                NAME,
                format!("{operation}: the rollback's check failed: {}; another connection wrote during the rollback", problems.join("; ")),
            ))
        }
    }

    /// The statements restoring `table` to undo position `mark`: delete every row a logged
    /// change touched, re-insert each row's image as it was at the mark, forget the log.
    fn replay(&self, table: &Table, mark: u64) -> Result<String> {
        let db = q(&self.database)?;
        let t = format!("{db}.{}", q(&table.name)?);
        let u = format!("{db}.{}", q(&table.undo)?);
        let key: Vec<String> = table.key.iter().map(|k| q(k)).collect::<Result<_>>()?;
        let new_key: Vec<String> = table
            .key
            .iter()
            .map(|k| q(&Table::new_key(k)))
            .collect::<Result<_>>()?;
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| q(&c.name))
            .collect::<Result<_>>()?;
        let tuple = |alias: &str, names: &[String]| -> String {
            let parts: Vec<String> = names.iter().map(|n| format!("{alias}.{n}")).collect();
            format!("({})", parts.join(", "))
        };
        let k_list = key.join(", ");
        let aliased_new: Vec<String> = new_key
            .iter()
            .zip(&key)
            .map(|(n, k)| format!("{n} AS {k}"))
            .collect();
        let touched = format!(
            "SELECT {k_list} FROM {u} WHERE `_vq_seq` > {mark} AND `_vq_op` <> 'I' UNION SELECT {} FROM {u} WHERE `_vq_seq` > {mark} AND `_vq_op` <> 'D'",
            aliased_new.join(", ")
        );
        let delete = format!(
            "DELETE x FROM {t} x JOIN ({touched}) k ON {} = {};",
            tuple("x", &key),
            tuple("k", &key)
        );
        // A row existed at the mark, as this image, when its first logged change after the
        // mark is this update or delete of it (no earlier change of the same key).
        let earlier = format!(
            "SELECT 1 FROM {u} e WHERE e.`_vq_seq` > {mark} AND e.`_vq_seq` < u.`_vq_seq` AND ({} = {} OR {} = {})",
            tuple("e", &key),
            tuple("u", &key),
            tuple("e", &new_key),
            tuple("u", &key)
        );
        let image: Vec<String> = cols.iter().map(|c| format!("u.{c}")).collect();
        let insert = format!(
            "INSERT INTO {t} ({}) SELECT {} FROM {u} u WHERE u.`_vq_seq` > {mark} AND u.`_vq_op` IN ('U', 'D') AND NOT EXISTS ({earlier});",
            cols.join(", "),
            image.join(", ")
        );
        let forget = format!("DELETE FROM {u} WHERE `_vq_seq` > {mark};");
        Ok(format!(" {delete} {insert} {forget}"))
    }

    /// Forgets the log up to `mark` (the outermost checkpoint: nothing older is needed).
    pub(crate) fn purge(&self, conn: &mut Conn, mark: &Mark) -> Result<()> {
        let mut sql = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if mark.seqs[i] > 0 {
                sql.push(format!(
                    "DELETE FROM {}.{} WHERE `_vq_seq` <= {}",
                    q(&self.database)?,
                    q(&table.undo)?,
                    mark.seqs[i]
                ));
            }
        }
        if !sql.is_empty() {
            run(conn, &sql.join("; ")).map_err(|e| lost_or("purging the capture log", e))?;
        }
        Ok(())
    }

    /// Records `mark` as the outermost checkpoint of a live session, so the next session
    /// restores it if this process dies before rolling back.
    pub(crate) fn record_root(&self, conn: &mut Conn, mark: &Mark) -> Result<()> {
        let db = q(&self.database)?;
        let mut rows = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            rows.push(format!(
                "({}, {}, {})",
                lit(&table.name),
                mark.seqs[i],
                mark.counters[i].map_or("NULL".to_owned(), |c| c.to_string())
            ));
        }
        let mut sql = format!("DELETE FROM {db}.`_vq_root`");
        if !rows.is_empty() {
            write!(
                sql,
                "; INSERT INTO {db}.`_vq_root` (tbl, seq, counter) VALUES {}",
                rows.join(", ")
            )
            .expect("write to a String");
        }
        run(conn, &sql).map_err(|e| lost_or("recording the capture root", e))
    }

    /// Forgets the recorded outermost checkpoint (the session ended cleanly).
    pub(crate) fn clear_root(&self, conn: &mut Conn) -> Result<()> {
        run(
            conn,
            &format!("DELETE FROM {}.`_vq_root`", q(&self.database)?),
        )
        .map_err(|e| lost_or("clearing the capture root", e))
    }

    /// The outermost checkpoint a dead session left, if any.
    pub(crate) fn left_root(&self, conn: &mut Conn) -> Result<Option<Mark>> {
        let rows: Vec<(String, u64, Option<u64>)> = conn
            .query(format!(
                "SELECT tbl, seq, counter FROM {}.`_vq_root`",
                q(&self.database)?
            ))
            .map_err(|e| lost_or("reading the capture root", e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let by_name: HashMap<&str, (u64, Option<u64>)> = rows
            .iter()
            .map(|(t, s, c)| (t.as_str(), (*s, *c)))
            .collect();
        Ok(Some(Mark {
            seqs: self
                .tables
                .iter()
                .map(|t| by_name.get(t.name.as_str()).map_or(0, |v| v.0))
                .collect(),
            counters: self
                .tables
                .iter()
                .map(|t| by_name.get(t.name.as_str()).and_then(|v| v.1))
                .collect(),
            fingerprint: self.fingerprint.clone(),
            // Not recorded in `_vq_root`: the restore of a dead session's changes is proven
            // by the log, the counters and the schema only.
            content: None,
        }))
    }

    /// The outermost checkpoint of a session, under the capture lock: installs capture
    /// (again) when the schema changed since the last session (setup and migrations run
    /// between tests), restores what a dead session left, forgets the old log, and records
    /// the new outermost mark. Returns it.
    pub(crate) fn begin(
        conn: &mut Conn,
        slot: &mut Option<Capture>,
        database: &str,
        quiescence: Duration,
        proof: CaptureProof,
    ) -> Result<Mark> {
        let current = match slot.take() {
            // Reused while its tables, triggers and schema are as installed (a failing
            // state query, such as a missing undo table, installs again too).
            Some(capture) => capture
                .state(conn, Read::SCHEMA)
                .is_ok_and(|state| state.mark.fingerprint == capture.fingerprint)
                .then_some(capture),
            None => None,
        };
        let capture = match current {
            Some(found) => found,
            None => Capture::attach(conn, database, quiescence)?,
        };
        let capture = slot.insert(capture);
        capture.proof = proof;
        if let Some(root) = capture.left_root(conn)? {
            tracing::warn!(target: "venomqa", database, "a session that ended without rolling back left its changes; restoring its first checkpoint");
            capture.rollback(conn, &root, "restoring what a dead session left")?;
            capture.clear_root(conn)?;
        }
        let mark = capture.mark(conn, "the first checkpoint")?;
        capture.purge(conn, &mark)?;
        capture.record_root(conn, &mark)?;
        Ok(mark)
    }

    /// The name of the lock that makes sessions on `database` take turns, across
    /// processes: at most 64 characters.
    fn lock_name(database: &str) -> String {
        let name = format!("venomqa_capture:{database}");
        if name.chars().count() <= 64 {
            name
        } else {
            format!("venomqa_capture:{:016x}", fnv64(database.as_bytes()))
        }
    }

    /// Takes the lock that makes capture sessions on `database` take turns (across
    /// processes too), waiting up to `timeout`. It is the connection's: the server frees
    /// it when the connection ends.
    pub(crate) fn lock(conn: &mut Conn, database: &str, timeout: Duration) -> Result<()> {
        let got: Option<Option<i64>> = conn
            .query_first(format!(
                "SELECT GET_LOCK({}, {})",
                lit(&Self::lock_name(database)),
                timeout.as_secs().max(1)
            ))
            .map_err(|e| lost_or("taking the capture lock", e))?;
        match got.flatten() {
            Some(1) => Ok(()),
            _ => Err(Error::backend(
                NAME,
                "taking the capture lock",
                format!(
                    "another session held database {database} for {} s; look for a test that never finishes",
                    timeout.as_secs()
                ),
            )),
        }
    }

    /// Gives the capture lock back.
    pub(crate) fn unlock(conn: &mut Conn, database: &str) -> Result<()> {
        run(
            conn,
            &format!("DO RELEASE_LOCK({})", lit(&Self::lock_name(database))),
        )
        .map_err(|e| lost_or("giving the capture lock back", e))
    }

    /// What changed since `mark`, row by row.
    pub(crate) fn diff(&self, conn: &mut Conn, mark: &Mark) -> Result<Diff> {
        let state = self.state(conn, Read::COUNTERS)?;
        let mut tables = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if state.mark.seqs[i] <= mark.seqs[i] {
                continue;
            }
            tables.push(self.table_diff(conn, table, mark.seqs[i])?);
        }
        Ok(Diff::from_tables(tables))
    }

    fn table_diff(&self, conn: &mut Conn, table: &Table, mark: u64) -> Result<TableDiff> {
        let db = q(&self.database)?;
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| q(&c.name))
            .collect::<Result<_>>()?;
        let new_key: Vec<String> = table
            .key
            .iter()
            .map(|k| q(&Table::new_key(k)))
            .collect::<Result<_>>()?;
        let entries: Vec<Row> = conn
            .query(format!(
                "SELECT `_vq_op`, `_vq_cascade`, {}, {} FROM {db}.{} WHERE `_vq_seq` > {mark} ORDER BY `_vq_seq`",
                new_key.join(", "),
                cols.join(", "),
                q(&table.undo)?
            ))
            .map_err(|e| lost_or("reading the capture log", e))?;
        let nk = table.key.len();
        let key_positions: Vec<usize> = table
            .key
            .iter()
            .map(|k| {
                table
                    .columns
                    .iter()
                    .position(|c| &c.name == k)
                    .expect("key is a column")
            })
            .collect();
        // Per key, in order of first appearance: did it exist at the mark (and as what),
        // and was its first change a cascade.
        let mut first: Vec<(Vec<Value>, Option<Vec<Value>>, bool)> = Vec::new();
        let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
        let id = |k: &[Value]| -> Vec<String> { k.iter().map(|v| v.as_sql(false)).collect() };
        for row in &entries {
            let vals: Vec<Value> = (0..row.len())
                .map(|i| row.as_ref(i).cloned().unwrap_or(Value::NULL))
                .collect();
            let op = text(&vals[0]);
            let cascade = u64_of(&vals[1]) == Some(1);
            let new_k: Vec<Value> = vals[2..2 + nk].to_vec();
            let image: Vec<Value> = vals[2 + nk..].to_vec();
            let old_k: Vec<Value> = key_positions.iter().map(|&p| image[p].clone()).collect();
            let keys: Vec<(Vec<Value>, Option<Vec<Value>>)> = match op.as_str() {
                "I" => vec![(new_k, None)],
                "U" => vec![(old_k, Some(image.clone())), (new_k, None)],
                _ => vec![(old_k, Some(image.clone()))],
            };
            for (k, at_mark) in keys {
                if k.contains(&Value::NULL) || !seen.insert(id(&k)) {
                    continue;
                }
                first.push((k, at_mark, cascade));
            }
        }
        // The current rows of those keys.
        let mut current: HashMap<Vec<String>, Vec<Value>> = HashMap::new();
        let key_cols: Vec<String> = table.key.iter().map(|k| q(k)).collect::<Result<_>>()?;
        for chunk in first.chunks(500) {
            let tuples: Vec<String> = chunk
                .iter()
                .map(|(k, _, _)| {
                    format!(
                        "({})",
                        k.iter()
                            .map(|v| v.as_sql(false))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect();
            let rows: Vec<Row> = conn
                .query(format!(
                    "SELECT {} FROM {db}.{} WHERE ({}) IN ({})",
                    cols.join(", "),
                    q(&table.name)?,
                    key_cols.join(", "),
                    tuples.join(", ")
                ))
                .map_err(|e| lost_or("reading changed rows", e))?;
            for row in rows {
                let vals: Vec<Value> = (0..row.len())
                    .map(|i| row.as_ref(i).cloned().unwrap_or(Value::NULL))
                    .collect();
                let k: Vec<Value> = key_positions.iter().map(|&p| vals[p].clone()).collect();
                current.insert(id(&k), vals);
            }
        }
        let mut diff = TableDiff::new(&table.name);
        for (k, at_mark, cascade) in first {
            let key = if table.keyless {
                format!("row {}", k.iter().map(text).collect::<Vec<_>>().join(","))
            } else {
                table
                    .key
                    .iter()
                    .zip(&k)
                    .map(|(c, v)| format!("{c}={}", text(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let now = current.get(&id(&k));
            let mut change = match (&at_mark, now) {
                (None, Some(_)) => RowChange::new(ChangeKind::Inserted, key),
                (Some(_), None) => RowChange::new(ChangeKind::Deleted, key),
                (Some(then), Some(now)) => {
                    let mut change = RowChange::new(ChangeKind::Updated, key);
                    for (i, c) in table.columns.iter().enumerate() {
                        if c.name != ROWID && then[i] != now[i] {
                            change.columns.push(ColumnChange::new(
                                c.name.clone(),
                                text(&then[i]),
                                text(&now[i]),
                            ));
                        }
                    }
                    if change.columns.is_empty() {
                        continue;
                    }
                    change
                }
                (None, None) => continue,
            };
            change.cascade = cascade;
            diff.push(change, DIFF_ROWS);
        }
        Ok(diff)
    }
}

/// A failed statement of a capture operation: the connection's loss, or the server's
/// error.
fn lost_or(operation: &str, e: mysql::Error) -> Error {
    match &e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            Error::connection_lost(
                NAME,
                operation,
                "the capture log is kept on the server, so the next session restores the recorded checkpoint",
                e,
            )
        }
        _ => failed(operation, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_uniquely() {
        let long = "t".repeat(70);
        let a = object_name("_vq_u_", &long, "");
        let b = object_name("_vq_u_", &format!("{long}x"), "");
        assert!(a.len() <= 64 && b.len() <= 64, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(object_name("_vq_u_", "users", ""), "_vq_u_users");
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(lit("a'b\\c"), "'a''b\\\\c'");
    }
}
