//! The named lock (`GET_LOCK`) that makes capture sessions on one MySQL database take
//! turns, across processes too.

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::Conn;

use super::{lost_or, run, Capture, NAME};
use crate::backends::sql_capture::{lock_refused, mysql_literal as lit};
use crate::error::Result;
use crate::util::fnv64;

impl Capture {
    /// The name of the lock that makes sessions on `database` take turns, across
    /// processes: at most 64 characters.
    pub(super) fn lock_name(database: &str) -> String {
        let name = format!("venomqa_capture:{database}");
        if name.chars().count() <= 64 {
            name
        } else {
            format!("venomqa_capture:{:016x}", fnv64(database.as_bytes()))
        }
    }

    /// Takes the lock that makes capture sessions on `database` take turns (across
    /// processes too), waiting up to `timeout`. It is the connection's: the server frees
    /// it when the connection ends.
    pub(crate) fn lock(conn: &mut Conn, database: &str, timeout: Duration) -> Result<()> {
        let got: Option<Option<i64>> = conn
            .query_first(format!(
                "SELECT GET_LOCK({}, {})",
                lit(&Self::lock_name(database)),
                timeout.as_secs().max(1)
            ))
            .map_err(|e| lost_or("taking the capture lock", e))?;
        match got.flatten() {
            Some(1) => Ok(()),
            _ => Err(lock_refused(NAME, database, timeout)),
        }
    }

    /// Gives the capture lock back.
    pub(crate) fn unlock(conn: &mut Conn, database: &str) -> Result<()> {
        run(
            conn,
            &format!("DO RELEASE_LOCK({})", lit(&Self::lock_name(database))),
        )
        .map_err(|e| lost_or("giving the capture lock back", e))
    }
}
