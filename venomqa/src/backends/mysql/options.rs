//! The options of a `mysql` entry (`venomqa.yaml`) and the builder methods that set them
//! on a [`MySql`] backend.

use std::time::Duration;

use serde::Deserialize;

use super::{MySql, NAME};
use crate::backend::Backend;
use crate::capture::proof::CaptureProof;
use crate::config::BackendConfig;
use crate::error::Result;

/// How [`reset`](crate::StateManager::reset) empties tables (`reset_strategy:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ResetStrategy {
    /// `DELETE FROM` every table in one transaction (the default). Measured on MariaDB
    /// 10.11 (2 cores, five tables of ten rows): a median of 0.43 ms for all five, against
    /// 5.1 ms for `TRUNCATE` (which drops and re-creates each table, with a file-system
    /// sync; 100 ms under load). AUTO_INCREMENT counters are kept. Slower than `TRUNCATE`
    /// only for big tables.
    #[default]
    Delete,
    /// `TRUNCATE TABLE` each table: also resets AUTO_INCREMENT counters, costs a table
    /// re-creation each (tens of milliseconds), and commits implicitly.
    Truncate,
}

/// How the test's transaction is opened and ended (`transaction:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TransactionMode {
    /// `START TRANSACTION` ... `COMMIT` / `ROLLBACK` (the default). A statement that
    /// commits implicitly (DDL, `TRUNCATE`) ends it; the backend reports that as
    /// [`Error::StateLost`](crate::Error::StateLost) at the next checkpoint operation.
    #[default]
    Standard,
    /// An XA transaction: `XA START` ... `XA END; XA ROLLBACK` (or `XA COMMIT .. ONE
    /// PHASE`). Inside it the server **refuses** every statement that would commit
    /// implicitly (DDL, `TRUNCATE`, `LOCK TABLES`, `COMMIT`, `BEGIN`, ...) with error 1399
    /// `XAER_RMFAIL` before it runs, so a test can never make its writes permanent by
    /// accident. Savepoints work inside it. Checked on MariaDB 10.11.
    Xa,
}

/// The keys of a `mysql` entry in `venomqa.yaml`, besides the common ones (`url`,
/// `pool_size`, `connect_timeout_ms`, `lease_timeout_ms`, `setup`).
///
/// ```yaml
/// backends:
///   mysql:
///     tables_to_reset: [users, orders]
///     exclude_tables: [countries]
///     reset_strategy: delete     # or truncate
///     transaction: standard      # or xa
///     session_reset: each_test   # or never
///     capture_proof: count       # or digest (with isolation: capture)
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MySqlOptions {
    /// Tables `reset()` empties (default: every base table of the current database).
    pub tables_to_reset: Vec<String>,
    /// Tables `reset()` never touches.
    pub exclude_tables: Vec<String>,
    /// How `reset()` empties tables (default [`ResetStrategy::Delete`]).
    pub reset_strategy: ResetStrategy,
    /// How each test's transaction is opened (default [`TransactionMode::Standard`]).
    pub transaction: TransactionMode,
    /// The connect timeout as written under the legacy `options:` map (`"5000"`). Write
    /// the entry's common key `connect_timeout_ms` instead; this one wins over it, and the
    /// URL's `connect_timeout_ms` wins over both.
    pub connect_timeout_ms: Option<u64>,
    /// How a test's changes are isolated (default [`MySqlIsolation::Transaction`]).
    pub isolation: MySqlIsolation,
    /// Capture: how long a checkpoint or a rollback waits for other sessions of the
    /// database to finish their write transactions (default 5000).
    pub quiescence_timeout_ms: Option<u64>,
    /// Capture: what a rollback reads of the data to prove the restore, inside its own
    /// transaction (default [`CaptureProof::Count`]: the restored tables' row counts
    /// against those taken at the checkpoint; [`CaptureProof::Digest`]: a digest of every
    /// captured table's rows too, read at every checkpoint and rollback). The counts cost
    /// each checkpoint a scan of every captured table (measured: 15-20 ms per 100,000
    /// rows on a loaded 2-core machine), the digest about ten times that.
    pub capture_proof: CaptureProof,
    /// Whether each test gets a freshly reset session (default [`SessionReset::EachTest`]).
    pub session_reset: SessionReset,
}

/// Whether the pool resets a connection's session before each test (`session_reset:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionReset {
    /// `COM_RESET_CONNECTION` before every lease (the default): what a test left in its
    /// session (temporary tables, user and session variables such as
    /// `FOREIGN_KEY_CHECKS`, named locks) never reaches the next test. It is also the
    /// health check. Three round trips per test: the reset, `START TRANSACTION;
    /// SAVEPOINT`, and `ROLLBACK TO SAVEPOINT; ROLLBACK`. The reset cannot share a round
    /// trip with either (it is a protocol command, not a statement; it must follow the
    /// rollback that proves the test's transaction was still open, and precede the next
    /// `START TRANSACTION`, which it would roll back).
    #[default]
    EachTest,
    /// No reset: two round trips per test, as a hand-written transaction. The first
    /// checkpoint's batch (which selects the URL's database again) is the health check: a
    /// connection that died in the pool fails it and the test begins on another. What a
    /// test changes in its session (variables, temporary tables, named locks) reaches the
    /// next test on the same connection: choose this when tests leave none.
    Never,
}

/// How the MySQL backend isolates a test's changes (`isolation:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MySqlIsolation {
    /// A transaction per test and a SAVEPOINT per checkpoint on the test's connection:
    /// only what goes through that connection is rolled back (the default).
    #[default]
    Transaction,
    /// Generated triggers log every change any connection of any process makes to the
    /// URL's database into undo tables, and a rollback replays them: an API server or an
    /// app's own pool can write, and its writes are rolled back too (foreign-key
    /// cascades, keyless tables and AUTO_INCREMENT counters included). The code under
    /// test connects to [`Session::url`](crate::Session::url). Sessions on one database
    /// take turns, across processes too. See the [capture section](super#capture).
    Capture,
}

impl MySql {
    /// The backend for `url` (see the [module docs](super) for URL forms), default options.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            MySqlOptions::default(),
        )
    }

    /// Tables `reset()` empties (default: every base table of the current database).
    pub fn tables_to_reset(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.tables_to_reset = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Tables `reset()` never touches.
    pub fn exclude_tables(mut self, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.exclude_tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// How long a connection attempt may take (default [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT); the
    /// URL's `connect_timeout_ms` wins over this).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How `reset()` empties tables (default [`ResetStrategy::Delete`]).
    pub fn reset_strategy(mut self, strategy: ResetStrategy) -> Self {
        self.options.reset_strategy = strategy;
        self
    }

    /// How the test's transaction is opened (default [`TransactionMode::Standard`]).
    pub fn transaction_mode(mut self, mode: TransactionMode) -> Self {
        self.options.transaction = mode;
        self
    }

    /// Whether each test gets a freshly reset session (default [`SessionReset::EachTest`]).
    pub fn session_reset(mut self, reset: SessionReset) -> Self {
        self.options.session_reset = reset;
        self
    }

    /// Capture: what a rollback reads of the data to prove the restore (default
    /// [`CaptureProof::Count`]; [`CaptureProof::Digest`] reads every row of every
    /// captured table at each checkpoint and rollback). See the
    /// [capture section](super#capture).
    pub fn capture_proof(mut self, proof: CaptureProof) -> Self {
        self.options.capture_proof = proof;
        self
    }

    /// The database the URL names, which every test's transaction selects.
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The options in effect.
    pub fn options(&self) -> &MySqlOptions {
        &self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::DEFAULT_URL;

    #[test]
    fn options_from_config() {
        let mut config = BackendConfig::new("mysql")
            .with_option("reset_strategy", "truncate")
            .with_option("transaction", "xa")
            .with_option("exclude_tables", vec!["a"]);
        config.connect_timeout = Some(Duration::from_millis(1500));
        let m = crate::manager::build::<MySql>(&config).unwrap();
        assert_eq!(m.url.expose(), DEFAULT_URL);
        assert_eq!(m.database(), Some("test"));
        assert_eq!(m.connect_timeout, Duration::from_millis(1500));
        assert_eq!(m.options.reset_strategy, ResetStrategy::Truncate);
        assert_eq!(m.options.transaction, TransactionMode::Xa);
        assert_eq!(m.options.exclude_tables, ["a"]);

        let legacy = config.clone().with_option(
            "options",
            serde_yaml_ng::to_value(
                [("connect_timeout_ms", "60000")]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .unwrap(),
        );
        let m = crate::manager::build::<MySql>(&legacy).unwrap();
        assert_eq!(m.connect_timeout, Duration::from_secs(60));

        let e = crate::manager::build::<MySql>(
            &config.clone().with_option("transaction", "serializable"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("backends.mysql.transaction") && e.contains("xa"),
            "{e}"
        );
        let e = crate::manager::build::<MySql>(&config.with_option("reset_stratgy", "delete"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reset_stratgy") && e.contains("reset_strategy"),
            "{e}"
        );
    }
}
