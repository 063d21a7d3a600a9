//! The advisory lock that makes capture sessions on one PostgreSQL database take turns,
//! across processes too.

use std::time::{Duration, Instant};

use postgres::Client;

use super::{failed, Capture, NAME};
use crate::backends::sql_capture::lock_refused;
use crate::error::Result;
use crate::util::fnv64;

impl Capture {
    /// The name of the advisory lock that makes sessions on these schemas take turns.
    pub(super) fn lock_key(database: &str, schemas: &[String]) -> i64 {
        fnv64(format!("venomqa_capture:{database}:{}", schemas.join(",")).as_bytes()) as i64
    }

    /// Takes the lock that makes capture sessions on this database take turns (across
    /// processes too), waiting up to `timeout`. It is the session's: the server frees it
    /// when the connection ends.
    pub(crate) fn lock(
        client: &mut Client,
        database: &str,
        schemas: &[String],
        timeout: Duration,
    ) -> Result<()> {
        let key = Self::lock_key(database, schemas);
        let started = Instant::now();
        loop {
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(|e| failed("taking the capture lock", e))?
                .get(0);
            if got {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(lock_refused(NAME, database, timeout));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Gives the capture lock back.
    pub(crate) fn unlock(client: &mut Client, database: &str, schemas: &[String]) -> Result<()> {
        client
            .execute(
                "SELECT pg_advisory_unlock($1)",
                &[&Self::lock_key(database, schemas)],
            )
            .map(drop)
            .map_err(|e| failed("giving the capture lock back", e))
    }
}
