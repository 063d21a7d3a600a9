//! `reset()` on PostgreSQL: the tables it empties (refusing when a table outside the set
//! references one inside it) and the one `TRUNCATE .. RESTART IDENTITY` that empties
//! them.

use ::postgres::Client;

use super::errors::{fail, Stage};
use super::{Postgres, NAME};
use crate::error::{Error, Result};
use crate::sql::quote_double;

impl Postgres {
    /// The tables `reset()` empties, as `(oid, schema, table)`, after checking that no
    /// table outside the set references one inside it.
    pub(super) fn reset_plan(&self, client: &mut Client) -> Result<Vec<(u32, String, String)>> {
        let schemas = self.schema_list();
        let rows = client
            .query(
                "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY($1) \
                 AND left(c.relname, 4) <> '_vq_' \
                 ORDER BY n.nspname, c.relname",
                &[&schemas],
            )
            .map_err(|e| fail(client, "reset (listing tables)", e, Stage::Other))?;
        let all: Vec<(u32, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let matches = |entry: &str, schema: &str, table: &str| {
            entry == table || entry == format!("{schema}.{table}")
        };

        let mut chosen: Vec<(u32, String, String)> = if self.options.tables_to_reset.is_empty() {
            all.clone()
        } else {
            let mut chosen = Vec::new();
            for entry in &self.options.tables_to_reset {
                let found: Vec<_> = all
                    .iter()
                    .filter(|(_, s, t)| matches(entry, s, t))
                    .collect();
                if found.is_empty() {
                    return Err(Error::backend(
                        NAME,
                        "reset",
                        format!(
                            "tables_to_reset names {entry:?}, but no table of schemas {schemas:?} is called that; \
                             fix the name (schema.table picks one schema) or add its schema to `schemas`. Nothing was changed"
                        ),
                    ));
                }
                for t in found {
                    if !chosen.contains(t) {
                        chosen.push(t.clone());
                    }
                }
            }
            chosen
        };
        chosen.retain(|(_, s, t)| !self.options.exclude_tables.iter().any(|e| matches(e, s, t)));
        if chosen.is_empty() {
            return Ok(chosen);
        }

        // Every foreign key whose referenced table (or its partition root) is in the set.
        let oids: Vec<u32> = chosen.iter().map(|(oid, _, _)| *oid).collect();
        let refs = client
            .query(
                "SELECT con.conname::text, rn.nspname::text, r.relname::text, fn.nspname::text, f.relname::text \
                 FROM pg_constraint con \
                 JOIN pg_class r ON r.oid = COALESCE(pg_partition_root(con.conrelid), con.conrelid) \
                 JOIN pg_namespace rn ON rn.oid = r.relnamespace \
                 JOIN pg_class f ON f.oid = COALESCE(pg_partition_root(con.confrelid), con.confrelid) \
                 JOIN pg_namespace fn ON fn.oid = f.relnamespace \
                 WHERE con.contype = 'f' AND f.oid = ANY($1) AND NOT (r.oid = ANY($1)) \
                 ORDER BY 2, 3, 1",
                &[&oids],
            )
            .map_err(|e| fail(client, "reset (checking foreign keys)", e, Stage::Other))?;
        if let Some(row) = refs.first() {
            let (constraint, from_schema, from_table): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let (to_schema, to_table): (String, String) = (row.get(3), row.get(4));
            let (from, to) = (
                format!("{from_schema}.{from_table}"),
                format!("{to_schema}.{to_table}"),
            );
            let excluded = self
                .options
                .exclude_tables
                .iter()
                .any(|e| matches(e, &from_schema, &from_table));
            let (why, fix) = if excluded {
                (
                    "is in exclude_tables",
                    "remove it from exclude_tables".to_owned(),
                )
            } else if schemas.contains(&from_schema) {
                (
                    "is not in tables_to_reset",
                    "add it to tables_to_reset".to_owned(),
                )
            } else {
                (
                    "is in a schema reset() does not cover",
                    format!("add schema {from_schema} to `schemas`"),
                )
            };
            return Err(Error::backend(
                NAME,
                "reset",
                format!(
                    "{from} references {to} ({constraint}) but {why}; nothing was changed (venomqa never uses \
                     TRUNCATE .. CASCADE): {fix}, or exclude {to} too"
                ),
            ));
        }
        Ok(chosen)
    }

    /// Empties the chosen tables of the chosen schemas with one
    /// `TRUNCATE .. RESTART IDENTITY` (never `CASCADE`), after rolling back a transaction
    /// the code under test left open. If a table outside the set has a foreign key to a
    /// table in it, fails naming both and changes nothing.
    pub(super) fn truncate_tables(&self, client: &mut Client) -> Result<()> {
        *self.sequence_list.lock() = None;
        // Outside a transaction this only warns.
        client.batch_execute("ROLLBACK").map_err(|e| {
            fail(
                client,
                "reset (ending an open transaction)",
                e,
                Stage::Other,
            )
        })?;
        let tables = self.reset_plan(client)?;
        if tables.is_empty() {
            return Ok(());
        }
        let names = tables
            .iter()
            .map(|(_, s, t)| {
                Ok(format!(
                    "{}.{}",
                    quote_double(NAME, s)?,
                    quote_double(NAME, t)?
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // With capture installed, the reset itself is not logged (its TRUNCATE is final).
        let sql = format!(
            "BEGIN; SET LOCAL venomqa.replay = 'on'; TRUNCATE TABLE {} RESTART IDENTITY; COMMIT",
            names.join(", ")
        );
        client.batch_execute(&sql).map_err(|e| {
            let operation = format!("reset (TRUNCATE of {} tables)", names.len());
            fail(client, &operation, e, Stage::Other)
        })
    }
}
