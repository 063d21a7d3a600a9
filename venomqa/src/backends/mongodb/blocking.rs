//! The bridge for async tests: the driver's sync API panics inside a Tokio runtime, so a
//! blocking call made from inside one runs on a helper thread.

/// Runs blocking driver calls: on a helper thread when called from inside a Tokio runtime
/// (the driver's sync API would panic there), else right here.
pub(super) fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    #[cfg(feature = "tokio")]
    if tokio::runtime::Handle::try_current().is_ok() {
        return std::thread::scope(|s| match s.spawn(f).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        });
    }
    f()
}
