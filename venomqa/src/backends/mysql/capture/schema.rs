//! The schema check of capture on MySQL: a rollback restores nothing when the schema is
//! not the one capture was installed for, and says what changed.

use mysql::Conn;

use super::marks::State;
use super::{Capture, NAME, ROWID};
use crate::backends::sql_capture::{shape_changes, Shape};
use crate::error::{Error, Result};

impl Capture {
    /// The schema changed since capture was installed: what changed, in words.
    pub(super) fn schema_change(&self, conn: &mut Conn, state: &State) -> String {
        let rebuilt: Vec<&str> = self
            .ids
            .iter()
            .filter(|(name, id)| state.ids.get(*name).is_some_and(|now| now != *id))
            .map(|(name, _)| name.as_str())
            .collect();
        match Self::read(conn, &self.database, self.quiescence) {
            Ok(now) => {
                let describe = |c: &Capture| -> Shape {
                    c.tables
                        .iter()
                        .map(|t| {
                            (
                                t.name.clone(),
                                t.columns
                                    .iter()
                                    .filter(|c| c.name != ROWID)
                                    .map(|c| format!("{} {}", c.name, c.ty))
                                    .collect(),
                            )
                        })
                        .collect()
                };
                let mut changes = shape_changes(&describe(self), &describe(&now));
                for table in rebuilt {
                    changes.push(format!("table {table} was truncated or rebuilt"));
                }
                if changes.is_empty() {
                    "a column's definition or a default changed".to_owned()
                } else {
                    changes.join("; ")
                }
            }
            Err(e) => format!("(could not read the schema: {e})"),
        }
    }

    /// Fails, restoring nothing, when the schema is not the one capture was installed for
    /// (`state` must have been read with [`Read::SCHEMA`](super::marks::Read::SCHEMA)).
    pub(super) fn check_schema(
        &self,
        conn: &mut Conn,
        state: &State,
        operation: &str,
    ) -> Result<()> {
        if state.mark.fingerprint != self.fingerprint {
            let what = self.schema_change(conn, state);
            return Err(Error::state_lost(
                NAME,
                format!("{operation}: the schema changed since capture was installed ({what}), so nothing was restored; run DDL in setup, not in tests"),
            ));
        }
        Ok(())
    }
}
