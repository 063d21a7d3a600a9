//! The [`Backend`] implementation of [`Redis`]: each hook picks the in-memory snapshot
//! (database, prefix and none isolation) or capture's spare database.

use std::time::Duration;

use super::client::{server_databases, FALLBACK_DATABASES};
use super::options::{Isolation, RedisOptions};
use super::snapshot::{self, Snapshot};
use super::{Redis, RedisConn, NAME};
use crate::backend::Backend;
use crate::capture::diff::Diff;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::util::test_threads;

impl Backend for Redis {
    const NAME: &'static str = NAME;
    type Options = RedisOptions;
    type Conn = RedisConn;
    type Mark = Snapshot;

    fn new(config: &BackendConfig, options: RedisOptions) -> Result<Self> {
        Self::build(config, options)
    }

    /// A refused, reset or dropped connection, or a server still loading its data
    /// (`LOADING`, as after a restart): the pool tries again within the connect timeout.
    /// The driver keeps its I/O error inside its own type, so the core's check of the
    /// source chain does not see it.
    fn is_transient(&self, error: &Error) -> bool {
        match error.driver::<::redis::RedisError>() {
            Some(e) => {
                e.is_connection_refusal()
                    || e.is_connection_dropped()
                    || e.code() == Some("LOADING")
            }
            None => error.is_transient(),
        }
    }

    /// Connects, pins the URL's database (prefix, none and capture isolation on a database
    /// n >= 1), leases a database or prefix (waiting up to `lease_wait_ms`), empties it, and
    /// starts the lease's renewer thread. Capture leases nothing yet: its sessions take
    /// turns at their first checkpoint.
    fn connect(&self) -> Result<RedisConn> {
        self.open()
    }

    /// The lease still held, and a `PING`.
    fn recycle(&self, conn: &mut RedisConn) -> Result<()> {
        conn.check_lease()?;
        ::redis::cmd("PING")
            .exec(&mut conn.conn)
            .map_err(|e| conn.driver_error("the health check", e))
    }

    fn is_broken(&self, conn: &RedisConn) -> bool {
        conn.lease_lost()
    }

    fn checkpoint(&self, conn: &mut RedisConn, at: Point<'_>) -> Result<Snapshot> {
        conn.check_lease()?;
        if self.capture() {
            return self.capture_checkpoint(conn, at);
        }
        let has_expiretime = conn.has_expiretime;
        let (driver, scope) = conn.scoped();
        let read = snapshot::read(driver, &scope, has_expiretime);
        read.map_err(|e| conn.driver_error(&format!("checkpoint {:?} (SCAN/DUMP)", at.name()), e))
    }

    fn rollback(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        let what = format!("rollback to checkpoint {:?}", at.name());
        match mark.spare {
            Some((db, _)) => self.capture_restore(conn, db, true, &what),
            None => conn.restore(mark, &what),
        }
    }

    /// Nothing to do on the server: the snapshot is dropped. With capture, the first
    /// checkpoint's release keeps the changes and ends the session's turn.
    fn release(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        match mark.spare {
            Some((db, _)) if at.is_outermost() => self.capture_keep(conn, db),
            _ => Ok(()),
        }
    }

    fn discard(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        let what = format!("rollback of checkpoint {:?}", at.name());
        match mark.spare {
            Some((db, _)) => self.capture_restore(conn, db, false, &what),
            None => conn.restore(mark, &what),
        }
    }

    /// With capture, gives the checkpoint's spare database back (emptied).
    fn forget(&self, conn: &mut RedisConn, mark: Snapshot) -> Result<()> {
        match mark.spare {
            Some((db, _)) => self.capture_forget(conn, db),
            None => Ok(()),
        }
    }

    /// Deletes every key under the prefix (`FLUSHDB` when the connection owns its whole
    /// database, else `SCAN` + `UNLINK` in batches), verified against the lease. With
    /// capture, every key of the URL's database, in batches, during a turn of its own.
    fn reset(&self, conn: &mut RedisConn) -> Result<()> {
        if self.capture() {
            self.take_turn(conn)?;
            let emptied = conn.empty_prefix("reset");
            return emptied.and(conn.end_capture());
        }
        if conn.owns_database() {
            conn.guarded("reset", true, &[], &[])
        } else {
            conn.check_lease()?;
            conn.empty_prefix("reset")
        }
    }

    /// In database and prefix isolation every connection has its own key space, so setup
    /// functions run on every new connection.
    fn setup_per_connection(&self) -> bool {
        matches!(
            self.options.isolation,
            Isolation::Database | Isolation::Prefix
        )
    }

    /// Database isolation: no more connections than databases to lease (a connection
    /// waiting for a database that an idle one of the same pool holds would wait in vain),
    /// counted with `CONFIG GET databases` unless `databases` says. Prefix: the test
    /// threads. None: 1.
    fn pool_size(&self) -> usize {
        match self.options.isolation {
            Isolation::Database => {
                let leasable = match self.options.databases {
                    Some(range) => range.len(),
                    None => {
                        let count = self.client().ok().and_then(|client| {
                            let mut conn = client
                                .get_connection_with_timeout(Duration::from_secs(2))
                                .ok()?;
                            conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                            server_databases(&mut conn)
                        });
                        count.unwrap_or(FALLBACK_DATABASES) - 1
                    }
                };
                test_threads().min(leasable.max(1) as usize)
            }
            Isolation::Prefix => test_threads(),
            // Capture: sessions on one database take turns anyway.
            Isolation::None | Isolation::Capture => 1,
        }
    }

    fn captures(&self, _: &RedisConn) -> bool {
        self.capture()
    }

    /// With capture, the configured URL: the app's database is in it.
    fn url(&self, _: &RedisConn) -> Result<SecretUrl> {
        if self.capture() {
            Ok(self.url.clone())
        } else {
            Err(Error::unsupported(
                NAME,
                "a URL for other connections",
                "the test's keys are rolled back only in its own key space; use `isolation: capture` with the app's database in the URL",
            ))
        }
    }

    fn diff(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<Diff> {
        match mark.spare {
            Some((db, _)) => self.capture_diff(conn, db),
            None => Err(Error::unsupported(
                NAME,
                format!("diff() since checkpoint {:?}", at.name()),
                "only capture isolation keeps a copy on the server to compare with; use `isolation: capture`",
            )),
        }
    }

    /// Empties the leased database or prefix, gives the lease back, and closes the
    /// connection.
    fn close(&self, mut conn: RedisConn) -> Result<()> {
        conn.release_lease()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RedisStateManager, DEFAULT_URL};
    use super::*;
    use crate::StateManager;

    /// The TIME + PTTL path for servers older than 7.0 (no PEXPIRETIME), against the real
    /// server with PEXPIRETIME switched off.
    #[test]
    fn ttl_fallback_without_pexpiretime() {
        let url = std::env::var("VENOMQA_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let mut m = RedisStateManager::new(Redis::from_url(&url).unwrap());
        m.connect().expect("the Redis server must be running");
        m.connection().unwrap().has_expiretime = false;
        ::redis::cmd("SET")
            .arg("vq_redis_unit")
            .arg("v")
            .arg("PX")
            .arg(100_000)
            .exec(m.conn())
            .unwrap();
        ::redis::cmd("SET")
            .arg("vq_redis_unit_forever")
            .arg("v")
            .exec(m.conn())
            .unwrap();
        m.checkpoint("a").unwrap();
        ::redis::cmd("PERSIST")
            .arg("vq_redis_unit")
            .exec(m.conn())
            .unwrap();
        ::redis::cmd("PEXPIRE")
            .arg("vq_redis_unit_forever")
            .arg(5)
            .exec(m.conn())
            .unwrap();
        m.rollback("a").unwrap();
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg("vq_redis_unit")
            .query(m.conn())
            .unwrap();
        assert!(ttl <= 100_000 && ttl > 70_000, "{ttl}");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg("vq_redis_unit_forever")
            .query(m.conn())
            .unwrap();
        assert_eq!(ttl, -1);
        m.disconnect().unwrap();
    }
}
