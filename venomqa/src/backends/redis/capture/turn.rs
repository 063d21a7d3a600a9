//! Taking turns on the app's database (the turn lock), and restoring what a session that
//! died left: at a session's first checkpoint and in [`Redis::uninstall_capture`].

use std::time::{Duration, Instant};

use ::redis::{ErrorKind, RedisError, Value};

use super::{lock_key, record_key};
use crate::backends::redis::lease::{self, Empty, Held, Lease};
use crate::backends::redis::options::Isolation;
use crate::backends::redis::{Redis, RedisConn, LEASE_KEY_PREFIX, NAME};
use crate::error::{Error, Result};

/// Restores (or forgets) what a dead session left.
const RECOVER: &str = concat!(
    include_str!("../scripts/capture_lib.lua"),
    include_str!("../scripts/capture_recover.lua")
);

impl Redis {
    /// Leases the database's turn lock, waiting up to `lease_wait_ms` for another session
    /// (of any process) to finish with it.
    pub(in crate::backends::redis) fn take_turn(&self, conn: &mut RedisConn) -> Result<()> {
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
    pub(super) fn recover(&self, conn: &mut RedisConn, mode: &str) -> Result<Option<i64>> {
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
