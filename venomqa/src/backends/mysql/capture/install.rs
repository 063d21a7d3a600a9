//! Installing capture in a MySQL database and removing it: the bookkeeping tables, an
//! undo table per captured table, the invisible row ids of keyless tables, and the
//! triggers (written in [`triggers`](super::triggers)).

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Row};

use super::introspect::{Column, Table};
use super::marks::Read;
use super::{failed, q, run, sets, text, Capture, NAME, ROWID, VERSION};
use crate::backends::sql_capture::mysql_literal as lit;
use crate::error::{Error, Result};

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

    /// Installs undo tables, triggers and row ids (dropping an older installation first).
    /// If any step fails, what was installed is removed again.
    pub(super) fn install(&mut self, conn: &mut Conn) -> Result<()> {
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
    pub(super) fn install_steps(&mut self, conn: &mut Conn) -> Result<Vec<String>> {
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

    pub(super) fn undo_table_ddl(&self, table: &Table) -> Result<String> {
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

    /// Removes everything capture installed in `database`: triggers, undo tables, row ids
    /// and bookkeeping. The app's data is untouched, and so is a worker database's marker
    /// (`_vq_worker`, crate::workers), which is not capture's.
    pub(crate) fn uninstall_from(conn: &mut Conn, database: &str) -> Result<()> {
        let db = lit(database);
        let sql = format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db} AND TRIGGER_NAME LIKE '\\_vq\\_%';
             SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_NAME LIKE '\\_vq\\_%' AND TABLE_NAME <> '_vq_worker';
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
}
