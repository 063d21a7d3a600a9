//! The capture suite: run it against any capture backend to check that a rollback puts
//! back exactly what another connection wrote, proven by a dump that is not the backend's.
//!
//! A capture backend rolls back writes made on connections that are not the test's own
//! (an API server in another process, an app's own pool). This suite writes through a
//! [`CaptureProbe`]: its own connection to the database, as an app would, and its own
//! dump of the whole state (rows, counters, expiries), read independently of the backend's
//! log. At every checkpoint the suite takes a dump; after every rollback the dump must be
//! the one taken at that checkpoint, line for line, and after the session the one taken
//! before it.
//!
//! The writes are those of a small shop: parents, keyed and keyless children of them
//! under `ON DELETE CASCADE` and `ON DELETE SET NULL` (both `ON UPDATE CASCADE`), updates
//! of keys, duplicate rows, and transactions that commit or roll themselves back. SQL
//! backends render them with [`sql`] and create the tables with [`schema`]; a backend
//! without foreign keys (Redis, MongoDB) carries them out as an app would, cascades
//! included.
//!
//! Each property is a named check ([`same_row_churn`], [`duplicate_rows`], [`cascades`],
//! [`transactions`], [`nested_checkpoints`], [`counters`]); [`run`] runs them all, and
//! [`run_program`] runs any sequence of [`Step`]s (a property test generates them).

use std::fmt;

use crate::error::Result;
use crate::session::Session;

/// One of the four child tables of a parent: keyed or keyless, and what deleting the
/// parent does to its rows. Every one follows a change of its parent's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Child {
    /// `vq_cc_kc`: a key from a counter; deleted with its parent.
    KeyedCascade,
    /// `vq_cc_kn`: a key from a counter; its parent set to NULL when the parent goes.
    KeyedSetNull,
    /// `vq_cc_lc`: no key, duplicates allowed; deleted with its parent.
    KeylessCascade,
    /// `vq_cc_ln`: no key, duplicates allowed; its parent set to NULL when the parent goes.
    KeylessSetNull,
}

impl Child {
    /// Every child table.
    pub const ALL: [Child; 4] = [
        Child::KeyedCascade,
        Child::KeyedSetNull,
        Child::KeylessCascade,
        Child::KeylessSetNull,
    ];

    /// The table's (or collection's, or key prefix's) name.
    pub fn table(self) -> &'static str {
        match self {
            Child::KeyedCascade => "vq_cc_kc",
            Child::KeyedSetNull => "vq_cc_kn",
            Child::KeylessCascade => "vq_cc_lc",
            Child::KeylessSetNull => "vq_cc_ln",
        }
    }

    /// Whether its rows have a key of their own.
    pub fn keyed(self) -> bool {
        matches!(self, Child::KeyedCascade | Child::KeyedSetNull)
    }

    /// Whether deleting the parent deletes the rows (else it sets their parent to NULL).
    pub fn cascades(self) -> bool {
        matches!(self, Child::KeyedCascade | Child::KeylessCascade)
    }
}

/// The parents' table.
pub const PARENT: &str = "vq_cc_parent";

/// A write another connection makes. Writes that break a constraint (a duplicate key, a
/// missing parent) are rejected by the database and change nothing; the suite accepts
/// that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A parent with key `id` and name `p<id>`.
    InsertParent {
        /// Its key.
        id: i64,
    },
    /// Parent `id`'s name gets a `+` more.
    RenameParent {
        /// The parent's key.
        id: i64,
    },
    /// Parent `id`'s key becomes `to`; its children follow (`ON UPDATE CASCADE`).
    RekeyParent {
        /// The parent's key.
        id: i64,
        /// Its new key.
        to: i64,
    },
    /// Parent `id` is deleted: cascading children go, the others lose their parent.
    DeleteParent {
        /// The parent's key.
        id: i64,
    },
    /// A child row `(parent, v)`; a keyed child's key comes from its counter.
    Insert {
        /// The child table.
        child: Child,
        /// Its parent's key.
        parent: i64,
        /// Its value.
        v: i64,
    },
    /// Every row of `child` under `parent`: `v = v + 1`.
    Update {
        /// The child table.
        child: Child,
        /// The parent's key.
        parent: i64,
    },
    /// Every keyed child under `parent`: its own key `+ 1000` (keyless children: nothing).
    RekeyChildren {
        /// The child table.
        child: Child,
        /// The parent's key.
        parent: i64,
    },
    /// One row of `child` equal to `(parent, v)`, if there is one (of two equal keyless
    /// rows, one stays).
    DeleteOne {
        /// The child table.
        child: Child,
        /// The parent's key.
        parent: i64,
        /// The value.
        v: i64,
    },
    /// Every row of `child` whose value is `v`.
    DeleteAll {
        /// The child table.
        child: Child,
        /// The value.
        v: i64,
    },
    /// Several writes in one transaction, which the app commits or rolls back itself.
    Transaction {
        /// The writes, in order.
        writes: Vec<Write>,
        /// Whether it commits (else it rolls back, and nothing of it stays).
        commit: bool,
    },
}

/// One step of a capture program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Another connection writes.
    Write(Write),
    /// The session takes checkpoint `n` (of [`NAMES`]), unless it is active.
    Checkpoint(usize),
    /// The session rolls back to checkpoint `n`, if it is active.
    Rollback(usize),
    /// The session releases checkpoint `n` (and those after it), if it is active.
    Release(usize),
}

/// The checkpoint names programs use.
pub const NAMES: [&str; 4] = ["cp_a", "cp_b", "cp_c", "cp_d"];

/// How the suite writes to and reads a capture backend's database: through connections
/// of its own, never the session's, as an app in another process would.
pub trait CaptureProbe: Send + Sync {
    /// Carries out `write` on a connection of the probe's own. A write the database
    /// rejects returns `Err` and must change nothing (a transaction is rolled back).
    fn write(&self, write: &Write) -> Result<()>;

    /// The whole captured state, read on a connection of the probe's own: every row of
    /// every table the writes touch, every counter (sequences, `AUTO_INCREMENT`,
    /// counter keys) and expiry, one line each, in a stable order.
    fn dump(&self) -> Result<Vec<String>>;
}

/// The SQL dialects [`sql`] and [`schema`] write. (Named after the products, not the
/// backend types, so a compiler message naming `Sqlite` or `MySql` stays unambiguous.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    PostgreSQL,
    /// MySQL and MariaDB (InnoDB).
    MySQL,
    /// SQLite (with `PRAGMA foreign_keys = ON` on the probe's connection).
    SQLite,
}

/// The tables the suite writes, created if missing (run it before any session opens:
/// it is DDL).
pub fn schema(dialect: Dialect) -> Vec<String> {
    let (auto, engine) = match dialect {
        Dialect::PostgreSQL => ("bigserial PRIMARY KEY", ""),
        Dialect::MySQL => ("BIGINT AUTO_INCREMENT PRIMARY KEY", " ENGINE=InnoDB"),
        Dialect::SQLite => ("INTEGER PRIMARY KEY AUTOINCREMENT", ""),
    };
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {PARENT} (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL){engine}"
    )];
    for child in Child::ALL {
        let on_delete = if child.cascades() {
            "CASCADE"
        } else {
            "SET NULL"
        };
        let null = if child.cascades() { "NOT NULL" } else { "NULL" };
        let key = if child.keyed() {
            format!("id {auto}, ")
        } else {
            String::new()
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {} ({key}parent_id BIGINT {null}, v BIGINT NOT NULL, FOREIGN KEY (parent_id) REFERENCES {PARENT} (id) ON DELETE {on_delete} ON UPDATE CASCADE){engine}",
            child.table()
        ));
    }
    out
}

/// The statements that carry out `write` on one connection, in order. A transaction is
/// `BEGIN` (or `START TRANSACTION`) .. `COMMIT` or `ROLLBACK`; a probe that sees one of
/// its statements fail rolls back and reports the write rejected.
pub fn sql(dialect: Dialect, write: &Write) -> Vec<String> {
    let one_of = |table: &str, condition: String| -> String {
        match dialect {
            Dialect::MySQL => format!("DELETE FROM {table} WHERE {condition} LIMIT 1"),
            Dialect::PostgreSQL => format!(
                "DELETE FROM {table} WHERE ctid = (SELECT ctid FROM {table} WHERE {condition} LIMIT 1)"
            ),
            Dialect::SQLite => format!(
                "DELETE FROM {table} WHERE rowid = (SELECT rowid FROM {table} WHERE {condition} LIMIT 1)"
            ),
        }
    };
    match write {
        Write::InsertParent { id } => vec![format!(
            "INSERT INTO {PARENT} (id, name) VALUES ({id}, 'p{id}')"
        )],
        Write::RenameParent { id } => {
            let concat = match dialect {
                Dialect::MySQL => "CONCAT(name, '+')",
                _ => "name || '+'",
            };
            vec![format!(
                "UPDATE {PARENT} SET name = {concat} WHERE id = {id}"
            )]
        }
        Write::RekeyParent { id, to } => {
            vec![format!("UPDATE {PARENT} SET id = {to} WHERE id = {id}")]
        }
        Write::DeleteParent { id } => vec![format!("DELETE FROM {PARENT} WHERE id = {id}")],
        Write::Insert { child, parent, v } => vec![format!(
            "INSERT INTO {} (parent_id, v) VALUES ({parent}, {v})",
            child.table()
        )],
        Write::Update { child, parent } => vec![format!(
            "UPDATE {} SET v = v + 1 WHERE parent_id = {parent}",
            child.table()
        )],
        Write::RekeyChildren { child, parent } => {
            if child.keyed() {
                vec![format!(
                    "UPDATE {} SET id = id + 1000 WHERE parent_id = {parent}",
                    child.table()
                )]
            } else {
                Vec::new()
            }
        }
        Write::DeleteOne { child, parent, v } => vec![one_of(
            child.table(),
            format!("parent_id = {parent} AND v = {v}"),
        )],
        Write::DeleteAll { child, v } => {
            vec![format!("DELETE FROM {} WHERE v = {v}", child.table())]
        }
        Write::Transaction { writes, commit } => {
            let mut out = vec![match dialect {
                Dialect::MySQL => "START TRANSACTION".to_owned(),
                _ => "BEGIN".to_owned(),
            }];
            for w in writes {
                out.extend(sql(dialect, w));
            }
            out.push(if *commit { "COMMIT" } else { "ROLLBACK" }.to_owned());
            out
        }
    }
}

/// The queries a SQL probe's dump runs, each returning rows of text columns: every row of
/// every table in a stable order. The counters are the probe's to add (they differ by
/// server): PostgreSQL's sequences, MySQL's `AUTO_INCREMENT`, SQLite's `sqlite_sequence`.
pub fn dump_queries() -> Vec<(String, String)> {
    let mut out = vec![(
        PARENT.to_owned(),
        format!("SELECT id, name FROM {PARENT} ORDER BY id, name"),
    )];
    for child in Child::ALL {
        let (cols, order) = if child.keyed() {
            ("id, parent_id, v", "id")
        } else {
            ("parent_id, v", "parent_id, v")
        };
        out.push((
            child.table().to_owned(),
            format!("SELECT {cols} FROM {} ORDER BY {order}", child.table()),
        ));
    }
    out
}

/// Runs `steps` in one capture session on `entry`, checking the dump after every
/// rollback against the one taken at its checkpoint, and after the session against the
/// one taken before it. Returns a description of the first difference.
pub fn run_program(
    entry: &str,
    probe: &impl CaptureProbe,
    steps: &[Step],
) -> std::result::Result<(), String> {
    let dump = |when: &str| {
        probe
            .dump()
            .map_err(|e| format!("the probe cannot dump {when}: {e}"))
    };
    let before = dump("before the session")?;
    let mut session: Session = Session::builder()
        .backend(entry)
        .name(format!("conformance::capture::{entry}"))
        .open()
        .map_err(|e| format!("cannot open a session on {entry}: {e}"))?;
    let mut stack: Vec<(usize, Vec<String>)> = Vec::new();
    let result = (|| -> std::result::Result<(), String> {
        for (i, step) in steps.iter().enumerate() {
            let at = |what: String| format!("step {i} ({step:?}): {what}");
            match step {
                Step::Write(write) => {
                    // A rejected write (a duplicate key, a missing parent) changes nothing.
                    let _ = probe.write(write);
                }
                Step::Checkpoint(n) => {
                    let n = n % NAMES.len();
                    if stack.iter().any(|(m, _)| *m == n) {
                        continue;
                    }
                    session
                        .create_checkpoint(NAMES[n])
                        .map_err(|e| at(e.to_string()))?;
                    stack.push((n, dump("at a checkpoint").map_err(at)?));
                }
                Step::Rollback(n) => {
                    let n = n % NAMES.len();
                    let Some(j) = stack.iter().position(|(m, _)| *m == n) else {
                        continue;
                    };
                    session.rollback(NAMES[n]).map_err(|e| at(e.to_string()))?;
                    let now = dump("after a rollback").map_err(at)?;
                    compare(&stack[j].1, &now).map_err(at)?;
                    stack.truncate(j + 1);
                }
                Step::Release(n) => {
                    let n = n % NAMES.len();
                    let Some(j) = stack.iter().position(|(m, _)| *m == n) else {
                        continue;
                    };
                    session.release(NAMES[n]).map_err(|e| at(e.to_string()))?;
                    stack.truncate(j);
                }
            }
        }
        Ok(())
    })();
    let finished = session
        .finish()
        .map_err(|e| format!("the session's end failed: {e}"));
    result?;
    finished?;
    let after = dump("after the session")?;
    compare(&before, &after).map_err(|e| format!("after the session: {e}"))
}

/// `Ok` when `now` is `expected`, else the lines that differ (at most ten of each).
fn compare(expected: &[String], now: &[String]) -> std::result::Result<(), String> {
    if expected == now {
        return Ok(());
    }
    let missing: Vec<&String> = multiset_minus(expected, now);
    let extra: Vec<&String> = multiset_minus(now, expected);
    Err(format!(
        "the independent dump differs from the checkpoint's: missing {}; extra {}",
        Lines(&missing),
        Lines(&extra)
    ))
}

/// The lines of `a` not matched one for one in `b`.
fn multiset_minus<'a>(a: &'a [String], b: &[String]) -> Vec<&'a String> {
    let mut left: Vec<&String> = b.iter().collect();
    let mut out = Vec::new();
    for line in a {
        match left.iter().position(|l| *l == line) {
            Some(p) => {
                left.swap_remove(p);
            }
            None => out.push(line),
        }
    }
    out
}

struct Lines<'a>(&'a [&'a String]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let shown: Vec<&str> = self.0.iter().take(10).map(|s| s.as_str()).collect();
        write!(f, "[{}]", shown.join(" | "))?;
        if self.0.len() > 10 {
            write!(f, " and {} more", self.0.len() - 10)?;
        }
        Ok(())
    }
}

use Child::{KeyedCascade as KC, KeyedSetNull as KN, KeylessCascade as LC, KeylessSetNull as LN};

fn w(write: Write) -> Step {
    Step::Write(write)
}

/// The data every named check starts from, written inside the session: parents 1-3,
/// children of each kind, two equal keyless rows. Put it before a generated program so
/// its writes find rows to change.
pub fn seed() -> Vec<Step> {
    let mut steps: Vec<Step> = (1..=3).map(|id| w(Write::InsertParent { id })).collect();
    for (child, parent, v) in [
        (KC, 1, 1),
        (KC, 2, 2),
        (KN, 1, 3),
        (KN, 2, 4),
        (LC, 1, 10),
        (LC, 1, 10),
        (LC, 2, 20),
        (LN, 1, 5),
        (LN, 3, 7),
    ] {
        steps.push(w(Write::Insert { child, parent, v }));
    }
    steps
}

fn check(name: &str, entry: &str, probe: &impl CaptureProbe, steps: Vec<Step>) {
    let mut program = seed();
    program.extend(steps);
    if let Err(e) = run_program(entry, probe, &program) {
        panic!("conformance::capture::{name} on {entry}: {e}");
    }
}

/// Same-row churn after a checkpoint: insert then delete, insert then update then
/// delete, update then update again, an update of the key itself, a delete then the
/// insert of an equal row; on keyed and keyless tables.
pub fn same_row_churn(entry: &str, probe: &impl CaptureProbe) {
    let mut steps = Vec::new();
    for child in Child::ALL {
        steps.extend([
            Step::Checkpoint(0),
            w(Write::Insert {
                child,
                parent: 1,
                v: 50,
            }),
            w(Write::DeleteOne {
                child,
                parent: 1,
                v: 50,
            }),
            Step::Rollback(0),
            w(Write::Insert {
                child,
                parent: 2,
                v: 60,
            }),
            w(Write::Update { child, parent: 2 }),
            w(Write::DeleteAll { child, v: 61 }),
            Step::Rollback(0),
            w(Write::Update { child, parent: 1 }),
            w(Write::Update { child, parent: 1 }),
            Step::Rollback(0),
            w(Write::RekeyChildren { child, parent: 1 }),
            w(Write::Update { child, parent: 1 }),
            Step::Rollback(0),
            w(Write::DeleteAll { child, v: 10 }),
            w(Write::DeleteAll { child, v: 1 }),
            w(Write::Insert {
                child,
                parent: 1,
                v: 10,
            }),
            w(Write::Insert {
                child,
                parent: 1,
                v: 1,
            }),
            Step::Rollback(0),
            Step::Release(0),
        ]);
    }
    steps.extend([
        Step::Checkpoint(1),
        w(Write::RekeyParent { id: 1, to: 9 }),
        w(Write::RenameParent { id: 9 }),
        w(Write::RekeyParent { id: 9, to: 1 }),
        Step::Rollback(1),
        w(Write::DeleteParent { id: 3 }),
        w(Write::InsertParent { id: 3 }),
        Step::Rollback(1),
    ]);
    check("same_row_churn", entry, probe, steps);
}

/// Two equal rows of a keyless table: delete one, delete both, add a third.
pub fn duplicate_rows(entry: &str, probe: &impl CaptureProbe) {
    check(
        "duplicate_rows",
        entry,
        probe,
        vec![
            Step::Checkpoint(0),
            w(Write::DeleteOne {
                child: LC,
                parent: 1,
                v: 10,
            }),
            Step::Rollback(0),
            w(Write::DeleteAll { child: LC, v: 10 }),
            Step::Rollback(0),
            w(Write::Insert {
                child: LC,
                parent: 1,
                v: 10,
            }),
            w(Write::Update {
                child: LC,
                parent: 1,
            }),
            w(Write::DeleteOne {
                child: LC,
                parent: 1,
                v: 11,
            }),
            Step::Rollback(0),
        ],
    );
}

/// `ON DELETE CASCADE` and `SET NULL` into keyed and keyless children, of parents that
/// existed at the checkpoint and of parents created after it, and a key change that
/// cascades.
pub fn cascades(entry: &str, probe: &impl CaptureProbe) {
    let mut steps = vec![
        Step::Checkpoint(0),
        w(Write::DeleteParent { id: 1 }),
        Step::Rollback(0),
    ];
    steps.push(w(Write::InsertParent { id: 4 }));
    for child in Child::ALL {
        steps.push(w(Write::Insert {
            child,
            parent: 4,
            v: 40,
        }));
    }
    steps.extend([
        w(Write::DeleteParent { id: 4 }),
        Step::Rollback(0),
        w(Write::Update {
            child: LC,
            parent: 2,
        }),
        w(Write::Update {
            child: KN,
            parent: 2,
        }),
        w(Write::DeleteParent { id: 2 }),
        Step::Rollback(0),
        w(Write::RekeyParent { id: 1, to: 5 }),
        w(Write::DeleteParent { id: 5 }),
        Step::Rollback(0),
    ]);
    check("cascades", entry, probe, steps);
}

/// Multi-statement transactions, and one the app rolls back itself.
pub fn transactions(entry: &str, probe: &impl CaptureProbe) {
    let writes = vec![
        Write::InsertParent { id: 6 },
        Write::Insert {
            child: LC,
            parent: 6,
            v: 1,
        },
        Write::Insert {
            child: KC,
            parent: 6,
            v: 1,
        },
        Write::Update {
            child: LC,
            parent: 1,
        },
        Write::DeleteParent { id: 2 },
    ];
    check(
        "transactions",
        entry,
        probe,
        vec![
            Step::Checkpoint(0),
            w(Write::Transaction {
                writes: writes.clone(),
                commit: true,
            }),
            Step::Rollback(0),
            w(Write::Transaction {
                writes: writes.clone(),
                commit: false,
            }),
            w(Write::Transaction {
                writes,
                commit: true,
            }),
            w(Write::DeleteParent { id: 6 }),
            Step::Rollback(0),
        ],
    );
}

/// Nested checkpoints, with rollbacks and releases in every order.
pub fn nested_checkpoints(entry: &str, probe: &impl CaptureProbe) {
    check(
        "nested_checkpoints",
        entry,
        probe,
        vec![
            Step::Checkpoint(0),
            w(Write::Insert {
                child: LC,
                parent: 1,
                v: 70,
            }),
            Step::Checkpoint(1),
            w(Write::DeleteOne {
                child: LC,
                parent: 1,
                v: 70,
            }),
            w(Write::Update {
                child: KC,
                parent: 1,
            }),
            Step::Checkpoint(2),
            w(Write::DeleteParent { id: 1 }),
            Step::Rollback(1),
            w(Write::Insert {
                child: LN,
                parent: 2,
                v: 71,
            }),
            Step::Checkpoint(2),
            w(Write::DeleteAll { child: LN, v: 71 }),
            Step::Release(2),
            Step::Rollback(0),
            Step::Checkpoint(1),
            w(Write::DeleteParent { id: 2 }),
            Step::Checkpoint(2),
            w(Write::InsertParent { id: 2 }),
            Step::Release(1),
            Step::Rollback(0),
            Step::Checkpoint(3),
            w(Write::Insert {
                child: KN,
                parent: 3,
                v: 72,
            }),
            Step::Rollback(3),
            Step::Rollback(0),
        ],
    );
}

/// Counters after all of it: keys from a counter (sequences, `AUTO_INCREMENT`, counter
/// keys) are handed out again after a rollback, and are back where they were after the
/// session.
pub fn counters(entry: &str, probe: &impl CaptureProbe) {
    check(
        "counters",
        entry,
        probe,
        vec![
            Step::Checkpoint(0),
            w(Write::Insert {
                child: KC,
                parent: 1,
                v: 80,
            }),
            w(Write::Insert {
                child: KN,
                parent: 1,
                v: 80,
            }),
            Step::Rollback(0),
            w(Write::Insert {
                child: KC,
                parent: 1,
                v: 81,
            }),
            w(Write::Transaction {
                writes: vec![Write::Insert {
                    child: KN,
                    parent: 1,
                    v: 82,
                }],
                commit: false,
            }),
            Step::Rollback(0),
        ],
    );
}

/// Every named check, in turn.
pub fn run(entry: &str, probe: &impl CaptureProbe) {
    same_row_churn(entry, probe);
    duplicate_rows(entry, probe);
    cascades(entry, probe);
    transactions(entry, probe);
    nested_checkpoints(entry, probe);
    counters(entry, probe);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_renders_between_begin_and_its_end() {
        let t = Write::Transaction {
            writes: vec![Write::DeleteOne {
                child: LC,
                parent: 1,
                v: 2,
            }],
            commit: false,
        };
        assert_eq!(
            sql(Dialect::MySQL, &t),
            [
                "START TRANSACTION",
                "DELETE FROM vq_cc_lc WHERE parent_id = 1 AND v = 2 LIMIT 1",
                "ROLLBACK"
            ]
        );
        assert!(sql(Dialect::PostgreSQL, &t)[1].contains("ctid"));
        assert!(sql(Dialect::SQLite, &t)[1].contains("rowid"));
    }

    #[test]
    fn a_difference_names_the_lines() {
        let a = vec!["x".to_owned(), "y".to_owned(), "y".to_owned()];
        let b = vec!["y".to_owned(), "z".to_owned()];
        let e = compare(&a, &b).unwrap_err();
        assert!(e.contains("missing [x | y]"), "{e}");
        assert!(e.contains("extra [z]"), "{e}");
        assert!(compare(&a, &a).is_ok());
    }
}
