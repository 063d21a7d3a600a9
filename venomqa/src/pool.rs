//! The lazily built pools of connected managers that every test of a process shares.
//!
//! A pool opens connections on demand, up to its size, and hands each test one at a time
//! (a [`Lease`]). A pool is typed by what it holds: a typed backend's pool holds
//! [`Connected<B>`](crate::Connected) values, a hand-written manager's pool the manager.
//! The registry keeps each behind one type erasure ([`AnyPool`]). An item that fails its
//! [`health_check`](StateManager::health_check) before a lease, or whose test could not roll
//! back, is dropped and replaced by a new connection. Not a public API: sessions are.

use std::any::Any;
use std::mem::ManuallyDrop;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::BackendConfig;
use crate::error::{BoxError, Error, Result};
use crate::state::StateManager;
use crate::util::micros;

/// A setup function: runs on a freshly connected manager, once per process (or once per
/// connection for backends whose connections each see private data).
pub type SetupFn = dyn Fn(&mut dyn StateManager) -> Result<()> + Send + Sync;

/// What a pool opens its items with: built once per configuration.
pub(crate) trait Connector<T>: Send + Sync {
    /// A new, connected item.
    fn open(&self) -> Result<T>;
    /// The pool size when the configuration sets none.
    fn pool_size(&self) -> usize;
    /// How long to keep retrying a transient connect failure, if the backend knows.
    fn connect_timeout(&self) -> Option<Duration> {
        None
    }
    /// Whether a failed [`open`](Self::open) may succeed if tried again soon.
    fn is_transient(&self, error: &Error) -> bool {
        error.is_transient()
    }
}

/// How long a test waits for a free pooled connection unless `lease_timeout_ms` says otherwise.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(300);

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

struct PoolState<T> {
    idle: Vec<T>,
    live: usize,
}

/// A setup failure, kept so every later lease of the pool reports it.
#[derive(Clone)]
struct SetupFailure {
    step: String,
    message: String,
}

/// Connected items of one backend + configuration, shared by every test of the process.
pub struct Pool<T> {
    config: BackendConfig,
    connector: Arc<dyn Connector<T>>,
    /// The entry's registered setup function, if any (run after its `setup:` files).
    setup_fn: Option<Arc<SetupFn>>,
    size: usize,
    state: Mutex<PoolState<T>>,
    returned: Condvar,
    setup: OnceLock<std::result::Result<(), SetupFailure>>,
    opened: AtomicUsize,
    leases: AtomicUsize,
    replaced: AtomicUsize,
}

impl<T: StateManager> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("entry", &self.config.entry)
            .field("backend", &self.config.backend)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T: StateManager> Pool<T> {
    pub(crate) fn new(
        config: BackendConfig,
        connector: Arc<dyn Connector<T>>,
        setup: Option<Arc<SetupFn>>,
    ) -> Self {
        let size = config.pool_size.unwrap_or_else(|| connector.pool_size());
        Pool {
            config,
            connector,
            setup_fn: setup,
            size: size.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                live: 0,
            }),
            returned: Condvar::new(),
            setup: OnceLock::new(),
            opened: AtomicUsize::new(0),
            leases: AtomicUsize::new(0),
            replaced: AtomicUsize::new(0),
        }
    }

    /// The configuration the pool's managers are built from.
    pub fn config(&self) -> &BackendConfig {
        &self.config
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        let state = self.state.lock();
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
    pub fn lease(self: &Arc<Self>) -> Result<Lease<T>> {
        let started = Instant::now();
        let timeout = self.config.lease_timeout.unwrap_or(DEFAULT_LEASE_TIMEOUT);
        let deadline = started + timeout;
        let mut state = self.state.lock();
        loop {
            if let Some(mut manager) = state.idle.pop() {
                drop(state);
                // A health check that panics counts as failed; the slot is never lost.
                let healthy =
                    catch_unwind(AssertUnwindSafe(|| manager.lease_check())).unwrap_or(false);
                if healthy {
                    return Ok(self.hand_out(manager, started, None));
                }
                tracing::warn!(target: "venomqa", backend = %self.config.backend, "pooled manager failed its health check; replacing it");
                self.forget(manager);
                state = self.state.lock();
                continue;
            }
            if state.live < self.size {
                state.live += 1;
                drop(state);
                // The slot goes back if opening fails or panics (a factory, connect() or a
                // setup function of the user's); otherwise the new manager keeps it.
                let slot = Slot(self);
                let opening = Instant::now();
                let manager = self.open()?;
                let connect = opening.elapsed();
                std::mem::forget(slot);
                return Ok(self.hand_out(manager, started, Some(connect)));
            }
            if self.returned.wait_until(&mut state, deadline).timed_out() {
                return Err(Error::PoolTimeout {
                    backend: self.config.backend.clone(),
                    pool_size: self.size,
                    waited_ms: timeout.as_millis(),
                });
            }
        }
    }

    fn hand_out(
        self: &Arc<Self>,
        manager: T,
        started: Instant,
        connect: Option<Duration>,
    ) -> Lease<T> {
        self.leases.fetch_add(1, Ordering::Relaxed);
        let timing = LeaseTiming {
            total: started.elapsed(),
            connect,
        };
        tracing::trace!(
            target: "venomqa",
            backend = %self.config.backend,
            entry = %self.config.entry,
            lease_us = micros(timing.total),
            connect_us = timing.connect.map(micros),
            "connection leased"
        );
        Lease {
            manager: ManuallyDrop::new(manager),
            pool: self.clone(),
            broken: false,
            timing,
        }
    }

    /// Drops a manager that must not be reused, making room for a new one.
    fn forget(&self, manager: T) {
        let _slot = Slot(self);
        self.replaced.fetch_add(1, Ordering::Relaxed);
        let _ = catch_unwind(AssertUnwindSafe(|| manager.close_pooled()));
    }

    fn open(&self) -> Result<T> {
        let mut manager = open_retrying(self.connector.as_ref(), &self.config)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "venomqa", backend = %self.config.backend, entry = %self.config.entry, "connection opened");
        // Whether setup ran on this connection (so it may have left session state).
        let mut set_up = false;
        if manager.setup_per_connection() {
            set_up = self.run_setup(&mut manager)?;
        } else {
            self.setup
                .get_or_init(|| {
                    let ran = self.run_setup(&mut manager);
                    set_up = matches!(ran, Ok(true));
                    ran.map(drop).map_err(|e| match e {
                        Error::Setup { step, source, .. } => SetupFailure {
                            step,
                            message: source.to_string(),
                        },
                        other => SetupFailure {
                            step: "setup".into(),
                            message: other.to_string(),
                        },
                    })
                })
                .clone()
                .map_err(|failure| Error::Setup {
                    entry: self.config.entry.clone(),
                    step: failure.step,
                    source: failure.message.into(),
                })?;
        }
        // A connection setup ran on passes its health check before a test gets it: backends
        // use it to clear session state, such as what a setup script left. A connection
        // just opened has nothing to clear, and connecting proved it works: no round trip
        // (one less per process under nextest).
        if set_up && !manager.health_check() {
            return Err(Error::backend(
                &self.config.backend,
                "the health check of a new connection",
                "it failed right after the connection was opened and set up; check the server's log and the setup step",
            ));
        }
        Ok(manager)
    }

    /// Runs the entry's setup files and function on `manager`; whether there was any.
    fn run_setup(&self, manager: &mut dyn StateManager) -> Result<bool> {
        run_setup(&self.config, self.setup_fn.as_deref(), manager)
    }
}

/// Runs `config`'s setup files, then `function`, on `manager`; whether there was any.
pub(crate) fn run_setup(
    config: &BackendConfig,
    function: Option<&SetupFn>,
    manager: &mut dyn StateManager,
) -> Result<bool> {
    let failed = |step: String, source: BoxError| Error::Setup {
        entry: config.entry.clone(),
        step,
        source,
    };
    let mut ran = false;
    if let Some(path) = &config.setup {
        ran = true;
        for file in setup_files(path).map_err(|e| failed(path.display().to_string(), e))? {
            let step = file.display().to_string();
            let script =
                std::fs::read_to_string(&file).map_err(|e| failed(step.clone(), e.into()))?;
            manager
                .execute_script(&script)
                .map_err(|e| failed(step, e.into()))?;
        }
    }
    if let Some(function) = function {
        ran = true;
        function(manager).map_err(|e| failed("the registered setup function".into(), e.into()))?;
    }
    Ok(ran)
}

/// How long connecting keeps trying a server that refuses unless configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The first pause between two connection attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Opens a connected manager, trying again while the failure is transient (refused,
/// reset, "starting up": a server restarting) and the connect timeout has not passed.
/// The error of the last attempt says how many were made and names the entry's URL
/// variable.
pub(crate) fn open_retrying<T>(connector: &dyn Connector<T>, config: &BackendConfig) -> Result<T> {
    let timeout = connector
        .connect_timeout()
        .or(config.connect_timeout)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let error = match connector.open() {
            Ok(manager) => {
                if attempts > 1 {
                    tracing::info!(target: "venomqa", backend = %config.backend, entry = %config.entry, attempts, waited_ms = micros(started.elapsed()) / 1000, "connected after retrying");
                }
                return Ok(manager);
            }
            Err(e) => e,
        };
        let elapsed = started.elapsed();
        if !connector.is_transient(&error) || elapsed + backoff >= timeout {
            return Err(match error {
                // Name the variable that overrides this entry, not the backend's, and
                // say how long it was tried.
                Error::Connect {
                    backend,
                    url,
                    source,
                    ..
                } => Error::Connect {
                    backend,
                    url,
                    source,
                    env_var: config.url_env_var(),
                    attempts,
                    waited_ms: u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX),
                },
                other => other,
            });
        }
        tracing::debug!(target: "venomqa", backend = %config.backend, attempts, error = %error, "connect failed; trying again");
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One place in a pool's count of live managers, given back (and a waiting lease woken)
/// when dropped, including while a panic unwinds.
struct Slot<'a, T>(&'a Pool<T>);

impl<T> Drop for Slot<'_, T> {
    fn drop(&mut self) {
        self.0.state.lock().live -= 1;
        self.0.returned.notify_one();
    }
}

/// The `.sql` files a `setup:` path names: the file itself, or a directory's `*.sql` files
/// in name order.
pub(crate) fn setup_files(path: &Path) -> std::result::Result<Vec<std::path::PathBuf>, BoxError> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path)?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("the directory holds no .sql files".into());
    }
    Ok(files)
}

/// One test's exclusive use of a pooled item. Dropping it returns the item to the pool,
/// or drops it if it was [marked broken](Self::mark_broken) or still has checkpoints.
pub struct Lease<T: StateManager> {
    /// Taken out only in `drop`.
    manager: ManuallyDrop<T>,
    pool: Arc<Pool<T>>,
    broken: bool,
    timing: LeaseTiming,
}

/// How long taking a [`Lease`] took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseTiming {
    /// From asking for a connection to holding one: waiting for a free one, the health
    /// check, and connecting (with setup) if a new one was opened.
    pub total: Duration,
    /// Connecting and running setup, when this lease opened a new connection.
    pub connect: Option<Duration>,
}

impl<T: StateManager> fmt::Debug for Lease<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("backend", &self.pool.config.backend)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<T: StateManager> Lease<T> {
    /// The leased item.
    pub fn manager(&mut self) -> &mut T {
        &mut self.manager
    }

    /// The leased item.
    pub fn manager_ref(&self) -> &T {
        &self.manager
    }

    /// The configuration of the pool the item came from.
    pub fn config(&self) -> &BackendConfig {
        &self.pool.config
    }

    /// How long taking this lease took.
    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// Makes the pool drop this item instead of handing it to the next test.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl<T: StateManager> Drop for Lease<T> {
    fn drop(&mut self) {
        // SAFETY: `manager` is taken once, here, and `self` is not used after `drop`.
        let manager = unsafe { ManuallyDrop::take(&mut self.manager) };
        if self.broken || !manager.checkpoints().is_empty() || !manager.is_connected() {
            self.pool.forget(manager);
        } else {
            self.pool.state.lock().idle.push(manager);
            self.pool.returned.notify_one();
        }
    }
}

/// A pool of any item type, as the registry keeps it: what an untyped session needs, and
/// the pool itself for a typed session to take back.
pub trait AnyPool: Send + Sync {
    /// A lease, as an untyped session holds it.
    fn lease_any(self: Arc<Self>) -> Result<Box<dyn AnyLease>>;
    /// The pool's counters.
    fn stats(&self) -> PoolStats;
    /// The pool, for [`downcast`](Arc::downcast) to `Pool<T>`.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// The type of what it holds, for messages.
    fn item_type(&self) -> &'static str;
}

impl<T: StateManager> AnyPool for Pool<T> {
    fn lease_any(self: Arc<Self>) -> Result<Box<dyn AnyLease>> {
        Ok(Box::new(self.lease()?))
    }

    fn stats(&self) -> PoolStats {
        Pool::stats(self)
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn item_type(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A [`Lease`] of any item type, seen as a `dyn StateManager`.
pub trait AnyLease: Send {
    /// The leased item.
    fn manager(&mut self) -> &mut dyn StateManager;
    /// The leased item.
    fn manager_ref(&self) -> &dyn StateManager;
    /// See [`Lease::config`].
    fn config(&self) -> &BackendConfig;
    /// See [`Lease::timing`].
    fn timing(&self) -> LeaseTiming;
    /// See [`Lease::mark_broken`].
    fn mark_broken(&mut self);
}

impl<T: StateManager> AnyLease for Lease<T> {
    fn manager(&mut self) -> &mut dyn StateManager {
        Lease::<T>::manager(self)
    }
    fn manager_ref(&self) -> &dyn StateManager {
        Lease::<T>::manager_ref(self)
    }
    fn config(&self) -> &BackendConfig {
        Lease::<T>::config(self)
    }
    fn timing(&self) -> LeaseTiming {
        Lease::<T>::timing(self)
    }
    fn mark_broken(&mut self) {
        Lease::<T>::mark_broken(self);
    }
}
