//! A capture checkpoint: a leased spare database filled with a `COPY` of every key of the
//! app's database, in one script (which records a session's first one).

use super::state::{Digest, Spare};
use super::{db_lease_key, marker, record_key};
use crate::backends::redis::lease::{self, Empty, Held};
use crate::backends::redis::snapshot::Snapshot;
use crate::backends::redis::{Redis, RedisConn};
use crate::checkpoint::Point;
use crate::error::Result;

/// Fills a spare with a copy of the app's database (and records a session's first one).
const FILL: &str = concat!(
    include_str!("../scripts/capture_lib.lua"),
    include_str!("../scripts/capture_fill.lua")
);

impl Redis {
    /// A capture checkpoint: (for the first one) the turn lock and what a dead session
    /// left, then a leased spare filled with a copy of the app's database.
    pub(in crate::backends::redis) fn capture_checkpoint(
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
}
