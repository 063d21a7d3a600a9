//! Lease records: who owns each per-lease database and each shared-database lock, in the
//! `venomqa_leases` database, renewed by a heartbeat in server time; the sweep that drops
//! the databases of owners that are gone.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use ::mongodb::bson::{doc, Bson, DateTime, Document};
use ::mongodb::options::ClientOptions;
use parking_lot::Mutex;

use super::driver_error::{driver_error, DriverError};
use super::snapshot::{snapshot_collections, CollectionSnapshot};
use super::{DATABASE_PREFIX, DEFAULT_LEASE_TTL, LEASES_DATABASE, NAME};
use crate::backends::owner::{self, Liveness, Recorded};
use crate::error::{Error, Result};

const LEASES_COLLECTION: &str = "leases";

/// The collection (in [`LEASES_DATABASE`]) holding the locks of `isolation: shared`
/// databases, one document `shared:<database>` per locked database.
const LOCKS_COLLECTION: &str = "locks";

/// Server selection timeout used when neither the URL nor the configuration sets one.
const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// MongoDB database names are at most 63 bytes.
pub(super) const MAX_DATABASE_NAME: usize = 63;

/// Process-wide state per server: one driver client (its own connection pool), the
/// once-per-process sweep of leftovers, the heartbeat thread and the template cache.
pub(super) struct Server {
    pub client: ::mongodb::sync::Client,
    pub async_client: ::mongodb::Client,
    pub default_database: Option<String>,
    pub swept: OnceLock<()>,
    heartbeat: OnceLock<()>,
    /// The TTLs (ms) of this process's lease and lock records: the heartbeat renews each
    /// group to `server now + its TTL`, and runs often enough for the shortest.
    ttls: Mutex<BTreeSet<i64>>,
    templates: Mutex<HashMap<String, Arc<Vec<CollectionSnapshot>>>>,
    /// Whether the server answers `dbHash` (capture fingerprints), once known.
    pub dbhash: OnceLock<bool>,
}

static SERVERS: LazyLock<Mutex<HashMap<String, Arc<Server>>>> = LazyLock::new(Default::default);

/// The fields that identify this process in a lease or lock record `id`, written at server
/// time `now`, valid for `ttl` unless renewed.
pub(super) fn record(id: &str, now: DateTime, ttl: Duration) -> Document {
    let me = owner::me();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut record = doc! {
        "_id": id,
        "owner": &me.token,
        "host": &me.host,
        "pid": i64::from(me.pid),
        "created": now,
        "heartbeat": now,
        "ttl_ms": ttl_ms,
        "expires_at": DateTime::from_millis(now.timestamp_millis().saturating_add(ttl_ms)),
    };
    if let Some(machine) = &me.machine {
        record.insert("machine", machine);
    }
    if let Some(started_at) = me.started_at.and_then(|t| i64::try_from(t).ok()) {
        // Seconds since the Unix epoch. (Older versions wrote `start`, in clock ticks since
        // boot: not comparable, so it is not read.)
        record.insert("started_at", started_at);
    }
    record
}

/// Why a lease or lock record counts as abandoned at server time `now`, or `None` while its
/// owner may be alive.
pub(super) fn stale_reason(lease: &Document, now: DateTime) -> Option<String> {
    stale_reason_with(lease, now, owner::liveness)
}

/// [`stale_reason`] with the liveness probe passed in (tests simulate what the system says).
///
/// An owner on this machine is dead when the system says so (see
/// [`owner::liveness`]); when it cannot tell, or the owner is elsewhere, the record is stale
/// once the server's clock passes the `expires_at` its owner wrote (server time + the
/// owner's own `lease_ttl_secs`, renewed by its heartbeat). Only server time is compared,
/// and only with the owner's TTL: local clocks and the sweeper's TTL play no part.
pub(super) fn stale_reason_with(
    lease: &Document,
    now: DateTime,
    liveness: impl Fn(&Recorded<'_>) -> Liveness,
) -> Option<String> {
    let recorded = Recorded {
        token: lease.get_str("owner").ok(),
        pid: lease
            .get_i64("pid")
            .ok()
            .and_then(|p| u32::try_from(p).ok()),
        started_at: lease
            .get_i64("started_at")
            .ok()
            .and_then(|t| u64::try_from(t).ok()),
        machine: lease.get_str("machine").ok(),
    };
    match liveness(&recorded) {
        Liveness::Alive => return None,
        Liveness::Dead(reason) => return Some(reason),
        Liveness::Unknown => {}
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
pub(super) fn lease_database_name(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tail = format!(
        "_{}_{n}_{:06x}",
        std::process::id(),
        owner::random_u64() & 0xff_ffff
    );
    let room = MAX_DATABASE_NAME - DATABASE_PREFIX.len() - tail.len();
    let base = sanitize(base, room.min(24));
    format!("{DATABASE_PREFIX}{base}{tail}")
}

/// Whether `name` has the shape of [`lease_database_name`]'s names.
pub(super) fn is_lease_database_name(name: &str) -> bool {
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

/// Whether a write failed on a duplicate `_id` (someone else holds the lock).
pub(super) fn is_duplicate_key(e: &::mongodb::error::Error) -> bool {
    use ::mongodb::error::{ErrorKind, WriteFailure};
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}

impl Server {
    /// The shared client for `url`, connecting (and checking the server answers) on first use.
    pub(super) fn get(url: &str, connect_timeout: Option<Duration>) -> Result<Arc<Server>> {
        let key = format!("{url}\u{0}{connect_timeout:?}");
        if let Some(server) = SERVERS.lock().get(&key) {
            return Ok(server.clone());
        }
        let mut options = ClientOptions::parse(url).run().map_err(|e| {
            Error::connect(
                NAME,
                url,
                DriverError::hinted(
                    e,
                    "not a valid MongoDB connection string (mongodb://host[:port][/db] or mongodb+srv://)",
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
            .map_err(|e| Error::connect(NAME, url, DriverError::new(e)))?;
        let client = ::mongodb::sync::Client::from(async_client.clone());
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .run()
            .map_err(|e| Error::connect(NAME, url, DriverError::new(e)))?;
        let server = Arc::new(Server {
            client,
            async_client,
            default_database,
            swept: OnceLock::new(),
            heartbeat: OnceLock::new(),
            ttls: Mutex::new(BTreeSet::new()),
            templates: Mutex::new(HashMap::new()),
            dbhash: OnceLock::new(),
        });
        Ok(SERVERS.lock().entry(key).or_insert(server).clone())
    }

    /// `name` with reads pinned to the primary.
    pub(super) fn io_database(&self, name: &str) -> ::mongodb::sync::Database {
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

    pub(super) fn leases(&self) -> ::mongodb::sync::Collection<Document> {
        self.io_database(LEASES_DATABASE)
            .collection(LEASES_COLLECTION)
    }

    pub(super) fn locks(&self) -> ::mongodb::sync::Collection<Document> {
        self.io_database(LEASES_DATABASE)
            .collection(LOCKS_COLLECTION)
    }

    /// The server's clock (`localTime` of `hello`, or of `isMaster` on servers older than
    /// 4.4.2): every expiry is written and compared in server time, never a local clock.
    pub(super) fn server_time(&self) -> Result<DateTime> {
        let admin = self.io_database("admin");
        let mut last = None;
        for command in ["hello", "isMaster"] {
            match admin.run_command(doc! { command: 1 }).run() {
                Ok(reply) => {
                    if let Ok(now) = reply.get_datetime("localTime") {
                        return Ok(*now);
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => driver_error("reading the server's clock", e),
            None => Error::backend(
                NAME,
                "reading the server's clock",
                "neither `hello` nor `isMaster` returned `localTime`; lease expiry needs it",
            ),
        })
    }

    /// Renews every lease and lock record of this process to `server now + its TTL`.
    pub(super) fn renew(&self) -> Result<()> {
        let now = self.server_time()?;
        let ttls: Vec<i64> = self.ttls.lock().iter().copied().collect();
        for ttl in ttls {
            let expires = DateTime::from_millis(now.timestamp_millis().saturating_add(ttl));
            for collection in [self.leases(), self.locks()] {
                collection
                    .update_many(
                        doc! { "owner": &owner::me().token, "ttl_ms": ttl },
                        doc! { "$set": { "heartbeat": now, "expires_at": expires } },
                    )
                    .run()
                    .map_err(|e| driver_error("renewing the lease records", e))?;
            }
        }
        Ok(())
    }

    /// Starts the thread that renews this process's lease and lock records (once), and
    /// makes it renew records with `ttl` often enough.
    pub(super) fn start_heartbeat(self: &Arc<Self>, ttl: Duration) {
        self.ttls
            .lock()
            .insert(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.heartbeat.get_or_init(|| {
            let server = Arc::downgrade(self);
            // Wakes every 250 ms (no I/O) so that a shorter TTL registered later is honoured
            // at once; renews every TTL/4 of the shortest TTL, at least once a minute.
            let spawned = std::thread::Builder::new().name("venomqa-mongodb-heartbeat".into()).spawn(move || {
                let mut last = std::time::Instant::now();
                loop {
                    std::thread::sleep(Duration::from_millis(250));
                    let Some(server) = server.upgrade() else { return };
                    let shortest = server.ttls.lock().first().copied().unwrap_or(60_000);
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
    pub(super) fn sweep(&self) -> Result<Vec<String>> {
        let op = || "dropping databases left behind by finished processes".to_owned();
        let names = self
            .client
            .list_database_names()
            .run()
            .map_err(|e| Error::backend(NAME, op(), e))?;
        let leases: Vec<Document> = self
            .leases()
            .find(doc! {})
            .run()
            .and_then(|cursor| cursor.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| driver_error(op(), e))?;
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
                    driver_error(format!("dropping abandoned database {name:?}"), e)
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
                .map_err(|e| driver_error(op(), e))?;
        }
        Ok(dropped)
    }

    /// The template's collections, read once per process.
    pub(super) fn template(&self, name: &str) -> Result<Arc<Vec<CollectionSnapshot>>> {
        if let Some(t) = self.templates.lock().get(name) {
            return Ok(t.clone());
        }
        let template = Arc::new(snapshot_collections(&self.io_database(name), None)?);
        Ok(self
            .templates
            .lock()
            .entry(name.to_owned())
            .or_insert(template)
            .clone())
    }
}

#[cfg(test)]
mod tests {
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
}
