#![cfg(feature = "sqlx-sqlite")]
//! sqlx sessions on SQLite: in-memory (the default, private per connection) for the
//! conformance suite, and a file (entry `sqlx_sqlite_file`) where an independent
//! connection can check what was rolled back. The tests are in `sqlx_common.rs`.

use venomqa::sqlx::{SqlxSqlite, SqlxSqliteSession};

type Db = SqlxSqliteSession;
type Conn = sqlx::SqliteConnection;
type Backend = SqlxSqlite;
const ENTRY: &str = "sqlx_sqlite";

/// The `sqlx_sqlite_file` entry's database, relative to this crate (where tests run).
const FILE: &str = "sqlite://target/venomqa-sqlx.sqlite";

fn independent() -> Conn {
    venomqa::sqlx::block_on(<Conn as sqlx::Connection>::connect(FILE))
        .unwrap_or_else(|e| panic!("cannot open {FILE}: {e}"))
}

fn backend() -> SqlxSqlite {
    SqlxSqlite::from_url("sqlite::memory:").unwrap()
}

sqlx_tests!("sqlx_sqlite_file");
