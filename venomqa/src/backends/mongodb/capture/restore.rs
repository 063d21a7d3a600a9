//! A capture rollback: the collections that differ from the checkpoint are restored from
//! its snapshot database, those created since are dropped, and it looks again until
//! nothing differs (the proof).

use std::time::Instant;

use ::mongodb::bson::{doc, Bson, Document, RawDocumentBuf};

use super::collection::{listed, Captured, Copy};
use super::{CaptureMark, SNAPSHOT_PREFIX};
use crate::backends::mongodb::driver_error::driver_error;
use crate::backends::mongodb::snapshot::list_indexes;
use crate::backends::mongodb::{MongoDb, MongoDbConn, NAME};
use crate::error::{Error, Result};

/// Documents per `insertMany` when a collection is restored through the client.
const INSERT_BATCH: usize = 10_000;

impl MongoDb {
    /// What differs from `mark`: the collections to restore, and those to drop (created
    /// since).
    fn plan(&self, conn: &MongoDbConn, mark: &CaptureMark) -> Result<(Vec<String>, Vec<String>)> {
        let now = listed(&conn.io, self.scope())?;
        let names: Vec<(&str, Copy)> = mark
            .collections
            .iter()
            .filter(|c| now.contains_key(&c.name))
            .map(|c| (c.name.as_str(), c.copy()))
            .collect();
        let fingerprints = self.fingerprints(conn, &conn.io, &names)?;
        let mut restore = Vec::new();
        for c in &mark.collections {
            let same = match now.get(&c.name) {
                None => false,
                Some(l) if l.kind != c.kind || l.options != c.options => false,
                Some(_) if c.copy() == Copy::View => true,
                Some(_) => {
                    fingerprints.get(&c.name).map(|f| &f.0) == Some(&c.fingerprint)
                        && list_indexes(&conn.io, &c.name)? == c.indexes
                }
            };
            if !same {
                restore.push(c.name.clone());
            }
        }
        let drop = now
            .keys()
            .filter(|n| !mark.collections.iter().any(|c| &c.name == *n))
            .cloned()
            .collect();
        Ok((restore, drop))
    }

    /// Restores the collections that differ from `mark`, drops those created since, and
    /// looks again until nothing differs (the proof), or the quiescence timeout passes.
    pub(in crate::backends::mongodb) fn capture_restore(
        &self,
        conn: &mut MongoDbConn,
        mark: &CaptureMark,
        what: &str,
    ) -> Result<()> {
        let deadline = Instant::now() + self.quiescence();
        let mut rounds = 0;
        loop {
            let (restore, drop) = self.plan(conn, mark)?;
            if restore.is_empty() && drop.is_empty() {
                return Ok(());
            }
            if rounds > 0 && Instant::now() >= deadline {
                let names: Vec<&str> = restore.iter().chain(&drop).map(String::as_str).collect();
                return Err(Error::backend(
                    NAME,
                    what,
                    format!("collections {} kept changing for {} ms after they were restored: another connection keeps writing to {:?}; stop it, or raise quiescence_timeout_ms", names.join(", "), self.quiescence().as_millis(), conn.database.name()),
                ));
            }
            rounds += 1;
            // The copies it needs must still be there: a snapshot database someone dropped
            // would restore as empty collections.
            let copies = listed(&conn.server.io_database(&mark.database), None)?;
            if let Some(gone) = mark.collections.iter().find(|c| {
                restore.contains(&c.name)
                    && c.count > 0
                    && c.copy() != Copy::View
                    && !copies.contains_key(&c.name)
            }) {
                return Err(Error::state_lost(
                    NAME,
                    format!("{what}: the copy of collection {:?} is gone from snapshot database {:?} (dropped by someone?), so nothing was restored; never drop {SNAPSHOT_PREFIX}* databases while tests run", gone.name, mark.database),
                ));
            }
            for name in &drop {
                conn.io
                    .collection::<Document>(name)
                    .drop()
                    .run()
                    .map_err(|e| {
                        driver_error(format!("{what}: dropping {name:?}, created since"), e)
                    })?;
            }
            // Collections before views.
            let mut todo: Vec<&Captured> = mark
                .collections
                .iter()
                .filter(|c| restore.contains(&c.name))
                .collect();
            todo.sort_by_key(|c| c.copy() == Copy::View);
            for c in todo {
                self.restore_one(conn, mark, c, what)?;
            }
        }
    }

    /// Brings one collection back to `c`, from the snapshot database.
    fn restore_one(
        &self,
        conn: &MongoDbConn,
        mark: &CaptureMark,
        c: &Captured,
        what: &str,
    ) -> Result<()> {
        let db = &conn.io;
        let database = db.name().to_owned();
        let fail = |step: &str, e| driver_error(format!("{what}: {step} {database}.{}", c.name), e);
        let now = listed(db, Some(std::slice::from_ref(&c.name)))?.remove(&c.name);
        let collection = db.collection::<Document>(&c.name);
        let how = c.copy();
        let reusable = how == Copy::Out
            && now
                .as_ref()
                .is_some_and(|l| l.kind == "collection" && l.options.is_empty());
        if now.is_some() && !reusable {
            collection.drop().run().map_err(|e| fail("dropping", e))?;
        }
        if reusable {
            // Indexes it has and should not (a unique one would refuse the documents).
            for index in list_indexes(db, &c.name)? {
                if !c.indexes.contains(&index) {
                    let name = index.get_str("name").unwrap_or_default();
                    db.run_command(doc! { "dropIndexes": &c.name, "index": name })
                        .run()
                        .map_err(|e| fail("dropping an index of", e))?;
                }
            }
        }
        let create = |options: &Document| {
            let mut command = doc! { "create": &c.name };
            command.extend(options.clone());
            db.run_command(command)
                .run()
                .map(drop)
                .map_err(|e| fail("recreating", e))
        };
        let snapshot = conn.server.io_database(&mark.database);
        match how {
            Copy::View => return create(&c.options),
            Copy::Out if c.count == 0 => {
                // An empty collection may have no copy (some servers' $out makes none).
                if reusable {
                    collection
                        .delete_many(doc! {})
                        .run()
                        .map_err(|e| fail("emptying", e))?;
                } else {
                    create(&c.options)?;
                }
            }
            Copy::Out => Self::aggregate(
                &snapshot,
                &c.name,
                vec![doc! { "$out": { "db": &database, "coll": &c.name } }],
                || format!("{what}: restoring {database}.{} ($out)", c.name),
            )?,
            Copy::Merge => {
                create(&c.options)?;
                if c.count > 0 {
                    Self::aggregate(
                        &snapshot,
                        &c.name,
                        vec![
                            doc! { "$merge": { "into": { "db": &database, "coll": &c.name }, "whenMatched": "fail", "whenNotMatched": "insert" } },
                        ],
                        || format!("{what}: restoring {database}.{} ($merge)", c.name),
                    )?;
                }
            }
            Copy::Insert => {
                create(&c.options)?;
                let docs: Vec<RawDocumentBuf> = snapshot
                    .collection::<RawDocumentBuf>(&c.name)
                    .find(doc! {})
                    .run()
                    .and_then(|cursor| cursor.collect())
                    .map_err(|e| fail("reading the copy of", e))?;
                let target = db.collection::<RawDocumentBuf>(&c.name);
                for batch in docs.chunks(INSERT_BATCH) {
                    target
                        .insert_many(batch)
                        .ordered(true)
                        .bypass_document_validation(true)
                        .run()
                        .map_err(|e| fail("restoring the documents of", e))?;
                }
            }
        }
        let have = list_indexes(db, &c.name)?;
        let missing: Vec<Bson> = c
            .indexes
            .iter()
            .filter(|i| !have.contains(i))
            .cloned()
            .map(Bson::Document)
            .collect();
        if !missing.is_empty() {
            db.run_command(doc! { "createIndexes": &c.name, "indexes": missing })
                .run()
                .map_err(|e| fail("restoring the indexes of", e))?;
        }
        Ok(())
    }
}
