//! Building the backend: [`Redis::from_url`], the builder methods, and the checks of the
//! options an entry of `venomqa.yaml` gives.

use std::time::Duration;

use super::client::client;
use super::options::{self, CaptureProof, Databases, Isolation, RedisOptions};
use super::{Redis, DEFAULT_CONNECT_TIMEOUT, DEFAULT_URL, NAME};
use crate::backend::Backend;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

impl Redis {
    /// The backend for `url` (`redis://[[user]:password@]host[:port][/db]`, or
    /// `redis+unix:///path[?db=n]`), with database isolation (where the URL must not name a
    /// database other than 0).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            RedisOptions::default(),
        )
    }

    /// How tests are kept apart (default [`Isolation::Database`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.options.isolation = isolation;
        self
    }

    /// The prefix of the keys checkpoints and `reset()` cover (default: every key). In
    /// prefix isolation, the base of each lease's prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.key_prefix = prefix.into();
        self
    }

    /// How long a lease lives without renewal (default 30 s, at least 300 ms): how long the
    /// database of a crashed process stays unusable. It is renewed every third of that.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.options.lease_ttl_ms = (ttl.as_millis() as u64).max(options::MIN_LEASE_TTL_MS);
        self
    }

    /// How long `connect()` waits for a free database or slot before failing (default 60 s).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.options.lease_wait_ms = wait.as_millis() as u64;
        self
    }

    /// The databases to lease, inclusive (default: every database but 0, which holds the
    /// leases). An empty range (`last < first`) is ignored.
    pub fn databases(mut self, first: i64, last: i64) -> Self {
        if let Ok(range) = Databases::new(first, last) {
            self.options.databases = Some(range);
        }
        self
    }

    /// How many prefixes prefix isolation leases from (default 1024).
    pub fn prefix_slots(mut self, n: u32) -> Self {
        self.options.prefix_slots = n.max(1);
        self
    }

    /// Keys per pipelined batch of `SCAN`/`DUMP`/`UNLINK` (default 1000).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.options.batch_size = n.max(1);
        self
    }

    /// Capture: how a rollback proves the spare database still holds the checkpoint
    /// (default [`CaptureProof::Count`]).
    pub fn capture_proof(mut self, proof: CaptureProof) -> Self {
        self.options.capture_proof = proof;
        self
    }

    /// How long opening a connection may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The options in force.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    pub(super) fn capture(&self) -> bool {
        self.options.isolation == Isolation::Capture
    }

    pub(super) fn lease_ttl_duration(&self) -> Duration {
        Duration::from_millis(self.options.lease_ttl_ms)
    }

    pub(super) fn lease_wait_duration(&self) -> Duration {
        Duration::from_millis(self.options.lease_wait_ms)
    }

    /// The backend for an entry: checks the options against each other and against the
    /// URL (what [`Backend::new`] does).
    pub(super) fn build(config: &BackendConfig, mut options: RedisOptions) -> Result<Self> {
        let key = |k: &str| format!("backends.{}.{k}", config.entry);
        if options.lease_ttl_ms < options::MIN_LEASE_TTL_MS {
            return Err(Error::config(
                &config.source,
                key("lease_ttl_ms"),
                format!(
                    "{} is too short; use at least {}",
                    options.lease_ttl_ms,
                    options::MIN_LEASE_TTL_MS
                ),
            ));
        }
        if options.prefix_slots == 0 {
            return Err(Error::config(
                &config.source,
                key("prefix_slots"),
                "must be at least 1",
            ));
        }
        options.batch_size = options.batch_size.max(1);
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        let home_db = client(&url)?.get_connection_info().redis_settings().db();
        if options.isolation == Isolation::Capture {
            if home_db < 1 {
                return Err(Error::config(
                    &config.source,
                    key("url"),
                    "capture needs the app's database in the URL, 1 or higher (redis://host:6379/1): database 0 holds venomqa's leases and cannot be swapped",
                ));
            }
            if !options.key_prefix.is_empty() {
                return Err(Error::config(
                    &config.source,
                    key("key_prefix"),
                    "capture covers the URL's whole database; remove key_prefix",
                ));
            }
        }
        Ok(Redis {
            url,
            home_db,
            options,
            connect_timeout: config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_debug_hides_the_password() {
        let r = Redis::from_url("redis://user:s3cret-pw@host:6379").unwrap();
        let text = format!("{r:?}");
        assert!(
            !text.contains("s3cret-pw") && text.contains("host"),
            "{text}"
        );
    }
}
