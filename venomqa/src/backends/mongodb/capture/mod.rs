//! Capture isolation (`isolation: capture`): whatever any connection of any process writes
//! to the captured database is rolled back, from server-side copies.
//!
//! - Sessions on the database take turns through the shared-database lock
//!   (`venomqa_leases.locks`, as `isolation: shared` does).
//! - A checkpoint at depth `d` copies every collection into the snapshot database
//!   `vq_snap_<key>_<d>` with `$out` (server-side: no document crosses the network), and
//!   records each collection's type, options, indexes, and a fingerprint of its documents
//!   (`dbHash` where the server has it; else a hash of the raw BSON of every document,
//!   streamed, never decoded). It then fingerprints the copies and the originals again: a
//!   collection written to meanwhile is copied again, until `quiescence_timeout_ms`.
//! - A rollback fingerprints the collections, restores only those that differ (missing,
//!   other type, options, indexes or documents), drops the ones created since, and looks
//!   again: what it finds the second time was written during the rollback, and is restored
//!   again, until `quiescence_timeout_ms`, then named in the error. The last look that finds
//!   nothing to do is the proof.
//! - The first checkpoint of a session is recorded (`venomqa_leases.capture`, with what it
//!   copied), so the next session restores it if this process dies; the snapshot databases
//!   of a dead session are dropped by the next one.

mod checkpoint;
mod collection;
mod diff;
mod fingerprint;
mod record;
mod restore;

use std::time::Duration;

use self::collection::Captured;
use super::MongoDb;

/// The prefix of every snapshot database capture makes.
pub const SNAPSHOT_PREFIX: &str = "vq_snap_";

/// What a capture checkpoint saved: the snapshot database holding the copies, and what
/// each collection was.
#[derive(Debug, Clone)]
pub(super) struct CaptureMark {
    database: String,
    collections: Vec<Captured>,
}

/// The snapshot database of `database` at `depth`: `vq_snap_<name>_<hash>_<depth>`, at most
/// 63 bytes, never of the per-lease databases' shape.
pub(super) fn snapshot_name(database: &str, depth: usize) -> String {
    format!("{}{depth}", snapshot_stem(database))
}

/// Every snapshot database name of `database` starts with this.
fn snapshot_stem(database: &str) -> String {
    let kept: String = database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let hash = database.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{SNAPSHOT_PREFIX}{kept}_{:08x}_", hash as u32)
}

impl MongoDb {
    /// How long a checkpoint or a rollback goes on while another client keeps writing.
    fn quiescence(&self) -> Duration {
        Duration::from_millis(self.options.quiescence_timeout_ms.unwrap_or(5000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::mongodb::lease::is_lease_database_name;

    #[test]
    fn snapshot_names_are_short_distinct_and_never_lease_names() {
        let a = snapshot_name("shop", 0);
        assert!(a.starts_with("vq_snap_shop_") && a.ends_with("_0"), "{a}");
        assert_ne!(snapshot_name("shop.x", 1), snapshot_name("shop_x", 1));
        let long = snapshot_name(&"x".repeat(80), 999);
        assert!(long.len() <= 63, "{long}");
        assert!(!is_lease_database_name(&a));
        assert!(!is_lease_database_name(&long));
    }
}
