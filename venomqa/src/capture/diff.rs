//! The row-level record of what changed since a checkpoint, by any connection.

use std::fmt;

/// The net change of one row since the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The row did not exist at the checkpoint and exists now.
    Inserted,
    /// The row existed at the checkpoint and exists now with other values.
    Updated,
    /// The row existed at the checkpoint and is gone.
    Deleted,
}

/// One row's net change since the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowChange {
    /// What happened to it.
    pub kind: ChangeKind,
    /// Its key, shown as `column=value` pairs (`id=5`), or `row n` for a keyless row.
    pub key: String,
    /// For an update: the columns whose values differ, with the old and the new value.
    pub columns: Vec<ColumnChange>,
    /// Whether a foreign-key cascade made the change (not a statement on this table).
    pub cascade: bool,
}

/// One column of an updated row: its value at the checkpoint and now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ColumnChange {
    /// The column's name.
    pub column: String,
    /// The value at the checkpoint, as text (`NULL` for a null).
    pub old: String,
    /// The value now, as text.
    pub new: String,
}

/// One table's (or collection's, or key space's) net changes since the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TableDiff {
    /// The table's name.
    pub table: String,
    /// Rows that exist now and did not at the checkpoint.
    pub inserted: u64,
    /// Rows that exist both then and now, with other values.
    pub updated: u64,
    /// Rows that existed at the checkpoint and are gone.
    pub deleted: u64,
    /// The changed rows, up to a limit (see [`omitted`](Self::omitted)).
    pub rows: Vec<RowChange>,
    /// How many changed rows are counted but not listed in [`rows`](Self::rows).
    pub omitted: u64,
}

impl TableDiff {
    /// A table with no changes yet.
    pub fn new(table: impl Into<String>) -> Self {
        TableDiff {
            table: table.into(),
            ..TableDiff::default()
        }
    }

    /// Counts `change` and lists it while fewer than `limit` rows are listed.
    pub fn push(&mut self, change: RowChange, limit: usize) {
        match change.kind {
            ChangeKind::Inserted => self.inserted += 1,
            ChangeKind::Updated => self.updated += 1,
            ChangeKind::Deleted => self.deleted += 1,
        }
        if self.rows.len() < limit {
            self.rows.push(change);
        } else {
            self.omitted += 1;
        }
    }

    /// Whether nothing changed in it.
    pub fn is_empty(&self) -> bool {
        self.inserted + self.updated + self.deleted == 0
    }
}

/// Everything that changed since a checkpoint, table by table (only tables that changed).
///
/// `Display` is one line: `orders +1; users ~1 (#5 email); order_items -3 (cascade)`.
///
/// ```
/// use venomqa::capture::{ChangeKind, Diff, RowChange, TableDiff};
///
/// let mut orders = TableDiff::new("orders");
/// orders.push(RowChange::new(ChangeKind::Inserted, "id=7"), 10);
/// let diff = Diff::from_tables(vec![orders, TableDiff::new("users")]);
/// assert_eq!(diff.to_string(), "orders +1 (id=7)");
/// assert_eq!(diff.tables().len(), 1, "tables without changes are left out");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Diff {
    tables: Vec<TableDiff>,
}

impl ColumnChange {
    /// Column `column` changed from `old` to `new`.
    pub fn new(column: impl Into<String>, old: impl Into<String>, new: impl Into<String>) -> Self {
        ColumnChange {
            column: column.into(),
            old: old.into(),
            new: new.into(),
        }
    }
}

impl RowChange {
    /// A change of `kind` to the row with key `key`, with no column detail.
    pub fn new(kind: ChangeKind, key: impl Into<String>) -> Self {
        RowChange {
            kind,
            key: key.into(),
            columns: Vec::new(),
            cascade: false,
        }
    }
}

impl Diff {
    /// A diff of these tables, leaving out the ones without changes.
    pub fn from_tables(tables: Vec<TableDiff>) -> Self {
        Diff {
            tables: tables.into_iter().filter(|t| !t.is_empty()).collect(),
        }
    }

    /// The tables that changed, in the backend's order.
    pub fn tables(&self) -> &[TableDiff] {
        &self.tables
    }

    /// The changes of `table`, if it changed.
    pub fn table(&self, table: &str) -> Option<&TableDiff> {
        self.tables.iter().find(|t| t.table == table)
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tables.is_empty() {
            return f.write_str("no changes");
        }
        for (i, t) in self.tables.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&t.table)?;
            for (n, sign) in [(t.inserted, '+'), (t.updated, '~'), (t.deleted, '-')] {
                if n > 0 {
                    write!(f, " {sign}{n}")?;
                }
            }
            let shown: Vec<String> = t
                .rows
                .iter()
                .take(3)
                .map(|r| {
                    let mut s = r.key.clone();
                    if !r.columns.is_empty() {
                        let cols: Vec<&str> = r.columns.iter().map(|c| c.column.as_str()).collect();
                        s.push_str(&format!(" {}", cols.join(",")));
                    }
                    if r.cascade {
                        s.push_str(" by cascade");
                    }
                    s
                })
                .collect();
            if !shown.is_empty() {
                let more = t.rows.len() as u64 + t.omitted - shown.len() as u64;
                write!(f, " ({}", shown.join(", "))?;
                if more > 0 {
                    write!(f, ", {more} more")?;
                }
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_summary() {
        let mut users = TableDiff::new("users");
        let mut change = RowChange::new(ChangeKind::Updated, "id=5");
        change.columns.push(ColumnChange {
            column: "email".into(),
            old: "a".into(),
            new: "b".into(),
        });
        users.push(change, 10);
        let mut items = TableDiff::new("order_items");
        for i in 0..5 {
            let mut c = RowChange::new(ChangeKind::Deleted, format!("id={i}"));
            c.cascade = true;
            items.push(c, 4);
        }
        let diff = Diff::from_tables(vec![users, items]);
        assert_eq!(
            diff.to_string(),
            "users ~1 (id=5 email); order_items -5 (id=0 by cascade, id=1 by cascade, id=2 by cascade, 2 more)"
        );
        assert_eq!(diff.table("order_items").unwrap().omitted, 1);
        assert_eq!(Diff::default().to_string(), "no changes");
    }
}
