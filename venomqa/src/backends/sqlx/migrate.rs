//! Running `sqlx::migrate!` migrations as an entry's setup: [`migrate`] and
//! [`run_migrator`].

use ::sqlx::migrate::Migrator;

use super::dialect::{Conn, Dialect};
#[cfg(feature = "sqlx-mysql")]
use super::mysql::SqlxMySql;
#[cfg(feature = "sqlx-postgres")]
use super::postgres::SqlxPostgres;
#[cfg(feature = "sqlx-sqlite")]
use super::sqlite::SqlxSqlite;
use crate::error::{Error, Result};
use crate::runtime::block_on;
use crate::state::StateManager;

/// A setup function that runs `migrator` (from `sqlx::migrate!`) on the entry's database:
/// register it with [`register_setup!`](crate::register_setup). sqlx's migrator applies
/// only what `_sqlx_migrations` does not list, under a database lock, so it runs once per
/// database however many test processes start at once.
///
/// ```
/// # #[cfg(feature = "sqlx-sqlite")] {
/// use std::sync::LazyLock;
/// use sqlx::migrate::Migrator;
/// use venomqa::sqlx::{block_on, SqlxSqliteSession};
///
/// // In a test crate: static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
/// // here, a directory of one migration, read at run time.
/// static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
///     let dir = std::env::temp_dir().join(format!("vq_migrate_doc_{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     std::fs::write(dir.join("1_users.sql"), "CREATE TABLE users (email TEXT)").unwrap();
///     block_on(Migrator::new(dir)).unwrap()
/// });
/// venomqa::register_setup!("sqlx_sqlite", venomqa::sqlx::migrate(&MIGRATOR));
///
/// let mut db = SqlxSqliteSession::builder().open()?;
/// let users: i64 = block_on(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(db.conn())).unwrap();
/// assert_eq!(users, 0); // the table the migration created
/// # let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("vq_migrate_doc_{}", std::process::id())));
/// # }
/// # Ok::<(), venomqa::Error>(())
/// ```
///
/// A setup function of your own can call [`run_migrator`] instead.
pub fn migrate(
    migrator: &'static Migrator,
) -> impl Fn(&mut dyn StateManager) -> Result<()> + Send + Sync + 'static {
    move |manager: &mut dyn StateManager| run_migrator(manager, migrator)
}

/// Runs `migrator` on the connection of `manager`, an sqlx manager of any database.
/// Fails, saying so, for a manager of another backend.
pub fn run_migrator(manager: &mut dyn StateManager, migrator: &Migrator) -> Result<()> {
    #[cfg(feature = "sqlx-postgres")]
    if let Ok(m) = manager.connected::<SqlxPostgres>() {
        let _lock = m.backend().migration_lock()?;
        return migrate_on::<SqlxPostgres>(m.connection(), migrator);
    }
    #[cfg(feature = "sqlx-mysql")]
    if let Ok(m) = manager.connected::<SqlxMySql>() {
        let _lock = m.backend().migration_lock()?;
        return migrate_on::<SqlxMySql>(m.connection(), migrator);
    }
    #[cfg(feature = "sqlx-sqlite")]
    if let Ok(m) = manager.connected::<SqlxSqlite>() {
        let _lock = m.backend().migration_lock()?;
        return migrate_on::<SqlxSqlite>(m.connection(), migrator);
    }
    let _ = migrator;
    Err(Error::unsupported(
        "this backend",
        "sqlx migrations",
        "register venomqa::sqlx::migrate for an sqlx entry (sqlx_postgres, sqlx_mysql, sqlx_sqlite, or an entry with one of them as its backend)",
    ))
}

/// Applies `migrator` on `conn`, as the entry's setup.
fn migrate_on<D: Dialect>(conn: &mut Conn<D>, migrator: &Migrator) -> Result<()>
where
    Conn<D>: ::sqlx::migrate::Migrate,
{
    // `run_direct` is what `run` calls once it holds a connection; `run` itself cannot be
    // named for a connection type that is generic here.
    block_on(migrator.run_direct(conn))
        .map_err(|e| Error::backend(D::NAME, "running the sqlx migrations", e))
}
