//! The mark of a MongoDB checkpoint: what it saved, in the test process's memory or, with
//! capture, in a snapshot database on the server.

use super::capture::CaptureMark;
use super::snapshot::CollectionSnapshot;

/// What a MongoDB checkpoint saved: the checkpoint's mark, in the test process's memory.
#[derive(Debug, Clone)]
pub struct Snapshot(pub(super) Saved);

/// What a checkpoint saved, by isolation.
#[derive(Debug, Clone)]
pub(super) enum Saved {
    /// The database was known to be freshly prepared (empty, or a copy of the template)
    /// and untouched: restoring it is `dropDatabase` (+ the template copy).
    Fresh,
    /// Every collection in scope.
    Full(Vec<CollectionSnapshot>),
    /// Capture: copies in a snapshot database on the server.
    Capture(CaptureMark),
}
