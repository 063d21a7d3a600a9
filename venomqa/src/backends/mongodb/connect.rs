//! Opening a connection: the process's client for the URL, and (per-lease isolation) the
//! lease record of a new database and the heartbeat that renews it.

use std::sync::atomic::AtomicBool;

use super::driver_error::driver_error;
use super::lease::{self, Server};
use super::options::Isolation;
use super::{DbState, MongoDb, MongoDbConn, NAME};
use crate::error::Result;

impl MongoDb {
    /// Opens (or reuses) the process's client, records the lease of a new database (the
    /// record exists before the database does, so a sweep that sees the database also sees
    /// its owner) and starts the heartbeat.
    pub(super) fn open(&self) -> Result<MongoDbConn> {
        let url = self.url.expose();
        let server = Server::get(url, self.connect_timeout)?;
        let base = self
            .options
            .database
            .clone()
            .or_else(|| server.default_database.clone())
            .unwrap_or_else(|| "test".to_owned());
        let (name, leased) = match self.options.isolation {
            Isolation::Shared | Isolation::Capture => (base, false),
            Isolation::DatabasePerLease => {
                server.swept.get_or_init(|| {
                    if let Err(e) = server.sweep() {
                        tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not clean up databases left behind by earlier runs");
                    }
                });
                let name = lease::lease_database_name(&base);
                let now = server.server_time()?;
                let record = lease::record(&name, now, self.lease_ttl_duration());
                server.leases().insert_one(record).run().map_err(|e| {
                    driver_error(format!("recording the lease of database {name:?}"), e)
                })?;
                server.start_heartbeat(self.lease_ttl_duration());
                (name, true)
            }
        };
        Ok(MongoDbConn {
            database: server.client.database(&name),
            io: server.io_database(&name),
            async_database: server.async_client.database(&name),
            server,
            leased,
            state: if leased {
                DbState::Empty
            } else {
                DbState::Unknown
            },
            touched: AtomicBool::new(false),
            lock_held: None,
            lock_ttl: self.lease_ttl_duration(),
            closed: false,
        })
    }
}
