//! Checkpoints: the keys under the prefix, read with `SCAN` (never `KEYS`) and pipelined
//! `DUMP` + `PEXPIRETIME`, kept in the test process's memory.

use std::collections::HashSet;

use ::redis::{Connection, RedisResult, Value};

use super::LEASE_KEY_PREFIX;

/// One key of a snapshot.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: Vec<u8>,
    /// Absolute expiry time in Unix milliseconds, 0 for none.
    pub expire_at: i64,
    pub payload: Vec<u8>,
}

/// What a Redis checkpoint saved: every key under the prefix, byte for byte, with its
/// absolute expiry time, held in the test process's memory; with capture isolation, the
/// spare database on the server that holds a copy of the app's database. It is the
/// checkpoint's mark.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(super) entries: Vec<Entry>,
    /// Capture: the spare database holding the copy, and how many keys it had.
    pub(super) spare: Option<(i64, usize)>,
}

impl Snapshot {
    /// A capture checkpoint: spare database `db` holds a copy of `keys` keys.
    pub(super) fn spare(db: i64, keys: usize) -> Self {
        Snapshot {
            entries: Vec::new(),
            spare: Some((db, keys)),
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        match self.spare {
            Some((_, keys)) => keys,
            None => self.entries.len(),
        }
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// With capture isolation, the spare database that holds the checkpoint's copy.
    pub fn spare_database(&self) -> Option<i64> {
        self.spare.map(|(db, _)| db)
    }
}

/// Where to read: the database, the prefix, whether lease keys there are skipped.
pub(super) struct Scope<'a> {
    pub db: i64,
    pub prefix: &'a str,
    pub batch: usize,
    /// Lease keys live only in database 0 and in the home database of prefix/none
    /// connections; a leased database (n >= 1) holds none, so there every key is the test's.
    pub filter_leases: bool,
}

/// Reads every key in scope: `SELECT` + `SCAN`, then `DUMP` + expiry time in pipelined
/// batches, the next `SCAN` riding along with each batch. Without `PEXPIRETIME` (Redis
/// before 7.0) the expiry is `TIME` + `PTTL`.
pub(super) fn read(
    conn: &mut Connection,
    scope: &Scope<'_>,
    has_expiretime: bool,
) -> RedisResult<Snapshot> {
    let pattern = (!scope.prefix.is_empty()).then(|| format!("{}*", glob_escape(scope.prefix)));
    let expire_cmd = if has_expiretime {
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
            pipe.cmd("SELECT").arg(scope.db).ignore();
        }
        let timed = !has_expiretime && !pending.is_empty();
        if timed {
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
            pipe.arg("COUNT").arg(scope.batch);
        }
        first = false;
        let values: Vec<Value> = pipe.query(conn)?;
        let mut it = values.into_iter();
        let now_ms = if timed {
            let t: (i64, i64) = ::redis::from_redis_value(it.next().unwrap_or(Value::Nil))?;
            t.0 * 1000 + t.1 / 1000
        } else {
            0
        };
        for key in pending.drain(..) {
            let dump = it.next().unwrap_or(Value::Nil);
            let exp: i64 = ::redis::from_redis_value(it.next().unwrap_or(Value::Nil)).unwrap_or(-2);
            let Value::BulkString(payload) = dump else {
                continue;
            };
            let expire_at = match exp {
                -2 => continue, // gone between SCAN and DUMP
                -1 => 0,
                e if has_expiretime => e,
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
                ::redis::from_redis_value(it.next().unwrap_or(Value::Nil))?;
            pending.extend(
                keys.into_iter().filter(|k| {
                    !(scope.filter_leases && is_lease_key(k)) && seen.insert(k.clone())
                }),
            );
            cursor = (next != 0).then_some(next);
        }
    }
    Ok(Snapshot {
        entries,
        spare: None,
    })
}

/// Every key in scope (`SELECT` + `SCAN`, deduplicated).
pub(super) fn scan_keys(conn: &mut Connection, scope: &Scope<'_>) -> RedisResult<Vec<Vec<u8>>> {
    let pattern = format!("{}*", glob_escape(scope.prefix));
    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    let mut first = true;
    loop {
        let mut pipe = ::redis::pipe();
        if first {
            pipe.cmd("SELECT").arg(scope.db).ignore();
            first = false;
        }
        pipe.cmd("SCAN").arg(cursor);
        if !scope.prefix.is_empty() {
            pipe.arg("MATCH").arg(&pattern);
        }
        pipe.arg("COUNT").arg(scope.batch);
        let ((next, batch_keys),): ((u64, Vec<Vec<u8>>),) = pipe.query(conn)?;
        keys.extend(
            batch_keys
                .into_iter()
                .filter(|k| !(scope.filter_leases && is_lease_key(k)) && seen.insert(k.clone())),
        );
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Lease keys are never snapshotted, restored or deleted where leases live, even when the
/// prefix covers them (`isolation: none` on the home database).
pub(super) fn is_lease_key(key: &[u8]) -> bool {
    key.starts_with(LEASE_KEY_PREFIX.as_bytes())
}

/// Escapes the glob metacharacters of SCAN's MATCH.
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert!(is_lease_key(b"venomqa:lease:db:3"));
        assert!(!is_lease_key(b"venomqa:other"));
    }
}
