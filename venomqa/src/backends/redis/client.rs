//! The driver's clients and connections: opening them with their timeouts, the errors of
//! a bad URL, and what the server says about its databases.

use std::fmt;
use std::time::Duration;

use ::redis::{Client, Connection, RedisError};

use super::{Redis, NAME};
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The number of databases assumed when `CONFIG GET databases` is refused (Redis' default).
pub(super) const FALLBACK_DATABASES: i64 = 16;

/// A driver error with what to do about it.
#[derive(Debug)]
pub(super) struct Hinted {
    pub(super) error: RedisError,
    pub(super) hint: &'static str,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.error, self.hint)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl Redis {
    pub(super) fn client(&self) -> Result<Client> {
        client(&self.url)
    }
}

/// A client for `url` (no I/O), or a connect error saying what a Redis URL looks like.
pub(super) fn client(url: &SecretUrl) -> Result<Client> {
    Client::open(url.expose()).map_err(|error| {
        Error::connect(
            NAME,
            url.expose(),
            Hinted {
                error,
                hint: "expected redis://[[user]:password@]host[:port][/db] or redis+unix:///path",
            },
        )
    })
}

/// `CONFIG GET databases`, if the server answers it.
pub(super) fn server_databases(conn: &mut Connection) -> Option<i64> {
    let reply: Vec<String> = ::redis::cmd("CONFIG")
        .arg("GET")
        .arg("databases")
        .query(conn)
        .ok()?;
    reply.get(1)?.parse().ok().filter(|&n: &i64| n >= 1)
}

/// A connection with its timeouts set.
pub(super) fn open_connection(
    client: &Client,
    url: &SecretUrl,
    timeout: Duration,
) -> Result<Connection> {
    let conn = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| Error::connect(NAME, url.expose(), e))?;
    conn.set_read_timeout(Some(COMMAND_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(COMMAND_TIMEOUT)))
        .map_err(|e| Error::connect(NAME, url.expose(), e))?;
    Ok(conn)
}
