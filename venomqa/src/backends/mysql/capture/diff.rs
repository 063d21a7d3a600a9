//! [`Session::diff`](crate::Session::diff) on MySQL: the capture log past a mark read as
//! a row-level diff.

use std::collections::{BTreeSet, HashMap};

use mysql::prelude::Queryable;
use mysql::{Conn, Row, Value};

use super::introspect::Table;
use super::marks::{Mark, Read};
use super::{lost_or, q, text, u64_of, Capture, ROWID};
use crate::backends::sql_capture::DIFF_ROWS;
use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::error::Result;

impl Capture {
    /// What changed since `mark`, row by row.
    pub(crate) fn diff(&self, conn: &mut Conn, mark: &Mark) -> Result<Diff> {
        let state = self.state(conn, Read::COUNTERS)?;
        let mut tables = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if state.mark.seqs[i] <= mark.seqs[i] {
                continue;
            }
            tables.push(self.table_diff(conn, table, mark.seqs[i])?);
        }
        Ok(Diff::from_tables(tables))
    }

    pub(super) fn table_diff(
        &self,
        conn: &mut Conn,
        table: &Table,
        mark: u64,
    ) -> Result<TableDiff> {
        let db = q(&self.database)?;
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| q(&c.name))
            .collect::<Result<_>>()?;
        let new_key: Vec<String> = table
            .key
            .iter()
            .map(|k| q(&Table::new_key(k)))
            .collect::<Result<_>>()?;
        let entries: Vec<Row> = conn
            .query(format!(
                "SELECT `_vq_op`, `_vq_cascade`, {}, {} FROM {db}.{} WHERE `_vq_seq` > {mark} ORDER BY `_vq_seq`",
                new_key.join(", "),
                cols.join(", "),
                q(&table.undo)?
            ))
            .map_err(|e| lost_or("reading the capture log", e))?;
        let nk = table.key.len();
        let key_positions: Vec<usize> = table
            .key
            .iter()
            .map(|k| {
                table
                    .columns
                    .iter()
                    .position(|c| &c.name == k)
                    .expect("key is a column")
            })
            .collect();
        // Per key, in order of first appearance: did it exist at the mark (and as what),
        // and was its first change a cascade.
        let mut first: Vec<(Vec<Value>, Option<Vec<Value>>, bool)> = Vec::new();
        let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
        let id = |k: &[Value]| -> Vec<String> { k.iter().map(|v| v.as_sql(false)).collect() };
        for row in &entries {
            let vals: Vec<Value> = (0..row.len())
                .map(|i| row.as_ref(i).cloned().unwrap_or(Value::NULL))
                .collect();
            let op = text(&vals[0]);
            let cascade = u64_of(&vals[1]) == Some(1);
            let new_k: Vec<Value> = vals[2..2 + nk].to_vec();
            let image: Vec<Value> = vals[2 + nk..].to_vec();
            let old_k: Vec<Value> = key_positions.iter().map(|&p| image[p].clone()).collect();
            let keys: Vec<(Vec<Value>, Option<Vec<Value>>)> = match op.as_str() {
                "I" => vec![(new_k, None)],
                "U" => vec![(old_k, Some(image.clone())), (new_k, None)],
                _ => vec![(old_k, Some(image.clone()))],
            };
            for (k, at_mark) in keys {
                if k.contains(&Value::NULL) || !seen.insert(id(&k)) {
                    continue;
                }
                first.push((k, at_mark, cascade));
            }
        }
        // The current rows of those keys.
        let mut current: HashMap<Vec<String>, Vec<Value>> = HashMap::new();
        let key_cols: Vec<String> = table.key.iter().map(|k| q(k)).collect::<Result<_>>()?;
        for chunk in first.chunks(500) {
            let tuples: Vec<String> = chunk
                .iter()
                .map(|(k, _, _)| {
                    format!(
                        "({})",
                        k.iter()
                            .map(|v| v.as_sql(false))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect();
            let rows: Vec<Row> = conn
                .query(format!(
                    "SELECT {} FROM {db}.{} WHERE ({}) IN ({})",
                    cols.join(", "),
                    q(&table.name)?,
                    key_cols.join(", "),
                    tuples.join(", ")
                ))
                .map_err(|e| lost_or("reading changed rows", e))?;
            for row in rows {
                let vals: Vec<Value> = (0..row.len())
                    .map(|i| row.as_ref(i).cloned().unwrap_or(Value::NULL))
                    .collect();
                let k: Vec<Value> = key_positions.iter().map(|&p| vals[p].clone()).collect();
                current.insert(id(&k), vals);
            }
        }
        let mut diff = TableDiff::new(&table.name);
        for (k, at_mark, cascade) in first {
            let key = if table.keyless {
                format!("row {}", k.iter().map(text).collect::<Vec<_>>().join(","))
            } else {
                table
                    .key
                    .iter()
                    .zip(&k)
                    .map(|(c, v)| format!("{c}={}", text(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let now = current.get(&id(&k));
            let mut change = match (&at_mark, now) {
                (None, Some(_)) => RowChange::new(ChangeKind::Inserted, key),
                (Some(_), None) => RowChange::new(ChangeKind::Deleted, key),
                (Some(then), Some(now)) => {
                    let mut change = RowChange::new(ChangeKind::Updated, key);
                    for (i, c) in table.columns.iter().enumerate() {
                        if c.name != ROWID && then[i] != now[i] {
                            change.columns.push(ColumnChange::new(
                                c.name.clone(),
                                text(&then[i]),
                                text(&now[i]),
                            ));
                        }
                    }
                    if change.columns.is_empty() {
                        continue;
                    }
                    change
                }
                (None, None) => continue,
            };
            change.cascade = cascade;
            diff.push(change, DIFF_ROWS);
        }
        Ok(diff)
    }
}
