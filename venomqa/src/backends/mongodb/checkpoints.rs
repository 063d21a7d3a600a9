//! Checkpoints of per-lease and shared isolation, held in the test process's memory: the
//! free root checkpoint of a fresh database, the template copy, snapshots and their
//! restore.

use std::sync::atomic::Ordering;

use super::mark::{Saved, Snapshot};
use super::snapshot::{
    create_collection, list_collections, restore_collections, snapshot_collections,
    CollectionSnapshot,
};
use super::{DbState, MongoDb, MongoDbConn};
use crate::checkpoint::Point;
use crate::error::Result;

impl MongoDb {
    /// Makes the database ready before the first checkpoint: copies the template into it
    /// if one is configured and it was not copied yet.
    pub(super) fn prepare(&self, conn: &mut MongoDbConn) -> Result<()> {
        if conn.state == DbState::Empty {
            if let (Some(template), true) = (&self.options.template_database, self.per_lease()) {
                let template = conn.server.template(template)?;
                // The database does not exist: create everything without looking first.
                conn.state = DbState::Unknown;
                let mut order: Vec<&CollectionSnapshot> = template.iter().collect();
                order.sort_by_key(|s| s.kind == "view");
                for snap in order {
                    create_collection(&conn.io, snap)?;
                }
            }
            conn.state = DbState::Prepared;
        }
        Ok(())
    }

    /// Restores `mark`; `keep` says whether the checkpoint stays (rollback) or goes
    /// (discard), which decides whether a fresh database is re-prepared now.
    pub(super) fn restore(
        &self,
        conn: &mut MongoDbConn,
        mark: &Snapshot,
        keep: bool,
    ) -> Result<()> {
        conn.state = DbState::Unknown;
        match &mark.0 {
            Saved::Fresh => {
                conn.drop_database()?;
                conn.state = DbState::Empty;
                if keep {
                    self.prepare(conn)?;
                } else {
                    conn.touched.store(false, Ordering::Relaxed);
                }
            }
            Saved::Full(saved) => {
                let scope = self.scope();
                restore_collections(&conn.io, scope, saved)?;
                // A per-lease database restored to "no collections" is as good as new: the
                // next test can take the free path again.
                if saved.is_empty() && scope.is_none() && self.per_lease() && !keep {
                    conn.state = DbState::Empty;
                    conn.touched.store(false, Ordering::Relaxed);
                }
            }
            Saved::Capture(capture) => self.capture_restore(conn, capture, "rollback")?,
        }
        Ok(())
    }

    pub(super) fn snapshot(&self, conn: &mut MongoDbConn, at: Point<'_>) -> Result<Snapshot> {
        // The outermost checkpoint of a per-lease database is free when the database is
        // known to be freshly prepared, or is found to hold no collections at all.
        let mut fresh = false;
        if self.per_lease() && at.is_outermost() {
            if conn.state != DbState::Unknown && !conn.touched.load(Ordering::Relaxed) {
                fresh = true;
            } else if conn.state != DbState::Prepared {
                if list_collections(&conn.io, None)?.is_empty() {
                    conn.state = DbState::Empty;
                    fresh = true;
                } else {
                    conn.state = DbState::Unknown;
                }
            }
        }
        if fresh {
            self.prepare(conn)?;
            return Ok(Snapshot(Saved::Fresh));
        }
        Ok(Snapshot(Saved::Full(snapshot_collections(
            &conn.io,
            self.scope(),
        )?)))
    }
}
