//! The in-memory backend: a key-value store with snapshots, as in the Python original.
//! Each connection is its own store, so parallel tests never share data.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::registry::{test_threads, Backend};
use crate::state::{BaseStateManager, StateManager};

/// A session on the in-memory backend.
pub type MemorySession = crate::Session<MemoryStateManager>;

/// A key-value store whose checkpoints are snapshots (copies) of the whole map.
///
/// Registered as backend `"memory"`. Useful for code whose state you keep in memory, and
/// as the smallest complete example of a [`StateManager`].
///
/// ```
/// use venomqa::{memory::MemoryStateManager, StateManager};
///
/// let mut store = MemoryStateManager::new();
/// store.connect()?;
/// store.set("user:1", "ann");
/// store.checkpoint("start")?;
/// store.set("user:2", "bob");
/// store.remove("user:1");
/// store.rollback("start")?;
/// assert_eq!(store.get("user:1"), Some("ann"));
/// assert_eq!(store.get("user:2"), None);
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStateManager {
    base: BaseStateManager,
    data: BTreeMap<String, String>,
    snapshots: Vec<BTreeMap<String, String>>,
}

impl Default for MemoryStateManager {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStateManager {
    /// An empty, disconnected store.
    pub fn new() -> Self {
        MemoryStateManager {
            base: BaseStateManager::new("memory", "memory://"),
            data: BTreeMap::new(),
            snapshots: Vec::new(),
        }
    }

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

impl StateManager for MemoryStateManager {
    fn connect(&mut self) -> Result<()> {
        self.base.set_connected(true);
        Ok(())
    }

    fn disconnect(&mut self) -> Result<()> {
        self.snapshots.clear();
        self.base.set_connected(false);
        Ok(())
    }

    fn checkpoint(&mut self, name: &str) -> Result<()> {
        let (data, snapshots) = (&self.data, &mut self.snapshots);
        self.base.checkpoint(name, |_, _| {
            snapshots.push(data.clone());
            Ok(())
        })
    }

    fn rollback(&mut self, name: &str) -> Result<()> {
        let (data, snapshots) = (&mut self.data, &mut self.snapshots);
        self.base.rollback(name, |index, _| {
            snapshots.truncate(index + 1);
            data.clone_from(&snapshots[index]);
            Ok(())
        })
    }

    fn release(&mut self, name: &str) -> Result<()> {
        let snapshots = &mut self.snapshots;
        self.base.release(name, |index, _| {
            snapshots.truncate(index);
            Ok(())
        })
    }

    fn discard(&mut self, name: &str) -> Result<()> {
        let (data, snapshots) = (&mut self.data, &mut self.snapshots);
        self.base.discard(name, |index, _| {
            snapshots.truncate(index + 1);
            *data = snapshots.pop().expect("a snapshot per checkpoint");
            Ok(())
        })
    }

    fn reset(&mut self) -> Result<()> {
        self.base.ensure_connected()?;
        self.data.clear();
        self.snapshots.clear();
        self.base.clear_checkpoints();
        Ok(())
    }

    fn is_connected(&self) -> bool {
        self.base.is_connected()
    }

    fn checkpoints(&self) -> &[String] {
        self.base.checkpoints()
    }

    fn setup_per_connection(&self) -> bool {
        true
    }
}

impl crate::Session<MemoryStateManager> {
    /// The test's store.
    pub fn store(&mut self) -> &mut MemoryStateManager {
        self.manager()
    }
}

pub(crate) fn backend() -> Backend {
    Backend::new("memory", |_| Ok(MemoryStateManager::new()))
        .default_pool_size_with(|_| test_threads())
}
