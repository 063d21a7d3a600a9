//! Transaction isolation on PostgreSQL: the test's transaction and a SAVEPOINT per
//! checkpoint on its connection; the outermost checkpoint's `BEGIN` also reads the
//! sequences `restore_sequences` puts back at the end.

use std::fmt::Write as _;

use ::postgres::{Client, SimpleQueryMessage};

use super::errors::{run, Stage};
use super::sequences::{parse, sequence_restore_sql, SequenceState};
use super::{Postgres, PostgresMark, NAME, SESSION_CLEANUP};
use crate::checkpoint::Point;
use crate::error::{Error, Result};
use crate::sql::quote_double;

impl Postgres {
    /// Opens the test's transaction with `BEGIN; SAVEPOINT` and, in the same round trip,
    /// reads the position of every sequence of `list`. On failure the connection is left
    /// idle.
    pub(super) fn begin(
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

    /// A checkpoint: the outermost opens the test's transaction (reading the sequences'
    /// positions with `restore_sequences`), a nested one is a savepoint.
    pub(super) fn savepoint(&self, client: &mut Client, at: Point<'_>) -> Result<PostgresMark> {
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

    /// `ROLLBACK TO SAVEPOINT`, and the sequences put back.
    pub(super) fn rollback_to_savepoint(
        &self,
        client: &mut Client,
        at: Point<'_>,
        mark: &PostgresMark,
    ) -> Result<()> {
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

    /// `RELEASE SAVEPOINT`, and at depth 0 the commit.
    pub(super) fn release_savepoint(&self, client: &mut Client, at: Point<'_>) -> Result<()> {
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

    /// `ROLLBACK TO SAVEPOINT` and `RELEASE`, or at depth 0 the transaction's rollback,
    /// the sequences put back, and the session cleaned up.
    pub(super) fn discard_savepoint(
        &self,
        client: &mut Client,
        at: Point<'_>,
        mark: &PostgresMark,
    ) -> Result<()> {
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
}
