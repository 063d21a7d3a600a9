//! What capture reads of the captured PostgreSQL schemas: their tables (columns, primary
//! keys, the app's own triggers, capture's row-hash indexes), the foreign keys between
//! them in an order that puts parents first, and their sequences; and the SQL
//! expressions a table's rows are named and hashed by.

use std::collections::HashMap;
use std::time::Duration;

use postgres::Client;

use super::{failed, q, run, Capture};
use crate::backends::sql_capture::{object_name, POSTGRES_NAMES};
use crate::capture::proof::CaptureProof;
use crate::error::Result;

#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    /// `format_type(atttypid, atttypmod)`, such as `character varying(100)`.
    pub(super) ty: String,
    /// An identity column (`GENERATED .. AS IDENTITY`): never in an upsert's SET list.
    pub(super) identity: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) schema: String,
    pub(super) name: String,
    pub(super) undo: String,
    pub(super) columns: Vec<Column>,
    /// The primary key's columns; empty for a keyless table.
    pub(super) key: Vec<String>,
    /// A keyless table with the index `_vq_h_<table>` on the hash of its whole row: a
    /// restore finds the rows to delete through it instead of scanning the table.
    pub(super) hashed: bool,
    /// The app's own triggers on the table (not capture's), as (name, `tgenabled`): they
    /// would fire during a restore, so it turns them off for its transaction.
    pub(super) triggers: Vec<(String, char)>,
}

impl Table {
    pub(super) fn qualified(&self) -> String {
        format!("{}.{}", q(&self.schema), q(&self.name))
    }

    pub(super) fn undo_qualified(&self) -> String {
        format!("{}.{}", q(&self.schema), q(&self.undo))
    }

    pub(super) fn label(&self) -> String {
        if self.schema == "public" {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }

    pub(super) fn cols(&self, alias: &str) -> String {
        self.columns
            .iter()
            .map(|c| {
                if alias.is_empty() {
                    q(&c.name)
                } else {
                    format!("{alias}.{}", q(&c.name))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The whole row as text: the identity of a row of a keyless table (equal values
    /// give equal text; `1.0` and `1.00` do not, so they stay apart, as they are).
    pub(super) fn row_text(&self, alias: &str) -> String {
        format!("ROW({})::text", self.cols(alias))
    }

    /// The whole row's 64-bit hash: the expression the `_vq_h_` index is on.
    pub(super) fn row_hash(&self, alias: &str) -> String {
        format!("hash_record_extended(ROW({}), 0)", self.cols(alias))
    }

    pub(super) fn key_of(&self, alias: &str) -> String {
        self.key
            .iter()
            .map(|k| format!("{alias}.{}", q(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A foreign key between two captured tables (by index into `tables`).
#[derive(Debug, Clone)]
pub(super) struct ForeignKey {
    pub(super) child: usize,
    pub(super) parent: usize,
}

impl Capture {
    pub(super) fn read(
        client: &mut Client,
        schemas: &[String],
        quiescence: Duration,
        proof: CaptureProof,
    ) -> Result<Self> {
        let schemas: Vec<String> = schemas.to_vec();
        let rows = client
            .query(
                "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity <> '',
                        COALESCE(a.attnum = ANY (i.indkey), false)
                   FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                   LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
                  WHERE c.relkind = 'r' AND n.nspname = ANY ($1) AND c.relname NOT LIKE '\\_vq\\_%'
                  ORDER BY n.nspname, c.relname, a.attnum",
                &[&schemas],
            )
            .map_err(|e| failed("reading the schema for capture", e))?;
        let mut tables: Vec<Table> = Vec::new();
        for row in &rows {
            let (schema, name): (String, String) = (row.get(0), row.get(1));
            if tables
                .last()
                .is_none_or(|t| t.schema != schema || t.name != name)
            {
                tables.push(Table {
                    undo: object_name(POSTGRES_NAMES, "_vq_u_", &name, ""),
                    schema,
                    name,
                    columns: Vec::new(),
                    key: Vec::new(),
                    hashed: false,
                    triggers: Vec::new(),
                });
            }
            let table = tables.last_mut().expect("pushed above");
            let column: String = row.get(2);
            if row.get::<_, bool>(5) {
                table.key.push(column.clone());
            }
            table.columns.push(Column {
                name: column,
                ty: row.get(3),
                identity: row.get(4),
            });
        }
        // Primary key columns in key order.
        let keys = client
            .query(
                "SELECT n.nspname, c.relname, a.attname
                   FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace,
                        unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                   JOIN pg_attribute a ON a.attnum = k.attnum
                  WHERE i.indisprimary AND a.attrelid = c.oid AND n.nspname = ANY ($1)
                  ORDER BY n.nspname, c.relname, k.ord",
                &[&schemas],
            )
            .map_err(|e| failed("reading primary keys for capture", e))?;
        for table in &mut tables {
            table.key = keys
                .iter()
                .filter(|r| {
                    r.get::<_, String>(0) == table.schema && r.get::<_, String>(1) == table.name
                })
                .map(|r| r.get(2))
                .collect();
        }
        let index: HashMap<(String, String), usize> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.schema.clone(), t.name.clone()), i))
            .collect();
        // The app's own triggers, and capture's row-hash indexes.
        let extras = client
            .query(
                "SELECT n.nspname, c.relname, g.tgname, g.tgenabled::text, false
                   FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = ANY ($1) AND NOT g.tgisinternal AND g.tgname NOT LIKE '\\_vq\\_%'
                 UNION ALL
                 SELECT n.nspname, c.relname, ic.relname, '', true
                   FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                   JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = ANY ($1) AND ic.relname LIKE '\\_vq\\_h\\_%'
                  ORDER BY 1, 2, 3",
                &[&schemas],
            )
            .map_err(|e| failed("reading triggers and indexes for capture", e))?;
        for row in &extras {
            let Some(&i) = index.get(&(row.get(0), row.get(1))) else {
                continue;
            };
            if row.get::<_, bool>(4) {
                tables[i].hashed = true;
            } else {
                let enabled: String = row.get(3);
                tables[i]
                    .triggers
                    .push((row.get(2), enabled.chars().next().unwrap_or('O')));
            }
        }
        let fk_rows = client
            .query(
                "SELECT cn.nspname, c.relname, pn.nspname, p.relname
                   FROM pg_constraint k
                   JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
                   JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
                  WHERE k.contype = 'f' AND cn.nspname = ANY ($1)",
                &[&schemas],
            )
            .map_err(|e| failed("reading foreign keys for capture", e))?;
        let fks: Vec<ForeignKey> = fk_rows
            .iter()
            .filter_map(|r| {
                let child = *index.get(&(r.get(0), r.get(1)))?;
                let parent = *index.get(&(r.get(2), r.get(3)))?;
                Some(ForeignKey { child, parent })
            })
            .collect();
        let order = topological(tables.len(), &fks);
        let sequences = client
            .query(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'S' AND n.nspname = ANY ($1) AND c.relname NOT LIKE '\\_vq\\_%' ORDER BY 1, 2",
                &[&schemas],
            )
            .map_err(|e| failed("reading sequences for capture", e))?
            .iter()
            .map(|r| format!("{}.{}", q(r.get(0)), q(r.get(1))))
            .collect();
        // Whether the restore may turn triggers and foreign-key checks off.
        let replica = run(
            client,
            "BEGIN; SET LOCAL session_replication_role = replica; ROLLBACK",
        )
        .is_ok();
        if !replica {
            let _ = run(client, "ROLLBACK");
        }
        Ok(Capture {
            schemas,
            tables,
            order,
            sequences,
            fingerprint: String::new(),
            replica,
            quiescence,
            proof,
        })
    }

    pub(super) fn expected_triggers(&self) -> i64 {
        self.tables.len() as i64 * 4
    }
}

/// An SQL expression: the digest of `table`'s whole content, independent of row order
/// (the sum of the first 60 bits of every row's md5, then the row count).
pub(super) fn digest_of(table: &Table) -> String {
    format!(
        "(SELECT coalesce(sum(('x' || left(md5({}), 15))::bit(60)::bigint), 0)::text || '/' || count(*) FROM {} x)",
        table.row_text("x"),
        table.qualified()
    )
}

/// Tables in foreign-key order (a parent before its children); cycles keep their
/// original order.
pub(super) fn topological(n: usize, fks: &[ForeignKey]) -> Vec<usize> {
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    loop {
        let before = order.len();
        for i in 0..n {
            if placed[i] {
                continue;
            }
            let ready = fks
                .iter()
                .filter(|f| f.child == i && f.parent != i)
                .all(|f| placed[f.parent]);
            if ready {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == n {
            return order;
        }
        if order.len() == before {
            // A cycle: place the rest as they come.
            order.extend((0..n).filter(|&i| !placed[i]));
            return order;
        }
    }
}
