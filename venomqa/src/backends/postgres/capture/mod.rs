//! Capture isolation for PostgreSQL: roll back what any connection of any process wrote,
//! through an undo log that generated statement triggers fill.
//!
//! For every base table of the captured schemas, venomqa installs (once, reversibly,
//! under the reserved prefix `_vq_`):
//!
//! - an undo table `_vq_u_<table>` in the table's schema, with the table's columns (all
//!   nullable), a sequence number and the operation;
//! - `AFTER INSERT / UPDATE / DELETE` statement triggers with transition tables, which log
//!   whole statements set-based (an insert's new rows, an update's old and new rows, a
//!   delete's old rows), and a `BEFORE TRUNCATE` trigger that copies the table first. They
//!   are `SECURITY DEFINER` functions, so the app's role needs no privilege on the undo
//!   tables, and are skipped while the setting `venomqa.replay` is `on`. PostgreSQL fires
//!   them for foreign-key cascades too.
//!
//! Each log entry records its transaction's id. A checkpoint is a mark: the database's
//! snapshot (`pg_current_snapshot()`), every sequence's value, and a schema fingerprint.
//! The entries after a mark are exactly those whose transaction the snapshot does not see
//! (not yet committed when the mark was taken), so a transaction in flight at a checkpoint
//! is never cut in two. A rollback computes, per table, each touched row's state at the mark (the
//! image of its first change after the mark, if that change was an update or delete) and
//! restores it set-based in one transaction. With `session_replication_role = replica`
//! allowed (a superuser, or `GRANT SET ON PARAMETER session_replication_role` on
//! PostgreSQL 15+), triggers and foreign-key checks are off during the restore. Without
//! it, tables are restored in foreign-key order: rows back to their images (parents first,
//! an upsert), then rows created since deleted (children first); if that order hits a
//! unique conflict, the other order is tried. Keyless tables are restored as multisets of
//! whole rows. Sequences come back with `setval`. Then the rollback proves itself: the
//! log past the mark is empty, the sequences and the schema are as they were.
//!
//! Here: the installation's shape ([`Capture`]), the statement helpers and errors, and a
//! session's first checkpoint. The rest, one concept per file: `introspect` (tables,
//! columns, keys, foreign-key order), `install` (the DDL, and its removal), `marks` (the
//! state read and the marks), `schema` (the schema check), `replay`, `restore` and
//! `proof` (the rollback, its statements and its proof), `recovery` (what a dead session
//! left), `lock` and `diff`.

mod diff;
mod install;
mod introspect;
mod lock;
mod marks;
mod proof;
mod recovery;
mod replay;
mod restore;
mod schema;

use std::time::Duration;

use postgres::{Client, SimpleQueryMessage};

use super::errors::DriverError;
use crate::backends::sql_capture::{DEAD_SESSION, FIRST_CHECKPOINT, LOST_OUTCOME};
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};
use crate::sql::double_quoted;
use introspect::Table;

pub(crate) use marks::Mark;

const NAME: &str = "postgres";

/// Installed objects' layout version: a different one is reinstalled.
const VERSION: &str = "3";

/// `name` (read from the catalog: never empty, no NUL) as a double-quoted identifier.
fn q(name: &str) -> String {
    double_quoted(name)
}

/// Capture of the chosen schemas of one database, as installed.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    schemas: Vec<String>,
    tables: Vec<Table>,
    /// Tables in foreign-key order: a parent before its children.
    order: Vec<usize>,
    /// Qualified, quoted names of the schemas' sequences.
    sequences: Vec<String>,
    fingerprint: String,
    /// Whether this role may set `session_replication_role = replica`.
    replica: bool,
    quiescence: Duration,
    proof: CaptureProof,
}

fn failed(operation: &str, e: postgres::Error) -> Error {
    let hint = match e.code().map(|c| c.code()) {
        Some("42501") => Some("capture needs to own the tables (or have the TRIGGER privilege on them) and CREATE on their schemas"),
        _ => None,
    };
    let closed = e.is_closed();
    let e = DriverError::new(e, "");
    match hint {
        Some(needs) => Error::backend(NAME, format!("{operation} ({needs})"), e),
        None if closed => Error::connection_lost(NAME, operation, LOST_OUTCOME, e),
        None => Error::backend(NAME, operation, e),
    }
}

/// Runs a (multi-statement) batch with the simple query protocol: one round trip.
fn run(client: &mut Client, sql: &str) -> std::result::Result<(), postgres::Error> {
    client.batch_execute(sql)
}

/// The rows of every statement of a batch, as text (the simple query protocol).
fn sets(
    client: &mut Client,
    sql: &str,
) -> std::result::Result<Vec<Vec<Vec<Option<String>>>>, postgres::Error> {
    let mut out = Vec::new();
    let mut current: Vec<Vec<Option<String>>> = Vec::new();
    for message in client.simple_query(sql)? {
        match message {
            SimpleQueryMessage::Row(row) => {
                current.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                );
            }
            SimpleQueryMessage::CommandComplete(_) => out.push(std::mem::take(&mut current)),
            _ => {}
        }
    }
    Ok(out)
}

impl Capture {
    /// The outermost checkpoint of a session, under the capture lock: installs capture
    /// (again) when the schema changed since the last session, restores what a dead
    /// session left, forgets the old log, and records the new outermost mark.
    pub(crate) fn begin(
        client: &mut Client,
        slot: &mut Option<Capture>,
        schemas: &[String],
        quiescence: Duration,
        proof: CaptureProof,
    ) -> Result<Mark> {
        let current = slot
            .take()
            .filter(|c| c.is_current(client) && c.proof == proof);
        let capture = match current {
            Some(found) => found,
            None => Capture::attach(client, schemas, quiescence, proof)?,
        };
        let capture = slot.insert(capture);
        if let Some(root) = capture.left_root(client)? {
            tracing::warn!(target: "venomqa", "a session that ended without rolling back left its changes; restoring its first checkpoint");
            capture.rollback(client, &root, DEAD_SESSION)?;
            capture.clear_root(client)?;
        }
        let mark = capture.mark(client, FIRST_CHECKPOINT)?;
        capture.purge(client, &mark)?;
        capture.record_root(client, &mark)?;
        Ok(mark)
    }
}
