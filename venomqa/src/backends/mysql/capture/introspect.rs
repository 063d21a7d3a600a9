//! What capture reads of a MySQL database: its base tables, their stored columns and
//! primary keys, and the foreign keys between them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Row, Value};

use super::{failed, q, sets, text, Capture, NAME, ROWID};
use crate::backends::sql_capture::{mysql_literal as lit, object_name, MYSQL_NAMES};
use crate::capture::proof::CaptureProof;
use crate::error::{Error, Result};

/// One stored (not generated) column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    pub(super) name: String,
    /// `COLUMN_TYPE`, such as `varchar(100)` or `int(10) unsigned`.
    pub(super) ty: String,
    pub(super) charset: Option<String>,
    pub(super) collation: Option<String>,
}

impl Column {
    /// Its definition in an undo table: same type and character set, nullable.
    pub(super) fn undo_definition(&self, name: &str) -> Result<String> {
        let mut def = format!("{} {}", q(name)?, self.ty);
        if let (Some(cs), Some(co)) = (&self.charset, &self.collation) {
            write!(def, " CHARACTER SET {cs} COLLATE {co}").expect("write to a String");
        }
        def.push_str(" NULL");
        Ok(def)
    }

    /// Its index part: text and blob columns need a prefix length.
    pub(super) fn index_part(&self, name: &str) -> Result<String> {
        let ty = self.ty.to_ascii_lowercase();
        Ok(if ty.contains("text") || ty.contains("blob") {
            format!("{}(255)", q(name)?)
        } else {
            q(name)?
        })
    }
}

/// A captured table.
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) name: String,
    pub(super) undo: String,
    pub(super) columns: Vec<Column>,
    /// The primary key's columns, or [`ROWID`].
    pub(super) key: Vec<String>,
    /// Whether venomqa gave it an invisible row id.
    pub(super) keyless: bool,
}

impl Table {
    pub(super) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub(super) fn new_key(name: &str) -> String {
        format!("_vq_n_{name}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Cascade,
    SetNull,
    Other,
}

impl Action {
    pub(super) fn parse(rule: &str) -> Self {
        match rule {
            "CASCADE" => Action::Cascade,
            "SET NULL" => Action::SetNull,
            _ => Action::Other,
        }
    }
}

/// A foreign key between two captured tables.
#[derive(Debug, Clone)]
pub(super) struct ForeignKey {
    pub(super) child: String,
    pub(super) child_cols: Vec<String>,
    pub(super) parent: String,
    pub(super) parent_cols: Vec<String>,
    pub(super) on_delete: Action,
    pub(super) on_update: Action,
}

impl Capture {
    /// Reads the tables, keys and foreign keys of `database`.
    pub(super) fn read(conn: &mut Conn, database: &str, quiescence: Duration) -> Result<Self> {
        let db = lit(database);
        let like = "'\\_vq\\_%'";
        let sql = format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE {like} ORDER BY TABLE_NAME;
             SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} AND TABLE_NAME NOT LIKE {like} ORDER BY TABLE_NAME, ORDINAL_POSITION;
             SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = {db} AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION;
             SELECT rc.CONSTRAINT_NAME, rc.TABLE_NAME, rc.REFERENCED_TABLE_NAME, rc.DELETE_RULE, rc.UPDATE_RULE, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME
               FROM information_schema.REFERENTIAL_CONSTRAINTS rc
               JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME AND k.TABLE_NAME = rc.TABLE_NAME
              WHERE rc.CONSTRAINT_SCHEMA = {db} AND k.REFERENCED_TABLE_SCHEMA = {db}
              ORDER BY rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION"
        );
        let results = sets(conn, &sql).map_err(|e| failed("reading the schema for capture", e))?;
        let [tables, columns, keys, fks]: [Vec<Row>; 4] = results.try_into().map_err(|_| {
            Error::backend(
                NAME,
                "reading the schema for capture",
                "expected 4 result sets",
            )
        })?;
        let s = |row: &Row, i: usize| row.as_ref(i).map(text).unwrap_or_default();
        let opt = |row: &Row, i: usize| match row.as_ref(i) {
            Some(Value::NULL) | None => None,
            Some(v) => Some(text(v)),
        };
        let mut by_table: BTreeMap<String, Table> = tables
            .iter()
            .map(|r| {
                let name = s(r, 0);
                (
                    name.clone(),
                    Table {
                        undo: object_name(MYSQL_NAMES, "_vq_u_", &name, ""),
                        name,
                        columns: Vec::new(),
                        key: Vec::new(),
                        keyless: false,
                    },
                )
            })
            .collect();
        for r in &columns {
            let Some(table) = by_table.get_mut(&s(r, 0)) else {
                continue;
            };
            let extra = s(r, 5).to_ascii_uppercase();
            if extra.contains("GENERATED") {
                continue;
            }
            let name = s(r, 1);
            if name == ROWID {
                table.keyless = true;
            }
            table.columns.push(Column {
                name,
                ty: s(r, 2),
                charset: opt(r, 3),
                collation: opt(r, 4),
            });
        }
        for r in &keys {
            if let Some(table) = by_table.get_mut(&s(r, 0)) {
                table.key.push(s(r, 1));
            }
        }
        for table in by_table.values_mut() {
            if table.key.is_empty() {
                table.key = vec![ROWID.to_owned()];
            }
        }
        let mut foreign: Vec<ForeignKey> = Vec::new();
        let mut last: Option<(String, String)> = None;
        for r in &fks {
            let id = (s(r, 1), s(r, 0));
            if last.as_ref() != Some(&id) {
                foreign.push(ForeignKey {
                    child: s(r, 1),
                    child_cols: Vec::new(),
                    parent: s(r, 2),
                    parent_cols: Vec::new(),
                    on_delete: Action::parse(&s(r, 3)),
                    on_update: Action::parse(&s(r, 4)),
                });
                last = Some(id);
            }
            let fk = foreign.last_mut().expect("pushed above");
            fk.child_cols.push(s(r, 5));
            fk.parent_cols.push(s(r, 6));
        }
        foreign.retain(|fk| by_table.contains_key(&fk.child) && by_table.contains_key(&fk.parent));
        let prefix = lit(&format!("{database}/"));
        let ids_sql = [
            format!("SELECT SUBSTRING(NAME, CHAR_LENGTH({prefix}) + 1), TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME LIKE CONCAT({prefix}, '%')"),
            format!("SELECT SUBSTRING(NAME, CHAR_LENGTH({prefix}) + 1), TABLE_ID FROM information_schema.INNODB_TABLES WHERE NAME LIKE CONCAT({prefix}, '%')"),
        ]
        .into_iter()
        .find(|sql| conn.query_drop(sql).is_ok());
        Ok(Capture {
            database: database.to_owned(),
            tables: by_table.into_values().collect(),
            fks: foreign,
            fingerprint: String::new(),
            ids: BTreeMap::new(),
            ids_sql,
            quiescence,
            proof: CaptureProof::default(),
        })
    }

    /// How many `_vq_` triggers a complete installation has.
    pub(super) fn expected_triggers(&self) -> u64 {
        let parents_delete: BTreeSet<&str> = self
            .fks
            .iter()
            .filter(|f| f.on_delete != Action::Other)
            .map(|f| f.parent.as_str())
            .collect();
        let parents_update: BTreeSet<&str> = self
            .fks
            .iter()
            .filter(|f| f.on_update != Action::Other)
            .map(|f| f.parent.as_str())
            .collect();
        (self.tables.len() * 3 + parents_delete.len() + parents_update.len()) as u64
    }

    pub(super) fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}
