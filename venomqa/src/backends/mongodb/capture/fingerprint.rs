//! Fingerprints of a collection's documents: `dbHash` where the server has it, else a hash
//! of every document's raw BSON, streamed through the client and never decoded.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use ::mongodb::bson::{doc, Bson, RawDocumentBuf};

use super::collection::Copy;
use crate::backends::mongodb::driver_error::{driver_error, is_unreachable};
use crate::backends::mongodb::{MongoDb, MongoDbConn, NAME};
use crate::error::Result;

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

impl MongoDb {
    /// Fingerprints of `names` (collections, not views) in `db`: `dbHash` where the server
    /// has it (plain collections), else the documents read through the client. A missing
    /// collection reads as empty.
    pub(super) fn fingerprints(
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
                Err(e) if is_unreachable(&e) => return Err(driver_error(op(), e)),
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
}
