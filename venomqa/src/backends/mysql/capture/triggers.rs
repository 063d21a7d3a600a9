//! The DDL of capture's triggers on MySQL: the row triggers that log every change of a
//! table, and the `BEFORE` triggers on parents that log what an InnoDB foreign-key
//! cascade (which fires no trigger) changes in their children.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::introspect::{Action, ForeignKey, Table};
use super::{q, Capture};
use crate::backends::sql_capture::{object_name, MYSQL_NAMES};
use crate::error::Result;

impl Capture {
    /// `AFTER INSERT / UPDATE / DELETE` triggers logging `table`'s rows.
    pub(super) fn row_triggers(&self, table: &Table) -> Result<Vec<String>> {
        let db = q(&self.database)?;
        let undo = format!("{db}.{}", q(&table.undo)?);
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| q(&c.name))
            .collect::<Result<_>>()?;
        let new_keys: Vec<String> = table
            .key
            .iter()
            .map(|k| q(&Table::new_key(k)))
            .collect::<Result<_>>()?;
        let of = |row: &str, names: &[String]| -> Result<String> {
            Ok(names
                .iter()
                .map(|n| Ok(format!("{row}.{}", q(n)?)))
                .collect::<Result<Vec<_>>>()?
                .join(", "))
        };
        let col_names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        let insert = |op: &str, new_key: &str, image: &str| {
            format!(
                "INSERT INTO {undo} (`_vq_op`, {}, {}) VALUES ('{op}', {new_key}, {image})",
                new_keys.join(", "),
                cols.join(", ")
            )
        };
        let nulls = vec!["NULL"; table.key.len()].join(", ");
        let mut out = Vec::new();
        for (suffix, event, op, new_key, image) in [
            (
                "_ai",
                "INSERT",
                "I",
                of("NEW", &table.key)?,
                of("NEW", &col_names)?,
            ),
            (
                "_au",
                "UPDATE",
                "U",
                of("NEW", &table.key)?,
                of("OLD", &col_names)?,
            ),
            ("_ad", "DELETE", "D", nulls.clone(), of("OLD", &col_names)?),
        ] {
            out.push(format!(
                "CREATE TRIGGER {db}.{} AFTER {event} ON {db}.{} FOR EACH ROW BEGIN IF @venomqa_replay IS NULL THEN {}; END IF; END",
                q(&object_name(MYSQL_NAMES, "_vq_", &table.name, suffix))?,
                q(&table.name)?,
                insert(op, &new_key, &image)
            ));
        }
        Ok(out)
    }

    /// `BEFORE DELETE / UPDATE` triggers on parents, logging the rows their cascades change
    /// (children, and their children through further cascades).
    pub(super) fn cascade_triggers(&self) -> Result<Vec<String>> {
        let db = q(&self.database)?;
        let mut out = Vec::new();
        for (event, suffix) in [("DELETE", "_bd"), ("UPDATE", "_bu")] {
            let parents: BTreeSet<&str> = self
                .fks
                .iter()
                .filter(|f| self.action(f, event) != Action::Other)
                .map(|f| f.parent.as_str())
                .collect();
            for parent in parents {
                let mut body = Vec::new();
                self.cascade_logs(parent, event, &mut Vec::new(), &mut body)?;
                if body.is_empty() {
                    continue;
                }
                out.push(format!(
                    "CREATE TRIGGER {db}.{} BEFORE {event} ON {db}.{} FOR EACH ROW BEGIN IF @venomqa_replay IS NULL THEN {}; END IF; END",
                    q(&object_name(MYSQL_NAMES, "_vq_", parent, suffix))?,
                    q(parent)?,
                    body.join("; ")
                ));
            }
        }
        Ok(out)
    }

    pub(super) fn action(&self, fk: &ForeignKey, event: &str) -> Action {
        if event == "DELETE" {
            fk.on_delete
        } else {
            fk.on_update
        }
    }

    /// The statements logging what a cascade from the row `OLD` of `path`'s first table
    /// changes. `path` is the chain of foreign keys followed so far (to the current
    /// table), empty at the parent itself.
    pub(super) fn cascade_logs(
        &self,
        table: &str,
        event: &str,
        path: &mut Vec<ForeignKey>,
        body: &mut Vec<String>,
    ) -> Result<()> {
        if path.len() >= 4 {
            return Ok(());
        }
        // Only the first hop can be an UPDATE cascade (it changes the child's key columns,
        // which a further ON UPDATE cascade would follow; kept to one hop, documented).
        let event_here = if path.is_empty() { event } else { "DELETE" };
        for fk in self.fks.iter().filter(|f| f.parent == table) {
            let action = self.action(fk, event_here);
            if action == Action::Other || path.iter().any(|p| p.child == fk.child) {
                continue;
            }
            let Some(child) = self.table(&fk.child) else {
                continue;
            };
            path.push(fk.clone());
            body.push(self.cascade_log(child, path, event, action)?);
            if action == Action::Cascade && event_here == "DELETE" {
                self.cascade_logs(&fk.child, event, path, body)?;
            }
            path.pop();
        }
        Ok(())
    }

    /// One `INSERT INTO undo SELECT` of the rows of `child` that the cascade along `path`
    /// changes, where `action` is the last hop's rule.
    pub(super) fn cascade_log(
        &self,
        child: &Table,
        path: &[ForeignKey],
        event: &str,
        action: Action,
    ) -> Result<String> {
        let db = q(&self.database)?;
        // Aliases t0 (the first child) .. tn (this child), joined along the path; the
        // first hop is tied to the parent's row OLD.
        let first = &path[0];
        let mut joins = format!("{db}.{} t0", q(&first.child)?);
        for (i, fk) in path.iter().enumerate().skip(1) {
            let conds: Vec<String> = fk
                .child_cols
                .iter()
                .zip(&fk.parent_cols)
                .map(|(c, p)| Ok(format!("t{i}.{} = t{}.{}", q(c)?, i - 1, q(p)?)))
                .collect::<Result<_>>()?;
            write!(
                joins,
                " JOIN {db}.{} t{i} ON {}",
                q(&fk.child)?,
                conds.join(" AND ")
            )
            .expect("write to a String");
        }
        let mut wheres: Vec<String> = first
            .child_cols
            .iter()
            .zip(&first.parent_cols)
            .map(|(c, p)| Ok(format!("t0.{} = OLD.{}", q(c)?, q(p)?)))
            .collect::<Result<_>>()?;
        if event == "UPDATE" {
            // Only when a referenced column really changes.
            let changed: Vec<String> = first
                .parent_cols
                .iter()
                .map(|p| Ok(format!("NOT (OLD.{0} <=> NEW.{0})", q(p)?)))
                .collect::<Result<_>>()?;
            wheres.push(format!("({})", changed.join(" OR ")));
        }
        let last = format!("t{}", path.len() - 1);
        let cols: Vec<String> = child
            .columns
            .iter()
            .map(|c| q(&c.name))
            .collect::<Result<_>>()?;
        let image: Vec<String> = child
            .columns
            .iter()
            .map(|c| Ok(format!("{last}.{}", q(&c.name)?)))
            .collect::<Result<_>>()?;
        let new_keys: Vec<String> = child
            .key
            .iter()
            .map(|k| q(&Table::new_key(k)))
            .collect::<Result<_>>()?;
        let hop_event = if path.len() == 1 { event } else { "DELETE" };
        let (op, new_key_values): (&str, Vec<String>) = match (action, hop_event) {
            (Action::Cascade, "DELETE") => ("D", vec!["NULL".to_owned(); child.key.len()]),
            (Action::Cascade, _) => {
                // An UPDATE cascade changes the child's referencing columns to the
                // parent's new values; its key changes with them when they are part of it.
                let fk = &path[0];
                let values = child
                    .key
                    .iter()
                    .map(|k| {
                        Ok(match fk.child_cols.iter().position(|c| c == k) {
                            Some(i) => format!("NEW.{}", q(&fk.parent_cols[i])?),
                            None => format!("{last}.{}", q(k)?),
                        })
                    })
                    .collect::<Result<_>>()?;
                ("U", values)
            }
            // SET NULL: the row stays where it is (a key column cannot be set to NULL).
            _ => (
                "U",
                child
                    .key
                    .iter()
                    .map(|k| Ok(format!("{last}.{}", q(k)?)))
                    .collect::<Result<_>>()?,
            ),
        };
        Ok(format!(
            "INSERT INTO {db}.{} (`_vq_op`, `_vq_cascade`, {}, {}) SELECT '{op}', 1, {}, {} FROM {joins} WHERE {}",
            q(&child.undo)?,
            new_keys.join(", "),
            cols.join(", "),
            new_key_values.join(", "),
            image.join(", "),
            wheres.join(" AND ")
        ))
    }
}
