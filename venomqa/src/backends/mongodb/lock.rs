//! The lock of a shared (or captured) database: one document in `venomqa_leases.locks`
//! that exactly one connection, of any process on any machine, holds at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::mongodb::bson::doc;

use super::driver_error::driver_error;
use super::lease;
use super::{MongoDbConn, NAME};
use crate::error::{Error, Result};

impl MongoDbConn {
    /// With [`Isolation::Shared`], takes the database's lock in the shared registry (a
    /// `shared:<database>` document in `venomqa_leases.locks`, created with `insert`: the
    /// unique `_id` lets exactly one connection on any process or machine have it). A lock
    /// whose holder is gone (a dead process on this machine, or an expiry in server time
    /// passed without heartbeat) is taken over; otherwise waits up to `timeout`.
    pub(super) fn acquire_shared_lock(&mut self, timeout: Duration) -> Result<()> {
        if self.lock_held.is_some() {
            return Ok(());
        }
        static HOLDERS: AtomicU64 = AtomicU64::new(0);
        let server = &self.server;
        let database = self.database.name();
        let id = format!("shared:{database}");
        let holder = format!(
            "{}:{}",
            crate::backends::owner::me().token,
            HOLDERS.fetch_add(1, Ordering::Relaxed)
        );
        let op = || format!("taking the lock of shared database {database:?}");
        server.start_heartbeat(self.lock_ttl);
        let locks = server.locks();
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let now = server.server_time()?;
            let mut record = lease::record(&id, now, self.lock_ttl);
            record.insert("holder", &holder);
            match locks.insert_one(record).run() {
                Ok(_) => {
                    self.lock_held = Some(holder);
                    return Ok(());
                }
                Err(e) if lease::is_duplicate_key(&e) => {}
                Err(e) => return Err(driver_error(op(), e)),
            }
            let current = locks
                .find_one(doc! { "_id": &id })
                .run()
                .map_err(|e| driver_error(op(), e))?;
            if let Some(current) = &current {
                if let Some(reason) = lease::stale_reason(current, now) {
                    tracing::info!(target: "venomqa", backend = NAME, database = %database, %reason, "taking over an abandoned lock");
                    // Only that very lock, unless it was renewed or replaced meanwhile.
                    let mut filter = doc! { "_id": &id };
                    for key in ["holder", "expires_at"] {
                        if let Some(value) = current.get(key) {
                            filter.insert(key, value.clone());
                        }
                    }
                    locks
                        .delete_one(filter)
                        .run()
                        .map_err(|e| driver_error(op(), e))?;
                    continue;
                }
            }
            if std::time::Instant::now() >= deadline {
                let who = current.as_ref().map_or_else(
                    || "another test".to_owned(),
                    |c| {
                        format!(
                            "process {} on host {:?}",
                            c.get_i64("pid").unwrap_or(0),
                            c.get_str("host").unwrap_or("?")
                        )
                    },
                );
                return Err(Error::backend(
                    NAME,
                    op(),
                    format!(
                        "{who} is using it (isolation: shared) and did not finish within {} ms; give each test a database of its own (isolation: database_per_lease) or raise shared_lock_timeout_secs",
                        timeout.as_millis()
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Gives the shared database's lock back, if this connection holds it.
    pub(super) fn release_shared_lock(&mut self) -> Result<()> {
        let Some(holder) = self.lock_held.take() else {
            return Ok(());
        };
        let database = self.database.name();
        self.server
            .locks()
            .delete_one(doc! { "_id": format!("shared:{database}"), "holder": &holder })
            .run()
            .map_err(|e| {
                driver_error(
                    format!("releasing the lock of shared database {database:?}"),
                    e,
                )
            })?;
        Ok(())
    }

    /// Releases the lock; a failure only delays the next holder until the lock expires, so
    /// it is logged, not returned.
    pub(super) fn release_lock_logged(&mut self) {
        if let Err(e) = self.release_shared_lock() {
            tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not release the shared database lock; it expires after lease_ttl_secs");
        }
    }
}
