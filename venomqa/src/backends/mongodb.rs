//! The MongoDB backend, through the official `mongodb` driver (sync API for sync tests,
//! async handles for async tests).
//!
//! MongoDB transactions need a replica set, so this backend does not use them. Instead:
//!
//! - **A database per lease.** Every pooled manager works in its own database, named
//!   `vq_<base>_<pid>_<counter>_<random>` (`<base>` is the `database` option, else the URL's
//!   default database, else `test`). A test's changes can only reach that database, so
//!   tests run in parallel, also across processes and CI shards sharing one server.
//! - **Checkpoints are snapshots.** A checkpoint reads the collections (all of them, or
//!   `collections_to_reset`) as raw BSON, byte for byte (ObjectId, DateTime, Decimal128,
//!   Binary, nested documents and arrays keep their exact types; nothing goes through JSON),
//!   together with each collection's options and index specifications. A rollback drops the
//!   collections created since, recreates the ones dropped since, restores their options and
//!   indexes, and replaces their documents (`deleteMany` + `insertMany` in batches).
//! - **The root checkpoint is free.** A test starts on an empty database (or a fresh copy of
//!   `template_database`), so its root checkpoint records nothing, and the end of the test is
//!   one `dropDatabase`.
//! - **Leftovers are cleaned.** Each leased database has an owner record in the
//!   `venomqa_leases` database (process id, start time, host, and `expires_at`: the server's
//!   time plus the owner's own `lease_ttl_secs`, renewed by a heartbeat thread). The first
//!   connection of every process drops the `vq_` databases whose owner is dead: a process on
//!   the same machine that `/proc` says no longer runs, or any owner whose `expires_at` has
//!   passed by the server's clock. Local clocks and the sweeper's own TTL play no part, so
//!   two live processes never drop each other's databases.
//!
//! URLs: any MongoDB connection string (`mongodb://user:pass@host:27017/app?authSource=admin`,
//! `mongodb+srv://...`); default [`DEFAULT_URL`]. Set it with `VENOMQA_MONGODB_URL` or `url:`
//! in `venomqa.yaml`. Unless the URL sets `serverSelectionTimeoutMS`, a connection attempt
//! gives up after 10 s (`connect_timeout_ms` in `venomqa.yaml` sets both timeouts).
//!
//! Configuration (`venomqa.yaml`):
//!
//! ```yaml
//! backends:
//!   mongodb:
//!     url: mongodb://127.0.0.1:27017
//!     database: shop                 # base of the per-lease database names
//!     template_database: shop_seed   # every test's database starts as a copy of it
//!     collections_to_reset: [orders] # nested checkpoints and reset() cover only these
//!     pool_size: 8                   # default: the number of test threads
//!     options:
//!       isolation: database_per_lease  # or `shared`: work in `database` itself
//!       lease_ttl_secs: "600"          # how long our records stay valid without a heartbeat
//!       shared_lock_timeout_secs: "300" # isolation: shared: wait for the database this long
//! ```
//!
//! With `isolation: shared` the manager works directly in the `database` (as the Python
//! original does) and snapshots it at every checkpoint. Tests take turns on it, across
//! processes and machines: the outermost checkpoint takes a lock document in
//! `venomqa_leases.locks` (released when the outermost checkpoint ends or at disconnect),
//! and the pool holds one manager.
//!
//! Async tests: MongoDB's sync API panics inside a Tokio runtime, so with venomqa's `tokio`
//! feature every blocking call of this backend moves to a helper thread when it is made from
//! inside a runtime; [`async_database`](crate::Session::async_database) gives the test an async
//! handle on the same database.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use ::mongodb::bson::{doc, Bson, DateTime, Document, RawDocumentBuf};
use ::mongodb::options::ClientOptions;

use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::registry::{test_threads, Backend};
use crate::state::{BaseStateManager, StateManager};

/// The `mongodb` driver crate, re-exported so tests need no direct dependency on it.
pub use ::mongodb as driver;
/// The `bson` crate the driver uses (`bson::doc!`, `Document`, `oid::ObjectId`, ...).
pub use ::mongodb::bson;

const NAME: &str = "mongodb";

/// The URL used when none is configured: a local `mongod` on its default port.
pub const DEFAULT_URL: &str = "mongodb://127.0.0.1:27017";

/// Every per-lease database name starts with this prefix.
pub const DATABASE_PREFIX: &str = "vq_";

/// The database holding one owner record per leased database (collection `leases`).
pub const LEASES_DATABASE: &str = "venomqa_leases";

const LEASES_COLLECTION: &str = "leases";

/// The collection (in [`LEASES_DATABASE`]) holding the locks of `isolation: shared`
/// databases, one document `shared:<database>` per locked database.
const LOCKS_COLLECTION: &str = "locks";

/// How long a checkpoint waits for another process's lock on a shared database.
pub const DEFAULT_SHARED_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a remote owner may stay silent before its databases count as abandoned.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);

/// Server selection timeout used when neither the URL nor the configuration sets one.
const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Documents per `insertMany` call when restoring (the driver splits further by size).
const INSERT_BATCH: usize = 10_000;

/// Rollback empties a collection with `deleteMany` and refills it when its snapshot holds
/// fewer documents than this (no DDL); larger ones are dropped and recreated, with their
/// indexes built after the data, which is cheaper than deleting and re-indexing row by row.
const REUSE_BELOW: usize = 1000;

/// MongoDB database names are at most 63 bytes.
const MAX_DATABASE_NAME: usize = 63;

/// A session on the MongoDB backend; [`database`](crate::Session::database) gives the test
/// its database.
pub type MongoDbSession = crate::Session<MongoDbStateManager>;

/// Where a manager's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// A private database per manager (per lease), created empty (or from the template)
    /// for every test and dropped when the test ends. The default.
    #[default]
    DatabasePerLease,
    /// The configured `database` itself, snapshotted at every checkpoint: tests using it
    /// take turns (pool size 1), and whatever else writes to it is rolled back too.
    Shared,
}

impl Isolation {
    fn parse(value: &str, config: &BackendConfig) -> Result<Self> {
        match value {
            "database_per_lease" | "per_lease" => Ok(Isolation::DatabasePerLease),
            "shared" => Ok(Isolation::Shared),
            other => Err(Error::config(
                &config.source,
                format!("backends.{}.options.isolation", config.entry),
                format!("{other:?} is not an isolation mode; use `database_per_lease` (the default) or `shared`"),
            )),
        }
    }
}

/// One collection as a checkpoint saw it.
#[derive(Debug, Clone)]
struct CollectionSnapshot {
    name: String,
    /// `collection`, `view`, `timeseries`.
    kind: String,
    /// The `options` of `listCollections` (what `create` takes back).
    options: Document,
    /// `listIndexes` specs except `_id_`, sorted by name.
    indexes: Vec<Document>,
    /// The documents, raw BSON, in natural order.
    docs: Vec<RawDocumentBuf>,
}

impl CollectionSnapshot {
    fn is_plain(&self) -> bool {
        self.kind == "collection" && !self.options.get_bool("capped").unwrap_or(false)
    }
}

/// What a checkpoint saved.
#[derive(Debug, Clone)]
enum Snapshot {
    /// The database was known to be freshly prepared (empty, or a copy of the template)
    /// and untouched: restoring it is `dropDatabase` (+ the template copy).
    Fresh,
    /// Every collection in scope.
    Full(Vec<CollectionSnapshot>),
}

/// What the manager knows about its database without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbState {
    /// Does not exist (new name, or just dropped); the template is not copied yet.
    Empty,
    /// Just prepared: empty, or exactly the template.
    Prepared,
    /// Anything.
    Unknown,
}

/// Process-wide state per server: one driver client (its own connection pool), the
/// once-per-process sweep of leftovers, the heartbeat thread and the template cache.
struct Server {
    client: ::mongodb::sync::Client,
    async_client: ::mongodb::Client,
    default_database: Option<String>,
    swept: OnceLock<()>,
    heartbeat: OnceLock<()>,
    /// The TTLs (ms) of this process's lease and lock records: the heartbeat renews each
    /// group to `server now + its TTL`, and runs often enough for the shortest.
    ttls: Mutex<BTreeSet<i64>>,
    templates: Mutex<HashMap<String, Arc<Vec<CollectionSnapshot>>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

static SERVERS: LazyLock<Mutex<HashMap<String, Arc<Server>>>> = LazyLock::new(Default::default);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// This process's identity, as written into lease records.
struct Owner {
    /// Random per process: records with it are ours.
    token: String,
    host: String,
    /// Boot id + pid namespace (Linux): records with the same key name pids we can check.
    machine: Option<String>,
    pid: u32,
    /// Start time of the process in clock ticks since boot (Linux), against pid reuse.
    start: Option<i64>,
}

static OWNER: LazyLock<Owner> = LazyLock::new(|| {
    let pid = std::process::id();
    let start = match process_state(pid) {
        ProcState::Alive(start) => Some(start),
        _ => None,
    };
    Owner {
        token: format!("{:016x}", random_u64()),
        host: hostname(),
        // Without our own start time, pid checks cannot tell a reused pid: leave them off.
        machine: start.and_then(|_| machine_key()),
        pid,
        start,
    }
});

impl Owner {
    /// The fields that identify this process in a lease or lock record.
    fn record(&self, id: &str, now: DateTime, ttl: Duration) -> Document {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut record = doc! {
            "_id": id,
            "owner": &self.token,
            "host": &self.host,
            "pid": i64::from(self.pid),
            "created": now,
            "heartbeat": now,
            "ttl_ms": ttl_ms,
            "expires_at": DateTime::from_millis(now.timestamp_millis().saturating_add(ttl_ms)),
        };
        if let Some(machine) = &self.machine {
            record.insert("machine", machine);
        }
        if let Some(start) = self.start {
            record.insert("start", start);
        }
        record
    }
}

fn random_u64() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Boot id, pid namespace and effective uid: two processes with the same key see the same
/// pids in `/proc`. `None` (no pid checks, only expiry) unless `/proc` is this process's own:
/// in a pid namespace without its own `/proc` mount, `/proc/self` names another pid. The uid
/// is part of the key because `/proc` mounted with `hidepid=` hides other users' processes,
/// never a user's own.
fn machine_key() -> Option<String> {
    let me = std::fs::read_link("/proc/self").ok()?;
    if me.to_str()? != std::process::id().to_string() {
        return None;
    }
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .to_owned();
    Some(format!("{}/{}/uid{uid}", boot.trim(), ns.display()))
}

/// What `/proc` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcState {
    /// Running, started at this time (clock ticks since boot).
    Alive(i64),
    /// No such process (or a zombie): it has exited.
    Dead,
    /// `/proc` could not tell (permissions, no `/proc`, unexpected format): judge by expiry.
    Unknown,
}

fn process_state(pid: u32) -> ProcState {
    proc_state_from(std::fs::read_to_string(format!("/proc/{pid}/stat")))
}

/// Reads `/proc/<pid>/stat` as read: only `NotFound` means the process is gone; any other
/// error says nothing about it.
fn proc_state_from(stat: std::io::Result<String>) -> ProcState {
    let stat = match stat {
        Ok(stat) => stat,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ProcState::Dead,
        Err(_) => return ProcState::Unknown,
    };
    // The command name (field 2) may contain spaces and parentheses: fields after it
    // start after the last ')'.
    let Some(close) = stat.rfind(')') else {
        return ProcState::Unknown;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (start time) is fields[19].
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x")) {
        return ProcState::Dead;
    }
    match fields.get(19).and_then(|f| f.parse().ok()) {
        Some(start) => ProcState::Alive(start),
        None => ProcState::Unknown,
    }
}

/// Keeps the characters MongoDB accepts in a database name (and `_`), at most `max` bytes.
fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(max);
    out
}

/// A new database name for a lease: `vq_<base>_<pid>_<counter>_<random>`.
fn lease_database_name(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tail = format!(
        "_{}_{n}_{:06x}",
        std::process::id(),
        random_u64() & 0xff_ffff
    );
    let room = MAX_DATABASE_NAME - DATABASE_PREFIX.len() - tail.len();
    let base = sanitize(base, room.min(24));
    format!("{DATABASE_PREFIX}{base}{tail}")
}

/// Whether `name` has the shape of [`lease_database_name`]'s names.
fn is_lease_database_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(DATABASE_PREFIX) else {
        return false;
    };
    let parts: Vec<&str> = rest.rsplitn(4, '_').collect();
    parts.len() == 4
        && parts[0].len() == 6
        && parts[0].chars().all(|c| c.is_ascii_hexdigit())
        && !parts[1].is_empty()
        && parts[1].chars().all(|c| c.is_ascii_digit())
        && !parts[2].is_empty()
        && parts[2].chars().all(|c| c.is_ascii_digit())
}

/// Why a lease or lock record counts as abandoned at server time `now`, or `None` while its
/// owner may be alive.
fn stale_reason(lease: &Document, now: DateTime) -> Option<String> {
    stale_reason_with(lease, now, process_state)
}

/// [`stale_reason`] with the `/proc` probe passed in (tests simulate unreadable `/proc`).
///
/// A process on this machine (same boot, pid namespace and uid, see [`machine_key`]) is
/// dead when `/proc` says so; when `/proc` cannot tell, or the owner is elsewhere, the
/// record is stale once the server's clock passes the `expires_at` its owner wrote (server
/// time + the owner's own `lease_ttl_secs`, renewed by its heartbeat). Only server time is
/// compared, and only with the owner's TTL: local clocks and the sweeper's TTL play no part.
fn stale_reason_with(
    lease: &Document,
    now: DateTime,
    probe: impl Fn(u32) -> ProcState,
) -> Option<String> {
    let owner = &*OWNER;
    if lease.get_str("owner").ok() == Some(owner.token.as_str()) {
        return None;
    }
    let pid = lease
        .get_i64("pid")
        .ok()
        .and_then(|p| u32::try_from(p).ok());
    if let (Some(mine), Ok(theirs), Some(pid)) = (&owner.machine, lease.get_str("machine"), pid) {
        if mine == theirs {
            match (probe(pid), lease.get_i64("start").ok()) {
                (ProcState::Dead, _) => {
                    return Some(format!(
                        "its owner, process {pid} on this machine, has exited"
                    ))
                }
                (ProcState::Alive(now_start), Some(then)) if now_start != then => {
                    return Some(format!(
                        "its owner, process {pid} on this machine, has exited (the pid was reused)"
                    ))
                }
                (ProcState::Alive(_), _) => return None,
                (ProcState::Unknown, _) => {}
            }
        }
    }
    let expires = match (
        lease.get_datetime("expires_at"),
        lease.get_datetime("heartbeat"),
    ) {
        (Ok(expires), _) => *expires,
        // A record without its own expiry (written by an older version): the default TTL.
        (Err(_), Ok(beat)) => DateTime::from_millis(
            beat.timestamp_millis()
                .saturating_add(DEFAULT_LEASE_TTL.as_millis() as i64),
        ),
        _ => return Some("its lease record is malformed".to_owned()),
    };
    let late = now
        .timestamp_millis()
        .saturating_sub(expires.timestamp_millis());
    (late > 0).then(|| {
        format!(
            "its owner on host {:?} has not renewed it: it expired {} s ago by the server's clock",
            lease.get_str("host").unwrap_or("?"),
            late / 1000
        )
    })
}

impl Server {
    /// The shared client for `url`, connecting (and checking the server answers) on first use.
    fn get(url: &str, connect_timeout: Option<Duration>) -> Result<Arc<Server>> {
        let key = format!("{url}\u{0}{connect_timeout:?}");
        if let Some(server) = lock(&SERVERS).get(&key) {
            return Ok(server.clone());
        }
        let mut options = ClientOptions::parse(url).run().map_err(|e| {
            Error::connection(
                NAME,
                url,
                format!(
                "the URL is not a valid MongoDB connection string (mongodb://[user:password@]host[:port][/database][?options] or mongodb+srv://...): {}",
                e.kind
            ),
            )
        })?;
        if let Some(timeout) = connect_timeout {
            options.connect_timeout = Some(timeout);
            options.server_selection_timeout = Some(timeout);
        } else if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(DEFAULT_SERVER_SELECTION_TIMEOUT);
        }
        let default_database = options.default_database.clone();
        // Built outside any runtime (see `blocking`), the client's background tasks run on
        // the driver's own runtime, so the async handle also works from a test's runtime.
        let async_client = ::mongodb::Client::with_options(options)
            .map_err(|e| Error::connection(NAME, url, e.kind))?;
        let client = ::mongodb::sync::Client::from(async_client.clone());
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .run()
            .map_err(|e| Error::connection(NAME, url, e.kind))?;
        let server = Arc::new(Server {
            client,
            async_client,
            default_database,
            swept: OnceLock::new(),
            heartbeat: OnceLock::new(),
            ttls: Mutex::new(BTreeSet::new()),
            templates: Mutex::new(HashMap::new()),
        });
        Ok(lock(&SERVERS).entry(key).or_insert(server).clone())
    }

    /// `name` with reads pinned to the primary.
    fn io_database(&self, name: &str) -> ::mongodb::sync::Database {
        let primary = ::mongodb::options::SelectionCriteria::ReadPreference(
            ::mongodb::options::ReadPreference::Primary,
        );
        self.client.database_with_options(
            name,
            ::mongodb::options::DatabaseOptions::builder()
                .selection_criteria(primary)
                .build(),
        )
    }

    fn leases(&self) -> ::mongodb::sync::Collection<Document> {
        self.io_database(LEASES_DATABASE)
            .collection(LEASES_COLLECTION)
    }

    fn locks(&self) -> ::mongodb::sync::Collection<Document> {
        self.io_database(LEASES_DATABASE)
            .collection(LOCKS_COLLECTION)
    }

    /// The server's clock (`localTime` of `hello`, or of `isMaster` on servers older than
    /// 4.4.2): every expiry is written and compared in server time, never a local clock.
    fn server_time(&self) -> Result<DateTime> {
        let admin = self.io_database("admin");
        let mut last = None;
        for command in ["hello", "isMaster"] {
            match admin.run_command(doc! { command: 1 }).run() {
                Ok(reply) => {
                    if let Ok(now) = reply.get_datetime("localTime") {
                        return Ok(*now);
                    }
                }
                Err(e) => last = Some(e.kind.to_string()),
            }
        }
        Err(Error::backend(
            NAME,
            "reading the server's clock",
            last.unwrap_or_else(|| {
                "neither `hello` nor `isMaster` returned `localTime`; lease expiry needs it".into()
            }),
        ))
    }

    /// Renews every lease and lock record of this process to `server now + its TTL`.
    fn renew(&self) -> std::result::Result<(), String> {
        let now = self.server_time().map_err(|e| e.to_string())?;
        let ttls: Vec<i64> = lock(&self.ttls).iter().copied().collect();
        for ttl in ttls {
            let expires = DateTime::from_millis(now.timestamp_millis().saturating_add(ttl));
            for collection in [self.leases(), self.locks()] {
                collection
                    .update_many(
                        doc! { "owner": &OWNER.token, "ttl_ms": ttl },
                        doc! { "$set": { "heartbeat": now, "expires_at": expires } },
                    )
                    .run()
                    .map_err(|e| e.kind.to_string())?;
            }
        }
        Ok(())
    }

    /// Starts the thread that renews this process's lease and lock records (once), and
    /// makes it renew records with `ttl` often enough.
    fn start_heartbeat(self: &Arc<Self>, ttl: Duration) {
        lock(&self.ttls).insert(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.heartbeat.get_or_init(|| {
            let server = Arc::downgrade(self);
            // Wakes every 250 ms (no I/O) so that a shorter TTL registered later is honoured
            // at once; renews every TTL/4 of the shortest TTL, at least once a minute.
            let spawned = std::thread::Builder::new().name("venomqa-mongodb-heartbeat".into()).spawn(move || {
                let mut last = std::time::Instant::now();
                loop {
                    std::thread::sleep(Duration::from_millis(250));
                    let Some(server) = server.upgrade() else { return };
                    let shortest = lock(&server.ttls).first().copied().unwrap_or(60_000);
                    let every = (Duration::from_millis(u64::try_from(shortest).unwrap_or(0)) / 4)
                        .clamp(Duration::from_millis(250), Duration::from_secs(60));
                    if last.elapsed() < every {
                        continue;
                    }
                    last = std::time::Instant::now();
                    if let Err(e) = server.renew() {
                        tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not renew the lease records");
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not start the lease heartbeat thread");
            }
        });
    }

    /// Drops the `vq_` databases whose owner is gone; returns their names.
    fn sweep(&self) -> Result<Vec<String>> {
        let op = || "dropping databases left behind by finished processes".to_owned();
        let names = self
            .client
            .list_database_names()
            .run()
            .map_err(|e| Error::backend(NAME, op(), e.kind))?;
        let leases: Vec<Document> = self
            .leases()
            .find(doc! {})
            .run()
            .and_then(|cursor| cursor.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::backend(NAME, op(), e.kind))?;
        let leases: HashMap<String, Document> = leases
            .into_iter()
            .filter_map(|d| Some((d.get_str("_id").ok()?.to_owned(), d)))
            .collect();
        let now = self.server_time()?;
        let mut dropped = Vec::new();
        for name in names.iter().filter(|n| is_lease_database_name(n)) {
            let reason = match leases.get(name) {
                Some(lease) => stale_reason(lease, now),
                // Records are written before their database exists and deleted after it is
                // dropped: a database without one has no owner.
                None => Some("it has no lease record".to_owned()),
            };
            if let Some(reason) = reason {
                tracing::info!(target: "venomqa", backend = NAME, database = %name, %reason, "dropping an abandoned test database");
                self.client.database(name).drop().run().map_err(|e| {
                    Error::backend(
                        NAME,
                        format!("dropping abandoned database {name:?}"),
                        e.kind,
                    )
                })?;
                dropped.push(name.clone());
            }
        }
        let stale_records: Vec<&String> = leases
            .iter()
            .filter(|(name, lease)| {
                dropped.contains(name)
                    || (!names.contains(name) && stale_reason(lease, now).is_some())
            })
            .map(|(name, _)| name)
            .collect();
        if !stale_records.is_empty() {
            self.leases()
                .delete_many(doc! { "_id": { "$in": stale_records.iter().map(|n| Bson::from(n.as_str())).collect::<Vec<_>>() } })
                .run()
                .map_err(|e| Error::backend(NAME, op(), e.kind))?;
        }
        Ok(dropped)
    }

    /// The template's collections, read once per process.
    fn template(&self, name: &str) -> Result<Arc<Vec<CollectionSnapshot>>> {
        if let Some(t) = lock(&self.templates).get(name) {
            return Ok(t.clone());
        }
        let template = Arc::new(snapshot_collections(&self.io_database(name), None)?);
        Ok(lock(&self.templates)
            .entry(name.to_owned())
            .or_insert(template)
            .clone())
    }
}

/// `listCollections` of `db`, `system.*` excluded, limited to `scope` when given.
fn list_collections(
    db: &::mongodb::sync::Database,
    scope: Option<&[String]>,
) -> Result<Vec<Document>> {
    let mut command = doc! { "listCollections": 1 };
    if let Some(names) = scope {
        command.insert("filter", doc! { "name": { "$in": names.iter().map(|n| Bson::from(n.as_str())).collect::<Vec<_>>() } });
    }
    let mut out: Vec<Document> = db
        .run_cursor_command(command)
        .run()
        .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::backend(
                NAME,
                format!("listing the collections of database {:?}", db.name()),
                e.kind,
            )
        })?;
    out.retain(|c| c.get_str("name").is_ok_and(|n| !n.starts_with("system.")));
    out.sort_by(|a, b| {
        a.get_str("name")
            .unwrap_or("")
            .cmp(b.get_str("name").unwrap_or(""))
    });
    Ok(out)
}

/// `listIndexes` of a collection, without `_id_` and clustered indexes (part of the
/// collection's options), without the legacy `ns` field, sorted by name.
fn list_indexes(db: &::mongodb::sync::Database, collection: &str) -> Result<Vec<Document>> {
    let mut out: Vec<Document> = db
        .run_cursor_command(doc! { "listIndexes": collection })
        .run()
        .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::backend(
                NAME,
                format!("listing the indexes of {}.{collection}", db.name()),
                e.kind,
            )
        })?;
    out.retain(|i| i.get_str("name") != Ok("_id_") && !i.get_bool("clustered").unwrap_or(false));
    for index in &mut out {
        index.remove("ns");
    }
    out.sort_by(|a, b| {
        a.get_str("name")
            .unwrap_or("")
            .cmp(b.get_str("name").unwrap_or(""))
    });
    Ok(out)
}

/// Reads every collection in scope: options, indexes, documents as raw BSON.
fn snapshot_collections(
    db: &::mongodb::sync::Database,
    scope: Option<&[String]>,
) -> Result<Vec<CollectionSnapshot>> {
    let mut out = Vec::new();
    for info in list_collections(db, scope)? {
        let name = info.get_str("name").unwrap_or_default().to_owned();
        let kind = info.get_str("type").unwrap_or("collection").to_owned();
        let options = info.get_document("options").cloned().unwrap_or_default();
        let (indexes, docs) = if kind == "view" {
            (Vec::new(), Vec::new())
        } else {
            let docs = db
                .collection::<RawDocumentBuf>(&name)
                .find(doc! {})
                .run()
                .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::backend(
                        NAME,
                        format!("reading the documents of {}.{name}", db.name()),
                        e.kind,
                    )
                })?;
            (list_indexes(db, &name)?, docs)
        };
        out.push(CollectionSnapshot {
            name,
            kind,
            options,
            indexes,
            docs,
        });
    }
    Ok(out)
}

/// Creates a collection (or view) as saved, with its documents and indexes, in a database
/// where it does not exist. Documents go in before the secondary indexes are built: one
/// index build over the data is cheaper than updating every index on every insert.
fn create_collection(db: &::mongodb::sync::Database, snap: &CollectionSnapshot) -> Result<()> {
    let needs_create =
        !snap.options.is_empty() || snap.kind != "collection" || snap.docs.is_empty();
    if needs_create {
        let mut command = doc! { "create": &snap.name };
        command.extend(snap.options.clone());
        db.run_command(command).run().map_err(|e| {
            Error::backend(
                NAME,
                format!("recreating collection {}.{}", db.name(), snap.name),
                e.kind,
            )
        })?;
    }
    if snap.kind != "view" {
        insert_documents(db, snap)?;
        create_indexes(db, snap)?;
    }
    Ok(())
}

fn create_indexes(db: &::mongodb::sync::Database, snap: &CollectionSnapshot) -> Result<()> {
    if snap.indexes.is_empty() {
        return Ok(());
    }
    db.run_command(doc! { "createIndexes": &snap.name, "indexes": snap.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>() })
        .run()
        .map_err(|e| Error::backend(NAME, format!("restoring the indexes of {}.{}", db.name(), snap.name), e.kind))?;
    Ok(())
}

fn insert_documents(db: &::mongodb::sync::Database, snap: &CollectionSnapshot) -> Result<()> {
    let collection = db.collection::<RawDocumentBuf>(&snap.name);
    for batch in snap.docs.chunks(INSERT_BATCH) {
        collection
            .insert_many(batch)
            .ordered(true)
            .bypass_document_validation(true)
            .run()
            .map_err(|e| {
                Error::backend(
                    NAME,
                    format!("restoring the documents of {}.{}", db.name(), snap.name),
                    e.kind,
                )
            })?;
    }
    Ok(())
}

/// Brings the collections in scope back to `saved`.
fn restore_collections(
    db: &::mongodb::sync::Database,
    scope: Option<&[String]>,
    saved: &[CollectionSnapshot],
) -> Result<()> {
    let current = list_collections(db, scope)?;
    let saved_by_name: BTreeMap<&str, &CollectionSnapshot> =
        saved.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut reusable: BTreeSet<String> = BTreeSet::new();
    for info in &current {
        let name = info.get_str("name").unwrap_or_default();
        let kind = info.get_str("type").unwrap_or("collection");
        let options = info.get_document("options").cloned().unwrap_or_default();
        match saved_by_name.get(name) {
            Some(snap)
                if snap.is_plain()
                    && snap.docs.len() < REUSE_BELOW
                    && kind == snap.kind
                    && options == snap.options =>
            {
                reusable.insert(name.to_owned());
            }
            Some(snap) if snap.kind == "view" && kind == "view" && options == snap.options => {
                reusable.insert(name.to_owned());
            }
            _ => {
                db.collection::<Document>(name).drop().run().map_err(|e| {
                    Error::backend(
                        NAME,
                        format!("dropping collection {}.{name}", db.name()),
                        e.kind,
                    )
                })?;
            }
        }
    }
    // Collections before views, so a view's source exists when it is created.
    let mut order: Vec<&CollectionSnapshot> = saved.iter().collect();
    order.sort_by_key(|s| s.kind == "view");
    for snap in order {
        if !reusable.contains(&snap.name) {
            create_collection(db, snap)?;
            continue;
        }
        if snap.kind == "view" {
            continue;
        }
        let collection = db.collection::<RawDocumentBuf>(&snap.name);
        collection.delete_many(doc! {}).run().map_err(|e| {
            Error::backend(
                NAME,
                format!("emptying collection {}.{}", db.name(), snap.name),
                e.kind,
            )
        })?;
        if list_indexes(db, &snap.name)? != snap.indexes {
            db.run_command(doc! { "dropIndexes": &snap.name, "index": "*" })
                .run()
                .map_err(|e| {
                    Error::backend(
                        NAME,
                        format!("dropping the indexes of {}.{}", db.name(), snap.name),
                        e.kind,
                    )
                })?;
            create_indexes(db, snap)?;
        }
        insert_documents(db, snap)?;
    }
    Ok(())
}

/// The part of the manager that checkpoint I/O needs (split from the base's stack).
struct Conn {
    server: Arc<Server>,
    /// The handle given to tests (the URL's read preference).
    database: ::mongodb::sync::Database,
    /// The handle snapshots and restores use: always the primary, so a snapshot never
    /// reads a lagging secondary.
    io: ::mongodb::sync::Database,
    async_database: ::mongodb::Database,
}

/// Names the database only: the driver's handles hold the client options.
impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("database", &self.database.name())
            .finish_non_exhaustive()
    }
}

/// MongoDB state manager: a private database per lease, checkpoints as type-exact BSON
/// snapshots (see the [module docs](self)).
///
/// ```
/// use venomqa::mongodb::{bson::{doc, Document}, MongoDbStateManager};
/// use venomqa::StateManager;
///
/// let url = std::env::var("VENOMQA_MONGODB_URL").unwrap_or(venomqa::mongodb::DEFAULT_URL.into());
/// let mut m = MongoDbStateManager::new(&url).with_database("doc_example");
/// m.connect()?;
/// let users = m.database().collection::<Document>("users");
/// users.insert_one(doc! { "name": "ann" }).run().unwrap();
/// m.checkpoint("one_user")?;
/// users.insert_one(doc! { "name": "bob" }).run().unwrap();
/// m.rollback("one_user")?;
/// assert_eq!(users.count_documents(doc! {}).run().unwrap(), 1);
/// m.disconnect()?; // drops the manager's database
/// # Ok::<(), venomqa::Error>(())
/// ```
pub struct MongoDbStateManager {
    base: BaseStateManager,
    isolation: Isolation,
    database: Option<String>,
    collections_to_reset: Vec<String>,
    template_database: Option<String>,
    connect_timeout: Option<Duration>,
    lease_ttl: Duration,
    conn: Option<Conn>,
    snapshots: Vec<Snapshot>,
    state: DbState,
    /// A handle on the database (or its name) was handed out since it was last prepared.
    touched: AtomicBool,
    /// How long a checkpoint waits for the lock of a shared database.
    lock_timeout: Duration,
    /// `holder` id of the shared-database lock this manager holds, if any.
    lock_held: Option<String>,
}

/// Written by hand so that nothing can print the URL's password: the URL goes through
/// [`redact_url`](crate::redact_url).
impl std::fmt::Debug for MongoDbStateManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoDbStateManager")
            .field("url", &crate::redact_url(self.base.url()))
            .field("connected", &self.is_connected())
            .field("isolation", &self.isolation)
            .field("database", &self.conn.as_ref().map(|c| c.database.name()))
            .field("base_database", &self.database)
            .field("collections_to_reset", &self.collections_to_reset)
            .field("template_database", &self.template_database)
            .field("lease_ttl", &self.lease_ttl)
            .field("checkpoints", &self.base.checkpoints())
            .finish_non_exhaustive()
    }
}

impl MongoDbStateManager {
    /// A disconnected manager for `url` (a MongoDB connection string), with a database of
    /// its own (see [`Isolation`]).
    pub fn new(url: &str) -> Self {
        MongoDbStateManager {
            base: BaseStateManager::new(NAME, url),
            isolation: Isolation::default(),
            database: None,
            collections_to_reset: Vec::new(),
            template_database: None,
            connect_timeout: None,
            lease_ttl: DEFAULT_LEASE_TTL,
            conn: None,
            snapshots: Vec::new(),
            state: DbState::Unknown,
            touched: AtomicBool::new(false),
            lock_timeout: DEFAULT_SHARED_LOCK_TIMEOUT,
            lock_held: None,
        }
    }

    /// A disconnected manager from a resolved configuration entry.
    pub fn from_config(config: &BackendConfig) -> Result<Self> {
        let mut m = Self::new(config.url_or(DEFAULT_URL));
        m.database.clone_from(&config.database);
        m.collections_to_reset
            .clone_from(&config.collections_to_reset);
        m.template_database.clone_from(&config.template_database);
        m.connect_timeout = config.connect_timeout;
        if let Some(value) = config.option("isolation") {
            m.isolation = Isolation::parse(value, config)?;
        }
        if let Some(secs) = config.option_parsed::<u64>("lease_ttl_secs")? {
            m.lease_ttl = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = config.option_parsed::<u64>("shared_lock_timeout_secs")? {
            m.lock_timeout = Duration::from_secs(secs);
        }
        if m.isolation == Isolation::Shared && m.template_database.is_some() {
            return Err(Error::config(
                &config.source,
                format!("backends.{}.template_database", config.entry),
                "a template database needs `isolation: database_per_lease` (the default); with `shared` \
                 the tests work in `database` itself",
            ));
        }
        Ok(m)
    }

    /// With [`Isolation::DatabasePerLease`] (the default): the base of the database names
    /// (`vq_<base>_...`). With [`Isolation::Shared`]: the database to work in. Default: the
    /// URL's database, else `test`.
    pub fn with_database(mut self, name: impl Into<String>) -> Self {
        self.database = Some(name.into());
        self
    }

    /// Collections that nested checkpoints snapshot and `reset()` empties (default: all).
    pub fn collections_to_reset(
        mut self,
        collections: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.collections_to_reset = collections.into_iter().map(Into::into).collect();
        self
    }

    /// A database every test's database starts as a copy of (collections, options,
    /// indexes, documents). It is read once per process, at the first checkpoint, so a
    /// `register_setup!` function may fill it.
    pub fn template_database(mut self, name: impl Into<String>) -> Self {
        self.template_database = Some(name.into());
        self
    }

    /// Where the manager's data lives (default [`Isolation::DatabasePerLease`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// How long a connection attempt may take (connect and server selection).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long another host's process may go without a heartbeat before its databases
    /// count as abandoned (default [`DEFAULT_LEASE_TTL`]).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// With [`Isolation::Shared`]: how long the outermost checkpoint waits for another
    /// manager (in this or any other process, on any machine) to finish with the database
    /// before failing (default [`DEFAULT_SHARED_LOCK_TIMEOUT`]; `shared_lock_timeout_secs`).
    pub fn shared_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    fn try_conn(&self) -> Result<&Conn> {
        self.conn.as_ref().ok_or_else(|| Error::NotConnected {
            backend: NAME.into(),
        })
    }

    /// The name of the database this manager works in.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn database_name(&self) -> &str {
        let conn = self.try_conn().unwrap_or_else(|e| panic!("{e}"));
        // Whoever has the name can write to the database: the next outermost checkpoint
        // must look at what is there instead of assuming it fresh.
        self.touched.store(true, Ordering::Relaxed);
        conn.database.name()
    }

    /// The manager's database (sync API). Run the code under test against it.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_database`](Self::try_database) returns an
    /// error instead.
    pub fn database(&self) -> ::mongodb::sync::Database {
        self.try_database().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The manager's database (sync API), or [`Error::NotConnected`].
    pub fn try_database(&self) -> Result<::mongodb::sync::Database> {
        let conn = self.try_conn()?;
        self.touched.store(true, Ordering::Relaxed);
        Ok(conn.database.clone())
    }

    /// The manager's database for async code (needs a Tokio runtime, which async
    /// `#[venom_test]` functions have).
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn async_database(&self) -> ::mongodb::Database {
        let conn = self.try_conn().unwrap_or_else(|e| panic!("{e}"));
        self.touched.store(true, Ordering::Relaxed);
        conn.async_database.clone()
    }

    /// The driver client (sync API), shared by every manager of the process on this URL.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn client(&self) -> ::mongodb::sync::Client {
        let conn = self.try_conn().unwrap_or_else(|e| panic!("{e}"));
        self.touched.store(true, Ordering::Relaxed);
        conn.server.client.clone()
    }

    /// The driver client for async code.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn async_client(&self) -> ::mongodb::Client {
        let conn = self.try_conn().unwrap_or_else(|e| panic!("{e}"));
        self.touched.store(true, Ordering::Relaxed);
        conn.server.async_client.clone()
    }

    /// Makes the database ready for use before the first checkpoint: copies the template
    /// into it if one is configured and it was not copied yet. Checkpoints do this by
    /// themselves; call it when you write to the database before the first checkpoint.
    pub fn prepare(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        blocking(|| self.prepare_inner())
    }

    fn prepare_inner(&mut self) -> Result<()> {
        if self.state == DbState::Empty {
            let conn = self.conn.as_ref().expect("connected");
            if let Some(template) = &self.template_database {
                let template = conn.server.template(template)?;
                // The database does not exist: create everything without looking first.
                self.state = DbState::Unknown;
                let mut order: Vec<&CollectionSnapshot> = template.iter().collect();
                order.sort_by_key(|s| s.kind == "view");
                for snap in order {
                    create_collection(&conn.io, snap)?;
                }
            }
            self.state = DbState::Prepared;
        }
        Ok(())
    }

    /// Drops the `vq_` databases on this server whose owner is gone (a process on this
    /// machine that exited, or one elsewhere silent for longer than the lease TTL) and
    /// returns their names. Every process does this once, at its first connection.
    pub fn sweep_stale_databases(&self) -> Result<Vec<String>> {
        let conn = self.try_conn()?;
        blocking(|| conn.server.sweep())
    }

    fn scope(&self) -> Option<&[String]> {
        (!self.collections_to_reset.is_empty()).then_some(self.collections_to_reset.as_slice())
    }

    /// Drops the database and forgets it was prepared.
    fn drop_database(conn: &Conn) -> Result<()> {
        conn.io.drop().run().map_err(|e| {
            Error::backend(
                NAME,
                format!("dropping database {:?}", conn.database.name()),
                e.kind,
            )
        })
    }

    /// Restores snapshot `index`; `keep` says whether the checkpoint stays (rollback) or
    /// goes (discard), which decides whether a fresh database is re-prepared now.
    fn restore(&mut self, index: usize, keep: bool) -> Result<()> {
        let conn = self.conn.as_ref().expect("connected");
        self.state = DbState::Unknown;
        match &self.snapshots[index] {
            Snapshot::Fresh => {
                Self::drop_database(conn)?;
                self.state = DbState::Empty;
                if keep {
                    self.prepare_inner()?;
                } else {
                    self.touched.store(false, Ordering::Relaxed);
                }
            }
            Snapshot::Full(saved) => {
                let scope = (!self.collections_to_reset.is_empty())
                    .then_some(self.collections_to_reset.as_slice());
                restore_collections(&conn.io, scope, saved)?;
                // A per-lease database restored to "no collections" is as good as new: the
                // next test can take the free path again.
                if saved.is_empty()
                    && scope.is_none()
                    && self.isolation == Isolation::DatabasePerLease
                    && !keep
                {
                    self.state = DbState::Empty;
                    self.touched.store(false, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    fn connect_inner(&mut self) -> Result<()> {
        let url = self.base.url().to_owned();
        let server = Server::get(&url, self.connect_timeout)?;
        let base = self
            .database
            .clone()
            .or_else(|| server.default_database.clone())
            .unwrap_or_else(|| "test".to_owned());
        let name = match self.isolation {
            Isolation::Shared => base,
            Isolation::DatabasePerLease => {
                server.swept.get_or_init(|| {
                    if let Err(e) = server.sweep() {
                        tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not clean up databases left behind by earlier runs");
                    }
                });
                let name = lease_database_name(&base);
                let now = server.server_time()?;
                let record = OWNER.record(&name, now, self.lease_ttl);
                // The record exists before the database does, so a sweep that sees the
                // database also sees its owner.
                server.leases().insert_one(record).run().map_err(|e| {
                    Error::connection(
                        NAME,
                        &url,
                        format!(
                            "could not record the lease of database {name:?}: {}",
                            e.kind
                        ),
                    )
                })?;
                server.start_heartbeat(self.lease_ttl);
                name
            }
        };
        self.conn = Some(Conn {
            database: server.client.database(&name),
            io: server.io_database(&name),
            async_database: server.async_client.database(&name),
            server,
        });
        self.state = match self.isolation {
            Isolation::Shared => DbState::Unknown,
            Isolation::DatabasePerLease => DbState::Empty,
        };
        self.touched.store(false, Ordering::Relaxed);
        self.snapshots.clear();
        self.base.set_connected(true);
        Ok(())
    }

    /// With [`Isolation::Shared`], takes the database's lock in the shared registry (a
    /// `shared:<database>` document in `venomqa_leases.locks`, created with `insert`: the
    /// unique `_id` lets exactly one manager on any process or machine have it). A lock
    /// whose holder is gone (a dead process on this machine, or an expiry in server time
    /// passed without heartbeat) is taken over; otherwise waits up to `lock_timeout`.
    fn acquire_shared_lock(&mut self) -> Result<()> {
        if self.isolation != Isolation::Shared || self.lock_held.is_some() {
            return Ok(());
        }
        static HOLDERS: AtomicU64 = AtomicU64::new(0);
        let conn = self.conn.as_ref().expect("connected");
        let server = &conn.server;
        let database = conn.database.name();
        let id = format!("shared:{database}");
        let holder = format!(
            "{}:{}",
            OWNER.token,
            HOLDERS.fetch_add(1, Ordering::Relaxed)
        );
        let op = || format!("taking the lock of shared database {database:?}");
        server.start_heartbeat(self.lease_ttl);
        let locks = server.locks();
        let deadline = std::time::Instant::now() + self.lock_timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let now = server.server_time()?;
            let mut record = OWNER.record(&id, now, self.lease_ttl);
            record.insert("holder", &holder);
            match locks.insert_one(record).run() {
                Ok(_) => {
                    self.lock_held = Some(holder);
                    return Ok(());
                }
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(Error::backend(NAME, op(), e.kind)),
            }
            let current = locks
                .find_one(doc! { "_id": &id })
                .run()
                .map_err(|e| Error::backend(NAME, op(), e.kind))?;
            if let Some(current) = &current {
                if let Some(reason) = stale_reason(current, now) {
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
                        .map_err(|e| Error::backend(NAME, op(), e.kind))?;
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
                        "{who} is using it (isolation: shared) and did not finish within {} s. \
                         Tests on a shared database take turns, across processes too; give each \
                         test a database of its own with `isolation: database_per_lease` (the \
                         default), or raise `shared_lock_timeout_secs`",
                        self.lock_timeout.as_secs()
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Gives the shared database's lock back, if this manager holds it.
    fn release_shared_lock(&mut self) -> Result<()> {
        let Some(holder) = self.lock_held.take() else {
            return Ok(());
        };
        let Some(conn) = &self.conn else {
            return Ok(());
        };
        conn.server
            .locks()
            .delete_one(
                doc! { "_id": format!("shared:{}", conn.database.name()), "holder": &holder },
            )
            .run()
            .map_err(|e| {
                Error::backend(
                    NAME,
                    format!(
                        "releasing the lock of shared database {:?}",
                        conn.database.name()
                    ),
                    e.kind,
                )
            })?;
        Ok(())
    }

    /// Releases the lock once the outermost checkpoint is gone; a failure only delays the
    /// next holder until the lock expires, so it is logged, not returned.
    fn release_lock_if_done(&mut self) {
        if self.lock_held.is_some() && self.snapshots.is_empty() {
            if let Err(e) = self.release_shared_lock() {
                tracing::warn!(target: "venomqa", backend = NAME, error = %e, "could not release the shared database lock; it expires after lease_ttl_secs");
            }
        }
    }

    fn disconnect_inner(&mut self) -> Result<()> {
        self.base.set_connected(false);
        self.snapshots.clear();
        self.release_lock_if_done();
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        if self.isolation == Isolation::DatabasePerLease {
            Self::drop_database(&conn)?;
            conn.server
                .leases()
                .delete_one(doc! { "_id": conn.database.name() })
                .run()
                .map_err(|e| Error::backend(NAME, "deleting the lease record", e.kind))?;
        }
        Ok(())
    }

    fn checkpoint_inner(&mut self, name: &str) -> Result<()> {
        self.base.ensure_connected()?;
        crate::validate_checkpoint_name(name)?;
        let locking = self.snapshots.is_empty() && self.lock_held.is_none();
        if locking {
            self.acquire_shared_lock()?;
        }
        let result = self.checkpoint_body(name);
        if result.is_err() && locking {
            self.release_lock_if_done();
        }
        result
    }

    fn checkpoint_body(&mut self, name: &str) -> Result<()> {
        // The outermost checkpoint of a per-lease database is free when the database is
        // known to be freshly prepared, or is found to hold no collections at all.
        let mut fresh_candidate = false;
        if self.isolation == Isolation::DatabasePerLease && self.snapshots.is_empty() {
            if self.state != DbState::Unknown && !self.touched.load(Ordering::Relaxed) {
                fresh_candidate = true;
            } else if self.state != DbState::Prepared {
                let conn = self.conn.as_ref().expect("connected");
                if list_collections(&conn.io, None)?.is_empty() {
                    self.state = DbState::Empty;
                    fresh_candidate = true;
                } else {
                    self.state = DbState::Unknown;
                }
            }
        }
        if fresh_candidate {
            self.prepare_inner()?;
        }
        let conn = self.conn.as_ref();
        let scope =
            (!self.collections_to_reset.is_empty()).then_some(self.collections_to_reset.as_slice());
        let snapshots = &mut self.snapshots;
        self.base.checkpoint(name, |_, _| {
            let snapshot = if fresh_candidate {
                Snapshot::Fresh
            } else {
                Snapshot::Full(snapshot_collections(&conn.expect("connected").io, scope)?)
            };
            snapshots.push(snapshot);
            Ok(())
        })
    }
}

impl StateManager for MongoDbStateManager {
    fn connect(&mut self) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        blocking(|| self.connect_inner())
    }

    /// Drops the manager's database (per-lease isolation) and its lease record.
    fn disconnect(&mut self) -> Result<()> {
        blocking(|| self.disconnect_inner())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        blocking(|| self.checkpoint_inner(name))
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let index = self.base.position(name)?;
        blocking(|| {
            self.restore(index, true)?;
            self.snapshots.truncate(index + 1);
            self.base.rollback(name, |_, _| Ok(()))
        })
    }

    fn release(&mut self, name: &str) -> Result<()> {
        let snapshots = &mut self.snapshots;
        self.base.release(name, |index, _| {
            snapshots.truncate(index);
            Ok(())
        })?;
        blocking(|| self.release_lock_if_done());
        Ok(())
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        let index = self.base.position(name)?;
        blocking(|| {
            self.restore(index, false)?;
            self.snapshots.truncate(index);
            self.base.discard(name, |_, _| Ok(()))?;
            self.release_lock_if_done();
            Ok(())
        })
    }

    /// Empties the collections (`collections_to_reset`, else every collection; views are
    /// left alone) with `deleteMany`, keeping their indexes, and forgets every checkpoint.
    fn reset(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        self.base.clear_checkpoints();
        self.snapshots.clear();
        blocking(|| self.release_lock_if_done());
        self.state = DbState::Unknown;
        let conn = self.conn.as_ref().expect("connected");
        let scope = self.scope();
        blocking(|| {
            for info in list_collections(&conn.io, scope)? {
                if info.get_str("type").unwrap_or("collection") == "view" {
                    continue;
                }
                let name = info.get_str("name").unwrap_or_default();
                conn.io
                    .collection::<Document>(name)
                    .delete_many(doc! {})
                    .run()
                    .map_err(|e| {
                        Error::backend(NAME, format!("reset: emptying collection {name:?}"), e.kind)
                    })?;
            }
            Ok(())
        })
    }

    fn is_connected(&self) -> bool {
        self.base.is_connected() && self.conn.is_some()
    }

    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }

    /// A `ping` round trip.
    fn health_check(&mut self) -> bool {
        let Some(conn) = &self.conn else { return false };
        blocking(|| conn.io.run_command(doc! { "ping": 1 }).run().is_ok())
    }
}

/// A manager dropped while it holds a shared database's lock gives it back.
impl Drop for MongoDbStateManager {
    fn drop(&mut self) {
        if self.lock_held.is_some() {
            self.snapshots.clear();
            blocking(|| self.release_lock_if_done());
        }
    }
}

fn is_duplicate_key(e: &::mongodb::error::Error) -> bool {
    use ::mongodb::error::{ErrorKind, WriteFailure};
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}

impl crate::Session<MongoDbStateManager> {
    /// The test's database (sync API): run the code under test against it.
    pub fn database(&self) -> ::mongodb::sync::Database {
        self.manager_ref().database()
    }

    /// The test's database for async code (async `#[venom_test]` functions).
    pub fn async_database(&self) -> ::mongodb::Database {
        self.manager_ref().async_database()
    }

    /// The name of the test's database, for code under test that connects on its own.
    pub fn database_name(&self) -> &str {
        self.manager_ref().database_name()
    }

    /// The driver client (sync API).
    pub fn client(&self) -> ::mongodb::sync::Client {
        self.manager_ref().client()
    }

    /// The driver client for async code.
    pub fn async_client(&self) -> ::mongodb::Client {
        self.manager_ref().async_client()
    }
}

pub(crate) fn backend() -> Backend {
    Backend::new(NAME, MongoDbStateManager::from_config).default_pool_size_with(|config| {
        match config.option("isolation") {
            Some("shared") => 1,
            _ => test_threads(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn record(pid: u32, start: Option<i64>, machine: Option<&str>, expires: DateTime) -> Document {
        let mut lease = doc! { "owner": "someone-else", "host": "h", "pid": i64::from(pid), "heartbeat": expires, "expires_at": expires };
        if let Some(machine) = machine {
            lease.insert("machine", machine);
        }
        if let Some(start) = start {
            lease.insert("start", start);
        }
        lease
    }

    #[test]
    fn own_process_is_alive_and_dead_pids_are_stale() {
        let owner = &*OWNER;
        let now = DateTime::now();
        let later = DateTime::from_millis(now.timestamp_millis() + 600_000);
        let earlier = DateTime::from_millis(now.timestamp_millis() - 1_000);
        if let Some(machine) = owner.machine.as_deref() {
            assert!(matches!(process_state(owner.pid), ProcState::Alive(_)));
            // Even expired, a record of a live process on this machine is kept.
            let lease = record(owner.pid, owner.start, Some(machine), earlier);
            assert_eq!(stale_reason(&lease, now), None);
            let reused = record(
                owner.pid,
                Some(owner.start.unwrap() + 1),
                Some(machine),
                later,
            );
            assert!(stale_reason(&reused, now).unwrap().contains("reused"));
            let gone = record(u32::MAX - 1, Some(1), Some(machine), later);
            assert_eq!(process_state(u32::MAX - 1), ProcState::Dead);
            assert!(stale_reason(&gone, now).unwrap().contains("exited"));
        }
        let remote = record(1, None, Some("elsewhere"), earlier);
        assert!(stale_reason(&remote, now).unwrap().contains("expired"));
        let recent = record(1, None, Some("elsewhere"), later);
        assert_eq!(stale_reason(&recent, now), None);
    }

    #[test]
    fn only_not_found_in_proc_means_dead() {
        use std::io::{Error as IoError, ErrorKind};
        assert_eq!(
            proc_state_from(Err(IoError::from(ErrorKind::NotFound))),
            ProcState::Dead
        );
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::Other,
            ErrorKind::InvalidData,
        ] {
            assert_eq!(
                proc_state_from(Err(IoError::from(kind))),
                ProcState::Unknown
            );
        }
        assert_eq!(proc_state_from(Ok("garbage".into())), ProcState::Unknown);
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 12345 20";
        assert_eq!(proc_state_from(Ok(stat.into())), ProcState::Alive(12345));
        assert_eq!(
            proc_state_from(Ok(stat.replace(") S ", ") Z "))),
            ProcState::Dead
        );

        // /proc unreadable for the owner's pid (hidepid, another pid namespace, EACCES): the
        // record is judged by its expiry, never as "exited".
        let Some(machine) = OWNER.machine.as_deref() else {
            return;
        };
        let now = DateTime::now();
        let later = DateTime::from_millis(now.timestamp_millis() + 600_000);
        let earlier = DateTime::from_millis(now.timestamp_millis() - 1_000);
        let unreadable = |_| ProcState::Unknown;
        let live = record(12345, Some(1), Some(machine), later);
        assert_eq!(stale_reason_with(&live, now, unreadable), None);
        let silent = record(12345, Some(1), Some(machine), earlier);
        assert!(stale_reason_with(&silent, now, unreadable)
            .unwrap()
            .contains("expired"));
    }

    #[test]
    fn the_sweepers_ttl_plays_no_part_only_the_owners_expiry() {
        // An owner with the default TTL whose last heartbeat was 45 s ago: a sweeper with a
        // 30 s TTL (or any other) keeps it, since the record's own expiry has not passed.
        let now = DateTime::now();
        let mut lease = OWNER.record(
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
        let m = MongoDbStateManager::new("mongodb://ann:s3cr3t@127.0.0.1:1/app?authSource=admin");
        let text = format!("{m:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("ann:***@127.0.0.1"), "{text}");
    }
}
