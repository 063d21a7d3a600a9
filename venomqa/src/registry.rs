//! Backends registered by name, and the lazily built pools of connected managers that
//! every test of a process shares.
//!
//! The built-in backends are registered when the registry is first used. Your own are
//! registered in code with [`register`] / [`register_backend`], or at start-up with the
//! [`register_backend!`](crate::register_backend) macro.
//!
//! A pool is built for each backend + configuration entry + URL the first time a test asks
//! for it. It opens connections on demand, up to its size, and hands each test one
//! connected manager at a time (a [`Lease`]). A manager that fails its
//! [`health_check`](StateManager::health_check) before a lease, or whose test could not roll
//! back, is dropped and replaced by a new connection.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::state::StateManager;

type FactoryFn = dyn Fn(&BackendConfig) -> Result<Box<dyn StateManager>> + Send + Sync;
type PoolSizeFn = dyn Fn(&BackendConfig) -> usize + Send + Sync;
/// A setup function: runs on a freshly connected manager, once per process (or once per
/// connection for backends whose connections each see private data).
pub type SetupFn = dyn Fn(&mut dyn StateManager) -> Result<()> + Send + Sync;

/// How long a test waits for a free pooled connection unless `lease_timeout_ms` says otherwise.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(300);

/// A backend: a name and a factory that builds a (not yet connected) manager from a
/// [`BackendConfig`].
#[derive(Clone)]
pub struct Backend {
    name: String,
    factory: Arc<FactoryFn>,
    default_pool_size: Arc<PoolSizeFn>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend named `name` whose managers `factory` builds. The registry connects them.
    ///
    /// Its pools hold one manager unless [`default_pool_size`](Self::default_pool_size) or
    /// the configuration's `pool_size` says more: a manager whose state is shared (a file,
    /// a remote service without per-connection isolation) must not be used by two tests at
    /// once, so the safe default serializes the tests that use it.
    pub fn new<M, F>(name: impl Into<String>, factory: F) -> Self
    where
        M: StateManager,
        F: Fn(&BackendConfig) -> Result<M> + Send + Sync + 'static,
    {
        Backend {
            name: name.into(),
            factory: Arc::new(move |config| {
                factory(config).map(|m| Box::new(m) as Box<dyn StateManager>)
            }),
            default_pool_size: Arc::new(|_| 1),
        }
    }

    /// Pool size used when the configuration sets none.
    pub fn default_pool_size(mut self, size: usize) -> Self {
        let size = size.max(1);
        self.default_pool_size = Arc::new(move |_| size);
        self
    }

    /// Pool size computed from the configuration when it sets none (SQLite uses one
    /// connection for a file and one per test thread for `:memory:`).
    pub fn default_pool_size_with(
        mut self,
        size: impl Fn(&BackendConfig) -> usize + Send + Sync + 'static,
    ) -> Self {
        self.default_pool_size = Arc::new(move |c| size(c).max(1));
        self
    }

    /// The backend's registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Builds and connects a manager outside any pool.
    pub fn connect(&self, config: &BackendConfig) -> Result<Box<dyn StateManager>> {
        let mut manager = (self.factory)(config)?;
        manager.connect()?;
        Ok(manager)
    }
}

/// The number of tests `cargo test` runs at once in this process: `RUST_TEST_THREADS`, else
/// the available parallelism. Server-backed pools default to this size.
pub fn test_threads() -> usize {
    std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

#[derive(Default)]
struct Registry {
    backends: RwLock<BTreeMap<String, Backend>>,
    setups: RwLock<HashMap<String, Arc<SetupFn>>>,
    pools: Mutex<HashMap<BackendConfig, Arc<Pool>>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let registry = Registry::default();
    {
        let mut backends = write(&registry.backends);
        for backend in crate::backends::builtins() {
            backends.insert(backend.name.clone(), backend);
        }
    }
    registry
});

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers a backend, replacing any backend of the same name (a user's `"sqlite"`
/// replaces the built-in one). Pools already built keep the backend they were built with.
pub fn register(backend: Backend) {
    tracing::debug!(target: "venomqa", backend = %backend.name, "backend registered");
    write(&REGISTRY.backends).insert(backend.name.clone(), backend);
}

/// Registers `factory` as backend `name` (see [`Backend::new`]).
///
/// ```
/// use venomqa::memory::MemoryStateManager;
/// venomqa::registry::register_backend("scratch", |_config| Ok(MemoryStateManager::new()));
/// assert!(venomqa::registry::backends().contains(&"scratch".to_owned()));
/// ```
pub fn register_backend<M, F>(name: &str, factory: F)
where
    M: StateManager,
    F: Fn(&BackendConfig) -> Result<M> + Send + Sync + 'static,
{
    register(Backend::new(name, factory));
}

/// Registers a setup function for a configuration entry (a backend's name, or a named
/// entry of `venomqa.yaml`). It runs on the first connected manager of the entry's pool,
/// before the first lease, after the entry's `setup:` files if it has any.
pub fn register_setup(
    entry: &str,
    setup: impl Fn(&mut dyn StateManager) -> Result<()> + Send + Sync + 'static,
) {
    write(&REGISTRY.setups).insert(entry.to_owned(), Arc::new(setup));
}

/// The names of the registered backends, sorted.
pub fn backends() -> Vec<String> {
    read(&REGISTRY.backends).keys().cloned().collect()
}

/// The backend registered as `name`.
pub fn backend(name: &str) -> Result<Backend> {
    let backends = read(&REGISTRY.backends);
    backends
        .get(name)
        .cloned()
        .ok_or_else(|| Error::UnknownBackend {
            name: name.to_owned(),
            registered: backends.keys().cloned().collect::<Vec<_>>().join(", "),
        })
}

/// The shared pool for `config`, built on first use: one pool per distinct configuration.
pub fn pool(config: &BackendConfig) -> Result<Arc<Pool>> {
    if let Some(pool) = lock(&REGISTRY.pools).get(config) {
        return Ok(pool.clone());
    }
    let backend = backend(&config.backend)?;
    let size = config
        .pool_size
        .unwrap_or_else(|| (backend.default_pool_size)(config));
    let mut pools = lock(&REGISTRY.pools);
    let pool = pools
        .entry(config.clone())
        .or_insert_with(|| {
            tracing::debug!(target: "venomqa", entry = %config.entry, backend = %config.backend, size, "pool created");
            Arc::new(Pool {
                config: config.clone(),
                backend,
                size,
                state: Mutex::new(PoolState::default()),
                returned: Condvar::new(),
                setup: OnceLock::new(),
                opened: AtomicUsize::new(0),
                leases: AtomicUsize::new(0),
                replaced: AtomicUsize::new(0),
            })
        })
        .clone();
    Ok(pool)
}

/// Counters of one pool, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The most managers the pool holds at once.
    pub size: usize,
    /// Managers built and connected since the pool was created.
    pub opened: usize,
    /// Managers that exist now (idle or leased).
    pub live: usize,
    /// Managers waiting in the pool now.
    pub idle: usize,
    /// Leases handed out since the pool was created.
    pub leases: usize,
    /// Managers dropped because they failed a health check or could not roll back.
    pub replaced: usize,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Box<dyn StateManager>>,
    live: usize,
}

/// Connected managers of one backend + configuration, shared by every test of the process.
pub struct Pool {
    config: BackendConfig,
    backend: Backend,
    size: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
    setup: OnceLock<std::result::Result<(), String>>,
    opened: AtomicUsize,
    leases: AtomicUsize,
    replaced: AtomicUsize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("entry", &self.config.entry)
            .field("backend", &self.config.backend)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// The configuration the pool's managers are built from.
    pub fn config(&self) -> &BackendConfig {
        &self.config
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        let state = lock(&self.state);
        PoolStats {
            size: self.size,
            opened: self.opened.load(Ordering::Relaxed),
            live: state.live,
            idle: state.idle.len(),
            leases: self.leases.load(Ordering::Relaxed),
            replaced: self.replaced.load(Ordering::Relaxed),
        }
    }

    /// Takes a healthy connected manager, opening one if the pool has room, else waiting
    /// for one to come back (up to the lease timeout).
    pub fn lease(self: &Arc<Self>) -> Result<Lease> {
        let timeout = self.config.lease_timeout.unwrap_or(DEFAULT_LEASE_TIMEOUT);
        let started = Instant::now();
        let mut state = lock(&self.state);
        loop {
            if let Some(mut manager) = state.idle.pop() {
                drop(state);
                // A health check that panics counts as failed; the slot is never lost.
                let healthy =
                    catch_unwind(AssertUnwindSafe(|| manager.health_check())).unwrap_or(false);
                if healthy {
                    return Ok(self.hand_out(manager));
                }
                tracing::warn!(target: "venomqa", backend = %self.config.backend, "pooled manager failed its health check; replacing it");
                self.forget(manager);
                state = lock(&self.state);
                continue;
            }
            if state.live < self.size {
                state.live += 1;
                drop(state);
                // The slot goes back if opening fails or panics (a factory, connect() or a
                // setup function of the user's); otherwise the new manager keeps it.
                let slot = Slot(self);
                let manager = self.open()?;
                std::mem::forget(slot);
                return Ok(self.hand_out(manager));
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::PoolTimeout {
                    backend: self.config.backend.clone(),
                    pool_size: self.size,
                    waited_ms: waited.as_millis(),
                });
            }
            state = self
                .returned
                .wait_timeout(state, timeout - waited)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn hand_out(self: &Arc<Self>, manager: Box<dyn StateManager>) -> Lease {
        self.leases.fetch_add(1, Ordering::Relaxed);
        Lease {
            manager: Some(manager),
            pool: self.clone(),
            broken: false,
        }
    }

    /// Drops a manager that must not be reused, making room for a new one.
    fn forget(&self, mut manager: Box<dyn StateManager>) {
        let _slot = Slot(self);
        self.replaced.fetch_add(1, Ordering::Relaxed);
        if manager.is_connected() {
            let _ = catch_unwind(AssertUnwindSafe(|| manager.disconnect()));
        }
    }

    fn open(&self) -> Result<Box<dyn StateManager>> {
        let mut manager = self.backend.connect(&self.config).map_err(|e| match e {
            // Name the variable that overrides this entry, not the backend's.
            Error::Connection {
                backend,
                url,
                cause,
                ..
            } => Error::Connection {
                backend,
                url,
                cause,
                env_var: self.config.url_env_var(),
            },
            other => other,
        })?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "venomqa", backend = %self.config.backend, entry = %self.config.entry, "connection opened");
        if manager.setup_per_connection() {
            self.run_setup(manager.as_mut())?;
        } else {
            self.setup
                .get_or_init(|| self.run_setup(manager.as_mut()).map_err(|e| e.to_string()))
                .clone()
                .map_err(|cause| Error::Setup {
                    entry: self.config.entry.clone(),
                    cause,
                })?;
        }
        // Every manager passes its health check before a test gets it, the first one too:
        // backends use it to clear session state, such as what a setup script left.
        if !manager.health_check() {
            return Err(Error::backend(
                &self.config.backend,
                "health check of a new connection",
                "the connection failed its health check right after it was opened (and set up); \
                 check the server's logs and the setup step",
            ));
        }
        Ok(manager)
    }

    fn run_setup(&self, manager: &mut dyn StateManager) -> Result<()> {
        let setup_error = |cause: String| Error::Setup {
            entry: self.config.entry.clone(),
            cause,
        };
        if let Some(path) = &self.config.setup {
            for file in setup_files(path).map_err(setup_error)? {
                let script = std::fs::read_to_string(&file)
                    .map_err(|e| setup_error(format!("cannot read {}: {e}", file.display())))?;
                manager
                    .execute_script(&script)
                    .map_err(|e| setup_error(format!("{}: {e}", file.display())))?;
            }
        }
        let function = read(&REGISTRY.setups).get(&self.config.entry).cloned();
        if let Some(function) = function {
            function(manager).map_err(|e| setup_error(e.to_string()))?;
        }
        Ok(())
    }
}

/// One place in a pool's count of live managers, given back (and a waiting lease woken)
/// when dropped, including while a panic unwinds.
struct Slot<'a>(&'a Pool);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).live -= 1;
        self.0.returned.notify_one();
    }
}

/// The `.sql` files a `setup:` path names: the file itself, or a directory's `*.sql` files
/// in name order.
fn setup_files(path: &Path) -> std::result::Result<Vec<std::path::PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("setup path {} cannot be read: {e}", path.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "setup directory {} holds no .sql files",
            path.display()
        ));
    }
    Ok(files)
}

/// One test's exclusive use of a pooled manager. Dropping it returns the manager to the
/// pool, or drops it if it was [marked broken](Self::mark_broken) or still has checkpoints.
pub struct Lease {
    manager: Option<Box<dyn StateManager>>,
    pool: Arc<Pool>,
    broken: bool,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("backend", &self.pool.config.backend)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The leased manager.
    pub fn manager(&mut self) -> &mut dyn StateManager {
        self.manager
            .as_deref_mut()
            .expect("manager present until drop")
    }

    /// The leased manager.
    pub fn manager_ref(&self) -> &dyn StateManager {
        self.manager.as_deref().expect("manager present until drop")
    }

    /// The configuration of the pool the manager came from.
    pub fn config(&self) -> &BackendConfig {
        &self.pool.config
    }

    /// The pool the manager came from.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Makes the pool drop this manager instead of handing it to the next test.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(manager) = self.manager.take() else {
            return;
        };
        if self.broken || !manager.checkpoints().is_empty() || !manager.is_connected() {
            self.pool.forget(manager);
        } else {
            lock(&self.pool.state).idle.push(manager);
            self.pool.returned.notify_one();
        }
    }
}
