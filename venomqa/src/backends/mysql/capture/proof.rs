//! The proof of a capture rollback on MySQL: what differs between a table's content at
//! the mark and after the restore, and the check after the commit (the log past the mark
//! empty, the counters back).

use mysql::Conn;

use super::marks::{Content, Mark, Read};
use super::{Capture, NAME};
use crate::backends::sql_capture::{check_failed, logged_after};
use crate::error::Result;

impl Capture {
    /// What differs between table `i`'s content at the mark and after the restore.
    pub(super) fn content_problem(
        &self,
        i: usize,
        then: &Content,
        now: &Content,
    ) -> Option<String> {
        let name = &self.tables[i].name;
        if now.rows != then.rows {
            Some(format!(
                "table {name} has {} rows after the restore, {} at the checkpoint",
                now.rows, then.rows
            ))
        } else if now.digest != then.digest {
            Some(format!(
                "table {name} has its {} rows of the checkpoint but other values (its content digest differs)",
                now.rows
            ))
        } else {
            None
        }
    }

    /// After a rollback: the undo log past the mark is empty and the counters are back
    /// (the schema was checked just before).
    pub(super) fn prove(&self, conn: &mut Conn, mark: &Mark, operation: &str) -> Result<()> {
        let state = self.state(conn, Read::COUNTERS)?;
        let mut problems = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            if state.mark.seqs[i] > mark.seqs[i] {
                problems.push(logged_after(&table.name));
            }
            if state.mark.counters[i] != mark.counters[i] && mark.counters[i].is_some() {
                problems.push(format!(
                    "{}'s AUTO_INCREMENT is {:?}, not {:?}",
                    table.name, state.mark.counters[i], mark.counters[i]
                ));
            }
        }
        let writers = if problems.is_empty() {
            Vec::new()
        } else {
            self.state(conn, Read::WRITERS)
                .map(|s| s.writers)
                .unwrap_or_default()
        };
        if !writers.is_empty() {
            problems.push(format!(
                "other sessions are writing: {}",
                writers.join("; ")
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(check_failed(NAME, operation, &problems))
        }
    }
}
