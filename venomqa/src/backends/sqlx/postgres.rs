//! PostgreSQL through `sqlx::PgConnection` (feature `sqlx-postgres`).

use std::str::FromStr;

use ::sqlx::error::DatabaseError;
use ::sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgSeverity};
use ::sqlx::Postgres;

use super::dialect::{Core, Dialect};
use super::SqlxOptions;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::util::test_threads;

const NAME: &str = "sqlx_postgres";

/// The URL used when none is configured: the conventional local server (the same as the
/// `postgres` backend's).
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// PostgreSQL through sqlx: a transaction per test and a savepoint per checkpoint on a
/// pooled `sqlx::PgConnection` (see the [module docs](super)). Registered as
/// `sqlx_postgres`; URLs are sqlx's (`postgres://user:password@host:port/database?..`).
///
/// The end of a test also runs `SELECT pg_advisory_unlock_all()` (in the round trip that
/// proves the transaction), since session advisory locks outlive a rollback.
#[derive(Debug)]
pub struct SqlxPostgres {
    core: Core,
}

/// The [`StateManager`](crate::StateManager) of [`SqlxPostgres`].
pub type SqlxPostgresStateManager = Manager<SqlxPostgres>;

/// A session on [`SqlxPostgres`]: [`conn`](crate::Session::conn) is the test's
/// `&mut sqlx::PgConnection`, inside its transaction.
///
/// ```
/// use sqlx::Acquire;
/// use venomqa::sqlx::SqlxPostgresSession;
///
/// #[venomqa::venom_test] // backend sqlx_postgres, from the type
/// async fn renames_a_user(db: &mut SqlxPostgresSession) -> sqlx::Result<()> {
///     sqlx::query("CREATE TABLE vq_sqlx_doc (name TEXT)").execute(db.conn()).await?;
///     sqlx::query("INSERT INTO vq_sqlx_doc VALUES ('ann')").execute(&mut *db).await?;
///     let mut tx = db.begin().await?; // a savepoint inside the test's transaction
///     sqlx::query("UPDATE vq_sqlx_doc SET name = 'bob'").execute(&mut *tx).await?;
///     tx.commit().await?; // releases the savepoint: still rolled back with the test
///     let name: String = sqlx::query_scalar("SELECT name FROM vq_sqlx_doc").fetch_one(&mut *db).await?;
///     assert_eq!(name, "bob");
///     Ok(())
/// }
/// renames_a_user().unwrap();
///
/// // The table is gone: DDL is transactional on PostgreSQL.
/// let mut db = SqlxPostgresSession::builder().open()?;
/// let gone: Option<String> = venomqa::sqlx::block_on(
///     sqlx::query_scalar("SELECT to_regclass('vq_sqlx_doc')::text").fetch_one(db.conn()),
/// ).unwrap();
/// assert_eq!(gone, None);
/// # Ok::<(), venomqa::Error>(())
/// ```
pub type SqlxPostgresSession = crate::Session<SqlxPostgresStateManager>;

impl SqlxPostgres {
    /// The backend for `url` (`postgres://..`), default options.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::build(
            &BackendConfig::new(NAME).with_url(url),
            SqlxOptions::default(),
        )
    }

    fn build(config: &BackendConfig, options: SqlxOptions) -> Result<Self> {
        let backend = SqlxPostgres {
            core: Core::new(config, options, DEFAULT_URL),
        };
        backend.options()?;
        Ok(backend)
    }

    fn private_databases(&self) -> bool {
        false
    }

    fn default_pool_size(&self) -> usize {
        test_threads()
    }
}

impl Dialect for SqlxPostgres {
    type Db = Postgres;

    fn core(&self) -> &Core {
        &self.core
    }

    fn options(&self) -> Result<PgConnectOptions> {
        let url = self.core.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::connect(
                NAME,
                "(a connection string that is not a URL; not shown)",
                "the URL must start with postgres:// or postgresql://",
            ));
        }
        PgConnectOptions::from_str(url).map_err(|e| Error::connect(NAME, url, e))
    }

    fn end_sql(&self) -> Option<&'static str> {
        Some("ROLLBACK TO SAVEPOINT venomqa_root; SELECT pg_advisory_unlock_all()")
    }

    /// No transaction (25P01), or no such savepoint (3B001).
    fn gone(error: &dyn DatabaseError) -> bool {
        matches!(error.code().as_deref(), Some("25P01" | "3B001"))
    }

    /// FATAL or PANIC, or an operator intervention (57P..: terminated, shutting down).
    fn lost(error: &dyn DatabaseError) -> bool {
        if error.code().is_some_and(|c| c.starts_with("57P")) {
            return true;
        }
        error
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic))
    }
}

super::macros::sqlx_backend!(SqlxPostgres, Postgres, SqlxPostgresSession);
