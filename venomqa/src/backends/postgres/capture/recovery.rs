//! Crash recovery of capture on PostgreSQL: a session records its outermost mark (with
//! its sequences and counts) in `public._vq_root*`, so the next session restores what a
//! dead one left; and the log before the outermost mark is forgotten.

use std::collections::HashMap;
use std::fmt::Write as _;

use postgres::Client;

use super::marks::Mark;
use super::{failed, run, Capture};
use crate::backends::sql_capture::postgres_literal as lit;
use crate::error::Result;

impl Capture {
    /// Forgets the log before `mark` (the outermost checkpoint: nothing older is needed).
    pub(crate) fn purge(&self, client: &mut Client, mark: &Mark) -> Result<()> {
        let sql: String = self
            .tables
            .iter()
            .map(|t| {
                format!(
                    "DELETE FROM {} WHERE {};",
                    t.undo_qualified(),
                    mark.before()
                )
            })
            .collect();
        if !sql.is_empty() {
            run(client, &sql).map_err(|e| failed("purging the capture log", e))?;
        }
        Ok(())
    }

    /// Records `mark` as the outermost checkpoint of a live session, so the next session
    /// restores it if this process dies before rolling back.
    pub(crate) fn record_root(&self, client: &mut Client, mark: &Mark) -> Result<()> {
        let mut sql = format!(
            "BEGIN; DELETE FROM public._vq_root; DELETE FROM public._vq_root_sequences; DELETE FROM public._vq_root_counts; INSERT INTO public._vq_root VALUES ({});",
            lit(&mark.snapshot)
        );
        for (i, table) in self.tables.iter().enumerate() {
            let Some(count) = mark.counts.get(i) else {
                break;
            };
            let digest = mark.digests.get(i).map_or("NULL".to_owned(), |d| lit(d));
            write!(
                sql,
                " INSERT INTO public._vq_root_counts VALUES ({}, {count}, {digest});",
                lit(&table.qualified())
            )
            .expect("write to a String");
        }
        for (i, s) in self.sequences.iter().enumerate() {
            let (value, called) = mark.sequences[i];
            write!(
                sql,
                " INSERT INTO public._vq_root_sequences VALUES ({}, {value}, {called});",
                lit(s)
            )
            .expect("write to a String");
        }
        sql.push_str(" COMMIT;");
        run(client, &sql).map_err(|e| failed("recording the capture root", e))
    }

    /// Forgets the recorded outermost checkpoint (the session ended cleanly).
    pub(crate) fn clear_root(&self, client: &mut Client) -> Result<()> {
        run(
            client,
            "DELETE FROM public._vq_root; DELETE FROM public._vq_root_sequences; DELETE FROM public._vq_root_counts;",
        )
        .map_err(|e| failed("clearing the capture root", e))
    }

    /// The outermost checkpoint a dead session left, if any.
    pub(crate) fn left_root(&self, client: &mut Client) -> Result<Option<Mark>> {
        let root = client
            .query_opt("SELECT snapshot FROM public._vq_root LIMIT 1", &[])
            .map_err(|e| failed("reading the capture root", e))?;
        let Some(root) = root else {
            return Ok(None);
        };
        let sequences = client
            .query(
                "SELECT seq, last_value, is_called FROM public._vq_root_sequences",
                &[],
            )
            .map_err(|e| failed("reading the capture root", e))?;
        let value_of: HashMap<String, (i64, bool)> = sequences
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        let measured: HashMap<String, (i64, Option<String>)> = client
            .query("SELECT tbl, n, digest FROM public._vq_root_counts", &[])
            .map_err(|e| failed("reading the capture root", e))?
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        // Counts (and digests) only when every table has one: a table created since has
        // none, and the proof then checks the log alone.
        let counts: Option<Vec<(i64, Option<String>)>> = self
            .tables
            .iter()
            .map(|t| measured.get(&t.qualified()).cloned())
            .collect();
        let counts = counts.unwrap_or_default();
        let digests: Option<Vec<String>> = counts.iter().map(|(_, d)| d.clone()).collect();
        Ok(Some(Mark {
            snapshot: root.get(0),
            sequences: self
                .sequences
                .iter()
                .map(|s| value_of.get(s).copied().unwrap_or((1, false)))
                .collect(),
            fingerprint: self.fingerprint.clone(),
            digests: digests.filter(|d| !d.is_empty()).unwrap_or_default(),
            counts: counts.iter().map(|(n, _)| *n).collect(),
        }))
    }
}
