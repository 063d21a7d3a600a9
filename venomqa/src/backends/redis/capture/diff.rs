//! What changed in the app's database since a capture checkpoint, compared with its spare
//! in a script: keys inserted, deleted and updated.

use crate::backends::redis::{Redis, RedisConn};
use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::error::Result;

/// What changed since a checkpoint.
const DIFF: &str = concat!(
    include_str!("../scripts/capture_lib.lua"),
    include_str!("../scripts/capture_diff.lua")
);

/// How many changed keys a diff lists.
const DIFF_ROWS: usize = 20;

impl Redis {
    /// What changed in the app's database since the checkpoint held by spare `db`.
    pub(in crate::backends::redis) fn capture_diff(
        &self,
        conn: &mut RedisConn,
        db: i64,
    ) -> Result<Diff> {
        let what = "diff";
        let spare = conn.spare(db)?;
        let guards = conn.capture_guards(Some(spare));
        let args = [
            self.home_db.to_string(),
            db.to_string(),
            DIFF_ROWS.to_string(),
        ];
        let value = conn.eval(what, DIFF, &guards, &args)?;
        let (inserted, updated, deleted, rows): (u64, u64, u64, Vec<Vec<Vec<u8>>>) =
            ::redis::from_redis_value(value).map_err(|e| conn.driver_error(what, e.into()))?;
        let mut table = TableDiff::new(format!("db{}", self.home_db));
        // In key order (the script lists them in the server's hash order).
        let mut rows = rows;
        rows.sort_by(|a, b| a.get(1).cmp(&b.get(1)));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for row in rows {
            let kind = match row.first().map(Vec::as_slice) {
                Some(b"I") => ChangeKind::Inserted,
                Some(b"D") => ChangeKind::Deleted,
                _ => ChangeKind::Updated,
            };
            let mut change = RowChange::new(kind, row.get(1).map_or(String::new(), |k| text(k)));
            if kind == ChangeKind::Updated {
                for c in row[2..].chunks(3) {
                    if let [column, old, new] = c {
                        change
                            .columns
                            .push(ColumnChange::new(text(column), text(old), text(new)));
                    }
                }
            }
            table.push(change, DIFF_ROWS);
        }
        // The script counted every change and listed a few.
        let listed = table.inserted + table.updated + table.deleted;
        table.omitted = (inserted + updated + deleted).saturating_sub(listed);
        table.inserted = inserted;
        table.updated = updated;
        table.deleted = deleted;
        Ok(Diff::from_tables(vec![table]))
    }
}
