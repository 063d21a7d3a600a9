//! The accessors a test uses, in one place: on the connection ([`RedisConn`]), and the same
//! ones on the manager and the session, which hand over to the connection's.

use ::redis::Connection;

use super::options::Isolation;
use super::{Redis, RedisCaptureStateManager, RedisConn, RedisStateManager};
use crate::error::Result;
use crate::manager::Manager;

impl RedisConn {
    /// The native connection, on the test's database: run the code under test through it.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The prefix the test's keys go under: `<key_prefix>{vq<slot>}:` in prefix isolation,
    /// else the configured `key_prefix` (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `name` under [`prefix`](Self::prefix): the key a test should use for `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The database the connection works in: the leased one in database isolation, else
    /// the URL's.
    pub fn database(&self) -> i64 {
        match (self.isolation, &self.lease) {
            (Isolation::Database, Some(l)) => l.slot,
            _ => self.home_db,
        }
    }

    /// How tests are kept apart.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The lease's owner token (stored as the lease key's value), if a lease is held.
    pub fn lease_owner(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.owner.as_str())
    }

    /// The lease key, if a lease is held.
    pub fn lease_key(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.key.as_str())
    }
}

impl Manager<Redis> {
    /// The native connection, on the test's database.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_conn`](Self::try_conn) returns an error
    /// instead.
    pub fn conn(&mut self) -> &mut Connection {
        self.try_conn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The native connection, or [`Error::NotConnected`](crate::Error::NotConnected).
    pub fn try_conn(&mut self) -> Result<&mut Connection> {
        Ok(self.connection()?.conn())
    }

    fn redis(&self) -> &RedisConn {
        self.connection_ref().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The prefix the test's keys go under (see [`RedisConn::prefix`]).
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn prefix(&self) -> &str {
        self.redis().prefix()
    }

    /// `name` under the test's prefix.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn key(&self, name: &str) -> String {
        self.redis().key(name)
    }

    /// The database the connection works in.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn database(&self) -> i64 {
        self.redis().database()
    }

    /// The lease's owner token, if connected and a lease is held.
    pub fn lease_owner(&self) -> Option<&str> {
        self.connection_ref().ok()?.lease_owner()
    }

    /// The lease key, if connected and a lease is held.
    pub fn lease_key(&self) -> Option<&str> {
        self.connection_ref().ok()?.lease_key()
    }
}

/// What a session of either backend (RedisStateManager or RedisCaptureStateManager) reaches.
macro_rules! session_api {
    ($manager:ty) => {
        impl crate::Session<$manager> {
            /// The test's `redis::Connection`, on its database: run the code under test through it.
            pub fn conn(&mut self) -> &mut Connection {
                self.connection().conn()
            }

            /// The prefix the test's keys go under (see [`RedisConn::prefix`]).
            pub fn prefix(&self) -> &str {
                self.connection_ref().prefix()
            }

            /// `name` under the test's prefix.
            pub fn key(&self, name: &str) -> String {
                self.connection_ref().key(name)
            }

            /// The database the test's connection is on.
            pub fn database(&self) -> i64 {
                self.connection_ref().database()
            }
        }
    };
}

session_api!(RedisStateManager);
session_api!(RedisCaptureStateManager);
