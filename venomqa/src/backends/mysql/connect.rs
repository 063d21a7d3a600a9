//! Connections of the MySQL backend: [`MySqlConn`] (the driver's connection and what the
//! backend tracks about it), and how the backend is built from its entry and connects.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use ::mysql::OptsBuilder;

use super::capture::Capture;
use super::errors::Described;
use super::url::parse_url;
use super::{
    driver, MySql, MySqlIsolation, MySqlOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT,
    DEFAULT_URL, NAME,
};
use crate::backends::sql_capture::{io_timeout, lock_timeout, needs_database};
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

/// One connection of the MySQL backend: the driver's `mysql::Conn` (it derefs to it, so
/// `connection.query_drop(..)` works) and what the backend tracks about it.
pub struct MySqlConn {
    pub(super) conn: driver::Conn,
    /// The backend's transaction (opened by the outermost checkpoint) has not been ended
    /// by the backend: a setup script must not reset the session, and `reset()` must end
    /// it the way it was opened.
    pub(super) transaction_open: bool,
    /// Capture isolation: the installation found (or made) by the last session's first
    /// checkpoint.
    pub(super) capture: Option<Capture>,
}

impl MySqlConn {
    /// The driver's connection.
    pub fn driver(&mut self) -> &mut driver::Conn {
        &mut self.conn
    }
}

impl Deref for MySqlConn {
    type Target = driver::Conn;
    fn deref(&self) -> &driver::Conn {
        &self.conn
    }
}

impl DerefMut for MySqlConn {
    fn deref_mut(&mut self) -> &mut driver::Conn {
        &mut self.conn
    }
}

impl MySql {
    /// The backend of `config`: parses the URL (a bad one is an [`Error::Config`] naming
    /// it, password masked).
    pub(super) fn build(config: &BackendConfig, options: MySqlOptions) -> Result<Self> {
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        let parsed = parse_url(url.expose()).map_err(|why| {
            // Shown (redacted) only with its scheme: without it, where the password ends is
            // a guess.
            let raw = url.expose();
            let shown = if raw.starts_with("mysql://") || raw.starts_with("mariadb://") {
                url.to_string()
            } else {
                "the URL (not shown)".to_owned()
            };
            Error::config(
                &config.source,
                format!("backends.{}.url", config.entry),
                format!("{shown} is not a MySQL URL: {why}; write mysql://user:password@host:port/database, with @ : / in the password as %40 %3A %2F"),
            )
        })?;
        let connect_timeout = options
            .connect_timeout_ms
            .map(Duration::from_millis)
            .or(config.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let database = parsed.opts.get_db_name().map(str::to_owned);
        let io_timeout = io_timeout(config, DEFAULT_IO_TIMEOUT);
        if options.isolation == MySqlIsolation::Capture && database.is_none() {
            return Err(needs_database(config, "mysql://user@host/database"));
        }
        Ok(MySql {
            database,
            url,
            connect_timeout,
            url_connect_timeout: parsed.connect_timeout,
            io_timeout,
            lock_timeout: lock_timeout(config),
            options,
        })
    }

    /// Connects within the connect timeout, the handshake included (the driver's own
    /// timeout bounds only the TCP connect, so the attempt runs on a helper thread).
    pub(super) fn open(&self) -> Result<MySqlConn> {
        let url = self.url.expose();
        let parsed = parse_url(url).map_err(|why| Error::connect(NAME, url, why))?;
        let timeout = parsed.connect_timeout.unwrap_or(self.connect_timeout);
        let tcp_timeout = parsed.opts.get_tcp_connect_timeout().or(Some(timeout));
        // Reads and writes that stall (a server that accepted and stopped answering) fail
        // after the I/O timeout instead of hanging the test, unless the URL sets its own.
        let read_timeout = parsed.opts.get_read_timeout().copied().or(self.io_timeout);
        let write_timeout = parsed.opts.get_write_timeout().copied().or(self.io_timeout);
        let opts = OptsBuilder::from_opts(parsed.opts)
            .tcp_connect_timeout(tcp_timeout)
            .read_timeout(read_timeout)
            .write_timeout(write_timeout);
        let attempt = crate::backends::within("venomqa-mysql-connect", timeout, move || {
            driver::Conn::new(opts)
        })
        .map_err(|e| Error::connect(NAME, url, e))?;
        match attempt {
            Some(Ok(conn)) => Ok(MySqlConn {
                conn,
                transaction_open: false,
                capture: None,
            }),
            Some(Err(e)) => Err(Error::connect(NAME, url, Described::new(e))),
            None => Err(Error::connect(
                NAME,
                url,
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no completed handshake within the connect timeout of {} ms",
                        timeout.as_millis()
                    ),
                ),
            )),
        }
    }
}
