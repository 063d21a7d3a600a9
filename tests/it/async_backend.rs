//! A backend written the async way (`venomqa::AsyncBackend`, the reference's best
//! practice 4): savepoints over a `sqlx::PgConnection`, as a user would write one on an
//! async driver, registered as `Async<PgSavepoints>`. The conformance suite, the fault
//! injection and the model-based property test run it as any backend; an async
//! `#[venom_test]` awaits its connection directly; a second connection checks what was
//! committed.
#![cfg(feature = "sqlx-postgres")]

use std::collections::BTreeMap;

use sqlx::{Connection, Executor, PgConnection};
use venomqa::checkpoint::Point;
use venomqa::conformance::Probe;
use venomqa::{
    venom_test, Async, AsyncBackend, AsyncSession, BackendConfig, Error, Result, StateManager,
};

const NAME: &str = "pg_async";

fn url() -> String {
    std::env::var("VENOMQA_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A transaction per test and a savepoint per checkpoint, on an async connection.
pub struct PgSavepoints {
    url: String,
}

fn sql_error(operation: &str, e: sqlx::Error) -> Error {
    Error::backend(NAME, operation.to_owned(), e)
}

/// `name` as a PostgreSQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl AsyncBackend for PgSavepoints {
    const NAME: &'static str = NAME;
    type Options = BTreeMap<String, String>;
    type Conn = PgConnection;
    type Mark = ();

    fn new(config: &BackendConfig, _: Self::Options) -> Result<Self> {
        let url = config
            .url
            .as_ref()
            .map_or_else(url, |u| u.expose().to_owned());
        Ok(PgSavepoints { url })
    }

    async fn connect(&self) -> Result<PgConnection> {
        PgConnection::connect(&self.url)
            .await
            .map_err(|e| Error::connect(NAME, &self.url, e))
    }

    async fn checkpoint(&self, conn: &mut PgConnection, at: Point<'_>) -> Result<()> {
        if at.is_outermost() {
            conn.execute("BEGIN")
                .await
                .map_err(|e| sql_error("BEGIN", e))?;
        }
        let sql = format!("SAVEPOINT {}", ident(at.name().as_str()));
        conn.execute(sql.as_str())
            .await
            .map_err(|e| sql_error(&sql, e))?;
        Ok(())
    }

    async fn rollback(&self, conn: &mut PgConnection, at: Point<'_>, _: &()) -> Result<()> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", ident(at.name().as_str()));
        conn.execute(sql.as_str())
            .await
            .map_err(|e| sql_error(&sql, e))?;
        Ok(())
    }

    async fn release(&self, conn: &mut PgConnection, at: Point<'_>, _: &()) -> Result<()> {
        let sql = if at.is_outermost() {
            "COMMIT".to_owned()
        } else {
            format!("RELEASE SAVEPOINT {}", ident(at.name().as_str()))
        };
        conn.execute(sql.as_str())
            .await
            .map_err(|e| sql_error(&sql, e))?;
        Ok(())
    }

    async fn discard(&self, conn: &mut PgConnection, at: Point<'_>, mark: &()) -> Result<()> {
        if at.is_outermost() {
            conn.execute("ROLLBACK")
                .await
                .map_err(|e| sql_error("ROLLBACK", e))?;
            return Ok(());
        }
        self.rollback(conn, at, mark).await?;
        self.release(conn, at, mark).await
    }

    async fn execute_script(&self, conn: &mut PgConnection, script: &str) -> Result<()> {
        conn.execute(script)
            .await
            .map_err(|e| sql_error("the setup script", e))?;
        Ok(())
    }

    fn pool_size(&self) -> usize {
        4
    }
}

venomqa::register_backend!(Async<PgSavepoints>);

venomqa::register_setup!(NAME, |m: &mut dyn StateManager| {
    let conn = m.connection::<Async<PgSavepoints>>()?;
    venomqa::runtime::block_on(conn.execute(
        "SELECT pg_advisory_lock(7345002); \
             CREATE TABLE IF NOT EXISTS vq_async_probe (v bigint NOT NULL); \
             SELECT pg_advisory_unlock(7345002);",
    ))
    .map_err(|e| sql_error("creating vq_async_probe", e))?;
    Ok(())
});

/// The suite's view of the data: the rows of `vq_async_probe`.
pub struct Rows;

impl Probe for Rows {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
        let conn = m.connection::<Async<PgSavepoints>>()?;
        venomqa::runtime::block_on(
            sqlx::query("INSERT INTO vq_async_probe (v) VALUES ($1)")
                .bind(value)
                .execute(conn),
        )
        .map_err(|e| sql_error("probe insert", e))?;
        Ok(())
    }

    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        let conn = m.connection::<Async<PgSavepoints>>()?;
        venomqa::runtime::block_on(
            sqlx::query_scalar("SELECT v FROM vq_async_probe").fetch_all(conn),
        )
        .map_err(|e| sql_error("probe read", e))
    }
}

/// What another connection sees committed with value `v`.
async fn committed(v: i64) -> i64 {
    let mut c = PgConnection::connect(&url()).await.unwrap_or_else(|e| {
        panic!("the PostgreSQL server is needed ({e}); start it with scripts/services.sh postgres")
    });
    sqlx::query_scalar("SELECT count(*) FROM vq_async_probe WHERE v = $1")
        .bind(v)
        .fetch_one(&mut c)
        .await
        .unwrap()
}

#[test]
fn an_async_backend_passes_the_conformance_suite() {
    venomqa::conformance::run(NAME, Rows);
}

#[test]
fn an_async_backend_survives_a_failed_hook_at_every_step() {
    venomqa::conformance::faults(Async(PgSavepoints { url: url() }));
}

#[test]
fn an_async_backend_keeps_the_rules_under_random_programs() {
    super::properties::check(NAME, Rows, 64);
}

#[venom_test(backend = "pg_async")]
async fn an_async_test_awaits_the_async_backends_own_connection(
    db: &mut AsyncSession<PgSavepoints>,
) {
    // The connection lives on venomqa's runtime; this test's runtime awaits it directly.
    sqlx::query("INSERT INTO vq_async_probe (v) VALUES (-41)")
        .execute(db.connection())
        .await
        .unwrap();
    db.checkpoint("one_row", |db| {
        venomqa::runtime::block_on(
            sqlx::query("INSERT INTO vq_async_probe (v) VALUES (-41)").execute(db.connection()),
        )
        .unwrap();
    })
    .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM vq_async_probe WHERE v = -41")
        .fetch_one(db.connection())
        .await
        .unwrap();
    assert_eq!(n, 1, "the block's row is rolled back");
    assert_eq!(
        committed(-41).await,
        0,
        "another connection sees nothing yet"
    );
}

#[test]
fn after_the_async_test_nothing_is_left() {
    an_async_test_awaits_the_async_backends_own_connection();
    assert_eq!(venomqa::runtime::block_on(committed(-41)), 0);
}
