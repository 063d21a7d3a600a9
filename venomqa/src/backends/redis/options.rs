//! The keys of a `redis` entry in `venomqa.yaml`.

use serde::Deserialize;

/// How tests are kept apart (see the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Isolation {
    /// A logical database per connection (`SELECT n`), leased in database 0.
    #[default]
    #[serde(alias = "db")]
    Database,
    /// A key prefix per connection, leased in the URL's database: for a single server or
    /// proxy without `SELECT` or with one database (not Redis Cluster).
    Prefix,
    /// The URL's database as it is, without a lease.
    None,
    /// Capture: the URL's database `n >= 1` as it is, shared with code under test in other
    /// processes. A checkpoint `COPY`s every key into a spare database (leased like database
    /// isolation's), a rollback `SWAPDB`s it back, so whatever any connection wrote to
    /// database `n` is undone and the app's open connections see the restored data at
    /// once. Sessions on one database take turns, across processes too. See the
    /// [capture section](super#capture).
    Capture,
}

pub use crate::capture::proof::CaptureProof;

/// The databases database isolation leases, inclusive: `"3-5"`, `"7"`, `7`, or
/// `{first: 3, last: 5}` in `venomqa.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DatabasesRepr")]
pub struct Databases {
    /// The first database to lease.
    pub first: i64,
    /// The last database to lease.
    pub last: i64,
}

impl Databases {
    /// `first..=last`, if it is a range of database numbers.
    pub fn new(first: i64, last: i64) -> Result<Self, String> {
        if first < 0 || last < first {
            return Err(format!(
                "{first}-{last} is not a database range such as \"1-15\" or \"7\""
            ));
        }
        Ok(Databases { first, last })
    }

    /// How many databases the range holds.
    pub fn len(&self) -> i64 {
        self.last - self.first + 1
    }

    /// Never: a range holds at least one database.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The forms `databases:` may take.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a database range such as \"1-15\", \"7\" or {first: 1, last: 15}"
)]
enum DatabasesRepr {
    One(i64),
    Text(String),
    Range { first: i64, last: i64 },
}

impl TryFrom<DatabasesRepr> for Databases {
    type Error = String;
    fn try_from(repr: DatabasesRepr) -> Result<Self, String> {
        match repr {
            DatabasesRepr::One(n) => Databases::new(n, n),
            DatabasesRepr::Range { first, last } => Databases::new(first, last),
            DatabasesRepr::Text(text) => {
                let bad = || format!("{text:?} is not a database range such as \"1-15\" or \"7\"");
                let (a, b) = text.split_once('-').unwrap_or((&text, &text));
                let (a, b) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                Databases::new(a, b).map_err(|_| bad())
            }
        }
    }
}

/// The keys of a `redis` entry in `venomqa.yaml`, besides the common ones (`url`,
/// `pool_size`, `connect_timeout_ms` (default 5 s), ...).
///
/// ```yaml
/// backends:
///   redis:
///     isolation: prefix          # database (default), prefix or none
///     key_prefix: "app:"
///     lease_ttl_ms: 10000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedisOptions {
    /// How tests are kept apart (default [`Isolation::Database`]).
    pub isolation: Isolation,
    /// The prefix of the keys checkpoints and `reset()` cover (default: every key). In
    /// prefix isolation, the base of each lease's prefix.
    pub key_prefix: String,
    /// The databases database isolation leases, and capture's spare databases come from
    /// (default: every database but 0, counted with `CONFIG GET databases`, 16 if refused).
    pub databases: Option<Databases>,
    /// How many prefixes prefix isolation leases from (default 1024, at least 1).
    pub prefix_slots: u32,
    /// How long a lease lives without renewal (default 30000, at least 300): how long the
    /// database of a crashed process stays unusable. It is renewed every third of that.
    pub lease_ttl_ms: u64,
    /// How long opening a connection waits for a free database or prefix before failing
    /// (default 60000).
    pub lease_wait_ms: u64,
    /// Keys per pipelined batch of `SCAN`/`DUMP`/`UNLINK`/`RESTORE` (default 1000).
    pub batch_size: usize,
    /// Capture: how a rollback proves the spare database still holds the checkpoint
    /// (default [`CaptureProof::Count`]).
    pub capture_proof: CaptureProof,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            isolation: Isolation::Database,
            key_prefix: String::new(),
            databases: None,
            prefix_slots: 1024,
            lease_ttl_ms: 30_000,
            lease_wait_ms: 60_000,
            batch_size: 1000,
            capture_proof: CaptureProof::Count,
        }
    }
}

/// The shortest lease TTL: the renewer runs every third of it.
pub(crate) const MIN_LEASE_TTL_MS: u64 = 300;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendConfig;

    fn parse(key: &str, value: serde_yaml_ng::Value) -> crate::Result<RedisOptions> {
        BackendConfig::new("redis")
            .with_option(key, value)
            .options::<RedisOptions>()
    }

    #[test]
    fn ranges_in_every_form() {
        for (value, expected) in [
            (serde_yaml_ng::Value::from("1-15"), (1, 15)),
            (serde_yaml_ng::Value::from("7"), (7, 7)),
            (serde_yaml_ng::Value::from(" 3 - 5 "), (3, 5)),
            (serde_yaml_ng::Value::from(4), (4, 4)),
            (
                serde_yaml_ng::from_str("{first: 2, last: 9}").unwrap(),
                (2, 9),
            ),
        ] {
            let d = parse("databases", value).unwrap().databases.unwrap();
            assert_eq!((d.first, d.last), expected);
        }
        for bad in ["5-2", "x", "-1", "1-x"] {
            let err = parse("databases", bad.into()).unwrap_err().to_string();
            assert!(
                err.contains("backends.redis.databases") && err.contains("range"),
                "{err}"
            );
        }
    }

    #[test]
    fn isolation_and_legacy_options() {
        assert_eq!(
            parse("isolation", "prefix".into()).unwrap().isolation,
            Isolation::Prefix
        );
        assert_eq!(
            parse("isolation", "db".into()).unwrap().isolation,
            Isolation::Database
        );
        let err = parse("isolation", "cluster".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("backends.redis.isolation"), "{err}");
        // The legacy `options:` map, with its string values.
        let legacy: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "{lease_ttl_ms: \"5000\", databases: \"3-5\", isolation: none}",
        )
        .unwrap();
        let o = BackendConfig::new("redis")
            .with_option("options", legacy)
            .options::<RedisOptions>()
            .unwrap();
        assert_eq!(o.lease_ttl_ms, 5000);
        assert_eq!(o.databases, Some(Databases { first: 3, last: 5 }));
        assert_eq!(o.isolation, Isolation::None);
        let err = parse("lease_tll_ms", 100.into()).unwrap_err().to_string();
        assert!(
            err.contains("lease_tll_ms") && err.contains("lease_ttl_ms"),
            "{err}"
        );
    }
}
