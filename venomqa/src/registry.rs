//! Backends registered by name.
//!
//! The built-in backends are registered when the registry is first used. Your own are
//! registered in code with [`register`], or at start-up with the
//! [`register_backend!`](crate::register_backend) macro: a typed [`Backend`] by its type,
//! or a hand-written [`StateManager`] by a name and a factory.
//!
//! A test's session leases a connected manager from a pool the registry builds, lazily,
//! for each distinct configuration; see [`Session`](crate::Session).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::backend::{Backend, Capture};
use crate::config::BackendConfig;
use crate::connected::Connected;
use crate::error::{Error, Result};
use crate::manager::{build, Manager};
use crate::pool::{AnyPool, Connector, Pool};
use crate::state::{MakePool, Open, StateManager};

pub use crate::pool::SetupFn;

/// Builds an entry's pool, given its setup function.
type BuildPool =
    dyn Fn(&BackendConfig, Option<Arc<SetupFn>>) -> Result<Arc<dyn AnyPool>> + Send + Sync;
/// Connects one manager of an entry, outside any pool.
type Connect = dyn Fn(&BackendConfig) -> Result<Box<dyn StateManager>> + Send + Sync;

/// A backend as the registry knows it: a name, and how to build its managers from a
/// configuration entry.
///
/// ```
/// use venomqa::memory::Memory;
/// use venomqa::registry::{self, Registration};
///
/// // A typed backend under its own name, or under another one.
/// registry::register(Registration::of::<Memory>().named("scratch"));
/// assert!(registry::backends().contains(&"scratch".to_owned()));
/// ```
#[derive(Clone)]
pub struct Registration {
    name: String,
    pool: Arc<BuildPool>,
    connect: Arc<Connect>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// The typed backend `B`, under [`B::NAME`](Backend::NAME). Each pool builds one `B`
    /// from its entry (URL and options) and opens its connections with it.
    pub fn of<B: Backend>() -> Self {
        Registration {
            name: B::NAME.to_owned(),
            pool: Arc::new(|config: &BackendConfig, setup| {
                let typed = Arc::new(Typed(Arc::new(build::<B>(config)?)));
                Ok(Arc::new(Pool::new(config.clone(), typed, setup)) as Arc<dyn AnyPool>)
            }),
            connect: Arc::new(|config: &BackendConfig| {
                let typed = Typed(Arc::new(build::<B>(config)?));
                let live = crate::pool::open_retrying(&typed, config)?;
                Ok(Box::new(Manager::of(live)) as Box<dyn StateManager>)
            }),
        }
    }

    /// A transaction backend `B` and its capture backend `C` under `B`'s name: an entry
    /// that asks for capture ([`Capture::wanted`], `isolation: capture`) gets a pool of
    /// `C`, any other a pool of `B`. The built-in backends with capture are registered so.
    pub fn with_capture<B: Backend, C: Capture>() -> Self {
        let (plain, capture) = (Self::of::<B>(), Self::of::<C>());
        let (plain_connect, capture_connect) = (plain.connect.clone(), capture.connect.clone());
        Registration {
            name: B::NAME.to_owned(),
            pool: Arc::new(move |config: &BackendConfig, setup| {
                let chosen = if C::wanted(config)? { &capture } else { &plain };
                (chosen.pool)(config, setup)
            }),
            connect: Arc::new(move |config: &BackendConfig| {
                let chosen = if C::wanted(config)? {
                    &capture_connect
                } else {
                    &plain_connect
                };
                chosen(config)
            }),
        }
    }

    /// A hand-written manager: `factory` builds a (not yet connected) manager from the
    /// entry's configuration, and the registry connects it. Its pools hold
    /// `default_pool_size` managers unless the configuration says otherwise: a manager
    /// whose state is shared (a file, a service without per-connection isolation) must
    /// not be used by two tests at once, so 1 serializes the tests that use it.
    pub fn factory<M, F>(name: impl Into<String>, default_pool_size: usize, factory: F) -> Self
    where
        M: StateManager,
        F: Fn(&BackendConfig) -> Result<M> + Send + Sync + 'static,
    {
        let factory = Arc::new(factory);
        let pool_size = default_pool_size.max(1);
        let connector = move |config: &BackendConfig| Factory {
            config: config.clone(),
            factory: factory.clone(),
            pool_size,
        };
        let pooled = connector.clone();
        Registration {
            name: name.into(),
            pool: Arc::new(move |config: &BackendConfig, setup| {
                let factory = pooled(config);
                let open: Open<M> = Arc::new(move || factory.open());
                Ok(M::factory_pool(
                    open,
                    FactoryPool {
                        config: config.clone(),
                        setup,
                        pool_size,
                    },
                ))
            }),
            connect: Arc::new(move |config: &BackendConfig| {
                let manager = crate::pool::open_retrying(&connector(config), config)?;
                Ok(Box::new(manager) as Box<dyn StateManager>)
            }),
        }
    }

    /// The same backend under another name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The name it registers under.
    pub fn name(&self) -> &str {
        &self.name
    }
}

struct Typed<B: Backend>(Arc<B>);

impl<B: Backend> Connector<Connected<B>> for Typed<B> {
    fn open(&self) -> Result<Connected<B>> {
        Connected::open(self.0.clone())
    }

    fn pool_size(&self) -> usize {
        self.0.pool_size().max(1)
    }

    fn connect_timeout(&self) -> Option<Duration> {
        self.0.connect_timeout()
    }

    fn is_transient(&self, error: &Error) -> bool {
        self.0.is_transient(error)
    }
}

/// Builds a factory registration's pool, of whatever its managers hand the pool (see
/// [`StateManager::factory_pool`]).
struct FactoryPool {
    config: BackendConfig,
    setup: Option<Arc<SetupFn>>,
    pool_size: usize,
}

impl MakePool for FactoryPool {
    type Pool = Arc<dyn AnyPool>;

    fn make<T: StateManager>(self, open: Open<T>) -> Arc<dyn AnyPool> {
        let opener = Arc::new(Opener {
            open,
            pool_size: self.pool_size,
        });
        Arc::new(Pool::new(self.config, opener, self.setup))
    }
}

/// Opens a factory's items, as the pool asks.
struct Opener<T> {
    open: Open<T>,
    pool_size: usize,
}

impl<T: StateManager> Connector<T> for Opener<T> {
    fn open(&self) -> Result<T> {
        (self.open)()
    }

    fn pool_size(&self) -> usize {
        self.pool_size
    }
}

struct Factory<F> {
    config: BackendConfig,
    factory: Arc<F>,
    pool_size: usize,
}

impl<M, F> Connector<M> for Factory<F>
where
    M: StateManager,
    F: Fn(&BackendConfig) -> Result<M> + Send + Sync + 'static,
{
    fn open(&self) -> Result<M> {
        let mut manager = (self.factory)(&self.config)?;
        manager.connect()?;
        Ok(manager)
    }

    fn pool_size(&self) -> usize {
        self.pool_size
    }
}

/// The number of tests `cargo test` runs at once in this process (moved to a module below
/// the registry; kept here for code that named it).
#[doc(hidden)]
pub use crate::util::test_threads;

#[derive(Default)]
struct Registry {
    backends: RwLock<BTreeMap<String, Registration>>,
    setups: RwLock<HashMap<String, Arc<SetupFn>>>,
    pools: Mutex<HashMap<BackendConfig, Arc<dyn AnyPool>>>,
}

/// A registration made at link time by [`register_backend!`](crate::register_backend) or
/// [`register_setup!`](crate::register_setup) (collected with `inventory`): the registry
/// applies every one when it is first used, after its built-in backends. Nothing of the
/// user's runs before `main`; the functions run on first use.
#[doc(hidden)]
pub enum AtLinkTime {
    /// A backend's registration.
    Backend(fn() -> Registration),
    /// An entry's setup function.
    Setup(fn() -> (String, Arc<SetupFn>)),
}

inventory::collect!(AtLinkTime);

/// `setup` as the registry keeps it (for [`register_setup!`](crate::register_setup), which
/// gives the closure its parameter type through this signature).
#[doc(hidden)]
pub fn setup_fn(
    setup: impl Fn(&mut dyn StateManager) -> Result<()> + Send + Sync + 'static,
) -> Arc<SetupFn> {
    Arc::new(setup)
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let registry = Registry::default();
    {
        let mut backends = registry.backends.write();
        for backend in builtins() {
            backends.insert(backend.name.clone(), backend);
        }
        let mut setups = registry.setups.write();
        for item in inventory::iter::<AtLinkTime> {
            match item {
                AtLinkTime::Backend(registration) => {
                    let backend = registration();
                    tracing::debug!(target: "venomqa", backend = %backend.name, "backend registered");
                    backends.insert(backend.name.clone(), backend);
                }
                AtLinkTime::Setup(setup) => {
                    let (entry, setup) = setup();
                    setups.insert(entry, setup);
                }
            }
        }
    }
    registry
});

/// Registers a backend, replacing any backend of the same name (a user's `"sqlite"`
/// replaces the built-in one). Pools already built keep the backend they were built with.
pub fn register(backend: Registration) {
    tracing::debug!(target: "venomqa", backend = %backend.name, "backend registered");
    REGISTRY
        .backends
        .write()
        .insert(backend.name.clone(), backend);
}

/// Registers a setup function for a configuration entry (a backend's name, or a named
/// entry of `venomqa.yaml`). It runs on the first connected manager of the entry's pool,
/// before the first lease, after the entry's `setup:` files if it has any. Register it before the
/// entry's first session: its pool takes the function when it is built.
pub fn register_setup(
    entry: &str,
    setup: impl Fn(&mut dyn StateManager) -> Result<()> + Send + Sync + 'static,
) {
    REGISTRY
        .setups
        .write()
        .insert(entry.to_owned(), Arc::new(setup));
}

pub(crate) fn setup_of(entry: &str) -> Option<Arc<SetupFn>> {
    REGISTRY.setups.read().get(entry).cloned()
}

/// The names of the registered backends, sorted.
pub fn backends() -> Vec<String> {
    REGISTRY.backends.read().keys().cloned().collect()
}

fn registration(name: &str) -> Result<Registration> {
    let backends = REGISTRY.backends.read();
    backends
        .get(name)
        .cloned()
        .ok_or_else(|| Error::UnknownBackend {
            name: name.to_owned(),
            registered: backends.keys().cloned().collect::<Vec<_>>().join(", "),
        })
}

/// Builds and connects a manager of `config`'s backend, outside any pool.
///
/// ```
/// use venomqa::{registry, BackendConfig};
///
/// let mut m = registry::connect(&BackendConfig::new("memory"))?;
/// m.checkpoint("start")?;
/// assert_eq!(m.checkpoints(), ["start"]);
/// # Ok::<(), venomqa::Error>(())
/// ```
///
/// A server that refuses or resets the connection (one restarting) is tried again, with a
/// short backoff, until the connect timeout.
pub fn connect(config: &BackendConfig) -> Result<Box<dyn StateManager>> {
    (registration(&config.backend)?.connect)(config)
}

/// The shared pool for `config`, built on first use: one pool per distinct configuration,
/// typed by what it holds and kept behind one type erasure.
#[doc(hidden)]
pub fn pool(config: &BackendConfig) -> Result<Arc<dyn AnyPool>> {
    if let Some(pool) = REGISTRY.pools.lock().get(config) {
        return Ok(pool.clone());
    }
    // A worker database was set up when it was made (crate::workers).
    let setup = match config.worker {
        Some(_) => None,
        None => setup_of(&config.entry),
    };
    let built = (registration(&config.backend)?.pool)(config, setup)?;
    let mut pools = REGISTRY.pools.lock();
    Ok(pools.entry(config.clone()).or_insert(built).clone())
}

/// The built-in backends, registered when the registry is first used.
fn builtins() -> Vec<Registration> {
    #[allow(unused_mut)]
    let mut all = vec![Registration::of::<crate::backends::memory::Memory>()];
    #[cfg(feature = "sqlite")]
    all.push(Registration::with_capture::<
        crate::backends::sqlite::Sqlite,
        crate::backends::sqlite::SqliteCapture,
    >());
    #[cfg(feature = "mysql")]
    all.push(Registration::with_capture::<
        crate::backends::mysql::MySql,
        crate::backends::mysql::MySqlCapture,
    >());
    #[cfg(feature = "postgres")]
    all.push(Registration::with_capture::<
        crate::backends::postgres::Postgres,
        crate::backends::postgres::PostgresCapture,
    >());
    #[cfg(feature = "redis")]
    all.push(Registration::with_capture::<
        crate::backends::redis::Redis,
        crate::backends::redis::RedisCapture,
    >());
    #[cfg(feature = "mongodb")]
    all.push(Registration::with_capture::<
        crate::backends::mongodb::MongoDb,
        crate::backends::mongodb::MongoDbCapture,
    >());
    #[cfg(feature = "sqlx-postgres")]
    all.push(Registration::of::<crate::backends::sqlx::SqlxPostgres>());
    #[cfg(feature = "sqlx-mysql")]
    all.push(Registration::of::<crate::backends::sqlx::SqlxMySql>());
    #[cfg(feature = "sqlx-sqlite")]
    all.push(Registration::of::<crate::backends::sqlx::SqlxSqlite>());
    all
}
