//! `backend = ".."` naming a built-in backend other than the one the session type runs on.
use venomqa::memory::MemorySession;
use venomqa::sqlite::SqliteSession;
use venomqa::venom_test;

#[venom_test(backend = "mysql")]
fn sqlite_session_on_mysql(db: &mut SqliteSession) {
    let _ = db.conn();
}

#[venom_test(backend = "sqlite")]
fn memory_session_on_sqlite(_db: &mut MemorySession) {}

fn main() {}
