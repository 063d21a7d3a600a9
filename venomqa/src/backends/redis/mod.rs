//! The Redis backend: every type and every TTL survives checkpoint and rollback, and
//! parallel tests (threads, `cargo nextest` processes, CI shards sharing one server) never
//! see each other's keys.
//!
//! ```
//! use venomqa::redis::{redis, RedisSession};
//!
//! let mut db = RedisSession::start("redis")?; // #[venom_test(backend = "redis")] does this
//! let key = db.key("user:1"); // "user:1" in database isolation; prefixed in prefix isolation
//! redis::cmd("HSET").arg(&key).arg("name").arg("ann").exec(db.conn()).unwrap();
//! db.checkpoint("renamed", |db| {
//!     redis::cmd("HSET").arg(&key).arg("name").arg("bob").exec(db.conn()).unwrap();
//! })?;
//! let name: String = redis::cmd("HGET").arg(&key).arg("name").query(db.conn()).unwrap();
//! assert_eq!(name, "ann");
//! db.finish()?; // rolled back: the key is gone
//! # Ok::<(), venomqa::Error>(())
//! ```
//!
//! # Isolation
//!
//! | `isolation:` | what a test gets |
//! |---|---|
//! | `database` (default) | a logical database of its own (`SELECT n`, `n` >= 1), leased in database 0 |
//! | `prefix` | a key prefix of its own, `<key_prefix>{vq<slot>}:` ([`RedisConn::prefix`]), leased in the URL's database; for a single Redis server (or a proxy that passes `EVAL`, `SCAN` and `MULTI` through) without `SELECT` or with one database. Not Redis Cluster: the scripts touch keys they do not declare, and the client talks to one node |
//! | `none` | the URL's database as it is, no lease (you guarantee that one test at a time uses it) |
//! | `capture` | the URL's database `n >= 1` as it is, shared with code under test in other processes: whatever any client writes to it is rolled back (see [Capture](#capture)) |
//!
//! A lease is a key `venomqa:lease:db:<n>` in database 0 (or
//! `venomqa:lease:prefix:<key_prefix>{vq<slot>}` in the URL's database), set with
//! `SET .. NX PX <lease_ttl_ms>` and renewed every third of that by a background thread of
//! the connection, so it never expires under a long test and expires after a crash. It
//! lives in the connection value ([`RedisConn`]): a leased database or prefix is emptied
//! when it is leased and when it is given back (when the connection is closed or dropped,
//! and at the normal exit of the process for pooled connections; never by a forked child,
//! nor once the lease is known lost).
//!
//! Every destructive step (the rollback's `FLUSHDB`/`UNLINK`/`RESTORE`, `reset`, emptying on
//! release) runs in a Lua script that first checks, on the server, that the lease key still
//! holds this connection's owner token: a lease that expired while the process was stopped
//! is never acted on ([`Error::StateLost`] instead). Locally, a lease counts as lost a fifth
//! of the TTL before the server would expire it, counted from when the last renewal was
//! sent. Owner tokens name the host, the pid and a random process token.
//!
//! Prefix and none isolation on a URL database `n >= 1` also *pin* it: they keep
//! `venomqa:lease:db:<n>` in database 0 set to [`PIN_VALUE`] (shared, renewed by each of
//! them, left to expire after the last), so database isolation never leases and empties a
//! database they work in; while a database-isolation test holds it, they wait
//! `lease_wait_ms` and then fail saying so.
//!
//! # Checkpoints
//!
//! A checkpoint `SCAN`s the keys under the key prefix (never `KEYS`) and reads
//! `DUMP` + `PEXPIRETIME` of them in pipelined batches (the next `SCAN` rides in the same
//! round trip); the [`Snapshot`] is the checkpoint's mark, in the test process's memory. A
//! rollback is one round trip (after a `SCAN` when a prefix limits it): `DISCARD` (a
//! transaction the test left open), `UNWATCH` (keys the test watched can't abort it),
//! `MULTI`, scripts that verify the lease and then `FLUSHDB` (the connection owns the whole
//! database) or `UNLINK` the keys created since, and `RESTORE .. REPLACE ABSTTL` the rest,
//! `EXEC` (a nil reply is an error), and `SELECT` of the test's database, whatever the test
//! selected, in every isolation mode. A connection the rollback cannot use (subscribe mode,
//! killed) is replaced by a new one. Keys come back byte for byte, with their absolute
//! expiry time to the millisecond; a key whose expiry time passed during the test stays
//! expired, as it would have without the test. Keys named `venomqa:lease:*` are skipped only
//! where leases live (database 0 and the URL's database in prefix/none isolation), not in a
//! leased database.
//!
//! # Capture
//!
//! With `isolation: capture` the rollback undoes what ANY client wrote to the URL's database
//! `n` (`redis://host:6379/n`, `n >= 1`): an API server in another process, the app's own
//! pool. The code under test connects to [`Session::url`](crate::Session::url).
//!
//! - **Checkpoint**: a spare database is leased (like database isolation's, `SET NX` on
//!   `venomqa:lease:db:<s>`, emptied), and one Lua script `COPY`s every key of `n` into it
//!   (`COPY` keeps the value, its encoding and its absolute expiry time; no key crosses the
//!   network). One spare per checkpoint depth.
//! - **Rollback**: a script proves the spare still holds the checkpoint (see
//!   [`CaptureProof`]), then one atomic script `SWAPDB n s`: every client of database `n`,
//!   its open connections included, sees the checkpoint at once. When the checkpoint stays
//!   (a rollback), the same script copies the data back into the spare; when it ends (the
//!   end of a test, a checkpoint block), it empties the spare instead, so the end of a test
//!   is O(1) plus the proof. Then the key count of `n` is checked against the spare's.
//! - **Taking turns**: the connection pins database `n` with [`CAPTURE_PIN_VALUE`] for its
//!   whole life, so database isolation never leases (and empties) it and prefix or none
//!   isolation never work in it; a session's first checkpoint takes the turn lock
//!   `venomqa:lease:capture:db:<n>` (a lease like the others, waiting up to
//!   `lease_wait_ms`), so sessions on one database take turns, across processes too. The
//!   pool of a capture entry holds one connection.
//! - **A process that dies**: the first checkpoint's spare is recorded in the script that
//!   fills it (its lease key holds a marker without expiry, and `venomqa:capture:db:<n>`
//!   names it); the next session on database `n` swaps it back before it starts. The spares
//!   of nested checkpoints expire with their leases. [`Redis::uninstall_capture`] does the
//!   same by hand and removes the record. FLUSHDB only ever runs on spares, in scripts that
//!   check the lease first; never FLUSHALL.
//! - [`Session::diff`](crate::Session::diff) compares database `n` with the spare, in a
//!   script: keys inserted, deleted, updated (hash fields, set members, a string's value,
//!   lengths, type, expiry time).
//!
//! Needs Redis 7.0 or later, and `n >= 1` (database 0 holds the leases). A rollback is one
//! atomic script, so no write ever lands in the middle of it; writes right after it are the
//! app's next ones. What else capture does not cover: other databases, server state that is
//! not keys (as for the other isolations, below).
//!
//! ```
//! use venomqa::redis::{redis, Redis};
//! use venomqa::{BackendConfig, Manager, StateManager};
//!
//! # let base = std::env::var("VENOMQA_REDIS_URL").unwrap_or(venomqa::redis::DEFAULT_URL.into());
//! let url = format!("{}/11", base.trim_end_matches('/')); // the app's database: 11
//! // In venomqa.yaml: an entry with this url and `isolation: capture`.
//! let config = BackendConfig::new("redis").with_url(&url).with_option("isolation", "capture");
//! let mut db = Manager::<Redis>::from_config(&config)?;
//! db.connect()?; // pins database 11
//! db.checkpoint("before_the_app")?; // the turn lock, a spare, COPY of every key
//! // The app, with a client of its own (another process, in real life):
//! let mut app = redis::Client::open(db.url()?.expose()).unwrap().get_connection().unwrap();
//! redis::cmd("SET").arg("order:1").arg("paid").exec(&mut app).unwrap();
//! assert_eq!(db.diff("before_the_app")?.to_string(), "db11 +1 (order:1)");
//! db.rollback("before_the_app")?; // SWAPDB: the app's open connection sees it at once
//! let there: bool = redis::cmd("EXISTS").arg("order:1").query(&mut app).unwrap();
//! assert!(!there);
//! db.discard("before_the_app")?; // the end of the session: the spare is emptied
//! db.disconnect()?;
//! # Ok::<(), venomqa::Error>(())
//! ```
//!
//! # Options
//!
//! Keys of the entry in `venomqa.yaml`: see [`RedisOptions`] (`isolation`, `key_prefix`,
//! `databases`, `prefix_slots`, `lease_ttl_ms`, `lease_wait_ms`, `batch_size`,
//! `capture_proof`), besides the common `url` ([`DEFAULT_URL`]), `pool_size` and
//! `connect_timeout_ms`.

mod capture;
mod lease;
mod options;
mod snapshot;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use ::redis;
use ::redis::{Client, Connection, RedisError};

use self::lease::{Empty, Guard, GuardFail, Held, Lease};
pub use self::options::{CaptureProof, Databases, Isolation, RedisOptions};
pub use self::snapshot::Snapshot;

use self::snapshot::{Entry, Scope};
use crate::backend::Backend;
use crate::capture::diff::Diff;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::state::Manager;
use crate::util::test_threads;

pub(crate) const NAME: &str = "redis";

/// The URL used when none is configured.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Every lease key starts with this.
pub const LEASE_KEY_PREFIX: &str = "venomqa:lease:";

/// The value of a pin: the lease key of a database that prefix or none connections work in.
pub const PIN_VALUE: &str = "venomqa:pinned-by-prefix-or-none-isolation";

/// The value of a capture pin: the lease key of a database that capture connections work
/// in (see the [capture section](self#capture)).
pub const CAPTURE_PIN_VALUE: &str = "venomqa:pinned-by-capture";

/// How long opening a connection may take unless `connect_timeout_ms` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The number of databases assumed when `CONFIG GET databases` is refused (Redis' default).
const FALLBACK_DATABASES: i64 = 16;

/// The Redis backend's [`StateManager`](crate::StateManager).
pub type RedisStateManager = Manager<Redis>;

/// A session on the Redis backend: [`conn`](crate::Session::conn) gives the test a
/// `redis::Connection` already on its database.
pub type RedisSession = crate::Session<RedisStateManager>;

/// A driver error with what to do about it.
#[derive(Debug)]
struct Hinted {
    error: RedisError,
    hint: &'static str,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.error, self.hint)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The Redis backend: DUMP/RESTORE snapshots in a leased database or key prefix.
///
/// ```
/// use venomqa::redis::{redis, Redis, RedisStateManager};
/// use venomqa::StateManager;
///
/// let url = std::env::var("VENOMQA_REDIS_URL").unwrap_or(venomqa::redis::DEFAULT_URL.into());
/// let mut db = RedisStateManager::new(Redis::from_url(&url)?.key_prefix("doc:"));
/// db.connect()?; // leases a database of its own
/// redis::cmd("HSET").arg("doc:user:1").arg("name").arg("ann").exec(db.conn()).unwrap();
/// db.checkpoint("start")?;
/// redis::cmd("DEL").arg("doc:user:1").exec(db.conn()).unwrap();
/// redis::cmd("SET").arg("doc:later").arg("x").exec(db.conn()).unwrap();
/// db.rollback("start")?;
/// let name: String = redis::cmd("HGET").arg("doc:user:1").arg("name").query(db.conn()).unwrap();
/// assert_eq!(name, "ann");
/// let later: bool = redis::cmd("EXISTS").arg("doc:later").query(db.conn()).unwrap();
/// assert!(!later);
/// db.disconnect()?; // empties the database and gives the lease back
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Redis {
    url: SecretUrl,
    /// The URL's database.
    home_db: i64,
    options: RedisOptions,
    connect_timeout: Duration,
}

impl Redis {
    /// The backend for `url` (`redis://[[user]:password@]host[:port][/db]`, or
    /// `redis+unix:///path[?db=n]`), with database isolation (where the URL must not name a
    /// database other than 0).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(
            &BackendConfig::new(NAME).with_url(url),
            RedisOptions::default(),
        )
    }

    /// How tests are kept apart (default [`Isolation::Database`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.options.isolation = isolation;
        self
    }

    /// The prefix of the keys checkpoints and `reset()` cover (default: every key). In
    /// prefix isolation, the base of each lease's prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.key_prefix = prefix.into();
        self
    }

    /// How long a lease lives without renewal (default 30 s, at least 300 ms): how long the
    /// database of a crashed process stays unusable. It is renewed every third of that.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.options.lease_ttl_ms = (ttl.as_millis() as u64).max(options::MIN_LEASE_TTL_MS);
        self
    }

    /// How long `connect()` waits for a free database or slot before failing (default 60 s).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.options.lease_wait_ms = wait.as_millis() as u64;
        self
    }

    /// The databases to lease, inclusive (default: every database but 0, which holds the
    /// leases). An empty range (`last < first`) is ignored.
    pub fn databases(mut self, first: i64, last: i64) -> Self {
        if let Ok(range) = Databases::new(first, last) {
            self.options.databases = Some(range);
        }
        self
    }

    /// How many prefixes prefix isolation leases from (default 1024).
    pub fn prefix_slots(mut self, n: u32) -> Self {
        self.options.prefix_slots = n.max(1);
        self
    }

    /// Keys per pipelined batch of `SCAN`/`DUMP`/`UNLINK` (default 1000).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.options.batch_size = n.max(1);
        self
    }

    /// Capture: how a rollback proves the spare database still holds the checkpoint
    /// (default [`CaptureProof::Count`]).
    pub fn capture_proof(mut self, proof: CaptureProof) -> Self {
        self.options.capture_proof = proof;
        self
    }

    /// How long opening a connection may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The options in force.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    fn capture(&self) -> bool {
        self.options.isolation == Isolation::Capture
    }

    fn lease_ttl_duration(&self) -> Duration {
        Duration::from_millis(self.options.lease_ttl_ms)
    }

    fn lease_wait_duration(&self) -> Duration {
        Duration::from_millis(self.options.lease_wait_ms)
    }

    fn client(&self) -> Result<Client> {
        client(&self.url)
    }

    /// The databases to lease: the configured range, else all but database 0.
    fn lease_range(&self, conn: &mut Connection) -> (i64, i64) {
        if let Some(r) = self.options.databases {
            return (r.first, r.last);
        }
        let count = server_databases(conn).unwrap_or(FALLBACK_DATABASES);
        (1, count - 1)
    }

    /// Takes a lease of a database (`database`: database isolation, or a capture spare) or
    /// of a prefix: the ACQUIRE script leases the first free slot (and empties a leased
    /// database), waiting up to `lease_wait_ms`. A database lease leaves database 0
    /// selected.
    fn acquire(&self, client: &Client, conn: &mut Connection, database: bool) -> Result<Lease> {
        let capture = self.options.isolation == Isolation::Capture;
        if database {
            // The lease keys live in database 0.
            ::redis::cmd("SELECT")
                .arg(0)
                .exec(conn)
                .map_err(lease_error)?;
        }
        let (first, last, key_base, suffix, clean) = if database {
            let (first, last) = self.lease_range(conn);
            (first, last, format!("{LEASE_KEY_PREFIX}db:"), "", "1")
        } else {
            (
                0,
                i64::from(self.options.prefix_slots) - 1,
                format!("{LEASE_KEY_PREFIX}prefix:{}{{vq", self.options.key_prefix),
                "}",
                "0",
            )
        };
        let owner = crate::backends::owner::me().lease_token();
        let ttl = self.lease_ttl_duration();
        let wait = self.lease_wait_duration();
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        let script = ::redis::Script::new(lease::ACQUIRE);
        // Database 0 holds the lease keys and is never leased.
        let first_leasable = if database { first.max(1) } else { first };
        if first_leasable > last {
            return Err(Error::unsupported(
                NAME,
                format!("{} on {} (databases {first}..={last}, none leasable)", if capture { "capture's spare databases" } else { "database isolation" }, self.url),
                "the server has a single database (or `databases` holds only database 0, which keeps the leases); use isolation: prefix, a key prefix per test in one database",
            ));
        }
        loop {
            let got = script
                .arg(&owner)
                .arg(self.options.lease_ttl_ms)
                .arg(first_leasable)
                .arg(last)
                .arg(&key_base)
                .arg(clean)
                .arg(suffix)
                .invoke::<i64>(conn)
                .map_err(lease_error)?;
            if got >= 0 {
                let key = format!("{key_base}{got}{suffix}");
                let db = if database { 0 } else { self.home_db };
                return Lease::start(client, got, db, key, owner, ttl, self.connect_timeout);
            }
            let waited = started.elapsed();
            if waited >= wait {
                let (what, way_out) = if capture {
                    (
                        format!("all databases {first}..={last} (capture needs a spare one per checkpoint)"),
                        "nest fewer checkpoints, widen `databases`",
                    )
                } else if database {
                    (
                        format!("all databases {first}..={last}"),
                        "use isolation: prefix",
                    )
                } else {
                    (
                        format!("all {} prefix slots", self.options.prefix_slots),
                        "raise prefix_slots",
                    )
                };
                return Err(Error::backend(
                    NAME,
                    "leasing an isolated key space",
                    format!(
                        "{what} are leased by other tests or processes ({key_base}*) and none came free within {} ms; lower pool_size, {way_out}, or raise lease_wait_ms",
                        waited.as_millis()
                    ),
                ));
            }
            std::thread::sleep(pause.min(wait - waited));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Pins the home database `n >= 1` of a prefix/none connection: `venomqa:lease:db:<n>`
    /// in database 0 holds [`PIN_VALUE`] (shared by every such connection, each renewing it),
    /// so database isolation never leases (and empties) it. Waits up to `lease_wait_ms`
    /// while a database-isolation connection holds it.
    fn pin_home(&self, client: &Client, conn: &mut Connection, value: &str) -> Result<Lease> {
        let key = format!("{LEASE_KEY_PREFIX}db:{}", self.home_db);
        let started = Instant::now();
        loop {
            let got: (i64,) = ::redis::pipe()
                .cmd("EVAL")
                .arg(lease::PIN)
                .arg(1)
                .arg(&key)
                .arg(value)
                .arg(self.options.lease_ttl_ms)
                .cmd("SELECT")
                .arg(self.home_db)
                .ignore()
                .query(conn)
                .map_err(lease_error)?;
            if got.0 == 1 {
                return Lease::start(
                    client,
                    self.home_db,
                    0,
                    key,
                    value.to_owned(),
                    self.lease_ttl_duration(),
                    self.connect_timeout,
                );
            }
            if started.elapsed() >= self.lease_wait_duration() {
                let holder: (Option<String>,) = ::redis::pipe()
                    .cmd("SELECT")
                    .arg(0)
                    .ignore()
                    .cmd("GET")
                    .arg(&key)
                    .cmd("SELECT")
                    .arg(self.home_db)
                    .ignore()
                    .query(conn)
                    .unwrap_or((None,));
                let holder = capture::holder_of(holder.0.as_deref().unwrap_or_default());
                return Err(Error::backend(
                    NAME,
                    "pinning the URL's database",
                    format!(
                        "database {db} (the URL's) is held by {holder}; waited {} ms. Keep database isolation (`databases:`) and the other isolations off database {db}, or use another database in the URL",
                        started.elapsed().as_millis(),
                        db = self.home_db,
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A client for `url` (no I/O), or a connect error saying what a Redis URL looks like.
fn client(url: &SecretUrl) -> Result<Client> {
    Client::open(url.expose()).map_err(|error| {
        Error::connect(
            NAME,
            url.expose(),
            Hinted {
                error,
                hint: "expected redis://[[user]:password@]host[:port][/db] or redis+unix:///path",
            },
        )
    })
}

/// An error of a lease script, with the ways out.
fn lease_error(error: RedisError) -> Error {
    Error::backend(
        NAME,
        "leasing an isolated key space",
        Hinted {
            error,
            hint: "if the server refuses SELECT or has fewer databases, set databases: \"1-N\" or isolation: prefix; if it refuses EVAL, isolation: none",
        },
    )
}

/// `CONFIG GET databases`, if the server answers it.
fn server_databases(conn: &mut Connection) -> Option<i64> {
    let reply: Vec<String> = ::redis::cmd("CONFIG")
        .arg("GET")
        .arg("databases")
        .query(conn)
        .ok()?;
    reply.get(1)?.parse().ok().filter(|&n: &i64| n >= 1)
}

/// A connection with its timeouts set.
fn open_connection(client: &Client, url: &SecretUrl, timeout: Duration) -> Result<Connection> {
    let conn = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| Error::connect(NAME, url.expose(), e))?;
    conn.set_read_timeout(Some(COMMAND_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(COMMAND_TIMEOUT)))
        .map_err(|e| Error::connect(NAME, url.expose(), e))?;
    Ok(conn)
}

/// One connection of the Redis backend: the driver connection on the test's database, and
/// the lease (and pin) it holds, given back when the connection is closed or dropped.
pub struct RedisConn {
    conn: Connection,
    client: Client,
    url: SecretUrl,
    isolation: Isolation,
    /// The URL's database.
    home_db: i64,
    /// The prefix the test's keys go under.
    prefix: String,
    lease: Option<Lease>,
    /// Prefix, none and capture isolation on a database n >= 1: the shared pin of
    /// `venomqa:lease:db:<n>` that keeps database isolation from leasing (and emptying) it.
    pin: Option<Lease>,
    /// Capture isolation: the session's turn lock and the checkpoints' spare databases.
    capture: Option<capture::CaptureState>,
    has_expiretime: bool,
    batch_size: usize,
    connect_timeout: Duration,
}

/// Shows where the connection works, never the URL.
impl fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConn")
            .field("isolation", &self.isolation)
            .field("database", &self.database())
            .field("prefix", &self.prefix)
            .field("lease_key", &self.lease_key())
            .finish_non_exhaustive()
    }
}

impl RedisConn {
    /// The native connection, on the test's database: run the code under test through it.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The prefix the test's keys go under: `<key_prefix>{vq<slot>}:` in prefix isolation,
    /// else the configured `key_prefix` (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `name` under [`prefix`](Self::prefix): the key a test should use for `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The database the connection works in: the leased one in database isolation, else
    /// the URL's.
    pub fn database(&self) -> i64 {
        match (self.isolation, &self.lease) {
            (Isolation::Database, Some(l)) => l.slot,
            _ => self.home_db,
        }
    }

    /// How tests are kept apart.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The lease's owner token (stored as the lease key's value), if a lease is held.
    pub fn lease_owner(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.owner.as_str())
    }

    /// The lease key, if a lease is held.
    pub fn lease_key(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.key.as_str())
    }

    /// Whether the connection owns every key of its database (database isolation, no key
    /// prefix): then rollback is `FLUSHDB` + `RESTORE` and reset is `FLUSHDB`.
    fn owns_database(&self) -> bool {
        self.isolation == Isolation::Database && self.prefix.is_empty()
    }

    /// The connection, and where its keys are.
    fn scoped(&mut self) -> (&mut Connection, Scope<'_>) {
        let scope = Scope {
            db: self.database(),
            prefix: &self.prefix,
            batch: self.batch_size,
            // Lease keys live only in database 0 and in the home database of prefix/none
            // connections; a leased database (n >= 1) holds none.
            filter_leases: self.isolation != Isolation::Database,
        };
        (&mut self.conn, scope)
    }

    /// Every key under the prefix.
    fn scan_keys(&mut self) -> ::redis::RedisResult<Vec<Vec<u8>>> {
        let (conn, scope) = self.scoped();
        snapshot::scan_keys(conn, &scope)
    }

    fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.lease
            .iter()
            .chain(self.pin.iter())
            .chain(self.capture.iter().flat_map(capture::CaptureState::leases))
    }

    /// Whether the lease (or pin) is lost, or may have expired on the server.
    fn lease_lost(&self) -> bool {
        self.leases().any(Lease::is_lost)
    }

    fn check_lease(&self) -> Result<()> {
        match self.leases().find(|l| l.is_lost()) {
            Some(l) => Err(lost_error(&l.key, "its renewal is overdue")),
            None => Ok(()),
        }
    }

    /// What a lost connection means for the test's keys.
    fn lost_outcome(&self) -> &'static str {
        match self.isolation {
            Isolation::None => "the keys the test wrote so far stay in the URL's database; roll them back by hand",
            Isolation::Capture => "the checkpoint stays recorded on the server, so the next capture session on this database restores it",
            _ => "the test's keys stay in its leased key space, which is emptied when the lease is given back or expires",
        }
    }

    /// A driver error of `operation`: a lost connection, or a failure.
    fn driver_error(&self, operation: &str, e: RedisError) -> Error {
        if lease::is_connection_error(&e) {
            Error::connection_lost(NAME, operation, self.lost_outcome(), e)
        } else {
            Error::backend(NAME, operation, e)
        }
    }

    /// Replaces the connection by a new one (the old one is unusable).
    fn reconnect(&mut self) -> Result<()> {
        self.conn = open_connection(&self.client, &self.url, self.connect_timeout)?;
        Ok(())
    }

    /// A guarded step on the test's connection; when that connection is unusable (dropped,
    /// subscribe mode), once more on a new connection, which then replaces it.
    fn guarded(
        &mut self,
        what: &str,
        flush: bool,
        unlink: &[&[u8]],
        restore: &[Entry],
    ) -> Result<()> {
        self.check_lease()?;
        let guards: Vec<Guard> = self.leases().map(Lease::guard).collect();
        let db = self.database();
        let batch = self.batch_size;
        let mut outcome =
            lease::guarded_exec(&mut self.conn, &guards, db, flush, unlink, restore, batch);
        if let Err(GuardFail::Retry(e)) = &outcome {
            tracing::warn!(target: "venomqa", error = %e, "redis connection unusable; reconnecting for {what}");
            self.reconnect()?;
            outcome =
                lease::guarded_exec(&mut self.conn, &guards, db, flush, unlink, restore, batch);
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(GuardFail::Lost) => {
                for l in self.leases() {
                    l.lost.store(true, Ordering::SeqCst);
                }
                let keys: Vec<&str> = self.leases().map(|l| l.key.as_str()).collect();
                Err(lost_error(
                    &keys.join(", "),
                    "another owner holds it on the server",
                ))
            }
            Err(GuardFail::Retry(e) | GuardFail::Failed(e)) => Err(self.driver_error(what, e)),
        }
    }

    /// Deletes every key under the prefix (lease keys excepted), in batches, each batch
    /// verifying the lease on the server in the same script. A lost lease deletes nothing.
    fn empty_prefix(&mut self, what: &str) -> Result<()> {
        let keys = self.scan_keys().map_err(|e| self.driver_error(what, e))?;
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        self.guarded(what, false, &keys, &[])
    }

    /// Puts the keys under the prefix back to `snapshot`: one round trip of
    /// `DISCARD; UNWATCH; MULTI; EVAL ..; EXEC; SELECT n`, where each script verifies the
    /// lease on the server before `FLUSHDB` (whole database) or `UNLINK` (keys created
    /// since), and `RESTORE`.
    fn restore(&mut self, snapshot: &Snapshot, what: &str) -> Result<()> {
        self.check_lease()?;
        if self.owns_database() {
            return self.guarded(what, true, &[], &snapshot.entries);
        }
        let current = match self.scan_keys() {
            Err(e) if lease::is_connection_error(&e) => {
                self.reconnect()?;
                self.scan_keys()
            }
            other => other,
        }
        .map_err(|e| self.driver_error(what, e))?;
        let keep: HashSet<&[u8]> = snapshot.entries.iter().map(|e| e.key.as_slice()).collect();
        let doomed: Vec<&[u8]> = current
            .iter()
            .map(Vec::as_slice)
            .filter(|k| !keep.contains(k))
            .collect();
        self.guarded(what, false, &doomed, &snapshot.entries)
    }

    /// Gives the lease back, emptying the leased database or prefix first, each step
    /// verified on the server (only while the lease is still ours); on a connection the test
    /// left unusable (subscribe mode, killed) once more on a new one. A pin is left to
    /// expire: other connections may share it.
    fn release_lease(&mut self) -> Result<()> {
        let result = self.end_capture().and(self.release_lease_inner());
        if let Some(mut pin) = self.pin.take() {
            pin.stop();
            lease::unhold(&pin.key, &pin.owner);
        }
        result
    }

    fn release_lease_inner(&mut self) -> Result<()> {
        let Some(held) = self.lease.as_mut() else {
            return Ok(());
        };
        held.stop();
        let (key, owner, slot) = (held.key.clone(), held.owner.clone(), held.slot);
        lease::unhold(&key, &owner);
        let home = self.home_db;
        let database = self.isolation == Isolation::Database;
        let give_back = |conn: &mut Connection| {
            if database {
                lease::release_db(conn, &key, &owner, slot, home)
            } else {
                lease::release_key(conn, home, &key, &owner)
            }
        };
        let result = if database {
            Ok(())
        } else {
            self.empty_prefix("giving back the lease")
        }
        .and_then(|()| match give_back(&mut self.conn) {
            Err(_) => {
                self.reconnect()?;
                give_back(&mut self.conn)
                    .map_err(|e| Error::backend(NAME, format!("giving back the lease {key}"), e))
            }
            Ok(()) => Ok(()),
        });
        self.lease = None;
        result
    }
}

impl Drop for RedisConn {
    fn drop(&mut self) {
        if self.lease.is_some() || self.pin.is_some() || self.capture.is_some() {
            if let Err(e) = self.release_lease() {
                tracing::warn!(target: "venomqa", error = %e, "giving back the redis lease on drop failed; it expires by itself");
            }
        }
    }
}

/// The lease is gone: nothing destructive may run.
fn lost_error(key: &str, detail: &str) -> Error {
    Error::state_lost(
        NAME,
        format!("lease {key} was lost ({detail}): another test may be using these keys, so nothing was deleted or restored. Raise lease_ttl_ms; never FLUSHALL or delete venomqa:lease:* keys in tests"),
    )
}

impl Backend for Redis {
    const NAME: &'static str = NAME;
    type Options = RedisOptions;
    type Conn = RedisConn;
    type Mark = Snapshot;

    fn new(config: &BackendConfig, mut options: RedisOptions) -> Result<Self> {
        let key = |k: &str| format!("backends.{}.{k}", config.entry);
        if options.lease_ttl_ms < options::MIN_LEASE_TTL_MS {
            return Err(Error::config(
                &config.source,
                key("lease_ttl_ms"),
                format!(
                    "{} is too short; use at least {}",
                    options.lease_ttl_ms,
                    options::MIN_LEASE_TTL_MS
                ),
            ));
        }
        if options.prefix_slots == 0 {
            return Err(Error::config(
                &config.source,
                key("prefix_slots"),
                "must be at least 1",
            ));
        }
        options.batch_size = options.batch_size.max(1);
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| SecretUrl::from(DEFAULT_URL));
        let home_db = client(&url)?.get_connection_info().redis_settings().db();
        if options.isolation == Isolation::Capture {
            if home_db < 1 {
                return Err(Error::config(
                    &config.source,
                    key("url"),
                    "capture needs the app's database in the URL, 1 or higher (redis://host:6379/1): database 0 holds venomqa's leases and cannot be swapped",
                ));
            }
            if !options.key_prefix.is_empty() {
                return Err(Error::config(
                    &config.source,
                    key("key_prefix"),
                    "capture covers the URL's whole database; remove key_prefix",
                ));
            }
        }
        Ok(Redis {
            url,
            home_db,
            options,
            connect_timeout: config.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        })
    }

    /// A refused, reset or dropped connection, or a server still loading its data
    /// (`LOADING`, as after a restart): the pool tries again within the connect timeout.
    /// The driver keeps its I/O error inside its own type, so the core's check of the
    /// source chain does not see it.
    fn is_transient(&self, error: &Error) -> bool {
        match error.driver::<::redis::RedisError>() {
            Some(e) => {
                e.is_connection_refusal()
                    || e.is_connection_dropped()
                    || e.code() == Some("LOADING")
            }
            None => error.is_transient(),
        }
    }

    /// Connects, pins the URL's database (prefix, none and capture isolation on a database
    /// n >= 1), leases a database or prefix (waiting up to `lease_wait_ms`), empties it, and
    /// starts the lease's renewer thread. Capture leases nothing yet: its sessions take
    /// turns at their first checkpoint.
    fn connect(&self) -> Result<RedisConn> {
        if self.options.isolation == Isolation::Database && self.home_db != 0 {
            return Err(Error::unsupported(
                NAME,
                format!("database {} in the URL with database isolation", self.home_db),
                "drop the database from the URL, lease some with databases: \"3-5\", or use the URL's database as it is with isolation: none",
            ));
        }
        let client = self.client()?;
        let mut conn = open_connection(&client, &self.url, self.connect_timeout)?;
        ::redis::cmd("PING")
            .exec(&mut conn)
            .map_err(|e| Error::connect(NAME, self.url.expose(), e))?;
        let has_expiretime = ::redis::cmd("PEXPIRETIME")
            .arg("venomqa:probe")
            .query::<i64>(&mut conn)
            .is_ok();
        let isolation = self.options.isolation;
        if isolation == Isolation::Capture && !has_expiretime {
            return Err(Error::unsupported(
                NAME,
                format!("capture on {} (no PEXPIRETIME)", self.url),
                "capture needs Redis 7.0 or newer (COPY, PEXPIRETIME, SWAPDB in scripts); use isolation: database",
            ));
        }
        // Prefix, none and capture isolation keep data (and prefix leases) in the URL's
        // database: pin it first, so that database isolation never leases and empties it.
        // A capture pin excludes the others: a rollback swaps the whole database.
        let pin = if isolation != Isolation::Database && self.home_db >= 1 {
            let value = if isolation == Isolation::Capture {
                CAPTURE_PIN_VALUE
            } else {
                PIN_VALUE
            };
            Some(self.pin_home(&client, &mut conn, value)?)
        } else {
            None
        };
        let mut conn = RedisConn {
            conn,
            client,
            url: self.url.clone(),
            isolation,
            home_db: self.home_db,
            prefix: self.options.key_prefix.clone(),
            lease: None,
            pin,
            capture: None,
            has_expiretime,
            batch_size: self.options.batch_size,
            connect_timeout: self.connect_timeout,
        };
        // From here on, dropping `conn` gives back whatever it holds.
        if matches!(isolation, Isolation::None | Isolation::Capture) {
            return Ok(conn);
        }
        let held = self.acquire(
            &conn.client,
            &mut conn.conn,
            isolation == Isolation::Database,
        )?;
        let database = isolation == Isolation::Database;
        if !database {
            conn.prefix = format!("{}{{vq{}}}:", self.options.key_prefix, held.slot);
        }
        lease::hold(Held {
            url: self.url.clone(),
            key: held.key.clone(),
            key_db: held.db,
            owner: held.owner.clone(),
            empty: if database {
                Empty::Database(held.slot)
            } else {
                Empty::Prefix(conn.prefix.clone())
            },
            pid: std::process::id(),
            lost: held.lost.clone(),
        });
        let slot = held.slot;
        conn.lease = Some(held);
        if database {
            ::redis::cmd("SELECT")
                .arg(slot)
                .exec(&mut conn.conn)
                .map_err(|e| Error::backend(NAME, format!("SELECT {slot}"), e))?;
        } else {
            // Whatever a crashed holder of this slot left behind, verified on the server.
            conn.empty_prefix("emptying the leased prefix")?;
        }
        Ok(conn)
    }

    /// The lease still held, and a `PING`.
    fn recycle(&self, conn: &mut RedisConn) -> Result<()> {
        conn.check_lease()?;
        ::redis::cmd("PING")
            .exec(&mut conn.conn)
            .map_err(|e| conn.driver_error("the health check", e))
    }

    fn is_broken(&self, conn: &RedisConn) -> bool {
        conn.lease_lost()
    }

    fn checkpoint(&self, conn: &mut RedisConn, at: Point<'_>) -> Result<Snapshot> {
        conn.check_lease()?;
        if self.capture() {
            return self.capture_checkpoint(conn, at);
        }
        let has_expiretime = conn.has_expiretime;
        let (driver, scope) = conn.scoped();
        let read = snapshot::read(driver, &scope, has_expiretime);
        read.map_err(|e| conn.driver_error(&format!("checkpoint {:?} (SCAN/DUMP)", at.name()), e))
    }

    fn rollback(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        let what = format!("rollback to checkpoint {:?}", at.name());
        match mark.spare {
            Some((db, _)) => self.capture_restore(conn, db, true, &what),
            None => conn.restore(mark, &what),
        }
    }

    /// Nothing to do on the server: the snapshot is dropped. With capture, the first
    /// checkpoint's release keeps the changes and ends the session's turn.
    fn release(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        match mark.spare {
            Some((db, _)) if at.is_outermost() => self.capture_keep(conn, db),
            _ => Ok(()),
        }
    }

    fn discard(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<()> {
        let what = format!("rollback of checkpoint {:?}", at.name());
        match mark.spare {
            Some((db, _)) => self.capture_restore(conn, db, false, &what),
            None => conn.restore(mark, &what),
        }
    }

    /// With capture, gives the checkpoint's spare database back (emptied).
    fn forget(&self, conn: &mut RedisConn, mark: Snapshot) -> Result<()> {
        match mark.spare {
            Some((db, _)) => self.capture_forget(conn, db),
            None => Ok(()),
        }
    }

    /// Deletes every key under the prefix (`FLUSHDB` when the connection owns its whole
    /// database, else `SCAN` + `UNLINK` in batches), verified against the lease. With
    /// capture, every key of the URL's database, in batches, during a turn of its own.
    fn reset(&self, conn: &mut RedisConn) -> Result<()> {
        if self.capture() {
            self.take_turn(conn)?;
            let emptied = conn.empty_prefix("reset");
            return emptied.and(conn.end_capture());
        }
        if conn.owns_database() {
            conn.guarded("reset", true, &[], &[])
        } else {
            conn.check_lease()?;
            conn.empty_prefix("reset")
        }
    }

    /// In database and prefix isolation every connection has its own key space, so setup
    /// functions run on every new connection.
    fn setup_per_connection(&self) -> bool {
        matches!(
            self.options.isolation,
            Isolation::Database | Isolation::Prefix
        )
    }

    /// Database isolation: no more connections than databases to lease (a connection
    /// waiting for a database that an idle one of the same pool holds would wait in vain),
    /// counted with `CONFIG GET databases` unless `databases` says. Prefix: the test
    /// threads. None: 1.
    fn pool_size(&self) -> usize {
        match self.options.isolation {
            Isolation::Database => {
                let leasable = match self.options.databases {
                    Some(range) => range.len(),
                    None => {
                        let count = self.client().ok().and_then(|client| {
                            let mut conn = client
                                .get_connection_with_timeout(Duration::from_secs(2))
                                .ok()?;
                            conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                            server_databases(&mut conn)
                        });
                        count.unwrap_or(FALLBACK_DATABASES) - 1
                    }
                };
                test_threads().min(leasable.max(1) as usize)
            }
            Isolation::Prefix => test_threads(),
            // Capture: sessions on one database take turns anyway.
            Isolation::None | Isolation::Capture => 1,
        }
    }

    fn captures(&self, _: &RedisConn) -> bool {
        self.capture()
    }

    /// With capture, the configured URL: the app's database is in it.
    fn url(&self, _: &RedisConn) -> Result<SecretUrl> {
        if self.capture() {
            Ok(self.url.clone())
        } else {
            Err(Error::unsupported(
                NAME,
                "a URL for other connections",
                "the test's keys are rolled back only in its own key space; use `isolation: capture` with the app's database in the URL",
            ))
        }
    }

    fn diff(&self, conn: &mut RedisConn, at: Point<'_>, mark: &Snapshot) -> Result<Diff> {
        match mark.spare {
            Some((db, _)) => self.capture_diff(conn, db),
            None => Err(Error::unsupported(
                NAME,
                format!("diff() since checkpoint {:?}", at.name()),
                "only capture isolation keeps a copy on the server to compare with; use `isolation: capture`",
            )),
        }
    }

    /// Empties the leased database or prefix, gives the lease back, and closes the
    /// connection.
    fn close(&self, mut conn: RedisConn) -> Result<()> {
        conn.release_lease()
    }
}

impl Manager<Redis> {
    /// The native connection, on the test's database.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_conn`](Self::try_conn) returns an error
    /// instead.
    pub fn conn(&mut self) -> &mut Connection {
        self.try_conn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The native connection, or [`Error::NotConnected`].
    pub fn try_conn(&mut self) -> Result<&mut Connection> {
        Ok(self.connection()?.conn())
    }

    fn redis(&self) -> &RedisConn {
        self.connection_ref().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The prefix the test's keys go under (see [`RedisConn::prefix`]).
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn prefix(&self) -> &str {
        self.redis().prefix()
    }

    /// `name` under the test's prefix.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn key(&self, name: &str) -> String {
        self.redis().key(name)
    }

    /// The database the connection works in.
    ///
    /// # Panics
    ///
    /// When the manager is not connected.
    pub fn database(&self) -> i64 {
        self.redis().database()
    }

    /// The lease's owner token, if connected and a lease is held.
    pub fn lease_owner(&self) -> Option<&str> {
        self.connection_ref().ok()?.lease_owner()
    }

    /// The lease key, if connected and a lease is held.
    pub fn lease_key(&self) -> Option<&str> {
        self.connection_ref().ok()?.lease_key()
    }
}

impl crate::Session<RedisStateManager> {
    /// The test's `redis::Connection`, on its database: run the code under test through it.
    pub fn conn(&mut self) -> &mut Connection {
        self.connection().conn()
    }

    /// The prefix the test's keys go under (see [`RedisConn::prefix`]).
    pub fn prefix(&self) -> &str {
        self.connection_ref().prefix()
    }

    /// `name` under the test's prefix.
    pub fn key(&self, name: &str) -> String {
        self.connection_ref().key(name)
    }

    /// The database the test's connection is on.
    pub fn database(&self) -> i64 {
        self.connection_ref().database()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateManager;

    /// The TIME + PTTL path for servers older than 7.0 (no PEXPIRETIME), against the real
    /// server with PEXPIRETIME switched off.
    #[test]
    fn ttl_fallback_without_pexpiretime() {
        let url = std::env::var("VENOMQA_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let mut m = RedisStateManager::new(Redis::from_url(&url).unwrap());
        m.connect().expect("the Redis server must be running");
        m.connection().unwrap().has_expiretime = false;
        ::redis::cmd("SET")
            .arg("vq_redis_unit")
            .arg("v")
            .arg("PX")
            .arg(100_000)
            .exec(m.conn())
            .unwrap();
        ::redis::cmd("SET")
            .arg("vq_redis_unit_forever")
            .arg("v")
            .exec(m.conn())
            .unwrap();
        m.checkpoint("a").unwrap();
        ::redis::cmd("PERSIST")
            .arg("vq_redis_unit")
            .exec(m.conn())
            .unwrap();
        ::redis::cmd("PEXPIRE")
            .arg("vq_redis_unit_forever")
            .arg(5)
            .exec(m.conn())
            .unwrap();
        m.rollback("a").unwrap();
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg("vq_redis_unit")
            .query(m.conn())
            .unwrap();
        assert!(ttl <= 100_000 && ttl > 70_000, "{ttl}");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg("vq_redis_unit_forever")
            .query(m.conn())
            .unwrap();
        assert_eq!(ttl, -1);
        m.disconnect().unwrap();
    }

    #[test]
    fn the_backend_debug_hides_the_password() {
        let r = Redis::from_url("redis://user:s3cret-pw@host:6379").unwrap();
        let text = format!("{r:?}");
        assert!(
            !text.contains("s3cret-pw") && text.contains("host"),
            "{text}"
        );
    }

    #[test]
    fn owner_tokens_are_unique() {
        let me = crate::backends::owner::me();
        assert_ne!(me.lease_token(), me.lease_token());
    }
}
