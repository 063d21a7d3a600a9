//! Capture isolation for PostgreSQL: roll back what any connection of any process wrote,
//! through an undo log that generated statement triggers fill.
//!
//! For every base table of the captured schemas, venomqa installs (once, reversibly,
//! under the reserved prefix `_vq_`):
//!
//! - an undo table `_vq_u_<table>` in the table's schema, with the table's columns (all
//!   nullable), a sequence number and the operation;
//! - `AFTER INSERT / UPDATE / DELETE` statement triggers with transition tables, which log
//!   whole statements set-based (an insert's new rows, an update's old and new rows, a
//!   delete's old rows), and a `BEFORE TRUNCATE` trigger that copies the table first. They
//!   are `SECURITY DEFINER` functions, so the app's role needs no privilege on the undo
//!   tables, and are skipped while the setting `venomqa.replay` is `on`. PostgreSQL fires
//!   them for foreign-key cascades too.
//!
//! Each log entry records its transaction's id. A checkpoint is a mark: the database's
//! snapshot (`pg_current_snapshot()`), every sequence's value, and a schema fingerprint.
//! The entries after a mark are exactly those whose transaction the snapshot does not see
//! (not yet committed when the mark was taken), so a transaction in flight at a checkpoint
//! is never cut in two. A rollback computes, per table, each touched row's state at the mark (the
//! image of its first change after the mark, if that change was an update or delete) and
//! restores it set-based in one transaction. With `session_replication_role = replica`
//! allowed (a superuser, or `GRANT SET ON PARAMETER session_replication_role` on
//! PostgreSQL 15+), triggers and foreign-key checks are off during the restore. Without
//! it, tables are restored in foreign-key order: rows back to their images (parents first,
//! an upsert), then rows created since deleted (children first); if that order hits a
//! unique conflict, the other order is tried. Keyless tables are restored as multisets of
//! whole rows. Sequences come back with `setval`. Then the rollback proves itself: the
//! log past the mark is empty, the sequences and the schema are as they were.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use postgres::{Client, SimpleQueryMessage};

use super::DriverError;

use crate::capture::diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};
use crate::util::fnv64;

const NAME: &str = "postgres";

/// Installed objects' layout version: a different one is reinstalled.
const VERSION: &str = "3";

/// How many rows of each table a diff lists.
const DIFF_ROWS: usize = 20;

/// `name` as a double-quoted identifier.
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A name of at most 63 bytes: `prefix + table + suffix`, shortened with a hash when the
/// table's name is too long.
fn object_name(prefix: &str, table: &str, suffix: &str) -> String {
    let full = format!("{prefix}{table}{suffix}");
    if full.len() <= 63 {
        return full;
    }
    let mut short = String::new();
    for c in table.chars() {
        if short.len() + c.len_utf8() > 36 {
            break;
        }
        short.push(c);
    }
    format!(
        "{prefix}{short}_{:08x}{suffix}",
        fnv64(table.as_bytes()) as u32
    )
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// `format_type(atttypid, atttypmod)`, such as `character varying(100)`.
    ty: String,
    /// An identity column (`GENERATED .. AS IDENTITY`): never in an upsert's SET list.
    identity: bool,
}

#[derive(Debug, Clone)]
struct Table {
    schema: String,
    name: String,
    undo: String,
    columns: Vec<Column>,
    /// The primary key's columns; empty for a keyless table.
    key: Vec<String>,
    /// A keyless table with the index `_vq_h_<table>` on the hash of its whole row: a
    /// restore finds the rows to delete through it instead of scanning the table.
    hashed: bool,
    /// The app's own triggers on the table (not capture's), as (name, `tgenabled`): they
    /// would fire during a restore, so it turns them off for its transaction.
    triggers: Vec<(String, char)>,
}

impl Table {
    fn qualified(&self) -> String {
        format!("{}.{}", q(&self.schema), q(&self.name))
    }

    fn undo_qualified(&self) -> String {
        format!("{}.{}", q(&self.schema), q(&self.undo))
    }

    fn label(&self) -> String {
        if self.schema == "public" {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }

    fn cols(&self, alias: &str) -> String {
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
    fn row_text(&self, alias: &str) -> String {
        format!("ROW({})::text", self.cols(alias))
    }

    /// The whole row's 64-bit hash: the expression the `_vq_h_` index is on.
    fn row_hash(&self, alias: &str) -> String {
        format!("hash_record_extended(ROW({}), 0)", self.cols(alias))
    }

    fn key_of(&self, alias: &str) -> String {
        self.key
            .iter()
            .map(|k| format!("{alias}.{}", q(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A foreign key between two captured tables (by index into `tables`).
#[derive(Debug, Clone)]
struct ForeignKey {
    child: usize,
    parent: usize,
}

/// The mark of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    /// `pg_current_snapshot()` as text: entries whose transaction it does not see are
    /// after the mark.
    snapshot: String,
    sequences: Vec<(i64, bool)>,
    fingerprint: String,
    /// Every table's row count at the mark (in `Capture::tables` order); empty for a mark
    /// a dead session left that recorded none.
    counts: Vec<i64>,
    /// With `capture_proof: digest`, every table's content digest at the mark.
    digests: Vec<String>,
}

impl Mark {
    /// The condition on an undo log's rows that are after this mark.
    fn after(&self) -> String {
        format!(
            "NOT pg_visible_in_snapshot(_vq_xid, {}::pg_snapshot)",
            lit(&self.snapshot)
        )
    }

    /// The condition on an undo log's rows that are before this mark.
    fn before(&self) -> String {
        format!(
            "pg_visible_in_snapshot(_vq_xid, {}::pg_snapshot)",
            lit(&self.snapshot)
        )
    }
}

struct State {
    mark: Mark,
    triggers: i64,
    writers: Vec<String>,
}

/// Capture of the chosen schemas of one database, as installed.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    schemas: Vec<String>,
    tables: Vec<Table>,
    /// Tables in foreign-key order: a parent before its children.
    order: Vec<usize>,
    /// Qualified, quoted names of the schemas' sequences.
    sequences: Vec<String>,
    fingerprint: String,
    /// Whether this role may set `session_replication_role = replica`.
    replica: bool,
    quiescence: Duration,
    proof: CaptureProof,
}

/// The SQLSTATE of a failed content proof inside the restore's transaction.
const PROOF_FAILED: &str = "VQ001";

fn failed(operation: &str, e: postgres::Error) -> Error {
    let hint = match e.code().map(|c| c.code()) {
        Some("42501") => Some("capture needs to own the tables (or have the TRIGGER privilege on them) and CREATE on their schemas"),
        _ => None,
    };
    let closed = e.is_closed();
    let e = DriverError::new(e, "");
    match hint {
        Some(needs) => Error::backend(NAME, format!("{operation} ({needs})"), e),
        None if closed => Error::connection_lost(
            NAME,
            operation,
            "the capture log is kept on the server, so the next session restores the recorded checkpoint",
            e,
        ),
        None => Error::backend(NAME, operation, e),
    }
}

/// Runs a (multi-statement) batch with the simple query protocol: one round trip.
fn run(client: &mut Client, sql: &str) -> std::result::Result<(), postgres::Error> {
    client.batch_execute(sql)
}

/// The rows of every statement of a batch, as text (the simple query protocol).
fn sets(
    client: &mut Client,
    sql: &str,
) -> std::result::Result<Vec<Vec<Vec<Option<String>>>>, postgres::Error> {
    let mut out = Vec::new();
    let mut current: Vec<Vec<Option<String>>> = Vec::new();
    for message in client.simple_query(sql)? {
        match message {
            SimpleQueryMessage::Row(row) => {
                current.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                );
            }
            SimpleQueryMessage::CommandComplete(_) => out.push(std::mem::take(&mut current)),
            _ => {}
        }
    }
    Ok(out)
}

impl Capture {
    /// Reads the schema and installs capture where it is missing or out of date.
    pub(crate) fn attach(
        client: &mut Client,
        schemas: &[String],
        quiescence: Duration,
        proof: CaptureProof,
    ) -> Result<Self> {
        let mut capture = Self::read(client, schemas, quiescence, proof)?;
        let installed: Option<(String, String)> = client
            .query_opt(
                "SELECT (SELECT v FROM public._vq_meta WHERE k = 'version'), (SELECT v FROM public._vq_meta WHERE k = 'fingerprint')",
                &[],
            )
            .ok()
            .flatten()
            .and_then(|r| Some((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)));
        let up_to_date = match &installed {
            Some((version, fingerprint)) if version == VERSION => {
                capture.state(client, false).is_ok_and(|now| {
                    now.mark.fingerprint == *fingerprint
                        && now.triggers == capture.expected_triggers()
                })
            }
            _ => false,
        };
        if !up_to_date {
            // A dead session's record would be dropped with the old installation: say so
            // instead of losing its changes silently.
            let left: Option<i64> = client
                .query_opt("SELECT count(*) FROM public._vq_root", &[])
                .ok()
                .flatten()
                .map(|r| r.get(0));
            if left.is_some_and(|n| n > 0) {
                return Err(Error::state_lost(
                    NAME,
                    "a session ended without rolling back (it died, or DDL inside it made its rollback fail), and the schema changed since, so its changes cannot be restored; to keep the data as it is, run `venomqa capture reset <entry>` (or call Postgres::uninstall_capture()) and run again, and run DDL and migrations in setup, not in tests",
                ));
            }
            capture.install(client)?;
            // The installation made the `_vq_h_` indexes: read which tables have one.
            capture = Self::read(client, schemas, quiescence, proof)?;
        }
        capture.fingerprint = capture.state(client, false)?.mark.fingerprint;
        Ok(capture)
    }

    fn read(
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
                    undo: object_name("_vq_u_", &name, ""),
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

    fn expected_triggers(&self) -> i64 {
        self.tables.len() as i64 * 4
    }

    fn install(&self, client: &mut Client) -> Result<()> {
        let mut sql = String::from("BEGIN; SET LOCAL lock_timeout = '10s';");
        sql.push_str(&Self::uninstall_sql(client, &self.schemas)?);
        sql.push_str(
            " CREATE TABLE IF NOT EXISTS public._vq_meta (k text PRIMARY KEY, v text);
              CREATE TABLE IF NOT EXISTS public._vq_root (snapshot text NOT NULL);
              CREATE TABLE IF NOT EXISTS public._vq_root_sequences (seq text PRIMARY KEY, last_value bigint NOT NULL, is_called boolean NOT NULL);
              CREATE TABLE IF NOT EXISTS public._vq_root_counts (tbl text PRIMARY KEY, n bigint NOT NULL, digest text);",
        );
        for table in &self.tables {
            sql.push_str(&self.table_ddl(table));
        }
        // The fingerprint recorded is computed inside the same transaction, after install.
        sql.push_str(" COMMIT;");
        run(client, &sql).map_err(|e| {
            let _ = run(client, "ROLLBACK");
            failed("installing capture", e)
        })?;
        let fingerprint = self.state(client, false)?.mark.fingerprint;
        client
            .execute(
                "INSERT INTO public._vq_meta (k, v) VALUES ('version', $1), ('fingerprint', $2)
                 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                &[&VERSION, &fingerprint],
            )
            .map_err(|e| failed("installing capture", e))?;
        let keyless: Vec<String> = self
            .tables
            .iter()
            .filter(|t| t.key.is_empty())
            .map(|t| t.label())
            .collect();
        tracing::info!(
            target: "venomqa",
            tables = self.tables.len(),
            keyless = %keyless.join(", "),
            "capture installed: statement triggers on every table of the schemas, undo tables _vq_u_*, and an index _vq_h_<table> on each keyless table's row hash (keyless: the `keyless` field), until Postgres::uninstall_capture()"
        );
        Ok(())
    }

    fn table_ddl(&self, table: &Table) -> String {
        let t = table.qualified();
        let u = table.undo_qualified();
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{} {}", q(&c.name), c.ty))
            .collect();
        let mut sql = format!(
            " CREATE TABLE {u} (_vq_seq bigserial PRIMARY KEY, _vq_op \"char\" NOT NULL, _vq_xid xid8 NOT NULL DEFAULT pg_current_xact_id(), {});",
            cols.join(", ")
        );
        if table.key.is_empty() {
            // A keyless table: an index on the whole row's hash lets a restore find the
            // rows to delete without scanning the table. A column type with no hash
            // function (json, point, ..) leaves it out, and the restore scans. The index
            // would accept such a type and fail every write of the app afterwards (the
            // function is looked up when a row is hashed): the hash of a row of NULLs of
            // the table's types is taken first, and fails now instead.
            let nulls: Vec<String> = table
                .columns
                .iter()
                .map(|c| format!("NULL::{}", c.ty))
                .collect();
            write!(
                sql,
                " DO $vq$ BEGIN PERFORM hash_record_extended(ROW({}), 0); CREATE INDEX {} ON {t} ({}); EXCEPTION WHEN undefined_function OR feature_not_supported OR undefined_object THEN NULL; END $vq$;",
                nulls.join(", "),
                q(&object_name("_vq_h_", &table.name, "")),
                table.row_hash(""),
            )
            .expect("write to a String");
        } else {
            let key: Vec<String> = table.key.iter().map(|k| q(k)).collect();
            write!(sql, " CREATE INDEX ON {u} ({});", key.join(", ")).expect("write to a String");
        }
        let names = table.cols("");
        // An update's new rows matter only where their key is new (a keyless table has no
        // key: all of them).
        let new_keys = if table.key.is_empty() {
            String::new()
        } else {
            format!(
                " WHERE NOT EXISTS (SELECT 1 FROM _vq_old o WHERE ({}) = ({}))",
                table.key_of("o"),
                table.key_of("n")
            )
        };
        let guard = "IF coalesce(current_setting('venomqa.replay', true), '') <> 'on' THEN";
        for (suffix, timing, event, referencing, body) in [
            ("ins", "AFTER", "INSERT", "REFERENCING NEW TABLE AS _vq_new", format!("INSERT INTO {u} (_vq_op, {names}) SELECT 'I', {} FROM _vq_new n;", table.cols("n"))),
            ("upd", "AFTER", "UPDATE", "REFERENCING OLD TABLE AS _vq_old NEW TABLE AS _vq_new", format!(
                "INSERT INTO {u} (_vq_op, {names}) SELECT 'U', {} FROM _vq_old o; INSERT INTO {u} (_vq_op, {names}) SELECT 'N', {} FROM _vq_new n{new_keys};",
                table.cols("o"),
                table.cols("n")
            )),
            ("del", "AFTER", "DELETE", "REFERENCING OLD TABLE AS _vq_old", format!("INSERT INTO {u} (_vq_op, {names}) SELECT 'D', {} FROM _vq_old o;", table.cols("o"))),
            ("trunc", "BEFORE", "TRUNCATE", "", format!("INSERT INTO {u} (_vq_op, {names}) SELECT 'D', {} FROM {t} x;", table.cols("x"))),
        ] {
            let function = format!("{}.{}", q(&table.schema), q(&object_name("_vq_f_", &table.name, &format!("_{suffix}"))));
            let trigger = q(&object_name("_vq_", &table.name, &format!("_{suffix}")));
            write!(
                sql,
                " CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $vq$ BEGIN {guard} {body} END IF; RETURN NULL; END $vq$;
                  CREATE TRIGGER {trigger} {timing} {event} ON {t} {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
            )
            .expect("write to a String");
        }
        sql
    }

    /// The statements removing what capture installed in `schemas` (for a transaction).
    fn uninstall_sql(client: &mut Client, schemas: &[String]) -> Result<String> {
        let schemas = schemas.to_vec();
        let mut sql = String::new();
        for row in client
            .query(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'r' AND n.nspname = ANY ($1) AND c.relname LIKE '\\_vq\\_u\\_%'",
                &[&schemas],
            )
            .map_err(|e| failed("reading what capture installed", e))?
        {
            write!(sql, " DROP TABLE IF EXISTS {}.{};", q(row.get(0)), q(row.get(1))).expect("write to a String");
        }
        for row in client
            .query(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'i' AND n.nspname = ANY ($1) AND c.relname LIKE '\\_vq\\_h\\_%'",
                &[&schemas],
            )
            .map_err(|e| failed("reading what capture installed", e))?
        {
            write!(sql, " DROP INDEX IF EXISTS {}.{};", q(row.get(0)), q(row.get(1))).expect("write to a String");
        }
        for row in client
            .query(
                "SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = ANY ($1) AND p.proname LIKE '\\_vq\\_f\\_%'",
                &[&schemas],
            )
            .map_err(|e| failed("reading what capture installed", e))?
        {
            // CASCADE drops the triggers that call it.
            write!(sql, " DROP FUNCTION IF EXISTS {}.{}() CASCADE;", q(row.get(0)), q(row.get(1))).expect("write to a String");
        }
        Ok(sql)
    }

    /// Removes everything capture installed in `schemas` and its bookkeeping.
    pub(crate) fn uninstall(client: &mut Client, schemas: &[String]) -> Result<()> {
        let sql = format!(
            "BEGIN;{} DROP TABLE IF EXISTS public._vq_meta, public._vq_root, public._vq_root_sequences, public._vq_root_counts; COMMIT;",
            Self::uninstall_sql(client, schemas)?
        );
        run(client, &sql).map_err(|e| {
            let _ = run(client, "ROLLBACK");
            failed("removing capture", e)
        })
    }

    /// One round trip: fingerprint, trigger count, the current snapshot, sequence values,
    /// and the other sessions of this database with an open write transaction. With
    /// `measure`, also every table's row count (and digest, with `capture_proof: digest`),
    /// read in the same statement as the snapshot, so they agree with it.
    fn state(&self, client: &mut Client, measure: bool) -> Result<State> {
        let schemas = self
            .schemas
            .iter()
            .map(|s| lit(s))
            .collect::<Vec<_>>()
            .join(", ");
        let sequences = if self.sequences.is_empty() {
            "SELECT 0 WHERE false".to_owned()
        } else {
            self.sequences
                .iter()
                .map(|s| format!("SELECT last_value, is_called FROM {s}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        };
        let measures: String = if measure {
            self.tables
                .iter()
                .map(|t| {
                    let count = format!(", (SELECT count(*) FROM {})", t.qualified());
                    if self.proof == CaptureProof::Digest {
                        format!("{count}, {}", digest_of(t))
                    } else {
                        count
                    }
                })
                .collect()
        } else {
            String::new()
        };
        // The schema's fingerprint: every column's definition, and the app's own triggers
        // (a restore turns them off by name).
        let sql = format!(
            "SELECT md5(coalesce((SELECT string_agg(concat_ws(chr(31), n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated, a.attidentity), chr(30) ORDER BY n.nspname, c.relname, a.attnum)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind = 'r' AND n.nspname IN ({schemas}) AND c.relname NOT LIKE '\\_vq\\_%'), '')
              || coalesce((SELECT string_agg(concat_ws(chr(31), n.nspname, c.relname, g.tgname, g.tgenabled), chr(30) ORDER BY n.nspname, c.relname, g.tgname)
               FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ({schemas}) AND NOT g.tgisinternal AND g.tgname NOT LIKE '\\_vq\\_%'), ''));
             SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ({schemas}) AND g.tgname LIKE '\\_vq\\_%';
             SELECT pg_current_snapshot()::text{measures};
             {sequences};
             SELECT pid, usename, state, query FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL;"
        );
        let results = sets(client, &sql).map_err(|e| failed("reading the capture state", e))?;
        let [fp, triggers, snapshot, sequences, writers]: [Vec<Vec<Option<String>>>; 5] =
            results.try_into().map_err(|_| {
                Error::backend(NAME, "reading the capture state", "expected 5 result sets")
            })?;
        let cell = |rows: &[Vec<Option<String>>], i: usize| {
            rows.first().and_then(|r| r.get(i).cloned().flatten())
        };
        let sequences = sequences
            .iter()
            .map(|r| {
                (
                    r.first()
                        .cloned()
                        .flatten()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    r.get(1).cloned().flatten().as_deref() == Some("t"),
                )
            })
            .collect();
        let writers = writers
            .iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                // Another session's statement: its shape only, never its literals.
                format!(
                    "pid {} ({}, {}, `{}`)",
                    v(0),
                    v(1),
                    v(2),
                    crate::sql::mask_literals(&v(3), 80)
                )
            })
            .collect();
        let (mut counts, mut digests) = (Vec::new(), Vec::new());
        if measure {
            let row = snapshot.first().cloned().unwrap_or_default();
            let per = if self.proof == CaptureProof::Digest {
                2
            } else {
                1
            };
            for i in 0..self.tables.len() {
                let cell = |j: usize| row.get(1 + i * per + j).cloned().flatten();
                counts.push(cell(0).and_then(|v| v.parse().ok()).unwrap_or(-1));
                if per == 2 {
                    digests.push(cell(1).unwrap_or_default());
                }
            }
        }
        Ok(State {
            mark: Mark {
                snapshot: cell(&snapshot, 0).unwrap_or_default(),
                sequences,
                fingerprint: cell(&fp, 0).unwrap_or_default(),
                counts,
                digests,
            },
            triggers: cell(&triggers, 0).and_then(|v| v.parse().ok()).unwrap_or(0),
            writers,
        })
    }

    /// For each table, whether its log has entries after `mark`. One round trip.
    fn changed(&self, client: &mut Client, mark: &Mark) -> Result<Vec<bool>> {
        if self.tables.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {}",
            self.tables
                .iter()
                .map(|t| format!(
                    "EXISTS (SELECT 1 FROM {} WHERE {})",
                    t.undo_qualified(),
                    mark.after()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sets(client, &sql).map_err(|e| failed("reading the capture log", e))?;
        let row = rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_default();
        Ok((0..self.tables.len())
            .map(|i| row.get(i).cloned().flatten().as_deref() == Some("t"))
            .collect())
    }

    fn schema_change(&self, client: &mut Client) -> String {
        match Self::read(client, &self.schemas, self.quiescence, self.proof) {
            Ok(now) => {
                let describe = |c: &Capture| -> BTreeMap<String, Vec<String>> {
                    c.tables
                        .iter()
                        .map(|t| {
                            (
                                t.label(),
                                t.columns
                                    .iter()
                                    .map(|c| format!("{} {}", c.name, c.ty))
                                    .collect(),
                            )
                        })
                        .collect()
                };
                let (before, after) = (describe(self), describe(&now));
                let mut changes = Vec::new();
                for (table, cols) in &after {
                    match before.get(table) {
                        None => changes.push(format!("table {table} was created")),
                        Some(old) if old != cols => {
                            let added: Vec<&str> = cols
                                .iter()
                                .filter(|c| !old.contains(c))
                                .map(String::as_str)
                                .collect();
                            let removed: Vec<&str> = old
                                .iter()
                                .filter(|c| !cols.contains(c))
                                .map(String::as_str)
                                .collect();
                            let mut text = format!("table {table}:");
                            if !added.is_empty() {
                                write!(text, " +[{}]", added.join(", "))
                                    .expect("write to a String");
                            }
                            if !removed.is_empty() {
                                write!(text, " -[{}]", removed.join(", "))
                                    .expect("write to a String");
                            }
                            changes.push(text);
                        }
                        _ => {}
                    }
                }
                for table in before.keys().filter(|t| !after.contains_key(*t)) {
                    changes.push(format!("table {table} was dropped"));
                }
                if changes.is_empty() {
                    "a column's type, nullability or identity changed".to_owned()
                } else {
                    changes.join("; ")
                }
            }
            Err(e) => format!("(could not read the schema: {e})"),
        }
    }

    fn check_schema(&self, client: &mut Client, state: &State, operation: &str) -> Result<()> {
        if state.mark.fingerprint != self.fingerprint || state.triggers != self.expected_triggers()
        {
            let what = if state.mark.fingerprint != self.fingerprint {
                self.schema_change(client)
            } else {
                format!(
                    "{} of {} capture triggers are installed",
                    state.triggers,
                    self.expected_triggers()
                )
            };
            return Err(Error::state_lost(
                NAME,
                format!("{operation}: the schema changed since capture was installed ({what}), so nothing was restored and the data stays as the app left it; keep it with `venomqa capture reset <entry>` (capture is then installed for the new schema), and run DDL and migrations in setup, not in tests"),
            ));
        }
        Ok(())
    }

    /// Whether the installation is as this `Capture` knows it (tables, triggers, schema).
    pub(crate) fn is_current(&self, client: &mut Client) -> bool {
        self.state(client, false).is_ok_and(|s| {
            s.mark.fingerprint == self.fingerprint && s.triggers == self.expected_triggers()
        })
    }

    /// A checkpoint: checks the schema and returns the mark (the snapshot now). A
    /// transaction still in flight is after the mark as a whole, so no wait is needed.
    pub(crate) fn mark(&self, client: &mut Client, operation: &str) -> Result<Mark> {
        let state = self.state(client, true)?;
        self.check_schema(client, &state, operation)?;
        Ok(state.mark)
    }

    /// Rolls every table back to `mark` in one transaction, then proves it: inside the
    /// transaction, every restored table's row count (with `capture_proof: digest`, every
    /// table's content digest) must equal the mark's, or nothing is restored; after it, no
    /// entry after the mark is left, the sequences and the schema are as they were. A
    /// session writing during the rollback makes a proof fail; the rollback then runs
    /// again (a content proof that fails twice in a row fails at once), until the
    /// quiescence timeout.
    pub(crate) fn rollback(&self, client: &mut Client, mark: &Mark, operation: &str) -> Result<()> {
        let deadline = Instant::now() + self.quiescence;
        let mut unproven = 0;
        loop {
            if let Some(problem) = self.rollback_once(client, mark, operation, deadline)? {
                // A session that committed during the restore is in the log by now, so one
                // more try restores it too; a second failure in a row is the restore's own.
                unproven += 1;
                if unproven < 2 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                return Err(Error::state_lost(
                    NAME,
                    format!("{operation}: the capture proof failed: {problem}; nothing was restored (the data is as the app left it, the log is kept); unless another connection wrote during the rollback, this is a venomqa bug: please report it with the writes that led here"),
                ));
            }
            match self.prove(client, mark, operation) {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until no other session of the database is inside a write transaction, up to
    /// `deadline`; then fails naming the sessions still writing.
    fn wait_for_writers(
        &self,
        client: &mut Client,
        deadline: Instant,
        operation: &str,
    ) -> Result<State> {
        loop {
            let state = self.state(client, false)?;
            if state.writers.is_empty() {
                return Ok(state);
            }
            if Instant::now() >= deadline {
                return Err(Error::backend(
                    NAME,
                    operation,
                    format!(
                        "other sessions stayed inside write transactions for {} ms: {}; let the app finish its requests first, or raise quiescence_timeout_ms",
                        self.quiescence.as_millis(),
                        state.writers.join("; ")
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One restore in one transaction. Returns the content proof's complaint when it
    /// failed (the transaction was rolled back: nothing changed).
    fn rollback_once(
        &self,
        client: &mut Client,
        mark: &Mark,
        operation: &str,
        deadline: Instant,
    ) -> Result<Option<String>> {
        let state = self.wait_for_writers(client, deadline, operation)?;
        self.check_schema(client, &state, operation)?;
        let changed: Vec<usize> = self
            .changed(client, mark)?
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(i, _)| i)
            .collect();
        if changed.is_empty() && state.mark.sequences == mark.sequences {
            return Ok(None);
        }
        let wait = self.quiescence.as_millis().max(1);
        let mut sql =
            format!("BEGIN; SET LOCAL venomqa.replay = 'on'; SET LOCAL lock_timeout = '{wait}ms';");
        if self.replica {
            sql.push_str(" SET LOCAL session_replication_role = replica;");
        }
        // The app's own triggers that would fire during the restore (in replica mode only
        // those enabled ALWAYS or REPLICA) are off for this transaction: a `BEFORE UPDATE`
        // that sets `updated_at` would otherwise stamp every restored row.
        let firing: Vec<(&Table, &str, char)> = changed
            .iter()
            .flat_map(|&i| {
                let table = &self.tables[i];
                table
                    .triggers
                    .iter()
                    .filter(|(_, on)| {
                        if self.replica {
                            matches!(on, 'A' | 'R')
                        } else {
                            matches!(on, 'O' | 'A')
                        }
                    })
                    .map(move |(name, on)| (table, name.as_str(), *on))
            })
            .collect();
        for (table, name, _) in &firing {
            write!(
                sql,
                " ALTER TABLE {} DISABLE TRIGGER {};",
                table.qualified(),
                q(name)
            )
            .expect("write to a String");
        }
        if self.replica {
            // Triggers and foreign-key checks off: every touched row out, every row that
            // existed at the mark back in as it was.
            for &i in &changed {
                let table = &self.tables[i];
                if table.key.is_empty() {
                    sql.push_str(&self.restore_keyless(table, mark));
                } else {
                    sql.push_str(&self.delete_rows(table, mark, false));
                    sql.push_str(&self.insert_images(table, mark, false));
                }
            }
        } else {
            // Foreign keys stay on: rows back to their images (parents first, updated in
            // place so no cascade fires), then rows created since deleted (children
            // first). A unique conflict (a value a created row holds) tries the other
            // order: delete first, then restore.
            let restore = |order: &mut dyn Iterator<Item = &usize>| -> String {
                order
                    .filter(|i| changed.contains(i))
                    .map(|&i| {
                        let table = &self.tables[i];
                        if table.key.is_empty() {
                            self.restore_keyless(table, mark)
                        } else {
                            self.insert_images(table, mark, true)
                        }
                    })
                    .collect()
            };
            let delete = |order: &mut dyn Iterator<Item = &usize>| -> String {
                order
                    .filter(|i| changed.contains(i) && !self.tables[**i].key.is_empty())
                    .map(|&i| self.delete_rows(&self.tables[i], mark, true))
                    .collect()
            };
            let (images, deletes) = (
                restore(&mut self.order.iter()),
                delete(&mut self.order.iter().rev()),
            );
            write!(
                sql,
                " DO $vq$ BEGIN BEGIN {images}{deletes} EXCEPTION WHEN unique_violation THEN {deletes}{images} END; END $vq$;"
            )
            .expect("write to a String");
        }
        for (table, name, on) in &firing {
            let how = match on {
                'A' => "ENABLE ALWAYS",
                'R' => "ENABLE REPLICA",
                _ => "ENABLE",
            };
            write!(
                sql,
                " ALTER TABLE {} {how} TRIGGER {};",
                table.qualified(),
                q(name)
            )
            .expect("write to a String");
        }
        for &i in &changed {
            write!(
                sql,
                " DELETE FROM {} WHERE {};",
                self.tables[i].undo_qualified(),
                mark.after()
            )
            .expect("write to a String");
        }
        for (i, seq) in self.sequences.iter().enumerate() {
            if let (Some(now), Some(then)) = (state.mark.sequences.get(i), mark.sequences.get(i)) {
                if now != then {
                    write!(sql, " SELECT setval({}, {}, {});", lit(seq), then.0, then.1)
                        .expect("write to a String");
                }
            }
        }
        sql.push_str(&self.content_proof(mark, &changed));
        sql.push_str(" COMMIT;");
        match run(client, &sql) {
            Ok(()) => Ok(None),
            Err(e) => {
                let _ = run(client, "ROLLBACK");
                match self.restore_failed(client, e, operation, wait, &firing) {
                    RestoreError::Proof(problem) => Ok(Some(problem)),
                    RestoreError::Other(e) => Err(e),
                }
            }
        }
    }

    /// What a failed restore transaction means, in one line.
    fn restore_failed(
        &self,
        client: &mut Client,
        e: postgres::Error,
        operation: &str,
        wait: u128,
        firing: &[(&Table, &str, char)],
    ) -> RestoreError {
        let code = e.code().map(|c| c.code().to_owned());
        if code.as_deref() == Some(PROOF_FAILED) {
            let problem = e
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string());
            return RestoreError::Proof(problem);
        }
        if code.as_deref() == Some("55P03") {
            let writers = self
                .state(client, false)
                .map(|s| s.writers)
                .unwrap_or_default();
            return RestoreError::Other(Error::backend(
                NAME,
                operation,
                format!(
                    "other sessions kept rows locked for {wait} ms ({}); let the app finish its requests first, or raise quiescence_timeout_ms",
                    if writers.is_empty() { "sessions unknown".to_owned() } else { writers.join("; ") }
                ),
            ));
        }
        if code.as_deref() == Some("42501") && !firing.is_empty() {
            let names: Vec<String> = firing
                .iter()
                .map(|(t, name, _)| format!("{name} on {}", t.label()))
                .collect();
            return RestoreError::Other(Error::backend(
                NAME,
                format!(
                    "{operation}: the app's triggers ({}) would fire during the restore and change the restored rows, and this role may not turn them off (that needs to own the table, or a superuser); nothing was restored",
                    names.join(", ")
                ),
                DriverError::new(e, ""),
            ));
        }
        let mut error = failed(operation, e);
        if !self.replica {
            if let Error::Backend { operation, .. } = &mut error {
                operation.push_str(" (restored in foreign-key order: nothing was restored; a superuser, or GRANT SET ON PARAMETER session_replication_role, restores exactly)");
            }
        }
        RestoreError::Other(error)
    }

    /// The content proof, run inside the restore's transaction before it commits: the row
    /// count of every restored table (with `capture_proof: digest`, the digest of every
    /// table) equals the mark's, or it raises [`PROOF_FAILED`] and nothing is restored.
    fn content_proof(&self, mark: &Mark, changed: &[usize]) -> String {
        if mark.counts.len() != self.tables.len() {
            // A mark a dead session recorded before counts existed: the log proof only.
            return String::new();
        }
        let mut body = String::new();
        let digest = self.proof == CaptureProof::Digest && mark.digests.len() == self.tables.len();
        for (i, table) in self.tables.iter().enumerate() {
            if digest {
                write!(
                    body,
                    " SELECT {} INTO d; IF d IS DISTINCT FROM {expected} THEN RAISE EXCEPTION USING ERRCODE = '{PROOF_FAILED}', MESSAGE = format('table %s has other content after the restore than at the checkpoint (rows/digest %s, %s at the checkpoint)', {label}, d, {expected}); END IF;",
                    digest_of(table),
                    expected = lit(&mark.digests[i]),
                    label = lit(&table.label()),
                )
                .expect("write to a String");
            } else if changed.contains(&i) {
                write!(
                    body,
                    " SELECT count(*) INTO n FROM {}; IF n <> {expected} THEN RAISE EXCEPTION USING ERRCODE = '{PROOF_FAILED}', MESSAGE = format('table %s has %s rows after the restore, %s at the checkpoint', {label}, n, {expected}); END IF;",
                    table.qualified(),
                    expected = mark.counts[i],
                    label = lit(&table.label()),
                )
                .expect("write to a String");
            }
        }
        if body.is_empty() {
            return String::new();
        }
        format!(" DO $vq$ DECLARE n bigint; d text; BEGIN{body} END $vq$;")
    }

    /// The first logged change of each key after `mark`: `(key columns, _vq_op, image)`.
    fn first_changes(&self, table: &Table, mark: &Mark) -> String {
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
    fn delete_rows(&self, table: &Table, mark: &Mark, created_only: bool) -> String {
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
    fn insert_images(&self, table: &Table, mark: &Mark, upsert: bool) -> String {
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
    fn restore_keyless(&self, table: &Table, mark: &Mark) -> String {
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

    /// Forgets the log before `mark` (the outermost checkpoint: nothing older is needed).
    pub(crate) fn purge(&self, client: &mut Client, mark: &Mark) -> Result<()> {
        let sql: String = self
            .tables
            .iter()
            .map(|t| {
                format!(
                    "DELETE FROM {} WHERE {};",
                    t.undo_qualified(),
                    mark.before()
                )
            })
            .collect();
        if !sql.is_empty() {
            run(client, &sql).map_err(|e| failed("purging the capture log", e))?;
        }
        Ok(())
    }

    /// Records `mark` as the outermost checkpoint of a live session, so the next session
    /// restores it if this process dies before rolling back.
    pub(crate) fn record_root(&self, client: &mut Client, mark: &Mark) -> Result<()> {
        let mut sql = format!(
            "BEGIN; DELETE FROM public._vq_root; DELETE FROM public._vq_root_sequences; DELETE FROM public._vq_root_counts; INSERT INTO public._vq_root VALUES ({});",
            lit(&mark.snapshot)
        );
        for (i, table) in self.tables.iter().enumerate() {
            let Some(count) = mark.counts.get(i) else {
                break;
            };
            let digest = mark.digests.get(i).map_or("NULL".to_owned(), |d| lit(d));
            write!(
                sql,
                " INSERT INTO public._vq_root_counts VALUES ({}, {count}, {digest});",
                lit(&table.qualified())
            )
            .expect("write to a String");
        }
        for (i, s) in self.sequences.iter().enumerate() {
            let (value, called) = mark.sequences[i];
            write!(
                sql,
                " INSERT INTO public._vq_root_sequences VALUES ({}, {value}, {called});",
                lit(s)
            )
            .expect("write to a String");
        }
        sql.push_str(" COMMIT;");
        run(client, &sql).map_err(|e| failed("recording the capture root", e))
    }

    /// Forgets the recorded outermost checkpoint (the session ended cleanly).
    pub(crate) fn clear_root(&self, client: &mut Client) -> Result<()> {
        run(
            client,
            "DELETE FROM public._vq_root; DELETE FROM public._vq_root_sequences; DELETE FROM public._vq_root_counts;",
        )
        .map_err(|e| failed("clearing the capture root", e))
    }

    /// The outermost checkpoint a dead session left, if any.
    pub(crate) fn left_root(&self, client: &mut Client) -> Result<Option<Mark>> {
        let root = client
            .query_opt("SELECT snapshot FROM public._vq_root LIMIT 1", &[])
            .map_err(|e| failed("reading the capture root", e))?;
        let Some(root) = root else {
            return Ok(None);
        };
        let sequences = client
            .query(
                "SELECT seq, last_value, is_called FROM public._vq_root_sequences",
                &[],
            )
            .map_err(|e| failed("reading the capture root", e))?;
        let value_of: HashMap<String, (i64, bool)> = sequences
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        let measured: HashMap<String, (i64, Option<String>)> = client
            .query("SELECT tbl, n, digest FROM public._vq_root_counts", &[])
            .map_err(|e| failed("reading the capture root", e))?
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        // Counts (and digests) only when every table has one: a table created since has
        // none, and the proof then checks the log alone.
        let counts: Option<Vec<(i64, Option<String>)>> = self
            .tables
            .iter()
            .map(|t| measured.get(&t.qualified()).cloned())
            .collect();
        let counts = counts.unwrap_or_default();
        let digests: Option<Vec<String>> = counts.iter().map(|(_, d)| d.clone()).collect();
        Ok(Some(Mark {
            snapshot: root.get(0),
            sequences: self
                .sequences
                .iter()
                .map(|s| value_of.get(s).copied().unwrap_or((1, false)))
                .collect(),
            fingerprint: self.fingerprint.clone(),
            digests: digests.filter(|d| !d.is_empty()).unwrap_or_default(),
            counts: counts.iter().map(|(n, _)| *n).collect(),
        }))
    }

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

    fn table_diff(&self, client: &mut Client, table: &Table, mark: &Mark) -> Result<TableDiff> {
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

    fn prove(&self, client: &mut Client, mark: &Mark, operation: &str) -> Result<()> {
        let state = self.state(client, false)?;
        let changed = self.changed(client, mark)?;
        let mut problems: Vec<String> = self
            .tables
            .iter()
            .zip(&changed)
            .filter(|(_, c)| **c)
            .map(|(t, _)| format!("{} has changes logged after the rollback", t.label()))
            .collect();
        if state.mark.sequences != mark.sequences {
            problems.push("a sequence is not back at its value".to_owned());
        }
        if state.mark.fingerprint != mark.fingerprint {
            problems.push("the schema changed".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            if !state.writers.is_empty() {
                problems.push(format!("sessions writing: {}", state.writers.join("; ")));
            }
            Err(Error::state_lost(
                NAME,
                format!("{operation}: the rollback's check failed: {}; another connection wrote during the rollback", problems.join("; ")),
            ))
        }
    }

    /// The name of the advisory lock that makes sessions on these schemas take turns.
    fn lock_key(database: &str, schemas: &[String]) -> i64 {
        fnv64(format!("venomqa_capture:{database}:{}", schemas.join(",")).as_bytes()) as i64
    }

    /// Takes the lock that makes capture sessions on this database take turns (across
    /// processes too), waiting up to `timeout`. It is the session's: the server frees it
    /// when the connection ends.
    pub(crate) fn lock(
        client: &mut Client,
        database: &str,
        schemas: &[String],
        timeout: Duration,
    ) -> Result<()> {
        let key = Self::lock_key(database, schemas);
        let started = Instant::now();
        loop {
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(|e| failed("taking the capture lock", e))?
                .get(0);
            if got {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(Error::backend(
                    NAME,
                    "taking the capture lock",
                    format!("another session held database {database} for {} s; look for a test that never finishes", timeout.as_secs()),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Gives the capture lock back.
    pub(crate) fn unlock(client: &mut Client, database: &str, schemas: &[String]) -> Result<()> {
        client
            .execute(
                "SELECT pg_advisory_unlock($1)",
                &[&Self::lock_key(database, schemas)],
            )
            .map(drop)
            .map_err(|e| failed("giving the capture lock back", e))
    }

    /// The outermost checkpoint of a session, under the capture lock: installs capture
    /// (again) when the schema changed since the last session, restores what a dead
    /// session left, forgets the old log, and records the new outermost mark.
    pub(crate) fn begin(
        client: &mut Client,
        slot: &mut Option<Capture>,
        schemas: &[String],
        quiescence: Duration,
        proof: CaptureProof,
    ) -> Result<Mark> {
        let current = slot
            .take()
            .filter(|c| c.is_current(client) && c.proof == proof);
        let capture = match current {
            Some(found) => found,
            None => Capture::attach(client, schemas, quiescence, proof)?,
        };
        let capture = slot.insert(capture);
        if let Some(root) = capture.left_root(client)? {
            tracing::warn!(target: "venomqa", "a session that ended without rolling back left its changes; restoring its first checkpoint");
            capture.rollback(client, &root, "restoring what a dead session left")?;
            capture.clear_root(client)?;
        }
        let mark = capture.mark(client, "the first checkpoint")?;
        capture.purge(client, &mark)?;
        capture.record_root(client, &mark)?;
        Ok(mark)
    }
}

/// Why a restore's transaction failed: its content proof, or anything else.
enum RestoreError {
    Proof(String),
    Other(Error),
}

/// An SQL expression: the digest of `table`'s whole content, independent of row order
/// (the sum of the first 60 bits of every row's md5, then the row count).
fn digest_of(table: &Table) -> String {
    format!(
        "(SELECT coalesce(sum(('x' || left(md5({}), 15))::bit(60)::bigint), 0)::text || '/' || count(*) FROM {} x)",
        table.row_text("x"),
        table.qualified()
    )
}

/// Tables in foreign-key order (a parent before its children); cycles keep their
/// original order.
fn topological(n: usize, fks: &[ForeignKey]) -> Vec<usize> {
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
