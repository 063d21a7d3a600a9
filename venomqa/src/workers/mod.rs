//! Worker databases: capture suites in parallel, a database per concurrent test.
//!
//! Capture isolation rolls back every connection's writes to a database, so two tests on
//! one database take turns. With `workers` on a capture entry, each concurrent test gets a
//! database of its own on the same server, and tests run in parallel:
//!
//! ```yaml
//! backends:
//!   shop:
//!     backend: postgres
//!     url: postgres://postgres@127.0.0.1/shop_test
//!     isolation: capture
//!     setup: schema/
//!     workers: auto            # or a number; VENOMQA_SHOP_WORKERS overrides it
//! ```
//!
//! - **The slot**: under `cargo nextest run`, the process's `NEXTEST_TEST_GLOBAL_SLOT`
//!   (nextest numbers its running tests from 0, and never gives one number to two tests
//!   at once); under `cargo test`, the lowest slot no other test of the process holds,
//!   kept until the session ends. `workers: N` folds slots beyond N onto the first N (tests
//!   that share a database take turns, as without workers). A test may hold several
//!   sessions of the entry at once (a journey's paths on two worker databases): under
//!   nextest the second gets `<slot>_1`, and so on.
//! - **The database**: the entry's database with the machine and the slot appended
//!   (`shop_test_<machine>_w0`, `shop_test_<machine>_w1`, ...; SQLite: `app_w0.db` beside
//!   `app.db`). The machine is `VENOMQA_MACHINE`, else the host name, so CI machines that
//!   share one server never collide. `db.url()` is the worker's URL: start the app on it.
//! - **Made once, reused while the setup is unchanged**: a worker database is created and
//!   the entry's setup (its `setup:` files and registered function) run on it the first
//!   time; a marker on the server (PostgreSQL: the database's comment; MySQL: a
//!   `_vq_worker` table; SQLite: a file beside it) records the setup's fingerprint (the
//!   files' names and contents). Later runs, in any process, find the marker and reuse the
//!   database without running setup; a changed setup drops it and makes it again.
//!   Preparing a worker database is done under a server-side lock (an advisory lock,
//!   `GET_LOCK`, a lock file), so two processes never prepare the same one at once.
//! - **Cleaning up**: [`list`] and [`clean`] (the `venomqa clean <entry>` command) find the
//!   worker databases of an entry by their marker (on every machine) and drop them. A
//!   killed run leaves nothing the next run does not reuse or re-create: a database whose
//!   preparation was cut short has no marker, so it is made again.
//!
//! Backends: PostgreSQL, MySQL/MariaDB and SQLite capture entries. Redis and MongoDB
//! sessions already work in a database of their own per lease.

mod admin;
mod slots;

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::config::BackendConfig;
use crate::error::{Error, Result};

pub(crate) use slots::Slot;

/// The prefix of every marker, so worker databases are told from the others.
const MARKER: &str = "venomqa worker";

/// A worker database of an entry, as [`list`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerDatabase {
    /// Its name (a file path for SQLite).
    pub name: String,
    /// The setup fingerprint it was made with.
    pub fingerprint: String,
}

/// The worker databases of the entry `config` on its server, made on any machine.
pub fn list(config: &BackendConfig) -> Result<Vec<WorkerDatabase>> {
    let mut admin = admin::open(config)?;
    let prefix = format!("{MARKER} {} ", config.entry);
    Ok(admin
        .list()?
        .into_iter()
        .filter_map(|(name, marker)| {
            marker.strip_prefix(&prefix).map(|f| WorkerDatabase {
                name,
                fingerprint: f.to_owned(),
            })
        })
        .collect())
}

/// Drops every worker database of the entry `config` (those [`list`] finds); returns
/// their names. Run it when no test of the entry is running.
pub fn clean(config: &BackendConfig) -> Result<Vec<String>> {
    let found = list(config)?;
    let mut admin = admin::open(config)?;
    let mut dropped = Vec::new();
    for db in found {
        admin.lock(&db.name)?;
        let done = admin.drop_database(&db.name);
        admin.unlock(&db.name)?;
        done?;
        dropped.push(db.name);
    }
    Ok(dropped)
}

/// The entry `name` of the `venomqa.yaml` found from the current directory upward, with
/// the environment's overrides: what `venomqa clean <entry>` cleans.
pub fn entry(name: &str) -> Result<BackendConfig> {
    let start = std::env::current_dir().map_err(|e| {
        Error::config(
            "venomqa.yaml",
            "(search)",
            format!("no current directory: {e}"),
        )
    })?;
    crate::config::Config::discover(&start)?.resolve(crate::config::Selection {
        backend: None,
        entry: Some(name),
        url: None,
    })
}

/// For a session on `config`: when it is a capture entry with workers, its slot (held
/// until the returned [`Slot`] is dropped) and the configuration of that slot's database,
/// prepared. `None` for any other entry.
pub(crate) fn assign(config: &BackendConfig) -> Result<Option<(BackendConfig, Slot)>> {
    let Some(workers) = config.workers else {
        return Ok(None);
    };
    if config.worker.is_some() {
        return Ok(None);
    }
    let slot = slots::take(config, workers)?;
    let worker = prepared(config, &slot)?;
    Ok(Some((worker, slot)))
}

type Prepared = Arc<OnceLock<std::result::Result<BackendConfig, Arc<Error>>>>;

/// The configuration of `slot`'s database, prepared once per process.
fn prepared(config: &BackendConfig, slot: &Slot) -> Result<BackendConfig> {
    static PREPARED: Mutex<Vec<((BackendConfig, String), Prepared)>> = Mutex::new(Vec::new());
    let label = slot.label();
    let cell = {
        let mut all = PREPARED.lock();
        match all.iter().find(|(k, _)| k.0 == *config && k.1 == label) {
            Some((_, cell)) => cell.clone(),
            None => {
                let cell = Prepared::default();
                all.push(((config.clone(), label.to_owned()), cell.clone()));
                cell
            }
        }
    };
    cell.get_or_init(|| prepare(config, label).map_err(Arc::new))
        .clone()
        .map_err(|e| Error::Worker {
            entry: config.entry.clone(),
            worker: label.to_owned(),
            source: Box::new(SharedError(e)),
        })
}

/// Makes worker `label`'s database ready: reused when its marker matches the setup's
/// fingerprint, else (re-)created and set up; under the server-side lock of its name.
fn prepare(config: &BackendConfig, label: &str) -> Result<BackendConfig> {
    if !capture_entry(config) {
        return Err(Error::config(
            &config.source,
            format!("backends.{}.workers", config.entry),
            "worker databases are for capture entries (isolation: capture); a transaction entry already runs its tests in parallel",
        ));
    }
    let mut admin = admin::open(config)?;
    let name = admin.worker_name(&machine(), label);
    let marker = format!("{MARKER} {} {}", config.entry, fingerprint(config)?);
    let mut worker = config.clone();
    worker.url = Some(admin.url_for(&name)?);
    worker.worker = Some(label.to_owned());
    worker.setup = None;
    admin.lock(&name)?;
    let result = (|| {
        if admin.marker(&name)?.as_deref() == Some(marker.as_str()) {
            tracing::debug!(target: "venomqa", entry = %config.entry, worker = label, database = %name, "reusing the worker database");
            return Ok(());
        }
        admin.create(&name)?;
        let mut manager = crate::registry::connect(&worker)?;
        let set_up = crate::pool::run_setup(
            config,
            crate::registry::setup_of(&config.entry).as_deref(),
            manager.as_mut(),
        );
        let _ = manager.disconnect();
        set_up?;
        admin.mark(&name, &marker)?;
        tracing::info!(target: "venomqa", entry = %config.entry, worker = label, database = %name, "created the worker database and ran the entry's setup on it");
        Ok(())
    })();
    admin.unlock(&name)?;
    result.map(|()| worker)
}

/// Whether the entry asks for capture isolation.
fn capture_entry(config: &BackendConfig) -> bool {
    config
        .options::<std::collections::BTreeMap<String, serde_yaml_ng::Value>>()
        .ok()
        .and_then(|o| {
            o.get("isolation")
                .and_then(|v| v.as_str().map(str::to_owned))
        })
        .is_some_and(|i| i == "capture")
}

/// The machine's name in worker database names: `VENOMQA_MACHINE`, else the host name;
/// lower-case letters and digits, at most 16.
fn machine() -> String {
    let raw = std::env::var("VENOMQA_MACHINE")
        .ok()
        .filter(|m| !m.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_else(|| "local".to_owned());
    let clean: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(16)
        .collect();
    if clean.is_empty() {
        "local".to_owned()
    } else {
        clean
    }
}

/// The setup's fingerprint: the names and contents of its files, and whether a setup
/// function is registered (its code cannot be read: change a file, or `venomqa clean`,
/// when only the function changed).
fn fingerprint(config: &BackendConfig) -> Result<String> {
    let mut bytes = Vec::new();
    if let Some(path) = &config.setup {
        let files = crate::pool::setup_files(path).map_err(|e| Error::Setup {
            entry: config.entry.clone(),
            step: path.display().to_string(),
            source: e,
        })?;
        for file in files {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            bytes.extend(name.unwrap_or_default().as_bytes());
            bytes.push(0);
            bytes.extend(std::fs::read(&file).map_err(|e| Error::Setup {
                entry: config.entry.clone(),
                step: file.display().to_string(),
                source: e.into(),
            })?);
            bytes.push(0);
        }
    }
    if crate::registry::setup_of(&config.entry).is_some() {
        bytes.extend(b"+function");
    }
    Ok(format!("{:016x}", crate::util::fnv64(&bytes)))
}

/// An error kept for every later use of a failed preparation.
#[derive(Debug)]
struct SharedError(Arc<Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

#[cfg(test)]
mod tests;
