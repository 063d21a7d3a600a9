//! A test suite written for `#[sqlx::test]`, ported to `#[venom_test]`.
//!
//! Before, each test got a database of its own: `#[sqlx::test]` created it, ran the
//! migrations in `./migrations`, handed the test a connection, and dropped the database
//! after (on PostgreSQL and MySQL: a `CREATE DATABASE`, the migrations and a `DROP
//! DATABASE` per test):
//!
//! ```ignore
//! use sqlx::pool::PoolConnection;
//! use sqlx::Sqlite;
//!
//! #[sqlx::test]
//! async fn transfer_moves_money(mut conn: PoolConnection<Sqlite>) -> sqlx::Result<()> {
//!     let ann = open_account(&mut conn, "ann", 100).await?;
//!     ...
//! }
//! ```
//!
//! After: the attribute and the parameter's type changed, nothing else. Each test runs in
//! a transaction on a pooled connection, rolled back at its end; the migrations run once
//! per database (here: per in-memory connection), named in `venomqa.yaml`
//! (`migrations: migrations`). With PostgreSQL or MySQL the parameter is
//! `&mut SqlxPostgresSession` or `&mut SqlxMySqlSession`.
//!
//! ```ignore
//! use venomqa::sqlx::SqlxSqliteSession;
//!
//! #[venom_test]
//! async fn transfer_moves_money(mut conn: &mut SqlxSqliteSession) -> sqlx::Result<()> {
//!     let ann = open_account(&mut conn, "ann", 100).await?;
//!     ...
//! }
//! ```
#![cfg(feature = "sqlx-sqlite")]
// The bodies are kept as written for `PoolConnection` on purpose: `mut conn`, `&mut conn`.
#![allow(unused_mut, clippy::needless_borrow)]

use sqlx::{Connection, SqliteConnection};
use venomqa::sqlx::SqlxSqliteSession;
use venomqa::venom_test;

/// The code under test: a bank whose functions take a connection, as a service's
/// repository functions do.
mod bank {
    use super::*;

    pub async fn open_account(
        conn: &mut SqliteConnection,
        owner: &str,
        balance: i64,
    ) -> sqlx::Result<i64> {
        sqlx::query_scalar("INSERT INTO accounts (owner, balance) VALUES (?, ?) RETURNING id")
            .bind(owner)
            .bind(balance)
            .fetch_one(conn)
            .await
    }

    pub async fn balance(conn: &mut SqliteConnection, id: i64) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT balance FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_one(conn)
            .await
    }

    /// Moves money in a transaction of its own: inside a venomqa test that transaction
    /// is a savepoint, so a failed transfer undoes only itself.
    pub async fn transfer(
        conn: &mut SqliteConnection,
        from: i64,
        to: i64,
        amount: i64,
    ) -> sqlx::Result<()> {
        let mut tx = conn.begin().await?;
        sqlx::query("UPDATE accounts SET balance = balance + ? WHERE id = ?")
            .bind(amount)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        // Fails on the CHECK constraint when the balance would go negative; the early
        // return drops `tx`, which rolls back the credit above.
        sqlx::query("UPDATE accounts SET balance = balance - ? WHERE id = ?")
            .bind(amount)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

use bank::{balance, open_account, transfer};

// Was: #[sqlx::test] async fn transfer_moves_money(mut conn: PoolConnection<Sqlite>)
#[venom_test]
async fn transfer_moves_money(mut conn: &mut SqlxSqliteSession) -> sqlx::Result<()> {
    let ann = open_account(&mut conn, "ann", 100).await?;
    let bob = open_account(&mut conn, "bob", 0).await?;
    transfer(&mut conn, ann, bob, 30).await?;
    assert_eq!(balance(&mut conn, ann).await?, 70);
    assert_eq!(balance(&mut conn, bob).await?, 30);
    Ok(())
}

// Was: #[sqlx::test] async fn overdraft_is_refused(mut conn: PoolConnection<Sqlite>)
#[venom_test]
async fn overdraft_is_refused(mut conn: &mut SqlxSqliteSession) -> sqlx::Result<()> {
    let ann = open_account(&mut conn, "ann", 10).await?;
    let bob = open_account(&mut conn, "bob", 0).await?;
    assert!(transfer(&mut conn, ann, bob, 50).await.is_err());
    assert_eq!(balance(&mut conn, bob).await?, 0, "the credit was undone");
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&mut *conn)
        .await?;
    assert_eq!(accounts, 2);
    Ok(())
}

// Was: #[sqlx::test] async fn starts_empty(mut conn: PoolConnection<Sqlite>)
#[venom_test]
async fn starts_empty(mut conn: &mut SqlxSqliteSession) -> sqlx::Result<()> {
    // Every test starts from the migrated, empty schema: the other tests' accounts were
    // rolled back (and the ids they took with them).
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&mut *conn)
        .await?;
    assert_eq!(accounts, 0);
    let first = open_account(&mut conn, "cy", 1).await?;
    assert_eq!(first, 1);
    Ok(())
}

/// The tests above, run one after another on one connection: each leaves nothing.
#[test]
fn each_test_leaves_nothing_behind() {
    for _ in 0..3 {
        transfer_moves_money().unwrap();
        overdraft_is_refused().unwrap();
        starts_empty().unwrap();
    }
}
