//! What `#[venom_test]` expands to calls into this module. Not a public API: it changes
//! without notice.

use std::path::Path;

use crate::session::{Session, SessionManager};

pub use ctor;

/// The arguments of one `#[venom_test]`.
#[derive(Clone, Copy)]
pub struct TestSpec {
    /// `module_path!()::test_name`.
    pub test: &'static str,
    /// `backend = ".."`.
    pub backend: Option<&'static str>,
    /// `url = ".."`.
    pub url: Option<&'static str>,
    /// `config = ".."`.
    pub config: Option<&'static str>,
    /// The test crate's `CARGO_MANIFEST_DIR`, where the configuration search starts.
    pub manifest_dir: &'static str,
}

/// Shows the URL with its password replaced by `***`.
impl std::fmt::Debug for TestSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSpec")
            .field("test", &self.test)
            .field("backend", &self.backend)
            .field("url", &self.url.map(crate::redact_url))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub use crate::session::TestOutcome;

/// Runs one test: lease, root checkpoint, body under `catch_unwind`, rollback (always),
/// then the body's value, or its panic re-raised. A failed rollback fails the test.
pub fn run_test<M, R>(spec: &TestSpec, body: impl FnOnce(&mut Session<M>) -> R) -> R
where
    M: ?Sized + SessionManager,
    R: TestOutcome,
{
    // The directory cargo runs the test in, else where it was compiled (an archived test
    // binary run elsewhere, as `cargo nextest archive` does, has only the former).
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(spec.manifest_dir).to_owned());
    let mut builder = Session::<M>::builder().name(spec.test).config_dir(dir);
    if let Some(backend) = spec.backend {
        builder = builder.backend(backend);
    }
    if let Some(entry) = spec.config {
        builder = builder.entry(entry);
    }
    if let Some(url) = spec.url {
        builder = builder.url(url);
    }
    builder.run(body)
}

/// Implemented when venomqa can run `async fn` tests.
#[diagnostic::on_unimplemented(
    message = "async #[venom_test] functions need the `tokio` feature of venomqa",
    label = "this async test needs a runtime",
    note = "enable it in Cargo.toml: venomqa = {{ version = \"0.1\", features = [\"tokio\"] }}"
)]
pub trait AsyncTest {}

#[cfg(feature = "tokio")]
impl<F: std::future::Future> AsyncTest for F {}

/// Runs an async test body to completion on a new Tokio current-thread runtime, as
/// `#[tokio::test]` does.
pub fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + AsyncTest,
{
    #[cfg(feature = "tokio")]
    {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("venomqa could not build a Tokio runtime for an async test")
            .block_on(future)
    }
    #[cfg(not(feature = "tokio"))]
    {
        drop(future);
        unreachable!("AsyncTest is only implemented with the `tokio` feature")
    }
}
