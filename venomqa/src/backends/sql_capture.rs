//! What the two SQL server backends, MySQL / MariaDB and PostgreSQL, share, mostly around
//! capture isolation: the names of the objects capture installs (shortened with the one
//! stable hash, [`fnv64`]), the string literals of each dialect, the words that tell a
//! schema change, a driver error in words ([`Worded`]), the settings both read from their
//! entry, and the messages both give.
//!
//! Each helper keeps the exact text the backends produced before they shared it: names
//! installed on servers and error messages are part of their behaviour.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::BackendConfig;
use crate::error::{Error, Result};
use crate::redact::SecretUrl;
use crate::util::{fnv64, test_threads};

/// A driver's error in words: `text` (one line, as the server or the operating system put
/// it, with what to do) is what a reader sees; the driver's error stays its
/// [`source`](std::error::Error::source), which [`Error::driver`] finds. Each backend
/// words its own driver's errors (`Described` on MySQL, `DriverError` on PostgreSQL).
#[derive(Debug)]
pub(crate) struct Worded<E> {
    text: String,
    error: E,
}

impl<E> Worded<E> {
    /// `error`, shown as `text`.
    pub(crate) fn with_text(text: String, error: E) -> Self {
        Worded { text, error }
    }
}

impl<E> std::fmt::Display for Worded<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Worded<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// How many rows of each table a diff lists.
pub(crate) const DIFF_ROWS: usize = 20;

/// The operation that restores what a dead session left (its recorded first checkpoint).
pub(crate) const DEAD_SESSION: &str = "restoring what a dead session left";

/// The operation of a capture session's first checkpoint.
pub(crate) const FIRST_CHECKPOINT: &str = "the first checkpoint";

/// What a lost connection means for a capture session's changes.
pub(crate) const LOST_OUTCOME: &str =
    "the capture log is kept on the server, so the next session restores the recorded checkpoint";

/// How long a capture session waits for another to finish with the database, unless the
/// entry's `lease_timeout_ms` says otherwise.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// How long checkpoints and rollbacks wait for other sessions' writes, unless
/// `quiescence_timeout_ms` says otherwise.
const DEFAULT_QUIESCENCE_MS: u64 = 5000;

/// How a server limits the names of its objects (tables, triggers, functions, indexes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameLimit {
    /// The longest name the server takes.
    max: usize,
    /// How much of a too long table name a shortened name keeps.
    keep: usize,
    /// Whether lengths count bytes (PostgreSQL) or characters (MySQL).
    bytes: bool,
}

/// MySQL / MariaDB: 64 characters; a shortened name keeps 40 characters of the table's.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) const MYSQL_NAMES: NameLimit = NameLimit {
    max: 64,
    keep: 40,
    bytes: false,
};

/// PostgreSQL: 63 bytes; a shortened name keeps at most 36 bytes of the table's.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const POSTGRES_NAMES: NameLimit = NameLimit {
    max: 63,
    keep: 36,
    bytes: true,
};

/// The name of an object capture installs for `table`: `prefix + table + suffix`, or,
/// when that is too long for the server, the start of the table's name followed by `_`
/// and eight hex digits of its hash, so two long names stay apart.
pub(crate) fn object_name(limit: NameLimit, prefix: &str, table: &str, suffix: &str) -> String {
    let full = format!("{prefix}{table}{suffix}");
    let length = if limit.bytes {
        full.len()
    } else {
        full.chars().count()
    };
    if length <= limit.max {
        return full;
    }
    let mut short = String::new();
    for (i, c) in table.chars().enumerate() {
        let fits = if limit.bytes {
            short.len() + c.len_utf8() <= limit.keep
        } else {
            i < limit.keep
        };
        if !fits {
            break;
        }
        short.push(c);
    }
    format!(
        "{prefix}{short}_{:08x}{suffix}",
        fnv64(table.as_bytes()) as u32
    )
}

/// A MySQL string literal: `'` doubled, backslashes and NUL escaped.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) fn mysql_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A PostgreSQL string literal (standard_conforming_strings is on since PostgreSQL 9.1).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn postgres_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Each captured table's columns, as `name type`, by the table's label: what a schema
/// change is told in.
pub(crate) type Shape = BTreeMap<String, Vec<String>>;

/// What changed between two [`Shape`]s, one phrase per table: created, dropped, or the
/// columns it gained (`+[..]`) and lost (`-[..]`).
pub(crate) fn shape_changes(before: &Shape, after: &Shape) -> Vec<String> {
    let mut changes = Vec::new();
    for (table, cols) in after {
        match before.get(table) {
            None => changes.push(format!("table {table} was created")),
            Some(old) if old != cols => {
                let added: Vec<&str> = cols
                    .iter()
                    .filter(|c| !old.contains(c))
                    .map(String::as_str)
                    .collect();
                let removed: Vec<&str> = old
                    .iter()
                    .filter(|c| !cols.contains(c))
                    .map(String::as_str)
                    .collect();
                let mut text = format!("table {table}:");
                if !added.is_empty() {
                    text.push_str(&format!(" +[{}]", added.join(", ")));
                }
                if !removed.is_empty() {
                    text.push_str(&format!(" -[{}]", removed.join(", ")));
                }
                changes.push(text);
            }
            _ => {}
        }
    }
    for table in before.keys().filter(|t| !after.contains_key(*t)) {
        changes.push(format!("table {table} was dropped"));
    }
    changes
}

/// How long a capture rollback pauses before it runs again.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// A capture rollback that proves itself, run again until it does or `quiescence` has
/// passed. `restore` restores once (waiting for other sessions at most until the deadline
/// it is given) and returns the error of a content proof that failed inside its
/// transaction (then nothing was restored); `prove` checks the log after a restore. A
/// session that committed during a restore is in the log by then, so one more try
/// restores it too; a content proof that fails twice in a row is the restore's own fault,
/// and fails at once.
pub(crate) fn until_proven<C: ?Sized>(
    conn: &mut C,
    quiescence: Duration,
    mut restore: impl FnMut(&mut C, Instant) -> Result<Option<Error>>,
    mut prove: impl FnMut(&mut C) -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + quiescence;
    let mut unproven = 0;
    loop {
        let proven = match restore(conn, deadline)? {
            None => prove(conn),
            Some(error) => {
                unproven += 1;
                if unproven >= 2 {
                    return Err(error);
                }
                Err(error)
            }
        };
        match proven {
            Ok(()) => return Ok(()),
            Err(_) if Instant::now() < deadline => std::thread::sleep(RETRY_PAUSE),
            Err(e) => return Err(e),
        }
    }
}

/// A problem the check after a rollback found: `table` has log entries past the mark.
pub(crate) fn logged_after(table: &str) -> String {
    format!("{table} has changes logged after the rollback")
}

/// The [`Error::StateLost`] of a rollback whose check after the restore found `problems`.
pub(crate) fn check_failed(backend: &str, operation: &str, problems: &[String]) -> Error {
    Error::state_lost(
        backend,
        format!("{operation}: the rollback's check failed: {}; another connection wrote during the rollback", problems.join("; ")),
    )
}

/// The error of a capture operation that waited for other sessions' writes: they `kept`
/// something (`uncommitted changes for 5 s`) and are still at it.
pub(crate) fn writers_busy(
    backend: &str,
    operation: &str,
    kept: &str,
    writers: &[String],
) -> Error {
    Error::backend(
        backend,
        operation,
        format!(
            "other sessions kept {kept} ({}); let the app finish its requests first, or raise quiescence_timeout_ms",
            if writers.is_empty() { "sessions unknown".to_owned() } else { writers.join("; ") }
        ),
    )
}

/// The error of a capture lock that another session held on `database` for `timeout`.
pub(crate) fn lock_refused(backend: &str, database: &str, timeout: Duration) -> Error {
    Error::backend(
        backend,
        "taking the capture lock",
        format!(
            "another session held database {database} for {} s; look for a test that never finishes",
            timeout.as_secs()
        ),
    )
}

/// The error of a capture operation before the session's first checkpoint attached it.
pub(crate) fn not_attached(backend: &str) -> Error {
    Error::state_lost(
        backend,
        "capture is not attached: the session's first checkpoint did not complete",
    )
}

/// [`Session::url`](crate::Session::url): the entry's URL under capture isolation, else
/// refused (the test's changes are in its own connection's transaction).
pub(crate) fn url_for_others(backend: &str, capture: bool, url: &SecretUrl) -> Result<SecretUrl> {
    if capture {
        Ok(url.clone())
    } else {
        Err(Error::unsupported(
            backend,
            "a URL for other connections",
            "the test's changes live in its own connection's transaction, which other connections do not see; use `isolation: capture`",
        ))
    }
}

/// The refusal of [`Session::diff`](crate::Session::diff) since `checkpoint` without
/// capture isolation.
pub(crate) fn no_diff(backend: &str, checkpoint: &str) -> Error {
    Error::unsupported(
        backend,
        format!("diff() since checkpoint {checkpoint:?}"),
        "only capture isolation keeps a record of changes; use `isolation: capture`",
    )
}

/// The configuration error of a capture entry whose URL names no database; `form` is the
/// URL's form with one (`mysql://user@host/database`).
pub(crate) fn needs_database(config: &BackendConfig, form: &str) -> Error {
    Error::config(
        &config.source,
        format!("backends.{}.url", config.entry),
        format!("capture needs the database in the URL ({form}): it is the one whose writes are rolled back"),
    )
}

/// The pool size: one connection under capture (one session at a time rolls the shared
/// database back), else one per test thread.
pub(crate) fn pool_size(capture: bool) -> usize {
    if capture {
        1
    } else {
        test_threads()
    }
}

/// How long checkpoints and rollbacks wait for other sessions' writes
/// (`quiescence_timeout_ms`, default 5000).
pub(crate) fn quiescence(timeout_ms: Option<u64>) -> Duration {
    Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_QUIESCENCE_MS))
}

/// How long a capture session waits for another to finish with the database: the entry's
/// lease timeout, default 300 s.
pub(crate) fn lock_timeout(config: &BackendConfig) -> Duration {
    config.lease_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT)
}

/// The read and write timeout of the entry's connections: `io_timeout_ms` (0: none), else
/// `default`.
pub(crate) fn io_timeout(config: &BackendConfig, default: Duration) -> Option<Duration> {
    match config.io_timeout {
        Some(t) if t.is_zero() => None,
        Some(t) => Some(t),
        None => Some(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_uniquely() {
        let long = "t".repeat(70);
        for limit in [MYSQL_NAMES, POSTGRES_NAMES] {
            let a = object_name(limit, "_vq_u_", &long, "");
            let b = object_name(limit, "_vq_u_", &format!("{long}x"), "");
            assert!(a.len() <= limit.max && b.len() <= limit.max, "{a} {b}");
            assert_ne!(a, b);
            assert_eq!(object_name(limit, "_vq_u_", "users", ""), "_vq_u_users");
        }
        // The same hash suffix as ever: names already installed on servers stay valid.
        assert_eq!(
            object_name(MYSQL_NAMES, "_vq_u_", &long, ""),
            format!(
                "_vq_u_{}_{:08x}",
                "t".repeat(40),
                fnv64(long.as_bytes()) as u32
            )
        );
        assert_eq!(
            object_name(POSTGRES_NAMES, "_vq_", &long, "_ins"),
            format!(
                "_vq_{}_{:08x}_ins",
                "t".repeat(36),
                fnv64(long.as_bytes()) as u32
            )
        );
        // Characters for MySQL, bytes for PostgreSQL.
        let wide = "é".repeat(30);
        assert_eq!(
            object_name(MYSQL_NAMES, "_vq_u_", &wide, ""),
            format!("_vq_u_{wide}")
        );
        let short = object_name(POSTGRES_NAMES, "_vq_u_", &wide, "");
        assert!(
            short.starts_with(&format!("_vq_u_{}_", "é".repeat(18))),
            "{short}"
        );
        assert!(short.len() <= 63, "{short}");
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(mysql_literal("a'b\\c"), "'a''b\\\\c'");
        assert_eq!(mysql_literal("a\0"), "'a\\0'");
        assert_eq!(postgres_literal("a'b\\c"), "'a''b\\c'");
    }

    #[test]
    fn shape_changes_name_each_table() {
        let shape = |entries: &[(&str, &[&str])]| -> Shape {
            entries
                .iter()
                .map(|(t, cols)| (t.to_string(), cols.iter().map(|c| c.to_string()).collect()))
                .collect()
        };
        let before = shape(&[("a", &["id int"]), ("b", &["id int", "v text"])]);
        let after = shape(&[("b", &["id int", "w text"]), ("c", &["id int"])]);
        assert_eq!(
            shape_changes(&before, &after),
            [
                "table b: +[w text] -[v text]",
                "table c was created",
                "table a was dropped"
            ]
        );
        let after = shape(&[("a", &["id int", "x int"]), ("b", &["id int"])]);
        assert_eq!(
            shape_changes(&before, &after),
            ["table a: +[x int]", "table b: -[v text]"]
        );
    }
}
