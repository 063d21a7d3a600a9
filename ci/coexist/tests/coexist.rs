//! venomqa and sqlx in one crate and one function, on one SQLite library.

use sqlx::{Connection, Row};
use venomqa::sqlite::SqliteSession;

/// A venomqa session (rusqlite) and an sqlx connection in the same function: each opens
/// an in-memory database through the one libsqlite3-sys in the graph, so both report the
/// same SQLite version, and each does real work.
#[tokio::test(flavor = "current_thread")]
async fn venomqa_and_sqlx_in_one_function() {
    let mut sqlx_conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .expect("sqlx opens an in-memory SQLite database");
    sqlx::query("CREATE TABLE t (v INTEGER)")
        .execute(&mut sqlx_conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (1), (2)")
        .execute(&mut sqlx_conn)
        .await
        .unwrap();
    let row = sqlx::query("SELECT SUM(v) AS s, sqlite_version() AS version FROM t")
        .fetch_one(&mut sqlx_conn)
        .await
        .unwrap();
    let (sum, sqlx_version): (i64, String) = (row.get("s"), row.get("version"));
    assert_eq!(sum, 3);

    let db = SqliteSession::start("sqlite").expect("a venomqa session on the default backend");
    db.conn()
        .execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (40)")
        .unwrap();
    let venomqa_version: String = db
        .conn()
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .unwrap();
    db.finish().expect("the session rolls back");

    assert_eq!(
        venomqa_version, sqlx_version,
        "one SQLite library serves both crates"
    );
    sqlx_conn.close().await.unwrap();
}

/// With every venomqa feature, an sqlx session's connection is this crate's own
/// `sqlx::SqliteConnection`: one sqlx in the graph, usable with the crate's queries.
#[cfg(feature = "all")]
#[venomqa::venom_test]
async fn an_sqlx_session_runs_this_crates_queries(db: &mut venomqa::sqlx::SqlxSqliteSession) {
    let conn: &mut sqlx::SqliteConnection = db.conn();
    sqlx::query("CREATE TABLE t (v INTEGER)")
        .execute(&mut *conn)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&mut *db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
