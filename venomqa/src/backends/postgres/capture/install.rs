//! Installing capture in PostgreSQL schemas and removing it: the bookkeeping tables in
//! `public`, and per table an undo table, the statement triggers (`SECURITY DEFINER`
//! functions) that fill it, and the row-hash index of a keyless table.

use std::fmt::Write as _;
use std::time::Duration;

use postgres::Client;

use super::introspect::Table;
use super::{failed, q, run, Capture, NAME, VERSION};
use crate::backends::sql_capture::{object_name, POSTGRES_NAMES};
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};

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

    pub(super) fn install(&self, client: &mut Client) -> Result<()> {
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

    pub(super) fn table_ddl(&self, table: &Table) -> String {
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
                q(&object_name(POSTGRES_NAMES, "_vq_h_", &table.name, "")),
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
            let function = format!("{}.{}", q(&table.schema), q(&object_name(POSTGRES_NAMES, "_vq_f_", &table.name, &format!("_{suffix}"))));
            let trigger = q(&object_name(POSTGRES_NAMES, "_vq_", &table.name, &format!("_{suffix}")));
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
    pub(super) fn uninstall_sql(client: &mut Client, schemas: &[String]) -> Result<String> {
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
}
