//! A typed session names its backend: the attribute may leave it out, repeat it, or name
//! a registration that is not built in (checked when the test runs); an untyped session
//! or a hand-written manager's session takes any name.
use std::collections::BTreeMap;
use venomqa::checkpoint::{Name, Point};
use venomqa::memory::{Memory, MemorySession};
use venomqa::sqlite::SqliteSession;
use venomqa::{venom_test, Backend, BackendConfig, Manager, Result, Session, StateManager};

#[venom_test]
fn sqlite_inferred(db: &mut SqliteSession) {
    let _ = db.conn();
}

#[venom_test(backend = "sqlite")]
fn sqlite_repeated(db: &mut SqliteSession) {
    let _ = db.conn();
}

#[venom_test]
fn memory_inferred(_db: &mut MemorySession) {}

#[venom_test(backend = "memory")]
fn memory_repeated(_db: &mut MemorySession) {}

// The server backends' sessions (behind venomqa's features, which trybuild's copy of this
// crate does not enable) are compiled, inferred and repeated, in tests/it/inference.rs.

// `Registration::of::<Memory>().named("scratch")` may register the type's backend under
// another name: only the run can tell.
#[venom_test(backend = "scratch")]
fn memory_under_another_name(_db: &mut MemorySession) {}

// A configuration entry is read when the test runs.
#[venom_test(config = "analytics")]
fn sqlite_on_an_entry(_db: &mut SqliteSession) {}

// Any backend.
#[venom_test(backend = "mysql")]
fn untyped(_db: &mut Session) {}

struct Counter;

impl Backend for Counter {
    const NAME: &'static str = "counter";
    type Options = BTreeMap<String, String>;
    type Conn = i64;
    type Mark = i64;

    fn new(_: &BackendConfig, _: Self::Options) -> Result<Self> { Ok(Counter) }
    fn connect(&self) -> Result<i64> { Ok(0) }
    fn checkpoint(&self, value: &mut i64, _: Point<'_>) -> Result<i64> { Ok(*value) }
    fn rollback(&self, value: &mut i64, _: Point<'_>, saved: &i64) -> Result<()> {
        *value = *saved;
        Ok(())
    }
    fn release(&self, _: &mut i64, _: Point<'_>, _: &i64) -> Result<()> { Ok(()) }
}

// A custom typed backend, inferred, repeated, or under a name of its own.
#[venom_test]
fn counter_inferred(_db: &mut Session<Manager<Counter>>) {}

#[venom_test(backend = "counter")]
fn counter_repeated(_db: &mut Session<Manager<Counter>>) {}

#[venom_test(backend = "tally")]
fn counter_under_another_name(_db: &mut Session<Manager<Counter>>) {}

/// A hand-written manager (no checkpoints kept; it only has to type-check).
struct HandWritten(Vec<Name>);

impl venomqa::HandWritten for HandWritten {}

impl StateManager for HandWritten {
    fn connect(&mut self) -> Result<()> { Ok(()) }
    fn disconnect(&mut self) -> Result<()> { Ok(()) }
    fn checkpoint(&mut self, _: &str) -> Result<()> { Ok(()) }
    fn rollback(&mut self, _: &str) -> Result<()> { Ok(()) }
    fn release(&mut self, _: &str) -> Result<()> { Ok(()) }
    fn reset(&mut self) -> Result<()> { Ok(()) }
    fn is_connected(&self) -> bool { true }
    fn checkpoints(&self) -> &[Name] { &self.0 }
}

// A hand-written manager's session does not say which backend it runs on.
#[venom_test(backend = "mysql")]
fn hand_written(_db: &mut Session<HandWritten>) {}

fn main() {
    let _ = (Memory, HandWritten(Vec::new()), sqlite_inferred, sqlite_repeated, memory_inferred, memory_repeated);
    let _ = (memory_under_another_name, sqlite_on_an_entry, untyped);
    let _ = (counter_inferred, counter_repeated, counter_under_another_name, hand_written);
}
