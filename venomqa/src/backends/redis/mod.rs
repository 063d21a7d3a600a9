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
//! is never acted on ([`Error::StateLost`](crate::Error::StateLost) instead). Locally, a
//! lease counts as lost a fifth of the TTL before the server would expire it, counted from
//! when the last renewal was sent. Owner tokens name the host, the pid and a random process
//! token.
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

mod accessors;
mod acquire;
mod backend;
mod builder;
mod capture;
mod client;
mod conn;
mod connect;
mod lease;
mod options;
mod snapshot;

use std::fmt;
use std::time::Duration;

pub use ::redis;
use ::redis::{Client, Connection};

use self::lease::Lease;
pub use self::options::{CaptureProof, Databases, Isolation, RedisOptions};
pub use self::snapshot::Snapshot;
use crate::manager::Manager;
use crate::redact::SecretUrl;

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

/// The Redis backend's [`StateManager`](crate::StateManager).
pub type RedisStateManager = Manager<Redis>;

/// A session on the Redis backend: [`conn`](crate::Session::conn) gives the test a
/// `redis::Connection` already on its database.
pub type RedisSession = crate::Session<RedisStateManager>;

capture_backend! {
    /// Redis with capture isolation (`isolation: capture`): what any client writes to the
    /// URL's database is rolled back. The [`Redis`] backend's URL, options and
    /// connections.
    RedisCapture(Redis), RedisCaptureStateManager, RedisCaptureSession,
    is_capture: |b| b.capture(),
    wanted: |o: RedisOptions| o.isolation == Isolation::Capture,
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
