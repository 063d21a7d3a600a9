//! The options of a `postgres` entry (`venomqa.yaml`) and the builder methods that set
//! them on a [`Postgres`] backend.

use std::time::Duration;

use serde::Deserialize;

use super::{Postgres, NAME};
use crate::backend::Backend;
use crate::capture::proof::CaptureProof;
use crate::config::BackendConfig;
use crate::error::Result;

/// The keys of a `postgres` entry in `venomqa.yaml`, besides the common ones.
///
/// ```yaml
/// backends:
///   postgres:
///     schemas: [public, billing]
///     tables_to_reset: [users, billing.invoices]
///     exclude_tables: [schema_migrations]
///     restore_sequences: false
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Schemas whose tables `reset()` covers and whose sequences `restore_sequences`
    /// restores (default `[public]`; an empty list means the default).
    pub schemas: Vec<String>,
    /// Tables `reset()` empties: names (`users`, matched in every chosen schema) or
    /// schema-qualified names (`billing.invoices`). Default: every table of `schemas`.
    pub tables_to_reset: Vec<String>,
    /// Tables `reset()` never touches (names or schema-qualified names).
    pub exclude_tables: Vec<String>,
    /// Put back the sequences of `schemas` that a test advanced, when its outermost
    /// checkpoint is rolled back (default `false`); see [`Postgres::restore_sequences`].
    /// Capture isolation always restores them.
    pub restore_sequences: bool,
    /// How a test's changes are isolated (default [`PostgresIsolation::Transaction`]).
    pub isolation: PostgresIsolation,
    /// Capture: how long a rollback waits for rows other sessions keep locked (default
    /// 5000).
    pub quiescence_timeout_ms: Option<u64>,
    /// Capture: how a rollback proves the data is back, beyond its log (default
    /// [`CaptureProof::Count`]; see [`Postgres::capture_proof`]).
    pub capture_proof: CaptureProof,
    /// Create the URL's database when it does not exist (default `false`): the first
    /// connection that finds it missing (SQLSTATE 3D000) runs `CREATE DATABASE` on the
    /// server's `postgres` database with the same user, then connects again. For a
    /// capture entry whose database the suite owns.
    pub create_database: bool,
}

/// How the PostgreSQL backend isolates a test's changes (`isolation:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PostgresIsolation {
    /// A transaction per test and a SAVEPOINT per checkpoint on the test's connection:
    /// only what goes through that connection is rolled back (the default).
    #[default]
    Transaction,
    /// Generated statement triggers log every change any connection of any process
    /// makes to the tables of `schemas` into undo tables, and a rollback restores them: an
    /// API server or an app's own pool can write, and its writes are rolled back too
    /// (sequences, TRUNCATE and keyless tables included). The code under test connects to
    /// [`Session::url`](crate::Session::url). Sessions on one database take turns, across
    /// processes too. See the [capture section](super#capture).
    Capture,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schemas: vec!["public".to_owned()],
            tables_to_reset: Vec::new(),
            exclude_tables: Vec::new(),
            restore_sequences: false,
            isolation: PostgresIsolation::Transaction,
            quiescence_timeout_ms: None,
            capture_proof: CaptureProof::Count,
            create_database: false,
        }
    }
}

impl Postgres {
    /// The backend for `url` (`postgres://` or `postgresql://`), default options. The URL
    /// is parsed now; nothing connects until [`connect`](crate::StateManager::connect).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            PostgresOptions::default(),
        )
    }

    /// Schemas whose tables `reset()` covers and whose sequences
    /// [`restore_sequences`](Self::restore_sequences) restores (default `["public"]`).
    pub fn schemas(mut self, schemas: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.schemas = schemas.into_iter().map(Into::into).collect();
        *self.sequence_list.get_mut() = None;
        self
    }

    /// Tables `reset()` empties: names (`users`) or schema-qualified names
    /// (`billing.invoices`) of tables in the chosen [`schemas`](Self::schemas). Default:
    /// every table of those schemas.
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches (names or schema-qualified names).
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// How long a connection attempt may take, the startup and authentication handshake
    /// included (default [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT), or the URL's `connect_timeout`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.config.connect_timeout(timeout);
        self
    }

    /// Restores the sequences of the chosen schemas when the outermost checkpoint is
    /// rolled back (default off; `restore_sequences: true` in the entry).
    ///
    /// PostgreSQL never rolls a sequence back: a test that inserts into a `serial` column
    /// advances it for good. With this on, the outermost checkpoint reads the position of
    /// every sequence (in the same round trip as its `BEGIN`) and the rollback at the end
    /// of the test puts back the ones that moved (in the same round trip as its
    /// `ROLLBACK`).
    ///
    /// The list of sequences is read once per pool, on the first test (one more round
    /// trip, once), and again after `reset()` or when a listed sequence is gone, so a
    /// sequence created later outside the tests is restored only after that.
    ///
    /// Only turn it on when tests that use the same sequences run one at a time
    /// (`pool_size: 1`, and one test process at a time): sequences are shared by every
    /// connection, so restoring one while another test is still running hands that test
    /// ids it already used, and its next insert fails with a duplicate key.
    pub fn restore_sequences(mut self, on: bool) -> Self {
        self.options.restore_sequences = on;
        self
    }

    /// Capture: how a rollback proves that the data is back at the checkpoint, beyond its
    /// log (`capture_proof:` in the entry; default [`CaptureProof::Count`]).
    ///
    /// Every checkpoint reads the row count of every captured table (one `count(*)` each,
    /// in the checkpoint's round trip), and every rollback compares the tables it restored
    /// with them before it commits. [`CaptureProof::Digest`] also reads a digest of every
    /// row of every captured table at each checkpoint and rollback: it catches any value
    /// restored wrong, for the price of reading the whole captured data twice per cycle
    /// (docs/benchmarks.md has the measured cost).
    pub fn capture_proof(mut self, proof: CaptureProof) -> Self {
        self.options.capture_proof = proof;
        self
    }

    /// The options in effect.
    pub fn options(&self) -> &PostgresOptions {
        &self.options
    }

    /// The chosen schemas (an empty list means the default, `public`).
    pub(super) fn schema_list(&self) -> Vec<String> {
        if self.options.schemas.is_empty() {
            PostgresOptions::default().schemas
        } else {
            self.options.schemas.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::DEFAULT_CONNECT_TIMEOUT;

    fn config(yaml: &str) -> BackendConfig {
        let mut config = BackendConfig::new(NAME);
        let map: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(yaml).unwrap();
        for (k, v) in map {
            config = config.with_option(k.as_str().unwrap(), v);
        }
        config
    }

    #[test]
    fn the_connect_timeout_comes_from_the_entry_then_the_url_then_the_default() {
        let pg = Postgres::from_url("postgres://h/db").unwrap();
        assert_eq!(pg.timeout, DEFAULT_CONNECT_TIMEOUT);
        let pg = Postgres::from_url("postgres://h/db?connect_timeout=3").unwrap();
        assert_eq!(pg.timeout, Duration::from_secs(3));
        let mut entry = BackendConfig::new(NAME).with_url("postgres://h/db?connect_timeout=3");
        entry.connect_timeout = Some(Duration::from_millis(1500));
        let pg = Postgres::new(&entry, PostgresOptions::default()).unwrap();
        assert_eq!(pg.timeout, Duration::from_millis(1500));
        assert_eq!(
            pg.config.get_connect_timeout(),
            Some(&Duration::from_millis(1500))
        );
        let pg = pg.connect_timeout(Duration::from_millis(700));
        assert_eq!(
            pg.config.get_connect_timeout(),
            Some(&Duration::from_millis(700))
        );
    }

    #[test]
    fn options_are_typed() {
        let o: PostgresOptions = BackendConfig::new(NAME).options().unwrap();
        assert_eq!(o.schemas, ["public"]);
        assert!(!o.restore_sequences);

        let o: PostgresOptions = config(
            "{schemas: [a, b], tables_to_reset: [a.t], exclude_tables: [m], restore_sequences: true}",
        )
        .options()
        .unwrap();
        assert_eq!(
            (o.schemas, o.tables_to_reset, o.exclude_tables),
            (
                vec!["a".to_owned(), "b".to_owned()],
                vec!["a.t".to_owned()],
                vec!["m".to_owned()]
            )
        );
        assert!(o.restore_sequences);

        // The legacy `options:` map, with its string values.
        let o: PostgresOptions = config("{options: {restore_sequences: \"true\"}}")
            .options()
            .unwrap();
        assert!(o.restore_sequences);

        let e = config("{restore_sequences: maybe}")
            .options::<PostgresOptions>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("backends.postgres.restore_sequences"), "{e}");
        let e = config("{options: {restore_sequences: maybe}}")
            .options::<PostgresOptions>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backends.postgres.options.restore_sequences"),
            "{e}"
        );
        let e = config("{schema: [a]}")
            .options::<PostgresOptions>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backends.postgres.schema") && e.contains("schemas"),
            "{e}"
        );
    }
}
