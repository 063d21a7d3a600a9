//! What a test reaches, in one place: the database and client handles on the connection
//! ([`MongoDbConn`]), the same on the manager and the session (handing over to the
//! connection's), and the manager's `prepare` and `sweep_stale_databases`.

use std::sync::atomic::Ordering;

use super::blocking::blocking;
use super::{MongoDb, MongoDbCaptureStateManager, MongoDbConn, MongoDbStateManager};
use crate::error::Result;
use crate::manager::Manager;

impl MongoDbConn {
    /// The connection's database (sync API). Run the code under test against it.
    pub fn database(&self) -> ::mongodb::sync::Database {
        // Whoever has the database can write to it: the next outermost checkpoint must look
        // at what is there instead of assuming it fresh.
        self.touched.store(true, Ordering::Relaxed);
        self.database.clone()
    }

    /// The name of the connection's database, for code under test that connects on its own.
    pub fn database_name(&self) -> &str {
        self.touched.store(true, Ordering::Relaxed);
        self.database.name()
    }

    /// The connection's database for async code (needs a Tokio runtime, which async
    /// `#[venom_test]` functions have).
    pub fn async_database(&self) -> ::mongodb::Database {
        self.touched.store(true, Ordering::Relaxed);
        self.async_database.clone()
    }

    /// The driver client (sync API), shared by every connection of the process on this URL.
    pub fn client(&self) -> ::mongodb::sync::Client {
        self.touched.store(true, Ordering::Relaxed);
        self.server.client.clone()
    }

    /// The driver client for async code.
    pub fn async_client(&self) -> ::mongodb::Client {
        self.touched.store(true, Ordering::Relaxed);
        self.server.async_client.clone()
    }
}

impl Manager<MongoDb> {
    fn mongo(&self) -> &MongoDbConn {
        self.connection_ref().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The connection's database (sync API). Run the code under test against it.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_database`](Self::try_database) returns an
    /// error instead.
    pub fn database(&self) -> ::mongodb::sync::Database {
        self.mongo().database()
    }

    /// The connection's database (sync API), or [`Error::NotConnected`](crate::Error::NotConnected).
    pub fn try_database(&self) -> Result<::mongodb::sync::Database> {
        Ok(self.connection_ref()?.database())
    }

    /// The name of the connection's database.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn database_name(&self) -> &str {
        self.mongo().database_name()
    }

    /// The connection's database for async code.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn async_database(&self) -> ::mongodb::Database {
        self.mongo().async_database()
    }

    /// The driver client (sync API), shared by every connection of the process on this URL.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn client(&self) -> ::mongodb::sync::Client {
        self.mongo().client()
    }

    /// The driver client for async code.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn async_client(&self) -> ::mongodb::Client {
        self.mongo().async_client()
    }

    /// Makes the database ready for use before the first checkpoint: copies the template
    /// into it if one is configured and it was not copied yet. Checkpoints do this by
    /// themselves; call it when you write to the database before the first checkpoint.
    pub fn prepare(&mut self) -> Result<()> {
        self.with(|backend, conn, _| blocking(|| backend.prepare(conn)))
    }

    /// Drops the `vq_` databases on this server whose owner is gone (a process on this
    /// machine that exited, or one elsewhere silent for longer than its lease TTL) and
    /// returns their names. Every process does this once, at its first connection.
    pub fn sweep_stale_databases(&mut self) -> Result<Vec<String>> {
        self.with(|_, conn, _| blocking(|| conn.server.sweep()))
    }
}

/// What a session of either backend (MongoDbStateManager or MongoDbCaptureStateManager) reaches.
macro_rules! session_api {
    ($manager:ty) => {
        impl crate::Session<$manager> {
            /// The test's database (sync API): run the code under test against it.
            pub fn database(&self) -> ::mongodb::sync::Database {
                self.connection_ref().database()
            }

            /// The test's database for async code (async `#[venom_test]` functions).
            pub fn async_database(&self) -> ::mongodb::Database {
                self.connection_ref().async_database()
            }

            /// The name of the test's database, for code under test that connects on its own.
            pub fn database_name(&self) -> &str {
                self.connection_ref().database_name()
            }

            /// The driver client (sync API).
            pub fn client(&self) -> ::mongodb::sync::Client {
                self.connection_ref().client()
            }

            /// The driver client for async code.
            pub fn async_client(&self) -> ::mongodb::Client {
                self.connection_ref().async_client()
            }
        }
    };
}

session_api!(MongoDbStateManager);
session_api!(MongoDbCaptureStateManager);
