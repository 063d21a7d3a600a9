//! The sqlx row: 1,000 tests with venomqa's sqlx sessions against 1,000 `#[sqlx::test]`s,
//! on MariaDB and PostgreSQL, in one run.
//!
//! Both sides run the same body (insert a row, read the count back, expect 1) on a new
//! current-thread Tokio runtime per test, as both attributes do.
//!
//! - `#[sqlx::test]`: the bench calls `sqlx::testing::TestFn::run_test` with a
//!   `TestArgs` carrying the migrator, which is exactly what the attribute expands to.
//!   Each test therefore gets what it gets under `cargo test`: a database created through
//!   the master pool (`DATABASE_URL`), the migrations run on it, a pool of its own, and the
//!   database dropped after.
//! - venomqa: an `SqlxPostgresSession` / `SqlxMySqlSession` opened as `#[venom_test]`
//!   opens it (a pooled connection, the root checkpoint, the rollback at the end), on a
//!   database of the bench's own (`vq_sqlx_bench`) whose migrations ran once.
//!
//! The two alternate in blocks, so a drift of the shared machine hits both alike.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::testing::{TestArgs, TestFn};
use sqlx::{Connection, Executor};

use crate::harness::{fmt_us, stats};
use crate::report::{Report, Verdict};

static MIGRATOR: Migrator = sqlx::migrate!("./sqlx_migrations");

/// The bench's database for venomqa's side (`#[sqlx::test]` makes its own).
const DATABASE: &str = "vq_sqlx_bench";

pub const VQ_CASE: &str = "sqlx: venomqa sqlx session test";
pub const SQLX_CASE: &str = "sqlx: #[sqlx::test] (fresh database)";

/// Tests per block of the alternation.
const BLOCK: usize = 50;

/// The test body both sides run, for one database's connection type.
macro_rules! body {
    ($name:ident, $conn:ty) => {
        async fn $name(conn: &mut $conn) -> sqlx::Result<()> {
            sqlx::query("INSERT INTO vq_bench_items (id, label) VALUES (1, 'x')")
                .execute(&mut *conn)
                .await?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vq_bench_items")
                .fetch_one(&mut *conn)
                .await?;
            assert_eq!(n, 1, "each test sees only its own row");
            Ok(())
        }
    };
}
body!(pg_body, sqlx::PgConnection);
body!(mysql_body, sqlx::MySqlConnection);

/// A current-thread runtime per test, as `#[venom_test] async fn` and `#[sqlx::test]` use.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
        .block_on(f)
}

/// A `'static` test path, unique per test, as the attribute's `module_path!()::name`.
fn test_path(db: &str, i: usize) -> &'static str {
    Box::leak(format!("venomqa_bench::sqlx::{db}::test_{i}").into_boxed_str())
}

struct Side {
    times: Vec<Duration>,
    failed: Option<String>,
}

impl Side {
    fn new() -> Self {
        Side {
            times: Vec::new(),
            failed: None,
        }
    }

    fn time(&mut self, f: impl FnOnce() -> Result<(), String>) {
        if self.failed.is_some() {
            return;
        }
        let t = Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(Ok(())) => self.times.push(t.elapsed()),
            Ok(Err(e)) => self.failed = Some(e),
            Err(_) => self.failed = Some("the test panicked (see above)".to_owned()),
        }
    }
}

/// Runs `n` tests of each side, alternating blocks, and records the rows and the target.
fn compare(
    report: &mut Report,
    backend: &str,
    label: &str,
    n: usize,
    mut venomqa: impl FnMut(usize) -> Result<(), String>,
    mut sqlx_test: impl FnMut(usize) -> Result<(), String>,
) {
    let (mut vq, mut sx) = (Side::new(), Side::new());
    let (mut vq_total, mut sx_total) = (Duration::ZERO, Duration::ZERO);
    let mut i = 0;
    while i < n {
        let block = BLOCK.min(n - i);
        let t = Instant::now();
        for k in i..i + block {
            vq.time(|| venomqa(k));
        }
        vq_total += t.elapsed();
        let t = Instant::now();
        for k in i..i + block {
            sx.time(|| sqlx_test(k));
        }
        sx_total += t.elapsed();
        i += block;
    }
    let name = format!("{label}: sqlx sessions >= 50x faster than #[sqlx::test] (1,000 tests)");
    match (vq.failed, sx.failed) {
        (None, None) => {
            let (v, s) = (stats(vq.times), stats(sx.times));
            let x = s.median_us() / v.median_us();
            let totals = format!(
                "{n} tests: {:.2} s vs {:.2} s = {:.0}x",
                vq_total.as_secs_f64(),
                sx_total.as_secs_f64(),
                sx_total.as_secs_f64() / vq_total.as_secs_f64()
            );
            report.add(backend, "sqlx", VQ_CASE, v, format!("per test; {totals}"));
            report.add(
                backend,
                "sqlx",
                SQLX_CASE,
                s,
                format!("{x:.0}x venomqa's median"),
            );
            let detail = format!(
                "median per test {} vs {} = {x:.0}x; {totals}",
                fmt_us(v.median_us()),
                fmt_us(s.median_us())
            );
            let verdict = if x >= 50.0 {
                Verdict::Met
            } else {
                Verdict::Missed
            };
            report.target(name, verdict, detail);
        }
        (vq_failed, sx_failed) => {
            for (case, failed) in [(VQ_CASE, vq_failed), (SQLX_CASE, sx_failed)] {
                if let Some(why) = failed {
                    report.skip(backend, "sqlx", case, why);
                }
            }
            report.target(name, Verdict::NotMeasured, "a side failed (see the rows)");
        }
    }
}

/// Creates the bench's database for venomqa's side on the server of `master`, afresh.
fn create_database<C: Connection>(master: &str, drop: &str) -> Result<(), String>
where
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    block_on(async {
        let mut conn = C::connect(master).await?;
        // Two statements, each outside a transaction (PostgreSQL refuses DROP DATABASE in one).
        conn.execute(sqlx::raw_sql(drop)).await?;
        let create = format!("CREATE DATABASE {DATABASE}");
        conn.execute(sqlx::raw_sql(&create)).await?;
        conn.close().await
    })
    .map_err(|e| format!("cannot create {DATABASE}: {e}"))
}

pub fn run(report: &mut Report, quick: bool) {
    let n = if quick { 100 } else { 1_000 };
    println!("sqlx: {n} venomqa sqlx-session tests against {n} #[sqlx::test]s per database");
    postgres(report, n);
    mysql(report, n);
}

fn postgres(report: &mut Report, n: usize) {
    use sqlx::Postgres;
    use venomqa::sqlx::SqlxPostgresSession;

    let master = crate::url("postgres", "postgres://postgres@127.0.0.1:5432/test");
    let server = crate::server_of(master);
    let drop = format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)");
    if let Err(e) = create_database::<sqlx::PgConnection>(master, &drop) {
        report.note(format!("sqlx on postgres: skipped, {e}"));
        return;
    }
    let vq_url: &'static str = Box::leak(format!("{server}/{DATABASE}").into_boxed_str());
    venomqa::registry::register_setup("sqlx_postgres", venomqa::sqlx::migrate(&MIGRATOR));
    // What `#[sqlx::test]` reads for its master pool.
    std::env::set_var("DATABASE_URL", master);

    async fn sqlx_body(mut conn: PoolConnection<Postgres>) -> sqlx::Result<()> {
        pg_body(&mut conn).await
    }
    compare(
        report,
        "postgres",
        "PostgreSQL",
        n,
        |_| {
            SqlxPostgresSession::builder()
                .url(vq_url)
                .name("bench")
                .run(|db| block_on(pg_body(db.conn())))
                .map_err(|e| e.to_string())
        },
        |i| {
            let mut args = TestArgs::new(test_path("postgres", i));
            args.migrator(&MIGRATOR);
            let f: fn(PoolConnection<Postgres>) -> _ = sqlx_body;
            TestFn::run_test(f, args).map_err(|e| e.to_string())
        },
    );
}

fn mysql(report: &mut Report, n: usize) {
    use sqlx::MySql;
    use venomqa::sqlx::SqlxMySqlSession;

    let master = crate::url("mysql", "mysql://root@127.0.0.1:3306/test");
    let server = crate::server_of(master);
    let drop = format!("DROP DATABASE IF EXISTS {DATABASE}");
    if let Err(e) = create_database::<sqlx::MySqlConnection>(master, &drop) {
        report.note(format!("sqlx on mysql: skipped, {e}"));
        return;
    }
    let vq_url: &'static str = Box::leak(format!("{server}/{DATABASE}").into_boxed_str());
    venomqa::registry::register_setup("sqlx_mysql", venomqa::sqlx::migrate(&MIGRATOR));
    std::env::set_var("DATABASE_URL", master);

    async fn sqlx_body(mut conn: PoolConnection<MySql>) -> sqlx::Result<()> {
        mysql_body(&mut conn).await
    }
    compare(
        report,
        "mysql",
        "MariaDB",
        n,
        |_| {
            SqlxMySqlSession::builder()
                .url(vq_url)
                .name("bench")
                .run(|db| block_on(mysql_body(db.conn())))
                .map_err(|e| e.to_string())
        },
        |i| {
            let mut args = TestArgs::new(test_path("mysql", i));
            args.migrator(&MIGRATOR);
            let f: fn(PoolConnection<MySql>) -> _ = sqlx_body;
            TestFn::run_test(f, args).map_err(|e| e.to_string())
        },
    );
}
