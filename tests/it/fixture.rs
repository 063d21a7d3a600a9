//! Ordinary tests that two drivers also run in child processes, to read what a test run
//! leaves behind: `tests/it/logs.rs` (a failing test's captured output, with and without
//! `RUST_LOG`) and `tests/it/cli_report.rs` (the cost report of a `cargo nextest run`,
//! a process per test, all appending to one file). On their own they check their data
//! like any test; with `VENOMQA_FIXTURE_FAIL` set, `logged` fails and `returns_err`
//! returns `Err`, as the drivers ask.

use venomqa::sqlite::SqliteSession;
use venomqa::venom_test;

fn insert_and_count(db: &mut SqliteSession, marker: &str) -> i64 {
    db.conn()
        .execute("INSERT INTO items (marker) VALUES (?1)", [marker])
        .unwrap();
    db.conn()
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .unwrap()
}

fn asked_to_fail() -> bool {
    std::env::var_os("VENOMQA_FIXTURE_FAIL").is_some()
}

#[venom_test]
fn logged(db: &mut SqliteSession) {
    assert_eq!(
        insert_and_count(db, "logged"),
        1,
        "a test starts on empty tables"
    );
    assert!(
        !asked_to_fail(),
        "failing on purpose (VENOMQA_FIXTURE_FAIL is set)"
    );
}

#[venom_test]
fn returns_err(db: &mut SqliteSession) -> Result<(), String> {
    assert_eq!(insert_and_count(db, "err"), 1);
    if asked_to_fail() {
        return Err("returning Err on purpose (VENOMQA_FIXTURE_FAIL is set)".into());
    }
    Ok(())
}

#[venom_test]
#[should_panic(expected = "panics on purpose")]
fn panics(db: &mut SqliteSession) {
    assert_eq!(insert_and_count(db, "panics"), 1);
    panic!("panics on purpose");
}

/// Tests with a checkpoint block each: 2 checkpoints and 2 rollbacks in their report line.
macro_rules! with_a_block {
    ($($name:ident),* $(,)?) => {$(
        #[venom_test]
        fn $name(db: &mut SqliteSession) {
            assert_eq!(insert_and_count(db, stringify!($name)), 1);
            db.checkpoint("block", |db| {
                assert_eq!(insert_and_count(db, "in the block"), 2);
            })
            .unwrap();
            let n: i64 = db.conn().query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)).unwrap();
            assert_eq!(n, 1, "the block's row is rolled back");
        }
    )*};
}

with_a_block!(
    block_01, block_02, block_03, block_04, block_05, block_06, block_07, block_08, block_09,
    block_10, block_11, block_12, block_13, block_14, block_15, block_16, block_17, block_18,
    block_19, block_20,
);
