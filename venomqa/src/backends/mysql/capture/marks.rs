//! Capture's marks on MySQL: the state of the log, the AUTO_INCREMENT counters and the
//! schema read in one round trip, the log positions read with locks (waiting for other
//! sessions' uncommitted changes), and each table's content for the proof.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use mysql::{Conn, Row, Value};

use super::{failed, lost_or, q, run, sets, text, u64_of, Capture, NAME, PREFIX, ROWID};
use crate::backends::sql_capture::{mysql_literal as lit, writers_busy};
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};
use crate::sql::mask_literals;

/// The mark of a checkpoint: where each table's undo log was, the AUTO_INCREMENT
/// counters, the schema's fingerprint, and what the data looked like (for the proof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(super) seqs: Vec<u64>,
    pub(super) counters: Vec<Option<u64>>,
    pub(super) fingerprint: String,
    /// Each table's content at the mark, read in the transaction that read `seqs`; `None`
    /// when it was not read (a state read, or a dead session's recorded root: `_vq_root`
    /// keeps no counts, so restoring what a dead session left proves only by the log).
    pub(super) content: Option<Vec<Content>>,
}

/// One table's data as the proof sees it: its exact row count and, with
/// `capture_proof: digest`, an order-independent digest of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Content {
    pub(super) rows: u64,
    /// `sum:count` of a hash of every row (`None` in count mode).
    pub(super) digest: Option<String>,
}

impl Content {
    /// Parses what [`Capture::content_sql`] selects for one table: `n`, or `n:sum`.
    pub(super) fn parse(v: &Value) -> Option<Self> {
        let text = text(v);
        let (rows, digest) = match text.split_once(':') {
            Some((rows, sum)) => (rows, Some(sum.to_owned())),
            None => (text.as_str(), None),
        };
        Some(Content {
            rows: rows.parse().ok()?,
            digest,
        })
    }
}

/// Which costly parts of the state to read.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Read {
    /// The schema fingerprint (columns and InnoDB table ids).
    pub(super) schema: bool,
    /// How many capture triggers are installed.
    pub(super) triggers: bool,
    /// The other sessions inside a write transaction.
    pub(super) writers: bool,
}

impl Read {
    pub(super) const COUNTERS: Read = Read {
        schema: false,
        triggers: false,
        writers: false,
    };
    pub(super) const SCHEMA: Read = Read {
        schema: true,
        triggers: false,
        writers: false,
    };
    pub(super) const WRITERS: Read = Read {
        schema: false,
        triggers: false,
        writers: true,
    };
    pub(super) const INSTALLATION: Read = Read {
        schema: true,
        triggers: true,
        writers: false,
    };
}

/// What the state query returned: the mark now, plus who else is writing.
pub(super) struct State {
    pub(super) mark: Mark,
    pub(super) triggers: u64,
    pub(super) ids: BTreeMap<String, u64>,
    pub(super) writers: Vec<String>,
}

impl Capture {
    /// The state now: undo positions, counters, fingerprint, installed triggers, and the
    /// other sessions inside a write transaction on this database. One round trip.
    pub(super) fn state(&self, conn: &mut Conn, read: Read) -> Result<State> {
        let db = lit(&self.database);
        let seqs = if self.tables.is_empty() {
            "SELECT 0".to_owned()
        } else {
            let parts: Vec<String> = self
                .tables
                .iter()
                .map(|t| {
                    Ok(format!(
                        "(SELECT COALESCE(MAX(`_vq_seq`), 0) FROM {}.{})",
                        q(&self.database)?,
                        q(&t.undo)?
                    ))
                })
                .collect::<Result<_>>()?;
            format!("SELECT {}", parts.join(", "))
        };
        // Each part is read only when asked for: the trigger count (several milliseconds
        // on MariaDB, which parses every trigger) and the schema are not needed on the
        // hot path of a nested checkpoint.
        let nothing = "SELECT NULL, NULL FROM DUAL WHERE FALSE";
        let schema = if read.schema {
            format!(
                "SELECT MD5(GROUP_CONCAT(CONCAT_WS(0x1f, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COALESCE(COLUMN_DEFAULT, 0x00), EXTRA) ORDER BY TABLE_NAME, ORDINAL_POSITION SEPARATOR 0x1e))
                   FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} AND TABLE_NAME NOT LIKE '\\_vq\\_%' AND COLUMN_NAME <> '{ROWID}'"
            )
        } else {
            nothing.to_owned()
        };
        let triggers = if read.triggers {
            format!("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db} AND TRIGGER_NAME LIKE '\\_vq\\_%'")
        } else {
            nothing.to_owned()
        };
        let writers = if read.writers {
            format!(
                "SELECT t.trx_mysql_thread_id, COALESCE(p.USER, ''), COALESCE(p.HOST, ''), COALESCE(t.trx_query, ''), t.trx_rows_modified
                   FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
                  WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND (p.DB = {db} OR p.DB IS NULL) AND (t.trx_rows_modified > 0 OR t.trx_query IS NOT NULL)"
            )
        } else {
            nothing.to_owned()
        };
        let ids = match (&self.ids_sql, read.schema) {
            (Some(sql), true) => sql.clone(),
            _ => nothing.to_owned(),
        };
        let sql = format!(
            "SET SESSION group_concat_max_len = 1073741824;
             {schema};
             {triggers};
             {seqs};
             SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_NAME NOT LIKE '\\_vq\\_%';
             {writers};
             {ids}"
        );
        let mut results = sets(conn, &sql).map_err(|e| failed("reading the capture state", e))?;
        // The SET's empty result comes first.
        if results.len() == 7 {
            results.remove(0);
        }
        let [fp, triggers, seqs, counters, writers, ids]: [Vec<Row>; 6] =
            results.try_into().map_err(|_| {
                Error::backend(NAME, "reading the capture state", "expected 6 result sets")
            })?;
        let ids: BTreeMap<String, u64> = ids
            .iter()
            .filter_map(|r| Some((r.as_ref(0).map(text)?, r.as_ref(1).and_then(u64_of)?)))
            .filter(|(name, _)| !name.starts_with(PREFIX))
            .collect();
        let first = |rows: &[Row]| {
            rows.first()
                .and_then(|r| r.as_ref(0))
                .cloned()
                .unwrap_or(Value::NULL)
        };
        let mut fingerprint = text(&first(&fp));
        for (name, id) in &ids {
            write!(fingerprint, "|{name}:{id}").expect("write to a String");
        }
        let triggers = u64_of(&first(&triggers)).unwrap_or(0);
        let seqs: Vec<u64> = match seqs.first() {
            Some(row) if !self.tables.is_empty() => (0..self.tables.len())
                .map(|i| row.as_ref(i).and_then(u64_of).unwrap_or(0))
                .collect(),
            _ => Vec::new(),
        };
        let by_name: HashMap<String, Option<u64>> = counters
            .iter()
            .map(|r| {
                (
                    r.as_ref(0).map(text).unwrap_or_default(),
                    r.as_ref(1).and_then(u64_of),
                )
            })
            .collect();
        let counters = self
            .tables
            .iter()
            .map(|t| by_name.get(&t.name).copied().flatten())
            .collect();
        let writers = writers
            .iter()
            .map(|r| {
                let v = |i| r.as_ref(i).map(text).unwrap_or_default();
                // Another session's statement may hold secrets: its shape only.
                let query = mask_literals(&v(3), 80);
                format!(
                    "connection {} ({}@{}, {} rows changed{})",
                    v(0),
                    v(1),
                    v(2),
                    v(4),
                    if query.is_empty() {
                        String::new()
                    } else {
                        format!(", running `{query}`")
                    }
                )
            })
            .collect();
        Ok(State {
            mark: Mark {
                seqs,
                counters,
                fingerprint,
                content: None,
            },
            triggers,
            ids,
            writers,
        })
    }

    /// Waits until no other session of the database is inside a write transaction, up to
    /// the quiescence timeout; returns the state then.
    /// Reads each undo log's position past `since` (its end, for a new mark) with locking
    /// reads, inside a transaction left open: they wait for other sessions' uncommitted
    /// changes to captured tables (whose log entries they hold locked), so no mark falls
    /// between two transactions' entries and no rollback misses one. The wait is bounded by
    /// the quiescence timeout; then the error names the sessions still writing.
    ///
    /// With `content`, the same round trip then reads every table's [`Content`] (after the
    /// locking reads, so it is the data at exactly those positions: no other session can
    /// log a change until this transaction ends).
    pub(super) fn locked_positions(
        &self,
        conn: &mut Conn,
        since: &[u64],
        operation: &str,
        content: bool,
    ) -> Result<(Vec<u64>, Option<Vec<Content>>)> {
        let wait = self.quiescence.as_secs_f64().ceil().max(1.0) as u64;
        let mut sql = format!("SET SESSION innodb_lock_wait_timeout = {wait}; START TRANSACTION;");
        for (i, table) in self.tables.iter().enumerate() {
            write!(
                sql,
                " SELECT COUNT(*), COALESCE(MAX(`_vq_seq`), 0) FROM {}.{} WHERE `_vq_seq` > {} FOR UPDATE;",
                q(&self.database)?,
                q(&table.undo)?,
                since[i]
            )
            .expect("write to a String");
        }
        let all: Vec<usize> = (0..self.tables.len()).collect();
        let content_sql = if content {
            self.content_sql(&all, self.proof == CaptureProof::Digest)?
        } else {
            None
        };
        if let Some(read) = &content_sql {
            write!(sql, " {read};").expect("write to a String");
        }
        match sets(conn, &sql) {
            Ok(results) => {
                let positions = results
                    .iter()
                    .skip(2)
                    .zip(since)
                    .map(|(rows, &from)| {
                        rows.first()
                            .and_then(|r| r.as_ref(1))
                            .and_then(u64_of)
                            .unwrap_or(0)
                            .max(from)
                    })
                    .collect();
                let content = match content_sql {
                    Some(_) => {
                        let rows = results.get(2 + self.tables.len());
                        let read = rows.and_then(|rows| Self::parse_content(rows, all.len()));
                        if read.is_none() {
                            let _ = run(conn, "ROLLBACK");
                            return Err(Error::backend(
                                NAME,
                                operation,
                                "reading the captured tables' row counts returned no row",
                            ));
                        }
                        read
                    }
                    None if content && self.tables.is_empty() => Some(Vec::new()),
                    None => None,
                };
                Ok((positions, content))
            }
            Err(e) => {
                let _ = run(conn, "ROLLBACK");
                if matches!(&e, mysql::Error::MySqlError(s) if s.code == 1205) {
                    let writers = self
                        .state(conn, Read::WRITERS)
                        .map(|s| s.writers)
                        .unwrap_or_default();
                    return Err(writers_busy(
                        NAME,
                        operation,
                        &format!("uncommitted changes for {wait} s"),
                        &writers,
                    ));
                }
                Err(lost_or(operation, e))
            }
        }
    }

    /// A checkpoint: the counters, and the log positions read with locks (waiting for
    /// other sessions' uncommitted changes). The schema is checked when the session
    /// begins and at every rollback, not here (it is the expensive part).
    ///
    /// Also each table's exact row count (and digest, with `capture_proof: digest`), in the
    /// round trip of the locking reads, for the proof inside the rollback.
    pub(crate) fn mark(&self, conn: &mut Conn, operation: &str) -> Result<Mark> {
        let state = self.state(conn, Read::COUNTERS)?;
        let (seqs, content) =
            self.locked_positions(conn, &vec![0; self.tables.len()], operation, true)?;
        run(conn, "COMMIT").map_err(|e| lost_or(operation, e))?;
        Ok(Mark {
            seqs,
            fingerprint: self.fingerprint.clone(),
            content,
            ..state.mark
        })
    }

    /// One `SELECT` of the [`Content`] of the tables at `indexes` (one column each), or
    /// `None` for no table. A digest is `count:sum` of the first 60 bits of an MD5 of every
    /// row: all its columns but [`ROWID`], each with a null flag (so NULL and '' differ),
    /// as binary strings (so no collation is involved), summed exactly (DECIMAL), so the
    /// order of the rows does not matter.
    pub(super) fn content_sql(&self, indexes: &[usize], digest: bool) -> Result<Option<String>> {
        if indexes.is_empty() {
            return Ok(None);
        }
        let db = q(&self.database)?;
        let mut parts = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let table = &self.tables[i];
            let t = format!("{db}.{}", q(&table.name)?);
            if digest {
                let mut fields = Vec::new();
                for c in table.columns.iter().filter(|c| c.name != ROWID) {
                    let c = q(&c.name)?;
                    fields.push(format!("ISNULL({c}), CAST({c} AS BINARY)"));
                }
                parts.push(format!(
                    "(SELECT CONCAT(COUNT(*), ':', COALESCE(SUM(CAST(CONV(LEFT(MD5(CONCAT_WS(0x1f, {})), 15), 16, 10) AS UNSIGNED)), 0)) FROM {t})",
                    fields.join(", ")
                ));
            } else {
                parts.push(format!("(SELECT COUNT(*) FROM {t})"));
            }
        }
        Ok(Some(format!("SELECT {}", parts.join(", "))))
    }

    /// The [`Content`]s of a [`content_sql`](Self::content_sql) result of `n` tables.
    pub(super) fn parse_content(rows: &[Row], n: usize) -> Option<Vec<Content>> {
        let row = rows.first()?;
        (0..n).map(|i| Content::parse(row.as_ref(i)?)).collect()
    }
}
