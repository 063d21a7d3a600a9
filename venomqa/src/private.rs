//! What `#[venom_test]` expands to calls into this module. Not a public API: it changes
//! without notice.

use std::marker::PhantomData;
use std::path::Path;

use crate::backend::Backend;
use crate::manager::Manager;
use crate::session::{Session, SessionManager};

pub use inventory;

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
    // Logs in the test's output and its line of the cost report, when asked for.
    let _scope = crate::log::test_scope(spec.test);
    if spec.backend.is_some() || spec.config.is_some() {
        check_session_type::<M>(spec);
    }
    builder::<M>(spec).run(body)
}

/// The session builder of one test, as its attribute says.
fn builder<M: ?Sized + SessionManager>(spec: &TestSpec) -> crate::SessionBuilder<M> {
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
    builder
}

/// A typed session on an entry or a registration whose backend has another name: a
/// conflict the compiler cannot see (the configuration is read at run time, and a
/// registration may give the type's backend another name). When the names differ, the
/// entry's pool (built, no connection leased) says what it holds, and a mismatch fails
/// the test saying which entry and file chose the backend.
fn check_session_type<M: ?Sized + SessionManager>(spec: &TestSpec) {
    let Some(own) = M::default_backend() else {
        return; // `Session` (any backend), or a hand-written manager's session
    };
    if spec.config.is_none() && spec.backend == Some(own) {
        return; // the attribute repeats the type's backend (checked at compile time)
    }
    let Ok(config) = builder::<M>(spec).config() else {
        return; // the run reports it
    };
    if config.backend == own {
        return;
    }
    let Ok(pool) = crate::registry::pool(&config) else {
        return; // the run reports it
    };
    if M::holds(&pool) {
        return; // the type's backend under another name
    }
    let chosen = match (spec.config, spec.backend) {
        (Some(entry), _) => format!(
            "config = {entry:?} (in {}) is for {:?}",
            config.source, config.backend
        ),
        (None, Some(backend)) => format!("backend = {backend:?} is registered for another type"),
        (None, None) => unreachable!("checked only with backend or config"),
    };
    panic!(
        "venomqa could not start test {}: its parameter is a session on {own:?}, but {chosen}; take `&mut venomqa::Session` or the session type of {:?}, or use a {own:?} entry",
        spec.test, config.backend
    );
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

/// The backend a session type runs on, when the type says: `Session<Manager<B>>` (every
/// typed session: `SqliteSession`, `MySqlSession`, a custom backend's) runs on `B::NAME`.
///
/// `SessionOf::<T>::NAME` is the inherent const below when `T` is such a type, and the
/// trait's `None` otherwise (`Session`, a hand-written manager's session, a type that is
/// not a session): `#[venom_test]` reads it for concrete types only.
pub struct SessionOf<T: ?Sized>(PhantomData<fn(&T)>);

impl<B: Backend> SessionOf<Session<Manager<B>>> {
    /// `Some(B::NAME)`.
    pub const NAME: Option<&'static str> = Some(B::NAME);
}

/// The fallback of [`SessionOf::NAME`]: the type does not say which backend it runs on.
pub trait UntypedSession {
    /// No backend.
    const NAME: Option<&'static str> = None;
}

impl<T: ?Sized> UntypedSession for SessionOf<T> {}

/// The names of the built-in backends. `#[venom_test(backend = "..")]` naming one of them
/// on a session typed for another backend is a compile error; any other name is checked
/// when the test runs, since it may name a registration of the type's backend under
/// another name (`Registration::of::<Memory>().named("scratch")`).
pub const BUILT_IN_BACKENDS: &[&str] =
    &["sqlite", "mysql", "postgres", "redis", "mongodb", "memory"];

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `#[venom_test(backend = attribute)]` may run a session of a type that runs on
/// `session` (`None`: the type does not say). False only for a built-in name that is not
/// the type's backend.
pub const fn backend_agrees(attribute: &str, session: Option<&str>) -> bool {
    let Some(session) = session else {
        return true;
    };
    if same(attribute, session) {
        return true;
    }
    let mut i = 0;
    while i < BUILT_IN_BACKENDS.len() {
        if same(attribute, BUILT_IN_BACKENDS[i]) {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether the attribute's backend and the session type agree, as a type: the
/// expansion requires `Agree<true>` to implement a trait of its own whose
/// `on_unimplemented` message names both.
#[derive(Clone, Copy)]
pub struct Agree<const OK: bool>;
