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

mod accessors;
mod backend;
mod blocking;
mod builder;
mod capture;
mod checkpoints;
mod conn;
mod connect;
mod driver_error;
mod lease;
mod lock;
mod mark;
mod options;
mod snapshot;

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub use self::capture::SNAPSHOT_PREFIX;
use self::lease::Server;
pub use self::mark::Snapshot;
pub use self::options::{Isolation, MongoDbOptions};
use crate::manager::Manager;
use crate::redact::SecretUrl;

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

capture_backend! {
    /// MongoDB with capture isolation (`isolation: capture`): what any client writes to
    /// the configured database is rolled back. The [`MongoDb`] backend's URL, options and
    /// connections.
    MongoDbCapture(MongoDb), MongoDbCaptureStateManager, MongoDbCaptureSession,
    is_capture: |b| b.capture(),
    wanted: |o: MongoDbOptions| o.isolation == Isolation::Capture,
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
