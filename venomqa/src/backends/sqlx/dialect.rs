//! What each database adds to the shared sqlx machinery ([`Dialect`]), and the settings the
//! three backends share ([`Core`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ::sqlx::error::DatabaseError;
use ::sqlx::{Connection, Database};
use parking_lot::Mutex;

use super::{SqlxOptions, DEFAULT_CONNECT_TIMEOUT};
use crate::config::BackendConfig;
use crate::error::Result;
use crate::redact::SecretUrl;

/// What each database adds to the shared sqlx machinery.
pub(crate) trait Dialect: crate::Backend + Sized {
    /// sqlx's database.
    type Db: Database;

    /// The shared settings.
    fn core(&self) -> &Core;

    /// The connect options for one new connection.
    fn options(&self) -> Result<<<Self::Db as Database>::Connection as Connection>::Options>;

    /// What opens a test's transaction (the BEGIN and the root savepoint).
    fn begin_sql(&self) -> &'static str {
        "BEGIN; SAVEPOINT venomqa_root"
    }

    /// What the end of a test runs before its `ROLLBACK`, in one round trip; `None` where
    /// a `ROLLBACK` outside a transaction already fails (SQLite).
    fn end_sql(&self) -> Option<&'static str> {
        Some("ROLLBACK TO SAVEPOINT venomqa_root")
    }

    /// A lock held while migrations run, where sqlx's migrator takes none that other
    /// processes see (an SQLite file): sessions of every process take turns.
    fn migration_lock(&self) -> Result<Option<std::fs::File>> {
        Ok(None)
    }

    /// Makes sqlx's transaction depth current: SQLite's worker thread applies a dropped
    /// `Transaction`'s rollback (and its depth) only when it gets to it.
    fn settle(conn: &mut Conn<Self>) -> std::result::Result<(), ::sqlx::Error> {
        let _ = conn;
        Ok(())
    }

    /// Whether [`end_sql`](Self::end_sql) also ends the transaction (its last statement is
    /// a `ROLLBACK`), saving a round trip where a `ROLLBACK` with no transaction is silent.
    fn end_sql_rolls_back(&self) -> bool {
        false
    }

    /// Whether a database error means the transaction or a savepoint is gone.
    fn gone(error: &dyn DatabaseError) -> bool;

    /// Whether a database error means the connection cannot be used again.
    fn lost(error: &dyn DatabaseError) -> bool;
}

/// The connection of a dialect.
pub(crate) type Conn<D> = <<D as Dialect>::Db as Database>::Connection;
/// The transaction manager of a dialect.
pub(crate) type Tm<D> = <<D as Dialect>::Db as Database>::TransactionManager;

/// What the three backends share: the URL, timeouts and the migrations directory.
#[derive(Debug)]
pub(crate) struct Core {
    pub(super) entry: String,
    pub(crate) url: SecretUrl,
    pub(crate) timeout: Duration,
    pub(super) migrations: Option<PathBuf>,
    /// Whether the migrations directory was applied by a connection of this pool.
    pub(super) migrated: Mutex<bool>,
}

impl Core {
    pub(crate) fn new(config: &BackendConfig, options: SqlxOptions, default_url: &str) -> Self {
        let base = Path::new(&config.source)
            .parent()
            .filter(|_| Path::new(&config.source).is_file())
            .map(Path::to_owned);
        let migrations = options.migrations.map(|dir| match &base {
            Some(base) if dir.is_relative() => base.join(dir),
            _ => dir,
        });
        Core {
            entry: config.entry.clone(),
            url: config
                .url
                .clone()
                .unwrap_or_else(|| SecretUrl::from(default_url)),
            timeout: config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            migrations,
            migrated: Mutex::new(false),
        }
    }
}
