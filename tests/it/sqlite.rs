//! The embedded SQLite default, end to end: every rollback is proven by reading the
//! database back from an independent connection after the test has ended.
//!
//! Tests use two entries of `tests/venomqa.yaml`: `sqlite_file` (a file every connection
//! shares, so an observer can look) and the in-memory default.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use venomqa::sqlite::{
    Sqlite, SqliteCaptureSession, SqliteCaptureStateManager, SqliteSession, SqliteStateManager,
};
use venomqa::{venom_test, Backend, Error, Manager, Session, SessionBuilder};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/venomqa-tests.sqlite");

/// A test on the shared file, run as `#[venom_test(config = "sqlite_file")]` runs it.
fn file(test: &str) -> SessionBuilder<SqliteStateManager> {
    SqliteSession::builder().entry("sqlite_file").name(test)
}

/// An independent connection to the shared file: it sees only committed data.
fn observer() -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(FILE).expect("open the test database");
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    conn
}

fn committed(marker: &str) -> i64 {
    observer()
        .query_row(
            "SELECT COUNT(*) FROM items WHERE marker = ?1",
            [marker],
            |r| r.get(0),
        )
        .unwrap()
}

/// Works on a session of either SQLite backend (they share the connection type).
fn insert<B: Backend<Conn = <Sqlite as Backend>::Conn>>(db: &Session<Manager<B>>, marker: &str) {
    db.connection_ref()
        .execute("INSERT INTO items (marker) VALUES (?1)", [marker])
        .unwrap();
}

fn visible<B: Backend<Conn = <Sqlite as Backend>::Conn>>(
    db: &Session<Manager<B>>,
    marker: &str,
) -> i64 {
    db.connection_ref()
        .query_row(
            "SELECT COUNT(*) FROM items WHERE marker = ?1",
            [marker],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn rolled_back_after_pass() {
    file("pass").run(|db: &mut SqliteSession| {
        insert(db, "after_pass");
        assert_eq!(visible(db, "after_pass"), 1);
        assert_eq!(
            committed("after_pass"),
            0,
            "uncommitted rows are invisible to others"
        );
    });
    assert_eq!(committed("after_pass"), 0);
}

#[test]
fn rolled_back_after_err_and_the_err_is_returned() {
    let result: Result<(), String> = file("err").run(|db: &mut SqliteSession| {
        insert(db, "after_err");
        Err("the test failed".to_owned())
    });
    assert_eq!(result, Err("the test failed".to_owned()));
    assert_eq!(committed("after_err"), 0);
}

#[test]
fn rolled_back_after_panic_and_the_panic_is_reraised() {
    let caught = panic::catch_unwind(|| {
        file("panic").run(|db: &mut SqliteSession| -> () {
            insert(db, "after_panic");
            panic!("the original message");
        })
    });
    let payload = caught.expect_err("the panic propagates");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the original message")
    );
    assert_eq!(committed("after_panic"), 0);
}

// The attribute itself: these are real tests, and the functions they expand to can also
// be called from another test, which then checks what they left behind.
#[venom_test(config = "sqlite_file")]
fn attribute_writes_a_row(db: &mut SqliteSession) {
    insert(db, "attribute");
    assert_eq!(visible(db, "attribute"), 1);
}

#[venom_test(config = "sqlite_file")]
#[should_panic(expected = "panics after writing")]
fn attribute_panics_after_writing(db: &mut SqliteSession) {
    insert(db, "attribute_panic");
    panic!("panics after writing");
}

#[venom_test(config = "sqlite_file")]
fn attribute_returns_ok() -> Result<(), Error> {
    Ok(())
}

#[test]
fn attribute_tests_leave_nothing_behind() {
    attribute_writes_a_row();
    assert_eq!(committed("attribute"), 0);
    let caught = panic::catch_unwind(attribute_panics_after_writing);
    assert!(caught.is_err());
    assert_eq!(committed("attribute_panic"), 0);
}

#[test]
fn nested_blocks_including_a_panicking_one() {
    file("nested").run(|db: &mut SqliteSession| {
        insert(db, "outer");
        let inner = db
            .checkpoint("inner", |db| {
                insert(db, "inner");
                db.checkpoint("innermost", |db| {
                    insert(db, "innermost");
                    assert_eq!(visible(db, "innermost"), 1);
                })
                .unwrap();
                assert_eq!(visible(db, "innermost"), 0, "innermost block undone");
                visible(db, "inner")
            })
            .unwrap();
        assert_eq!(inner, 1, "the block's value comes back");
        assert_eq!(visible(db, "inner"), 0, "inner block undone");
        assert_eq!(visible(db, "outer"), 1, "the test's own change stays");

        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            db.checkpoint("doomed", |db| {
                insert(db, "doomed");
                panic!("inside the block");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(visible(db, "doomed"), 0, "a panicking block is undone too");
        assert_eq!(visible(db, "outer"), 1);
        assert_eq!(db.checkpoints(), [venomqa::ROOT_CHECKPOINT]);
    });
    assert_eq!(committed("outer"), 0);
}

#[test]
fn explicit_branch_exploration() {
    file("branches").run(|db: &mut SqliteSession| {
        insert(db, "base");
        db.create_checkpoint("fork").unwrap();

        insert(db, "branch_a");
        db.create_checkpoint("deeper").unwrap();
        insert(db, "branch_a_deeper");
        db.rollback("fork").unwrap();
        assert_eq!(
            db.checkpoints(),
            [venomqa::ROOT_CHECKPOINT, "fork"],
            "rollback drops later checkpoints"
        );
        assert_eq!(
            (visible(db, "branch_a"), visible(db, "branch_a_deeper")),
            (0, 0)
        );

        insert(db, "branch_b");
        assert!(matches!(
            db.rollback("deeper"),
            Err(Error::UnknownCheckpoint { .. })
        ));
        db.release("fork").unwrap();
        assert_eq!(
            (visible(db, "base"), visible(db, "branch_b")),
            (1, 1),
            "release keeps changes"
        );

        db.rollback(venomqa::ROOT_CHECKPOINT).unwrap();
        assert_eq!(
            visible(db, "base"),
            0,
            "rolling back to the root undoes the whole test so far"
        );
        assert!(
            db.release(venomqa::ROOT_CHECKPOINT).is_err(),
            "the root belongs to the session"
        );
    });
    assert_eq!(committed("base") + committed("branch_b"), 0);
}

#[test]
fn hostile_checkpoint_names_are_rejected_and_change_nothing() {
    file("hostile").run(|db: &mut SqliteSession| {
        insert(db, "hostile");
        for name in [
            "x\"; DROP TABLE items; --",
            "x'; DELETE FROM items; --",
            "a b",
            "a-b",
            "",
            "1st",
            "ünïcode",
        ] {
            let err = db.create_checkpoint(name).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCheckpoint { .. }),
                "{name:?}: {err}"
            );
            assert!(db.rollback(name).is_err());
            assert!(db.checkpoint(name, |_| ()).is_err());
        }
        assert_eq!(db.checkpoints(), [venomqa::ROOT_CHECKPOINT]);
        assert_eq!(visible(db, "hostile"), 1, "the test's data is untouched");
    });
    let tables: i64 = observer()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'items'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn ending_the_transaction_inside_a_test_is_reported() {
    let caught = panic::catch_unwind(|| {
        file("commit_inside").run(|db: &mut SqliteSession| {
            insert(db, "committed_by_test");
            db.conn().execute_batch("COMMIT").unwrap();
        })
    });
    let message = caught
        .expect_err("the test must fail")
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        message.contains("the rollback at its end failed"),
        "{message}"
    );
    assert!(message.contains("COMMIT"), "{message}");
    // Honest report: the row was committed by the test itself. Clean it up.
    observer()
        .execute("DELETE FROM items WHERE marker = 'committed_by_test'", [])
        .unwrap();
}

#[test]
fn committing_and_beginning_again_inside_a_test_is_reported() {
    let caught = panic::catch_unwind(|| {
        file("commit_begin_inside").run(|db: &mut SqliteSession| {
            insert(db, "committed_then_reopened");
            db.conn().execute_batch("COMMIT; BEGIN").unwrap();
            insert(db, "after_reopening");
        })
    });
    let message = caught
        .expect_err("the test must fail")
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        message.contains("the rollback at its end failed"),
        "{message}"
    );
    assert!(message.contains("savepoint gone"), "{message}");
    assert_eq!(
        committed("committed_then_reopened"),
        1,
        "the report is honest: it was committed"
    );
    assert_eq!(
        committed("after_reopening"),
        0,
        "the stray transaction was ended"
    );
    observer()
        .execute(
            "DELETE FROM items WHERE marker = 'committed_then_reopened'",
            [],
        )
        .unwrap();
}

/// 32 threads at once, each writing the same table: on the file (which the pool shares
/// one test at a time, so no "database is locked") and on the in-memory default (a
/// private database per connection, truly parallel).
#[test]
fn thirty_two_parallel_tests_on_one_table() {
    for entry in ["sqlite_file", "sqlite"] {
        std::thread::scope(|scope| {
            for i in 0..32 {
                scope.spawn(move || {
                    let test = SqliteSession::builder().entry(entry).name("parallel");
                    test.run(|db: &mut SqliteSession| {
                        let marker = format!("parallel_{i}");
                        insert(db, &marker);
                        let rows: i64 = db
                            .conn()
                            .query_row(
                                "SELECT COUNT(*) FROM items WHERE marker LIKE 'parallel%'",
                                [],
                                |r| r.get(0),
                            )
                            .unwrap();
                        assert_eq!(rows, 1, "{entry}: test {i} sees only its own row");
                    });
                });
            }
        });
    }
    let left: i64 = observer()
        .query_row(
            "SELECT COUNT(*) FROM items WHERE marker LIKE 'parallel%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

// The same through the harness: 32 attribute tests that cargo test runs on its threads
// (and cargo nextest in 32 processes), all writing the same table.
macro_rules! parallel_attribute_tests {
    ($($name:ident),*) => {$(
        #[venom_test(config = "sqlite_file")]
        fn $name(db: &mut SqliteSession) {
            insert(db, stringify!($name));
            let rows: i64 = db
                .conn()
                .query_row("SELECT COUNT(*) FROM items WHERE marker LIKE 'harness_%'", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 1, "only this test's row is visible");
        }
    )*};
}

parallel_attribute_tests!(
    harness_00, harness_01, harness_02, harness_03, harness_04, harness_05, harness_06, harness_07,
    harness_08, harness_09, harness_10, harness_11, harness_12, harness_13, harness_14, harness_15,
    harness_16, harness_17, harness_18, harness_19, harness_20, harness_21, harness_22, harness_23,
    harness_24, harness_25, harness_26, harness_27, harness_28, harness_29, harness_30, harness_31
);

#[venom_test]
fn the_default_backend_is_in_memory_sqlite(db: &mut Session) {
    assert_eq!(db.backend_name(), "sqlite");
    let manager = db
        .state_manager()
        .downcast_mut::<venomqa::Connected<Sqlite>>()
        .unwrap();
    assert!(manager.backend().is_memory());
    // The entry named after the backend applies: its setup created the schema.
    let n: i64 = manager
        .connection()
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn the_pool_is_built_once_and_reused() {
    let test = || SqliteSession::builder().entry("pool_counting").name("pool");
    for _ in 0..50 {
        test().run(|db: &mut SqliteSession| insert(db, "pooled"));
    }
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..10 {
                    test().run(|db: &mut SqliteSession| insert(db, "pooled"));
                }
            });
        }
    });
    let stats = test().pool_stats().unwrap();
    assert_eq!(stats.size, 2);
    assert_eq!(stats.leases, 130);
    assert!(stats.opened >= 1 && stats.opened <= 2, "{stats:?}");
    assert_eq!(stats.replaced, 0);
}

#[test]
fn reset_empties_chosen_tables_and_keeps_excluded_ones() {
    use venomqa::StateManager;
    let path = std::env::temp_dir().join(format!("venomqa-reset-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let mut m = Manager::new(Sqlite::from_url(&url).unwrap().exclude_tables(["keep"]));
    m.connect().unwrap();
    m.connection()
        .unwrap()
        .execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY AUTOINCREMENT);
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
             CREATE TABLE keep (v TEXT);
             CREATE TABLE \"we\"\"ird; DROP TABLE keep; --\" (v TEXT);
             INSERT INTO parent DEFAULT VALUES; INSERT INTO child VALUES (1, 1);
             INSERT INTO keep VALUES ('stays');
             INSERT INTO \"we\"\"ird; DROP TABLE keep; --\" VALUES ('x');",
        )
        .unwrap();
    m.reset().unwrap();
    let count = |t: &str| -> i64 {
        m.connection_ref()
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((count("parent"), count("child"), count("keep")), (0, 0, 1));
    assert_eq!(count("\"we\"\"ird; DROP TABLE keep; --\""), 0);
    m.connection_ref()
        .unwrap()
        .execute("INSERT INTO parent DEFAULT VALUES", [])
        .unwrap();
    let id: i64 = m
        .connection_ref()
        .unwrap()
        .query_row("SELECT MAX(id) FROM parent", [], |r| r.get(0))
        .unwrap();
    assert_eq!(id, 1, "AUTOINCREMENT counters are reset");

    // A table that does not exist: an error, and nothing changed.
    let mut bad = Manager::new(
        Sqlite::from_url(&url)
            .unwrap()
            .tables_to_reset(["parent", "missing"]),
    );
    bad.connect().unwrap();
    let err = bad.reset().unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(count("parent"), 1, "a failed reset changes nothing");
    drop((m, bad));
    let _ = std::fs::remove_file(&path);
}

/// The checkpoint-semantics suite, on the shared file and on the in-memory default.
struct Items;

impl venomqa::conformance::Probe for Items {
    fn insert(&self, m: &mut dyn venomqa::StateManager, value: i64) -> venomqa::Result<()> {
        let conn = m.connection::<Sqlite>()?;
        conn.execute(
            "INSERT INTO items (marker) VALUES (?1)",
            [format!("conformance_{value}")],
        )
        .map_err(|e| Error::backend("sqlite", "probe insert", e))?;
        Ok(())
    }
    fn values(&self, m: &mut dyn venomqa::StateManager) -> venomqa::Result<Vec<i64>> {
        let conn = m.connection::<Sqlite>()?;
        let mut stmt = conn
            .prepare("SELECT marker FROM items WHERE marker LIKE 'conformance_%'")
            .map_err(|e| Error::backend("sqlite", "probe read", e))?;
        let markers = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::backend("sqlite", "probe read", e))?;
        Ok(markers
            .iter()
            .filter_map(|m| m.strip_prefix("conformance_")?.parse().ok())
            .collect())
    }
}

#[test]
fn conformance_on_the_shared_file() {
    venomqa::conformance::run("sqlite_file", Items);
}

#[test]
fn conformance_in_memory() {
    venomqa::conformance::run("sqlite", Items);
}

#[test]
fn failed_hooks_leave_the_stack_unchanged() {
    venomqa::conformance::faults(Sqlite::from_url("sqlite::memory:").unwrap());
}

// Capture isolation: another process writes to the file, and the rollback undoes it.

/// The capture file of test `test`: one per test, so no test sees what another (or an
/// earlier run) left in it. Relative to this crate's directory, where tests run.
fn capture_url(test: &str) -> String {
    format!("sqlite://target/venomqa-capture-{test}.sqlite")
}

fn capture_file(test: &str) -> String {
    format!(
        "{}/target/venomqa-capture-{test}.sqlite",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs the writer binary: another process with its own connection to the file.
fn other_process(test: &str, sql: &str, hold_ms: Option<u64>) -> std::process::Child {
    let mut cmd = crate::support::writer::command();
    cmd.args(["sqlite", &capture_file(test), sql]);
    if let Some(ms) = hold_ms {
        cmd.args(["--hold", &ms.to_string()]);
    }
    cmd.stdout(std::process::Stdio::piped()).spawn().unwrap()
}

fn write_from_another_process(test: &str, sql: &str) {
    let out = other_process(test, sql, None).wait_with_output().unwrap();
    assert!(out.status.success(), "the writer failed");
}

/// Everything in the capture file, read by an independent connection: schema, rows of
/// every table, AUTOINCREMENT counters.
fn dump(test: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(capture_file(test)).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        .unwrap();
    let schema: Vec<(String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (kind, name, sql) in schema {
        out.push(format!("{kind} {name}: {sql:?}"));
        if kind != "table" {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY 1"))
            .unwrap();
        let n = stmt.column_count();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(|v| format!("{name}: {}", v.join(", ")))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        out.extend(rows);
    }
    out
}

/// Sessions on the capture entry, on a file of the test's own, new for each run: the
/// entry's setup creates its tables.
fn capture(test: &str) -> SessionBuilder<SqliteCaptureStateManager> {
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/target")).unwrap();
    for suffix in ["", "-wal", "-shm", "-journal", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", capture_file(test)));
    }
    SqliteCaptureSession::builder()
        .entry("sqlite_capture")
        .url(capture_url(test))
        .name(test)
}

#[test]
fn capture_undoes_what_another_process_wrote() {
    capture("capture").run(|db: &mut SqliteCaptureSession| {
        assert!(db.captures());
        insert(db, "mine");
        let at_checkpoint = dump("capture");
        db.create_checkpoint("before_the_app").unwrap();
        write_from_another_process(
            "capture",
            "INSERT INTO items (marker) VALUES ('app'), ('app2');
             UPDATE items SET marker = 'changed' WHERE marker = 'mine';
             INSERT INTO orders (item_id, note) VALUES (1, 'new order');
             DELETE FROM orders WHERE note = 'new order';
             INSERT INTO orders (item_id, note) VALUES (1, 'another');
             CREATE TABLE app_made (v TEXT); INSERT INTO app_made VALUES ('ddl too');",
        );
        assert_ne!(
            dump("capture"),
            at_checkpoint,
            "the other process's writes are in the file"
        );
        let diff = db.diff_since("before_the_app").unwrap();
        let items = diff.table("items").expect("items changed");
        assert_eq!(
            (items.inserted, items.updated, items.deleted),
            (2, 1, 0),
            "{diff}"
        );
        let changed = items.rows.iter().find(|r| !r.columns.is_empty()).unwrap();
        assert_eq!(
            (
                changed.columns[0].column.as_str(),
                changed.columns[0].old.as_str(),
                changed.columns[0].new.as_str()
            ),
            ("marker", "mine", "changed"),
            "{diff}"
        );
        assert!(diff.table("app_made").is_some(), "{diff}");
        db.rollback("before_the_app").unwrap();
        assert_eq!(
            dump("capture"),
            at_checkpoint,
            "rows, schema and AUTOINCREMENT counters are back"
        );
        assert_eq!(visible(db, "mine"), 1);
    });
    assert!(
        dump("capture").iter().all(|row| !row.contains("mine")),
        "the test's own write is gone too"
    );
}

#[test]
fn capture_hands_out_the_url_and_transaction_mode_refuses() {
    capture("url").run(|db: &mut SqliteCaptureSession| {
        assert_eq!(db.url().unwrap().expose(), capture_url("url"));
    });
    // A transaction session has no url() (a compile error on SqliteSession); an untyped
    // one refuses at run time, saying why.
    let file = <Session>::builder().entry("sqlite_file").name("no_url");
    file.run(|db: &mut Session| {
        let e = db.url().unwrap_err();
        assert!(e.to_string().contains("isolation: capture"), "{e}");
        assert!(!db.captures());
        assert!(db.diff().is_err());
    });
}

#[test]
fn capture_waits_for_a_writer_inside_a_transaction() {
    capture("wait").run(|db: &mut SqliteCaptureSession| {
        let at_checkpoint = dump("wait");
        db.create_checkpoint("c").unwrap();
        let mut writer = other_process(
            "wait",
            "INSERT INTO items (marker) VALUES ('slow')",
            Some(300),
        );
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(writer.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "holding", "the writer's transaction is open");
        db.rollback("c").unwrap();
        assert!(writer.wait().unwrap().success());
        // The rollback waited for the writer's commit, then undid it.
        assert_eq!(dump("wait"), at_checkpoint);
    });
}

#[test]
fn capture_needs_a_file() {
    let config = venomqa::BackendConfig::new("sqlite")
        .with_url("sqlite::memory:")
        .with_option("isolation", "capture");
    let e = Manager::<Sqlite>::from_config(&config).unwrap_err();
    assert!(e.to_string().contains("file URL"), "{e}");
}

#[test]
fn conformance_with_capture() {
    venomqa::conformance::run("sqlite_capture", Items);
}

/// An `isolation: capture` entry is a capture backend: a transaction session on it (or a
/// capture session on a transaction entry) fails at its start, naming what the entry
/// pools, and no connection is leased.
#[test]
fn a_session_type_and_its_entrys_isolation_must_agree() {
    let e = SqliteSession::builder()
        .entry("sqlite_capture")
        .name("wrong_type")
        .open()
        .unwrap_err();
    assert!(matches!(e, Error::SessionType { .. }), "{e}");
    assert!(e.to_string().contains("SqliteCapture>"), "{e}");
    let e = SqliteCaptureSession::builder()
        .entry("sqlite_file")
        .name("wrong_type")
        .open()
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("pools venomqa::connected::Connected<venomqa::backends::sqlite::Sqlite>"),
        "{e}"
    );
}
