//! The statements that restore one PostgreSQL table to a mark: the first logged change
//! of each key, the rows to delete, the images to insert (or upsert), and a keyless
//! table restored as a multiset of whole rows.

use std::fmt::Write as _;

use super::introspect::Table;
use super::marks::Mark;
use super::{q, Capture};

impl Capture {
    /// The first logged change of each key after `mark`: `(key columns, _vq_op, image)`.
    pub(super) fn first_changes(&self, table: &Table, mark: &Mark) -> String {
        let key = table
            .key
            .iter()
            .map(|k| q(k))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "(SELECT DISTINCT ON ({key}) * FROM {} WHERE {} ORDER BY {key}, _vq_seq)",
            table.undo_qualified(),
            mark.after()
        )
    }

    /// Deletes rows a logged change touched: all of them, or with `created_only` those
    /// that did not exist at the mark.
    pub(super) fn delete_rows(&self, table: &Table, mark: &Mark, created_only: bool) -> String {
        let filter = if created_only {
            " WHERE e._vq_op IN ('I', 'N')"
        } else {
            ""
        };
        format!(
            " DELETE FROM {} t USING (SELECT {} FROM {} e{filter}) x WHERE ({}) = ({});",
            table.qualified(),
            table.key_of("e"),
            self.first_changes(table, mark),
            table.key_of("t"),
            table.key_of("x"),
        )
    }

    /// Inserts each row that existed at the mark as it was then (its first change after
    /// the mark was an update or delete of it). With `upsert`, a row that still exists is
    /// updated in place instead (no delete, so no cascade fires).
    pub(super) fn insert_images(&self, table: &Table, mark: &Mark, upsert: bool) -> String {
        let mut sql = format!(
            " INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} e WHERE e._vq_op IN ('U', 'D')",
            table.qualified(),
            table.cols(""),
            table.cols("e"),
            self.first_changes(table, mark)
        );
        if upsert {
            let set: Vec<String> = table
                .columns
                .iter()
                .filter(|c| !c.identity && !table.key.contains(&c.name))
                .map(|c| format!("{0} = EXCLUDED.{0}", q(&c.name)))
                .collect();
            let key = table
                .key
                .iter()
                .map(|k| q(k))
                .collect::<Vec<_>>()
                .join(", ");
            if set.is_empty() {
                write!(sql, " ON CONFLICT ({key}) DO NOTHING").expect("write to a String");
            } else {
                write!(sql, " ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
                    .expect("write to a String");
            }
        }
        sql.push(';');
        sql
    }

    /// A keyless table as a multiset of whole rows. Per row value, the log after `mark`
    /// gives its net change: +1 for every image that appeared (an insert, an update's new
    /// row), -1 for every image that went (a delete, an update's old row). A value with a
    /// positive net loses that many copies; one with a negative net gets that many copies
    /// back. A row that appeared and went again (inserted then deleted, updated twice,
    /// deleted by a cascade) nets to zero and is left alone.
    pub(super) fn restore_keyless(&self, table: &Table, mark: &Mark) -> String {
        let (t, u) = (table.qualified(), table.undo_qualified());
        let after = mark.after();
        let net = format!(
            "SELECT {r} AS r, sum(CASE WHEN u._vq_op IN ('I', 'N') THEN 1 ELSE -1 END) AS net FROM {u} u WHERE {after} GROUP BY 1",
            r = table.row_text("u"),
        );
        // The rows that may have to go: with the row-hash index, only those whose hash
        // is one the log holds; without it, the whole table.
        let candidates = if table.hashed {
            format!(
                " WHERE {} = ANY (ARRAY(SELECT {} FROM {u} u WHERE {after} AND u._vq_op IN ('I', 'N')))",
                table.row_hash("t"),
                table.row_hash("u"),
            )
        } else {
            String::new()
        };
        format!(
            " DELETE FROM {t} WHERE ctid IN (SELECT x.ctid FROM (SELECT t.ctid, {rt} AS r, row_number() OVER (PARTITION BY {rt} ORDER BY t.ctid) AS rn FROM {t} t{candidates}) x
                 JOIN ({net}) g ON g.r = x.r WHERE g.net > 0 AND x.rn <= g.net);
              INSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE SELECT {ecols} FROM (SELECT DISTINCT ON ({ru}) * FROM {u} u WHERE {after} AND u._vq_op IN ('U', 'D') ORDER BY {ru}, u._vq_seq) e
                 JOIN ({net}) g ON g.r = {re} CROSS JOIN LATERAL generate_series(1, -g.net) WHERE g.net < 0;",
            rt = table.row_text("t"),
            ru = table.row_text("u"),
            re = table.row_text("e"),
            cols = table.cols(""),
            ecols = table.cols("e"),
        )
    }
}
