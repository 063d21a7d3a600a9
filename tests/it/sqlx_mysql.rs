#![cfg(feature = "sqlx-mysql")]
//! sqlx sessions on MySQL / MariaDB (default mysql://root@127.0.0.1:3306/test, or
//! VENOMQA_SQLX_MYSQL_URL). The tests are in `sqlx_common.rs`.

use venomqa::sqlx::{SqlxMySql, SqlxMySqlSession};

type Db = SqlxMySqlSession;
type Conn = sqlx::MySqlConnection;
type Backend = SqlxMySql;
const ENTRY: &str = "sqlx_mysql";

fn url() -> String {
    std::env::var("VENOMQA_SQLX_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".to_owned())
}

fn independent() -> Conn {
    venomqa::sqlx::block_on(<Conn as sqlx::Connection>::connect(&url())).unwrap_or_else(|e| {
        panic!(
            "the MySQL / MariaDB server at {} is needed for these tests: {e}",
            url()
        )
    })
}

fn backend() -> SqlxMySql {
    SqlxMySql::from_url(&url()).unwrap()
}

sqlx_tests!("sqlx_mysql");
