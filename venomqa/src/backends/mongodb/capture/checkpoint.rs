//! A capture checkpoint: every collection copied server-side (`$out`) into the
//! checkpoint's snapshot database, copied again until the copies and the originals agree.

use std::time::Instant;

use ::mongodb::bson::{doc, Bson};

use super::collection::Copy;
use super::{snapshot_name, CaptureMark};
use crate::backends::mongodb::driver_error::driver_error;
use crate::backends::mongodb::lease;
use crate::backends::mongodb::{MongoDb, MongoDbConn, NAME};
use crate::checkpoint::Point;
use crate::error::{Error, Result};

impl MongoDb {
    /// A capture checkpoint: (for the first one) what a dead session left, then every
    /// collection copied server-side into the checkpoint's snapshot database, proven equal
    /// to the originals.
    pub(in crate::backends::mongodb) fn capture_checkpoint(
        &self,
        conn: &mut MongoDbConn,
        at: Point<'_>,
    ) -> Result<CaptureMark> {
        let database = conn.database.name().to_owned();
        if at.is_outermost() {
            self.recover(conn)?;
        }
        let name = snapshot_name(&database, at.depth());
        let snapshot = conn.server.io_database(&name);
        let what = || format!("checkpoint {:?}", at.name());
        if at.is_outermost() {
            let now = conn.server.server_time()?;
            let mut record = lease::record(&database, now, conn.lock_ttl);
            record.insert("root", &name);
            record.insert("complete", false);
            conn.server
                .capture_records()
                .replace_one(doc! { "_id": &database }, record)
                .upsert(true)
                .run()
                .map_err(|e| driver_error("recording the first checkpoint", e))?;
        }
        let deadline = Instant::now() + self.quiescence();
        let collections = loop {
            snapshot
                .drop()
                .run()
                .map_err(|e| driver_error(format!("{}: dropping {name:?}", what()), e))?;
            let mut collections = self.describe(conn)?;
            for c in &collections {
                if c.copy() != Copy::View {
                    Self::aggregate(
                        &conn.io,
                        &c.name,
                        vec![doc! { "$out": { "db": &name, "coll": &c.name } }],
                        || format!("{}: copying {}.{} ($out)", what(), database, c.name),
                    )?;
                }
            }
            // The copies, and the originals again: equal unless someone wrote meanwhile.
            let names: Vec<(&str, Copy)> = collections
                .iter()
                .map(|c| (c.name.as_str(), c.copy()))
                .collect();
            let copies = self.fingerprints(conn, &snapshot, &names)?;
            let originals = self.fingerprints(conn, &conn.io, &names)?;
            let now = self.describe(conn)?;
            let moved: Vec<&str> = collections
                .iter()
                .filter(|c| c.copy() != Copy::View && copies.get(&c.name) != originals.get(&c.name))
                .map(|c| c.name.as_str())
                .collect();
            if moved.is_empty() && now == collections {
                for c in &mut collections {
                    if let Some((fingerprint, count)) = copies.get(&c.name) {
                        c.fingerprint = fingerprint.clone();
                        c.count = *count;
                    }
                }
                break collections;
            }
            if Instant::now() >= deadline {
                let which = if moved.is_empty() {
                    "its collections were created, dropped or altered".to_owned()
                } else {
                    format!("collections {} kept changing", moved.join(", "))
                };
                return Err(Error::backend(
                    NAME,
                    what(),
                    format!("{which} while they were copied, for {} ms: another connection keeps writing to {database:?}; stop it before the checkpoint, or raise quiescence_timeout_ms", self.quiescence().as_millis()),
                ));
            }
        };
        if at.is_outermost() {
            let list: Vec<Bson> = collections
                .iter()
                .map(|c| Bson::Document(c.to_document()))
                .collect();
            conn.server
                .capture_records()
                .update_one(
                    doc! { "_id": &database },
                    doc! { "$set": { "complete": true, "collections": list } },
                )
                .run()
                .map_err(|e| driver_error("recording the first checkpoint", e))?;
        }
        Ok(CaptureMark {
            database: name,
            collections,
        })
    }
}
