//! The keys of a `mongodb` entry in `venomqa.yaml`.

use serde::Deserialize;

/// Where a connection's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Isolation {
    /// A private database per connection (per lease), created empty (or from the template)
    /// for every test and dropped when the test ends. The default.
    #[default]
    #[serde(alias = "per_lease")]
    DatabasePerLease,
    /// The configured `database` itself, snapshotted at every checkpoint: tests using it
    /// take turns (pool size 1, and a lock across processes), and whatever else writes to
    /// it is rolled back too.
    Shared,
    /// Capture: the configured `database` (or the URL's) itself, shared with code under test
    /// in other processes. A checkpoint copies every collection server-side (`$out`) into a
    /// snapshot database; a rollback restores only the collections that changed, whoever
    /// changed them. Tests take turns, across processes too. See the
    /// [capture section](super#capture).
    Capture,
}

/// The keys of a `mongodb` entry in `venomqa.yaml`, besides the common ones (`url`,
/// `pool_size`, `connect_timeout_ms`, ...).
///
/// ```yaml
/// backends:
///   mongodb:
///     database: shop                 # base of the per-lease database names
///     template_database: shop_seed   # every test's database starts as a copy of it
///     collections_to_reset: [orders] # nested checkpoints and reset() cover only these
///     lease_ttl_secs: 600
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MongoDbOptions {
    /// With [`Isolation::DatabasePerLease`]: the base of the database names
    /// (`vq_<base>_...`). With [`Isolation::Shared`]: the database to work in. Default: the
    /// URL's database, else `test`.
    pub database: Option<String>,
    /// Collections that nested checkpoints snapshot and `reset()` empties (default: all).
    pub collections_to_reset: Vec<String>,
    /// A database every test's database starts as a copy of (collections, options,
    /// indexes, documents), read once per process at the first checkpoint. Needs
    /// [`Isolation::DatabasePerLease`].
    pub template_database: Option<String>,
    /// Where the data lives (default [`Isolation::DatabasePerLease`]).
    pub isolation: Isolation,
    /// How long this process's lease and lock records stay valid without a heartbeat
    /// (default 600, at least 1): how long another machine waits before it drops the
    /// databases of a process that died without cleaning up.
    pub lease_ttl_secs: u64,
    /// With [`Isolation::Shared`] and [`Isolation::Capture`]: how long the outermost
    /// checkpoint waits for another test (in this or any other process, on any machine) to
    /// finish with the database (default 300).
    pub shared_lock_timeout_secs: u64,
    /// With [`Isolation::Capture`]: how long a checkpoint or a rollback goes on copying the
    /// collections that another connection keeps changing, before it fails naming them
    /// (default 5000).
    pub quiescence_timeout_ms: Option<u64>,
}

impl Default for MongoDbOptions {
    fn default() -> Self {
        MongoDbOptions {
            database: None,
            collections_to_reset: Vec::new(),
            template_database: None,
            isolation: Isolation::DatabasePerLease,
            lease_ttl_secs: super::DEFAULT_LEASE_TTL.as_secs(),
            shared_lock_timeout_secs: super::DEFAULT_SHARED_LOCK_TIMEOUT.as_secs(),
            quiescence_timeout_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendConfig;

    #[test]
    fn keys_and_the_legacy_options_map() {
        let legacy: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "{isolation: shared, lease_ttl_secs: \"60\", shared_lock_timeout_secs: \"5\"}",
        )
        .unwrap();
        let o = BackendConfig::new("mongodb")
            .with_option("database", "shop")
            .with_option("collections_to_reset", vec!["orders"])
            .with_option("options", legacy)
            .options::<MongoDbOptions>()
            .unwrap();
        assert_eq!(o.database.as_deref(), Some("shop"));
        assert_eq!(o.collections_to_reset, ["orders"]);
        assert_eq!(o.isolation, Isolation::Shared);
        assert_eq!((o.lease_ttl_secs, o.shared_lock_timeout_secs), (60, 5));
        let per_lease = BackendConfig::new("mongodb")
            .with_option("isolation", "per_lease")
            .options::<MongoDbOptions>()
            .unwrap();
        assert_eq!(per_lease.isolation, Isolation::DatabasePerLease);
        let err = BackendConfig::new("mongodb")
            .with_option("isolation", "replica")
            .options::<MongoDbOptions>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("backends.mongodb.isolation"), "{err}");
    }
}
