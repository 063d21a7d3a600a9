//! The schema check of capture on PostgreSQL: a checkpoint or a rollback fails, restoring
//! nothing, when the schema or capture's triggers are not those it was installed for,
//! and says what changed.

use postgres::Client;

use super::marks::State;
use super::{Capture, NAME};
use crate::backends::sql_capture::{shape_changes, Shape};
use crate::error::{Error, Result};

impl Capture {
    /// The schema changed since capture was installed: what changed, in words.
    pub(super) fn schema_change(&self, client: &mut Client) -> String {
        match Self::read(client, &self.schemas, self.quiescence, self.proof) {
            Ok(now) => {
                let describe = |c: &Capture| -> Shape {
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
                let changes = shape_changes(&describe(self), &describe(&now));
                if changes.is_empty() {
                    "a column's type, nullability or identity changed".to_owned()
                } else {
                    changes.join("; ")
                }
            }
            Err(e) => format!("(could not read the schema: {e})"),
        }
    }

    /// Fails, restoring nothing, when the schema or capture's triggers are not those
    /// capture was installed for.
    pub(super) fn check_schema(
        &self,
        client: &mut Client,
        state: &State,
        operation: &str,
    ) -> Result<()> {
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
}
