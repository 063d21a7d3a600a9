//! Capture isolation hooks of the MySQL backend: a session's first checkpoint takes the
//! lock and attaches capture, its end gives the lock back, and checkpoints, rollbacks and
//! diffs go to the [`capture`](super::capture) log.

use std::time::Duration;

use super::capture::{self, Capture};
use super::{driver, MySql, MySqlConn, MySqlIsolation, MySqlMark, NAME};
use crate::backends::sql_capture::{no_diff, not_attached, quiescence};
use crate::capture::diff::Diff;
use crate::checkpoint::Point;
use crate::error::{Error, Result};

impl MySql {
    /// Whether the entry isolates by capture.
    pub(super) fn capture(&self) -> bool {
        self.options.isolation == MySqlIsolation::Capture
    }

    /// How long checkpoints and rollbacks wait for other sessions' writes.
    pub(super) fn quiescence(&self) -> Duration {
        quiescence(self.options.quiescence_timeout_ms)
    }

    /// The captured database (checked in `new`).
    pub(super) fn captured(&self) -> &str {
        self.database
            .as_deref()
            .expect("capture needs a database; checked in new()")
    }

    /// Removes everything capture installed in the URL's database (triggers, undo tables,
    /// the invisible row ids of keyless tables, bookkeeping), leaving the app's data as it
    /// is. Capture installs itself again on its next use.
    pub fn uninstall_capture(&self) -> Result<()> {
        let database = self.database.as_deref().ok_or_else(|| {
            Error::unsupported(
                NAME,
                "uninstall_capture() without a database in the URL",
                "put the database in the URL",
            )
        })?;
        let mut conn = self.open()?;
        Capture::lock(&mut conn, database, self.lock_timeout)?;
        let result = Capture::uninstall_from(&mut conn, database);
        let _ = Capture::unlock(&mut conn, database);
        result
    }

    /// A capture session's first checkpoint: the lock, then the root mark.
    pub(super) fn begin_capture(&self, conn: &mut MySqlConn) -> Result<capture::Mark> {
        let database = self.captured();
        Capture::lock(conn, database, self.lock_timeout)?;
        let MySqlConn {
            conn: driver,
            capture,
            ..
        } = conn;
        Capture::begin(
            driver,
            capture,
            database,
            self.quiescence(),
            self.options.capture_proof,
        )
        .inspect_err(|_| {
            let _ = Capture::unlock(driver, database);
        })
    }

    /// A capture session's end: forget the root, give the lock back.
    pub(super) fn end_capture(&self, conn: &mut MySqlConn) -> Result<()> {
        let MySqlConn {
            conn: driver,
            capture,
            ..
        } = conn;
        let cleared = match capture {
            Some(capture) => capture.clear_root(driver),
            None => Ok(()),
        };
        let unlocked = Capture::unlock(driver, self.captured());
        cleared.and(unlocked)
    }

    /// The driver's connection and the capture the session's first checkpoint attached.
    pub(super) fn installed(conn: &mut MySqlConn) -> Result<(&mut driver::Conn, &Capture)> {
        let MySqlConn {
            conn: driver,
            capture,
            ..
        } = conn;
        let capture = capture.as_ref().ok_or_else(|| not_attached(NAME))?;
        Ok((driver, capture))
    }

    /// A checkpoint: the session's first takes the lock and attaches capture, a later one
    /// is a mark in the log.
    pub(super) fn capture_checkpoint(
        &self,
        conn: &mut MySqlConn,
        at: Point<'_>,
    ) -> Result<MySqlMark> {
        let mark = if at.is_outermost() {
            self.begin_capture(conn)?
        } else {
            let (driver, capture) = Self::installed(conn)?;
            capture.mark(driver, &format!("checkpoint {:?}", at.name()))?
        };
        Ok(MySqlMark(Some(mark)))
    }

    /// A rollback: the log past `mark` replayed, and proven.
    pub(super) fn capture_rollback(
        &self,
        conn: &mut MySqlConn,
        at: Point<'_>,
        mark: &capture::Mark,
    ) -> Result<()> {
        let (driver, capture) = Self::installed(conn)?;
        capture.rollback(
            driver,
            mark,
            &format!("rollback to checkpoint {:?}", at.name()),
        )
    }

    /// A release: nothing to do, but the end of the session at depth 0.
    pub(super) fn capture_release(&self, conn: &mut MySqlConn, at: Point<'_>) -> Result<()> {
        if at.is_outermost() {
            self.end_capture(conn)
        } else {
            Ok(())
        }
    }

    /// A discard: the rollback, and at depth 0 the end of the session.
    pub(super) fn capture_discard(
        &self,
        conn: &mut MySqlConn,
        at: Point<'_>,
        mark: &capture::Mark,
    ) -> Result<()> {
        self.capture_rollback(conn, at, mark)?;
        self.capture_release(conn, at)
    }

    /// The diff since `mark`: capture's log read back (refused under transaction
    /// isolation, which keeps no record).
    pub(super) fn capture_diff(
        &self,
        conn: &mut MySqlConn,
        at: Point<'_>,
        mark: &MySqlMark,
    ) -> Result<Diff> {
        match &mark.0 {
            Some(mark) => {
                let (driver, capture) = Self::installed(conn)?;
                capture.diff(driver, mark)
            }
            None => Err(no_diff(NAME, at.name())),
        }
    }
}
