#![cfg(feature = "sqlx-postgres")]
//! sqlx sessions on PostgreSQL (default postgres://postgres@127.0.0.1:5432/test, or
//! VENOMQA_SQLX_POSTGRES_URL). The tests are in `sqlx_common.rs`.

use venomqa::sqlx::{SqlxPostgres, SqlxPostgresSession};

type Db = SqlxPostgresSession;
type Conn = sqlx::PgConnection;
type Backend = SqlxPostgres;
const ENTRY: &str = "sqlx_postgres";

fn url() -> String {
    std::env::var("VENOMQA_SQLX_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn independent() -> Conn {
    venomqa::sqlx::block_on(<Conn as sqlx::Connection>::connect(&url())).unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL server at {} is needed for these tests: {e}",
            url()
        )
    })
}

fn backend() -> SqlxPostgres {
    SqlxPostgres::from_url(&url()).unwrap()
}

sqlx_tests!("sqlx_postgres");
