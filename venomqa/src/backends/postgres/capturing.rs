//! Capture isolation hooks of the PostgreSQL backend: a session's first checkpoint takes
//! the advisory lock and attaches capture, its end clears the session (which gives the
//! lock back), and checkpoints, rollbacks and diffs go to the
//! [`capture`](super::capture) log.

use std::time::Duration;

use ::postgres::Client;

use super::capture;
use super::errors::{run, Stage};
use super::{Postgres, PostgresIsolation, PostgresMark, NAME, SESSION_CLEANUP};
use crate::backends::sql_capture::{no_diff, not_attached, quiescence};
use crate::capture::diff::Diff;
use crate::checkpoint::Point;
use crate::error::Result;

impl Postgres {
    /// Whether the entry isolates by capture.
    pub(super) fn capture(&self) -> bool {
        self.options.isolation == PostgresIsolation::Capture
    }

    /// The URL's database (`postgres` when it names none), whose sessions take turns.
    pub(super) fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or("postgres")
    }

    /// How long a rollback waits for other sessions' writes.
    pub(super) fn quiescence(&self) -> Duration {
        quiescence(self.options.quiescence_timeout_ms)
    }

    /// The installed capture, cloned out of its slot (it changes only at a session's
    /// first checkpoint).
    pub(super) fn installed(&self) -> Result<capture::Capture> {
        self.capture
            .lock()
            .clone()
            .ok_or_else(|| not_attached(NAME))
    }

    /// Removes everything capture installed in the chosen schemas (triggers, their
    /// functions, undo tables, bookkeeping), leaving the app's data as it is. Capture
    /// installs itself again on its next use.
    pub fn uninstall_capture(&self) -> Result<()> {
        let mut client = self.open()?;
        let schemas = self.schema_list();
        capture::Capture::lock(&mut client, self.database(), &schemas, self.lock_timeout)?;
        let result = capture::Capture::uninstall(&mut client, &schemas);
        *self.capture.lock() = None;
        let _ = capture::Capture::unlock(&mut client, self.database(), &schemas);
        result
    }

    /// A capture session's first checkpoint: the lock, then the root mark.
    pub(super) fn begin_capture(&self, client: &mut Client) -> Result<capture::Mark> {
        let schemas = self.schema_list();
        capture::Capture::lock(client, self.database(), &schemas, self.lock_timeout)?;
        let mut slot = self.capture.lock();
        capture::Capture::begin(
            client,
            &mut slot,
            &schemas,
            self.quiescence(),
            self.options.capture_proof,
        )
        .inspect_err(|_| {
            let _ = capture::Capture::unlock(client, self.database(), &schemas);
        })
    }

    /// A capture session's end: forget the root, clear the session (which gives the
    /// lock back too).
    pub(super) fn end_capture(&self, client: &mut Client) -> Result<()> {
        let cleared = match self.capture.lock().as_ref() {
            Some(capture) => capture.clear_root(client),
            None => Ok(()),
        };
        let cleanup = run(
            client,
            || "the end of the session".to_owned(),
            SESSION_CLEANUP,
            Stage::Other,
        )
        .map(drop);
        cleared.and(cleanup)
    }

    /// A checkpoint: the session's first takes the lock and attaches capture, a later one
    /// is a mark in the log.
    pub(super) fn capture_checkpoint(
        &self,
        client: &mut Client,
        at: Point<'_>,
    ) -> Result<PostgresMark> {
        let mark = if at.is_outermost() {
            self.begin_capture(client)?
        } else {
            self.installed()?
                .mark(client, &format!("checkpoint {:?}", at.name().as_str()))?
        };
        Ok(PostgresMark {
            sequences: Vec::new(),
            capture: Some(mark),
        })
    }

    /// A rollback: the log past `mark` restored, and proven.
    pub(super) fn capture_rollback(
        &self,
        client: &mut Client,
        at: Point<'_>,
        mark: &capture::Mark,
    ) -> Result<()> {
        let operation = format!("rollback to checkpoint {:?}", at.name().as_str());
        self.installed()?.rollback(client, mark, &operation)
    }

    /// A release: nothing to do, but the end of the session at depth 0.
    pub(super) fn capture_release(&self, client: &mut Client, at: Point<'_>) -> Result<()> {
        if at.is_outermost() {
            self.end_capture(client)
        } else {
            Ok(())
        }
    }

    /// A discard: the rollback, and at depth 0 the end of the session.
    pub(super) fn capture_discard(
        &self,
        client: &mut Client,
        at: Point<'_>,
        mark: &capture::Mark,
    ) -> Result<()> {
        self.capture_rollback(client, at, mark)?;
        self.capture_release(client, at)
    }

    /// The diff since `mark`: capture's log read back (refused under transaction
    /// isolation, which keeps no record).
    pub(super) fn capture_diff(
        &self,
        client: &mut Client,
        at: Point<'_>,
        mark: &PostgresMark,
    ) -> Result<Diff> {
        match &mark.capture {
            Some(mark) => self.installed()?.diff(client, mark),
            None => Err(no_diff(NAME, at.name().as_str())),
        }
    }
}
