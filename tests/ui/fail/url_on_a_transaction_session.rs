use venomqa::{sqlite::SqliteSession, venom_test};

// `url()` hands the app under test a URL whose writes the session rolls back. A
// transaction session cannot roll back another connection's writes, so it has no `url()`
// (nor `diff()`): take `SqliteCaptureSession` on an `isolation: capture` entry.
#[venom_test]
fn leaks(db: &mut SqliteSession) {
    let _ = db.url();
    let _ = db.diff();
}

fn main() {}
