//! Taking a lease (a database or a prefix slot of its own, or a capture spare) and pinning
//! the URL's database, waiting up to `lease_wait_ms` for one to come free.

use std::time::{Duration, Instant};

use ::redis::{Client, Connection, RedisError};

use super::client::{server_databases, Hinted, FALLBACK_DATABASES};
use super::lease::{self, Lease};
use super::options::Isolation;
use super::{Redis, CAPTURE_PIN_VALUE, LEASE_KEY_PREFIX, NAME, PIN_VALUE};
use crate::error::{Error, Result};

impl Redis {
    /// The databases to lease: the configured range, else all but database 0.
    pub(super) fn lease_range(&self, conn: &mut Connection) -> (i64, i64) {
        if let Some(r) = self.options.databases {
            return (r.first, r.last);
        }
        let count = server_databases(conn).unwrap_or(FALLBACK_DATABASES);
        (1, count - 1)
    }

    /// Takes a lease of a database (`database`: database isolation, or a capture spare) or
    /// of a prefix: the ACQUIRE script leases the first free slot (and empties a leased
    /// database), waiting up to `lease_wait_ms`. A database lease leaves database 0
    /// selected.
    pub(super) fn acquire(
        &self,
        client: &Client,
        conn: &mut Connection,
        database: bool,
    ) -> Result<Lease> {
        let capture = self.options.isolation == Isolation::Capture;
        if database {
            // The lease keys live in database 0.
            ::redis::cmd("SELECT")
                .arg(0)
                .exec(conn)
                .map_err(lease_error)?;
        }
        let (first, last, key_base, suffix, clean) = if database {
            let (first, last) = self.lease_range(conn);
            (first, last, format!("{LEASE_KEY_PREFIX}db:"), "", "1")
        } else {
            (
                0,
                i64::from(self.options.prefix_slots) - 1,
                format!("{LEASE_KEY_PREFIX}prefix:{}{{vq", self.options.key_prefix),
                "}",
                "0",
            )
        };
        let owner = crate::backends::owner::me().lease_token();
        let ttl = self.lease_ttl_duration();
        let wait = self.lease_wait_duration();
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        let script = ::redis::Script::new(lease::ACQUIRE);
        // Database 0 holds the lease keys and is never leased.
        let first_leasable = if database { first.max(1) } else { first };
        if first_leasable > last {
            return Err(Error::unsupported(
                NAME,
                format!("{} on {} (databases {first}..={last}, none leasable)", if capture { "capture's spare databases" } else { "database isolation" }, self.url),
                "the server has a single database (or `databases` holds only database 0, which keeps the leases); use isolation: prefix, a key prefix per test in one database",
            ));
        }
        loop {
            let got = script
                .arg(&owner)
                .arg(self.options.lease_ttl_ms)
                .arg(first_leasable)
                .arg(last)
                .arg(&key_base)
                .arg(clean)
                .arg(suffix)
                .invoke::<i64>(conn)
                .map_err(lease_error)?;
            if got >= 0 {
                let key = format!("{key_base}{got}{suffix}");
                let db = if database { 0 } else { self.home_db };
                return Lease::start(client, got, db, key, owner, ttl, self.connect_timeout);
            }
            let waited = started.elapsed();
            if waited >= wait {
                let (what, way_out) = if capture {
                    (
                        format!("all databases {first}..={last} (capture needs a spare one per checkpoint)"),
                        "nest fewer checkpoints, widen `databases`",
                    )
                } else if database {
                    (
                        format!("all databases {first}..={last}"),
                        "use isolation: prefix",
                    )
                } else {
                    (
                        format!("all {} prefix slots", self.options.prefix_slots),
                        "raise prefix_slots",
                    )
                };
                return Err(Error::backend(
                    NAME,
                    "leasing an isolated key space",
                    format!(
                        "{what} are leased by other tests or processes ({key_base}*) and none came free within {} ms; lower pool_size, {way_out}, or raise lease_wait_ms",
                        waited.as_millis()
                    ),
                ));
            }
            std::thread::sleep(pause.min(wait - waited));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Pins the home database `n >= 1` of a prefix/none connection: `venomqa:lease:db:<n>`
    /// in database 0 holds [`PIN_VALUE`] (shared by every such connection, each renewing it),
    /// so database isolation never leases (and empties) it. Waits up to `lease_wait_ms`
    /// while a database-isolation connection holds it.
    pub(super) fn pin_home(
        &self,
        client: &Client,
        conn: &mut Connection,
        value: &str,
    ) -> Result<Lease> {
        let key = format!("{LEASE_KEY_PREFIX}db:{}", self.home_db);
        let started = Instant::now();
        loop {
            let got: (i64,) = ::redis::pipe()
                .cmd("EVAL")
                .arg(lease::PIN)
                .arg(1)
                .arg(&key)
                .arg(value)
                .arg(self.options.lease_ttl_ms)
                .cmd("SELECT")
                .arg(self.home_db)
                .ignore()
                .query(conn)
                .map_err(lease_error)?;
            if got.0 == 1 {
                return Lease::start(
                    client,
                    self.home_db,
                    0,
                    key,
                    value.to_owned(),
                    self.lease_ttl_duration(),
                    self.connect_timeout,
                );
            }
            if started.elapsed() >= self.lease_wait_duration() {
                let holder: (Option<String>,) = ::redis::pipe()
                    .cmd("SELECT")
                    .arg(0)
                    .ignore()
                    .cmd("GET")
                    .arg(&key)
                    .cmd("SELECT")
                    .arg(self.home_db)
                    .ignore()
                    .query(conn)
                    .unwrap_or((None,));
                let holder = holder_of(holder.0.as_deref().unwrap_or_default());
                return Err(Error::backend(
                    NAME,
                    "pinning the URL's database",
                    format!(
                        "database {db} (the URL's) is held by {holder}; waited {} ms. Keep database isolation (`databases:`) and the other isolations off database {db}, or use another database in the URL",
                        started.elapsed().as_millis(),
                        db = self.home_db,
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An error of a lease script, with the ways out.
pub(super) fn lease_error(error: RedisError) -> Error {
    Error::backend(
        NAME,
        "leasing an isolated key space",
        Hinted {
            error,
            hint: "if the server refuses SELECT or has fewer databases, set databases: \"1-N\" or isolation: prefix; if it refuses EVAL, isolation: none",
        },
    )
}

/// The capture pin's value, for messages about who holds a database.
pub(super) fn holder_of(value: &str) -> &'static str {
    if value == CAPTURE_PIN_VALUE {
        "capture isolation"
    } else if value == PIN_VALUE {
        "prefix or none isolation"
    } else {
        "a test in database isolation, which empties it"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_tokens_are_unique() {
        let me = crate::backends::owner::me();
        assert_ne!(me.lease_token(), me.lease_token());
    }
}
