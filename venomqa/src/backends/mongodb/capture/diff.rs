//! What changed since a capture checkpoint, per collection: the documents inserted,
//! deleted and updated (by `_id`, with the top-level fields that differ, type included),
//! and index or option changes.

use std::collections::{BTreeMap, HashMap};

use ::mongodb::bson::{doc, Bson, Document, RawDocumentBuf};

use super::collection::{listed, Copy};
use super::CaptureMark;
use crate::backends::mongodb::driver_error::driver_error;
use crate::backends::mongodb::snapshot::list_indexes;
use crate::backends::mongodb::{MongoDb, MongoDbConn};
use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::error::Result;

/// How many changed documents of each collection a diff lists.
const DIFF_ROWS: usize = 20;

impl MongoDb {
    /// What changed since `mark`, document by document (by `_id`).
    pub(in crate::backends::mongodb) fn capture_diff(
        &self,
        conn: &MongoDbConn,
        mark: &CaptureMark,
    ) -> Result<Diff> {
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
