//! Checkpoints: every collection in scope as raw BSON, byte for byte, with its options and
//! index specifications, kept in the test process's memory.

use std::collections::{BTreeMap, BTreeSet};

use ::mongodb::bson::{doc, Bson, Document, RawDocumentBuf};

use super::driver_error::driver_error;
use crate::error::Result;

/// Documents per `insertMany` call when restoring (the driver splits further by size).
const INSERT_BATCH: usize = 10_000;

/// Rollback empties a collection with `deleteMany` and refills it when its snapshot holds
/// fewer documents than this (no DDL); larger ones are dropped and recreated, with their
/// indexes built after the data, which is cheaper than deleting and re-indexing row by row.
const REUSE_BELOW: usize = 1000;

/// One collection as a checkpoint saw it.
#[derive(Debug, Clone)]
pub(super) struct CollectionSnapshot {
    pub name: String,
    /// `collection`, `view`, `timeseries`.
    pub kind: String,
    /// The `options` of `listCollections` (what `create` takes back).
    pub options: Document,
    /// `listIndexes` specs except `_id_`, sorted by name.
    pub indexes: Vec<Document>,
    /// The documents, raw BSON, in natural order.
    pub docs: Vec<RawDocumentBuf>,
}

impl CollectionSnapshot {
    pub fn is_plain(&self) -> bool {
        self.kind == "collection" && !self.options.get_bool("capped").unwrap_or(false)
    }
}

/// `listCollections` of `db`, `system.*` excluded, limited to `scope` when given.
pub(super) fn list_collections(
    db: &::mongodb::sync::Database,
    scope: Option<&[String]>,
) -> Result<Vec<Document>> {
    let mut command = doc! { "listCollections": 1 };
    if let Some(names) = scope {
        command.insert("filter", doc! { "name": { "$in": names.iter().map(|n| Bson::from(n.as_str())).collect::<Vec<_>>() } });
    }
    let mut out: Vec<Document> = db
        .run_cursor_command(command)
        .run()
        .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            driver_error(
                format!("listing the collections of database {:?}", db.name()),
                e,
            )
        })?;
    out.retain(|c| c.get_str("name").is_ok_and(|n| !n.starts_with("system.")));
    out.sort_by(|a, b| {
        a.get_str("name")
            .unwrap_or("")
            .cmp(b.get_str("name").unwrap_or(""))
    });
    Ok(out)
}

/// `listIndexes` of a collection, without `_id_` and clustered indexes (part of the
/// collection's options), without the legacy `ns` field, sorted by name.
pub(super) fn list_indexes(
    db: &::mongodb::sync::Database,
    collection: &str,
) -> Result<Vec<Document>> {
    let mut out: Vec<Document> = db
        .run_cursor_command(doc! { "listIndexes": collection })
        .run()
        .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            driver_error(
                format!("listing the indexes of {}.{collection}", db.name()),
                e,
            )
        })?;
    out.retain(|i| i.get_str("name") != Ok("_id_") && !i.get_bool("clustered").unwrap_or(false));
    for index in &mut out {
        index.remove("ns");
    }
    out.sort_by(|a, b| {
        a.get_str("name")
            .unwrap_or("")
            .cmp(b.get_str("name").unwrap_or(""))
    });
    Ok(out)
}

/// Reads every collection in scope: options, indexes, documents as raw BSON.
pub(super) fn snapshot_collections(
    db: &::mongodb::sync::Database,
    scope: Option<&[String]>,
) -> Result<Vec<CollectionSnapshot>> {
    let mut out = Vec::new();
    for info in list_collections(db, scope)? {
        let name = info.get_str("name").unwrap_or_default().to_owned();
        let kind = info.get_str("type").unwrap_or("collection").to_owned();
        let options = info.get_document("options").cloned().unwrap_or_default();
        let (indexes, docs) = if kind == "view" {
            (Vec::new(), Vec::new())
        } else {
            let docs = db
                .collection::<RawDocumentBuf>(&name)
                .find(doc! {})
                .run()
                .and_then(|c| c.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    driver_error(format!("reading the documents of {}.{name}", db.name()), e)
                })?;
            (list_indexes(db, &name)?, docs)
        };
        out.push(CollectionSnapshot {
            name,
            kind,
            options,
            indexes,
            docs,
        });
    }
    Ok(out)
}

/// Creates a collection (or view) as saved, with its documents and indexes, in a database
/// where it does not exist. Documents go in before the secondary indexes are built: one
/// index build over the data is cheaper than updating every index on every insert.
pub(super) fn create_collection(
    db: &::mongodb::sync::Database,
    snap: &CollectionSnapshot,
) -> Result<()> {
    let needs_create =
        !snap.options.is_empty() || snap.kind != "collection" || snap.docs.is_empty();
    if needs_create {
        let mut command = doc! { "create": &snap.name };
        command.extend(snap.options.clone());
        db.run_command(command).run().map_err(|e| {
            driver_error(
                format!("recreating collection {}.{}", db.name(), snap.name),
                e,
            )
        })?;
    }
    if snap.kind != "view" {
        insert_documents(db, snap)?;
        create_indexes(db, snap)?;
    }
    Ok(())
}

pub(super) fn create_indexes(
    db: &::mongodb::sync::Database,
    snap: &CollectionSnapshot,
) -> Result<()> {
    if snap.indexes.is_empty() {
        return Ok(());
    }
    db.run_command(doc! { "createIndexes": &snap.name, "indexes": snap.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>() })
        .run()
        .map_err(|e| driver_error(format!("restoring the indexes of {}.{}", db.name(), snap.name), e))?;
    Ok(())
}

pub(super) fn insert_documents(
    db: &::mongodb::sync::Database,
    snap: &CollectionSnapshot,
) -> Result<()> {
    let collection = db.collection::<RawDocumentBuf>(&snap.name);
    for batch in snap.docs.chunks(INSERT_BATCH) {
        collection
            .insert_many(batch)
            .ordered(true)
            .bypass_document_validation(true)
            .run()
            .map_err(|e| {
                driver_error(
                    format!("restoring the documents of {}.{}", db.name(), snap.name),
                    e,
                )
            })?;
    }
    Ok(())
}

/// Brings the collections in scope back to `saved`.
pub(super) fn restore_collections(
    db: &::mongodb::sync::Database,
    scope: Option<&[String]>,
    saved: &[CollectionSnapshot],
) -> Result<()> {
    let current = list_collections(db, scope)?;
    let saved_by_name: BTreeMap<&str, &CollectionSnapshot> =
        saved.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut reusable: BTreeSet<String> = BTreeSet::new();
    for info in &current {
        let name = info.get_str("name").unwrap_or_default();
        let kind = info.get_str("type").unwrap_or("collection");
        let options = info.get_document("options").cloned().unwrap_or_default();
        match saved_by_name.get(name) {
            Some(snap)
                if snap.is_plain()
                    && snap.docs.len() < REUSE_BELOW
                    && kind == snap.kind
                    && options == snap.options =>
            {
                reusable.insert(name.to_owned());
            }
            Some(snap) if snap.kind == "view" && kind == "view" && options == snap.options => {
                reusable.insert(name.to_owned());
            }
            _ => {
                db.collection::<Document>(name).drop().run().map_err(|e| {
                    driver_error(format!("dropping collection {}.{name}", db.name()), e)
                })?;
            }
        }
    }
    // Collections before views, so a view's source exists when it is created.
    let mut order: Vec<&CollectionSnapshot> = saved.iter().collect();
    order.sort_by_key(|s| s.kind == "view");
    for snap in order {
        if !reusable.contains(&snap.name) {
            create_collection(db, snap)?;
            continue;
        }
        if snap.kind == "view" {
            continue;
        }
        let collection = db.collection::<RawDocumentBuf>(&snap.name);
        collection.delete_many(doc! {}).run().map_err(|e| {
            driver_error(
                format!("emptying collection {}.{}", db.name(), snap.name),
                e,
            )
        })?;
        if list_indexes(db, &snap.name)? != snap.indexes {
            db.run_command(doc! { "dropIndexes": &snap.name, "index": "*" })
                .run()
                .map_err(|e| {
                    driver_error(
                        format!("dropping the indexes of {}.{}", db.name(), snap.name),
                        e,
                    )
                })?;
            create_indexes(db, snap)?;
        }
        insert_documents(db, snap)?;
    }
    Ok(())
}
