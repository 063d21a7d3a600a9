//! Capture isolation (`isolation: capture`): whatever any connection of any process writes
//! to the URL's database `n >= 1` is rolled back.
//!
//! - The connection *pins* database `n` for its whole life (`venomqa:lease:db:<n>` holds
//!   [`CAPTURE_PIN_VALUE`](super::CAPTURE_PIN_VALUE), shared by every capture connection on
//!   it and renewed by each), so database isolation never leases and empties it, and prefix
//!   or none isolation never work in it meanwhile.
//! - A session's first checkpoint takes the database's *turn lock*
//!   (`venomqa:lease:capture:db:<n>`, a lease like the others), so sessions on one database
//!   take turns, across processes too.
//! - Every checkpoint leases a *spare* database (like database isolation does: `SET NX`, the
//!   first free one of the range) and fills it with `COPY` of every key of database `n`, in
//!   one atomic script. A rollback verifies the spare (its digest), then `SWAPDB`s it with
//!   database `n` (every client of `n` sees the checkpoint at once) and, when the
//!   checkpoint stays, copies the data back into the spare, again in one atomic script.
//! - The first checkpoint's spare is *recorded*: its lease key holds a marker without
//!   expiry, and `venomqa:capture:db:<n>` names it, both set in the script that fills it.
//!   If the process dies, the next session on database `n` swaps it back before it starts.

use std::time::{Duration, Instant};

use ::redis::{ErrorKind, RedisError, Value};

use super::lease::{self, lost_error, Empty, Guard, Held, Lease};
use super::options::{CaptureProof, Isolation};
use super::snapshot::Snapshot;
use super::{Redis, RedisConn, LEASE_KEY_PREFIX, NAME};
use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::checkpoint::Point;
use crate::error::{Error, Result};

/// Fills a spare with a copy of the app's database (and records a session's first one).
const FILL: &str = concat!(
    include_str!("scripts/capture_lib.lua"),
    include_str!("scripts/capture_fill.lua")
);
/// The server's time and a spare's digest.
const VERIFY: &str = concat!(
    include_str!("scripts/capture_lib.lua"),
    include_str!("scripts/capture_verify.lua")
);
/// SWAPDB, then refill or empty the spare.
const SWAP: &str = concat!(
    include_str!("scripts/capture_lib.lua"),
    include_str!("scripts/capture_swap.lua")
);
/// Restores (or forgets) what a dead session left.
const RECOVER: &str = concat!(
    include_str!("scripts/capture_lib.lua"),
    include_str!("scripts/capture_recover.lua")
);
/// What changed since a checkpoint.
const DIFF: &str = concat!(
    include_str!("scripts/capture_lib.lua"),
    include_str!("scripts/capture_diff.lua")
);

/// How many changed keys a diff lists.
const DIFF_ROWS: usize = 20;

/// The record of a session's first checkpoint on database `db`, in database 0.
pub(super) fn record_key(db: i64) -> String {
    format!("venomqa:capture:db:{db}")
}

/// The turn lock of database `db`, in database 0.
pub(super) fn lock_key(db: i64) -> String {
    format!("{LEASE_KEY_PREFIX}capture:db:{db}")
}

/// The lease key of database `db`, in database 0.
fn db_lease_key(db: i64) -> String {
    format!("{LEASE_KEY_PREFIX}db:{db}")
}

/// What the lease key of a session's first spare holds once it is recorded: no lease
/// thread renews it, and no expiry frees it, until the session ends or the next session
/// restores it.
fn marker(db: i64, owner: &str) -> String {
    format!("venomqa:capture-root:db:{db}:{owner}")
}

/// A spare database's contents: key count, XOR digest (zeros with the count proof), and the
/// keys with an expiry (whose share of the count and the digest leaves when they expire).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Digest {
    count: i64,
    parts: [i64; 4],
    /// `(absolute expiry ms, share of the digest)` of every key with an expiry.
    volatile: Vec<(i64, [i64; 4])>,
}

impl Digest {
    /// The count and digest expected at server time `now_ms`: keys that expired by then are
    /// gone (Redis removes a key once its expiry time has passed).
    fn at(&self, now_ms: i64) -> (i64, [i64; 4]) {
        let mut count = self.count;
        let mut parts = self.parts;
        for (expires, share) in &self.volatile {
            if *expires < now_ms {
                count -= 1;
                for (p, s) in parts.iter_mut().zip(share) {
                    *p ^= s;
                }
            }
        }
        (count, parts)
    }

    /// `{count, d1, d2, d3, d4, {{expiry, c1, c2, c3, c4}, ..}}` as the scripts return it.
    fn parse(value: Value) -> std::result::Result<Digest, RedisError> {
        let (count, d1, d2, d3, d4, volatile): (i64, i64, i64, i64, i64, Vec<Vec<i64>>) =
            ::redis::from_redis_value(value)?;
        let volatile = volatile
            .into_iter()
            .filter_map(|v| match v[..] {
                [e, a, b, c, d] => Some((e, [a, b, c, d])),
                _ => None,
            })
            .collect();
        Ok(Digest {
            count,
            parts: [d1, d2, d3, d4],
            volatile,
        })
    }
}

/// One checkpoint's spare database.
#[derive(Debug)]
struct Spare {
    db: i64,
    /// Its lease key, in database 0.
    key: String,
    /// The lease and its renewer; `None` once it holds the session's record marker.
    lease: Option<Lease>,
    /// What its lease key holds: this connection's lease token, or the marker.
    value: String,
    /// Whether it holds the session's first checkpoint, recorded for the next session.
    root: bool,
    digest: Digest,
}

impl Spare {
    fn guard(&self) -> Guard {
        Guard {
            db: 0,
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

/// The capture state of a connection: the session's turn lock and one spare per
/// checkpoint.
#[derive(Debug, Default)]
pub(super) struct CaptureState {
    lock: Option<Lease>,
    spares: Vec<Spare>,
}

impl CaptureState {
    /// The leases whose loss must stop every destructive step (the spares' renewed ones).
    pub(super) fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.lock
            .iter()
            .chain(self.spares.iter().filter_map(|s| s.lease.as_ref()))
    }
}

/// Why a capture script failed.
enum Fail {
    /// A guard key no longer holds our value.
    Lost(String),
    /// The connection cannot be used (dropped, subscribe mode): a new one can do the step.
    Retry(RedisError),
    /// Anything else (the server's error).
    Failed(RedisError),
}

impl RedisConn {
    fn capture_mut(&mut self) -> &mut CaptureState {
        self.capture.get_or_insert_with(Default::default)
    }

    /// The guards every destructive capture step checks: the pin, the turn lock, `spare`.
    fn capture_guards(&self, spare: Option<&Spare>) -> Vec<Guard> {
        let mut guards: Vec<Guard> = self.pin.iter().map(Lease::guard).collect();
        if let Some(lock) = self.capture.as_ref().and_then(|c| c.lock.as_ref()) {
            guards.push(lock.guard());
        }
        if let Some(spare) = spare {
            guards.push(spare.guard());
        }
        guards
    }

    fn spare(&self, db: i64) -> Result<&Spare> {
        self.capture
            .as_ref()
            .and_then(|c| c.spares.iter().find(|s| s.db == db))
            .ok_or_else(|| {
                Error::state_lost(
                    NAME,
                    format!("the spare database {db} of this checkpoint is not held any more"),
                )
            })
    }

    fn spare_mut(&mut self, db: i64) -> Option<&mut Spare> {
        self.capture
            .as_mut()
            .and_then(|c| c.spares.iter_mut().find(|s| s.db == db))
    }

    /// Runs `script` with `guards` first, after `DISCARD` (a transaction the test left
    /// open would queue it), then `SELECT`s the app's database again (whatever the test
    /// selected); on an unusable connection, once more on a new one.
    fn eval(
        &mut self,
        what: &str,
        script: &str,
        guards: &[Guard],
        args: &[String],
    ) -> Result<Value> {
        self.check_lease()?;
        let home = self.home_db;
        let run = |conn: &mut ::redis::Connection| -> std::result::Result<Value, Fail> {
            let mut cmd = ::redis::cmd("EVAL");
            cmd.arg(script).arg(0).arg(guards.len());
            for g in guards {
                cmd.arg(g.db).arg(&g.key).arg(&g.value);
            }
            for a in args {
                cmd.arg(a);
            }
            let mut pipe = ::redis::pipe();
            pipe.ignore_errors();
            pipe.cmd("DISCARD").add_command(cmd).cmd("SELECT").arg(home);
            let values: Vec<Value> = match pipe.query(conn) {
                Ok(v) => v,
                Err(e) if lease::is_connection_error(&e) => return Err(Fail::Retry(e)),
                Err(e) => return Err(Fail::Failed(e)),
            };
            match values.into_iter().nth(1) {
                Some(Value::ServerError(e)) if e.to_string().contains("VQLOST") => {
                    Err(Fail::Lost(e.to_string()))
                }
                Some(Value::ServerError(e)) => Err(Fail::Failed(e.into())),
                Some(v) => Ok(v),
                None => Err(Fail::Retry(RedisError::from((
                    ErrorKind::Client,
                    "unexpected reply: the connection is in a state capture cannot use (subscribe mode, MONITOR?)",
                )))),
            }
        };
        let mut outcome = run(&mut self.conn);
        if let Err(Fail::Retry(e)) = &outcome {
            tracing::warn!(target: "venomqa", error = %e, "redis connection unusable; reconnecting for {what}");
            self.reconnect()?;
            outcome = run(&mut self.conn);
        }
        match outcome {
            Ok(v) => Ok(v),
            Err(Fail::Lost(detail)) => {
                let key = detail
                    .split_whitespace()
                    .nth(3)
                    .unwrap_or("of this session")
                    .to_owned();
                Err(lost_error(&key, "another owner holds it on the server"))
            }
            Err(Fail::Retry(e) | Fail::Failed(e)) => Err(self.driver_error(what, e)),
        }
    }

    /// Gives a spare back: empties it and deletes its lease key, if still ours.
    fn give_back_spare(&mut self, mut spare: Spare) -> Result<()> {
        if let Some(lease) = spare.lease.as_mut() {
            lease.stop();
            lease::unhold(&spare.key, &spare.value);
        }
        if spare.root {
            // Its record and marker went with the session's end.
            return Ok(());
        }
        let give = |conn: &mut ::redis::Connection| {
            lease::release_db(conn, &spare.key, &spare.value, spare.db, 0)
        };
        let result = match give(&mut self.conn) {
            Err(e) if lease::is_connection_error(&e) => {
                self.reconnect()?;
                give(&mut self.conn)
            }
            other => other,
        };
        // release_db selects database 0 last: back to the app's database.
        let back = ::redis::cmd("SELECT")
            .arg(self.home_db)
            .exec(&mut self.conn);
        result
            .and(back)
            .map_err(|e| self.driver_error(&format!("giving back spare database {}", spare.db), e))
    }

    /// Gives the turn lock back (if still ours).
    fn give_back_lock(&mut self) -> Result<()> {
        let Some(mut lock) = self.capture.as_mut().and_then(|c| c.lock.take()) else {
            return Ok(());
        };
        lock.stop();
        lease::unhold(&lock.key, &lock.owner);
        let home = self.home_db;
        let release = |conn: &mut ::redis::Connection| {
            lease::release_key(conn, 0, &lock.key, &lock.owner)?;
            ::redis::cmd("SELECT").arg(home).exec(conn)
        };
        match release(&mut self.conn) {
            Err(e) if lease::is_connection_error(&e) => {
                self.reconnect()?;
                release(&mut self.conn)
            }
            other => other,
        }
        .map_err(|e| self.driver_error("giving back the capture turn lock", e))
    }

    /// Gives back what a connection closed (or dropped) mid-session holds: the turn lock
    /// and the spares of nested checkpoints. A recorded first spare stays: the next session
    /// on the database restores it.
    pub(super) fn end_capture(&mut self) -> Result<()> {
        let Some(state) = self.capture.as_mut() else {
            return Ok(());
        };
        let spares = std::mem::take(&mut state.spares);
        let mut result = Ok(());
        for spare in spares {
            if spare.root {
                tracing::warn!(target: "venomqa", database = self.home_db, spare = spare.db, "a capture session ended without rolling back; the next session on this database restores its first checkpoint");
            }
            result = result.and(self.give_back_spare(spare));
        }
        result.and(self.give_back_lock())
    }
}

impl Redis {
    /// The proof's name, as the scripts take it.
    fn proof(&self) -> &'static str {
        match self.options.capture_proof {
            CaptureProof::Count => "count",
            CaptureProof::Digest => "digest",
        }
    }

    /// Leases the database's turn lock, waiting up to `lease_wait_ms` for another session
    /// (of any process) to finish with it.
    pub(super) fn take_turn(&self, conn: &mut RedisConn) -> Result<()> {
        if conn.capture.as_ref().is_some_and(|c| c.lock.is_some()) {
            // Still ours (a session's end could not give it back): renewed, and guarded.
            return Ok(());
        }
        let db = self.home_db;
        let key = lock_key(db);
        let owner = crate::backends::owner::me().lease_token();
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            // DISCARD: a transaction the previous test left open would queue the rest.
            let mut pipe = ::redis::pipe();
            pipe.ignore_errors();
            pipe.cmd("DISCARD")
                .cmd("SELECT")
                .arg(0)
                .cmd("SET")
                .arg(&key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(self.options.lease_ttl_ms)
                .cmd("SELECT")
                .arg(db);
            let what = "taking the capture turn lock";
            let values: Vec<Value> = pipe
                .query(&mut conn.conn)
                .map_err(|e| conn.driver_error(what, e))?;
            let taken = match values.get(2) {
                Some(Value::Okay) => true,
                Some(Value::Nil) => false,
                Some(Value::ServerError(e)) => {
                    return Err(conn.driver_error(what, e.clone().into()))
                }
                other => {
                    return Err(conn.driver_error(
                        what,
                        RedisError::from((
                            ErrorKind::Client,
                            "unexpected reply",
                            format!("{other:?}"),
                        )),
                    ))
                }
            };
            if taken {
                let lease = Lease::start(
                    &conn.client,
                    db,
                    0,
                    key.clone(),
                    owner.clone(),
                    self.lease_ttl_duration(),
                    self.connect_timeout,
                )?;
                lease::hold(Held {
                    url: self.url.clone(),
                    key,
                    key_db: 0,
                    owner,
                    empty: Empty::Nothing,
                    pid: std::process::id(),
                    lost: lease.lost.clone(),
                });
                conn.capture_mut().lock = Some(lease);
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= self.lease_wait_duration() {
                return Err(Error::backend(
                    NAME,
                    "taking the capture turn lock",
                    format!(
                        "another session held database {db} ({key}) for {} ms; look for a test that never finishes, or raise lease_wait_ms",
                        waited.as_millis()
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Restores what a session that died left: its recorded first checkpoint goes back into
    /// the app's database. Needs the turn lock.
    fn recover(&self, conn: &mut RedisConn, mode: &str) -> Result<Option<i64>> {
        let guards = conn.capture_guards(None);
        let args = [
            self.home_db.to_string(),
            record_key(self.home_db),
            format!("{LEASE_KEY_PREFIX}db:"),
            mode.to_owned(),
        ];
        let what = "restoring what a session that died left";
        let value = match conn.eval(what, RECOVER, &guards, &args) {
            Err(Error::Backend { source, .. }) if source.to_string().contains("VQGONE") => {
                return Err(Error::state_lost(
                    NAME,
                    format!("a capture session that died left database {} changed, and its checkpoint is gone ({}); restore the data by hand, then call Redis::uninstall_capture()", self.home_db, source.to_string().trim_start_matches("VQGONE ")),
                ));
            }
            other => other?,
        };
        let spare: i64 =
            ::redis::from_redis_value(value).map_err(|e| conn.driver_error(what, e.into()))?;
        if spare >= 0 && mode == "restore" {
            tracing::warn!(target: "venomqa", database = self.home_db, spare, "a capture session that ended without rolling back left its changes; restored its first checkpoint");
        }
        Ok((spare >= 0).then_some(spare))
    }

    /// A capture checkpoint: (for the first one) the turn lock and what a dead session
    /// left, then a leased spare filled with a copy of the app's database.
    pub(super) fn capture_checkpoint(
        &self,
        conn: &mut RedisConn,
        at: Point<'_>,
    ) -> Result<Snapshot> {
        if at.is_outermost() {
            self.take_turn(conn)?;
            let begun = self
                .recover(conn, "restore")
                .and_then(|_| self.fill(conn, at));
            if begun.is_err() {
                if let Err(e) = conn.end_capture() {
                    tracing::warn!(target: "venomqa", error = %e, "giving back the capture lease after a failed first checkpoint failed; it expires by itself");
                }
            }
            return begun;
        }
        self.fill(conn, at)
    }

    /// Leases a spare and fills it with a copy of the app's database.
    fn fill(&self, conn: &mut RedisConn, at: Point<'_>) -> Result<Snapshot> {
        let what = format!("checkpoint {:?} (COPY into a spare database)", at.name());
        let mut lease = self.acquire(&conn.client, &mut conn.conn, true)?;
        // ACQUIRE left database 0 selected.
        let back = ::redis::cmd("SELECT")
            .arg(self.home_db)
            .exec(&mut conn.conn);
        let db = lease.slot;
        let root = at.is_outermost();
        let mut spare = Spare {
            db,
            key: db_lease_key(db),
            value: lease.owner.clone(),
            lease: None,
            root: false,
            digest: Digest::default(),
        };
        if let Err(e) = back {
            lease.stop();
            spare.lease = Some(lease);
            let _ = conn.give_back_spare(spare);
            return Err(conn.driver_error(&what, e));
        }
        lease::hold(Held {
            url: self.url.clone(),
            key: spare.key.clone(),
            key_db: 0,
            owner: spare.value.clone(),
            empty: Empty::Database(db),
            pid: std::process::id(),
            lost: lease.lost.clone(),
        });
        let guards = conn.capture_guards(Some(&spare));
        let (record, owner, mark) = if root {
            // The marker replaces the lease's value in the script: its renewer must not
            // extend (or judge lost) what is no longer its own.
            lease.stop();
            lease::unhold(&spare.key, &spare.value);
            (
                record_key(self.home_db),
                spare.value.clone(),
                marker(self.home_db, &spare.value),
            )
        } else {
            (String::new(), String::new(), String::new())
        };
        spare.lease = Some(lease);
        let args = [
            self.home_db.to_string(),
            db.to_string(),
            record,
            owner,
            mark.clone(),
            spare.key.clone(),
            self.proof().to_owned(),
        ];
        let filled = conn
            .eval(&what, FILL, &guards, &args)
            .and_then(|v| Digest::parse(v).map_err(|e| conn.driver_error(&what, e)));
        match filled {
            Ok(digest) => {
                let keys = usize::try_from(digest.count).unwrap_or(0);
                spare.digest = digest;
                if root {
                    spare.lease = None;
                    spare.value = mark;
                    spare.root = true;
                }
                conn.capture_mut().spares.push(spare);
                Ok(Snapshot::spare(db, keys))
            }
            Err(e) => {
                if let Err(e) = conn.give_back_spare(spare) {
                    tracing::warn!(target: "venomqa", error = %e, "giving back a spare database after a failed checkpoint failed; it expires by itself");
                }
                Err(e)
            }
        }
    }

    /// Proves that the spare still holds the checkpoint: its key count (and with the digest
    /// proof, its digest) now equals the one taken when it was filled, less the keys that
    /// expired since. A key expiring right at the check can differ by a millisecond: checked
    /// once more then.
    fn verify(&self, conn: &mut RedisConn, db: i64, what: &str) -> Result<()> {
        let mut last = (0, 0);
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
            let spare = conn.spare(db)?;
            let guards = conn.capture_guards(Some(spare));
            let expected = spare.digest.clone();
            let value = conn.eval(
                what,
                VERIFY,
                &guards,
                &[db.to_string(), self.proof().to_owned()],
            )?;
            let (now, count, a, b, c, d): (i64, i64, i64, i64, i64, i64) =
                ::redis::from_redis_value(value).map_err(|e| conn.driver_error(what, e.into()))?;
            let (want, parts) = expected.at(now);
            let proven = match self.options.capture_proof {
                CaptureProof::Digest => (want, parts) == (count, [a, b, c, d]),
                // DBSIZE still counts keys that expired but are not reclaimed yet.
                _ => want <= count && count <= expected.count,
            };
            if proven {
                return Ok(());
            }
            last = (count, want);
        }
        let how = if last.0 == last.1 {
            "its contents differ".to_owned()
        } else {
            format!("{} keys, {} expected", last.0, last.1)
        };
        Err(Error::state_lost(
            NAME,
            format!("{what}: spare database {db}, which holds the checkpoint, was changed by another client ({how}); nothing was restored. Never point clients at the databases venomqa leases"),
        ))
    }

    /// Rolls the app's database back to the checkpoint held by spare `db`: verifies the
    /// spare, then swaps it in. `keep`: the checkpoint stays (the spare is refilled);
    /// otherwise it ends (the spare is emptied; a first checkpoint's record goes too).
    pub(super) fn capture_restore(
        &self,
        conn: &mut RedisConn,
        db: i64,
        keep: bool,
        what: &str,
    ) -> Result<()> {
        self.verify(conn, db, what)?;
        let spare = conn.spare(db)?;
        let guards = conn.capture_guards(Some(spare));
        let expected = spare.digest.count;
        let root = spare.root;
        let (record, key) = if root && !keep {
            (record_key(self.home_db), spare.key.clone())
        } else {
            (String::new(), String::new())
        };
        let mode = if keep { "refill" } else { "drop" };
        let args = [
            self.home_db.to_string(),
            db.to_string(),
            mode.to_owned(),
            record,
            key,
            self.proof().to_owned(),
        ];
        let value = conn.eval(what, SWAP, &guards, &args)?;
        // The proof: as many keys as the verified spare held (the contents were verified).
        let restored = if keep {
            let digest = Digest::parse(value).map_err(|e| conn.driver_error(what, e))?;
            let count = digest.count;
            if let Some(spare) = conn.spare_mut(db) {
                spare.digest = digest;
            }
            count
        } else {
            ::redis::from_redis_value::<i64>(value)
                .map_err(|e| conn.driver_error(what, e.into()))?
        };
        if !keep && root {
            conn.give_back_lock()?;
        }
        // Keys that expired between the verification and the swap are the only difference
        // a proof may allow.
        let expiring = conn
            .spare(db)
            .map(|s| s.digest.volatile.len() as i64)
            .unwrap_or(0);
        if restored > expected || restored < expected - expiring {
            return Err(Error::state_lost(
                NAME,
                format!("{what}: database {} holds {restored} keys after the rollback, not the checkpoint's {expected}", self.home_db),
            ));
        }
        Ok(())
    }

    /// The first checkpoint is released, its changes kept: the record and the spare go,
    /// and the turn lock is given back.
    pub(super) fn capture_keep(&self, conn: &mut RedisConn, db: i64) -> Result<()> {
        let spare = conn.spare(db)?;
        if !spare.root {
            return Ok(());
        }
        let guards = conn.capture_guards(Some(spare));
        let args = [
            self.home_db.to_string(),
            db.to_string(),
            "keep".to_owned(),
            record_key(self.home_db),
            spare.key.clone(),
            self.proof().to_owned(),
        ];
        conn.eval("release of the first checkpoint", SWAP, &guards, &args)?;
        conn.give_back_lock()
    }

    /// Gives back the spare of a checkpoint the stack dropped.
    pub(super) fn capture_forget(&self, conn: &mut RedisConn, db: i64) -> Result<()> {
        let Some(state) = conn.capture.as_mut() else {
            return Ok(());
        };
        let Some(i) = state.spares.iter().position(|s| s.db == db) else {
            return Ok(());
        };
        let spare = state.spares.remove(i);
        conn.give_back_spare(spare)
    }

    /// What changed in the app's database since the checkpoint held by spare `db`.
    pub(super) fn capture_diff(&self, conn: &mut RedisConn, db: i64) -> Result<Diff> {
        let what = "diff";
        let spare = conn.spare(db)?;
        let guards = conn.capture_guards(Some(spare));
        let args = [
            self.home_db.to_string(),
            db.to_string(),
            DIFF_ROWS.to_string(),
        ];
        let value = conn.eval(what, DIFF, &guards, &args)?;
        let (inserted, updated, deleted, rows): (u64, u64, u64, Vec<Vec<Vec<u8>>>) =
            ::redis::from_redis_value(value).map_err(|e| conn.driver_error(what, e.into()))?;
        let mut table = TableDiff::new(format!("db{}", self.home_db));
        // In key order (the script lists them in the server's hash order).
        let mut rows = rows;
        rows.sort_by(|a, b| a.get(1).cmp(&b.get(1)));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for row in rows {
            let kind = match row.first().map(Vec::as_slice) {
                Some(b"I") => ChangeKind::Inserted,
                Some(b"D") => ChangeKind::Deleted,
                _ => ChangeKind::Updated,
            };
            let mut change = RowChange::new(kind, row.get(1).map_or(String::new(), |k| text(k)));
            if kind == ChangeKind::Updated {
                for c in row[2..].chunks(3) {
                    if let [column, old, new] = c {
                        change
                            .columns
                            .push(ColumnChange::new(text(column), text(old), text(new)));
                    }
                }
            }
            table.push(change, DIFF_ROWS);
        }
        // The script counted every change and listed a few.
        let listed = table.inserted + table.updated + table.deleted;
        table.omitted = (inserted + updated + deleted).saturating_sub(listed);
        table.inserted = inserted;
        table.updated = updated;
        table.deleted = deleted;
        Ok(Diff::from_tables(vec![table]))
    }

    /// Removes what capture keeps in Redis for the URL's database: restores the first
    /// checkpoint of a session that died (if its spare still holds it), frees that spare,
    /// and deletes the record. The app's data is otherwise left as it is; the next session
    /// makes what it needs again.
    pub fn uninstall_capture(&self) -> Result<()> {
        if self.options.isolation != Isolation::Capture {
            return Err(Error::unsupported(
                NAME,
                "uninstall_capture() without isolation: capture",
                "set isolation: capture on the entry",
            ));
        }
        let mut conn = crate::Backend::connect(self)?;
        self.take_turn(&mut conn)?;
        let result = match self.recover(&mut conn, "restore") {
            Err(Error::StateLost { .. }) => self.recover(&mut conn, "forget").map(drop),
            other => other.map(drop),
        };
        result.and(conn.end_capture())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_keys_leave_the_digest() {
        let d = Digest {
            count: 3,
            parts: [1 ^ 4, 2, 3, 4],
            volatile: vec![(100, [4, 0, 0, 0]), (200, [0, 0, 0, 8])],
        };
        assert_eq!(d.at(50), (3, [5, 2, 3, 4]));
        assert_eq!(
            d.at(100),
            (3, [5, 2, 3, 4]),
            "expired only once its time has passed"
        );
        assert_eq!(d.at(101), (2, [1, 2, 3, 4]));
        assert_eq!(d.at(201), (1, [1, 2, 3, 4 ^ 8]));
    }
}
