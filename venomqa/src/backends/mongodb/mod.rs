//! The MongoDB backend, through the official `mongodb` driver (sync API for sync tests,
//! async handles for async tests).
//!
//! MongoDB transactions need a replica set, so this backend does not use them. Instead:
//!
//! - **A database per lease.** Every connection works in its own database, named
//!   `vq_<base>_<pid>_<counter>_<random>` (`<base>` is the `database` option, else the URL's
//!   default database, else `test`). A test's changes can only reach that database, so
//!   tests run in parallel, also across processes and CI shards sharing one server. The
//!   lease lives in the connection value ([`MongoDbConn`]): closing or dropping it drops the
//!   database and its lease record.
//! - **Checkpoints are snapshots.** A checkpoint reads the collections (all of them, or
//!   `collections_to_reset`) as raw BSON, byte for byte (ObjectId, DateTime, Decimal128,
//!   Binary, nested documents and arrays keep their exact types; nothing goes through JSON),
//!   together with each collection's options and index specifications; the [`Snapshot`] is
//!   the checkpoint's mark. A rollback drops the collections created since, recreates the
//!   ones dropped since, restores their options and indexes, and replaces their documents
//!   (`deleteMany` + `insertMany` in batches).
//! - **The root checkpoint is free.** A test starts on an empty database (or a fresh copy of
//!   `template_database`), so its root checkpoint records nothing, and the end of the test is
//!   one `dropDatabase`.
//! - **Leftovers are cleaned.** Each leased database has an owner record in the
//!   `venomqa_leases` database (host, process id and start time, a random token of the
//!   process, and `expires_at`: the server's time plus the owner's own `lease_ttl_secs`,
//!   renewed by a heartbeat thread). The first connection of every process drops the `vq_`
//!   databases whose owner is dead: a process on the same machine that the operating system
//!   says no longer runs (or runs with another start time: the pid was reused), or any
//!   owner whose `expires_at` has passed by the server's clock. Local clocks and the
//!   sweeper's own TTL play no part, so two live processes never drop each other's
//!   databases. The Redis backend's lease tokens use the same owner identity.
//!
//! URLs: any MongoDB connection string (`mongodb://user:pass@host:27017/app?authSource=admin`,
//! `mongodb+srv://...`); default [`DEFAULT_URL`]. Set it with `VENOMQA_MONGODB_URL` or `url:`
//! in `venomqa.yaml`. Unless the URL sets `serverSelectionTimeoutMS`, a connection attempt
//! gives up after 10 s (`connect_timeout_ms` in `venomqa.yaml` sets both timeouts).
//!
//! Configuration (`venomqa.yaml`; the keys are those of [`MongoDbOptions`]):
//!
//! ```yaml
//! backends:
//!   mongodb:
//!     url: mongodb://127.0.0.1:27017
//!     database: shop                 # base of the per-lease database names
//!     template_database: shop_seed   # every test's database starts as a copy of it
//!     collections_to_reset: [orders] # nested checkpoints and reset() cover only these
//!     pool_size: 8                   # default: the number of test threads
//!     isolation: database_per_lease  # or `shared`, `capture`: work in `database` itself
//!     lease_ttl_secs: 600            # how long our records stay valid without a heartbeat
//!     shared_lock_timeout_secs: 300  # isolation: shared: wait for the database this long
//! ```
//!
//! With `isolation: shared` the connection works directly in the `database` (as the Python
//! original does) and snapshots it at every checkpoint. Tests take turns on it, across
//! processes and machines: the outermost checkpoint takes a lock document in
//! `venomqa_leases.locks` (released when the outermost checkpoint ends, or when the
//! connection is closed or dropped), and the pool holds one connection.
//!
//! # Capture
//!
//! With `isolation: capture` the rollback undoes what ANY client wrote to the captured
//! database (`database:`, else the URL's): an API server in another process, the app's own
//! client. The code under test connects to [`Session::url`](crate::Session::url) and uses
//! the database [`database_name`](crate::Session::database_name).
//!
//! - **Checkpoint**: every collection is copied server-side into the snapshot database
//!   `vq_snap_<db>_<hash>_<depth>` ([`SNAPSHOT_PREFIX`]) with `$out` (no document crosses
//!   the network), and its type, options, index specifications and a *fingerprint* of its
//!   documents are recorded: `dbHash` where the server has it, else a hash of every
//!   document's raw BSON, streamed and never decoded (SecantusDB has neither `dbHash` nor
//!   a hash expression, and a `$group` checksum of `$bsonSize` misses type-only changes such
//!   as Int64 5 to Double 5.0). Then the copies and the originals are fingerprinted again: a
//!   collection written to meanwhile is copied again, up to `quiescence_timeout_ms`.
//! - **Rollback**: the collections are fingerprinted; only those that differ (missing,
//!   another type, options, indexes or documents) are restored, and those created since are
//!   dropped. Plain collections come back with `$out` from the copy, their indexes
//!   reconciled; collections with options (validator, collation, ...) are recreated with
//!   them and filled with `$merge`; capped and time-series ones (which `$out` and `$merge`
//!   cannot write to) are recreated and filled through the client, as raw BSON; views are
//!   recreated. Types survive exactly (nothing goes through JSON). Then it looks again:
//!   finding nothing to do is the **proof**; a collection found changed again was written
//!   during the rollback and is restored again, until `quiescence_timeout_ms` (default
//!   5000), when the error names the collections another client keeps writing to.
//! - **Taking turns**: the outermost checkpoint takes the database's lock
//!   (`venomqa_leases.locks`, as `isolation: shared` does); the pool holds one connection.
//! - **A process that dies**: the first checkpoint is recorded in `venomqa_leases.capture`
//!   (with what it copied) once its copy is complete; the next session on the database
//!   restores it before it starts, and drops the snapshot databases left behind.
//!   [`MongoDb::uninstall_capture`] does the same by hand.
//! - [`Session::diff`](crate::Session::diff) lists, per changed collection, the documents
//!   inserted, deleted and updated (by `_id`, with the top-level fields that differ, type
//!   included), and index or option changes.
//!
//! Costs grow with the data: a checkpoint copies everything (and fingerprints it twice), a
//! rollback fingerprints everything and copies back what changed; see `docs/mongodb.md`.
//!
//! ```
//! use venomqa::mongodb::{bson::{doc, Document}, MongoDb, MongoDbStateManager};
//! use venomqa::{BackendConfig, StateManager};
//!
//! # let url = std::env::var("VENOMQA_MONGODB_URL").unwrap_or(venomqa::mongodb::DEFAULT_URL.into());
//! // In venomqa.yaml: an entry with `isolation: capture` and `database: shop_doc`.
//! let config = BackendConfig::new("mongodb").with_url(&url)
//!     .with_option("isolation", "capture").with_option("database", "shop_doc");
//! let mut db = MongoDbStateManager::from_config(&config)?;
//! db.connect()?;
//! db.checkpoint("before_the_app")?; // the lock, then $out of every collection
//! // The app, with a client of its own (another process, in real life):
//! let app = venomqa::mongodb::driver::sync::Client::with_uri_str(db.url()?.expose()).unwrap();
//! app.database("shop_doc").collection::<Document>("orders").insert_one(doc! { "_id": 1 }).run().unwrap();
//! assert_eq!(db.diff("before_the_app")?.to_string(), "orders +1 (_id=1)");
//! db.rollback("before_the_app")?; // restores what differs: drops `orders`, created since
//! assert!(!app.database("shop_doc").list_collection_names().run().unwrap().contains(&"orders".to_owned()));
//! db.discard("before_the_app")?; // the end of the session: snapshots dropped, lock released
//! # Ok::<(), venomqa::Error>(())
//! ```
//!
//! Async tests: MongoDB's sync API panics inside a Tokio runtime, so with venomqa's `tokio`
//! feature every blocking call of this backend moves to a helper thread when it is made from
//! inside a runtime; [`async_database`](crate::Session::async_database) gives the test an async
//! handle on the same database.

mod capture;
mod lease;
mod options;
mod snapshot;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::mongodb::bson::{doc, Document};

pub use self::capture::SNAPSHOT_PREFIX;
use self::lease::Server;
pub use self::options::{Isolation, MongoDbOptions};
pub use self::snapshot::Snapshot;
use self::snapshot::{
    create_collection, list_collections, restore_collections, snapshot_collections,
    CollectionSnapshot, Saved,
};
use crate::backend::Backend;
use crate::capture::diff::Diff;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::state::Manager;
use crate::util::test_threads;

/// The `mongodb` driver crate, re-exported so tests need no direct dependency on it.
pub use ::mongodb as driver;
/// The `bson` crate the driver uses (`bson::doc!`, `Document`, `oid::ObjectId`, ...).
pub use ::mongodb::bson;

pub(crate) const NAME: &str = "mongodb";

/// The URL used when none is configured: a local `mongod` on its default port.
pub const DEFAULT_URL: &str = "mongodb://127.0.0.1:27017";

/// Every per-lease database name starts with this prefix.
pub const DATABASE_PREFIX: &str = "vq_";

/// The database holding one owner record per leased database (collection `leases`).
pub const LEASES_DATABASE: &str = "venomqa_leases";

/// How long a checkpoint waits for another process's lock on a shared database.
pub const DEFAULT_SHARED_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a remote owner may stay silent before its databases count as abandoned.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);

/// The MongoDB backend's [`StateManager`](crate::StateManager).
pub type MongoDbStateManager = Manager<MongoDb>;

/// A session on the MongoDB backend; [`database`](crate::Session::database) gives the test
/// its database.
pub type MongoDbSession = crate::Session<MongoDbStateManager>;

/// A driver error, shown as its kind on one short line (the driver's own message can run
/// to a whole topology description); the driver's error is its source.
#[derive(Debug)]
struct DriverError {
    error: ::mongodb::error::Error,
    hint: Option<&'static str>,
}

impl DriverError {
    fn new(error: ::mongodb::error::Error) -> Self {
        DriverError { error, hint: None }
    }

    fn hinted(error: ::mongodb::error::Error, hint: &'static str) -> Self {
        DriverError {
            error,
            hint: Some(hint),
        }
    }
}

/// The longest part of a driver message shown.
const DRIVER_MESSAGE_MAX: usize = 120;

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.error.kind {
            // "Server selection timeout: No available servers. Topology: { .. Error: Kind: I/O
            // error: Connection refused (os error 111), labels: {} } ] }": keep the server's error.
            ::mongodb::error::ErrorKind::ServerSelection { message, .. } => {
                match message
                    .split_once("Error: Kind: ")
                    .map(|(_, rest)| rest.split(", labels").next().unwrap_or(rest))
                {
                    Some(cause) => format!("no server could be selected: {cause}"),
                    None => message.clone(),
                }
            }
            ::mongodb::error::ErrorKind::InvalidArgument { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let mut text: String = kind.split_whitespace().collect::<Vec<_>>().join(" ");
        // With a hint, the driver's words are only the detail.
        let max = if self.hint.is_some() {
            DRIVER_MESSAGE_MAX / 2
        } else {
            DRIVER_MESSAGE_MAX
        };
        if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        match self.hint {
            Some(hint) => write!(f, "{hint} ({text})"),
            None => f.write_str(&text),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Whether a driver error means the server could not be reached.
fn is_unreachable(e: &::mongodb::error::Error) -> bool {
    use ::mongodb::error::ErrorKind;
    matches!(
        &*e.kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}

/// The error of `operation` failing with driver error `e`: the server out of reach is a
/// lost connection (the pool replaces it), anything else a backend error.
fn driver_error(operation: impl Into<String>, e: ::mongodb::error::Error) -> Error {
    if is_unreachable(&e) {
        Error::connection_lost(
            NAME,
            operation,
            "the server is out of reach; what the test wrote stays in its database until the server is back and the database is dropped",
            DriverError::new(e),
        )
    } else {
        Error::backend(NAME, operation, DriverError::new(e))
    }
}

/// The database in a connection string's path (`mongodb://host/app?..` gives `app`), if any.
fn url_database(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let name = path.split('?').next().unwrap_or_default();
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    (!name.is_empty()).then(|| name.into_owned())
}

/// Runs blocking driver calls: on a helper thread when called from inside a Tokio runtime
/// (the driver's sync API would panic there), else right here.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    #[cfg(feature = "tokio")]
    if tokio::runtime::Handle::try_current().is_ok() {
        return std::thread::scope(|s| match s.spawn(f).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        });
    }
    f()
}

/// What a connection knows about its database without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbState {
    /// Does not exist (new name, or just dropped); the template is not copied yet.
    Empty,
    /// Just prepared: empty, or exactly the template.
    Prepared,
    /// Anything.
    Unknown,
}

/// The MongoDB backend: a private database per lease, checkpoints as type-exact BSON
/// snapshots (see the [module docs](self)).
///
/// ```
/// use venomqa::mongodb::{bson::{doc, Document}, MongoDb, MongoDbStateManager};
/// use venomqa::StateManager;
///
/// let url = std::env::var("VENOMQA_MONGODB_URL").unwrap_or(venomqa::mongodb::DEFAULT_URL.into());
/// let mut m = MongoDbStateManager::new(MongoDb::from_url(&url)?.database("doc_example"));
/// m.connect()?;
/// let users = m.database().collection::<Document>("users");
/// users.insert_one(doc! { "name": "ann" }).run().unwrap();
/// m.checkpoint("one_user")?;
/// users.insert_one(doc! { "name": "bob" }).run().unwrap();
/// m.rollback("one_user")?;
/// assert_eq!(users.count_documents(doc! {}).run().unwrap(), 1);
/// m.disconnect()?; // drops the connection's database
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MongoDb {
    url: SecretUrl,
    options: MongoDbOptions,
    connect_timeout: Option<Duration>,
    /// [`shared_lock_timeout`](Self::shared_lock_timeout) to the millisecond.
    lock_timeout_ms: Option<u64>,
}

impl MongoDb {
    /// The backend for `url` (a MongoDB connection string), with a database of its own per
    /// connection (see [`Isolation`]).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            MongoDbOptions::default(),
        )
    }

    /// With [`Isolation::DatabasePerLease`] (the default): the base of the database names
    /// (`vq_<base>_...`). With [`Isolation::Shared`]: the database to work in. Default: the
    /// URL's database, else `test`.
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.options.database = Some(name.into());
        self
    }

    /// Collections that nested checkpoints snapshot and `reset()` empties (default: all).
    pub fn collections_to_reset(
        mut self,
        collections: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.options.collections_to_reset = collections.into_iter().map(Into::into).collect();
        self
    }

    /// A database every test's database starts as a copy of (collections, options,
    /// indexes, documents). It is read once per process, at the first checkpoint, so a
    /// `register_setup!` function may fill it. Ignored with [`Isolation::Shared`].
    pub fn template_database(mut self, name: impl Into<String>) -> Self {
        self.options.template_database = Some(name.into());
        self
    }

    /// Where the data lives (default [`Isolation::DatabasePerLease`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.options.isolation = isolation;
        self
    }

    /// How long a connection attempt may take (connect and server selection).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long this process's lease and lock records stay valid without a heartbeat
    /// (default [`DEFAULT_LEASE_TTL`], at least 1 s).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.options.lease_ttl_secs = ttl.as_secs().max(1);
        self
    }

    /// With [`Isolation::Shared`]: how long the outermost checkpoint waits for another
    /// connection (in this or any other process, on any machine) to finish with the
    /// database before failing (default [`DEFAULT_SHARED_LOCK_TIMEOUT`]).
    pub fn shared_lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.shared_lock_timeout_secs = timeout.as_secs();
        self.lock_timeout_ms = Some(timeout.as_millis() as u64);
        self
    }

    /// With [`Isolation::Capture`]: how long a checkpoint or a rollback goes on copying the
    /// collections another connection keeps changing before it fails (default 5 s).
    pub fn quiescence_timeout(mut self, timeout: Duration) -> Self {
        self.options.quiescence_timeout_ms = Some(timeout.as_millis() as u64);
        self
    }

    /// The options in force.
    pub fn options(&self) -> &MongoDbOptions {
        &self.options
    }

    fn lease_ttl_duration(&self) -> Duration {
        Duration::from_secs(self.options.lease_ttl_secs.max(1))
    }

    fn scope(&self) -> Option<&[String]> {
        (!self.options.collections_to_reset.is_empty())
            .then_some(self.options.collections_to_reset.as_slice())
    }

    fn per_lease(&self) -> bool {
        self.options.isolation == Isolation::DatabasePerLease
    }

    fn capture(&self) -> bool {
        self.options.isolation == Isolation::Capture
    }

    /// Opens (or reuses) the process's client, records the lease of a new database (the
    /// record exists before the database does, so a sweep that sees the database also sees
    /// its owner) and starts the heartbeat.
    fn open(&self) -> Result<MongoDbConn> {
        let url = self.url.expose();
        let server = Server::get(url, self.connect_timeout)?;
        let base = self
            .options
            .database
            .clone()
            .or_else(|| server.default_database.clone())
            .unwrap_or_else(|| "test".to_owned());
        let (name, leased) = match self.options.isolation {
            Isolation::Shared | Isolation::Capture => (base, false),
            Isolation::DatabasePerLease => {
                server.swept.get_or_init(|| {
                    if let Err(e) = server.sweep() {
                        tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not clean up databases left behind by earlier runs");
                    }
                });
                let name = lease::lease_database_name(&base);
                let now = server.server_time()?;
                let record = lease::record(&name, now, self.lease_ttl_duration());
                server.leases().insert_one(record).run().map_err(|e| {
                    driver_error(format!("recording the lease of database {name:?}"), e)
                })?;
                server.start_heartbeat(self.lease_ttl_duration());
                (name, true)
            }
        };
        Ok(MongoDbConn {
            database: server.client.database(&name),
            io: server.io_database(&name),
            async_database: server.async_client.database(&name),
            server,
            leased,
            state: if leased {
                DbState::Empty
            } else {
                DbState::Unknown
            },
            touched: AtomicBool::new(false),
            lock_held: None,
            lock_ttl: self.lease_ttl_duration(),
            closed: false,
        })
    }

    /// How long the outermost checkpoint waits for the lock of a shared database.
    fn lock_timeout(&self) -> Duration {
        match self.lock_timeout_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_secs(self.options.shared_lock_timeout_secs),
        }
    }

    /// Makes the database ready before the first checkpoint: copies the template into it
    /// if one is configured and it was not copied yet.
    fn prepare(&self, conn: &mut MongoDbConn) -> Result<()> {
        if conn.state == DbState::Empty {
            if let (Some(template), true) = (&self.options.template_database, self.per_lease()) {
                let template = conn.server.template(template)?;
                // The database does not exist: create everything without looking first.
                conn.state = DbState::Unknown;
                let mut order: Vec<&CollectionSnapshot> = template.iter().collect();
                order.sort_by_key(|s| s.kind == "view");
                for snap in order {
                    create_collection(&conn.io, snap)?;
                }
            }
            conn.state = DbState::Prepared;
        }
        Ok(())
    }

    /// Restores `mark`; `keep` says whether the checkpoint stays (rollback) or goes
    /// (discard), which decides whether a fresh database is re-prepared now.
    fn restore(&self, conn: &mut MongoDbConn, mark: &Snapshot, keep: bool) -> Result<()> {
        conn.state = DbState::Unknown;
        match &mark.0 {
            Saved::Fresh => {
                conn.drop_database()?;
                conn.state = DbState::Empty;
                if keep {
                    self.prepare(conn)?;
                } else {
                    conn.touched.store(false, Ordering::Relaxed);
                }
            }
            Saved::Full(saved) => {
                let scope = self.scope();
                restore_collections(&conn.io, scope, saved)?;
                // A per-lease database restored to "no collections" is as good as new: the
                // next test can take the free path again.
                if saved.is_empty() && scope.is_none() && self.per_lease() && !keep {
                    conn.state = DbState::Empty;
                    conn.touched.store(false, Ordering::Relaxed);
                }
            }
            Saved::Capture(capture) => self.capture_restore(conn, capture, "rollback")?,
        }
        Ok(())
    }

    fn snapshot(&self, conn: &mut MongoDbConn, at: Point<'_>) -> Result<Snapshot> {
        // The outermost checkpoint of a per-lease database is free when the database is
        // known to be freshly prepared, or is found to hold no collections at all.
        let mut fresh = false;
        if self.per_lease() && at.is_outermost() {
            if conn.state != DbState::Unknown && !conn.touched.load(Ordering::Relaxed) {
                fresh = true;
            } else if conn.state != DbState::Prepared {
                if list_collections(&conn.io, None)?.is_empty() {
                    conn.state = DbState::Empty;
                    fresh = true;
                } else {
                    conn.state = DbState::Unknown;
                }
            }
        }
        if fresh {
            self.prepare(conn)?;
            return Ok(Snapshot(Saved::Fresh));
        }
        Ok(Snapshot(Saved::Full(snapshot_collections(
            &conn.io,
            self.scope(),
        )?)))
    }
}

/// One connection of the MongoDB backend: handles on its database (its own, leased, or the
/// shared one) and the lease record or shared-database lock it holds, given back when the
/// connection is closed or dropped.
pub struct MongoDbConn {
    server: Arc<Server>,
    /// The handle given to tests (the URL's read preference).
    database: ::mongodb::sync::Database,
    /// The handle snapshots and restores use: always the primary, so a snapshot never
    /// reads a lagging secondary.
    io: ::mongodb::sync::Database,
    async_database: ::mongodb::Database,
    /// A database of its own, with a lease record (dropped with the connection).
    leased: bool,
    state: DbState,
    /// A handle on the database (or its name) was handed out since it was last prepared.
    touched: AtomicBool,
    /// `holder` id of the shared-database lock this connection holds, if any.
    lock_held: Option<String>,
    /// The TTL of the lock record.
    lock_ttl: Duration,
    /// Given back already (by `close`).
    closed: bool,
}

/// Names the database only: the driver's handles hold the client options.
impl fmt::Debug for MongoDbConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoDbConn")
            .field("database", &self.database.name())
            .field("leased", &self.leased)
            .field("lock_held", &self.lock_held.is_some())
            .finish_non_exhaustive()
    }
}

impl MongoDbConn {
    /// The connection's database (sync API). Run the code under test against it.
    pub fn database(&self) -> ::mongodb::sync::Database {
        // Whoever has the database can write to it: the next outermost checkpoint must look
        // at what is there instead of assuming it fresh.
        self.touched.store(true, Ordering::Relaxed);
        self.database.clone()
    }

    /// The name of the connection's database, for code under test that connects on its own.
    pub fn database_name(&self) -> &str {
        self.touched.store(true, Ordering::Relaxed);
        self.database.name()
    }

    /// The connection's database for async code (needs a Tokio runtime, which async
    /// `#[venom_test]` functions have).
    pub fn async_database(&self) -> ::mongodb::Database {
        self.touched.store(true, Ordering::Relaxed);
        self.async_database.clone()
    }

    /// The driver client (sync API), shared by every connection of the process on this URL.
    pub fn client(&self) -> ::mongodb::sync::Client {
        self.touched.store(true, Ordering::Relaxed);
        self.server.client.clone()
    }

    /// The driver client for async code.
    pub fn async_client(&self) -> ::mongodb::Client {
        self.touched.store(true, Ordering::Relaxed);
        self.server.async_client.clone()
    }

    fn drop_database(&self) -> Result<()> {
        self.io
            .drop()
            .run()
            .map_err(|e| driver_error(format!("dropping database {:?}", self.database.name()), e))
    }

    /// With [`Isolation::Shared`], takes the database's lock in the shared registry (a
    /// `shared:<database>` document in `venomqa_leases.locks`, created with `insert`: the
    /// unique `_id` lets exactly one connection on any process or machine have it). A lock
    /// whose holder is gone (a dead process on this machine, or an expiry in server time
    /// passed without heartbeat) is taken over; otherwise waits up to `timeout`.
    fn acquire_shared_lock(&mut self, timeout: Duration) -> Result<()> {
        if self.lock_held.is_some() {
            return Ok(());
        }
        static HOLDERS: AtomicU64 = AtomicU64::new(0);
        let server = &self.server;
        let database = self.database.name();
        let id = format!("shared:{database}");
        let holder = format!(
            "{}:{}",
            crate::backends::owner::me().token,
            HOLDERS.fetch_add(1, Ordering::Relaxed)
        );
        let op = || format!("taking the lock of shared database {database:?}");
        server.start_heartbeat(self.lock_ttl);
        let locks = server.locks();
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let now = server.server_time()?;
            let mut record = lease::record(&id, now, self.lock_ttl);
            record.insert("holder", &holder);
            match locks.insert_one(record).run() {
                Ok(_) => {
                    self.lock_held = Some(holder);
                    return Ok(());
                }
                Err(e) if lease::is_duplicate_key(&e) => {}
                Err(e) => return Err(driver_error(op(), e)),
            }
            let current = locks
                .find_one(doc! { "_id": &id })
                .run()
                .map_err(|e| driver_error(op(), e))?;
            if let Some(current) = &current {
                if let Some(reason) = lease::stale_reason(current, now) {
                    tracing::info!(target: "venomqa", backend = NAME, database = %database, %reason, "taking over an abandoned lock");
                    // Only that very lock, unless it was renewed or replaced meanwhile.
                    let mut filter = doc! { "_id": &id };
                    for key in ["holder", "expires_at"] {
                        if let Some(value) = current.get(key) {
                            filter.insert(key, value.clone());
                        }
                    }
                    locks
                        .delete_one(filter)
                        .run()
                        .map_err(|e| driver_error(op(), e))?;
                    continue;
                }
            }
            if std::time::Instant::now() >= deadline {
                let who = current.as_ref().map_or_else(
                    || "another test".to_owned(),
                    |c| {
                        format!(
                            "process {} on host {:?}",
                            c.get_i64("pid").unwrap_or(0),
                            c.get_str("host").unwrap_or("?")
                        )
                    },
                );
                return Err(Error::backend(
                    NAME,
                    op(),
                    format!(
                        "{who} is using it (isolation: shared) and did not finish within {} ms; give each test a database of its own (isolation: database_per_lease) or raise shared_lock_timeout_secs",
                        timeout.as_millis()
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Gives the shared database's lock back, if this connection holds it.
    fn release_shared_lock(&mut self) -> Result<()> {
        let Some(holder) = self.lock_held.take() else {
            return Ok(());
        };
        let database = self.database.name();
        self.server
            .locks()
            .delete_one(doc! { "_id": format!("shared:{database}"), "holder": &holder })
            .run()
            .map_err(|e| {
                driver_error(
                    format!("releasing the lock of shared database {database:?}"),
                    e,
                )
            })?;
        Ok(())
    }

    /// Releases the lock; a failure only delays the next holder until the lock expires, so
    /// it is logged, not returned.
    fn release_lock_logged(&mut self) {
        if let Err(e) = self.release_shared_lock() {
            tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not release the shared database lock; it expires after lease_ttl_secs");
        }
    }

    /// Gives everything back: the shared lock, and a leased database with its record.
    fn give_back(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.release_lock_logged();
        if self.leased {
            self.drop_database()?;
            self.server
                .leases()
                .delete_one(doc! { "_id": self.database.name() })
                .run()
                .map_err(|e| driver_error("deleting the lease record", e))?;
        }
        Ok(())
    }
}

/// A connection dropped without `close` gives back its lock and drops its database.
impl Drop for MongoDbConn {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = blocking(|| self.give_back()) {
                tracing::warn!(target: "venomqa", backend = NAME, error = %e, "giving back a dropped connection's database failed; the next process's sweep drops it");
            }
        }
    }
}

impl Backend for MongoDb {
    const NAME: &'static str = NAME;
    type Options = MongoDbOptions;
    type Conn = MongoDbConn;
    type Mark = Snapshot;

    fn new(config: &BackendConfig, options: MongoDbOptions) -> Result<Self> {
        if options.isolation != Isolation::DatabasePerLease && options.template_database.is_some() {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.template_database", config.entry),
                "a template database needs isolation: database_per_lease (the default); with shared and capture the tests work in `database` itself",
            ));
        }
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        if options.isolation == Isolation::Capture
            && options.database.is_none()
            && url_database(url.expose()).is_none()
        {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.database", config.entry),
                "capture needs the app's database: set `database:` on the entry, or put it in the URL (mongodb://host:27017/app)",
            ));
        }
        Ok(MongoDb {
            url,
            options,
            connect_timeout: config.connect_timeout,
            lock_timeout_ms: None,
        })
    }

    /// Connects (one client per process and URL), sweeps leftovers once per process, and
    /// leases a database of its own (per-lease isolation).
    fn connect(&self) -> Result<MongoDbConn> {
        blocking(|| self.open())
    }

    /// A `ping` round trip.
    fn recycle(&self, conn: &mut MongoDbConn) -> Result<()> {
        blocking(|| {
            conn.io
                .run_command(doc! { "ping": 1 })
                .run()
                .map(drop)
                .map_err(|e| driver_error("the health check", e))
        })
    }

    fn checkpoint(&self, conn: &mut MongoDbConn, at: Point<'_>) -> Result<Snapshot> {
        blocking(|| {
            let locking = at.is_outermost()
                && self.options.isolation != Isolation::DatabasePerLease
                && conn.lock_held.is_none();
            if locking {
                conn.acquire_shared_lock(self.lock_timeout())?;
            }
            let result = if self.capture() {
                self.capture_checkpoint(conn, at)
            } else {
                self.snapshot(conn, at)
            };
            if result.is_err() && locking {
                conn.release_lock_logged();
            }
            result
        })
    }

    fn rollback(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        blocking(|| match &mark.0 {
            Saved::Capture(mark) => self.capture_restore(
                conn,
                mark,
                &format!("rollback to checkpoint {:?}", at.name()),
            ),
            _ => self.restore(conn, mark, true),
        })
    }

    /// Keeps the changes; the outermost checkpoint's end releases a shared database's lock
    /// (with capture, after its record and snapshot databases are gone).
    fn release(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        if at.is_outermost() && conn.lock_held.is_some() {
            return blocking(|| {
                let ended = match &mark.0 {
                    Saved::Capture(_) => self.capture_end(conn),
                    _ => Ok(()),
                };
                conn.release_lock_logged();
                ended
            });
        }
        Ok(())
    }

    fn discard(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        blocking(|| {
            match &mark.0 {
                Saved::Capture(capture) => {
                    let what = format!("rollback of checkpoint {:?}", at.name());
                    self.capture_restore(conn, capture, &what)?;
                    if at.is_outermost() {
                        self.capture_end(conn)?;
                    }
                }
                _ => self.restore(conn, mark, false)?,
            }
            if at.is_outermost() {
                conn.release_lock_logged();
            }
            Ok(())
        })
    }

    /// With capture, drops the checkpoint's snapshot database.
    fn forget(&self, conn: &mut MongoDbConn, mark: Snapshot) -> Result<()> {
        match &mark.0 {
            Saved::Capture(capture) => blocking(|| self.capture_forget(conn, capture)),
            _ => Ok(()),
        }
    }

    /// Empties the collections (`collections_to_reset`, else every collection; views are
    /// left alone) with `deleteMany`, keeping their indexes.
    fn reset(&self, conn: &mut MongoDbConn) -> Result<()> {
        conn.state = DbState::Unknown;
        blocking(|| {
            conn.release_lock_logged();
            for info in list_collections(&conn.io, self.scope())? {
                if info.get_str("type").unwrap_or("collection") == "view" {
                    continue;
                }
                let name = info.get_str("name").unwrap_or_default();
                conn.io
                    .collection::<Document>(name)
                    .delete_many(doc! {})
                    .run()
                    .map_err(|e| driver_error(format!("reset: emptying collection {name:?}"), e))?;
            }
            Ok(())
        })
    }

    /// Shared isolation: 1 (tests take turns on the database); else the test threads.
    fn pool_size(&self) -> usize {
        match self.options.isolation {
            Isolation::Shared | Isolation::Capture => 1,
            Isolation::DatabasePerLease => test_threads(),
        }
    }

    fn captures(&self, _: &MongoDbConn) -> bool {
        self.capture()
    }

    /// With capture, the configured URL; the app's database is
    /// [`database_name`](crate::Session::database_name).
    fn url(&self, _: &MongoDbConn) -> Result<SecretUrl> {
        if self.capture() {
            Ok(self.url.clone())
        } else {
            Err(Error::unsupported(
                NAME,
                "a URL for other connections",
                "the test's documents are rolled back only in its own database; use `isolation: capture` with the app's database",
            ))
        }
    }

    fn diff(&self, conn: &mut MongoDbConn, at: Point<'_>, mark: &Snapshot) -> Result<Diff> {
        match &mark.0 {
            Saved::Capture(capture) => blocking(|| self.capture_diff(conn, capture)),
            _ => Err(Error::unsupported(
                NAME,
                format!("diff() since checkpoint {:?}", at.name()),
                "only capture isolation keeps a copy on the server to compare with; use `isolation: capture`",
            )),
        }
    }

    /// Releases a shared database's lock, or drops the leased database and its record.
    fn close(&self, mut conn: MongoDbConn) -> Result<()> {
        blocking(|| conn.give_back())
    }
}

impl Manager<MongoDb> {
    fn mongo(&self) -> &MongoDbConn {
        self.connection_ref().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The connection's database (sync API). Run the code under test against it.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_database`](Self::try_database) returns an
    /// error instead.
    pub fn database(&self) -> ::mongodb::sync::Database {
        self.mongo().database()
    }

    /// The connection's database (sync API), or [`Error::NotConnected`].
    pub fn try_database(&self) -> Result<::mongodb::sync::Database> {
        Ok(self.connection_ref()?.database())
    }

    /// The name of the connection's database.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn database_name(&self) -> &str {
        self.mongo().database_name()
    }

    /// The connection's database for async code.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn async_database(&self) -> ::mongodb::Database {
        self.mongo().async_database()
    }

    /// The driver client (sync API), shared by every connection of the process on this URL.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn client(&self) -> ::mongodb::sync::Client {
        self.mongo().client()
    }

    /// The driver client for async code.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn async_client(&self) -> ::mongodb::Client {
        self.mongo().async_client()
    }

    /// Makes the database ready for use before the first checkpoint: copies the template
    /// into it if one is configured and it was not copied yet. Checkpoints do this by
    /// themselves; call it when you write to the database before the first checkpoint.
    pub fn prepare(&mut self) -> Result<()> {
        self.with(|backend, conn, _| blocking(|| backend.prepare(conn)))
    }

    /// Drops the `vq_` databases on this server whose owner is gone (a process on this
    /// machine that exited, or one elsewhere silent for longer than its lease TTL) and
    /// returns their names. Every process does this once, at its first connection.
    pub fn sweep_stale_databases(&mut self) -> Result<Vec<String>> {
        self.with(|_, conn, _| blocking(|| conn.server.sweep()))
    }
}

impl crate::Session<MongoDbStateManager> {
    /// The test's database (sync API): run the code under test against it.
    pub fn database(&self) -> ::mongodb::sync::Database {
        self.connection_ref().database()
    }

    /// The test's database for async code (async `#[venom_test]` functions).
    pub fn async_database(&self) -> ::mongodb::Database {
        self.connection_ref().async_database()
    }

    /// The name of the test's database, for code under test that connects on its own.
    pub fn database_name(&self) -> &str {
        self.connection_ref().database_name()
    }

    /// The driver client (sync API).
    pub fn client(&self) -> ::mongodb::sync::Client {
        self.connection_ref().client()
    }

    /// The driver client for async code.
    pub fn async_client(&self) -> ::mongodb::Client {
        self.connection_ref().async_client()
    }
}

#[cfg(test)]
mod tests {
    use super::lease::*;
    use super::*;
    use crate::backends::owner::{self, Liveness, Process};
    use ::mongodb::bson::DateTime;

    #[test]
    fn lease_names_are_unique_valid_and_recognised() {
        let a = lease_database_name("shop");
        let b = lease_database_name("shop");
        assert_ne!(a, b);
        assert!(a.starts_with("vq_shop_"), "{a}");
        assert!(is_lease_database_name(&a), "{a}");
        let long = lease_database_name(&"x/y.z ".repeat(40));
        assert!(long.len() <= MAX_DATABASE_NAME, "{long}");
        assert!(
            long.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{long}"
        );
        assert!(is_lease_database_name(&long), "{long}");
        for other in [
            "vq_shop",
            "app",
            "vq_a_1_2_zzzzzz",
            "vq_a_x_2_abcdef",
            "venomqa_leases",
        ] {
            assert!(!is_lease_database_name(other), "{other}");
        }
    }

    /// A record of another process with this machine's key, expiring at `expires`.
    fn record_of(
        pid: u32,
        started_at: Option<u64>,
        machine: Option<&str>,
        expires: DateTime,
    ) -> Document {
        let mut lease = doc! { "owner": "someone-else", "host": "h", "pid": i64::from(pid), "heartbeat": expires, "expires_at": expires };
        if let Some(machine) = machine {
            lease.insert("machine", machine);
        }
        if let Some(started_at) = started_at {
            lease.insert("started_at", started_at as i64);
        }
        lease
    }

    #[test]
    fn own_process_is_alive_and_dead_pids_are_stale() {
        let me = owner::me();
        let now = DateTime::now();
        let later = DateTime::from_millis(now.timestamp_millis() + 600_000);
        let earlier = DateTime::from_millis(now.timestamp_millis() - 1_000);
        if let Some(machine) = me.machine.as_deref() {
            assert!(matches!(owner::process(me.pid), Process::Running { .. }));
            // Even expired, a record of a live process on this machine is kept.
            let lease = record_of(me.pid, me.started_at, Some(machine), earlier);
            assert_eq!(stale_reason(&lease, now), None);
            let reused = record_of(
                me.pid,
                Some(me.started_at.unwrap() + 1),
                Some(machine),
                later,
            );
            assert!(stale_reason(&reused, now).unwrap().contains("reused"));
            let gone = record_of(u32::MAX - 1, Some(1), Some(machine), later);
            assert_eq!(owner::process(u32::MAX - 1), Process::Gone);
            assert!(stale_reason(&gone, now).unwrap().contains("exited"));
            // A record of an older version (start time in another unit, under `start`):
            // the pid alone decides.
            let mut old = record_of(me.pid, None, Some(machine), earlier);
            old.insert("start", 12345_i64);
            assert_eq!(stale_reason(&old, now), None);
        }
        let remote = record_of(1, None, Some("elsewhere"), earlier);
        assert!(stale_reason(&remote, now).unwrap().contains("expired"));
        let recent = record_of(1, None, Some("elsewhere"), later);
        assert_eq!(stale_reason(&recent, now), None);
        // Our own token: kept, even expired.
        let mut ours = record_of(1, None, Some("elsewhere"), earlier);
        ours.insert("owner", &me.token);
        assert_eq!(stale_reason(&ours, now), None);
    }

    #[test]
    fn when_the_system_cannot_tell_only_expiry_decides() {
        // The system cannot tell about the owner's pid (hidepid, another pid namespace, an
        // unsupported platform): the record is judged by its expiry, never as "exited".
        let Some(machine) = owner::me().machine.as_deref() else {
            return;
        };
        let now = DateTime::now();
        let later = DateTime::from_millis(now.timestamp_millis() + 600_000);
        let earlier = DateTime::from_millis(now.timestamp_millis() - 1_000);
        let unknown = |r: &owner::Recorded<'_>| owner::liveness_with(r, |_| Process::Unknown);
        let live = record_of(12345, Some(1), Some(machine), later);
        assert_eq!(stale_reason_with(&live, now, unknown), None);
        let silent = record_of(12345, Some(1), Some(machine), earlier);
        assert!(stale_reason_with(&silent, now, unknown)
            .unwrap()
            .contains("expired"));
        let dead = |_: &owner::Recorded<'_>| Liveness::Dead("gone".into());
        assert_eq!(stale_reason_with(&live, now, dead).as_deref(), Some("gone"));
    }

    #[test]
    fn the_sweepers_ttl_plays_no_part_only_the_owners_expiry() {
        // An owner with the default TTL whose last heartbeat was 45 s ago: a sweeper with a
        // 30 s TTL (or any other) keeps it, since the record's own expiry has not passed.
        let now = DateTime::now();
        let mut lease = record(
            "vq_x_1_1_abcdef",
            DateTime::from_millis(now.timestamp_millis() - 45_000),
            DEFAULT_LEASE_TTL,
        );
        lease.insert("owner", "someone-else");
        lease.insert("machine", "elsewhere");
        assert_eq!(stale_reason(&lease, now), None);
        assert_eq!(
            lease.get_i64("ttl_ms").unwrap(),
            DEFAULT_LEASE_TTL.as_millis() as i64
        );
        let later = DateTime::from_millis(now.timestamp_millis() + 600_000);
        assert!(stale_reason(&lease, later).unwrap().contains("expired"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let m = MongoDb::from_url("mongodb://ann:s3cr3t@127.0.0.1:1/app?authSource=admin").unwrap();
        let text = format!("{m:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("ann:***@127.0.0.1"), "{text}");
    }
}
