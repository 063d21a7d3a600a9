//! A capture rollback on MySQL: the log past the mark replayed in one transaction,
//! set-based per table, with the content proof read inside it, then the AUTO_INCREMENT
//! counters; run again while a proof fails, until the quiescence timeout.

use std::fmt::Write as _;

use mysql::Conn;

use super::introspect::Table;
use super::marks::{Mark, Read};
use super::{lost_or, q, run, sets, Capture, NAME};
use crate::backends::sql_capture::until_proven;
use crate::error::{Error, Result};

impl Capture {
    /// Rolls every table back to `mark`, then proves it: before the commit, the restored
    /// tables' row counts (every table's digest, with `capture_proof: digest`) are the
    /// mark's, or the restore is undone; after it, the log past the mark is empty, the
    /// counters and the schema are as they were. A failed proof (a session that writes
    /// during the rollback, or a wrong restore) makes the rollback run again, until the
    /// quiescence timeout (a content proof that fails twice in a row fails at once).
    pub(crate) fn rollback(&self, conn: &mut Conn, mark: &Mark, operation: &str) -> Result<()> {
        until_proven(
            conn,
            self.quiescence,
            |conn, _| self.rollback_once(conn, mark, operation),
            |conn| self.prove(conn, mark, operation),
        )
    }

    /// One restore: `Ok(Some(error))` when the proof inside its transaction failed (the
    /// restore was rolled back, nothing changed), for the caller to try again.
    pub(super) fn rollback_once(
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

    /// The statements restoring `table` to undo position `mark`: delete every row a logged
    /// change touched, re-insert each row's image as it was at the mark, forget the log.
    pub(super) fn replay(&self, table: &Table, mark: u64) -> Result<String> {
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
}
