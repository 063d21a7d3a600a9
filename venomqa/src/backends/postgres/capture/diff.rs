//! [`Session::diff`](crate::Session::diff) on PostgreSQL: the capture log past a mark
//! read as a row-level diff.

use std::collections::HashMap;

use postgres::Client;

use super::introspect::Table;
use super::marks::Mark;
use super::{failed, q, sets, Capture};
use crate::backends::sql_capture::DIFF_ROWS;
use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::error::Result;

impl Capture {
    /// What changed since `mark`, row by row.
    pub(crate) fn diff(&self, client: &mut Client, mark: &Mark) -> Result<Diff> {
        let changed = self.changed(client, mark)?;
        let mut tables = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if changed[i] {
                tables.push(self.table_diff(client, table, mark)?);
            }
        }
        Ok(Diff::from_tables(tables))
    }

    pub(super) fn table_diff(
        &self,
        client: &mut Client,
        table: &Table,
        mark: &Mark,
    ) -> Result<TableDiff> {
        let mut diff = TableDiff::new(table.label());
        let n = table.columns.len();
        if table.key.is_empty() {
            // A keyless table: its log, statement by statement.
            let sql = format!(
                "SELECT _vq_op, count(*) FROM {} WHERE {} GROUP BY 1",
                table.undo_qualified(),
                mark.after()
            );
            for row in &sets(client, &sql).map_err(|e| failed("reading the capture log", e))?[0] {
                let count: u64 = row[1].as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
                let kind = match row[0].as_deref() {
                    Some("I") => ChangeKind::Inserted,
                    Some("D") => ChangeKind::Deleted,
                    Some("U") => ChangeKind::Updated,
                    _ => continue,
                };
                for _ in 0..count {
                    diff.push(RowChange::new(kind, "a keyless row"), DIFF_ROWS);
                }
            }
            return Ok(diff);
        }
        let sql = format!(
            "SELECT e._vq_op, {cols} FROM {first} e ORDER BY e._vq_seq;
             SELECT {tcols} FROM {t} t JOIN (SELECT DISTINCT {key} FROM {u} WHERE {after}) x ON ({tk}) = ({xk});",
            cols = table.cols("e"),
            first = self.first_changes(table, mark),
            tcols = table.cols("t"),
            t = table.qualified(),
            key = table.key.iter().map(|k| q(k)).collect::<Vec<_>>().join(", "),
            u = table.undo_qualified(),
            after = mark.after(),
            tk = table.key_of("t"),
            xk = table.key_of("x"),
        );
        let results = sets(client, &sql).map_err(|e| failed("reading the capture log", e))?;
        let key_pos: Vec<usize> = table
            .key
            .iter()
            .map(|k| {
                table
                    .columns
                    .iter()
                    .position(|c| &c.name == k)
                    .expect("a key is a column")
            })
            .collect();
        let key_of = |row: &[Option<String>]| -> Vec<Option<String>> {
            key_pos.iter().map(|&p| row[p].clone()).collect()
        };
        let current: HashMap<Vec<Option<String>>, Vec<Option<String>>> =
            results[1].iter().map(|r| (key_of(r), r.clone())).collect();
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".to_owned());
        for row in &results[0] {
            let op = row[0].clone().unwrap_or_default();
            let image = &row[1..=n];
            let k = key_of(image);
            let key = table
                .key
                .iter()
                .zip(&k)
                .map(|(c, v)| format!("{c}={}", show(v)))
                .collect::<Vec<_>>()
                .join(",");
            let existed = op == "U" || op == "D";
            let change = match (existed, current.get(&k)) {
                (false, Some(_)) => RowChange::new(ChangeKind::Inserted, key),
                (true, None) => RowChange::new(ChangeKind::Deleted, key),
                (true, Some(now)) => {
                    let mut change = RowChange::new(ChangeKind::Updated, key);
                    for (i, c) in table.columns.iter().enumerate() {
                        if image[i] != now[i] {
                            change.columns.push(ColumnChange::new(
                                c.name.clone(),
                                show(&image[i]),
                                show(&now[i]),
                            ));
                        }
                    }
                    if change.columns.is_empty() {
                        continue;
                    }
                    change
                }
                (false, None) => continue,
            };
            diff.push(change, DIFF_ROWS);
        }
        Ok(diff)
    }
}
