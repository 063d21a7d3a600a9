//! The in-memory backend: a key-value store with snapshots, as in the Python original.
//! Each connection is its own store, so parallel tests never share data. It is also the
//! smallest complete [`Backend`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::backend::Backend;
use crate::checkpoint::Point;
use crate::config::BackendConfig;
use crate::error::Result;
use crate::manager::Manager;
use crate::util::test_threads;

/// The in-memory backend, registered as `"memory"`: each connection is a [`MemoryStore`]
/// and each checkpoint a copy of it.
///
/// ```
/// use venomqa::{memory::Memory, Manager, StateManager};
///
/// let mut m = Manager::open(Memory)?;
/// m.connection()?.set("user:1", "ann");
/// m.checkpoint("start")?;
/// m.connection()?.set("user:2", "bob");
/// m.connection()?.remove("user:1");
/// m.rollback("start")?;
/// assert_eq!(m.connection()?.get("user:1"), Some("ann"));
/// assert_eq!(m.connection()?.get("user:2"), None);
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory;

/// The in-memory backend's options: it has none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryOptions {}

/// The in-memory backend's [`StateManager`](crate::StateManager).
pub type MemoryStateManager = Manager<Memory>;

/// A session on the in-memory backend.
pub type MemorySession = crate::Session<MemoryStateManager>;

/// A key-value store of strings: one connection of the in-memory backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    data: BTreeMap<String, String>,
}

impl MemoryStore {
    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.data.insert(key.into(), value.into());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.data.remove(key)
    }

    /// The whole store.
    pub fn data(&self) -> &BTreeMap<String, String> {
        &self.data
    }
}

impl Backend for Memory {
    const NAME: &'static str = "memory";
    type Options = MemoryOptions;
    type Conn = MemoryStore;
    type Mark = MemoryStore;

    fn new(_: &BackendConfig, _: MemoryOptions) -> Result<Self> {
        Ok(Memory)
    }

    fn connect(&self) -> Result<MemoryStore> {
        Ok(MemoryStore::default())
    }

    fn checkpoint(&self, store: &mut MemoryStore, _: Point<'_>) -> Result<MemoryStore> {
        Ok(store.clone())
    }

    fn rollback(&self, store: &mut MemoryStore, _: Point<'_>, saved: &MemoryStore) -> Result<()> {
        store.clone_from(saved);
        Ok(())
    }

    fn release(&self, _: &mut MemoryStore, _: Point<'_>, _: &MemoryStore) -> Result<()> {
        Ok(())
    }

    fn reset(&self, store: &mut MemoryStore) -> Result<()> {
        store.data.clear();
        Ok(())
    }

    fn setup_per_connection(&self) -> bool {
        true
    }

    fn pool_size(&self) -> usize {
        test_threads()
    }
}

impl crate::Session<MemoryStateManager> {
    /// The test's store.
    pub fn store(&mut self) -> &mut MemoryStore {
        self.connection()
    }
}
