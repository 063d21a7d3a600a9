//! What `#[venom_test]` expands to calls into this module. Not a public API: it changes
//! without notice.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::config::Selection;
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

/// The return types a `#[venom_test]` function may have: `()` and `Result<T, E>`.
#[diagnostic::on_unimplemented(
    message = "a #[venom_test] function must return `()` or a `Result`, not `{Self}`",
    label = "this return type",
    note = "return `()`, or `Result<(), E>` with `E: Debug` to fail the test with an error"
)]
pub trait TestOutcome {
    /// How the test ended, for a message: `passed`, or `returned Err(..)`.
    fn describe(&self) -> String;
}

impl TestOutcome for () {
    fn describe(&self) -> String {
        "passed".to_owned()
    }
}

impl<T, E: std::fmt::Debug> TestOutcome for Result<T, E> {
    fn describe(&self) -> String {
        match self {
            Ok(_) => "passed".to_owned(),
            Err(e) => format!("returned Err({e:?})"),
        }
    }
}

/// Runs one test: lease, root checkpoint, body under `catch_unwind`, rollback (always),
/// then the body's value, or its panic re-raised. A failed rollback fails the test.
pub fn run_test<M, R>(spec: &TestSpec, body: impl FnOnce(&mut Session<M>) -> R) -> R
where
    M: ?Sized + SessionManager,
    R: TestOutcome,
{
    let selection = Selection {
        backend: spec.backend,
        entry: spec.config,
        url: spec.url,
    };
    // The directory cargo runs the test in, else where it was compiled (an archived test
    // binary run elsewhere, as `cargo nextest archive` does, has only the former).
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(spec.manifest_dir).to_owned());
    let mut session = match Session::<M>::open(&dir, selection, spec.test) {
        Ok(session) => session,
        Err(e) => panic!("venomqa could not start test {}: {e}", spec.test),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut session)));
    let rolled_back = session.finish();
    match (outcome, rolled_back) {
        (Ok(value), Ok(())) => value,
        (Ok(value), Err(e)) => panic!(
            "test {} {}, but its changes could not be rolled back: {e}",
            spec.test,
            value.describe()
        ),
        (Err(panic), Ok(())) => resume_unwind(panic),
        (Err(panic), Err(e)) => {
            eprintln!(
                "venomqa: test {} panicked, and its changes could not be rolled back: {e}",
                spec.test
            );
            resume_unwind(panic)
        }
    }
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
