//! A custom typed backend knows its backend too: a built-in name in the attribute conflicts.
use std::collections::BTreeMap;
use venomqa::checkpoint::Point;
use venomqa::{venom_test, Backend, BackendConfig, Manager, Result, Session};

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

#[venom_test(backend = "postgres")]
fn counter_on_postgres(_db: &mut Session<Manager<Counter>>) {}

fn main() {}
