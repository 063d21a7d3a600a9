//! The proof of a capture rollback on PostgreSQL: the content check run inside the
//! restore's transaction (it raises [`PROOF_FAILED`]), and the check after the commit
//! (no log entry past the mark, the sequences and the schema as they were).

use std::fmt::Write as _;

use postgres::Client;

use super::introspect::digest_of;
use super::marks::Mark;
use super::{Capture, NAME};
use crate::backends::sql_capture::postgres_literal as lit;
use crate::backends::sql_capture::{check_failed, logged_after};
use crate::capture::proof::CaptureProof;
use crate::error::Result;

/// The SQLSTATE of a failed content proof inside the restore's transaction.
pub(super) const PROOF_FAILED: &str = "VQ001";

impl Capture {
    /// The content proof, run inside the restore's transaction before it commits: the row
    /// count of every restored table (with `capture_proof: digest`, the digest of every
    /// table) equals the mark's, or it raises [`PROOF_FAILED`] and nothing is restored.
    pub(super) fn content_proof(&self, mark: &Mark, changed: &[usize]) -> String {
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

    pub(super) fn prove(&self, client: &mut Client, mark: &Mark, operation: &str) -> Result<()> {
        let state = self.state(client, false)?;
        let changed = self.changed(client, mark)?;
        let mut problems: Vec<String> = self
            .tables
            .iter()
            .zip(&changed)
            .filter(|(_, c)| **c)
            .map(|(t, _)| logged_after(&t.label()))
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
            Err(check_failed(NAME, operation, &problems))
        }
    }
}
