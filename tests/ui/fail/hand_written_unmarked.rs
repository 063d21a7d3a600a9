use venomqa::checkpoint::Name;
use venomqa::{venom_test, Result, Session, StateManager};

/// A hand-written manager without `impl venomqa::HandWritten for Notes {}`.
struct Notes(Vec<Name>);

impl StateManager for Notes {
    fn connect(&mut self) -> Result<()> { Ok(()) }
    fn disconnect(&mut self) -> Result<()> { Ok(()) }
    fn checkpoint(&mut self, _: &str) -> Result<()> { Ok(()) }
    fn rollback(&mut self, _: &str) -> Result<()> { Ok(()) }
    fn release(&mut self, _: &str) -> Result<()> { Ok(()) }
    fn reset(&mut self) -> Result<()> { Ok(()) }
    fn is_connected(&self) -> bool { true }
    fn checkpoints(&self) -> &[Name] { &self.0 }
}

#[venom_test(backend = "notes")]
fn typed_by_hand(_db: &mut Session<Notes>) {}

fn main() {}
