//! How a capture rollback proves the data is back: `capture_proof:` in `venomqa.yaml`.

use serde::Deserialize;

/// How a capture rollback proves that the data is back at the checkpoint, beyond its log
/// (`capture_proof:` in `venomqa.yaml`). The proof reads the data itself, so a restore that
/// put back the wrong rows fails instead of reporting success.
///
/// - PostgreSQL and MySQL/MariaDB: [`Count`](Self::Count) compares the row count of every
///   table the rollback restored with the count taken at the checkpoint, inside the
///   restore's transaction (a failed proof undoes the restore and names the table and the
///   counts). [`Digest`](Self::Digest) also compares a digest of every captured table's
///   content (an order-independent sum of a hash of every row), taken at every checkpoint
///   and again before the restore commits: it catches any changed value in any table, at
///   the cost of reading every row of every captured table at each checkpoint and rollback.
/// - Redis: the spare database's key count, or a digest of every key (name, `DUMP`
///   payload, expiry), taken when it was filled and again before the swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CaptureProof {
    /// Row counts (key counts on Redis): cheap, catches rows left behind or missing
    /// (the default).
    #[default]
    Count,
    /// A digest of the whole content: catches any change of any value, at the cost of
    /// reading every row (every key) at each checkpoint and rollback.
    Digest,
}
