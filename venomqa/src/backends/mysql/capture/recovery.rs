//! Crash recovery of capture on MySQL: a session records its outermost mark in
//! `_vq_root`, so the next session restores what a dead one left; and the log before the
//! outermost mark is forgotten.

use std::collections::HashMap;
use std::fmt::Write as _;

use mysql::prelude::Queryable;
use mysql::Conn;

use super::marks::Mark;
use super::{lost_or, q, run, Capture};
use crate::backends::sql_capture::mysql_literal as lit;
use crate::error::Result;

impl Capture {
    /// Forgets the log up to `mark` (the outermost checkpoint: nothing older is needed).
    pub(crate) fn purge(&self, conn: &mut Conn, mark: &Mark) -> Result<()> {
        let mut sql = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if mark.seqs[i] > 0 {
                sql.push(format!(
                    "DELETE FROM {}.{} WHERE `_vq_seq` <= {}",
                    q(&self.database)?,
                    q(&table.undo)?,
                    mark.seqs[i]
                ));
            }
        }
        if !sql.is_empty() {
            run(conn, &sql.join("; ")).map_err(|e| lost_or("purging the capture log", e))?;
        }
        Ok(())
    }

    /// Records `mark` as the outermost checkpoint of a live session, so the next session
    /// restores it if this process dies before rolling back.
    pub(crate) fn record_root(&self, conn: &mut Conn, mark: &Mark) -> Result<()> {
        let db = q(&self.database)?;
        let mut rows = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            rows.push(format!(
                "({}, {}, {})",
                lit(&table.name),
                mark.seqs[i],
                mark.counters[i].map_or("NULL".to_owned(), |c| c.to_string())
            ));
        }
        let mut sql = format!("DELETE FROM {db}.`_vq_root`");
        if !rows.is_empty() {
            write!(
                sql,
                "; INSERT INTO {db}.`_vq_root` (tbl, seq, counter) VALUES {}",
                rows.join(", ")
            )
            .expect("write to a String");
        }
        run(conn, &sql).map_err(|e| lost_or("recording the capture root", e))
    }

    /// Forgets the recorded outermost checkpoint (the session ended cleanly).
    pub(crate) fn clear_root(&self, conn: &mut Conn) -> Result<()> {
        run(
            conn,
            &format!("DELETE FROM {}.`_vq_root`", q(&self.database)?),
        )
        .map_err(|e| lost_or("clearing the capture root", e))
    }

    /// The outermost checkpoint a dead session left, if any.
    pub(crate) fn left_root(&self, conn: &mut Conn) -> Result<Option<Mark>> {
        let rows: Vec<(String, u64, Option<u64>)> = conn
            .query(format!(
                "SELECT tbl, seq, counter FROM {}.`_vq_root`",
                q(&self.database)?
            ))
            .map_err(|e| lost_or("reading the capture root", e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let by_name: HashMap<&str, (u64, Option<u64>)> = rows
            .iter()
            .map(|(t, s, c)| (t.as_str(), (*s, *c)))
            .collect();
        Ok(Some(Mark {
            seqs: self
                .tables
                .iter()
                .map(|t| by_name.get(t.name.as_str()).map_or(0, |v| v.0))
                .collect(),
            counters: self
                .tables
                .iter()
                .map(|t| by_name.get(t.name.as_str()).and_then(|v| v.1))
                .collect(),
            fingerprint: self.fingerprint.clone(),
            // Not recorded in `_vq_root`: the restore of a dead session's changes is proven
            // by the log, the counters and the schema only.
            content: None,
        }))
    }
}
