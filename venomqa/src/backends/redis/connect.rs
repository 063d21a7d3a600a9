//! Opening a connection: a `PING`, the probe for `PEXPIRETIME`, the pin of the URL's
//! database, and the lease of the test's database or prefix, emptied.

use super::client::open_connection;
use super::lease::{self, Empty, Held};
use super::options::Isolation;
use super::{Redis, RedisConn, CAPTURE_PIN_VALUE, NAME, PIN_VALUE};
use crate::error::{Error, Result};

impl Redis {
    /// A new connection, with the pin and the lease its isolation needs (what
    /// [`Backend::connect`](crate::Backend::connect) does).
    pub(super) fn open(&self) -> Result<RedisConn> {
        if self.options.isolation == Isolation::Database && self.home_db != 0 {
            return Err(Error::unsupported(
                NAME,
                format!("database {} in the URL with database isolation", self.home_db),
                "drop the database from the URL, lease some with databases: \"3-5\", or use the URL's database as it is with isolation: none",
            ));
        }
        let client = self.client()?;
        let mut conn = open_connection(&client, &self.url, self.connect_timeout)?;
        ::redis::cmd("PING")
            .exec(&mut conn)
            .map_err(|e| Error::connect(NAME, self.url.expose(), e))?;
        let has_expiretime = ::redis::cmd("PEXPIRETIME")
            .arg("venomqa:probe")
            .query::<i64>(&mut conn)
            .is_ok();
        let isolation = self.options.isolation;
        if isolation == Isolation::Capture && !has_expiretime {
            return Err(Error::unsupported(
                NAME,
                format!("capture on {} (no PEXPIRETIME)", self.url),
                "capture needs Redis 7.0 or newer (COPY, PEXPIRETIME, SWAPDB in scripts); use isolation: database",
            ));
        }
        // Prefix, none and capture isolation keep data (and prefix leases) in the URL's
        // database: pin it first, so that database isolation never leases and empties it.
        // A capture pin excludes the others: a rollback swaps the whole database.
        let pin = if isolation != Isolation::Database && self.home_db >= 1 {
            let value = if isolation == Isolation::Capture {
                CAPTURE_PIN_VALUE
            } else {
                PIN_VALUE
            };
            Some(self.pin_home(&client, &mut conn, value)?)
        } else {
            None
        };
        let mut conn = RedisConn {
            conn,
            client,
            url: self.url.clone(),
            isolation,
            home_db: self.home_db,
            prefix: self.options.key_prefix.clone(),
            lease: None,
            pin,
            capture: None,
            has_expiretime,
            batch_size: self.options.batch_size,
            connect_timeout: self.connect_timeout,
        };
        // From here on, dropping `conn` gives back whatever it holds.
        if matches!(isolation, Isolation::None | Isolation::Capture) {
            return Ok(conn);
        }
        let held = self.acquire(
            &conn.client,
            &mut conn.conn,
            isolation == Isolation::Database,
        )?;
        let database = isolation == Isolation::Database;
        if !database {
            conn.prefix = format!("{}{{vq{}}}:", self.options.key_prefix, held.slot);
        }
        lease::hold(Held {
            url: self.url.clone(),
            key: held.key.clone(),
            key_db: held.db,
            owner: held.owner.clone(),
            empty: if database {
                Empty::Database(held.slot)
            } else {
                Empty::Prefix(conn.prefix.clone())
            },
            pid: std::process::id(),
            lost: held.lost.clone(),
        });
        let slot = held.slot;
        conn.lease = Some(held);
        if database {
            ::redis::cmd("SELECT")
                .arg(slot)
                .exec(&mut conn.conn)
                .map_err(|e| Error::backend(NAME, format!("SELECT {slot}"), e))?;
        } else {
            // Whatever a crashed holder of this slot left behind, verified on the server.
            conn.empty_prefix("emptying the leased prefix")?;
        }
        Ok(conn)
    }
}
