//! Building the backend: [`MongoDb::from_url`], the builder methods, the checks of the
//! options an entry of `venomqa.yaml` gives, and the settings derived from them.

use std::time::Duration;

use super::options::{Isolation, MongoDbOptions};
use super::{MongoDb, DEFAULT_URL, NAME};
use crate::backend::Backend;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

impl MongoDb {
    /// The backend for `url` (a MongoDB connection string), with a database of its own per
    /// connection (see [`Isolation`]).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            MongoDbOptions::default(),
        )
    }

    /// With [`Isolation::DatabasePerLease`] (the default): the base of the database names
    /// (`vq_<base>_...`). With [`Isolation::Shared`]: the database to work in. Default: the
    /// URL's database, else `test`.
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.options.database = Some(name.into());
        self
    }

    /// Collections that nested checkpoints snapshot and `reset()` empties (default: all).
    pub fn collections_to_reset(
        mut self,
        collections: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.options.collections_to_reset = collections.into_iter().map(Into::into).collect();
        self
    }

    /// A database every test's database starts as a copy of (collections, options,
    /// indexes, documents). It is read once per process, at the first checkpoint, so a
    /// `register_setup!` function may fill it. Ignored with [`Isolation::Shared`].
    pub fn template_database(mut self, name: impl Into<String>) -> Self {
        self.options.template_database = Some(name.into());
        self
    }

    /// Where the data lives (default [`Isolation::DatabasePerLease`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.options.isolation = isolation;
        self
    }

    /// How long a connection attempt may take (connect and server selection).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long this process's lease and lock records stay valid without a heartbeat
    /// (default [`DEFAULT_LEASE_TTL`](super::DEFAULT_LEASE_TTL), at least 1 s).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.options.lease_ttl_secs = ttl.as_secs().max(1);
        self
    }

    /// With [`Isolation::Shared`]: how long the outermost checkpoint waits for another
    /// connection (in this or any other process, on any machine) to finish with the
    /// database before failing (default [`DEFAULT_SHARED_LOCK_TIMEOUT`](super::DEFAULT_SHARED_LOCK_TIMEOUT)).
    pub fn shared_lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.shared_lock_timeout_secs = timeout.as_secs();
        self.lock_timeout_ms = Some(timeout.as_millis() as u64);
        self
    }

    /// With [`Isolation::Capture`]: how long a checkpoint or a rollback goes on copying the
    /// collections another connection keeps changing before it fails (default 5 s).
    pub fn quiescence_timeout(mut self, timeout: Duration) -> Self {
        self.options.quiescence_timeout_ms = Some(timeout.as_millis() as u64);
        self
    }

    /// The options in force.
    pub fn options(&self) -> &MongoDbOptions {
        &self.options
    }

    pub(super) fn lease_ttl_duration(&self) -> Duration {
        Duration::from_secs(self.options.lease_ttl_secs.max(1))
    }

    pub(super) fn scope(&self) -> Option<&[String]> {
        (!self.options.collections_to_reset.is_empty())
            .then_some(self.options.collections_to_reset.as_slice())
    }

    pub(super) fn per_lease(&self) -> bool {
        self.options.isolation == Isolation::DatabasePerLease
    }

    pub(super) fn capture(&self) -> bool {
        self.options.isolation == Isolation::Capture
    }

    /// How long the outermost checkpoint waits for the lock of a shared database.
    pub(super) fn lock_timeout(&self) -> Duration {
        match self.lock_timeout_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_secs(self.options.shared_lock_timeout_secs),
        }
    }

    /// The backend for an entry: checks the options against each other and against the
    /// URL (what [`Backend::new`] does).
    pub(super) fn build(config: &BackendConfig, options: MongoDbOptions) -> Result<Self> {
        if options.isolation != Isolation::DatabasePerLease && options.template_database.is_some() {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.template_database", config.entry),
                "a template database needs isolation: database_per_lease (the default); with shared and capture the tests work in `database` itself",
            ));
        }
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        if options.isolation == Isolation::Capture
            && options.database.is_none()
            && url_database(url.expose()).is_none()
        {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.database", config.entry),
                "capture needs the app's database: set `database:` on the entry, or put it in the URL (mongodb://host:27017/app)",
            ));
        }
        Ok(MongoDb {
            url,
            options,
            connect_timeout: config.connect_timeout,
            lock_timeout_ms: None,
        })
    }
}

/// The database in a connection string's path (`mongodb://host/app?..` gives `app`), if any.
fn url_database(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let name = path.split('?').next().unwrap_or_default();
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    (!name.is_empty()).then(|| name.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let m = MongoDb::from_url("mongodb://ann:s3cr3t@127.0.0.1:1/app?authSource=admin").unwrap();
        let text = format!("{m:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("ann:***@127.0.0.1"), "{text}");
    }
}
