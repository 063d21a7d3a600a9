//! Which worker slot a session takes: nextest's slot for the process, or under `cargo
//! test` the lowest slot of the entry that no running session of the process holds.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::config::{BackendConfig, Workers};
use crate::error::{Error, Result};
use crate::pool::DEFAULT_LEASE_TIMEOUT;

/// The slots taken, per entry (its configuration's entry and URL).
static TAKEN: Mutex<Option<HashMap<String, Vec<bool>>>> = Mutex::new(None);
static FREED: Condvar = Condvar::new();

/// A worker slot, held by a session until it ends.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Its place in the process's table of the entry.
    index: usize,
    /// The entry's key in [`TAKEN`].
    held: Option<String>,
    /// What names its database: the slot's number, or under nextest the process's slot
    /// and, for a second session of the process at once, its place (`3_1`).
    label: String,
}

impl Slot {
    /// The slot's place in the process's table.
    #[cfg(test)]
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// What names its database.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(key) = self.held.take() {
            let mut taken = TAKEN.lock();
            if let Some(slots) = taken.as_mut().and_then(|t| t.get_mut(&key)) {
                slots[self.index] = false;
            }
            FREED.notify_all();
        }
    }
}

/// How many slots `cargo test` may use: `workers: N`, or its test threads.
fn count(workers: Workers) -> usize {
    match workers {
        Workers::Count(n) => n.max(1),
        Workers::Auto => crate::util::test_threads().max(1),
    }
}

/// How many sessions of one entry a process under nextest may hold at once (a test
/// running a journey's paths on several worker databases, say).
const PER_PROCESS: usize = 16;

/// The slot of a session on `config`. Under nextest the process's slot names the
/// database, and a second session of the process at the same time gets one of its own
/// (`<slot>_1`, ...), so nothing waits for a session its own test holds.
pub(crate) fn take(config: &BackendConfig, workers: Workers) -> Result<Slot> {
    if let Some(slot) = nextest_slot() {
        let slot = match workers {
            Workers::Auto => slot,
            Workers::Count(n) => slot % n.max(1),
        };
        let mut taken = in_process(config, PER_PROCESS)?;
        taken.label = match taken.index {
            0 => slot.to_string(),
            k => format!("{slot}_{k}"),
        };
        return Ok(taken);
    }
    in_process(config, count(workers))
}

/// The lowest of slots `0..n` of `config`'s database that no session of the process holds,
/// waiting (up to the lease timeout) for one.
pub(super) fn in_process(config: &BackendConfig, n: usize) -> Result<Slot> {
    let key = format!("{}\0{}", config.entry, config.url_or(""));
    let started = Instant::now();
    let timeout = config.lease_timeout.unwrap_or(DEFAULT_LEASE_TIMEOUT);
    let mut taken = TAKEN.lock();
    loop {
        let slots = taken
            .get_or_insert_with(HashMap::new)
            .entry(key.clone())
            .or_default();
        if slots.len() < n {
            slots.resize(n, false);
        }
        // Only the first n: two configurations of one database may count differently.
        if let Some(index) = slots[..n].iter().position(|t| !t) {
            slots[index] = true;
            return Ok(Slot {
                index,
                held: Some(key),
                label: index.to_string(),
            });
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Error::Worker {
                entry: config.entry.clone(),
                worker: format!("(any of {n})"),
                source: format!("every one of the {n} worker slots stayed taken for {} ms; raise workers, or look for a test that never finishes", timeout.as_millis()).into(),
            });
        }
        FREED.wait_for(&mut taken, left);
    }
}

/// The process's slot under nextest (`NEXTEST_TEST_GLOBAL_SLOT`).
fn nextest_slot() -> Option<usize> {
    std::env::var("NEXTEST_TEST_GLOBAL_SLOT").ok()?.parse().ok()
}
