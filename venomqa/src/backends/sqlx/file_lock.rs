//! A lock file that processes take turns on (sqlx's migrator takes no lock that other
//! processes see on an SQLite file).

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Locks `path` (created if missing), waiting up to 300 s for another process to let go.
#[cfg_attr(not(feature = "sqlx-sqlite"), allow(dead_code))]
pub(super) fn lock_file(backend: &str, path: &Path) -> Result<std::fs::File> {
    let failed =
        |e: std::io::Error| Error::backend(backend, format!("locking {}", path.display()), e);
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(failed)?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < Duration::from_secs(300) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::backend(
                    backend,
                    format!("locking {}", path.display()),
                    "another process held it for 300 s while migrating; look for a test process that hangs",
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
    }
}
