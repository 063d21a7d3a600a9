//! `reset()` on MySQL: which tables it empties, the refusal of a reset that would leave
//! orphans, the emptying itself; and setup scripts, after which the session is reset.

use ::mysql::prelude::Queryable;

use super::capture;
use super::errors::{is_connection_lost, orphan_refusal, plain_failure, run_batch};
use super::{driver, MySql, MySqlConn, ResetStrategy, NAME};
use crate::error::{Error, Result};
use crate::sql::quote_backtick;

impl MySql {
    /// The tables `reset()` empties: `tables_to_reset`, or every base table of the
    /// current database, minus `exclude_tables`.
    pub(super) fn reset_tables(&self, conn: &mut driver::Conn) -> Result<Vec<String>> {
        let tables = if self.options.tables_to_reset.is_empty() {
            let database: Option<String> = conn
                .query_first("SELECT DATABASE()")
                .map_err(|e| plain_failure("reset: reading the current database", e))?
                .flatten();
            if database.is_none() {
                return Err(Error::unsupported(
                    NAME,
                    "reset() with no database selected",
                    "put the database in the URL (mysql://user@host/database) or set tables_to_reset",
                ));
            }
            conn.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            )
            .map_err(|e| plain_failure("reset: listing the tables", e))?
        } else {
            self.options.tables_to_reset.clone()
        };
        Ok(tables
            .into_iter()
            .filter(|t| !self.options.exclude_tables.contains(t) && !t.starts_with(capture::PREFIX))
            .collect())
    }

    /// Refuses a reset that would leave orphans: with foreign key checks off, emptying a
    /// table that a table outside the set references would leave the outside table's
    /// rows pointing at nothing (and with them on, ON DELETE CASCADE would empty it).
    pub(super) fn refuse_orphans(conn: &mut driver::Conn, tables: &[String]) -> Result<()> {
        let references: Vec<(String, String, String, String, String)> = conn
            .query(
                "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DATABASE() \
                 FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL \
                 ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME",
            )
            .map_err(|e| plain_failure("reset: reading the foreign keys", e))?;
        for (schema, child, constraint, parent, db) in references {
            let inside = schema == db && tables.contains(&child);
            if tables.contains(&parent) && !inside {
                return Err(orphan_refusal(&schema, &child, &constraint, &parent));
            }
        }
        Ok(())
    }

    /// Refuses, while the test's checkpoints are still active and before anything
    /// changes, a reset that would leave orphans: with foreign key checks off while it
    /// runs, emptying a table that a table it does not empty references (by a foreign
    /// key) would leave that table's rows pointing at nothing.
    pub(super) fn check_reset_tables(&self, conn: &mut MySqlConn) -> Result<()> {
        let tables = self.reset_tables(conn)?;
        if tables.is_empty() {
            return Ok(());
        }
        Self::refuse_orphans(conn, &tables)
    }

    /// Empties `tables_to_reset` (default: every base table of the current database, not
    /// views) except `exclude_tables`, with foreign key checks off for the session while
    /// it runs. An open transaction is rolled back first. With [`ResetStrategy::Delete`]
    /// (the default) it is one transaction: on error nothing changes.
    pub(super) fn empty_tables(&self, conn: &mut MySqlConn) -> Result<()> {
        if conn.transaction_open {
            // The discard before the reset failed: end the transaction as it was opened.
            self.abandon(conn);
        } else {
            run_batch(conn, "ROLLBACK")
                .map_err(|e| plain_failure("reset: ending the open transaction", e))?;
        }
        let tables = self.reset_tables(conn)?;
        if tables.is_empty() {
            return Ok(());
        }
        // With capture installed, the reset itself is not logged (its deletes are final).
        let mut sql = String::from("SET @venomqa_replay = 1, FOREIGN_KEY_CHECKS = 0;");
        match self.options.reset_strategy {
            ResetStrategy::Delete => {
                sql.push_str(" START TRANSACTION;");
                for table in &tables {
                    sql.push_str(&format!(" DELETE FROM {};", quote_backtick(NAME, table)?));
                }
                sql.push_str(" COMMIT;");
            }
            ResetStrategy::Truncate => {
                for table in &tables {
                    sql.push_str(&format!(
                        " TRUNCATE TABLE {};",
                        quote_backtick(NAME, table)?
                    ));
                }
            }
        }
        sql.push_str(" SET FOREIGN_KEY_CHECKS = 1, @venomqa_replay = NULL");
        run_batch(conn, &sql).map_err(|e| {
            if !is_connection_lost(&e) {
                let _ = run_batch(
                    conn,
                    "ROLLBACK; SET FOREIGN_KEY_CHECKS = 1, @venomqa_replay = NULL",
                );
            }
            plain_failure(format!("reset of tables {tables:?}"), e)
        })
    }

    /// Runs `script` (statements separated by `;`), reporting an error in any of them.
    /// Afterwards, outside a test's transaction, the session is reset (as
    /// [`recycle`](Self::recycle) does), so the session state a script leaves behind (a
    /// dump's `SET FOREIGN_KEY_CHECKS = 0`, variables, temporary tables) does not outlive
    /// it. Its data and schema changes stay.
    pub(super) fn run_script(&self, conn: &mut MySqlConn, script: &str) -> Result<()> {
        let ran = run_batch(conn, script).map_err(|e| plain_failure("a setup script", e));
        if conn.transaction_open {
            return ran;
        }
        let reset = conn
            .conn
            .reset()
            .map_err(|e| plain_failure("resetting the session after a setup script", e));
        ran.and(reset)
    }
}
