//! `async fn` tests (venomqa's `tokio` feature): the body runs on a Tokio current-thread
//! runtime, and the rollback is the same as for sync tests.
#![cfg(feature = "tokio")]

use std::panic;
use std::time::Duration;

use venomqa::sqlite::SqliteSession;
use venomqa::venom_test;

fn committed(marker: &str) -> i64 {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/venomqa-tests.sqlite");
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM items WHERE marker = ?1",
        [marker],
        |r| r.get(0),
    )
    .unwrap()
}

#[venom_test(config = "sqlite_file")]
async fn async_test_awaits_and_is_rolled_back(db: &mut SqliteSession) -> Result<(), String> {
    db.conn()
        .execute("INSERT INTO items (marker) VALUES ('async')", [])
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let handle = tokio::spawn(async { 21 * 2 });
    assert_eq!(
        handle.await.unwrap(),
        42,
        "a real Tokio runtime drives the test"
    );
    db.checkpoint("nested", |db| {
        db.conn().execute("DELETE FROM items", []).unwrap();
    })
    .map_err(|e| e.to_string())?;
    let n: i64 = db
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM items WHERE marker = 'async'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    Ok(())
}

#[venom_test(config = "sqlite_file")]
#[should_panic(expected = "async panic")]
async fn async_panic_is_reraised(db: &mut SqliteSession) {
    db.conn()
        .execute("INSERT INTO items (marker) VALUES ('async_panic')", [])
        .unwrap();
    tokio::task::yield_now().await;
    panic!("async panic");
}

#[venom_test]
async fn async_without_a_session() {
    tokio::task::yield_now().await;
}

#[test]
fn async_tests_leave_nothing_behind() {
    async_test_awaits_and_is_rolled_back().unwrap();
    assert_eq!(committed("async"), 0);
    assert!(panic::catch_unwind(async_panic_is_reraised).is_err());
    assert_eq!(committed("async_panic"), 0);
}
