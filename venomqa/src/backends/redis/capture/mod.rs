//! Capture isolation (`isolation: capture`): whatever any connection of any process writes
//! to the URL's database `n >= 1` is rolled back.
//!
//! - The connection *pins* database `n` for its whole life (`venomqa:lease:db:<n>` holds
//!   [`CAPTURE_PIN_VALUE`](super::CAPTURE_PIN_VALUE), shared by every capture connection on
//!   it and renewed by each), so database isolation never leases and empties it, and prefix
//!   or none isolation never work in it meanwhile.
//! - A session's first checkpoint takes the database's *turn lock*
//!   (`venomqa:lease:capture:db:<n>`, a lease like the others), so sessions on one database
//!   take turns, across processes too.
//! - Every checkpoint leases a *spare* database (like database isolation does: `SET NX`, the
//!   first free one of the range) and fills it with `COPY` of every key of database `n`, in
//!   one atomic script. A rollback verifies the spare (its digest), then `SWAPDB`s it with
//!   database `n` (every client of `n` sees the checkpoint at once) and, when the
//!   checkpoint stays, copies the data back into the spare, again in one atomic script.
//! - The first checkpoint's spare is *recorded*: its lease key holds a marker without
//!   expiry, and `venomqa:capture:db:<n>` names it, both set in the script that fills it.
//!   If the process dies, the next session on database `n` swaps it back before it starts.

mod checkpoint;
mod diff;
mod rollback;
mod state;
mod turn;

pub(super) use self::state::CaptureState;
use super::options::CaptureProof;
use super::{Redis, LEASE_KEY_PREFIX};

/// The record of a session's first checkpoint on database `db`, in database 0.
pub(super) fn record_key(db: i64) -> String {
    format!("venomqa:capture:db:{db}")
}

/// The turn lock of database `db`, in database 0.
pub(super) fn lock_key(db: i64) -> String {
    format!("{LEASE_KEY_PREFIX}capture:db:{db}")
}

/// The lease key of database `db`, in database 0.
fn db_lease_key(db: i64) -> String {
    format!("{LEASE_KEY_PREFIX}db:{db}")
}

/// What the lease key of a session's first spare holds once it is recorded: no lease
/// thread renews it, and no expiry frees it, until the session ends or the next session
/// restores it.
fn marker(db: i64, owner: &str) -> String {
    format!("venomqa:capture-root:db:{db}:{owner}")
}

impl Redis {
    /// The proof's name, as the scripts take it.
    fn proof(&self) -> &'static str {
        match self.options.capture_proof {
            CaptureProof::Count => "count",
            CaptureProof::Digest => "digest",
        }
    }
}
