//! Fingerprints: a state is recognised by a 128-bit hash of the capture diff since the
//! exploration's root, the context (less the ignored keys) and the world's observations,
//! each in an order that does not depend on the path that led there.
//!
//! The hash is std's `DefaultHasher` with fixed keys (SipHash today), whose output may
//! change between Rust releases and platforms. That is right here: a fingerprint is only
//! a key of one run's map of states, compared with the fingerprints of the same run in
//! the same process; it is never printed, stored or compared across runs, and the order
//! of an exploration depends only on which states are equal, not on the hashes' values.
//! Two SipHash states give 128 bits, so two states merged by a collision are far less
//! likely than with a 64-bit hash. (Were a fingerprint ever to leave the run, it would
//! have to be `crate::util::fnv64` over a stable encoding.)

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::capture::Diff;
use crate::explore::outcome::transport;
use crate::explore::report::FaultKind;
use crate::journey::{panic_message, Check, Context};

use super::navigate::ROOT;
use super::{Engine, Fault};

/// A 128-bit fingerprint from two independent SipHash states (fixed keys: the same
/// state gives the same fingerprint throughout a run).
pub(crate) struct Fingerprint(DefaultHasher, DefaultHasher);

impl Fingerprint {
    pub(crate) fn new() -> Self {
        let mut b = DefaultHasher::new();
        0xA5u8.hash(&mut b);
        Fingerprint(DefaultHasher::new(), b)
    }

    fn add<T: Hash + ?Sized>(&mut self, value: &T) {
        value.hash(&mut self.0);
        value.hash(&mut self.1);
    }

    pub(crate) fn finish(&self) -> u128 {
        (u128::from(self.0.finish()) << 64) | u128::from(self.1.finish())
    }
}

/// A diff in an order that does not depend on the path that made it: tables by name,
/// rows by key, columns by name; cascade marks left out.
fn add_diff(fp: &mut Fingerprint, diff: &Diff) {
    let mut tables: Vec<_> = diff.tables().iter().collect();
    tables.sort_by(|a, b| a.table.cmp(&b.table));
    for t in tables {
        fp.add(&t.table);
        fp.add(&(t.inserted, t.updated, t.deleted, t.omitted));
        let mut rows: Vec<_> = t.rows.iter().collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key).then((a.kind as u8).cmp(&(b.kind as u8))));
        for r in rows {
            fp.add(&(r.kind as u8));
            fp.add(&r.key);
            let mut cols: Vec<_> = r.columns.iter().collect();
            cols.sort_by(|a, b| a.column.cmp(&b.column));
            for c in cols {
                fp.add(&c.column);
                fp.add(&c.old);
                fp.add(&c.new);
            }
        }
    }
}

/// A JSON value in an order that does not depend on how it was built: object keys
/// sorted (serde_json keeps insertion order when a dependency turns on its
/// `preserve_order`).
pub(crate) fn add_json(fp: &mut Fingerprint, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            fp.add("{");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                fp.add(k.as_str());
                add_json(fp, &map[k.as_str()]);
            }
            fp.add("}");
        }
        Value::Array(items) => {
            fp.add("[");
            for v in items {
                add_json(fp, v);
            }
            fp.add("]");
        }
        other => fp.add(&other.to_string()),
    }
}

impl Engine<'_> {
    /// The fingerprint of the current state: the capture diff since the root, the
    /// context (less the ignored keys), the observations.
    pub(super) async fn fingerprint(
        &mut self,
        ctx: &Context,
        action: Option<u16>,
    ) -> Result<(u128, Option<Diff>), Fault> {
        let mut fp = Fingerprint::new();
        let diff = if self.settings.use_diff {
            let manager = &mut *self.manager;
            let diff = crate::journey::offload(|| manager.diff(ROOT)).map_err(|e| {
                self.fault(
                    FaultKind::StateManager,
                    action,
                    format!("reading the capture diff since the exploration's root failed: {e} (turn fingerprint_diff off for a state manager without diff())"),
                )
            })?;
            add_diff(&mut fp, &diff);
            Some(diff)
        } else {
            None
        };
        fp.add("context");
        for key in ctx.keys() {
            if self.world.ignored.iter().any(|k| k == key) {
                continue;
            }
            fp.add(key);
            if let Some(v) = ctx.get(key) {
                add_json(&mut fp, v);
            }
        }
        let world = self.world;
        for (name, observe) in &world.observers {
            let mut check = Check::new(self.client, ctx, Some(&mut *self.manager), "observe", None);
            let outcome = observe.call(&mut check).await;
            let value = match outcome {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    let kind = if transport(&e) {
                        FaultKind::ServerUnreachable
                    } else {
                        FaultKind::ObservationFailed
                    };
                    return Err(self.fault(
                        kind,
                        action,
                        format!("observation {name:?} failed: {}", e.chain()),
                    ));
                }
                Err(p) => {
                    return Err(self.fault(
                        FaultKind::ObservationFailed,
                        action,
                        format!("observation {name:?} panicked: {}", panic_message(&*p)),
                    ))
                }
            };
            fp.add(name.as_str());
            add_json(&mut fp, &value);
        }
        let _ = self.client.take_exchanges();
        Ok((fp.finish(), diff))
    }
}
