//! The record of a session's first checkpoint (`venomqa_leases.capture`), so the next
//! session restores it if this process dies; the end of a session, and
//! [`MongoDb::uninstall_capture`].

use ::mongodb::bson::{doc, Document};

use super::collection::Captured;
use super::{snapshot_stem, CaptureMark};
use crate::backends::mongodb::blocking::blocking;
use crate::backends::mongodb::driver_error::driver_error;
use crate::backends::mongodb::lease;
use crate::backends::mongodb::options::Isolation;
use crate::backends::mongodb::{MongoDb, MongoDbConn, LEASES_DATABASE, NAME};
use crate::error::{Error, Result};

/// The collection (in the leases database) recording each session's first checkpoint.
const CAPTURE_COLLECTION: &str = "capture";

impl MongoDb {
    /// Drops every snapshot database of the captured database.
    pub(super) fn drop_snapshots(&self, conn: &MongoDbConn) -> Result<()> {
        let stem = snapshot_stem(conn.database.name());
        let names = conn
            .server
            .client
            .list_database_names()
            .run()
            .map_err(|e| driver_error("listing the snapshot databases", e))?;
        for name in names.iter().filter(|n| n.starts_with(&stem)) {
            conn.server
                .io_database(name)
                .drop()
                .run()
                .map_err(|e| driver_error(format!("dropping snapshot database {name:?}"), e))?;
        }
        Ok(())
    }

    /// Restores what a session that died left (its recorded first checkpoint, if complete),
    /// then drops its snapshot databases and its record. Needs the lock.
    pub(super) fn recover(&self, conn: &mut MongoDbConn) -> Result<()> {
        let database = conn.database.name().to_owned();
        let record = conn
            .server
            .capture_records()
            .find_one(doc! { "_id": &database })
            .run()
            .map_err(|e| driver_error("reading the capture record", e))?;
        if let Some(record) = record {
            let complete = record.get_bool("complete").unwrap_or(false);
            let root = record.get_str("root").unwrap_or_default().to_owned();
            let collections: Option<Vec<Captured>> =
                record.get_array("collections").ok().map(|list| {
                    list.iter()
                        .filter_map(|c| c.as_document().and_then(Captured::from_document))
                        .collect()
                });
            match collections {
                Some(collections) if complete => {
                    tracing::warn!(target: "venomqa", backend = NAME, database = %database, "a capture session that ended without rolling back left its changes; restoring its first checkpoint");
                    let mark = CaptureMark {
                        database: root,
                        collections,
                    };
                    self.capture_restore(conn, &mark, "restoring what a session that died left")?;
                }
                _ => {} // Its first checkpoint never completed: nothing of it ran.
            }
        }
        self.drop_snapshots(conn)?;
        conn.server
            .capture_records()
            .delete_one(doc! { "_id": &database })
            .run()
            .map_err(|e| driver_error("deleting the capture record", e))?;
        Ok(())
    }

    /// The session ends (its first checkpoint was rolled back or released): the record and
    /// every snapshot database go.
    pub(in crate::backends::mongodb) fn capture_end(&self, conn: &MongoDbConn) -> Result<()> {
        conn.server
            .capture_records()
            .delete_one(doc! { "_id": conn.database.name() })
            .run()
            .map_err(|e| driver_error("deleting the capture record", e))?;
        self.drop_snapshots(conn)
    }

    /// Drops the snapshot database of a checkpoint the stack dropped.
    pub(in crate::backends::mongodb) fn capture_forget(
        &self,
        conn: &MongoDbConn,
        mark: &CaptureMark,
    ) -> Result<()> {
        conn.server
            .io_database(&mark.database)
            .drop()
            .run()
            .map_err(|e| driver_error(format!("dropping snapshot database {:?}", mark.database), e))
    }

    /// Removes what capture keeps on the server for the captured database: restores the
    /// first checkpoint of a session that died (if it completed), drops the snapshot
    /// databases (`vq_snap_..`) and the record. The app's data is otherwise left as it is;
    /// the next session makes what it needs again.
    pub fn uninstall_capture(&self) -> Result<()> {
        if self.options.isolation != Isolation::Capture {
            return Err(Error::unsupported(
                NAME,
                "uninstall_capture() without isolation: capture",
                "set isolation: capture on the entry",
            ));
        }
        blocking(|| {
            let mut conn = self.open()?;
            conn.acquire_shared_lock(self.lock_timeout())?;
            let result = self.recover(&mut conn);
            conn.release_lock_logged();
            conn.give_back().and(result)
        })
    }
}

impl lease::Server {
    /// `venomqa_leases.capture`: each captured database's recorded first checkpoint.
    pub(super) fn capture_records(&self) -> ::mongodb::sync::Collection<Document> {
        self.io_database(LEASES_DATABASE)
            .collection(CAPTURE_COLLECTION)
    }
}
