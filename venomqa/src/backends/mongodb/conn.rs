//! Giving a connection's database back: dropping a leased database with its record (on
//! close, and on drop), and releasing a shared database's lock.

use ::mongodb::bson::doc;

use super::blocking::blocking;
use super::driver_error::driver_error;
use super::{MongoDbConn, NAME};
use crate::error::Result;

impl MongoDbConn {
    pub(super) fn drop_database(&self) -> Result<()> {
        self.io
            .drop()
            .run()
            .map_err(|e| driver_error(format!("dropping database {:?}", self.database.name()), e))
    }

    /// Gives everything back: the shared lock, and a leased database with its record.
    pub(super) fn give_back(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.release_lock_logged();
        if self.leased {
            self.drop_database()?;
            self.server
                .leases()
                .delete_one(doc! { "_id": self.database.name() })
                .run()
                .map_err(|e| driver_error("deleting the lease record", e))?;
        }
        Ok(())
    }
}

/// A connection dropped without `close` gives back its lock and drops its database.
impl Drop for MongoDbConn {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = blocking(|| self.give_back()) {
                tracing::warn!(target: "venomqa", backend = NAME, error = %e, "giving back a dropped connection's database failed; the next process's sweep drops it");
            }
        }
    }
}
