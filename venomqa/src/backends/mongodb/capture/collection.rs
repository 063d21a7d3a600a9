//! One collection as a capture checkpoint saw it (its type, options, indexes and
//! fingerprint), how its documents go back, and the server-side copy with `aggregate`.

use std::collections::BTreeMap;

use ::mongodb::bson::{doc, Bson, Document};

use crate::backends::mongodb::driver_error::driver_error;
use crate::backends::mongodb::snapshot::{list_collections, list_indexes};
use crate::backends::mongodb::{MongoDb, MongoDbConn};
use crate::error::Result;

/// One collection as a capture checkpoint saw it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Captured {
    pub(super) name: String,
    /// `collection`, `view` or `timeseries`.
    pub(super) kind: String,
    /// The `options` of `listCollections` (what `create` takes back).
    pub(super) options: Document,
    /// `listIndexes` specs except `_id_`, sorted by name.
    pub(super) indexes: Vec<Document>,
    /// The fingerprint of its documents (empty for a view).
    pub(super) fingerprint: String,
    /// How many documents it had.
    pub(super) count: i64,
}

/// How a collection's documents go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Copy {
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
    pub(super) fn copy(&self) -> Copy {
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

    pub(super) fn to_document(&self) -> Document {
        doc! {
            "name": &self.name,
            "kind": &self.kind,
            "options": self.options.clone(),
            "indexes": self.indexes.iter().cloned().map(Bson::Document).collect::<Vec<_>>(),
            "fingerprint": &self.fingerprint,
            "count": self.count,
        }
    }

    pub(super) fn from_document(d: &Document) -> Option<Captured> {
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

/// One collection as `listCollections` shows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Listed {
    pub(super) kind: String,
    pub(super) options: Document,
}

/// The collections in scope, by name.
pub(super) fn listed(
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
    /// The collections in scope of the captured database, with their indexes.
    pub(super) fn describe(&self, conn: &MongoDbConn) -> Result<Vec<Captured>> {
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
    pub(super) fn aggregate(
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
}
