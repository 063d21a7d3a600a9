//! [`SessionBuilder`]: a session opened by hand, outside `#[venom_test]`.

use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use super::{Session, SessionManager, TestOutcome};
use crate::config::{Config, Selection};
use crate::error::{Error, Result};
use crate::registry;

/// Opens a [`Session`] outside `#[venom_test]`; see [`Session::builder`].
///
/// Without [`backend`](Self::backend) or [`entry`](Self::entry), a typed session runs on
/// its own backend (`SqliteSession` on `sqlite`), and `Session` on the configured default.
#[must_use = "call open() to start the session"]
pub struct SessionBuilder<M: ?Sized> {
    backend: Option<String>,
    entry: Option<String>,
    url: Option<String>,
    name: Option<String>,
    dir: Option<PathBuf>,
    resolved: Option<crate::BackendConfig>,
    _manager: PhantomData<fn(&mut M)>,
}

impl<M: ?Sized> std::fmt::Debug for SessionBuilder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("backend", &self.backend)
            .field("entry", &self.entry)
            .field("url", &self.url.as_deref().map(crate::redact_url))
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("config", &self.resolved)
            .finish()
    }
}

impl<M: ?Sized + SessionManager> SessionBuilder<M> {
    pub(super) fn new() -> Self {
        SessionBuilder {
            backend: None,
            entry: None,
            url: None,
            name: None,
            dir: None,
            resolved: None,
            _manager: PhantomData,
        }
    }

    /// The registered backend to run on, as `#[venom_test(backend = "..")]`.
    pub fn backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = Some(backend.into());
        self
    }

    /// A named entry of `venomqa.yaml`, as `#[venom_test(config = "..")]`: how a session
    /// is opened by hand on an entry (its backend, URL, pool and setup).
    ///
    /// ```
    /// use venomqa::memory::MemorySession;
    /// # let dir = std::env::temp_dir().join(format!("venomqa-entry-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # std::fs::write(dir.join("venomqa.yaml"), "backends:\n  notes:\n    backend: memory\n").unwrap();
    ///
    /// // venomqa.yaml (found from `dir` upward):  backends: { notes: { backend: memory } }
    /// let mut db = MemorySession::builder().config_dir(&dir).entry("notes").name("by_hand").open()?;
    /// assert_eq!((db.config().entry.as_str(), db.backend_name()), ("notes", "memory"));
    /// db.connection().set("k", "v");
    /// db.finish()?; // rolled back, as at the end of a test
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn entry(mut self, entry: impl Into<String>) -> Self {
        self.entry = Some(entry.into());
        self
    }

    /// The URL, as `#[venom_test(url = "..")]` (`VENOMQA_<ENTRY>_URL` still wins).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The session's name, for messages (default: the backend or entry name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs on `config` as it is, instead of an entry resolved from `venomqa.yaml` and the
    /// environment: for harnesses that build their configuration in code (a server
    /// started by the test, its own timeouts). Sessions of equal configurations share a
    /// pool.
    ///
    /// ```
    /// use std::time::Duration;
    /// use venomqa::BackendConfig;
    ///
    /// let mut config = BackendConfig::new("memory");
    /// config.connect_timeout = Some(Duration::from_millis(500));
    /// let db = <venomqa::Session>::builder().with_config(config).name("in_code").open()?;
    /// assert_eq!(db.config().connect_timeout, Some(Duration::from_millis(500)));
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn with_config(mut self, config: crate::BackendConfig) -> Self {
        self.resolved = Some(config);
        self
    }

    /// Where to look for `venomqa.yaml` (and its parents); default `CARGO_MANIFEST_DIR`,
    /// else the current directory.
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The configuration the session will run on: the entry chosen, resolved against
    /// `venomqa.yaml` and the environment (URL with its password masked when printed).
    ///
    /// ```
    /// let config = <venomqa::Session>::builder().backend("memory").config()?;
    /// assert_eq!((config.entry.as_str(), config.backend.as_str()), ("memory", "memory"));
    /// # Ok::<(), venomqa::Error>(())
    /// ```
    pub fn config(&self) -> Result<crate::BackendConfig> {
        if let Some(config) = &self.resolved {
            return Ok(config.clone());
        }
        Config::discover_cached(&self.dir())?.resolve(self.selection())
    }

    /// The counters of the pool this builder's sessions lease from.
    #[doc(hidden)]
    pub fn pool_stats(&self) -> Result<crate::pool::PoolStats> {
        Ok(registry::pool(&self.config()?)?.stats())
    }

    fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from))
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default()
    }

    fn selection(&self) -> Selection<'_> {
        let selection = Selection {
            backend: self.backend.as_deref(),
            entry: self.entry.as_deref(),
            url: self.url.as_deref(),
        };
        match (selection.backend, selection.entry) {
            (None, None) => Selection {
                backend: M::default_backend(),
                ..selection
            },
            _ => selection,
        }
    }

    fn session_name(&self) -> String {
        self.name
            .as_deref()
            .or(self.entry.as_deref())
            .or(self.backend.as_deref())
            .or(self.resolved.as_ref().map(|c| c.entry.as_str()))
            .or(M::default_backend())
            .unwrap_or("session")
            .to_owned()
    }

    /// Leases a connection from the shared pool of the chosen entry and opens the root
    /// checkpoint.
    pub fn open(self) -> Result<Session<M>> {
        let config = self.config()?;
        Session::lease(&config, &self.session_name())
    }

    /// Runs `body` as `#[venom_test]` runs a test: opens the session, runs the body, rolls
    /// back (always), and returns the body's value, or re-raises its panic. Panics, as a
    /// failing test does, when the session cannot start or the rollback fails.
    ///
    /// ```
    /// use venomqa::sqlite::SqliteSession;
    ///
    /// let rows = SqliteSession::builder().run(|db| {
    ///     db.conn().execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)")?;
    ///     db.conn().query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
    /// });
    /// assert_eq!(rows.unwrap(), 1); // and the table is gone again
    /// ```
    pub fn run<R: TestOutcome>(self, body: impl FnOnce(&mut Session<M>) -> R) -> R {
        let name = self.session_name();
        let mut session = match self.open() {
            Ok(session) => session,
            Err(e) => panic!("venomqa could not start test {name}: {e}"),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut session)));
        session.costs.outcome = Some(match &outcome {
            Ok(value) if value.is_ok() => "ok",
            Ok(_) => "err",
            Err(_) => "panic",
        });
        let rolled_back = session.finish();
        match (outcome, rolled_back) {
            (Ok(value), Ok(())) => value,
            // A lost connection is not a rollback that failed: the server discarded the
            // open transaction. Say that, and never that the test passed.
            (Ok(value), Err(e @ Error::ConnectionLost { .. })) => panic!(
                "test {name} failed ({}); its connection was lost before the rollback at its end: {e}",
                value.describe()
            ),
            (Ok(value), Err(e)) => panic!(
                "test {name} failed: the rollback at its end failed ({}): {e}",
                value.describe()
            ),
            (Err(panic), Ok(())) => resume_unwind(panic),
            (Err(panic), Err(e @ Error::ConnectionLost { .. })) => {
                eprintln!("venomqa: test {name} panicked; its connection was lost: {e}");
                resume_unwind(panic)
            }
            (Err(panic), Err(e)) => {
                eprintln!(
                    "venomqa: test {name} panicked, and the rollback at its end failed too: {e}"
                );
                resume_unwind(panic)
            }
        }
    }
}
