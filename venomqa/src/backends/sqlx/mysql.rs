//! MySQL and MariaDB through `sqlx::MySqlConnection` (feature `sqlx-mysql`).

use std::str::FromStr;

use ::sqlx::error::DatabaseError;
use ::sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError};
use ::sqlx::MySql;

use super::dialect::{Core, Dialect};
use super::SqlxOptions;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::util::test_threads;

const NAME: &str = "sqlx_mysql";

/// The URL used when none is configured: the conventional local server (the same as the
/// `mysql` backend's).
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// MySQL / MariaDB through sqlx: a transaction per test and a savepoint per checkpoint on
/// a pooled `sqlx::MySqlConnection` (see the [module docs](super)). Registered as
/// `sqlx_mysql`; URLs are sqlx's (`mysql://user:password@host:port/database?..`).
///
/// DDL (`CREATE TABLE`, ...) commits on MySQL, so it belongs in migrations or setup: a test
/// that runs it fails with [`Error::StateLost`](crate::Error::StateLost) at its end,
/// since what it wrote before was committed. `CREATE TEMPORARY TABLE` does not commit,
/// but a rollback does not drop the table either.
#[derive(Debug)]
pub struct SqlxMySql {
    core: Core,
}

/// The [`StateManager`](crate::StateManager) of [`SqlxMySql`].
pub type SqlxMySqlStateManager = Manager<SqlxMySql>;

/// A session on [`SqlxMySql`]: [`conn`](crate::Session::conn) is the test's
/// `&mut sqlx::MySqlConnection`, inside its transaction.
///
/// ```
/// use sqlx::Connection;
/// use venomqa::sqlx::{block_on, SqlxMySqlSession};
///
/// // A table for the example, created outside any session (DDL commits on MySQL).
/// let mut setup = block_on(sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")).unwrap();
/// block_on(sqlx::raw_sql("CREATE TABLE IF NOT EXISTS vq_sqlx_doc (v INT)").execute(&mut setup)).unwrap();
///
/// #[venomqa::venom_test] // backend sqlx_mysql, from the type
/// async fn inserts(db: &mut SqlxMySqlSession) -> sqlx::Result<()> {
///     sqlx::query("INSERT INTO vq_sqlx_doc VALUES (?)").bind(7).execute(&mut *db).await?;
///     let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vq_sqlx_doc WHERE v = 7").fetch_one(db.conn()).await?;
///     assert_eq!(n, 1);
///     Ok(())
/// }
/// inserts().unwrap();
///
/// let mut db = SqlxMySqlSession::builder().open()?;
/// let n: i64 = block_on(sqlx::query_scalar("SELECT COUNT(*) FROM vq_sqlx_doc WHERE v = 7").fetch_one(db.conn())).unwrap();
/// assert_eq!(n, 0, "rolled back");
/// # Ok::<(), venomqa::Error>(())
/// ```
pub type SqlxMySqlSession = crate::Session<SqlxMySqlStateManager>;

impl SqlxMySql {
    /// The backend for `url` (`mysql://..`), default options.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::build(
            &BackendConfig::new(NAME).with_url(url),
            SqlxOptions::default(),
        )
    }

    fn build(config: &BackendConfig, options: SqlxOptions) -> Result<Self> {
        let backend = SqlxMySql {
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

impl Dialect for SqlxMySql {
    type Db = MySql;

    fn core(&self) -> &Core {
        &self.core
    }

    fn options(&self) -> Result<MySqlConnectOptions> {
        let url = self.core.url.expose();
        if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
            return Err(Error::connect(
                NAME,
                "(a connection string that is not a URL; not shown)",
                "the URL must start with mysql:// or mariadb://",
            ));
        }
        MySqlConnectOptions::from_str(url).map_err(|e| Error::connect(NAME, url, e))
    }

    /// The proof and the end of the transaction in one round trip: a multi-statement query
    /// stops at its first error, so a missing savepoint leaves the ROLLBACK unrun.
    fn end_sql(&self) -> Option<&'static str> {
        Some("ROLLBACK TO SAVEPOINT venomqa_root; ROLLBACK")
    }

    /// sqlx's own `ROLLBACK`, queued to put its depth back, is a silent no-op on MySQL.
    fn end_sql_rolls_back(&self) -> bool {
        true
    }

    /// SAVEPOINT does not exist (1305).
    fn gone(error: &dyn DatabaseError) -> bool {
        error
            .try_downcast_ref::<MySqlDatabaseError>()
            .is_some_and(|e| e.number() == 1305)
    }

    /// Shutdown in progress (1053), connection killed (1927, MariaDB), query interrupted
    /// by a kill (1317).
    fn lost(error: &dyn DatabaseError) -> bool {
        error
            .try_downcast_ref::<MySqlDatabaseError>()
            .is_some_and(|e| matches!(e.number(), 1053 | 1927))
    }
}

super::macros::sqlx_backend!(SqlxMySql, MySql, SqlxMySqlSession);
