//! Capture's marks on PostgreSQL: the database's snapshot, every sequence's value, the
//! schema's fingerprint and each table's content, read in one round trip; and which
//! tables' logs have entries after a mark.

use postgres::Client;

use super::introspect::digest_of;
use super::{failed, sets, Capture, NAME};
use crate::backends::sql_capture::postgres_literal as lit;
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};

/// The mark of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    /// `pg_current_snapshot()` as text: entries whose transaction it does not see are
    /// after the mark.
    pub(super) snapshot: String,
    pub(super) sequences: Vec<(i64, bool)>,
    pub(super) fingerprint: String,
    /// Every table's row count at the mark (in `Capture::tables` order); empty for a mark
    /// a dead session left that recorded none.
    pub(super) counts: Vec<i64>,
    /// With `capture_proof: digest`, every table's content digest at the mark.
    pub(super) digests: Vec<String>,
}

impl Mark {
    /// The condition on an undo log's rows that are after this mark.
    pub(super) fn after(&self) -> String {
        format!(
            "NOT pg_visible_in_snapshot(_vq_xid, {}::pg_snapshot)",
            lit(&self.snapshot)
        )
    }

    /// The condition on an undo log's rows that are before this mark.
    pub(super) fn before(&self) -> String {
        format!(
            "pg_visible_in_snapshot(_vq_xid, {}::pg_snapshot)",
            lit(&self.snapshot)
        )
    }
}

pub(super) struct State {
    pub(super) mark: Mark,
    pub(super) triggers: i64,
    pub(super) writers: Vec<String>,
}

impl Capture {
    /// One round trip: fingerprint, trigger count, the current snapshot, sequence values,
    /// and the other sessions of this database with an open write transaction. With
    /// `measure`, also every table's row count (and digest, with `capture_proof: digest`),
    /// read in the same statement as the snapshot, so they agree with it.
    pub(super) fn state(&self, client: &mut Client, measure: bool) -> Result<State> {
        let schemas = self
            .schemas
            .iter()
            .map(|s| lit(s))
            .collect::<Vec<_>>()
            .join(", ");
        let sequences = if self.sequences.is_empty() {
            "SELECT 0 WHERE false".to_owned()
        } else {
            self.sequences
                .iter()
                .map(|s| format!("SELECT last_value, is_called FROM {s}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        };
        let measures: String = if measure {
            self.tables
                .iter()
                .map(|t| {
                    let count = format!(", (SELECT count(*) FROM {})", t.qualified());
                    if self.proof == CaptureProof::Digest {
                        format!("{count}, {}", digest_of(t))
                    } else {
                        count
                    }
                })
                .collect()
        } else {
            String::new()
        };
        // The schema's fingerprint: every column's definition, and the app's own triggers
        // (a restore turns them off by name).
        let sql = format!(
            "SELECT md5(coalesce((SELECT string_agg(concat_ws(chr(31), n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated, a.attidentity), chr(30) ORDER BY n.nspname, c.relname, a.attnum)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind = 'r' AND n.nspname IN ({schemas}) AND c.relname NOT LIKE '\\_vq\\_%'), '')
              || coalesce((SELECT string_agg(concat_ws(chr(31), n.nspname, c.relname, g.tgname, g.tgenabled), chr(30) ORDER BY n.nspname, c.relname, g.tgname)
               FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ({schemas}) AND NOT g.tgisinternal AND g.tgname NOT LIKE '\\_vq\\_%'), ''));
             SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ({schemas}) AND g.tgname LIKE '\\_vq\\_%';
             SELECT pg_current_snapshot()::text{measures};
             {sequences};
             SELECT pid, usename, state, query FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL;"
        );
        let results = sets(client, &sql).map_err(|e| failed("reading the capture state", e))?;
        let [fp, triggers, snapshot, sequences, writers]: [Vec<Vec<Option<String>>>; 5] =
            results.try_into().map_err(|_| {
                Error::backend(NAME, "reading the capture state", "expected 5 result sets")
            })?;
        let cell = |rows: &[Vec<Option<String>>], i: usize| {
            rows.first().and_then(|r| r.get(i).cloned().flatten())
        };
        let sequences = sequences
            .iter()
            .map(|r| {
                (
                    r.first()
                        .cloned()
                        .flatten()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    r.get(1).cloned().flatten().as_deref() == Some("t"),
                )
            })
            .collect();
        let writers = writers
            .iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                // Another session's statement: its shape only, never its literals.
                format!(
                    "pid {} ({}, {}, `{}`)",
                    v(0),
                    v(1),
                    v(2),
                    crate::sql::mask_literals(&v(3), 80)
                )
            })
            .collect();
        let (mut counts, mut digests) = (Vec::new(), Vec::new());
        if measure {
            let row = snapshot.first().cloned().unwrap_or_default();
            let per = if self.proof == CaptureProof::Digest {
                2
            } else {
                1
            };
            for i in 0..self.tables.len() {
                let cell = |j: usize| row.get(1 + i * per + j).cloned().flatten();
                counts.push(cell(0).and_then(|v| v.parse().ok()).unwrap_or(-1));
                if per == 2 {
                    digests.push(cell(1).unwrap_or_default());
                }
            }
        }
        Ok(State {
            mark: Mark {
                snapshot: cell(&snapshot, 0).unwrap_or_default(),
                sequences,
                fingerprint: cell(&fp, 0).unwrap_or_default(),
                counts,
                digests,
            },
            triggers: cell(&triggers, 0).and_then(|v| v.parse().ok()).unwrap_or(0),
            writers,
        })
    }

    /// For each table, whether its log has entries after `mark`. One round trip.
    pub(super) fn changed(&self, client: &mut Client, mark: &Mark) -> Result<Vec<bool>> {
        if self.tables.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {}",
            self.tables
                .iter()
                .map(|t| format!(
                    "EXISTS (SELECT 1 FROM {} WHERE {})",
                    t.undo_qualified(),
                    mark.after()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sets(client, &sql).map_err(|e| failed("reading the capture log", e))?;
        let row = rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_default();
        Ok((0..self.tables.len())
            .map(|i| row.get(i).cloned().flatten().as_deref() == Some("t"))
            .collect())
    }

    /// Whether the installation is as this `Capture` knows it (tables, triggers, schema).
    pub(crate) fn is_current(&self, client: &mut Client) -> bool {
        self.state(client, false).is_ok_and(|s| {
            s.mark.fingerprint == self.fingerprint && s.triggers == self.expected_triggers()
        })
    }

    /// A checkpoint: checks the schema and returns the mark (the snapshot now). A
    /// transaction still in flight is after the mark as a whole, so no wait is needed.
    pub(crate) fn mark(&self, client: &mut Client, operation: &str) -> Result<Mark> {
        let state = self.state(client, true)?;
        self.check_schema(client, &state, operation)?;
        Ok(state.mark)
    }
}
