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
//! | `options: {isolation: ..}` | what a test gets |
//! |---|---|
//! | `database` (default) | a logical database of its own (`SELECT n`, `n` >= 1), leased in database 0 |
//! | `prefix` | a key prefix of its own, `<key_prefix>{vq<slot>}:` ([`RedisStateManager::prefix`]), leased in the URL's database; for a single Redis server (or a proxy that passes `EVAL`, `SCAN` and `MULTI` through) without `SELECT` or with one database. Not Redis Cluster: the scripts touch keys they do not declare, and the client talks to one node |
//! | `none` | the URL's database as it is, no lease (you guarantee that one test at a time uses it) |
//!
//! A lease is a key `venomqa:lease:db:<n>` in database 0 (or
//! `venomqa:lease:prefix:<key_prefix>{vq<slot>}` in the URL's database), set with
//! `SET .. NX PX <lease_ttl_ms>` and renewed every third of that by a background thread of
//! the manager, so it never expires under a long test and expires after a crash. A leased
//! database or prefix is emptied when it is leased and when it is given back (on
//! `disconnect`, on drop, and at the normal exit of the process for pooled managers; never
//! by a forked child, nor once the lease is known lost).
//!
//! Every destructive step (the rollback's `FLUSHDB`/`UNLINK`/`RESTORE`, `reset`, emptying on
//! release) runs in a Lua script that first checks, on the server, that the lease key still
//! holds this manager's owner token: a lease that expired while the process was stopped is
//! never acted on ([`Error::StateLost`] instead). Locally, a lease counts as lost a fifth of
//! the TTL before the server would expire it, counted from when the last renewal was sent.
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
//! round trip). A rollback is one round trip (after a `SCAN` when a prefix limits it): `DISCARD` (a transaction the test left open),
//! `UNWATCH` (keys the test watched can't abort it), `MULTI`, scripts that verify the lease
//! and then `FLUSHDB` (the manager owns the whole database) or `UNLINK` the keys created since,
//! and `RESTORE .. REPLACE ABSTTL` the rest, `EXEC` (a nil reply is an error), and `SELECT` of
//! the test's database, whatever the test selected, in every isolation mode. A connection the
//! rollback cannot use (subscribe mode, killed) is replaced by a new one. Keys come back byte
//! for byte, with their absolute expiry time to the millisecond; a key whose expiry time
//! passed during the test stays expired, as it would have without the test. Snapshots live in
//! the test process's memory. Keys named `venomqa:lease:*` are skipped only where leases
//! live (database 0 and the URL's database in prefix/none isolation), not in a leased
//! database.
//!
//! # Options (`options:` in `venomqa.yaml`)
//!
//! `isolation` (`database`, `prefix`, `none`), `lease_ttl_ms` (default 30000),
//! `lease_wait_ms` (default 60000), `databases` (the range to lease, such as `1-15`;
//! default every database but 0, counted with `CONFIG GET databases`, 16 if refused),
//! `prefix_slots` (default 1024), `batch_size` (default 1000). The entry's `key_prefix`
//! limits what checkpoints and `reset()` cover (default: every key).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use ::redis;
use ::redis::{Client, Connection, Value};

use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::registry::{test_threads, Backend};
use crate::state::{BaseStateManager, StateManager};

const NAME: &str = "redis";

/// The URL used when none is configured.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// Every lease key starts with this.
pub const LEASE_KEY_PREFIX: &str = "venomqa:lease:";

/// The keys of `options:` this backend reads.
const OPTIONS: &[&str] = &[
    "isolation",
    "lease_ttl_ms",
    "lease_wait_ms",
    "databases",
    "prefix_slots",
    "batch_size",
];

/// The number of databases assumed when `CONFIG GET databases` is refused (Redis' default).
const FALLBACK_DATABASES: i64 = 16;

/// A session on the Redis backend: [`conn`](crate::Session::conn) gives the test a
/// `redis::Connection` already on its database.
pub type RedisSession = crate::Session<RedisStateManager>;

/// How tests are kept apart (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// A logical database per manager (`SELECT n`), leased in database 0.
    #[default]
    Database,
    /// A key prefix per manager, leased in the URL's database: for a single server or proxy
    /// without `SELECT` or with one database (not Redis Cluster).
    Prefix,
    /// The URL's database as it is, without a lease.
    None,
}

impl FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "database" | "db" => Ok(Isolation::Database),
            "prefix" => Ok(Isolation::Prefix),
            "none" => Ok(Isolation::None),
            other => Err(format!(
                "unknown isolation {other:?}; use database, prefix or none"
            )),
        }
    }
}

/// One key of a snapshot.
#[derive(Debug, Clone)]
struct Entry {
    key: Vec<u8>,
    /// Absolute expiry time in Unix milliseconds, 0 for none.
    expire_at: i64,
    payload: Vec<u8>,
}

// Lua, so that each lease operation is one atomic round trip.
const ACQUIRE: &str = r"
for i = tonumber(ARGV[3]), tonumber(ARGV[4]) do
  local key = ARGV[5] .. i .. ARGV[7]
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    if ARGV[6] == '1' then
      local selected = redis.pcall('SELECT', i)
      if type(selected) == 'table' and selected.err then
        redis.call('DEL', key)
        return redis.error_reply('database ' .. i .. ' cannot be selected: ' .. selected.err)
      end
      redis.call('FLUSHDB')
    end
    return i
  end
end
return -1";

/// Extends a lease (or pin) in database `ARGV[3]`, if it still holds `ARGV[1]`. The script's
/// SELECT does not change the caller's database.
const RENEW: &str = r"
redis.call('SELECT', tonumber(ARGV[3]))
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return -1";

/// Takes or extends the shared pin of a prefix/none manager's home database (`KEYS[1]` in
/// database 0), unless a database-isolation manager holds that database.
const PIN: &str = r"
redis.call('SELECT', 0)
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0";

/// The value of a pin: the lease key of a database that prefix or none managers work in.
pub const PIN_VALUE: &str = "venomqa:pinned-by-prefix-or-none-isolation";

/// Every destructive step: verify on the server, in the same atomic script, that each guard
/// key still holds its value, then (in database `data_db`) FLUSHDB and/or UNLINK keys and
/// RESTORE entries.
/// ARGV: ng, ng x (db, key, value), data_db, flush ('1'/'0'), nu, nu x key,
/// then (key, absolute expiry ms or '0', payload) triples.
const GUARDED: &str = r"
local ng = tonumber(ARGV[1])
local i = 2
for g = 1, ng do
  redis.call('SELECT', tonumber(ARGV[i]))
  if redis.call('GET', ARGV[i + 1]) ~= ARGV[i + 2] then
    return redis.error_reply('VQLOST the lease ' .. ARGV[i + 1] .. ' in database ' .. ARGV[i] .. ' is no longer held by this manager')
  end
  i = i + 3
end
redis.call('SELECT', tonumber(ARGV[i]))
if ARGV[i + 1] == '1' then redis.call('FLUSHDB') end
local nu = tonumber(ARGV[i + 2])
i = i + 3
for u = 1, nu do
  redis.call('UNLINK', ARGV[i])
  i = i + 1
end
while i <= #ARGV do
  if ARGV[i + 1] == '0' then
    redis.call('RESTORE', ARGV[i], 0, ARGV[i + 2], 'REPLACE')
  else
    redis.call('RESTORE', ARGV[i], ARGV[i + 1], ARGV[i + 2], 'REPLACE', 'ABSTTL')
  end
  i = i + 3
end
return 1";

const RELEASE_DB: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SELECT', tonumber(ARGV[2]))
  redis.call('FLUSHDB')
  redis.call('SELECT', tonumber(ARGV[3]))
  redis.call('DEL', KEYS[1])
  return 1
end
return 0";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// A key that must still hold a value on the server for a destructive step to run.
#[derive(Debug, Clone)]
struct Guard {
    db: i64,
    key: String,
    value: String,
}

/// A held lease (or pin) and the thread that renews it.
#[derive(Debug)]
struct LeaseHolder {
    /// The leased database, or the prefix slot.
    slot: i64,
    /// The database the lease key lives in.
    db: i64,
    key: String,
    owner: String,
    lost: Arc<AtomicBool>,
    /// Milliseconds after `born` when the lease may have expired on the server: the last
    /// successful renewal's SEND time + TTL - a safety margin.
    deadline_ms: Arc<AtomicU64>,
    born: Instant,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LeaseHolder {
    fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
            || self.born.elapsed().as_millis() as u64 >= self.deadline_ms.load(Ordering::SeqCst)
    }

    fn guard(&self) -> Guard {
        Guard {
            db: self.db,
            key: self.key.clone(),
            value: self.owner.clone(),
        }
    }
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a guarded step failed.
enum GuardFail {
    /// The server says a guard key no longer holds our value.
    Lost(String),
    /// The connection is unusable (dropped, or in a state such as subscribe mode): a new
    /// connection can do the step.
    Retry(String),
    Other(String),
}

impl std::fmt::Display for GuardFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardFail::Lost(m) | GuardFail::Retry(m) | GuardFail::Other(m) => f.write_str(m),
        }
    }
}

/// Runs [`GUARDED`] in `MULTI`/`EXEC` batches of at most `batch` items, after `DISCARD` (an
/// open transaction the test left; its "without MULTI" error is ignored) and `UNWATCH` (so
/// no key the test WATCHed can abort the EXEC), then `SELECT data_db` for the caller: one
/// round trip. Every batch re-verifies the guards on the server; a nil EXEC is an error.
#[allow(clippy::too_many_arguments)]
fn guarded_exec(
    conn: &mut Connection,
    guards: &[Guard],
    data_db: i64,
    flush: bool,
    unlink: &[&[u8]],
    restore: &[Entry],
    batch: usize,
) -> std::result::Result<(), GuardFail> {
    let mut pipe = ::redis::pipe();
    pipe.ignore_errors();
    pipe.cmd("DISCARD").cmd("UNWATCH").cmd("MULTI");
    let mut evals = 0usize;
    let mut add = |flush: bool, unlink: &[&[u8]], restore: &[Entry]| {
        let mut cmd = ::redis::cmd("EVAL");
        cmd.arg(GUARDED).arg(0).arg(guards.len());
        for g in guards {
            cmd.arg(g.db).arg(&g.key).arg(&g.value);
        }
        cmd.arg(data_db)
            .arg(if flush { "1" } else { "0" })
            .arg(unlink.len());
        for k in unlink {
            cmd.arg(*k);
        }
        for e in restore {
            cmd.arg(&e.key).arg(e.expire_at.max(0)).arg(&e.payload);
        }
        pipe.add_command(cmd);
        evals += 1;
    };
    let batch = batch.max(1);
    add(flush, &[], &[]);
    for chunk in unlink.chunks(batch) {
        add(false, chunk, &[]);
    }
    for chunk in restore.chunks(batch) {
        add(false, &[], chunk);
    }
    pipe.cmd("EXEC").cmd("SELECT").arg(data_db);
    let values: Vec<Value> = match pipe.query(conn) {
        Ok(v) => v,
        Err(e) if is_connection_error(&e) => return Err(GuardFail::Retry(e.to_string())),
        Err(e) => return Err(GuardFail::Other(e.to_string())),
    };
    let unexpected = |what: String| {
        GuardFail::Retry(format!(
            "unexpected reply {what}: the connection is in a state the rollback cannot use \
             (subscribe mode, MONITOR, RESP3 push messages?)"
        ))
    };
    if values.len() != evals + 5 {
        return Err(unexpected(format!("count {}", values.len())));
    }
    match &values[evals + 3] {
        Value::Array(results) if results.len() == evals => {
            for r in results {
                match r {
                    Value::Int(1) => {}
                    Value::ServerError(e) if e.to_string().contains("VQLOST") => {
                        return Err(GuardFail::Lost(e.to_string()))
                    }
                    Value::ServerError(e) => return Err(GuardFail::Other(e.to_string())),
                    other => return Err(unexpected(format!("{other:?} in EXEC"))),
                }
            }
            Ok(())
        }
        Value::Nil => Err(GuardFail::Other(
            "the transaction was aborted (EXEC returned nil) although UNWATCH was sent first"
                .to_owned(),
        )),
        other => Err(unexpected(format!("{other:?} to EXEC"))),
    }
}

/// Redis state manager: DUMP/RESTORE snapshots in a leased database or key prefix.
///
/// ```
/// use venomqa::{redis::RedisStateManager, StateManager};
/// use venomqa::redis::redis;
///
/// let mut db = RedisStateManager::new("redis://127.0.0.1:6379");
/// db.connect()?; // leases a database of its own
/// redis::cmd("HSET").arg("user:1").arg("name").arg("ann").exec(db.conn()).unwrap();
/// db.checkpoint("start")?;
/// redis::cmd("DEL").arg("user:1").exec(db.conn()).unwrap();
/// redis::cmd("SET").arg("later").arg("x").exec(db.conn()).unwrap();
/// db.rollback("start")?;
/// let name: String = redis::cmd("HGET").arg("user:1").arg("name").query(db.conn()).unwrap();
/// assert_eq!(name, "ann");
/// let later: bool = redis::cmd("EXISTS").arg("later").query(db.conn()).unwrap();
/// assert!(!later);
/// db.disconnect()?; // empties the database and gives the lease back
/// # Ok::<(), venomqa::Error>(())
/// ```
pub struct RedisStateManager {
    base: BaseStateManager,
    key_prefix: String,
    isolation: Isolation,
    lease_ttl: Duration,
    lease_wait: Duration,
    databases: Option<(i64, i64)>,
    prefix_slots: i64,
    batch_size: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    // Connected state.
    client: Option<Client>,
    conn: Option<Connection>,
    home_db: i64,
    lease: Option<LeaseHolder>,
    /// Prefix and none isolation on a database n >= 1: the shared pin of `venomqa:lease:db:<n>`
    /// that keeps database isolation from leasing (and emptying) it.
    pin: Option<LeaseHolder>,
    prefix: String,
    has_expiretime: bool,
    snapshots: Vec<Vec<Entry>>,
}

impl std::fmt::Debug for RedisStateManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStateManager")
            .field("url", &self.base.redacted_url())
            .field("isolation", &self.isolation)
            .field("database", &self.database())
            .field("prefix", &self.prefix)
            .field("checkpoints", &self.base.checkpoints())
            .finish_non_exhaustive()
    }
}

impl RedisStateManager {
    /// A disconnected manager for `url` (`redis://[[user]:password@]host[:port][/db]`, or
    /// `redis+unix:///path[?db=n]`), with database isolation (where the URL must not name a
    /// database other than 0).
    pub fn new(url: &str) -> Self {
        RedisStateManager {
            base: BaseStateManager::new(NAME, url),
            key_prefix: String::new(),
            isolation: Isolation::Database,
            lease_ttl: Duration::from_secs(30),
            lease_wait: Duration::from_secs(60),
            databases: None,
            prefix_slots: 1024,
            batch_size: 1000,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(120),
            client: None,
            conn: None,
            home_db: 0,
            lease: None,
            pin: None,
            prefix: String::new(),
            has_expiretime: true,
            snapshots: Vec::new(),
        }
    }

    /// A disconnected manager from a resolved configuration entry.
    pub fn from_config(config: &BackendConfig) -> Result<Self> {
        let mut m = Self::new(config.url_or(DEFAULT_URL));
        if let Some(p) = &config.key_prefix {
            m.key_prefix.clone_from(p);
        }
        if let Some(t) = config.connect_timeout {
            m.connect_timeout = t;
        }
        let bad = |key: &str, message: String| {
            Error::config(
                &config.source,
                format!("backends.{}.options.{key}", config.entry),
                message,
            )
        };
        for key in config.options.keys() {
            if !OPTIONS.contains(&key.as_str()) {
                let why = if key == "snapshot_prefix" {
                    "snapshots live in the test process's memory; storing them in Redis is not supported. ".to_owned()
                } else {
                    String::new()
                };
                return Err(bad(
                    key,
                    format!(
                        "{why}unknown option; the redis options are {}",
                        OPTIONS.join(", ")
                    ),
                ));
            }
        }
        if let Some(i) = config.option_parsed::<Isolation>("isolation")? {
            m.isolation = i;
        }
        if let Some(ms) = config.option_parsed::<u64>("lease_ttl_ms")? {
            if ms < 300 {
                return Err(bad(
                    "lease_ttl_ms",
                    format!("{ms} is too short; use at least 300"),
                ));
            }
            m.lease_ttl = Duration::from_millis(ms);
        }
        if let Some(ms) = config.option_parsed::<u64>("lease_wait_ms")? {
            m.lease_wait = Duration::from_millis(ms);
        }
        if let Some(range) = config.option("databases") {
            m.databases = Some(parse_range(range).map_err(|e| bad("databases", e))?);
        }
        if let Some(n) = config.option_parsed::<i64>("prefix_slots")? {
            if n < 1 {
                return Err(bad("prefix_slots", format!("{n} must be at least 1")));
            }
            m.prefix_slots = n;
        }
        if let Some(n) = config.option_parsed::<usize>("batch_size")? {
            m.batch_size = n.max(1);
        }
        Ok(m)
    }

    /// How tests are kept apart (default [`Isolation::Database`]).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// The prefix of the keys checkpoints and `reset()` cover (default: every key). In
    /// prefix isolation, the base of each lease's prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long a lease lives without renewal (default 30 s): how long the database of a
    /// crashed process stays unusable. It is renewed every third of that.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// How long `connect()` waits for a free database or slot before failing (default 60 s).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// The databases to lease, inclusive (default: every database but 0, which holds the leases).
    pub fn databases(mut self, first: i64, last: i64) -> Self {
        self.databases = Some((first, last));
        self
    }

    /// How many prefixes prefix isolation leases from (default 1024).
    pub fn prefix_slots(mut self, n: i64) -> Self {
        self.prefix_slots = n.max(1);
        self
    }

    /// Keys per pipelined batch of `SCAN`/`DUMP`/`UNLINK` (default 1000).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// How long opening a connection may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The native connection, on the test's database.
    ///
    /// # Panics
    ///
    /// When the manager is not connected; [`try_conn`](Self::try_conn) returns an error instead.
    pub fn conn(&mut self) -> &mut Connection {
        self.try_conn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The native connection, or [`Error::NotConnected`].
    pub fn try_conn(&mut self) -> Result<&mut Connection> {
        self.conn.as_mut().ok_or_else(|| Error::NotConnected {
            backend: NAME.into(),
        })
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

    /// The database the connection is on: the leased one in database isolation, else the
    /// URL's.
    pub fn database(&self) -> i64 {
        match (self.isolation, &self.lease) {
            (Isolation::Database, Some(l)) => l.slot,
            _ => self.home_db,
        }
    }

    /// The lease's owner token (stored as the lease key's value), if a lease is held.
    pub fn lease_owner(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.owner.as_str())
    }

    /// The lease key, if a lease is held.
    pub fn lease_key(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.key.as_str())
    }

    /// Whether the manager owns every key of its database (database isolation, no key
    /// prefix): then rollback is `FLUSHDB` + `RESTORE` and reset is `FLUSHDB`.
    fn owns_database(&self) -> bool {
        self.isolation == Isolation::Database && self.prefix.is_empty()
    }

    fn redis_err(operation: impl Into<String>, e: impl std::fmt::Display) -> Error {
        Error::backend(NAME, operation, e)
    }

    fn check_lease(&self) -> Result<()> {
        for l in self.lease.iter().chain(self.pin.iter()) {
            if l.is_lost() {
                return Err(Self::lost_error(&l.key, "its renewal is overdue"));
            }
        }
        Ok(())
    }

    fn lost_error(key: &str, detail: &str) -> Error {
        Error::StateLost {
            backend: NAME.into(),
            message: format!(
                "the lease {key} expired or was taken over ({detail}: the process stalled longer than                  lease_ttl_ms, or the key was deleted), so another test may be using the same keys;                  nothing was deleted or restored. Raise lease_ttl_ms, and do not FLUSHALL or delete                  venomqa:lease:* keys in tests"
            ),
        }
    }

    /// The keys whose values the server must still hold for a destructive step.
    fn guards(&self) -> Vec<Guard> {
        self.lease
            .iter()
            .chain(self.pin.iter())
            .map(LeaseHolder::guard)
            .collect()
    }

    /// The database the test's keys live in.
    fn data_db(&self) -> i64 {
        self.database()
    }

    /// Lease keys live only in database 0 and in the home database of prefix/none managers;
    /// a leased database (n >= 1) holds none, so there every key is the test's.
    fn filters_lease_keys(&self) -> bool {
        self.isolation != Isolation::Database
    }

    /// A guarded step on the test's connection; when that connection is unusable (dropped,
    /// subscribe mode), once more on a new connection, which then replaces it.
    fn guarded(
        &mut self,
        what: &str,
        flush: bool,
        unlink: &[&[u8]],
        restore: Option<usize>,
    ) -> Result<()> {
        self.check_lease()?;
        let guards = self.guards();
        let db = self.data_db();
        let empty = Vec::new();
        let entries = restore.map_or(&empty, |i| &self.snapshots[i]);
        let conn = self.conn.as_mut().expect("connected");
        let mut outcome = guarded_exec(conn, &guards, db, flush, unlink, entries, self.batch_size);
        if let Err(GuardFail::Retry(e)) = &outcome {
            tracing::warn!(target: "venomqa", error = %e, "redis connection unusable; reconnecting for {what}");
            let client = self.client.clone().expect("connected");
            let mut conn = self.open_connection(&client)?;
            outcome = guarded_exec(
                &mut conn,
                &guards,
                db,
                flush,
                unlink,
                entries,
                self.batch_size,
            );
            self.conn = Some(conn);
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(GuardFail::Lost(e)) => {
                for l in self.lease.iter().chain(self.pin.iter()) {
                    l.lost.store(true, Ordering::SeqCst);
                }
                let keys: Vec<&str> = self
                    .lease
                    .iter()
                    .chain(self.pin.iter())
                    .map(|l| l.key.as_str())
                    .collect();
                Err(Self::lost_error(
                    &keys.join(", "),
                    &format!("the server says: {e}"),
                ))
            }
            Err(e) => Err(Self::redis_err(what, e)),
        }
    }

    fn open_connection(&self, client: &Client) -> Result<Connection> {
        let url = self.base.url();
        let conn = client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(|e| Error::connection(NAME, url, e))?;
        conn.set_read_timeout(Some(self.command_timeout))
            .and_then(|()| conn.set_write_timeout(Some(self.command_timeout)))
            .map_err(|e| Error::connection(NAME, url, e))?;
        Ok(conn)
    }

    /// The databases to lease: the configured range, else all but database 0.
    fn lease_range(&self, conn: &mut Connection) -> (i64, i64) {
        if let Some(r) = self.databases {
            return r;
        }
        let count = server_databases(conn).unwrap_or(FALLBACK_DATABASES);
        (1, count - 1)
    }

    fn acquire(&self, client: &Client, conn: &mut Connection) -> Result<LeaseHolder> {
        let (first, last, key_base, suffix, clean) = match self.isolation {
            Isolation::Database => {
                let (first, last) = self.lease_range(conn);
                (first, last, format!("{LEASE_KEY_PREFIX}db:"), "", "1")
            }
            _ => (
                0,
                self.prefix_slots - 1,
                format!("{LEASE_KEY_PREFIX}prefix:{}{{vq", self.key_prefix),
                "}",
                "0",
            ),
        };
        let owner = owner_token();
        let ttl_ms = self.lease_ttl.as_millis() as u64;
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        let script = ::redis::Script::new(ACQUIRE);
        // Database 0 holds the lease keys and is never leased.
        let first_leasable = if self.isolation == Isolation::Database {
            first.max(1)
        } else {
            first
        };
        if first_leasable > last {
            return Err(Error::unsupported(
                NAME,
                format!(
                    "database isolation on {} (databases {first}..={last}, none of them leasable)",
                    self.base.redacted_url()
                ),
                "the server has a single database (or the `databases` range holds only database 0,                  which keeps the leases); use `options: {isolation: prefix}`, which gives each test a                  key prefix of its own in one database",
            ));
        }
        loop {
            let mut got = -1;
            for (a, b) in [(first_leasable, last)] {
                got = script
                    .arg(&owner)
                    .arg(ttl_ms)
                    .arg(a)
                    .arg(b)
                    .arg(&key_base)
                    .arg(clean)
                    .arg(suffix)
                    .invoke::<i64>(conn)
                    .map_err(|e| Self::lease_error(first, last, e))?;
                if got >= 0 {
                    break;
                }
            }
            if got >= 0 {
                let key = format!("{key_base}{got}{suffix}");
                let db = if self.isolation == Isolation::Database {
                    0
                } else {
                    self.home_db
                };
                return Ok(self.start_renewer(client, got, db, key, owner));
            }
            let waited = started.elapsed();
            if waited >= self.lease_wait {
                let what = match self.isolation {
                    Isolation::Database => format!("all databases {first}..={last}"),
                    _ => format!("all {} prefix slots", self.prefix_slots),
                };
                return Err(Error::backend(
                    NAME,
                    "leasing an isolated key space",
                    format!(
                        "{what} of {} are leased by other tests or processes (keys {key_base}*), and none came free \
                         within {} ms. Lower pool_size or the number of test processes, give the server more \
                         databases (`databases` in redis.conf), use `isolation: prefix`, or raise lease_wait_ms. \
                         A crashed process's lease expires after lease_ttl_ms",
                        self.base.redacted_url(),
                        waited.as_millis()
                    ),
                ));
            }
            std::thread::sleep(pause.min(self.lease_wait - waited));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    fn lease_error(first: i64, last: i64, e: ::redis::RedisError) -> Error {
        Error::backend(
            NAME,
            "leasing an isolated key space",
            format!(
                "{e}. If the server refuses SELECT or has fewer databases than {first}..={last}, set \
                 `options: {{databases: \"1-N\"}}` or use `isolation: prefix`; if it refuses EVAL, use `isolation: none`"
            ),
        )
    }

    fn start_renewer(
        &self,
        client: &Client,
        slot: i64,
        db: i64,
        key: String,
        owner: String,
    ) -> LeaseHolder {
        let lost = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let ttl = self.lease_ttl;
        let interval = ttl / 3;
        // Lost locally this long before the server's expiry: clock rates, scheduling.
        let margin = ttl / 5;
        let born = Instant::now();
        let ms = |d: Duration| d.as_millis() as u64;
        let deadline_ms = Arc::new(AtomicU64::new(ms(ttl - margin)));
        let client = client.clone();
        let (t_key, t_owner, t_lost, t_deadline) = (
            key.clone(),
            owner.clone(),
            lost.clone(),
            deadline_ms.clone(),
        );
        let timeout = self.connect_timeout.min(interval);
        let thread = std::thread::Builder::new()
            .name(format!("venomqa-redis-lease-{slot}"))
            .spawn(move || {
                let script = ::redis::Script::new(RENEW);
                let mut conn: Option<Connection> = None;
                loop {
                    match rx.recv_timeout(interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    if conn.is_none() {
                        conn = client.get_connection_with_timeout(timeout).ok();
                        if let Some(c) = &conn {
                            let _ = c.set_read_timeout(Some(timeout));
                            let _ = c.set_write_timeout(Some(timeout));
                        }
                    }
                    // The server's new expiry counts from when it got the command, which is
                    // after this: the local deadline counts from here.
                    let sent = born.elapsed();
                    let outcome = match conn.as_mut() {
                        Some(c) => script
                            .key(&t_key)
                            .arg(&t_owner)
                            .arg(ms(ttl))
                            .arg(db)
                            .invoke::<i64>(c)
                            .map_err(|e| e.to_string()),
                        None => Err("no connection".to_owned()),
                    };
                    match outcome {
                        Ok(1) => t_deadline.store(ms(sent + ttl - margin), Ordering::SeqCst),
                        Ok(_) => {
                            tracing::error!(target: "venomqa", key = %t_key, "redis lease lost: it expired or another owner holds it");
                            t_lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(e) => {
                            conn = None;
                            tracing::warn!(target: "venomqa", key = %t_key, error = %e, "renewing the redis lease failed; retrying");
                            if ms(born.elapsed()) >= t_deadline.load(Ordering::SeqCst) {
                                t_lost.store(true, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                }
            })
            .expect("spawn the venomqa lease renewer thread");
        LeaseHolder {
            slot,
            db,
            key,
            owner,
            lost,
            deadline_ms,
            born,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Takes the lease of database or prefix isolation (the ACQUIRE script empties a leased
    /// database), and puts the connection on the test's database.
    fn lease_and_empty(&mut self, client: &Client, conn: &mut Connection) -> Result<()> {
        let url = self.base.url().to_owned();
        match self.isolation {
            Isolation::Database => {
                let lease = self.acquire(client, conn)?;
                hold(HeldLease::new(
                    &url,
                    &lease,
                    Some(lease.slot),
                    String::new(),
                    self.home_db,
                ));
                self.prefix.clone_from(&self.key_prefix);
                let slot = lease.slot;
                self.lease = Some(lease);
                ::redis::cmd("SELECT")
                    .arg(slot)
                    .exec(conn)
                    .map_err(|e| Self::redis_err(format!("SELECT {slot}"), e))?;
            }
            Isolation::Prefix => {
                let lease = self.acquire(client, conn)?;
                self.prefix = format!("{}{{vq{}}}:", self.key_prefix, lease.slot);
                hold(HeldLease::new(
                    &url,
                    &lease,
                    None,
                    self.prefix.clone(),
                    self.home_db,
                ));
                self.lease = Some(lease);
            }
            Isolation::None => self.prefix.clone_from(&self.key_prefix),
        }
        Ok(())
    }

    /// Pins the home database `n >= 1` of a prefix/none manager: `venomqa:lease:db:<n>` in
    /// database 0 holds [`PIN_VALUE`] (shared by every such manager, each renewing it), so
    /// database isolation never leases (and empties) it. Waits up to `lease_wait` while a
    /// database-isolation manager holds it.
    fn pin_home(&self, client: &Client, conn: &mut Connection) -> Result<LeaseHolder> {
        let key = format!("{LEASE_KEY_PREFIX}db:{}", self.home_db);
        let started = Instant::now();
        loop {
            let got: (i64,) = ::redis::pipe()
                .cmd("EVAL")
                .arg(PIN)
                .arg(1)
                .arg(&key)
                .arg(PIN_VALUE)
                .arg(self.lease_ttl.as_millis() as u64)
                .cmd("SELECT")
                .arg(self.home_db)
                .ignore()
                .query(conn)
                .map_err(|e| Self::lease_error(self.home_db, self.home_db, e))?;
            if got.0 == 1 {
                return Ok(self.start_renewer(client, self.home_db, 0, key, PIN_VALUE.to_owned()));
            }
            if started.elapsed() >= self.lease_wait {
                return Err(Error::backend(
                    NAME,
                    "pinning the URL's database",
                    format!(
                        "database {} (the URL's) is leased by a test in database isolation ({key} in                          database 0), which empties it; waited {} ms. Do not mix database isolation                          with prefix/none isolation on a database it may lease: give database isolation                          `databases:` that exclude {}, or use another database in the URL",
                        self.home_db,
                        started.elapsed().as_millis(),
                        self.home_db
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gives the lease back, emptying the leased database or prefix first, each step
    /// verified on the server (only while the lease is still ours). A pin is left to expire:
    /// other managers may share it.
    fn release_lease(&mut self) -> Result<()> {
        let result = self.release_lease_inner();
        if let Some(mut pin) = self.pin.take() {
            pin.stop();
            unhold(&pin.key, &pin.owner);
        }
        result
    }

    fn release_lease_inner(&mut self) -> Result<()> {
        let Some(lease) = self.lease.as_mut() else {
            return Ok(());
        };
        lease.stop();
        let (key, owner, slot) = (lease.key.clone(), lease.owner.clone(), lease.slot);
        unhold(&key, &owner);
        if self.conn.is_none() {
            self.lease = None;
            return Ok(());
        }
        let err =
            |e: ::redis::RedisError| Self::redis_err(format!("giving back the lease {key}"), e);
        let home = self.home_db;
        let database = self.isolation == Isolation::Database;
        // The scripts check the owner themselves; on a connection the test left unusable
        // (subscribe mode, killed) they run once more on a new one.
        let give_back = |conn: &mut Connection| {
            if database {
                release_db(conn, &key, &owner, slot, home)
            } else {
                release_key(conn, home, &key, &owner)
            }
        };
        let emptied = if database {
            Ok(())
        } else {
            self.empty_prefix("giving back the lease")
        };
        let result = emptied.and_then(|()| {
            let conn = self.conn.as_mut().expect("connected");
            match give_back(conn) {
                Err(_) if self.client.is_some() => {
                    let client = self.client.clone().expect("checked");
                    let mut conn = self.open_connection(&client)?;
                    give_back(&mut conn).map_err(err)
                }
                other => other.map_err(err),
            }
        });
        self.lease = None;
        result
    }

    /// Deletes every key under the prefix (lease keys excepted), in batches, each batch
    /// verifying the lease on the server in the same script. A lost lease deletes nothing.
    fn empty_prefix(&mut self, what: &str) -> Result<()> {
        let home = self.data_db();
        let filter = self.filters_lease_keys();
        let conn = self.conn.as_mut().expect("connected");
        let keys = scan_keys(conn, home, &self.prefix, self.batch_size, filter)
            .map_err(|e| Self::redis_err(format!("{what} (SCAN)"), e))?;
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.guarded(what, false, &keys, None)
    }

    /// Reads every key under the prefix: SCAN, then DUMP + expiry time in pipelined
    /// batches, the next SCAN riding along with each batch.
    fn snapshot(&mut self) -> Result<Vec<Entry>> {
        let select = self.data_db();
        let filter = self.filters_lease_keys();
        let conn = self.conn.as_mut().expect("connected");
        let pattern = (!self.prefix.is_empty()).then(|| format!("{}*", glob_escape(&self.prefix)));
        let expire_cmd = if self.has_expiretime {
            "PEXPIRETIME"
        } else {
            "PTTL"
        };
        let mut entries = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut cursor: Option<u64> = Some(0);
        let mut first = true;
        while cursor.is_some() || !pending.is_empty() {
            let mut pipe = ::redis::pipe();
            if first {
                // Back on the test's database, whatever the test SELECTed.
                pipe.cmd("SELECT").arg(select).ignore();
            }
            if !self.has_expiretime && !pending.is_empty() {
                pipe.cmd("TIME");
            }
            for k in &pending {
                pipe.cmd("DUMP").arg(k).cmd(expire_cmd).arg(k);
            }
            if let Some(c) = cursor {
                pipe.cmd("SCAN").arg(c);
                if let Some(p) = &pattern {
                    pipe.arg("MATCH").arg(p);
                }
                pipe.arg("COUNT").arg(self.batch_size);
            }
            first = false;
            let values: Vec<Value> = pipe
                .query(conn)
                .map_err(|e| Self::redis_err("checkpoint (SCAN/DUMP)", e))?;
            let mut it = values.into_iter();
            let now_ms = if !self.has_expiretime && !pending.is_empty() {
                let t: (i64, i64) = ::redis::from_redis_value(it.next().unwrap_or(Value::Nil))
                    .map_err(|e| Self::redis_err("checkpoint (TIME)", e))?;
                t.0 * 1000 + t.1 / 1000
            } else {
                0
            };
            for key in pending.drain(..) {
                let dump = it.next().unwrap_or(Value::Nil);
                let exp: i64 =
                    ::redis::from_redis_value(it.next().unwrap_or(Value::Nil)).unwrap_or(-2);
                let Value::BulkString(payload) = dump else {
                    continue;
                };
                let expire_at = match exp {
                    -2 => continue, // gone between SCAN and DUMP
                    -1 => 0,
                    e if self.has_expiretime => e,
                    e => now_ms + e,
                };
                entries.push(Entry {
                    key,
                    expire_at,
                    payload,
                });
            }
            if cursor.is_some() {
                let (next, keys): (u64, Vec<Vec<u8>>) =
                    ::redis::from_redis_value(it.next().unwrap_or(Value::Nil))
                        .map_err(|e| Self::redis_err("checkpoint (SCAN)", e))?;
                pending.extend(
                    keys.into_iter()
                        .filter(|k| !(filter && is_lease_key(k)) && seen.insert(k.clone())),
                );
                cursor = (next != 0).then_some(next);
            }
        }
        Ok(entries)
    }

    /// Puts the keys under the prefix back to snapshot `index`: one round trip of
    /// `DISCARD; UNWATCH; MULTI; EVAL ..; EXEC; SELECT n`, where each script verifies the lease
    /// on the server before `FLUSHDB` (whole database) or `UNLINK` (keys created since), and
    /// `RESTORE`.
    fn restore(&mut self, index: usize) -> Result<()> {
        self.check_lease()?;
        if self.owns_database() {
            return self.guarded("rollback", true, &[], Some(index));
        }
        let home = self.data_db();
        let filter = self.filters_lease_keys();
        let current = {
            let conn = self.conn.as_mut().expect("connected");
            match scan_keys(conn, home, &self.prefix, self.batch_size, filter) {
                Err(e) if is_connection_error(&e) => {
                    let client = self.client.clone().expect("connected");
                    let mut conn = self.open_connection(&client)?;
                    let keys = scan_keys(&mut conn, home, &self.prefix, self.batch_size, filter);
                    self.conn = Some(conn);
                    keys
                }
                other => other,
            }
            .map_err(|e| Self::redis_err("rollback (SCAN)", e))?
        };
        let keep: HashSet<&[u8]> = self.snapshots[index]
            .iter()
            .map(|e| e.key.as_slice())
            .collect();
        let doomed: Vec<&[u8]> = current
            .iter()
            .map(Vec::as_slice)
            .filter(|k| !keep.contains(k))
            .collect();
        self.guarded("rollback", false, &doomed, Some(index))
    }
}

/// A lease this process holds, for the release at process exit.
#[derive(Clone)]
struct HeldLease {
    url: String,
    key: String,
    owner: String,
    /// The leased database in database isolation; `None` for a prefix.
    database: Option<i64>,
    prefix: String,
    home_db: i64,
    /// The process that took the lease: a forked child must not give it back.
    pid: u32,
    lost: Arc<AtomicBool>,
}

impl HeldLease {
    fn new(
        url: &str,
        lease: &LeaseHolder,
        database: Option<i64>,
        prefix: String,
        home_db: i64,
    ) -> Self {
        HeldLease {
            url: url.to_owned(),
            key: lease.key.clone(),
            owner: lease.owner.clone(),
            database,
            prefix,
            home_db,
            pid: std::process::id(),
            lost: lease.lost.clone(),
        }
    }
}

impl std::fmt::Debug for HeldLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLease")
            .field("url", &crate::redact_url(&self.url))
            .field("key", &self.key)
            .field("owner", &self.owner)
            .field("database", &self.database)
            .field("prefix", &self.prefix)
            .field("home_db", &self.home_db)
            .field("pid", &self.pid)
            .finish()
    }
}

static HELD: std::sync::Mutex<Vec<HeldLease>> = std::sync::Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<HeldLease>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

fn hold(lease: HeldLease) {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| {
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: `atexit` is the C library's; the callback is a plain function that
        // does not unwind (it catches every panic).
        unsafe {
            atexit(release_at_exit);
        }
    });
    held().push(lease);
}

fn unhold(key: &str, owner: &str) {
    held().retain(|l| !(l.key == key && l.owner == owner));
}

/// Pooled managers live in statics and are never dropped: give their leases back when the
/// process exits normally, so the next process (`cargo nextest` runs one per test) finds
/// the databases free at once instead of after `lease_ttl`. Skips leases known lost and
/// leases of another process (a forked child exiting); every deletion is verified on the
/// server in the same script.
extern "C" fn release_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let leases = match HELD.try_lock() {
            Ok(mut held) => std::mem::take(&mut *held),
            Err(_) => return,
        };
        for lease in leases {
            if lease.pid != std::process::id() || lease.lost.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(client) = Client::open(lease.url.as_str()) else {
                continue;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                continue;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = match lease.database {
                Some(db) => release_db(&mut conn, &lease.key, &lease.owner, db, lease.home_db),
                None => release_prefix_at_exit(&mut conn, &lease),
            };
        }
    });
}

/// Empties a prefix in verified batches, then deletes its lease key (if still ours).
fn release_prefix_at_exit(conn: &mut Connection, lease: &HeldLease) -> ::redis::RedisResult<()> {
    let guards = [Guard {
        db: lease.home_db,
        key: lease.key.clone(),
        value: lease.owner.clone(),
    }];
    let keys = scan_keys(conn, lease.home_db, &lease.prefix, 1000, true)?;
    let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    if !keys.is_empty()
        && guarded_exec(conn, &guards, lease.home_db, false, &keys, &[], 1000).is_err()
    {
        return Ok(());
    }
    release_key(conn, lease.home_db, &lease.key, &lease.owner)
}

/// Empties leased database `db` and deletes its lease key, if `owner` still holds it
/// (checked in the same script). `DISCARD` first: an open transaction would queue it.
fn release_db(
    conn: &mut Connection,
    key: &str,
    owner: &str,
    db: i64,
    home: i64,
) -> ::redis::RedisResult<()> {
    guarded_script(
        conn,
        home,
        ::redis::cmd("EVAL")
            .arg(RELEASE_DB)
            .arg(1)
            .arg(key)
            .arg(owner)
            .arg(db)
            .arg(home),
    )
}

/// Deletes a lease key in database `db`, if `owner` still holds it.
fn release_key(conn: &mut Connection, db: i64, key: &str, owner: &str) -> ::redis::RedisResult<()> {
    guarded_script(
        conn,
        db,
        ::redis::cmd("EVAL").arg(RELEASE).arg(1).arg(key).arg(owner),
    )
}

/// `DISCARD` (error ignored), `SELECT db`, then `script`; its error, if any.
fn guarded_script(
    conn: &mut Connection,
    db: i64,
    script: &::redis::Cmd,
) -> ::redis::RedisResult<()> {
    let mut pipe = ::redis::pipe();
    pipe.ignore_errors();
    pipe.cmd("DISCARD")
        .cmd("SELECT")
        .arg(db)
        .add_command(script.clone());
    let values: Vec<Value> = pipe.query(conn)?;
    match values.last() {
        Some(Value::ServerError(e)) => Err(e.clone().into()),
        Some(Value::Int(_)) => Ok(()),
        other => Err(::redis::RedisError::from((
            ::redis::ErrorKind::Client,
            "unexpected reply to the lease script",
            format!("{other:?}"),
        ))),
    }
}

fn is_connection_error(e: &::redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout()
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

/// Lease keys are never snapshotted, restored or deleted, even when the prefix covers
/// them (`isolation: none` on the home database).
fn is_lease_key(key: &[u8]) -> bool {
    key.starts_with(LEASE_KEY_PREFIX.as_bytes())
}

/// Every key under `prefix` in database `db` (SCAN, deduplicated), lease keys excepted
/// when `filter_leases` (in a database that may hold leases).
fn scan_keys(
    conn: &mut Connection,
    db: i64,
    prefix: &str,
    batch: usize,
    filter_leases: bool,
) -> ::redis::RedisResult<Vec<Vec<u8>>> {
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    let mut first = true;
    loop {
        let mut pipe = ::redis::pipe();
        if first {
            pipe.cmd("SELECT").arg(db).ignore();
            first = false;
        }
        pipe.cmd("SCAN").arg(cursor);
        if !prefix.is_empty() {
            pipe.arg("MATCH").arg(&pattern);
        }
        pipe.arg("COUNT").arg(batch);
        let ((next, batch_keys),): ((u64, Vec<Vec<u8>>),) = pipe.query(conn)?;
        keys.extend(
            batch_keys
                .into_iter()
                .filter(|k| !(filter_leases && is_lease_key(k)) && seen.insert(k.clone())),
        );
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Escapes the glob metacharacters of SCAN's MATCH.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn parse_range(s: &str) -> std::result::Result<(i64, i64), String> {
    let bad = || format!("{s:?} is not a database range such as \"1-15\" or \"7\"");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let (a, b): (i64, i64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a < 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// A token unique to this manager among every process of every host: host, pid, time, counter.
fn owner_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{host}:{}:{nanos}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl StateManager for RedisStateManager {
    /// Connects, leases a database or prefix (waiting up to `lease_wait`), empties it, and
    /// starts the lease's renewer thread.
    fn connect(&mut self) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let url = self.base.url().to_owned();
        let client = Client::open(url.as_str()).map_err(|e| {
            Error::connection(
                NAME,
                &url,
                format!("{e} (expected redis://[[user]:password@]host[:port][/db] or redis+unix:///path)"),
            )
        })?;
        let mut conn = self.open_connection(&client)?;
        ::redis::cmd("PING")
            .exec(&mut conn)
            .map_err(|e| Error::connection(NAME, &url, e))?;
        self.home_db = client.get_connection_info().redis_settings().db();
        if self.isolation == Isolation::Database && self.home_db != 0 {
            return Err(Error::unsupported(
                NAME,
                format!("database {} in the URL with database isolation", self.home_db),
                "database isolation leases a database per test and keeps its lease keys in database 0; \
                 drop the database from the URL, lease only some databases with `options: {databases: \"3-5\"}`, \
                 or use the URL's database as it is with `options: {isolation: none}`",
            ));
        }
        self.has_expiretime = ::redis::cmd("PEXPIRETIME")
            .arg("venomqa:probe")
            .query::<i64>(&mut conn)
            .is_ok();
        // Prefix and none isolation keep data (and prefix leases) in the URL's database:
        // pin it first, so that database isolation never leases and empties it.
        let pin = if self.isolation != Isolation::Database && self.home_db >= 1 {
            let pin = self.pin_home(&client, &mut conn)?;
            Some(pin)
        } else {
            None
        };
        self.pin = pin;
        let result = self.lease_and_empty(&client, &mut conn);
        if let Err(e) = result {
            self.conn = Some(conn);
            let _ = self.release_lease();
            self.conn = None;
            return Err(e);
        }
        self.client = Some(client);
        self.conn = Some(conn);
        if self.isolation == Isolation::Prefix {
            // Whatever a crashed holder of this slot left behind, verified on the server.
            if let Err(e) = self.empty_prefix("emptying the leased prefix") {
                let _ = self.release_lease();
                self.conn = None;
                self.client = None;
                return Err(e);
            }
        }
        self.snapshots.clear();
        self.base.set_connected(true);
        Ok(())
    }

    /// Empties the leased database or prefix, gives the lease back, and closes the connection.
    fn disconnect(&mut self) -> Result<()> {
        self.base.set_connected(false);
        self.snapshots.clear();
        let result = self.release_lease();
        self.conn = None;
        self.client = None;
        result
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        self.base.ensure_connected()?;
        self.check_lease()?;
        crate::validate_checkpoint_name(name)?;
        if self.base.checkpoints().iter().any(|c| c == name) {
            return Err(Error::DuplicateCheckpoint {
                name: name.to_owned(),
            });
        }
        let snapshot = self.snapshot()?;
        self.base.checkpoint(name, |_, _| Ok(()))?;
        self.snapshots.push(snapshot);
        Ok(())
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let index = self.base.position(name)?;
        self.restore(index)?;
        self.base.rollback(name, |_, _| Ok(()))?;
        self.snapshots.truncate(index + 1);
        Ok(())
    }

    fn release(&mut self, name: &str) -> Result<()> {
        let snapshots = &mut self.snapshots;
        self.base.release(name, |index, _| {
            snapshots.truncate(index);
            Ok(())
        })
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        let index = self.base.position(name)?;
        self.restore(index)?;
        self.base.discard(name, |_, _| Ok(()))?;
        self.snapshots.truncate(index);
        Ok(())
    }

    /// Deletes every key under the prefix (`FLUSHDB` when the manager owns its whole
    /// database, else `SCAN` + `UNLINK` in batches) and forgets every checkpoint.
    fn reset(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        if self.owns_database() {
            self.guarded("reset", true, &[], None)?;
        } else {
            self.check_lease()?;
            self.empty_prefix("reset")?;
        }
        self.snapshots.clear();
        self.base.clear_checkpoints();
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.base.is_connected() && self.conn.is_some()
    }

    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }

    /// `PING`, and the lease still held.
    fn health_check(&mut self) -> bool {
        if self.check_lease().is_err() {
            return false;
        }
        match self.conn.as_mut() {
            Some(conn) => ::redis::cmd("PING").exec(conn).is_ok(),
            None => false,
        }
    }

    /// In database and prefix isolation every manager has its own key space, so setup
    /// functions run on every new connection.
    fn setup_per_connection(&self) -> bool {
        self.isolation != Isolation::None
    }
}

impl Drop for RedisStateManager {
    fn drop(&mut self) {
        if self.lease.is_some() {
            if let Err(e) = self.release_lease() {
                tracing::warn!(target: "venomqa", error = %e, "giving back the redis lease on drop failed; it expires by itself");
            }
        }
    }
}

impl crate::Session<RedisStateManager> {
    /// The test's `redis::Connection`, on its database: run the code under test through it.
    pub fn conn(&mut self) -> &mut Connection {
        self.manager().conn()
    }

    /// The prefix the test's keys go under (see [`RedisStateManager::prefix`]).
    pub fn prefix(&self) -> &str {
        self.manager_ref().prefix()
    }

    /// `name` under the test's prefix.
    pub fn key(&self, name: &str) -> String {
        self.manager_ref().key(name)
    }

    /// The database the test's connection is on.
    pub fn database(&self) -> i64 {
        self.manager_ref().database()
    }
}

fn isolation_of(config: &BackendConfig) -> Isolation {
    config
        .option_parsed::<Isolation>("isolation")
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub(crate) fn backend() -> Backend {
    Backend::new(NAME, RedisStateManager::from_config).default_pool_size_with(|config| {
        match isolation_of(config) {
            // No more managers than databases to lease: a manager waiting for a database that
            // an idle manager of the same pool holds would wait in vain.
            Isolation::Database => {
                let leasable = match config.option("databases").map(parse_range) {
                    Some(Ok((a, b))) => b - a + 1,
                    _ => {
                        RedisStateManager::from_config(config)
                            .ok()
                            .and_then(|m| {
                                let client = Client::open(m.base.url()).ok()?;
                                let mut conn = client
                                    .get_connection_with_timeout(Duration::from_secs(2))
                                    .ok()?;
                                conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                                server_databases(&mut conn)
                            })
                            .unwrap_or(FALLBACK_DATABASES)
                            - 1
                    }
                };
                test_threads().min(leasable.max(1) as usize)
            }
            Isolation::Prefix => test_threads(),
            Isolation::None => 1,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_globs() {
        assert_eq!(parse_range("1-15"), Ok((1, 15)));
        assert_eq!(parse_range("7"), Ok((7, 7)));
        assert!(parse_range("5-2").is_err());
        assert!(parse_range("x").is_err());
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!("prefix".parse::<Isolation>(), Ok(Isolation::Prefix));
        assert!("cluster".parse::<Isolation>().is_err());
    }

    /// The TIME + PTTL path for servers older than 7.0 (no PEXPIRETIME), against the real
    /// server with PEXPIRETIME switched off.
    #[test]
    fn ttl_fallback_without_pexpiretime() {
        let url = std::env::var("VENOMQA_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let mut m = RedisStateManager::new(&url);
        m.connect().expect("the Redis server must be running");
        m.has_expiretime = false;
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
    fn held_lease_debug_hides_the_password() {
        let holder = LeaseHolder {
            slot: 3,
            db: 0,
            key: "venomqa:lease:db:3".into(),
            owner: "me".into(),
            lost: Arc::default(),
            deadline_ms: Arc::default(),
            born: Instant::now(),
            stop: None,
            thread: None,
        };
        let held = HeldLease::new(
            "redis://user:s3cret-pw@host:6379",
            &holder,
            Some(3),
            String::new(),
            0,
        );
        let text = format!("{held:?}");
        assert!(
            !text.contains("s3cret-pw") && text.contains("host"),
            "{text}"
        );
    }

    #[test]
    fn owner_tokens_are_unique() {
        assert_ne!(owner_token(), owner_token());
    }
}
