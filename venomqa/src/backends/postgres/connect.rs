//! How the PostgreSQL backend is built from its entry (the URL parsed, never shown with
//! its password) and connects, within the connect timeout and, over TCP, with the
//! [`stall`](super::stall) guard on reads and writes.

use ::postgres::config::{Host, SslMode, SslNegotiation};
use ::postgres::{Client, Config, NoTls};
use parking_lot::Mutex;

use super::errors::DriverError;
use super::stall;
use super::{
    Postgres, PostgresIsolation, PostgresOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT,
    DEFAULT_URL, NAME,
};
use crate::backends::sql_capture::{io_timeout, lock_timeout, needs_database};
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

impl Postgres {
    /// The backend of `config`: parses the URL (never showing the password of a bad one).
    pub(super) fn build(config: &BackendConfig, options: PostgresOptions) -> Result<Self> {
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        let mut parsed = parse_url(url.expose())?;
        let timeout = config
            .connect_timeout
            .or_else(|| parsed.get_connect_timeout().copied())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        parsed.connect_timeout(timeout);
        if options.isolation == PostgresIsolation::Capture && parsed.get_dbname().is_none() {
            return Err(needs_database(config, "postgres://user@host/database"));
        }
        Ok(Postgres {
            url,
            config: parsed,
            timeout,
            io_timeout: io_timeout(config, DEFAULT_IO_TIMEOUT),
            options,
            sequence_list: Mutex::new(None),
            capture: Mutex::new(None),
            lock_timeout: lock_timeout(config),
        })
    }

    /// Connects within the connect timeout, the startup and authentication handshake
    /// included; with `create_database`, creates a missing database first.
    pub(super) fn open(&self) -> Result<Client> {
        match self.attempt(&self.config) {
            Err(Failed { missing: true, .. }) if self.options.create_database => {
                self.create_database()?;
                self.attempt(&self.config).map_err(|f| f.error)
            }
            other => other.map_err(|f| f.error),
        }
    }

    /// Creates the URL's database from the server's `postgres` database. Creators take
    /// turns under an advisory lock (PostgreSQL refuses two `CREATE DATABASE` copying
    /// `template1` at once), and one that finds it made by another is done; a copy
    /// refused because another tool is copying the template is tried again, for up to
    /// the connect timeout.
    fn create_database(&self) -> Result<()> {
        use ::postgres::error::SqlState;
        let name = self.config.get_dbname().unwrap_or_default().to_owned();
        let operation = || format!("creating database {name:?} (create_database: true)");
        let fail = |e: ::postgres::Error| {
            Error::backend(
                NAME,
                operation(),
                DriverError::new(e, "; the user needs the CREATEDB privilege, or create the database yourself and turn create_database off"),
            )
        };
        let mut admin = self.config.clone();
        admin.dbname("postgres");
        let mut client = self.attempt(&admin).map_err(|f| f.error)?;
        client
            .batch_execute("SELECT pg_advisory_lock(7345100)")
            .map_err(fail)?;
        let create = format!("CREATE DATABASE {}", crate::sql::quote_double(NAME, &name)?);
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            let exists = client
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .map_err(fail)?
                .is_some();
            if exists {
                return Ok(());
            }
            match client.batch_execute(&create) {
                Ok(()) => {
                    tracing::info!(target: "venomqa", database = %name, "created the entry's database (create_database: true)");
                    return Ok(());
                }
                Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => return Ok(()),
                Err(e)
                    if e.code() == Some(&SqlState::OBJECT_IN_USE)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(fail(e)),
            }
        }
    }

    /// One connection attempt with `config`; a missing database is told apart.
    fn attempt(&self, config: &Config) -> std::result::Result<Client, Failed> {
        let url = self.url.expose();
        // The driver's timeout bounds only the socket connect, not the startup and
        // authentication exchange (a server that accepts and never answers would block
        // forever), so the whole attempt runs on a helper thread and is abandoned when the
        // timeout passes.
        let config = config.clone();
        let timeout = self.timeout;
        let guard = self.io_timeout.filter(|_| stall_guard_applies(&config));
        let attempt =
            crate::backends::within("venomqa-postgres-connect", timeout, move || match guard {
                // Reads and writes that stall fail after the I/O timeout (see stall.rs).
                Some(timeout) => {
                    let mut config = config;
                    config
                        .ssl_mode(SslMode::Require)
                        .ssl_negotiation(SslNegotiation::Direct);
                    config.connect(stall::Guard { timeout })
                }
                None => config.connect(NoTls),
            })
            .map_err(|e| Failed::other(Error::connect(NAME, url, e)))?;
        match attempt {
            Some(Ok(client)) => Ok(client),
            Some(Err(e)) => {
                let missing = e.code() == Some(&::postgres::error::SqlState::INVALID_CATALOG_NAME);
                let hint = if missing && !self.options.create_database {
                    format!(" (connect timeout {} ms); create it, or set create_database: true", timeout.as_millis())
                } else {
                    format!(" (connect timeout {} ms)", timeout.as_millis())
                };
                Err(Failed {
                    error: Error::connect(NAME, url, DriverError::new(e, hint)),
                    missing,
                })
            }
            None => Err(Failed::other(Error::connect(
                NAME,
                url,
                format!(
                    "no completed startup and authentication handshake within the connect timeout ({} ms): \
                     the host did not answer, or is not a PostgreSQL server",
                    timeout.as_millis()
                ),
            ))),
        }
    }
}

/// A failed connection attempt, and whether the database was missing (SQLSTATE 3D000).
struct Failed {
    error: Error,
    missing: bool,
}

impl Failed {
    fn other(error: Error) -> Self {
        Failed {
            error,
            missing: false,
        }
    }
}

fn parse_url(url: &str) -> Result<Config> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        // Not a URL: never show it, whatever secrets it holds.
        return Err(Error::connect(
            NAME,
            "(a connection string that is not a URL; not shown)",
            "the URL must start with postgres:// or postgresql:// (key=value strings are not accepted)",
        ));
    }
    url.parse::<Config>().map_err(|e| {
        Error::connect(
            NAME,
            url,
            DriverError::new(
                e,
                "; the form is postgres://user:password@host:port/database",
            ),
        )
    })
}

/// Whether the I/O timeout can watch connections of `config`: every host is reached over
/// TCP (a Unix socket has no host name to pass through the TLS hook the watch uses), and
/// the URL does not ask for TLS (`sslmode=require`, which this backend does not speak: the
/// connection then fails as before, instead of going on in plain text).
fn stall_guard_applies(config: &Config) -> bool {
    config.get_ssl_mode() != SslMode::Require
        && !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(|h| matches!(h, Host::Tcp(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        for url in ["postgres://u:pw@h:5433/db", "postgresql://u:pw@h:5433/db"] {
            let c = parse_url(url).unwrap();
            assert_eq!(c.get_ports(), [5433]);
        }
        let e = parse_url("host=h password=hunter2")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("postgres://"), "{e}");
        let e = parse_url("postgres://u:hunter2@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("invalid connection string"), "{e}");
    }
}

#[cfg(test)]
mod properties {
    use crate::backend::Backend;
    use crate::config::BackendConfig;
    use crate::postgres::{Postgres, PostgresOptions};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text as a URL: a backend or an error, never a panic, and never the
        /// password.
        #[test]
        fn any_url_builds_or_errs_without_the_password(
            prefix in prop_oneof![Just("postgres://".to_owned()), Just("postgresql://".to_owned()), Just("".to_owned()), Just("host=h password=".to_owned()), "\\PC{0,8}"],
            user in "\\PC{0,8}",
            password in "[^\\x00]{3,16}",
            rest in "\\PC{0,40}",
        ) {
            let url = format!("{prefix}{user}:{password}@{rest}");
            let config = BackendConfig::new("postgres").with_url(url.as_str());
            match Postgres::new(&config, PostgresOptions::default()) {
                Ok(backend) => {
                    let shown = format!("{backend:?}");
                    prop_assert!(!shown.contains(&password), "{}", shown);
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(!text.contains(&password), "{}", text);
                    prop_assert!(!text.contains('\n'), "{}", text);
                }
            }
        }
    }
}
