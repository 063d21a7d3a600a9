//! Transaction isolation on MySQL: the test's transaction (standard or XA) and a
//! SAVEPOINT per checkpoint on its connection, and what `exec()` and `commit()` do inside
//! it.

use ::mysql::prelude::Queryable;

use super::errors::{exec_refusal, failure, is_connection_lost, plain_failure, run_batch};
use super::statements::{refusal, Lexing};
use super::{MySql, MySqlConn, MySqlMark, TransactionMode, NAME};
use crate::checkpoint::{Point, Stack};
use crate::error::{Error, Result};
use crate::sql::quote_backtick;

/// The statements that open, commit and roll back the test's transaction.
struct TxSql {
    begin: String,
    commit: String,
    rollback: String,
}

impl MySql {
    /// The statements of the test's transaction, as `transaction:` opens it.
    fn tx_sql(&self, conn: &MySqlConn) -> TxSql {
        match self.options.transaction {
            TransactionMode::Standard => TxSql {
                begin: "START TRANSACTION".into(),
                commit: "COMMIT".into(),
                rollback: "ROLLBACK".into(),
            },
            TransactionMode::Xa => {
                let x = format!("'venomqa-{}'", conn.connection_id());
                TxSql {
                    begin: format!("XA START {x}"),
                    commit: format!("XA END {x}; XA COMMIT {x} ONE PHASE"),
                    rollback: format!("XA END {x}; XA ROLLBACK {x}"),
                }
            }
        }
    }

    /// Ends whatever transaction is open, ignoring errors (after a failure).
    pub(super) fn abandon(&self, conn: &mut MySqlConn) {
        let tx = self.tx_sql(conn);
        for sql in tx.rollback.split("; ").chain(["ROLLBACK"]) {
            let _ = run_batch(conn, sql);
        }
        conn.transaction_open = false;
    }

    /// `exec()`: refuses, before it runs, SQL that would commit the transaction of an
    /// active checkpoint.
    pub(super) fn exec(
        &self,
        conn: &mut MySqlConn,
        stack: &Stack<MySqlMark>,
        sql: &str,
    ) -> Result<()> {
        if let Some(active) = stack.names().last() {
            let server_lexing = || {
                conn.query_first::<String, _>("SELECT @@SESSION.sql_mode")
                    .ok()
                    .flatten()
                    .map(|mode| Lexing::from_sql_mode(&mode))
            };
            if let Some(refused) = refusal(sql, server_lexing) {
                return Err(exec_refusal(&refused, active));
            }
        }
        run_batch(conn, sql).map_err(|e| plain_failure("exec", e))
    }

    /// `commit()`: commits, then re-opens the transaction and every active savepoint in
    /// the same round trip.
    pub(super) fn commit(&self, conn: &mut MySqlConn, stack: &Stack<MySqlMark>) -> Result<()> {
        if self.capture() {
            return Err(Error::unsupported(
                NAME,
                "commit() with capture isolation",
                "capture opens no transaction: every write is committed and visible at once, and the rollback undoes it",
            ));
        }
        let Some(first) = stack.names().first() else {
            return run_batch(conn, "COMMIT").map_err(|e| plain_failure("commit", e));
        };
        let tx = self.tx_sql(conn);
        // RELEASE fails if the outermost savepoint (so the transaction) is gone, and then
        // nothing else runs.
        let mut sql = format!(
            "RELEASE SAVEPOINT {}; {}; {}",
            quote_backtick(NAME, first)?,
            tx.commit,
            tx.begin
        );
        for name in stack.names() {
            sql.push_str(&format!("; SAVEPOINT {}", quote_backtick(NAME, name)?));
        }
        run_batch(conn, &sql).map_err(|e| failure("commit", first, e))
    }

    /// A checkpoint: the outermost opens the test's transaction (selecting the URL's
    /// database again) with its savepoint, a nested one proves the transaction is open.
    pub(super) fn savepoint(&self, conn: &mut MySqlConn, at: Point<'_>) -> Result<MySqlMark> {
        let q = quote_backtick(NAME, at.name())?;
        let sql = if at.is_outermost() {
            // A test that ran `USE other_db` left it selected on the pooled connection
            // (COM_RESET_CONNECTION keeps the database): select the URL's again, in the
            // same round trip as the transaction.
            let use_db = match &self.database {
                Some(db) => format!("USE {}; ", quote_backtick(NAME, db)?),
                None => String::new(),
            };
            format!("{use_db}{}; SAVEPOINT {q}", self.tx_sql(conn).begin)
        } else {
            // Outside a transaction SAVEPOINT is a silent no-op and RELEASE fails: the
            // pair proves the transaction is still open, in the same round trip.
            format!("SAVEPOINT {q}; RELEASE SAVEPOINT {q}; SAVEPOINT {q}")
        };
        let outer = at.parent().unwrap_or(at.name());
        run_batch(conn, &sql)
            .map_err(|e| failure(format!("checkpoint {:?}", at.name()), outer, e))?;
        if at.is_outermost() {
            conn.transaction_open = true;
        }
        Ok(MySqlMark(None))
    }

    /// `ROLLBACK TO SAVEPOINT`.
    pub(super) fn rollback_to_savepoint(&self, conn: &mut MySqlConn, at: Point<'_>) -> Result<()> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_backtick(NAME, at.name())?);
        run_batch(conn, &sql).map_err(|e| {
            failure(
                format!("rollback to checkpoint {:?}", at.name()),
                at.name(),
                e,
            )
        })
    }

    /// `RELEASE SAVEPOINT`, and at depth 0 the commit.
    pub(super) fn release_savepoint(&self, conn: &mut MySqlConn, at: Point<'_>) -> Result<()> {
        let q = quote_backtick(NAME, at.name())?;
        let sql = if at.is_outermost() {
            format!("RELEASE SAVEPOINT {q}; {}", self.tx_sql(conn).commit)
        } else {
            format!("RELEASE SAVEPOINT {q}")
        };
        run_batch(conn, &sql).map_err(|e| {
            failure(
                format!("release of checkpoint {:?}", at.name()),
                at.name(),
                e,
            )
        })?;
        if at.is_outermost() {
            conn.transaction_open = false;
        }
        Ok(())
    }

    /// `ROLLBACK TO SAVEPOINT` and `RELEASE`, or at depth 0 the transaction's rollback.
    pub(super) fn discard_savepoint(&self, conn: &mut MySqlConn, at: Point<'_>) -> Result<()> {
        let q = quote_backtick(NAME, at.name())?;
        let sql = if at.is_outermost() {
            format!("ROLLBACK TO SAVEPOINT {q}; {}", self.tx_sql(conn).rollback)
        } else {
            format!("ROLLBACK TO SAVEPOINT {q}; RELEASE SAVEPOINT {q}")
        };
        match run_batch(conn, &sql) {
            Ok(()) => {
                if at.is_outermost() {
                    conn.transaction_open = false;
                }
                Ok(())
            }
            Err(e) => {
                let lost = is_connection_lost(&e);
                let error = failure(
                    format!("rollback of checkpoint {:?}", at.name()),
                    at.name(),
                    e,
                );
                if at.is_outermost() && !lost {
                    // End whatever transaction is left (one the test opened after an
                    // implicit commit, or an XA transaction the server marked
                    // rollback-only).
                    self.abandon(conn);
                }
                Err(error)
            }
        }
    }
}
