//! What a capture connection holds (the turn lock, a spare database per checkpoint, each
//! with the digest it was filled with), the guarded script runner, and giving it all back.

use ::redis::{ErrorKind, RedisError, Value};

use crate::backends::redis::lease::{self, lost_error, Guard, Lease};
use crate::backends::redis::RedisConn;
use crate::backends::redis::NAME;
use crate::error::{Error, Result};

/// A spare database's contents: key count, XOR digest (zeros with the count proof), and the
/// keys with an expiry (whose share of the count and the digest leaves when they expire).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Digest {
    pub(super) count: i64,
    pub(super) parts: [i64; 4],
    /// `(absolute expiry ms, share of the digest)` of every key with an expiry.
    pub(super) volatile: Vec<(i64, [i64; 4])>,
}

impl Digest {
    /// The count and digest expected at server time `now_ms`: keys that expired by then are
    /// gone (Redis removes a key once its expiry time has passed).
    pub(super) fn at(&self, now_ms: i64) -> (i64, [i64; 4]) {
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
    pub(super) fn parse(value: Value) -> std::result::Result<Digest, RedisError> {
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
pub(super) struct Spare {
    pub(super) db: i64,
    /// Its lease key, in database 0.
    pub(super) key: String,
    /// The lease and its renewer; `None` once it holds the session's record marker.
    pub(super) lease: Option<Lease>,
    /// What its lease key holds: this connection's lease token, or the marker.
    pub(super) value: String,
    /// Whether it holds the session's first checkpoint, recorded for the next session.
    pub(super) root: bool,
    pub(super) digest: Digest,
}

impl Spare {
    pub(super) fn guard(&self) -> Guard {
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
pub(in crate::backends::redis) struct CaptureState {
    pub(super) lock: Option<Lease>,
    pub(super) spares: Vec<Spare>,
}

impl CaptureState {
    /// The leases whose loss must stop every destructive step (the spares' renewed ones).
    pub(in crate::backends::redis) fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.lock
            .iter()
            .chain(self.spares.iter().filter_map(|s| s.lease.as_ref()))
    }
}

/// Why a capture script failed.
pub(super) enum Fail {
    /// A guard key no longer holds our value.
    Lost(String),
    /// The connection cannot be used (dropped, subscribe mode): a new one can do the step.
    Retry(RedisError),
    /// Anything else (the server's error).
    Failed(RedisError),
}

impl RedisConn {
    pub(super) fn capture_mut(&mut self) -> &mut CaptureState {
        self.capture.get_or_insert_with(Default::default)
    }

    /// The guards every destructive capture step checks: the pin, the turn lock, `spare`.
    pub(super) fn capture_guards(&self, spare: Option<&Spare>) -> Vec<Guard> {
        let mut guards: Vec<Guard> = self.pin.iter().map(Lease::guard).collect();
        if let Some(lock) = self.capture.as_ref().and_then(|c| c.lock.as_ref()) {
            guards.push(lock.guard());
        }
        if let Some(spare) = spare {
            guards.push(spare.guard());
        }
        guards
    }

    pub(super) fn spare(&self, db: i64) -> Result<&Spare> {
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

    pub(super) fn spare_mut(&mut self, db: i64) -> Option<&mut Spare> {
        self.capture
            .as_mut()
            .and_then(|c| c.spares.iter_mut().find(|s| s.db == db))
    }

    /// Runs `script` with `guards` first, after `DISCARD` (a transaction the test left
    /// open would queue it), then `SELECT`s the app's database again (whatever the test
    /// selected); on an unusable connection, once more on a new one.
    pub(super) fn eval(
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
    pub(super) fn give_back_spare(&mut self, mut spare: Spare) -> Result<()> {
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
    pub(super) fn give_back_lock(&mut self) -> Result<()> {
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
    pub(in crate::backends::redis) fn end_capture(&mut self) -> Result<()> {
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
