//! What a connection does with its key space: the lease checks, guarded destructive steps
//! (retried once on a new connection), the rollback to an in-memory snapshot, and giving
//! the lease back.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use ::redis::{Connection, RedisError};

use super::capture::CaptureState;
use super::client::open_connection;
use super::lease::{self, lost_error, Guard, GuardFail, Lease};
use super::options::Isolation;
use super::snapshot::{self, Entry, Scope, Snapshot};
use super::{RedisConn, NAME};
use crate::error::{Error, Result};

impl RedisConn {
    /// Whether the connection owns every key of its database (database isolation, no key
    /// prefix): then rollback is `FLUSHDB` + `RESTORE` and reset is `FLUSHDB`.
    pub(super) fn owns_database(&self) -> bool {
        self.isolation == Isolation::Database && self.prefix.is_empty()
    }

    /// The connection, and where its keys are.
    pub(super) fn scoped(&mut self) -> (&mut Connection, Scope<'_>) {
        let scope = Scope {
            db: self.database(),
            prefix: &self.prefix,
            batch: self.batch_size,
            // Lease keys live only in database 0 and in the home database of prefix/none
            // connections; a leased database (n >= 1) holds none.
            filter_leases: self.isolation != Isolation::Database,
        };
        (&mut self.conn, scope)
    }

    /// Every key under the prefix.
    pub(super) fn scan_keys(&mut self) -> ::redis::RedisResult<Vec<Vec<u8>>> {
        let (conn, scope) = self.scoped();
        snapshot::scan_keys(conn, &scope)
    }

    pub(super) fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.lease
            .iter()
            .chain(self.pin.iter())
            .chain(self.capture.iter().flat_map(CaptureState::leases))
    }

    /// Whether the lease (or pin) is lost, or may have expired on the server.
    pub(super) fn lease_lost(&self) -> bool {
        self.leases().any(Lease::is_lost)
    }

    pub(super) fn check_lease(&self) -> Result<()> {
        match self.leases().find(|l| l.is_lost()) {
            Some(l) => Err(lost_error(&l.key, "its renewal is overdue")),
            None => Ok(()),
        }
    }

    /// What a lost connection means for the test's keys.
    pub(super) fn lost_outcome(&self) -> &'static str {
        match self.isolation {
            Isolation::None => "the keys the test wrote so far stay in the URL's database; roll them back by hand",
            Isolation::Capture => "the checkpoint stays recorded on the server, so the next capture session on this database restores it",
            _ => "the test's keys stay in its leased key space, which is emptied when the lease is given back or expires",
        }
    }

    /// A driver error of `operation`: a lost connection, or a failure.
    pub(super) fn driver_error(&self, operation: &str, e: RedisError) -> Error {
        if lease::is_connection_error(&e) {
            Error::connection_lost(NAME, operation, self.lost_outcome(), e)
        } else {
            Error::backend(NAME, operation, e)
        }
    }

    /// Replaces the connection by a new one (the old one is unusable).
    pub(super) fn reconnect(&mut self) -> Result<()> {
        self.conn = open_connection(&self.client, &self.url, self.connect_timeout)?;
        Ok(())
    }

    /// A guarded step on the test's connection; when that connection is unusable (dropped,
    /// subscribe mode), once more on a new connection, which then replaces it.
    pub(super) fn guarded(
        &mut self,
        what: &str,
        flush: bool,
        unlink: &[&[u8]],
        restore: &[Entry],
    ) -> Result<()> {
        self.check_lease()?;
        let guards: Vec<Guard> = self.leases().map(Lease::guard).collect();
        let db = self.database();
        let batch = self.batch_size;
        let mut outcome =
            lease::guarded_exec(&mut self.conn, &guards, db, flush, unlink, restore, batch);
        if let Err(GuardFail::Retry(e)) = &outcome {
            tracing::warn!(target: "venomqa", error = %e, "redis connection unusable; reconnecting for {what}");
            self.reconnect()?;
            outcome =
                lease::guarded_exec(&mut self.conn, &guards, db, flush, unlink, restore, batch);
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(GuardFail::Lost) => {
                for l in self.leases() {
                    l.lost.store(true, Ordering::SeqCst);
                }
                let keys: Vec<&str> = self.leases().map(|l| l.key.as_str()).collect();
                Err(lost_error(
                    &keys.join(", "),
                    "another owner holds it on the server",
                ))
            }
            Err(GuardFail::Retry(e) | GuardFail::Failed(e)) => Err(self.driver_error(what, e)),
        }
    }

    /// Deletes every key under the prefix (lease keys excepted), in batches, each batch
    /// verifying the lease on the server in the same script. A lost lease deletes nothing.
    pub(super) fn empty_prefix(&mut self, what: &str) -> Result<()> {
        let keys = self.scan_keys().map_err(|e| self.driver_error(what, e))?;
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        self.guarded(what, false, &keys, &[])
    }

    /// Puts the keys under the prefix back to `snapshot`: one round trip of
    /// `DISCARD; UNWATCH; MULTI; EVAL ..; EXEC; SELECT n`, where each script verifies the
    /// lease on the server before `FLUSHDB` (whole database) or `UNLINK` (keys created
    /// since), and `RESTORE`.
    pub(super) fn restore(&mut self, snapshot: &Snapshot, what: &str) -> Result<()> {
        self.check_lease()?;
        if self.owns_database() {
            return self.guarded(what, true, &[], &snapshot.entries);
        }
        let current = match self.scan_keys() {
            Err(e) if lease::is_connection_error(&e) => {
                self.reconnect()?;
                self.scan_keys()
            }
            other => other,
        }
        .map_err(|e| self.driver_error(what, e))?;
        let keep: HashSet<&[u8]> = snapshot.entries.iter().map(|e| e.key.as_slice()).collect();
        let doomed: Vec<&[u8]> = current
            .iter()
            .map(Vec::as_slice)
            .filter(|k| !keep.contains(k))
            .collect();
        self.guarded(what, false, &doomed, &snapshot.entries)
    }

    /// Gives the lease back, emptying the leased database or prefix first, each step
    /// verified on the server (only while the lease is still ours); on a connection the test
    /// left unusable (subscribe mode, killed) once more on a new one. A pin is left to
    /// expire: other connections may share it.
    pub(super) fn release_lease(&mut self) -> Result<()> {
        let result = self.end_capture().and(self.release_lease_inner());
        if let Some(mut pin) = self.pin.take() {
            pin.stop();
            lease::unhold(&pin.key, &pin.owner);
        }
        result
    }

    pub(super) fn release_lease_inner(&mut self) -> Result<()> {
        let Some(held) = self.lease.as_mut() else {
            return Ok(());
        };
        held.stop();
        let (key, owner, slot) = (held.key.clone(), held.owner.clone(), held.slot);
        lease::unhold(&key, &owner);
        let home = self.home_db;
        let database = self.isolation == Isolation::Database;
        let give_back = |conn: &mut Connection| {
            if database {
                lease::release_db(conn, &key, &owner, slot, home)
            } else {
                lease::release_key(conn, home, &key, &owner)
            }
        };
        let result = if database {
            Ok(())
        } else {
            self.empty_prefix("giving back the lease")
        }
        .and_then(|()| match give_back(&mut self.conn) {
            Err(_) => {
                self.reconnect()?;
                give_back(&mut self.conn)
                    .map_err(|e| Error::backend(NAME, format!("giving back the lease {key}"), e))
            }
            Ok(()) => Ok(()),
        });
        self.lease = None;
        result
    }
}

impl Drop for RedisConn {
    fn drop(&mut self) {
        if self.lease.is_some() || self.pin.is_some() || self.capture.is_some() {
            if let Err(e) = self.release_lease() {
                tracing::warn!(target: "venomqa", error = %e, "giving back the redis lease on drop failed; it expires by itself");
            }
        }
    }
}
