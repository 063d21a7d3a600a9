//! The built-in backends, each behind its cargo feature.

#[macro_use]
mod capture_backend;

pub mod memory;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub mod mongodb;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
#[cfg(any(feature = "redis", feature = "mongodb"))]
pub(crate) mod owner;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub(crate) mod sql_capture;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "sqlx-postgres",
        feature = "sqlx-mysql",
        feature = "sqlx-sqlite"
    )))
)]
pub mod sqlx;

/// Runs `work` (a driver's connect) on a helper thread and waits at most `timeout` for it.
///
/// Drivers' own timeouts bound the TCP connect but not the handshake, so a host that
/// accepts the connection and never answers would block a test for minutes. On time-out the
/// thread is abandoned (it ends when its socket does). `Ok(None)` means the time ran out;
/// `Err` that the thread could not be started.
#[cfg(any(feature = "mysql", feature = "postgres"))]
pub(crate) fn within<T: Send + 'static>(
    thread_name: &str,
    timeout: std::time::Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || {
            let _ = sender.send(work());
        })?;
    Ok(receiver.recv_timeout(timeout).ok())
}
