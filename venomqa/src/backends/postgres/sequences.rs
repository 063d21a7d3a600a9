//! `restore_sequences` on PostgreSQL: the list of the chosen schemas' sequences (read
//! once per pool), their positions at the outermost checkpoint, and the statement that
//! puts back the ones that moved.

use std::fmt::Write as _;
use std::sync::Arc;

use ::postgres::{Client, SimpleQueryMessage};

use super::errors::{run, Stage};
use super::{Postgres, NAME};
use crate::error::{Error, Result};

/// The sequences `restore_sequences` covers, as (oid, start value).
pub(super) type SequenceList = Arc<[(u32, i64)]>;

/// One sequence's position at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SequenceState {
    pub(super) oid: u32,
    /// `None` when `nextval` was never called (`is_called = false`).
    pub(super) last_value: Option<i64>,
    pub(super) start_value: i64,
}

impl Postgres {
    /// The catalog query listing the sequences of the chosen schemas that the session may
    /// read and set, as (oid, start value).
    pub(super) fn sequence_list_sql(&self) -> Result<String> {
        let schemas = self
            .schema_list()
            .iter()
            .map(|s| quote_literal(s))
            .collect::<Result<Vec<_>>>()?;
        Ok(format!(
            // Every row of pg_sequence is a sequence, so has_sequence_privilege never sees
            // another kind of relation (on which it fails).
            "SELECT s.seqrelid, s.seqstart FROM pg_sequence s \
             JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname IN ({}) AND has_sequence_privilege(s.seqrelid, 'SELECT,UPDATE')",
            schemas.join(", ")
        ))
    }

    /// The sequences `restore_sequences` covers: the pool's list, read now if it was
    /// not read yet (or `fresh` asks for it again).
    pub(super) fn sequences(&self, client: &mut Client, fresh: bool) -> Result<SequenceList> {
        if !fresh {
            if let Some(list) = self.sequence_list.lock().clone() {
                return Ok(list);
            }
        }
        let messages = run(
            client,
            || "listing the sequences to restore".into(),
            &self.sequence_list_sql()?,
            Stage::Other,
        )?;
        let list = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .map(|row| Ok((parse(row.get(0), "oid")?, parse(row.get(1), "start value")?)))
            .collect::<Result<SequenceList>>()?;
        *self.sequence_list.lock() = Some(list.clone());
        Ok(list)
    }
}

/// The statement putting back the sequences that moved since the snapshot.
pub(super) fn sequence_restore_sql(sequences: &[SequenceState]) -> Option<String> {
    if sequences.is_empty() {
        return None;
    }
    let mut values = String::new();
    for (i, s) in sequences.iter().enumerate() {
        let last = s.last_value.map_or("NULL".to_owned(), |v| v.to_string());
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(
            values,
            "{sep}({}::oid, {last}::int8, {}::int8)",
            s.oid, s.start_value
        );
    }
    Some(format!(
        "SELECT setval(v.seq::regclass, COALESCE(v.last, v.start), v.last IS NOT NULL) \
         FROM (VALUES {values}) AS v(seq, last, start) \
         WHERE pg_sequence_last_value(v.seq::regclass) IS DISTINCT FROM v.last"
    ))
}

/// A value of a simple-query row.
pub(super) fn parse<T: std::str::FromStr>(value: Option<&str>, what: &str) -> Result<T> {
    value.and_then(|v| v.parse().ok()).ok_or_else(|| {
        Error::backend(
            NAME,
            "reading the sequences",
            format!("unexpected {what} {value:?} in the reply"),
        )
    })
}

/// `s` as a string literal that means the same whatever `standard_conforming_strings` is.
pub(super) fn quote_literal(s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(Error::backend(
            NAME,
            format!("quoting {s:?}"),
            "a schema name must not contain NUL bytes; fix `schemas`",
        ));
    }
    Ok(format!(
        "E'{}'",
        s.replace('\\', "\\\\").replace('\'', "''")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("a'b\\c").unwrap(), "E'a''b\\\\c'");
        assert!(quote_literal("a\0").is_err());
        let sql = Postgres::from_url("postgres://h/db")
            .unwrap()
            .schemas(["x'; DROP TABLE t; --"])
            .sequence_list_sql()
            .unwrap();
        assert!(sql.contains("IN (E'x''; DROP TABLE t; --')"), "{sql}");
    }

    #[test]
    fn sequence_restore_statement() {
        assert_eq!(sequence_restore_sql(&[]), None);
        let sql = sequence_restore_sql(&[
            SequenceState {
                oid: 10,
                last_value: Some(5),
                start_value: 1,
            },
            SequenceState {
                oid: 11,
                last_value: None,
                start_value: 100,
            },
        ])
        .unwrap();
        assert!(
            sql.contains("(10::oid, 5::int8, 1::int8), (11::oid, NULL::int8, 100::int8)"),
            "{sql}"
        );
    }
}
