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
//!
//! Here: the installation's shape ([`Capture`]), the statement helpers and errors, and a
//! session's first checkpoint. The rest, one concept per file: `introspect` (tables,
//! columns, keys), `install` and `triggers` (the DDL, and its removal), `marks` (the
//! state read and the marks), `schema` (the schema check), `replay` and `proof` (the
//! rollback and its proof), `recovery` (what a dead session left), `lock` and `diff`.

mod diff;
mod install;
mod introspect;
mod lock;
mod marks;
mod proof;
mod recovery;
mod replay;
mod schema;
mod triggers;

use std::collections::BTreeMap;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Row, Value};

use crate::backends::sql_capture::{Worded, DEAD_SESSION, FIRST_CHECKPOINT, LOST_OUTCOME};
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};
use crate::sql::quote_backtick;
use introspect::{ForeignKey, Table};
use marks::Read;

pub(crate) use marks::Mark;

const NAME: &str = "mysql";

/// The reserved name prefix of everything capture installs.
pub(crate) const PREFIX: &str = "_vq_";

/// Installed objects' layout version: a different one is reinstalled.
const VERSION: &str = "1";

/// The invisible row id given to tables without a primary key.
const ROWID: &str = "_vq_rowid";

fn q(name: &str) -> Result<String> {
    quote_backtick(NAME, name)
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

/// The error of a failed capture statement: a lost connection or a server error, in the
/// server's own message and what capture needs, on one line (the driver's error stays its
/// source, so [`Error::driver`] still finds it).
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
    Error::backend(NAME, operation, Worded::with_text(message, e))
}

impl Capture {
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
            capture.rollback(conn, &root, DEAD_SESSION)?;
            capture.clear_root(conn)?;
        }
        let mark = capture.mark(conn, FIRST_CHECKPOINT)?;
        capture.purge(conn, &mark)?;
        capture.record_root(conn, &mark)?;
        Ok(mark)
    }
}

/// A failed statement of a capture operation: the connection's loss, or the server's
/// error.
fn lost_or(operation: &str, e: mysql::Error) -> Error {
    match &e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            Error::connection_lost(NAME, operation, LOST_OUTCOME, e)
        }
        _ => failed(operation, e),
    }
}
