//! Opening a connection within the connect timeout, with the entry's migrations directory
//! applied once per pool (on every connection for private databases).

use ::sqlx::migrate::Migrator;
use ::sqlx::Connection;

use super::dialect::{Conn, Dialect};
use crate::error::{Error, Result};
use crate::runtime::block_on;

/// Opens a connection within the connect timeout and applies the entry's migrations
/// directory if this pool has not yet (or on every connection, for private databases).
pub(crate) fn connect<D: Dialect>(backend: &D, every_connection: bool) -> Result<Conn<D>>
where
    Conn<D>: ::sqlx::migrate::Migrate,
{
    let core = backend.core();
    let url = core.url.expose();
    let options = backend.options()?;
    let mut conn = block_on(async {
        tokio::time::timeout(
            core.timeout,
            <Conn<D> as Connection>::connect_with(&options),
        )
        .await
    })
    .map_err(|_| {
        Error::connect(
            D::NAME,
            url,
            format!(
                "no connection within the connect timeout ({} ms)",
                core.timeout.as_millis()
            ),
        )
    })?
    .map_err(|e| Error::connect(D::NAME, url, e))?;
    if let Some(dir) = &core.migrations {
        let mut migrated = core.migrated.lock();
        if every_connection || !*migrated {
            let _lock = backend.migration_lock()?;
            let step = || format!("the migrations in {}", dir.display());
            let migrator = block_on(Migrator::new(dir.as_path())).map_err(|e| Error::Setup {
                entry: core.entry.clone(),
                step: step(),
                source: e.into(),
            })?;
            block_on(migrator.run_direct(&mut conn)).map_err(|e| Error::Setup {
                entry: core.entry.clone(),
                step: step(),
                source: e.into(),
            })?;
            *migrated = true;
        }
    }
    Ok(conn)
}
