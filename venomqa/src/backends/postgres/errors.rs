//! The errors of the PostgreSQL backend: a driver error on one line
//! ([`DriverError`]), and what a failed statement means where it ran (a lost connection,
//! a transaction that ended behind venomqa's back, an aborted one).

use std::fmt::{self, Write as _};

use ::postgres::error::{DbError, SqlState};
use ::postgres::{Client, SimpleQueryMessage};

use super::NAME;
use crate::backends::sql_capture::Worded;
use crate::error::{Error, Result};

/// Where a statement ran, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// The outermost checkpoint's `BEGIN`: nothing of the test has run yet.
    Begin,
    /// Inside the test's transaction: a nested checkpoint, a rollback, a release.
    Nested,
    /// The `COMMIT` of a release of the outermost checkpoint.
    Commit,
    /// The final rollback of the outermost checkpoint, which ends the transaction for good.
    End,
    /// Outside any checkpoint: the health check, reset, a setup script.
    Other,
}

/// Runs `sql` as one simple-query batch (one round trip).
pub(super) fn run(
    client: &mut Client,
    operation: impl FnOnce() -> String,
    sql: &str,
    stage: Stage,
) -> Result<Vec<SimpleQueryMessage>> {
    client
        .simple_query(sql)
        .map_err(|e| fail(client, &operation(), e, stage))
}

/// A driver error shown on one line: the server's severity, SQLSTATE, message and detail
/// (or the driver's message and its causes), then what to do. Its
/// [`source`](std::error::Error::source) is the `postgres::Error` itself, which
/// [`Error::driver`] finds.
pub(super) type DriverError = Worded<::postgres::Error>;

impl Worded<::postgres::Error> {
    /// `error`, described, followed by `remedy` (which starts with its own separator).
    pub(super) fn new(error: ::postgres::Error, remedy: impl fmt::Display) -> Self {
        let text = format!("{}{remedy}", describe(&error));
        Worded::with_text(text, error)
    }
}

/// At most `max` characters of `s`, on one line with single spaces.
pub(super) fn one_line(s: &str, max: usize) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// A driver error as one short line: the server's severity, SQLSTATE, message and detail,
/// or the driver's message followed by its causes.
pub(super) fn describe(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return describe_db(db);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    one_line(&text, 160)
}

pub(super) fn describe_db(db: &DbError) -> String {
    let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    if let Some(detail) = db.detail() {
        let _ = write!(text, " ({detail})");
    }
    one_line(&text, 160)
}

/// Whether `e` means the connection is gone: closed, an I/O failure, or a FATAL error
/// (pg_terminate_backend, a shutdown, idle_in_transaction_session_timeout).
pub(super) fn connection_lost(client: &Client, e: &::postgres::Error) -> bool {
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

/// Maps a driver error of `operation` to the error venomqa reports.
///
/// A lost connection is [`Error::ConnectionLost`], saying what it means for the test's
/// changes. A transaction that ended behind venomqa's back (a `COMMIT` in the test) is
/// [`Error::StateLost`]. A statement refused because the transaction is aborted, or a
/// savepoint the code under test removed, is an [`Error::Backend`] that says how to go on:
/// the transaction is still open, so nothing the test writes afterwards can commit, and
/// the rollback at its end still undoes everything. Only at [`Stage::End`] is a
/// best-effort `ROLLBACK` run (for a transaction that is not venomqa's), so the connection
/// is left idle; anywhere else it would end the test's transaction and let every later
/// write autocommit.
pub(super) fn fail(
    client: &mut Client,
    operation: &str,
    e: ::postgres::Error,
    stage: Stage,
) -> Error {
    if connection_lost(client, &e) {
        let outcome = match stage {
            Stage::Begin => "no transaction was open yet, so nothing was changed",
            Stage::Nested | Stage::End => {
                "the server rolled back the open transaction, so nothing of this test was committed; the pool opens a new connection"
            }
            Stage::Commit => "whether the COMMIT took effect is unknown: check the data",
            Stage::Other => "the server rolled back what was not committed; the pool opens a new connection",
        };
        return Error::connection_lost(NAME, operation, outcome, DriverError::new(e, ""));
    }
    let code = e.code().cloned();
    let gone = code == Some(SqlState::NO_ACTIVE_SQL_TRANSACTION)
        || (code == Some(SqlState::S_E_INVALID_SPECIFICATION) && stage == Stage::End);
    if gone && stage != Stage::Other {
        if stage == Stage::End {
            // A transaction the code under test began after ending ours: end it too.
            let _ = client.batch_execute("ROLLBACK");
        }
        return Error::state_lost(
            NAME,
            format!(
                "{operation} found the test's transaction gone ({}): code on the test's connection ran COMMIT, \
                 ROLLBACK or RELEASE SAVEPOINT (Client::transaction() does), so what it wrote may be committed for good; \
                 take transaction control out of the code under test",
                code.as_ref().map_or("", SqlState::code)
            ),
        );
    }
    let remedy = match code {
        Some(SqlState::IN_FAILED_SQL_TRANSACTION) => {
            "; a statement failed earlier in this transaction: roll back to a checkpoint made before it (or end its block)"
        }
        Some(SqlState::S_E_INVALID_SPECIFICATION) if stage != Stage::Other => {
            "; code under test released or rolled back past it. The transaction is still open (aborted): roll back to an earlier checkpoint"
        }
        _ => "",
    };
    Error::backend(NAME, operation, DriverError::new(e, remedy))
}

/// Refused or reset connections, and the server saying it is starting up, shutting
/// down or out of connections (SQLSTATE 57P01, 57P02, 57P03, 53300): a restart.
pub(super) fn is_transient(error: &Error) -> bool {
    if let Some(code) = error.driver::<::postgres::Error>().and_then(|e| e.code()) {
        return [
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code);
    }
    error.is_transient()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("a\nDETAIL:  b", 100), "a DETAIL: b");
        assert_eq!(one_line("abcdefghij", 6), "abc...");
    }
}
