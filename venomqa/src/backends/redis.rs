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
//! | `prefix` | a key prefix of its own, `<key_prefix>{vq<slot>}:` ([`RedisStateManager::prefix`]), leased in the URL's database; for servers without `SELECT` |
//! | `none` | the URL's database as it is, no lease (you guarantee that one test at a time uses it) |
//!
//! A lease is a key `venomqa:lease:db:<n>` in database 0 (or
//! `venomqa:lease:prefix:<key_prefix>{vq<slot>}` in the URL's database), set with
//! `SET .. NX PX <lease_ttl_ms>` and renewed every third of that by a background thread of
//! the manager, so it never expires under a long test and expires after a crash. A leased
//! database or prefix is emptied when it is leased and when it is given back (on
//! `disconnect`, on drop, and at the normal exit of the process for pooled managers).
//!
//! # Checkpoints
//!
//! A checkpoint `SCAN`s the keys under the key prefix (never `KEYS`) and reads
//! `DUMP` + `PEXPIRETIME` of them in pipelined batches (the next `SCAN` rides in the same
//! round trip). A rollback deletes the keys created since and `RESTORE .. REPLACE ABSTTL`s
//! the rest, in one `MULTI`/`EXEC`; when the manager owns the whole database it is
//! `MULTI; SELECT n; FLUSHDB; RESTORE ..; EXEC`. Keys come back byte for byte, with their
//! absolute expiry time to the millisecond; a key whose expiry time passed during the test
//! stays expired, as it would have without the test. Snapshots live in the test process's
//! memory.
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
    /// A key prefix per manager, leased in the URL's database: for servers without `SELECT`.
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

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return -1";

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

/// A held lease and the thread that renews it.
#[derive(Debug)]
struct LeaseHolder {
    /// The leased database, or the prefix slot.
    slot: i64,
    key: String,
    owner: String,
    lost: Arc<AtomicBool>,
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
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        self.stop();
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
        if let Some(l) = &self.lease {
            if l.lost.load(Ordering::SeqCst) {
                return Err(Error::StateLost {
                    backend: NAME.into(),
                    message: format!(
                        "the lease {} expired or was taken over (the process stalled longer than lease_ttl_ms, \
                         or the key was deleted), so another test may be using the same keys. Raise \
                         lease_ttl_ms, and do not FLUSHALL or delete venomqa:lease:* keys in tests",
                        l.key
                    ),
                });
            }
        }
        Ok(())
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
        loop {
            // Database 0 holds the lease keys and is never leased.
            let ranges: Vec<(i64, i64)> = if self.isolation == Isolation::Database && first == 0 {
                vec![(1, last)]
            } else {
                vec![(first, last)]
            };
            let mut got = -1;
            for (a, b) in ranges.into_iter().filter(|(a, b)| a <= b) {
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
                return Ok(self.start_renewer(client, got, key, owner));
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

    fn start_renewer(&self, client: &Client, slot: i64, key: String, owner: String) -> LeaseHolder {
        let lost = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let ttl = self.lease_ttl;
        let interval = ttl / 3;
        let client = client.clone();
        let (t_key, t_owner, t_lost) = (key.clone(), owner.clone(), lost.clone());
        let timeout = self.connect_timeout.min(interval);
        let thread = std::thread::Builder::new()
            .name(format!("venomqa-redis-lease-{slot}"))
            .spawn(move || {
                let script = ::redis::Script::new(RENEW);
                let mut conn: Option<Connection> = None;
                let mut renewed = Instant::now();
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
                    let outcome = match conn.as_mut() {
                        Some(c) => script
                            .key(&t_key)
                            .arg(&t_owner)
                            .arg(ttl.as_millis() as u64)
                            .invoke::<i64>(c)
                            .map_err(|e| e.to_string()),
                        None => Err("no connection".to_owned()),
                    };
                    match outcome {
                        Ok(1) => renewed = Instant::now(),
                        Ok(_) => {
                            tracing::error!(target: "venomqa", key = %t_key, "redis lease lost: it expired or another owner holds it");
                            t_lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(e) => {
                            conn = None;
                            tracing::warn!(target: "venomqa", key = %t_key, error = %e, "renewing the redis lease failed; retrying");
                            if renewed.elapsed() >= ttl {
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
            key,
            owner,
            lost,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Gives the lease back, emptying the leased database or prefix first (only while the
    /// lease is still ours).
    fn release_lease(&mut self) -> Result<()> {
        let Some(mut lease) = self.lease.take() else {
            return Ok(());
        };
        lease.stop();
        unhold(&lease.key, &lease.owner);
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let lost = lease.lost.load(Ordering::SeqCst);
        let result = match self.isolation {
            Isolation::Database => {
                release_db(conn, &lease.key, &lease.owner, lease.slot, self.home_db)
            }
            _ => {
                let cleared = if lost {
                    Ok(())
                } else {
                    delete_prefix(conn, &self.prefix, self.batch_size)
                };
                cleared.and_then(|()| release_key(conn, &lease.key, &lease.owner))
            }
        };
        result.map_err(|e| Self::redis_err(format!("giving back the lease {}", lease.key), e))
    }

    /// Reads every key under the prefix: SCAN, then DUMP + expiry time in pipelined
    /// batches, the next SCAN riding along with each batch.
    fn snapshot(&mut self) -> Result<Vec<Entry>> {
        let conn = self.conn.as_mut().expect("connected");
        let select = (self.isolation == Isolation::Database)
            .then(|| self.lease.as_ref().map(|l| l.slot))
            .flatten();
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
                if let Some(db) = select {
                    pipe.cmd("SELECT").arg(db).ignore();
                }
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
                        .filter(|k| !is_lease_key(k) && seen.insert(k.clone())),
                );
                cursor = (next != 0).then_some(next);
            }
        }
        Ok(entries)
    }

    /// Puts the keys under the prefix back to `snapshot`, atomically.
    fn restore(&mut self, index: usize) -> Result<()> {
        self.check_lease()?;
        match self.restore_once(index) {
            Err(e) if is_connection_error(&e) => {
                // The data is in Redis and the snapshot in memory: a new connection can
                // still roll back.
                tracing::warn!(target: "venomqa", error = %e, "redis connection lost; reconnecting to roll back");
                let client = self.client.clone().expect("connected");
                let conn = self.open_connection(&client)?;
                self.conn = Some(conn);
                self.restore_once(index)
                    .map_err(|e| Self::redis_err("rollback", e))
            }
            other => other.map_err(|e| Self::redis_err("rollback (MULTI/RESTORE/EXEC)", e)),
        }
    }

    fn restore_once(&mut self, index: usize) -> ::redis::RedisResult<()> {
        let owns = self.owns_database();
        let select = (self.isolation == Isolation::Database)
            .then(|| self.lease.as_ref().map(|l| l.slot))
            .flatten();
        let conn = self.conn.as_mut().expect("connected");
        let snapshot = &self.snapshots[index];
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        if owns {
            // Back on the test's database, whatever the test SELECTed, in the same transaction.
            if let Some(db) = select {
                pipe.cmd("SELECT").arg(db).ignore();
            }
            pipe.cmd("FLUSHDB").ignore();
        } else {
            if let Some(db) = select {
                ::redis::cmd("SELECT").arg(db).exec(conn)?;
            }
            let keep: HashSet<&[u8]> = snapshot.iter().map(|e| e.key.as_slice()).collect();
            let current = scan_keys(conn, &self.prefix, self.batch_size)?;
            let doomed: Vec<&Vec<u8>> = current
                .iter()
                .filter(|k| !keep.contains(k.as_slice()))
                .collect();
            for chunk in doomed.chunks(self.batch_size) {
                pipe.cmd("UNLINK").arg(chunk).ignore();
            }
        }
        for e in snapshot {
            pipe.cmd("RESTORE")
                .arg(&e.key)
                .arg(e.expire_at)
                .arg(&e.payload)
                .arg("REPLACE");
            if e.expire_at > 0 {
                pipe.arg("ABSTTL");
            }
            pipe.ignore();
        }
        if pipe.is_empty() {
            return Ok(());
        }
        pipe.exec(conn)
    }
}

/// A lease this process holds, for the release at process exit.
#[derive(Debug, Clone)]
struct HeldLease {
    url: String,
    key: String,
    owner: String,
    /// `(leased db, home db)` in database isolation; `None` for a prefix.
    databases: Option<(i64, i64)>,
    prefix: String,
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
/// the databases free at once instead of after `lease_ttl`.
extern "C" fn release_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let leases = match HELD.try_lock() {
            Ok(mut held) => std::mem::take(&mut *held),
            Err(_) => return,
        };
        for lease in leases {
            let Ok(client) = Client::open(lease.url.as_str()) else {
                continue;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                continue;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = match lease.databases {
                Some((db, home)) => release_db(&mut conn, &lease.key, &lease.owner, db, home),
                None => delete_prefix(&mut conn, &lease.prefix, 1000)
                    .and_then(|()| release_key(&mut conn, &lease.key, &lease.owner)),
            };
        }
    });
}

/// Empties leased database `db` and deletes its lease key, if `owner` still holds it.
fn release_db(
    conn: &mut Connection,
    key: &str,
    owner: &str,
    db: i64,
    home: i64,
) -> ::redis::RedisResult<()> {
    let mut pipe = ::redis::pipe();
    pipe.cmd("SELECT").arg(home).ignore();
    pipe.cmd("EVAL")
        .arg(RELEASE_DB)
        .arg(1)
        .arg(key)
        .arg(owner)
        .arg(db)
        .arg(home)
        .ignore();
    pipe.exec(conn)
}

/// Deletes a lease key, if `owner` still holds it.
fn release_key(conn: &mut Connection, key: &str, owner: &str) -> ::redis::RedisResult<()> {
    ::redis::Script::new(RELEASE)
        .key(key)
        .arg(owner)
        .invoke::<i64>(conn)
        .map(drop)
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

/// Every key under `prefix` except lease keys (SCAN, deduplicated).
fn scan_keys(
    conn: &mut Connection,
    prefix: &str,
    batch: usize,
) -> ::redis::RedisResult<Vec<Vec<u8>>> {
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    loop {
        let mut cmd = ::redis::cmd("SCAN");
        cmd.arg(cursor);
        if !prefix.is_empty() {
            cmd.arg("MATCH").arg(&pattern);
        }
        cmd.arg("COUNT").arg(batch);
        let (next, batch_keys): (u64, Vec<Vec<u8>>) = cmd.query(conn)?;
        keys.extend(
            batch_keys
                .into_iter()
                .filter(|k| !is_lease_key(k) && seen.insert(k.clone())),
        );
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// UNLINKs every key under `prefix`, in batches.
fn delete_prefix(conn: &mut Connection, prefix: &str, batch: usize) -> ::redis::RedisResult<()> {
    let keys = scan_keys(conn, prefix, batch)?;
    if keys.is_empty() {
        return Ok(());
    }
    let mut pipe = ::redis::pipe();
    for chunk in keys.chunks(batch) {
        pipe.cmd("UNLINK").arg(chunk).ignore();
    }
    pipe.exec(conn)
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
        match self.isolation {
            Isolation::Database => {
                let lease = self.acquire(&client, &mut conn)?;
                ::redis::cmd("SELECT")
                    .arg(lease.slot)
                    .exec(&mut conn)
                    .map_err(|e| Self::redis_err(format!("SELECT {}", lease.slot), e))?;
                self.prefix.clone_from(&self.key_prefix);
                hold(HeldLease {
                    url: url.clone(),
                    key: lease.key.clone(),
                    owner: lease.owner.clone(),
                    databases: Some((lease.slot, self.home_db)),
                    prefix: String::new(),
                });
                self.lease = Some(lease);
            }
            Isolation::Prefix => {
                let lease = self.acquire(&client, &mut conn)?;
                self.prefix = format!("{}{{vq{}}}:", self.key_prefix, lease.slot);
                hold(HeldLease {
                    url: url.clone(),
                    key: lease.key.clone(),
                    owner: lease.owner.clone(),
                    databases: None,
                    prefix: self.prefix.clone(),
                });
                // Whatever a crashed holder of this slot left behind.
                delete_prefix(&mut conn, &self.prefix, self.batch_size)
                    .map_err(|e| Self::redis_err("emptying the leased prefix", e))?;
                self.lease = Some(lease);
            }
            Isolation::None => self.prefix.clone_from(&self.key_prefix),
        }
        self.client = Some(client);
        self.conn = Some(conn);
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
        self.check_lease()?;
        let select = (self.isolation == Isolation::Database)
            .then(|| self.lease.as_ref().map(|l| l.slot))
            .flatten();
        let owns = self.owns_database();
        let conn = self.conn.as_mut().expect("connected");
        let result = match select {
            Some(db) => ::redis::cmd("SELECT").arg(db).exec(conn),
            None => Ok(()),
        }
        .and_then(|()| {
            if owns {
                ::redis::cmd("FLUSHDB").exec(conn)
            } else {
                delete_prefix(conn, &self.prefix, self.batch_size)
            }
        });
        result.map_err(|e| Self::redis_err("reset", e))?;
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
    fn owner_tokens_are_unique() {
        assert_ne!(owner_token(), owner_token());
    }
}
