//! What capture isolation records: the row-level [`Diff`] of everything any connection
//! changed since a checkpoint.
//!
//! With `isolation: capture`, a backend rolls back writes made by any connection of any
//! process (an API server, an app's own pool), not only the test's own. The undo log it
//! keeps for that is also a record of what changed: [`Session::diff`](crate::Session::diff)
//! reads it.

pub(crate) mod diff;
pub(crate) mod proof;

pub use diff::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
pub use proof::CaptureProof;

/// Removes what capture installed for the entry `entry` of `venomqa.yaml` (found from the
/// current directory up, or `VENOMQA_CONFIG`), leaving the data as it is: the way out
/// when a session ended without rolling back and its changes cannot be restored (DDL
/// inside a session, a schema changed since a test died). The next session installs
/// capture afresh for the schema as it is then. `venomqa capture reset <entry>` runs it.
///
/// PostgreSQL and MySQL/MariaDB drop their triggers, undo tables, row-hash indexes (or
/// invisible row ids) and bookkeeping; Redis and MongoDB restore what a dead session left
/// if they still can, then drop their spare databases or snapshots; SQLite installs
/// nothing, so there is nothing to remove. Returns a one-line account of what it did.
pub fn reset(entry: &str) -> crate::Result<String> {
    let start = std::env::current_dir().map_err(|e| {
        crate::Error::config(
            "venomqa.yaml",
            "(search)",
            format!("no current directory: {e}"),
        )
    })?;
    let config = crate::config::Config::discover(&start)?.resolve(crate::config::Selection {
        backend: None,
        entry: Some(entry),
        url: None,
    })?;
    // Only `isolation` matters here; the backend checks the rest when it is built.
    let captures = config
        .options::<std::collections::BTreeMap<String, serde_yaml_ng::Value>>()
        .ok()
        .and_then(|o| {
            o.get("isolation")
                .and_then(|v| v.as_str().map(str::to_owned))
        })
        .is_some_and(|i| i == "capture");
    if !captures {
        return Err(crate::Error::config(
            "venomqa.yaml",
            format!("backends.{entry}"),
            "this entry does not use `isolation: capture`, so there is nothing to reset",
        ));
    }
    let done = |what: &str| Ok(format!("{entry} ({}): {what}", config.backend));
    match config.backend.as_str() {
        #[cfg(feature = "postgres")]
        "postgres" => {
            crate::manager::Manager::<crate::postgres::Postgres>::from_config(&config)?
                .backend()
                .uninstall_capture()?;
            done("capture's triggers, undo tables, indexes and bookkeeping removed; the next session installs them for the schema as it is")
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            crate::manager::Manager::<crate::mysql::MySql>::from_config(&config)?
                .backend()
                .uninstall_capture()?;
            done("capture's triggers, undo tables, invisible row ids and bookkeeping removed; the next session installs them for the schema as it is")
        }
        #[cfg(feature = "redis")]
        "redis" => {
            crate::manager::Manager::<crate::redis::Redis>::from_config(&config)?
                .backend()
                .uninstall_capture()?;
            done("capture's spare databases and record freed")
        }
        #[cfg(feature = "mongodb")]
        "mongodb" => {
            crate::manager::Manager::<crate::mongodb::MongoDb>::from_config(&config)?
                .backend()
                .uninstall_capture()?;
            done("capture's snapshot databases and record dropped")
        }
        "sqlite" => done("SQLite capture installs nothing; nothing to reset"),
        other => Err(crate::Error::config(
            "venomqa.yaml",
            format!("backends.{entry}.backend"),
            format!("capture reset knows no backend {other:?} in this build; build it with the cargo feature of that name (venomqa-cli: --features {other}, or --features all)"),
        )),
    }
}
