//! The shop's storage: its own connection pool, on SQLite (`r2d2` over `rusqlite`) or
//! MySQL/MariaDB (`mysql::Pool`, feature `mysql`), with the same SQL on both.

use std::path::PathBuf;
use std::time::Duration;

/// A value bound to or read from SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Text(String),
    Null,
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            Val::Text(s) => s.parse().unwrap_or_default(),
            Val::Null => 0,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Text(s) => s.clone(),
            Val::Null => String::new(),
        }
    }

    pub fn is_null(&self) -> bool {
        *self == Val::Null
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_owned())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}

/// A storage failure: a unique key taken, or anything else.
#[derive(Debug)]
pub enum DbError {
    Unique(String),
    Other(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Unique(m) => write!(f, "unique key taken: {m}"),
            DbError::Other(m) => f.write_str(m),
        }
    }
}

/// The statements of one transaction.
pub trait Tx {
    /// Runs a statement; returns the rows it changed.
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError>;
    /// Runs an INSERT; returns the new row's id.
    fn insert(&mut self, sql: &str, params: &[Val]) -> Result<i64, DbError>;
    /// Runs a query; returns its rows.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, DbError>;

    /// The first row, if any.
    fn row(&mut self, sql: &str, params: &[Val]) -> Result<Option<Vec<Val>>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row (0 when none).
    fn scalar(&mut self, sql: &str, params: &[Val]) -> Result<i64, DbError> {
        Ok(self
            .row(sql, params)?
            .and_then(|r| r.into_iter().next())
            .map_or(0, |v| v.int()))
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email VARCHAR(255) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    token VARCHAR(64) NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    price_cents INTEGER NOT NULL,
    stock INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id),
    status VARCHAR(16) NOT NULL,
    total_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL,
    price_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vouchers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code VARCHAR(64) NOT NULL UNIQUE,
    amount_cents INTEGER NOT NULL,
    used_by_order INTEGER REFERENCES orders (id)
);
CREATE TABLE IF NOT EXISTS payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL UNIQUE REFERENCES orders (id),
    method VARCHAR(16) NOT NULL,
    amount_cents INTEGER NOT NULL,
    reference VARCHAR(64) NOT NULL
);
";

/// The schema in MySQL's words: the same tables, AUTO_INCREMENT and BIGINT keys. One file,
/// which `examples/venomqa.yaml` also runs as the capture entry's setup.
#[cfg(feature = "mysql")]
const MYSQL_SCHEMA: &str = include_str!("schema.mysql.sql");

/// The shop's storage: a pool of connections of its own.
pub enum Store {
    Sqlite(r2d2::Pool<SqliteConnections>),
    #[cfg(feature = "mysql")]
    MySql(mysql::Pool),
}

impl Store {
    /// Opens a pool for `url`: `sqlite://path`, `sqlite:path` or a bare path, or (feature
    /// `mysql`) `mysql://user:pass@host:port/db`; creates the tables if missing.
    pub fn open(url: &str, pool_size: u32) -> Result<Store, String> {
        if url.starts_with("mysql://") {
            #[cfg(feature = "mysql")]
            {
                let opts = mysql::Opts::from_url(url).map_err(|e| format!("bad MySQL URL: {e}"))?;
                let constraints =
                    mysql::PoolConstraints::new(1, pool_size as usize).ok_or("bad pool size")?;
                let opts = mysql::OptsBuilder::from_opts(opts)
                    .pool_opts(mysql::PoolOpts::new().with_constraints(constraints));
                let pool =
                    mysql::Pool::new(opts).map_err(|e| format!("connecting to MySQL: {e}"))?;
                let mut conn = pool
                    .get_conn()
                    .map_err(|e| format!("connecting to MySQL: {e}"))?;
                use mysql::prelude::Queryable;
                for stmt in MYSQL_SCHEMA.split(';').filter(|s| !s.trim().is_empty()) {
                    conn.query_drop(stmt)
                        .map_err(|e| format!("creating the schema: {e}"))?;
                }
                return Ok(Store::MySql(pool));
            }
            #[cfg(not(feature = "mysql"))]
            return Err(
                "this shop was built without MySQL support; build it with --features mysql"
                    .to_owned(),
            );
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains(":memory:") {
            return Err(format!(
                "{url:?}: the shop needs a database file (another process must see it)"
            ));
        }
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(30))
            .build(SqliteConnections {
                path: PathBuf::from(path),
            })
            .map_err(|e| format!("opening {path}: {e}"))?;
        let conn = pool.get().map_err(|e| format!("opening {path}: {e}"))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| format!("creating the schema in {path}: {e}"))?;
        Ok(Store::Sqlite(pool))
    }

    /// Runs `work` in one transaction: committed if it returns `Ok`, rolled back if not.
    pub fn transaction<R, E: From<DbError>>(
        &self,
        work: impl FnOnce(&mut dyn Tx) -> Result<R, E>,
    ) -> Result<R, E> {
        match self {
            Store::Sqlite(pool) => {
                let conn = pool
                    .get()
                    .map_err(|e| DbError::Other(format!("no database connection: {e}")))?;
                // IMMEDIATE: take the write lock now, so concurrent requests queue here
                // instead of failing on a lock upgrade.
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map_err(sqlite_error)?;
                let mut tx = SqliteTx(&conn);
                match work(&mut tx) {
                    Ok(r) => {
                        conn.execute_batch("COMMIT").map_err(sqlite_error)?;
                        Ok(r)
                    }
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        Err(e)
                    }
                }
            }
            #[cfg(feature = "mysql")]
            Store::MySql(pool) => {
                let mut conn = pool.get_conn().map_err(mysql_error)?;
                let tx = conn
                    .start_transaction(mysql::TxOpts::default())
                    .map_err(mysql_error)?;
                let mut tx = MySqlTx(tx);
                match work(&mut tx) {
                    Ok(r) => {
                        tx.0.commit().map_err(mysql_error)?;
                        Ok(r)
                    }
                    Err(e) => {
                        let _ = tx.0.rollback();
                        Err(e)
                    }
                }
            }
        }
    }
}

/// r2d2's manager of SQLite connections to one file.
#[derive(Debug)]
pub struct SqliteConnections {
    path: PathBuf,
}

impl r2d2::ManageConnection for SqliteConnections {
    type Connection = rusqlite::Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<rusqlite::Connection, rusqlite::Error> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut rusqlite::Connection) -> Result<(), rusqlite::Error> {
        conn.query_row("SELECT 1", [], |_| Ok(()))
    }

    fn has_broken(&self, _: &mut rusqlite::Connection) -> bool {
        false
    }
}

fn sqlite_error(e: rusqlite::Error) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            DbError::Unique(e.to_string())
        }
        _ => DbError::Other(e.to_string()),
    }
}

struct SqliteTx<'c>(&'c rusqlite::Connection);

fn sqlite_params(params: &[Val]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|v| match v {
            Val::Int(i) => rusqlite::types::Value::Integer(*i),
            Val::Text(s) => rusqlite::types::Value::Text(s.clone()),
            Val::Null => rusqlite::types::Value::Null,
        })
        .collect()
}

impl Tx for SqliteTx<'_> {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        self.0
            .execute(sql, rusqlite::params_from_iter(sqlite_params(params)))
            .map(|n| n as u64)
            .map_err(sqlite_error)
    }

    fn insert(&mut self, sql: &str, params: &[Val]) -> Result<i64, DbError> {
        self.exec(sql, params)?;
        Ok(self.0.last_insert_rowid())
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, DbError> {
        let mut stmt = self.0.prepare(sql).map_err(sqlite_error)?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(sqlite_params(params)), |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                            rusqlite::types::Value::Integer(v) => Val::Int(v),
                            rusqlite::types::Value::Text(s) => Val::Text(s),
                            rusqlite::types::Value::Real(f) => Val::Int(f as i64),
                            rusqlite::types::Value::Null => Val::Null,
                            rusqlite::types::Value::Blob(b) => {
                                Val::Text(String::from_utf8_lossy(&b).into_owned())
                            }
                        })
                    })
                    .collect::<rusqlite::Result<Vec<Val>>>()
            })
            .map_err(sqlite_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite_error)
    }
}

#[cfg(feature = "mysql")]
fn mysql_error(e: mysql::Error) -> DbError {
    match &e {
        mysql::Error::MySqlError(m) if m.code == 1062 => DbError::Unique(e.to_string()),
        _ => DbError::Other(e.to_string()),
    }
}

#[cfg(feature = "mysql")]
struct MySqlTx<'c>(mysql::Transaction<'c>);

#[cfg(feature = "mysql")]
fn mysql_params(params: &[Val]) -> mysql::Params {
    if params.is_empty() {
        return mysql::Params::Empty;
    }
    mysql::Params::Positional(
        params
            .iter()
            .map(|v| match v {
                Val::Int(i) => mysql::Value::Int(*i),
                Val::Text(s) => mysql::Value::Bytes(s.clone().into_bytes()),
                Val::Null => mysql::Value::NULL,
            })
            .collect(),
    )
}

#[cfg(feature = "mysql")]
impl Tx for MySqlTx<'_> {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        use mysql::prelude::Queryable;
        self.0
            .exec_drop(sql, mysql_params(params))
            .map_err(mysql_error)?;
        Ok(self.0.affected_rows())
    }

    fn insert(&mut self, sql: &str, params: &[Val]) -> Result<i64, DbError> {
        self.exec(sql, params)?;
        Ok(self.0.last_insert_id().unwrap_or_default() as i64)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, DbError> {
        use mysql::prelude::Queryable;
        let rows: Vec<mysql::Row> = self
            .0
            .exec(sql, mysql_params(params))
            .map_err(mysql_error)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql::Value::NULL => Val::Null,
                        mysql::Value::Int(i) => Val::Int(i),
                        mysql::Value::UInt(u) => Val::Int(u as i64),
                        mysql::Value::Bytes(b) => {
                            let s = String::from_utf8_lossy(&b).into_owned();
                            s.parse::<i64>().map_or(Val::Text(s), Val::Int)
                        }
                        other => Val::Text(other.as_sql(true)),
                    })
                    .collect()
            })
            .collect())
    }
}
