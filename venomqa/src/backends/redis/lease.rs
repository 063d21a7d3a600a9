//! Leases held in Redis itself: `SET .. NX PX` keys renewed by a thread, every destructive
//! step verified against them on the server, and given back on close, on drop and at
//! process exit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::redis::{Client, Connection, ErrorKind, RedisError, RedisResult, Value};
use parking_lot::Mutex;

use super::snapshot::{scan_keys, Entry, Scope};
use super::NAME;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;

/// Leases the first free slot of a range (and, in database isolation, empties it).
pub(super) const ACQUIRE: &str = include_str!("scripts/acquire.lua");
/// Extends a lease or pin that still holds this owner's value.
pub(super) const RENEW: &str = include_str!("scripts/renew.lua");
/// Takes or extends the shared pin of a prefix/none connection's home database.
pub(super) const PIN: &str = include_str!("scripts/pin.lua");
/// Verifies the guards, then FLUSHDB / UNLINK / RESTORE, in one atomic script.
pub(super) const GUARDED: &str = include_str!("scripts/guarded.lua");
/// Empties a leased database and deletes its lease key, if still ours.
pub(super) const RELEASE_DB: &str = include_str!("scripts/release_db.lua");
/// Deletes a lease key, if still ours.
pub(super) const RELEASE: &str = include_str!("scripts/release.lua");

/// A key that must still hold a value on the server for a destructive step to run.
#[derive(Debug, Clone)]
pub(super) struct Guard {
    pub db: i64,
    pub key: String,
    pub value: String,
}

/// A held lease (or pin) and the thread that renews it. Dropping it stops the renewal;
/// giving the key back is the connection's job ([`super::RedisConn`]).
#[derive(Debug)]
pub(super) struct Lease {
    /// The leased database, or the prefix slot.
    pub slot: i64,
    /// The database the lease key lives in.
    pub db: i64,
    pub key: String,
    pub owner: String,
    pub lost: Arc<AtomicBool>,
    /// Milliseconds after `born` when the lease may have expired on the server: the last
    /// successful renewal's SEND time + TTL - a safety margin.
    deadline_ms: Arc<AtomicU64>,
    born: Instant,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Lease {
    /// Starts the thread that renews `key` (holding `owner` in database `db`) every third
    /// of `ttl`. Locally, the lease counts as lost a fifth of the TTL before the server
    /// would expire it, counted from when the last renewal was sent.
    pub fn start(
        client: &Client,
        slot: i64,
        db: i64,
        key: String,
        owner: String,
        ttl: Duration,
        connect_timeout: Duration,
    ) -> Result<Lease> {
        let lost = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
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
        let timeout = connect_timeout.min(interval);
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
            .map_err(|e| Error::backend(NAME, "starting the lease renewer thread", e))?;
        Ok(Lease {
            slot,
            db,
            key,
            owner,
            lost,
            deadline_ms,
            born,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops the renewal (and waits for the thread).
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether the lease is lost, or may have expired on the server by now.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
            || self.born.elapsed().as_millis() as u64 >= self.deadline_ms.load(Ordering::SeqCst)
    }

    /// What the server must still hold for a destructive step.
    pub fn guard(&self) -> Guard {
        Guard {
            db: self.db,
            key: self.key.clone(),
            value: self.owner.clone(),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a guarded step failed.
#[derive(Debug)]
pub(super) enum GuardFail {
    /// The server says a guard key no longer holds our value.
    Lost,
    /// The connection is unusable (dropped, or in a state such as subscribe mode): a new
    /// connection can do the step.
    Retry(RedisError),
    /// Anything else.
    Failed(RedisError),
}

/// Runs [`GUARDED`] in `MULTI`/`EXEC` batches of at most `batch` items, after `DISCARD` (an
/// open transaction the test left; its "without MULTI" error is ignored) and `UNWATCH` (so
/// no key the test WATCHed can abort the EXEC), then `SELECT data_db` for the caller: one
/// round trip. Every batch re-verifies the guards on the server; a nil EXEC is an error.
#[allow(clippy::too_many_arguments)]
pub(super) fn guarded_exec(
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
        Err(e) if is_connection_error(&e) => return Err(GuardFail::Retry(e)),
        Err(e) => return Err(GuardFail::Failed(e)),
    };
    let unexpected = |what: String| {
        GuardFail::Retry(RedisError::from((
            ErrorKind::Client,
            "unexpected reply: the connection is in a state the rollback cannot use (subscribe mode, MONITOR?)",
            what,
        )))
    };
    if values.len() != evals + 5 {
        return Err(unexpected(format!("{} replies", values.len())));
    }
    match &values[evals + 3] {
        Value::Array(results) if results.len() == evals => {
            for r in results {
                match r {
                    Value::Int(1) => {}
                    Value::ServerError(e) if e.to_string().contains("VQLOST") => {
                        return Err(GuardFail::Lost)
                    }
                    Value::ServerError(e) => return Err(GuardFail::Failed(e.clone().into())),
                    other => return Err(unexpected(format!("{other:?} in EXEC"))),
                }
            }
            Ok(())
        }
        Value::Nil => Err(GuardFail::Failed(RedisError::from((
            ErrorKind::Client,
            "the transaction was aborted (EXEC returned nil) although UNWATCH was sent first",
        )))),
        other => Err(unexpected(format!("{other:?} to EXEC"))),
    }
}

/// Empties leased database `db` and deletes its lease key, if `owner` still holds it
/// (checked in the same script). `DISCARD` first: an open transaction would queue it.
pub(super) fn release_db(
    conn: &mut Connection,
    key: &str,
    owner: &str,
    db: i64,
    home: i64,
) -> RedisResult<()> {
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
pub(super) fn release_key(
    conn: &mut Connection,
    db: i64,
    key: &str,
    owner: &str,
) -> RedisResult<()> {
    guarded_script(
        conn,
        db,
        ::redis::cmd("EVAL").arg(RELEASE).arg(1).arg(key).arg(owner),
    )
}

/// `DISCARD` (error ignored), `SELECT db`, then `script`; its error, if any.
fn guarded_script(conn: &mut Connection, db: i64, script: &::redis::Cmd) -> RedisResult<()> {
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
        other => Err(RedisError::from((
            ErrorKind::Client,
            "unexpected reply to the lease script",
            format!("{other:?}"),
        ))),
    }
}

/// Whether the connection itself failed (a new one can do the step).
pub(super) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout()
}

/// A lease this process holds, for the release at process exit.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub url: SecretUrl,
    pub key: String,
    /// The database the lease key lives in.
    pub key_db: i64,
    pub owner: String,
    /// What giving it back empties first.
    pub empty: Empty,
    /// The process that took the lease: a forked child must not give it back.
    pub pid: u32,
    pub lost: Arc<AtomicBool>,
}

/// What giving a lease back empties first.
#[derive(Debug, Clone)]
pub(super) enum Empty {
    /// A leased database (database isolation, or a capture spare).
    Database(i64),
    /// The keys under a prefix, in the lease key's database (prefix isolation).
    Prefix(String),
    /// Nothing: the lease guards no data of its own (a capture session's turn).
    Nothing,
}

static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// Records a lease for the release at process exit.
pub(super) fn hold(lease: Held) {
    HELD.lock().push(lease);
}

/// Forgets a lease given back (or lost).
pub(super) fn unhold(key: &str, owner: &str) {
    HELD.lock().retain(|l| !(l.key == key && l.owner == owner));
}

/// Pooled connections live in statics and are never dropped: give their leases back when
/// the process exits normally, so the next process (`cargo nextest` runs one per test) finds
/// the databases free at once instead of after `lease_ttl_ms`. Skips leases known lost and
/// leases of another process (a forked child exiting); every deletion is verified on the
/// server in the same script.
#[dtor::dtor(unsafe)]
fn release_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let Some(mut held) = HELD.try_lock() else {
            return;
        };
        let leases = std::mem::take(&mut *held);
        drop(held);
        for lease in leases {
            if lease.pid != std::process::id() || lease.lost.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(client) = Client::open(lease.url.expose()) else {
                continue;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                continue;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = match &lease.empty {
                Empty::Database(db) => {
                    release_db(&mut conn, &lease.key, &lease.owner, *db, lease.key_db)
                }
                Empty::Prefix(prefix) => release_prefix_at_exit(&mut conn, &lease, prefix),
                Empty::Nothing => release_key(&mut conn, lease.key_db, &lease.key, &lease.owner),
            };
        }
    });
}

/// Empties a prefix in verified batches, then deletes its lease key (if still ours).
fn release_prefix_at_exit(conn: &mut Connection, lease: &Held, prefix: &str) -> RedisResult<()> {
    let guards = [Guard {
        db: lease.key_db,
        key: lease.key.clone(),
        value: lease.owner.clone(),
    }];
    let scope = Scope {
        db: lease.key_db,
        prefix,
        batch: 1000,
        filter_leases: true,
    };
    let keys = scan_keys(conn, &scope)?;
    let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    if !keys.is_empty()
        && guarded_exec(conn, &guards, lease.key_db, false, &keys, &[], 1000).is_err()
    {
        return Ok(());
    }
    release_key(conn, lease.key_db, &lease.key, &lease.owner)
}

/// The lease is gone: nothing destructive may run.
pub(super) fn lost_error(key: &str, detail: &str) -> Error {
    Error::state_lost(
        NAME,
        format!("lease {key} was lost ({detail}): another test may be using these keys, so nothing was deleted or restored. Raise lease_ttl_ms; never FLUSHALL or delete venomqa:lease:* keys in tests"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_lease_debug_hides_the_password() {
        let held = Held {
            url: SecretUrl::from("redis://user:s3cret-pw@host:6379"),
            key: "venomqa:lease:db:3".into(),
            key_db: 0,
            owner: "me".into(),
            empty: Empty::Database(3),
            pid: 1,
            lost: Arc::default(),
        };
        let text = format!("{held:?}");
        assert!(
            !text.contains("s3cret-pw") && text.contains("host"),
            "{text}"
        );
    }
}
