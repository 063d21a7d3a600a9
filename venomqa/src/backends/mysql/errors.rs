//! The errors of the MySQL backend: which driver errors mean a lost connection or a lost
//! transaction, and the backend's own messages, each one short line.

use ::mysql::prelude::Queryable;

use super::statements::Refusal;
use super::{driver, NAME};
use crate::backends::sql_capture::Worded;
use crate::error::Error;

/// MySQL error codes the backend reacts to.
const ER_SP_DOES_NOT_EXIST: u16 = 1305;
const ER_CON_COUNT_ERROR: u16 = 1040;
const ER_SERVER_SHUTDOWN: u16 = 1053;
const ER_CONNECTION_KILLED: u16 = 1927;
const CR_SERVER_GONE_ERROR: u16 = 2006;
const CR_SERVER_LOST: u16 = 2013;
/// XA_RBROLLBACK, XA_RBTIMEOUT, XA_RBDEADLOCK: the server rolled the XA transaction back.
const XA_ROLLED_BACK: [u16; 3] = [1402, 1613, 1614];

/// What a lost connection means for the test's changes.
const LOST_OUTCOME: &str = "the server rolled back the open transaction: nothing uncommitted survives; a new connection replaces this one";

/// Runs a (multi-statement) batch and reads every result, so an error in any statement
/// is returned (`query_drop` would swallow errors after the first statement).
pub(super) fn run_batch(
    conn: &mut driver::Conn,
    sql: &str,
) -> std::result::Result<(), driver::Error> {
    let mut result = conn.query_iter(sql)?;
    while let Some(set) = result.iter() {
        for row in set {
            row?;
        }
    }
    Ok(())
}

/// Whether the error means the connection itself is gone.
pub(super) fn is_connection_lost(e: &driver::Error) -> bool {
    match e {
        driver::Error::IoError(_)
        | driver::Error::CodecError(_)
        | driver::Error::DriverError(_) => true,
        driver::Error::MySqlError(e) => matches!(
            e.code,
            ER_CONNECTION_KILLED | ER_SERVER_SHUTDOWN | CR_SERVER_GONE_ERROR | CR_SERVER_LOST
        ),
        _ => false,
    }
}

/// The server's error code, if the server answered with an error.
pub(super) fn server_code(e: &driver::Error) -> Option<u16> {
    match e {
        driver::Error::MySqlError(e) => Some(e.code),
        _ => None,
    }
}

/// The [`Error::StateLost`] of a transaction that ended behind the backend's back.
pub(super) fn savepoint_gone(savepoint: &str) -> Error {
    Error::state_lost(
        NAME,
        format!(
            "savepoint `{savepoint}` is gone: a statement of the test (DDL, TRUNCATE, COMMIT, BEGIN) committed, so its writes are PERMANENT and nothing was rolled back (unless a deadlock undid it all); create tables in setup, use DELETE, or postgres"
        ),
    )
}

/// Maps a driver error of `operation`, done while savepoint `savepoint` should exist.
pub(super) fn failure(operation: impl Into<String>, savepoint: &str, e: driver::Error) -> Error {
    let operation = operation.into();
    if is_connection_lost(&e) {
        lost(operation, e)
    } else if let Some(code) = server_code(&e).filter(|c| XA_ROLLED_BACK.contains(c)) {
        Error::state_lost(
            NAME,
            format!(
                "{operation} failed: the server rolled the transaction back after a deadlock or lock wait timeout (error {code}), so its changes and checkpoints are gone; see SHOW ENGINE INNODB STATUS, or run those tests one at a time"
            ),
        )
    } else if server_code(&e) == Some(ER_SP_DOES_NOT_EXIST) {
        savepoint_gone(savepoint)
    } else {
        Error::backend(NAME, operation, e)
    }
}

/// The kind of the I/O error behind a driver error, if there is one.
pub(super) fn io_kind(e: &driver::Error) -> Option<std::io::ErrorKind> {
    match e {
        driver::Error::IoError(io) => Some(io.kind()),
        driver::Error::CodecError(codec) => std::error::Error::source(codec)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind),
        _ => None,
    }
}

/// The [`Error::ConnectionLost`] of `operation` (a read or write that timed out shows as
/// "no answer within io_timeout_ms").
pub(super) fn lost(operation: String, e: driver::Error) -> Error {
    Error::connection_lost(NAME, operation, LOST_OUTCOME, Described::new(e))
}

/// Maps a driver error of `operation` where no savepoint is involved.
pub(super) fn plain_failure(operation: impl Into<String>, e: driver::Error) -> Error {
    if is_connection_lost(&e) {
        lost(operation.into(), e)
    } else {
        Error::backend(NAME, operation, e)
    }
}

/// A driver error shown as the server or the operating system put it (`ERROR 1044
/// (42000): Access denied ...`, `Connection reset by peer (os error 104)`), not as the
/// driver's `Debug`-like text; its [`source`](std::error::Error::source) is the driver's
/// error, which [`Error::driver`] finds.
pub(crate) type Described = Worded<driver::Error>;

impl Worded<driver::Error> {
    /// `error` in the server's or the operating system's words.
    pub(crate) fn new(error: driver::Error) -> Self {
        let text = match &error {
            e if matches!(
                io_kind(e),
                Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            ) =>
            {
                "no answer within io_timeout_ms".to_owned()
            }
            driver::Error::IoError(io) => io.to_string(),
            driver::Error::CodecError(codec) => std::error::Error::source(codec)
                .map_or_else(|| codec.to_string(), ToString::to_string),
            driver::Error::MySqlError(server) => server.to_string(),
            driver::Error::DriverError(d) => d.to_string(),
            other => other.to_string(),
        };
        Worded::with_text(text, error)
    }
}

/// The refusal of [`exec`](MySqlStateManager::exec) to run `refused` while checkpoint
/// `active` is active.
pub(super) fn exec_refusal(refused: &Refusal, active: &str) -> Error {
    let (statement, hint) = match refused {
        Refusal::Commits(statement) => (
            statement,
            "it was NOT run: it commits implicitly, which would make the test's writes permanent; create tables in setup, use DELETE, not TRUNCATE, or CREATE TEMPORARY TABLE",
        ),
        Refusal::Opaque(statement) => (
            statement,
            "it was NOT run: exec() cannot see what it runs, which may commit implicitly; run it through conn(), or set transaction: xa so the server refuses implicit commits",
        ),
    };
    Error::unsupported(
        NAME,
        format!("`{statement}` in exec() inside checkpoint {active:?}"),
        hint,
    )
}

/// The refusal of `reset()` to empty `parent` while `schema`.`child`, which it does not
/// empty, references it by foreign key `constraint`.
pub(super) fn orphan_refusal(schema: &str, child: &str, constraint: &str, parent: &str) -> Error {
    Error::unsupported(
        NAME,
        format!("reset() of `{parent}` while `{schema}`.`{child}` (not reset) references it by {constraint:?}"),
        format!("its rows would point at nothing; reset `{child}` too, or exclude `{parent}`. Nothing was changed"),
    )
}

/// Refused, reset or closed connections, and the server's "shutdown in progress" and
/// "too many connections": what a restart (or a burst) shows for a moment.
pub(super) fn is_transient(error: &Error) -> bool {
    match error.driver::<driver::Error>() {
        Some(e @ (driver::Error::IoError(_) | driver::Error::CodecError(_))) => {
            io_kind(e).is_none_or(crate::error::is_transient_io)
        }
        Some(driver::Error::DriverError(driver::DriverError::CouldNotConnect(Some((
            _,
            _,
            kind,
        ))))) => crate::error::is_transient_io(*kind),
        Some(driver::Error::MySqlError(e)) => matches!(
            e.code,
            ER_SERVER_SHUTDOWN | ER_CON_COUNT_ERROR | ER_CONNECTION_KILLED
        ),
        _ => error.is_transient(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_short_line() {
        let io = || {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "Connection reset by peer (os error 104)",
            )
        };
        let server = |code: u16, message: &str| {
            driver::Error::MySqlError(driver::MySqlError {
                state: "HY000".into(),
                code,
                message: message.into(),
            })
        };
        let long_name = "a".repeat(63);
        let samples = [
            savepoint_gone(&long_name),
            failure(
                format!("rollback of checkpoint {long_name:?}"),
                &long_name,
                driver::Error::IoError(io()),
            ),
            failure(
                format!("rollback of checkpoint {long_name:?}"),
                &long_name,
                server(
                    1614,
                    "XA_RBDEADLOCK: Transaction branch was rolled back: deadlock was detected",
                ),
            ),
            failure(
                format!("rollback to checkpoint {long_name:?}"),
                &long_name,
                server(
                    ER_SP_DOES_NOT_EXIST,
                    "SAVEPOINT venomqa_root does not exist",
                ),
            ),
            failure(
                "exec",
                &long_name,
                server(1062, "Duplicate entry '1' for key 'PRIMARY'"),
            ),
            exec_refusal(&Refusal::Commits("CREATE TABLE".into()), &long_name),
            exec_refusal(&Refusal::Opaque("EXECUTE".into()), &long_name),
            // Its length grows with the names (of the user's tables): typical ones here.
            orphan_refusal("shop_test", "order_items", "order_items_ibfk_1", "orders"),
            Error::connect(
                NAME,
                "mysql://root:s3cret@127.0.0.1:1/test",
                driver::Error::IoError(io()),
            ),
        ];
        for e in samples {
            check_shape(&e.to_string());
        }
    }

    pub(super) fn check_shape(text: &str) {
        assert!(!text.contains('\n') && !text.contains("  "), "{text}");
        assert!(text.len() <= 300, "{} chars: {text}", text.len());
    }
}
