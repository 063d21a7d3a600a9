//! Capture isolation (`isolation: capture`): whatever any connection of any process writes
//! to the captured database is rolled back, from server-side copies.
//!
//! - Sessions on the database take turns through the shared-database lock
//!   (`venomqa_leases.locks`, as `isolation: shared` does).
//! - A checkpoint at depth `d` copies every collection into the snapshot database
//!   `vq_snap_<key>_<d>` with `$out` (server-side: no document crosses the network), and
//!   records each collection's type, options, indexes, and a fingerprint of its documents
//!   (`dbHash` where the server has it; else a hash of the raw BSON of every document,
//!   streamed, never decoded). It then fingerprints the copies and the originals again: a
//!   collection written to meanwhile is copied again, until `quiescence_timeout_ms`.
//! - A rollback fingerprints the collections, restores only those that differ (missing,
//!   other type, options, indexes or documents), drops the ones created since, and looks
//!   again: what it finds the second time was written during the rollback, and is restored
//!   again, until `quiescence_timeout_ms`, then named in the error. The last look that finds
//!   nothing to do is the proof.
//! - The first checkpoint of a session is recorded (`venomqa_leases.capture`, with what it
//!   copied), so the next session restores it if this process dies; the snapshot databases
//!   of a dead session are dropped by the next one.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use ::mongodb::bson::{doc, Bson, Document, RawDocumentBuf};

use super::snapshot::{list_collections, list_indexes};
use super::{driver_error, lease, MongoDb, MongoDbConn, NAME};
use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::checkpoint::Point;
use crate::error::{Error, Result};

/// The prefix of every snapshot database capture makes.
pub const SNAPSHOT_PREFIX: &str = "vq_snap_";

/// The collection (in the leases database) recording each session's first checkpoint.
const CAPTURE_COLLECTION: &str = "capture";

/// How many changed documents of each collection a diff lists.
const DIFF_ROWS: usize = 20;

/// Documents per `insertMany` when a collection is restored through the client.
const INSERT_BATCH: usize = 10_000;

/// One collection as a capture checkpoint saw it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Captured {
    name: String,
    /// `collection`, `view` or `timeseries`.
    kind: String,
    /// The `options` of `listCollections` (what `create` takes back).
    options: Document,
    /// `listIndexes` specs except `_id_`, sorted by name.
    indexes: Vec<Document>,
    /// The fingerprint of its documents (empty for a view).
    fingerprint: String,
    /// How many documents it had.
    count: i64,
}

/// How a collection's documents go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copy {
    /// `$out` from the snapshot: replaces the collection (a plain one, no options).
    Out,
    /// `$merge` into the collection recreated with its options (validator, collation, ...).
    Merge,
    /// Read from the snapshot and inserted by the client: capped and time-series
    /// collections, which `$out` and `$merge` cannot write to.
    Insert,
    /// A view: no documents.
    View,
}

impl Captured {
    fn copy(&self) -> Copy {
        if self.kind == "view" {
            Copy::View
        } else if self.kind == "timeseries"
            || self.options.get_bool("capped").unwrap_or(false)
            || self.options.contains_key("timeseries")
        {
            Copy::Insert
        } else if self.options.is_empty() {
            Copy::Out
        } else {
            Copy::Merge
        }
    }

    fn to_document(&self) -> Document {
        doc! {
            "name": &self.name,
            "kind": &self.kind,
            "options": self.options.clone(),
            "indexes": self.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>(),
            "fingerprint": &self.fingerprint,
            "count": self.count,
        }
    }

    fn from_document(d: &Document) -> Option<Captured> {
        Some(Captured {
            name: d.get_str("name").ok()?.to_owned(),
            kind: d.get_str("kind").ok()?.to_owned(),
            options: d.get_document("options").ok()?.clone(),
            indexes: d
                .get_array("indexes")
                .ok()?
                .iter()
                .filter_map(|i| i.as_document().cloned())
                .collect(),
            fingerprint: d.get_str("fingerprint").ok()?.to_owned(),
            count: d.get_i64("count").ok()?,
        })
    }
}

/// What a capture checkpoint saved: the snapshot database holding the copies, and what
/// each collection was.
#[derive(Debug, Clone)]
pub(super) struct CaptureMark {
    database: String,
    collections: Vec<Captured>,
}

/// The snapshot database of `database` at `depth`: `vq_snap_<name>_<hash>_<depth>`, at most
/// 63 bytes, never of the per-lease databases' shape.
pub(super) fn snapshot_name(database: &str, depth: usize) -> String {
    format!("{}{depth}", snapshot_stem(database))
}

/// Every snapshot database name of `database` starts with this.
fn snapshot_stem(database: &str) -> String {
    let kept: String = database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let hash = database.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{SNAPSHOT_PREFIX}{kept}_{:08x}_", hash as u32)
}

/// The fingerprint of a collection read through the client: how many documents, and the
/// wrapping sum of a 128-bit hash of each one's raw BSON, so the order they come in plays no
/// part. The hash is the standard library's SipHash, stable within a build: a fingerprint
/// written by another build only ever differs, which restores the collection, never the
/// other way round.
fn hash_documents(
    db: &::mongodb::sync::Database,
    collection: &str,
) -> std::result::Result<(String, i64), ::mongodb::error::Error> {
    let mut count = 0i64;
    let (mut a, mut b) = (0u64, 0u64);
    for doc in db
        .collection::<RawDocumentBuf>(collection)
        .find(doc! {})
        .run()?
    {
        let bytes = doc?.into_bytes();
        let mut h = std::hash::DefaultHasher::new();
        (0u8, &bytes).hash(&mut h);
        a = a.wrapping_add(h.finish());
        let mut h = std::hash::DefaultHasher::new();
        (1u8, &bytes).hash(&mut h);
        b = b.wrapping_add(h.finish());
        count += 1;
    }
    Ok((format!("docs:{count}:{a:016x}{b:016x}"), count))
}

/// One collection as `listCollections` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    kind: String,
    options: Document,
}

/// The collections in scope, by name.
fn listed(
    db: &::mongodb::sync::Database,
    scope: Option<&[String]>,
) -> Result<BTreeMap<String, Listed>> {
    Ok(list_collections(db, scope)?
        .into_iter()
        .filter_map(|info| {
            let name = info.get_str("name").ok()?.to_owned();
            Some((
                name,
                Listed {
                    kind: info.get_str("type").unwrap_or("collection").to_owned(),
                    options: info.get_document("options").cloned().unwrap_or_default(),
                },
            ))
        })
        .collect())
}

impl MongoDb {
    fn quiescence(&self) -> Duration {
        Duration::from_millis(self.options.quiescence_timeout_ms.unwrap_or(5000))
    }

    /// Fingerprints of `names` (collections, not views) in `db`: `dbHash` where the server
    /// has it (plain collections), else the documents read through the client. A missing
    /// collection reads as empty.
    fn fingerprints(
        &self,
        conn: &MongoDbConn,
        db: &::mongodb::sync::Database,
        names: &[(&str, Copy)],
    ) -> Result<HashMap<String, (String, i64)>> {
        let op = || format!("fingerprinting the collections of {:?}", db.name());
        let mut out = HashMap::new();
        let hashable: Vec<&str> = names
            .iter()
            .filter(|(_, how)| matches!(how, Copy::Out | Copy::Merge))
            .map(|(n, _)| *n)
            .collect();
        if !hashable.is_empty() && conn.server.dbhash.get().copied() != Some(false) {
            let reply = db
                .run_command(doc! { "dbHash": 1, "collections": hashable.clone() })
                .run();
            match reply {
                Ok(reply) => {
                    let _ = conn.server.dbhash.set(true);
                    let hashes = reply
                        .get_document("collections")
                        .cloned()
                        .unwrap_or_default();
                    for name in &hashable {
                        let count = db
                            .run_command(doc! { "count": *name })
                            .run()
                            .map_err(|e| driver_error(op(), e))?
                            .get("n")
                            .and_then(|n| match n {
                                Bson::Int32(n) => Some(i64::from(*n)),
                                Bson::Int64(n) => Some(*n),
                                Bson::Double(n) => Some(*n as i64),
                                _ => None,
                            })
                            .unwrap_or(0);
                        let md5 = hashes.get_str(*name).unwrap_or("");
                        let fingerprint = if count == 0 {
                            "docs:0".to_owned()
                        } else {
                            format!("dbhash:{md5}")
                        };
                        out.insert((*name).to_owned(), (fingerprint, count));
                    }
                }
                Err(e) if super::is_unreachable(&e) => return Err(driver_error(op(), e)),
                Err(e) => {
                    tracing::debug!(target: "venomqa", backend = NAME, error = %e, "no dbHash on this server; fingerprinting documents through the client");
                    let _ = conn.server.dbhash.set(false);
                }
            }
        }
        for (name, how) in names {
            if *how == Copy::View || out.contains_key(*name) {
                continue;
            }
            let (fingerprint, count) =
                hash_documents(db, name).map_err(|e| driver_error(op(), e))?;
            // An empty collection and a missing one read the same.
            let fingerprint = if count == 0 {
                "docs:0".to_owned()
            } else {
                fingerprint
            };
            out.insert((*name).to_owned(), (fingerprint, count));
        }
        Ok(out)
    }

    /// The collections in scope of the captured database, with their indexes.
    fn describe(&self, conn: &MongoDbConn) -> Result<Vec<Captured>> {
        let mut out = Vec::new();
        for (name, l) in listed(&conn.io, self.scope())? {
            let indexes = if l.kind == "view" {
                Vec::new()
            } else {
                list_indexes(&conn.io, &name)?
            };
            out.push(Captured {
                name,
                kind: l.kind,
                options: l.options,
                indexes,
                fingerprint: String::new(),
                count: 0,
            });
        }
        Ok(out)
    }

    /// `aggregate` with `pipeline` on `from.collection`.
    fn aggregate(
        from: &::mongodb::sync::Database,
        collection: &str,
        pipeline: Vec<Document>,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        from.run_command(doc! {
            "aggregate": collection,
            "pipeline": pipeline,
            "cursor": {},
            "bypassDocumentValidation": true,
        })
        .run()
        .map(drop)
        .map_err(|e| driver_error(what(), e))
    }

    /// A capture checkpoint: (for the first one) what a dead session left, then every
    /// collection copied server-side into the checkpoint's snapshot database, proven equal
    /// to the originals.
    pub(super) fn capture_checkpoint(
        &self,
        conn: &mut MongoDbConn,
        at: Point<'_>,
    ) -> Result<super::Snapshot> {
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
        Ok(super::Snapshot(super::Saved::Capture(CaptureMark {
            database: name,
            collections,
        })))
    }

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
    pub(super) fn capture_restore(
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

    /// Drops every snapshot database of the captured database.
    fn drop_snapshots(&self, conn: &MongoDbConn) -> Result<()> {
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
    fn recover(&self, conn: &mut MongoDbConn) -> Result<()> {
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
    pub(super) fn capture_end(&self, conn: &MongoDbConn) -> Result<()> {
        conn.server
            .capture_records()
            .delete_one(doc! { "_id": conn.database.name() })
            .run()
            .map_err(|e| driver_error("deleting the capture record", e))?;
        self.drop_snapshots(conn)
    }

    /// Drops the snapshot database of a checkpoint the stack dropped.
    pub(super) fn capture_forget(&self, conn: &MongoDbConn, mark: &CaptureMark) -> Result<()> {
        conn.server
            .io_database(&mark.database)
            .drop()
            .run()
            .map_err(|e| driver_error(format!("dropping snapshot database {:?}", mark.database), e))
    }

    /// What changed since `mark`, document by document (by `_id`).
    pub(super) fn capture_diff(&self, conn: &MongoDbConn, mark: &CaptureMark) -> Result<Diff> {
        let now = listed(&conn.io, self.scope())?;
        let snapshot = conn.server.io_database(&mark.database);
        let mut tables = Vec::new();
        let names: Vec<(&str, Copy)> = mark
            .collections
            .iter()
            .filter(|c| now.contains_key(&c.name))
            .map(|c| (c.name.as_str(), c.copy()))
            .collect();
        let fingerprints = self.fingerprints(conn, &conn.io, &names)?;
        for c in &mark.collections {
            let mut table = TableDiff::new(&c.name);
            match now.get(&c.name) {
                None => {
                    let mut keys: Vec<String> =
                        documents(&snapshot, &c.name)?.into_keys().collect();
                    if keys.is_empty() {
                        table.push(
                            RowChange::new(ChangeKind::Deleted, "collection dropped"),
                            DIFF_ROWS,
                        );
                    }
                    keys.sort();
                    for key in keys {
                        table.push(RowChange::new(ChangeKind::Deleted, key), DIFF_ROWS);
                    }
                }
                Some(l) => {
                    let mut structure = RowChange::new(ChangeKind::Updated, "(collection)");
                    if l.kind != c.kind || l.options != c.options {
                        structure.columns.push(ColumnChange::new(
                            "options",
                            format!("{} {}", c.kind, c.options),
                            format!("{} {}", l.kind, l.options),
                        ));
                    }
                    if c.copy() != Copy::View {
                        let indexes = list_indexes(&conn.io, &c.name)?;
                        if indexes != c.indexes {
                            let names = |list: &[Document]| -> String {
                                list.iter()
                                    .filter_map(|i| i.get_str("name").ok())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            };
                            structure.columns.push(ColumnChange::new(
                                "indexes",
                                names(&c.indexes),
                                names(&indexes),
                            ));
                        }
                        if fingerprints.get(&c.name).map(|f| &f.0) != Some(&c.fingerprint) {
                            documents_diff(
                                &mut table,
                                documents(&snapshot, &c.name)?,
                                &conn.io,
                                &c.name,
                            )?;
                        }
                    }
                    if !structure.columns.is_empty() {
                        table.push(structure, DIFF_ROWS);
                    }
                }
            }
            tables.push(table);
        }
        for (name, l) in &now {
            if mark.collections.iter().any(|c| &c.name == name) {
                continue;
            }
            let mut table = TableDiff::new(name);
            let docs = if l.kind == "view" {
                HashMap::new()
            } else {
                documents(&conn.io, name)?
            };
            if docs.is_empty() {
                table.push(
                    RowChange::new(ChangeKind::Inserted, "collection created"),
                    DIFF_ROWS,
                );
            }
            let mut keys: Vec<String> = docs.into_keys().collect();
            keys.sort();
            for key in keys {
                table.push(RowChange::new(ChangeKind::Inserted, key), DIFF_ROWS);
            }
            tables.push(table);
        }
        Ok(Diff::from_tables(tables))
    }

    /// Removes what capture keeps on the server for the captured database: restores the
    /// first checkpoint of a session that died (if it completed), drops the snapshot
    /// databases (`vq_snap_..`) and the record. The app's data is otherwise left as it is;
    /// the next session makes what it needs again.
    pub fn uninstall_capture(&self) -> Result<()> {
        if self.options.isolation != super::Isolation::Capture {
            return Err(Error::unsupported(
                NAME,
                "uninstall_capture() without isolation: capture",
                "set isolation: capture on the entry",
            ));
        }
        super::blocking(|| {
            let mut conn = self.open()?;
            conn.acquire_shared_lock(self.lock_timeout())?;
            let result = self.recover(&mut conn);
            conn.release_lock_logged();
            conn.give_back().and(result)
        })
    }
}

/// Every document of `collection` by its `_id` (shown as `_id=<value>`), as raw BSON.
fn documents(
    db: &::mongodb::sync::Database,
    collection: &str,
) -> Result<HashMap<String, RawDocumentBuf>> {
    let mut out = HashMap::new();
    let cursor = db
        .collection::<RawDocumentBuf>(collection)
        .find(doc! {})
        .run()
        .map_err(|e| driver_error(format!("diff: reading {}.{collection}", db.name()), e))?;
    for (i, doc) in cursor.enumerate() {
        let doc =
            doc.map_err(|e| driver_error(format!("diff: reading {}.{collection}", db.name()), e))?;
        let key = match doc.get("_id").ok().flatten() {
            Some(id) => format!(
                "_id={}",
                show(&id.to_raw_bson().try_into().unwrap_or(Bson::Null))
            ),
            None => format!("document {}", i + 1),
        };
        out.insert(key, doc);
    }
    Ok(out)
}

/// A value for a message: shell-like (`NumberLong(5)`, `ObjectId("..")`), at most 60 chars.
fn show(value: &Bson) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

/// The documents of `collection` now against `then` (the checkpoint's), by `_id`: inserted,
/// deleted, and updated with the top-level fields that differ (type included).
fn documents_diff(
    table: &mut TableDiff,
    mut then: HashMap<String, RawDocumentBuf>,
    db: &::mongodb::sync::Database,
    collection: &str,
) -> Result<()> {
    let now = documents(db, collection)?;
    let mut keys: Vec<&String> = now.keys().collect();
    keys.sort();
    let fields = |d: &RawDocumentBuf| -> BTreeMap<String, Bson> {
        Document::try_from(d.as_ref())
            .map(|d| d.into_iter().collect())
            .unwrap_or_default()
    };
    for key in keys {
        let doc = &now[key];
        match then.remove(key) {
            None => table.push(RowChange::new(ChangeKind::Inserted, key.clone()), DIFF_ROWS),
            Some(old) if old.as_bytes() == doc.as_bytes() => {}
            Some(old) => {
                let (a, b) = (fields(&old), fields(doc));
                let mut change = RowChange::new(ChangeKind::Updated, key.clone());
                for name in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                    let (x, y) = (a.get(name), b.get(name));
                    // Type-exact: Int32 5 and Int64 5 differ.
                    let same = match (x, y) {
                        (Some(x), Some(y)) => {
                            x.clone().into_canonical_extjson() == y.clone().into_canonical_extjson()
                        }
                        _ => false,
                    };
                    if !same {
                        let show = |v: Option<&Bson>| v.map_or("(none)".to_owned(), show);
                        change
                            .columns
                            .push(ColumnChange::new(name.clone(), show(x), show(y)));
                    }
                }
                if change.columns.is_empty() {
                    // Same fields in another order.
                    change
                        .columns
                        .push(ColumnChange::new("(field order)", "", ""));
                }
                table.push(change, DIFF_ROWS);
            }
        }
    }
    let mut gone: Vec<String> = then.into_keys().collect();
    gone.sort();
    for key in gone {
        table.push(RowChange::new(ChangeKind::Deleted, key), DIFF_ROWS);
    }
    Ok(())
}

impl lease::Server {
    /// `venomqa_leases.capture`: each captured database's recorded first checkpoint.
    pub(super) fn capture_records(&self) -> ::mongodb::sync::Collection<Document> {
        self.io_database(super::LEASES_DATABASE)
            .collection(CAPTURE_COLLECTION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_short_distinct_and_never_lease_names() {
        let a = snapshot_name("shop", 0);
        assert!(a.starts_with("vq_snap_shop_") && a.ends_with("_0"), "{a}");
        assert_ne!(snapshot_name("shop.x", 1), snapshot_name("shop_x", 1));
        let long = snapshot_name(&"x".repeat(80), 999);
        assert!(long.len() <= 63, "{long}");
        assert!(!lease::is_lease_database_name(&a));
        assert!(!lease::is_lease_database_name(&long));
    }
}
