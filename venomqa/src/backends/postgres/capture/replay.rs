//! A capture rollback on PostgreSQL: one transaction that turns the app's triggers off,
//! restores every changed table (exactly in replica mode, else in foreign-key order),
//! forgets the log past the mark, sets the sequences back and runs the content proof;
//! run again while a proof fails, until the quiescence timeout.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use postgres::Client;

use super::introspect::Table;
use super::marks::{Mark, State};
use super::proof::PROOF_FAILED;
use super::{failed, q, run, Capture, DriverError, NAME};
use crate::backends::sql_capture::postgres_literal as lit;
use crate::backends::sql_capture::{until_proven, writers_busy};
use crate::error::{Error, Result};

impl Capture {
    /// Rolls every table back to `mark` in one transaction, then proves it: inside the
    /// transaction, every restored table's row count (with `capture_proof: digest`, every
    /// table's content digest) must equal the mark's, or nothing is restored; after it, no
    /// entry after the mark is left, the sequences and the schema are as they were. A
    /// session writing during the rollback makes a proof fail; the rollback then runs
    /// again (a content proof that fails twice in a row fails at once), until the
    /// quiescence timeout.
    pub(crate) fn rollback(&self, client: &mut Client, mark: &Mark, operation: &str) -> Result<()> {
        let restore = |client: &mut Client, deadline| {
            let unproven = self.rollback_once(client, mark, operation, deadline)?;
            Ok(unproven.map(|problem| Error::state_lost(
                NAME,
                format!("{operation}: the capture proof failed: {problem}; nothing was restored (the data is as the app left it, the log is kept); unless another connection wrote during the rollback, this is a venomqa bug: please report it with the writes that led here"),
            )))
        };
        until_proven(client, self.quiescence, restore, |client| {
            self.prove(client, mark, operation)
        })
    }

    /// Waits until no other session of the database is inside a write transaction, up to
    /// `deadline`; then fails naming the sessions still writing.
    pub(super) fn wait_for_writers(
        &self,
        client: &mut Client,
        deadline: Instant,
        operation: &str,
    ) -> Result<State> {
        loop {
            let state = self.state(client, false)?;
            if state.writers.is_empty() {
                return Ok(state);
            }
            if Instant::now() >= deadline {
                return Err(Error::backend(
                    NAME,
                    operation,
                    format!(
                        "other sessions stayed inside write transactions for {} ms: {}; let the app finish its requests first, or raise quiescence_timeout_ms",
                        self.quiescence.as_millis(),
                        state.writers.join("; ")
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One restore in one transaction. Returns the content proof's complaint when it
    /// failed (the transaction was rolled back: nothing changed).
    pub(super) fn rollback_once(
        &self,
        client: &mut Client,
        mark: &Mark,
        operation: &str,
        deadline: Instant,
    ) -> Result<Option<String>> {
        let state = self.wait_for_writers(client, deadline, operation)?;
        self.check_schema(client, &state, operation)?;
        let changed: Vec<usize> = self
            .changed(client, mark)?
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(i, _)| i)
            .collect();
        if changed.is_empty() && state.mark.sequences == mark.sequences {
            return Ok(None);
        }
        let wait = self.quiescence.as_millis().max(1);
        let mut sql =
            format!("BEGIN; SET LOCAL venomqa.replay = 'on'; SET LOCAL lock_timeout = '{wait}ms';");
        if self.replica {
            sql.push_str(" SET LOCAL session_replication_role = replica;");
        }
        // The app's own triggers that would fire during the restore (in replica mode only
        // those enabled ALWAYS or REPLICA) are off for this transaction: a `BEFORE UPDATE`
        // that sets `updated_at` would otherwise stamp every restored row.
        let firing: Vec<(&Table, &str, char)> = changed
            .iter()
            .flat_map(|&i| {
                let table = &self.tables[i];
                table
                    .triggers
                    .iter()
                    .filter(|(_, on)| {
                        if self.replica {
                            matches!(on, 'A' | 'R')
                        } else {
                            matches!(on, 'O' | 'A')
                        }
                    })
                    .map(move |(name, on)| (table, name.as_str(), *on))
            })
            .collect();
        for (table, name, _) in &firing {
            write!(
                sql,
                " ALTER TABLE {} DISABLE TRIGGER {};",
                table.qualified(),
                q(name)
            )
            .expect("write to a String");
        }
        if self.replica {
            // Triggers and foreign-key checks off: every touched row out, every row that
            // existed at the mark back in as it was.
            for &i in &changed {
                let table = &self.tables[i];
                if table.key.is_empty() {
                    sql.push_str(&self.restore_keyless(table, mark));
                } else {
                    sql.push_str(&self.delete_rows(table, mark, false));
                    sql.push_str(&self.insert_images(table, mark, false));
                }
            }
        } else {
            // Foreign keys stay on: rows back to their images (parents first, updated in
            // place so no cascade fires), then rows created since deleted (children
            // first). A unique conflict (a value a created row holds) tries the other
            // order: delete first, then restore.
            let restore = |order: &mut dyn Iterator<Item = &usize>| -> String {
                order
                    .filter(|i| changed.contains(i))
                    .map(|&i| {
                        let table = &self.tables[i];
                        if table.key.is_empty() {
                            self.restore_keyless(table, mark)
                        } else {
                            self.insert_images(table, mark, true)
                        }
                    })
                    .collect()
            };
            let delete = |order: &mut dyn Iterator<Item = &usize>| -> String {
                order
                    .filter(|i| changed.contains(i) && !self.tables[**i].key.is_empty())
                    .map(|&i| self.delete_rows(&self.tables[i], mark, true))
                    .collect()
            };
            let (images, deletes) = (
                restore(&mut self.order.iter()),
                delete(&mut self.order.iter().rev()),
            );
            write!(
                sql,
                " DO $vq$ BEGIN BEGIN {images}{deletes} EXCEPTION WHEN unique_violation THEN {deletes}{images} END; END $vq$;"
            )
            .expect("write to a String");
        }
        for (table, name, on) in &firing {
            let how = match on {
                'A' => "ENABLE ALWAYS",
                'R' => "ENABLE REPLICA",
                _ => "ENABLE",
            };
            write!(
                sql,
                " ALTER TABLE {} {how} TRIGGER {};",
                table.qualified(),
                q(name)
            )
            .expect("write to a String");
        }
        for &i in &changed {
            write!(
                sql,
                " DELETE FROM {} WHERE {};",
                self.tables[i].undo_qualified(),
                mark.after()
            )
            .expect("write to a String");
        }
        for (i, seq) in self.sequences.iter().enumerate() {
            if let (Some(now), Some(then)) = (state.mark.sequences.get(i), mark.sequences.get(i)) {
                if now != then {
                    write!(sql, " SELECT setval({}, {}, {});", lit(seq), then.0, then.1)
                        .expect("write to a String");
                }
            }
        }
        sql.push_str(&self.content_proof(mark, &changed));
        sql.push_str(" COMMIT;");
        match run(client, &sql) {
            Ok(()) => Ok(None),
            Err(e) => {
                let _ = run(client, "ROLLBACK");
                match self.restore_failed(client, e, operation, wait, &firing) {
                    RestoreError::Proof(problem) => Ok(Some(problem)),
                    RestoreError::Other(e) => Err(e),
                }
            }
        }
    }

    /// What a failed restore transaction means, in one line.
    pub(super) fn restore_failed(
        &self,
        client: &mut Client,
        e: postgres::Error,
        operation: &str,
        wait: u128,
        firing: &[(&Table, &str, char)],
    ) -> RestoreError {
        let code = e.code().map(|c| c.code().to_owned());
        if code.as_deref() == Some(PROOF_FAILED) {
            let problem = e
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string());
            return RestoreError::Proof(problem);
        }
        if code.as_deref() == Some("55P03") {
            let writers = self
                .state(client, false)
                .map(|s| s.writers)
                .unwrap_or_default();
            return RestoreError::Other(writers_busy(
                NAME,
                operation,
                &format!("rows locked for {wait} ms"),
                &writers,
            ));
        }
        if code.as_deref() == Some("42501") && !firing.is_empty() {
            let names: Vec<String> = firing
                .iter()
                .map(|(t, name, _)| format!("{name} on {}", t.label()))
                .collect();
            return RestoreError::Other(Error::backend(
                NAME,
                format!(
                    "{operation}: the app's triggers ({}) would fire during the restore and change the restored rows, and this role may not turn them off (that needs to own the table, or a superuser); nothing was restored",
                    names.join(", ")
                ),
                DriverError::new(e, ""),
            ));
        }
        let mut error = failed(operation, e);
        if !self.replica {
            if let Error::Backend { operation, .. } = &mut error {
                operation.push_str(" (restored in foreign-key order: nothing was restored; a superuser, or GRANT SET ON PARAMETER session_replication_role, restores exactly)");
            }
        }
        RestoreError::Other(error)
    }
}

/// Why a restore's transaction failed: its content proof, or anything else.
pub(super) enum RestoreError {
    Proof(String),
    Other(Error),
}
